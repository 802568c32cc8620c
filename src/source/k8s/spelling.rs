//! The fields the controller spells differently from App Mesh, moved to App Mesh's spelling with
//! the manifest path they came from, and the walk to a nested mapping of a spec.

use serde_yaml_ng::{Mapping, Value};

use super::Cx;

impl Cx {
    /// Moves `from` (the k8s spelling) to `to` (App Mesh's) in `map` at `path`; App Mesh's
    /// spelling written in the manifest is an unknown field there.
    pub(super) fn rename(
        &mut self,
        map: &mut Mapping,
        path: &str,
        from: &str,
        to: &str,
        paths: &mut Vec<(String, String)>,
    ) {
        if map.contains_key(to) {
            self.problem(
                &format!("{path}.{to}"),
                format!("unknown field `{to}` (did you mean `{from}`?)"),
            );
            map.shift_remove(to);
        }
        if let Some(v) = map.shift_remove(from) {
            map.insert(to.into(), v);
            paths.push((format!("{path}.{to}"), format!("{path}.{from}")));
        }
    }
}

/// The mapping at `keys` below `map`, if every step is a mapping.
pub(super) fn get_path<'a>(map: &'a mut Mapping, keys: &[&str]) -> Option<&'a mut Mapping> {
    let mut cur = map;
    for k in keys {
        match cur.get_mut(*k) {
            Some(Value::Mapping(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur)
}

/// The controller spells the TLS ARNs `certificateARN` and `certificateAuthorityARNs`; App Mesh
/// spells them `certificateArn` and `certificateAuthorityArns`.
pub(super) fn arn_spelling(map: &mut Mapping) {
    for (from, to) in [
        ("certificateARN", "certificateArn"),
        ("certificateAuthorityARNs", "certificateAuthorityArns"),
    ] {
        if let Some(v) = map.shift_remove(from) {
            map.insert(to.into(), v);
        }
    }
    for (_, v) in map.iter_mut() {
        match v {
            Value::Mapping(m) => arn_spelling(m),
            Value::Sequence(s) => s.iter_mut().for_each(|v| {
                if let Value::Mapping(m) = v {
                    arn_spelling(m)
                }
            }),
            _ => {}
        }
    }
}
