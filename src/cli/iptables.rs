//! `meshplane iptables`: the `iptables-restore` rules of App Mesh's proxy route manager for one
//! transparent node (docs/contract.md §2). Inbound TCP to the node's listener ports from other
//! hosts goes to Envoy's ingress port; the app's outbound TCP to non-local addresses goes to
//! Envoy's egress port, except Envoy's own (by uid, and gid when given) and the ignored ports and
//! addresses (App Mesh's defaults: the EC2 and ECS metadata endpoints).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use meshplane::model::{ProxyId, ProxyKind};

/// What the rules are made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// The node's listener ports, redirected to `ingress_port`.
    pub app_ports: Vec<u32>,
    pub ingress_port: u32,
    pub egress_port: u32,
    pub uid: u32,
    pub gid: Option<u32>,
    pub ignored_ips: Vec<String>,
    pub ignored_ports: Vec<u16>,
}

/// `multiport` takes at most 15 ports per rule.
const MULTIPORT_MAX: usize = 15;

/// The rules as `iptables-restore` reads them (the `nat` table, App Mesh's chain names).
pub fn render(r: &Rules) -> String {
    let mut s = String::from("*nat\n");
    if !r.app_ports.is_empty() {
        s.push_str(":APPMESH_INGRESS - [0:0]\n");
    }
    s.push_str(":APPMESH_EGRESS - [0:0]\n");
    if !r.app_ports.is_empty() {
        s.push_str("-A PREROUTING -p tcp -m addrtype ! --src-type LOCAL -j APPMESH_INGRESS\n");
    }
    s.push_str("-A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS\n");
    for ports in r.app_ports.chunks(MULTIPORT_MAX) {
        let _ = writeln!(
            s,
            "-A APPMESH_INGRESS -p tcp -m multiport --dports {} -j REDIRECT --to-ports {}",
            join(ports),
            r.ingress_port
        );
    }
    let _ = writeln!(
        s,
        "-A APPMESH_EGRESS -m owner --uid-owner {} -j RETURN",
        r.uid
    );
    if let Some(gid) = r.gid {
        let _ = writeln!(s, "-A APPMESH_EGRESS -m owner --gid-owner {gid} -j RETURN");
    }
    for ports in r.ignored_ports.chunks(MULTIPORT_MAX) {
        let _ = writeln!(
            s,
            "-A APPMESH_EGRESS -p tcp -m multiport --dports {} -j RETURN",
            join(ports)
        );
    }
    if !r.ignored_ips.is_empty() {
        let _ = writeln!(
            s,
            "-A APPMESH_EGRESS -p tcp -d {} -j RETURN",
            r.ignored_ips.join(",")
        );
    }
    let _ = writeln!(
        s,
        "-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports {}",
        r.egress_port
    );
    s.push_str("COMMIT\n");
    s
}

fn join<T: ToString>(xs: &[T]) -> String {
    xs.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// `iptables`' flags.
#[derive(Debug, clap::Args)]
pub struct IptablesArgs {
    /// mesh/<mesh>/virtualNode/<name> (or the full App Mesh ARN).
    #[arg(long)]
    pub node_id: String,
    /// Directory of the mesh files the node is defined in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub config: PathBuf,
    /// Envoy's user id: its own connections are not redirected.
    #[arg(long, value_name = "UID", default_value_t = 1337)]
    pub uid: u32,
    /// Envoy's group id, also not redirected (App Mesh's APPMESH_IGNORE_GID).
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// Destination addresses the app reaches directly, comma-separated (`''` for none).
    #[arg(
        long,
        value_name = "IPS",
        value_delimiter = ',',
        default_value = "169.254.169.254,169.254.170.2"
    )]
    pub ignored_ips: Vec<String>,
    /// Destination ports the app reaches directly, comma-separated.
    #[arg(long, value_name = "PORTS", value_delimiter = ',')]
    pub ignored_ports: Vec<u16>,
}

/// The flags, as given.
pub struct Options<'a> {
    pub node_id: &'a str,
    pub config: &'a Path,
    pub uid: u32,
    pub gid: Option<u32>,
    pub ignored_ips: Vec<String>,
    pub ignored_ports: Vec<u16>,
}

/// Prints the rules of `opts.node_id` (exit 0), or why there are none (exit 1: an invalid mesh,
/// an unknown node, a gateway, or a node in the explicit layout).
pub fn run(args: IptablesArgs) -> anyhow::Result<ExitCode> {
    rules(Options {
        node_id: &args.node_id,
        config: &args.config,
        uid: args.uid,
        gid: args.gid,
        ignored_ips: args.ignored_ips,
        ignored_ports: args.ignored_ports,
    })
}

/// Prints the rules of `opts.node_id`, as [`run`] does.
fn rules(opts: Options) -> anyhow::Result<ExitCode> {
    let Some(id) = ProxyId::parse(opts.node_id) else {
        anyhow::bail!(
            "node id `{}` must be mesh/<mesh>/virtualNode/<name> or an App Mesh ARN",
            opts.node_id
        );
    };
    let result = meshplane::app::load(opts.config);
    let Some(model) = result.model else {
        for p in &result.problems {
            eprintln!("{p}");
        }
        eprintln!(
            "{}: {} problem(s)",
            opts.config.display(),
            result.problems.len()
        );
        return Ok(ExitCode::from(1));
    };
    let fail = |msg: String| {
        eprintln!("{msg}");
        Ok(ExitCode::from(1))
    };
    if id.kind == ProxyKind::VirtualGateway {
        return fail(format!(
            "{}: a virtual gateway's Envoy listens on its own ports and needs no iptables rules",
            opts.node_id
        ));
    }
    let mesh = model.meshes.get(&id.mesh);
    let Some((mesh, node)) = mesh.and_then(|m| Some((m, m.virtual_nodes.get(&id.name)?))) else {
        return fail(format!(
            "{}: no such virtual node in {}",
            opts.node_id,
            opts.config.display()
        ));
    };
    let spec = &node.spec;
    if !meshplane::translate::transparent::is_transparent(mesh, spec) {
        return fail(format!(
            "{}: the node uses the explicit layout; iptables rules are for `proxy.mode: transparent` (VirtualNode.spec.proxy.mode or Mesh.spec.proxy.mode)",
            opts.node_id
        ));
    }
    let rules = Rules {
        app_ports: spec.listeners.iter().map(|l| l.port_mapping.port).collect(),
        ingress_port: spec.ingress_port(0),
        egress_port: spec.egress_port(),
        uid: opts.uid,
        gid: opts.gid,
        ignored_ips: opts
            .ignored_ips
            .into_iter()
            .filter(|ip| !ip.is_empty())
            .collect(),
        ignored_ports: opts.ignored_ports,
    };
    print!("{}", render(&rules));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_meshs_layout_with_its_defaults() {
        let r = Rules {
            app_ports: vec![8080, 9090],
            ingress_port: 15000,
            egress_port: 15001,
            uid: 1337,
            gid: None,
            ignored_ips: vec!["169.254.169.254".into(), "169.254.170.2".into()],
            ignored_ports: vec![22],
        };
        assert_eq!(
            render(&r),
            "*nat
:APPMESH_INGRESS - [0:0]
:APPMESH_EGRESS - [0:0]
-A PREROUTING -p tcp -m addrtype ! --src-type LOCAL -j APPMESH_INGRESS
-A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS
-A APPMESH_INGRESS -p tcp -m multiport --dports 8080,9090 -j REDIRECT --to-ports 15000
-A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN
-A APPMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN
-A APPMESH_EGRESS -p tcp -d 169.254.169.254,169.254.170.2 -j RETURN
-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001
COMMIT
"
        );
    }

    #[test]
    fn a_node_without_listeners_has_no_ingress_chain_and_many_ports_split() {
        let r = Rules {
            app_ports: vec![],
            ingress_port: 15000,
            egress_port: 15001,
            uid: 1337,
            gid: Some(1337),
            ignored_ips: vec![],
            ignored_ports: (1..=16).collect(),
        };
        let text = render(&r);
        assert!(!text.contains("APPMESH_INGRESS"), "{text}");
        assert!(text.contains("--gid-owner 1337 -j RETURN"));
        assert!(text.contains("--dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j RETURN"));
        assert!(text.contains("--dports 16 -j RETURN"));
        assert!(!text.contains(" -d "));
    }
}
