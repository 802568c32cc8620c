//! The `--max-*` and `--follow-symlinks-outside` flags of `serve` and `validate`, turned into
//! [`Limits`]. Sizes take a plain byte count or a binary suffix (`512KiB`, `8MiB`, `1GiB`).

use meshplane::source::Limits;

const D: Limits = Limits::DEFAULT;

/// What one reload may read and parse (README: "Limits").
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest mesh file read; a larger one is a problem at its line 1.
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub max_file_bytes: u64,
    /// Largest total size of all mesh files.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_bytes)]
    pub max_total_bytes: u64,
    /// Most mesh files below the config directory.
    #[arg(long, value_name = "N", default_value_t = D.max_files)]
    pub max_files: usize,
    /// Most directory entries the walk of the config directory visits.
    #[arg(long, value_name = "N", default_value_t = D.max_dir_entries)]
    pub max_dir_entries: usize,
    /// Deepest nesting of mappings and sequences in a document.
    #[arg(long, value_name = "N", default_value_t = D.max_depth)]
    pub max_depth: usize,
    /// Most nodes that YAML aliases may add to one document when expanded.
    #[arg(long, value_name = "N", default_value_t = D.max_alias_expansion)]
    pub max_alias_expansion: u64,
    /// Follow symlinks that lead outside the config directory (by default they are skipped with a
    /// warning; links that stay inside, as in a Kubernetes ConfigMap, are always followed).
    #[arg(long)]
    pub follow_symlinks_outside: bool,
}

impl From<LimitArgs> for Limits {
    fn from(a: LimitArgs) -> Limits {
        Limits {
            max_file_bytes: a.max_file_bytes,
            max_total_bytes: a.max_total_bytes,
            max_files: a.max_files,
            max_dir_entries: a.max_dir_entries,
            max_depth: a.max_depth,
            max_alias_expansion: a.max_alias_expansion,
            follow_symlinks_outside: a.follow_symlinks_outside,
        }
    }
}

/// `8388608`, `8MiB`, `8M`, `512KiB`, `512k`, `1GiB`: binary units, case-insensitive.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 8388608, 512KiB, 8MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("`{s}`: unknown unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        limits: LimitArgs,
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        let t = T::try_parse_from(["t"]).unwrap();
        assert_eq!(Limits::from(t.limits), Limits::DEFAULT);
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("8388608"), Ok(8 << 20));
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("8 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
        let t = T::try_parse_from(["t", "--max-depth", "10", "--max-file-bytes", "1KiB"]).unwrap();
        let l = Limits::from(t.limits);
        assert_eq!((l.max_depth, l.max_file_bytes), (10, 1024));
    }
}
