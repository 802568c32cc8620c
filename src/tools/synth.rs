//! A deterministic synthetic mesh generator, for benchmarks and load tests.
//!
//! `services` services, each with two versions (virtual nodes with health checks and outlier
//! detection), a router with a canary route (retries, timeout) and a virtual service; and `clients`
//! virtual nodes, each calling `backends` services. Every client also calls `svc-0` (the shared
//! service every mesh has, like auth), so one edit of `svc-0`'s route reaches every client.

use std::fmt::Write as _;
use std::path::Path;

/// Parameters of a synthetic mesh.
#[derive(Debug, Clone, Copy)]
pub struct SynthParams {
    pub services: usize,
    pub clients: usize,
    pub backends: usize,
    pub seed: u64,
}

impl SynthParams {
    /// Total virtual nodes: two per service plus the clients.
    pub fn nodes(&self) -> usize {
        2 * self.services + self.clients
    }

    /// Parameters for a mesh of about `nodes` virtual nodes: one service per ten nodes.
    #[allow(dead_code)] // used by the benches and examples that include this file
    pub fn for_nodes(nodes: usize, seed: u64) -> SynthParams {
        let services = (nodes / 10).max(1);
        SynthParams {
            services,
            clients: nodes.saturating_sub(2 * services).max(1),
            backends: 5,
            seed,
        }
    }
}

/// SplitMix64: small, fast and reproducible across platforms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The name of the route whose weights `edit_weights` changes.
pub const EDITED_ROUTE_FILE: &str = "svc-0.yaml";

/// The mesh as files: (relative path, YAML text).
pub fn generate(p: &SynthParams) -> Vec<(String, String)> {
    let mut rng = Rng(p.seed);
    let mut files = Vec::new();
    files.push((
        "mesh.yaml".to_string(),
        "kind: Mesh\nmeshName: synth\nspec: {egressFilter: {type: DROP_ALL}}\n".to_string(),
    ));
    for s in 0..p.services {
        let w1 = 70 + rng.below(26);
        files.push((format!("svc-{s}.yaml"), service(s, w1, 100 - w1)));
    }
    let mut chunk = String::new();
    for c in 0..p.clients {
        let mut backends = vec![0usize];
        while backends.len() < p.backends.min(p.services) {
            let b = rng.below(p.services as u64) as usize;
            if !backends.contains(&b) {
                backends.push(b);
            }
        }
        let _ = write!(
            chunk,
            "---\nkind: VirtualNode\nmeshName: synth\nvirtualNodeName: client-{c}\nspec:\n  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]\n  serviceDiscovery: {{dns: {{hostname: client-{c}.synth.local}}}}\n  backends:\n"
        );
        for b in backends {
            let _ = writeln!(
                chunk,
                "    - virtualService: {{virtualServiceName: svc-{b}.synth.local}}"
            );
        }
        if (c + 1) % 100 == 0 || c + 1 == p.clients {
            files.push((
                format!("clients/clients-{:05}.yaml", c / 100),
                std::mem::take(&mut chunk),
            ));
        }
    }
    files
}

fn service(s: usize, w1: u64, w2: u64) -> String {
    let mut out = String::new();
    for v in ["v1", "v2"] {
        let _ = write!(
            out,
            "---\nkind: VirtualNode\nmeshName: synth\nvirtualNodeName: svc-{s}-{v}\nspec:\n  listeners:\n    - portMapping: {{port: 8080, protocol: http}}\n      healthCheck: {{protocol: http, path: /health, healthyThreshold: 2, unhealthyThreshold: 3, intervalMillis: 5000, timeoutMillis: 2000}}\n      outlierDetection: {{maxServerErrors: 5, interval: {{unit: s, value: 10}}, baseEjectionDuration: {{unit: s, value: 30}}, maxEjectionPercent: 50}}\n  serviceDiscovery: {{dns: {{hostname: svc-{s}-{v}.synth.local}}}}\n"
        );
    }
    let _ = write!(
        out,
        "---\nkind: VirtualRouter\nmeshName: synth\nvirtualRouterName: svc-{s}\nspec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}\n---\nkind: Route\nmeshName: synth\nvirtualRouterName: svc-{s}\nrouteName: canary\nspec:\n  priority: 10\n  httpRoute:\n    match: {{prefix: /}}\n    action:\n      weightedTargets:\n        - {{virtualNode: svc-{s}-v1, weight: {w1}}}\n        - {{virtualNode: svc-{s}-v2, weight: {w2}}}\n    retryPolicy: {{maxRetries: 2, perRetryTimeout: {{unit: ms, value: 1000}}, httpRetryEvents: [server-error]}}\n    timeout: {{perRequest: {{unit: s, value: 5}}}}\n---\nkind: VirtualService\nmeshName: synth\nvirtualServiceName: svc-{s}.synth.local\nspec: {{provider: {{virtualRouter: {{virtualRouterName: svc-{s}}}}}}}\n"
    );
    out
}

/// Rewrites `svc-0`'s canary weights in `dir` (the edit every client sees); `step` picks the weights.
pub fn edit_weights(dir: &Path, step: u64) -> std::io::Result<()> {
    let w1 = 60 + (step * 7) % 35;
    std::fs::write(dir.join(EDITED_ROUTE_FILE), service(0, w1, 100 - w1))
}

/// Writes the generated mesh below `dir`.
pub fn write(dir: &Path, p: &SynthParams) -> std::io::Result<()> {
    for (name, text) in generate(p) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}
