//! Counters and the convergence histogram of the xDS layer, read by the admin API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the convergence histogram buckets.
pub const CONVERGENCE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket histogram of durations, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; CONVERGENCE_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in CONVERGENCE_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (`le`), the total count and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = CONVERGENCE_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, c)| (*le, c.load(Ordering::Relaxed)))
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Per resource type, indexed like `TYPE_ORDER`.
pub type PerType = [AtomicU64; 4];

#[derive(Debug, Default)]
pub struct XdsMetrics {
    pub streams_open: AtomicU64,
    pub streams_total: AtomicU64,
    /// Streams closed at `--xds-max-stream-age`.
    pub streams_aged: AtomicU64,
    /// Totals over all types.
    pub responses: AtomicU64,
    pub response_bytes: AtomicU64,
    pub acks: AtomicU64,
    pub nacks: AtomicU64,
    pub stale: AtomicU64,
    pub responses_by_type: PerType,
    pub bytes_by_type: PerType,
    pub acks_by_type: PerType,
    pub nacks_by_type: PerType,
    pub stale_by_type: PerType,
    /// From the file change that produced a version to Envoy's ACK of it.
    pub convergence: Histogram,
    /// xDS connections open now (a gauge).
    pub connections_open: AtomicU64,
    /// Connections closed at once because `--max-connections` were open and had all spoken.
    pub connections_refused: AtomicU64,
    /// Silent connections closed to make room for a new one.
    pub connections_evicted: AtomicU64,
    /// Connections closed for sending no HTTP/2 preface within the handshake timeout.
    pub handshake_timeouts: AtomicU64,
    /// Streams ended by a limit, by [`StreamRefusal`].
    pub streams_refused: [AtomicU64; 3],
    /// Streams and fetches refused by the authorizer (see `auth`).
    pub denied: AtomicU64,
    /// TLS handshakes that failed on the xDS port (no or untrusted client certificate, ...).
    pub tls_handshake_failures: AtomicU64,
}

/// Why a stream was ended by a limit (the `reason` label of `meshplane_xds_streams_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    RequestTooLarge,
    NodeIdTooLong,
    NoFirstRequest,
}

impl StreamRefusal {
    pub const ALL: [StreamRefusal; 3] = [
        StreamRefusal::RequestTooLarge,
        StreamRefusal::NodeIdTooLong,
        StreamRefusal::NoFirstRequest,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StreamRefusal::RequestTooLarge => "request_too_large",
            StreamRefusal::NodeIdTooLong => "node_id_too_long",
            StreamRefusal::NoFirstRequest => "no_first_request",
        }
    }
}

impl XdsMetrics {
    /// Writes the families of the client limits through `family(name, kind, help, samples)`:
    /// connections open, refused, evicted, timed out, and streams ended by a limit.
    pub fn render_limits(&self, family: &mut impl FnMut(&str, &str, &str, &[(String, f64)])) {
        let one =
            |v: &std::sync::atomic::AtomicU64| [(String::new(), v.load(Ordering::Relaxed) as f64)];
        family(
            "meshplane_xds_connections",
            "gauge",
            "Open xDS connections.",
            &one(&self.connections_open),
        );
        family(
            "meshplane_xds_connections_refused_total",
            "counter",
            "Connections closed at once: --max-connections were open and had all spoken.",
            &one(&self.connections_refused),
        );
        family(
            "meshplane_xds_connections_evicted_total",
            "counter",
            "Connections that had not spoken yet, closed to make room for a new one.",
            &one(&self.connections_evicted),
        );
        family(
            "meshplane_xds_handshake_timeouts_total",
            "counter",
            "Connections closed for sending no HTTP/2 preface within --handshake-timeout.",
            &one(&self.handshake_timeouts),
        );
        let refused: Vec<(String, f64)> = StreamRefusal::ALL
            .iter()
            .map(|r| {
                (
                    format!("{{reason=\"{}\"}}", r.label()),
                    self.streams_refused[*r as usize].load(Ordering::Relaxed) as f64,
                )
            })
            .collect();
        family(
            "meshplane_xds_streams_refused_total",
            "counter",
            "Streams ended by a limit, by reason.",
            &refused,
        );
    }

    pub fn refused(&self, why: StreamRefusal) {
        self.streams_refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(total: &AtomicU64, per_type: &PerType, t: Option<usize>, n: u64) {
        total.fetch_add(n, Ordering::Relaxed);
        if let Some(t) = t.filter(|t| *t < 4) {
            per_type[t].fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(60));
        let (b, count, sum) = h.snapshot();
        assert_eq!(b[0], (0.005, 1));
        assert_eq!(b[3], (0.05, 2));
        assert_eq!(b[11], (30.0, 2));
        assert_eq!(count, 3);
        assert!((sum - 60.043).abs() < 1e-6);
    }
}
