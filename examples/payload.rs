//! Bytes one sidecar receives for its initial SotW fetch, per type: the encoded resources (each an
//! `Any` entry of a `DiscoveryResponse`) and the whole `DiscoveryResponse` (with its version, type
//! URL and a nonce), as meshplane serves them to `NODE` of the mesh in `DIR`:
//!
//! ```sh
//! python3 ../shared/peers/go-control-plane/peer-shaped-mesh.py /tmp/peer-mesh
//! cargo run --example payload -- /tmp/peer-mesh mesh/bench/virtualNode/client
//! cargo run --example payload -- --peer 50     # go-control-plane's gcp-bench snapshot, same count
//! ```
//!
//! `--dump` also prints the node's resources, decoded. `--peer N` builds `gcp-bench`'s resources (`../shared/peers/go-control-plane/main.go`) with the
//! same field values, so both sides are counted the same way.

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

#[path = "payload/peer.rs"]
mod peer;

const TYPES: [(&str, &str); 4] = [
    ("CDS", meshplane::xds::CLUSTER),
    ("EDS", meshplane::xds::ENDPOINT),
    ("LDS", meshplane::xds::LISTENER),
    ("RDS", meshplane::xds::ROUTE),
];

/// (resources, resource bytes, response bytes) of one type's response.
fn measure(type_url: &str, version: &str, resources: Vec<Any>) -> (usize, usize, usize) {
    let n = resources.len();
    let resource_bytes: usize = resources
        .iter()
        .map(|a| prost::encoding::message::encoded_len(2, a))
        .sum();
    let response = DiscoveryResponse {
        version_info: version.to_string(),
        resources,
        type_url: type_url.to_string(),
        // A nonce as long as meshplane's (a 16-digit hex counter).
        nonce: format!("{:016x}", 1),
        ..Default::default()
    };
    (n, resource_bytes, response.encoded_len())
}

fn print(rows: Vec<(&str, (usize, usize, usize))>) {
    println!("type  resources  resource bytes  response bytes");
    let (mut tr, mut tb) = (0, 0);
    for (name, (n, r, b)) in rows {
        println!("{name:<4}  {n:>9}  {r:>14}  {b:>14}");
        tr += r;
        tb += b;
    }
    println!("all              {tr:>14}  {tb:>14}");
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice() {
        if flag == "--peer" {
            let rows = peer::resources(n.parse()?)
                .into_iter()
                .zip(TYPES)
                .map(|(res, (name, url))| (name, measure(url, "1", res)))
                .collect();
            print(rows);
            return Ok(());
        }
    }
    let (dir, node, dump) = match args.as_slice() {
        [dir, node] => (dir, node, false),
        [dir, node, flag] if flag == "--dump" => (dir, node, true),
        _ => anyhow::bail!("usage: payload DIR NODE [--dump] | payload --peer N"),
    };
    let mut p = meshplane::app::Pipeline::new(dir.into());
    if !p.reload(None) {
        anyhow::bail!("{dir} does not load: {:#?}", p.status().last.problems);
    }
    let Some(snap) = p.cache.get(node) else {
        anyhow::bail!("no node {node}; nodes: {:?}", p.cache.keys());
    };
    let rows = TYPES
        .iter()
        .enumerate()
        .map(|(i, (name, url))| {
            let ts = &snap.types[i];
            let res = ts.resources.values().map(|r| r.any.clone()).collect();
            (*name, measure(url, &ts.version, res))
        })
        .collect();
    print(rows);
    if dump {
        println!("{:#?}", meshplane::build::NodeResources::decode(&snap)?);
    }
    Ok(())
}
