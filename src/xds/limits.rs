//! What one client may make the server hold: request size, node-id length, connections, streams
//! per connection, time to speak, keepalive and drain time. Every limit is a `serve` flag with
//! its default here; this module also raises the process's descriptor limit and fits the
//! connection limit under it.

use std::time::Duration;

use tonic::Status;
use tracing::{info, warn};

use super::metrics::StreamRefusal;

/// Limits on xDS clients, set by `meshplane serve`'s flags (README "Limits").
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ClientLimits {
    /// Largest xDS request message, in bytes; a larger one ends its stream with
    /// RESOURCE_EXHAUSTED. Envoy's requests list resource names: 4 MiB is ~50,000 of them.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_request_bytes: usize,
    /// Longest node id, in bytes; a longer one ends its stream with INVALID_ARGUMENT. App Mesh
    /// names are at most 255 characters, so a valid id is well below this.
    #[arg(long, default_value_t = 1024)]
    pub max_node_id_bytes: usize,
    /// Open xDS connections at most. When full, the oldest connection that has not sent its
    /// HTTP/2 preface yet is closed to make room, or else the new one is. Lowered at start to
    /// fit the descriptor limit.
    #[arg(long, default_value_t = 20_000)]
    pub max_connections: usize,
    /// Concurrent streams per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). An Envoy
    /// opens one (ADS) or four (one per type).
    #[arg(long, default_value_t = 16)]
    pub max_streams_per_connection: u32,
    /// Time a new connection has to send its HTTP/2 preface, and a new stream its first request,
    /// before it is closed (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings on each connection, to find dead peers.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// A connection whose peer does not answer a keepalive ping within this time is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,
    /// On SIGTERM, how long open connections may take to close before they are cut.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Longest life of an xDS stream (e.g. `30m`; default: no limit). A stream this old, plus a
    /// random 0-10 % so reconnects spread out, is closed with OK and its connection told to go
    /// away (HTTP/2 GOAWAY): the Envoy reconnects, perhaps to another replica, and is sent
    /// nothing new if the versions it holds are current. Spreads Envoys over replicas again
    /// after a restart.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub xds_max_stream_age: Option<Duration>,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            max_request_bytes: 4 << 20,
            max_node_id_bytes: 1024,
            max_connections: 20_000,
            max_streams_per_connection: 16,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            xds_max_stream_age: None,
        }
    }
}

impl ClientLimits {
    /// Refuses node ids longer than the limit: each stream keeps its id, and so does the cache
    /// while the stream is open.
    pub fn check_node_id(&self, id: &str) -> Result<(), Status> {
        let max = self.max_node_id_bytes;
        if id.len() > max {
            return Err(Status::invalid_argument(format!(
                "node id is {} bytes; at most {max} are accepted",
                id.len()
            )));
        }
        Ok(())
    }
}

/// The status a failed read of a request is answered with, if the client can still hear one: the
/// decoder's own errors (a message over the size limit, one that does not decode). A broken or
/// reset stream gets none.
pub fn refusal_of(e: Status) -> Option<(Status, Option<StreamRefusal>)> {
    match e.code() {
        // tonic reports a message over `max_decoding_message_size` as OUT_OF_RANGE; gRPC's
        // status for it is RESOURCE_EXHAUSTED.
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => Some((
            Status::resource_exhausted(e.message().to_string()),
            Some(StreamRefusal::RequestTooLarge),
        )),
        tonic::Code::InvalidArgument => Some((e, None)),
        _ => None,
    }
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 10s, 2m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("`{s}`: unit must be ms, s or m")),
    }
}

/// Where Linux caps any descriptor limit when the hard limit is "unlimited" (`fs.nr_open`'s
/// default).
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// Raises the soft descriptor limit to the hard limit (every connection is a descriptor; the
/// usual soft default, 1,024, is far below what a control plane needs) and returns the soft
/// limit in force afterwards, or `None` when it cannot be read.
pub fn raise_descriptor_limit() -> Option<u64> {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot read the descriptor limit");
            return None;
        }
    };
    let target = if hard == rlimit::INFINITY {
        NR_OPEN_DEFAULT
    } else {
        hard
    };
    if soft >= target {
        info!(soft, hard, "descriptor limit");
        return Some(soft);
    }
    match rlimit::Resource::NOFILE.set(target, hard) {
        Ok(()) => {
            info!(
                from = soft,
                to = target,
                hard,
                "raised the descriptor limit"
            );
            Some(target)
        }
        Err(e) => {
            warn!(soft, hard, error = %e, "cannot raise the descriptor limit");
            Some(soft)
        }
    }
}

/// How many xDS connections fit under `descriptors` while leaving room for everything else the
/// server opens (admin connections, config files, the watcher, the runtime): a quarter of the
/// limit, at most 256 descriptors.
pub fn connections_within(configured: usize, descriptors: Option<u64>) -> usize {
    let Some(limit) = descriptors else {
        return configured;
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let reserve = (limit / 4).min(256);
    configured.min(limit - reserve).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_request_is_resource_exhausted_and_a_broken_stream_gets_no_answer() {
        let too_large = Status::out_of_range("Error, decoded message length too large");
        let (status, why) = refusal_of(too_large).expect("answered");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(why, Some(StreamRefusal::RequestTooLarge));
        let garbled = refusal_of(Status::invalid_argument("decoding a request")).expect("answered");
        assert_eq!(
            (garbled.0.code(), garbled.1),
            (tonic::Code::InvalidArgument, None)
        );
        assert!(refusal_of(Status::unknown("h2 protocol error: stream reset")).is_none());
        assert!(refusal_of(Status::cancelled("gone")).is_none());
    }

    #[test]
    fn node_ids_up_to_the_limit_pass() {
        let l = ClientLimits {
            max_node_id_bytes: 8,
            ..ClientLimits::default()
        };
        assert!(l.check_node_id("12345678").is_ok());
        assert_eq!(
            l.check_node_id("123456789").map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument)
        );
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_of_the_flags_and_of_default_agree() {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            limits: ClientLimits,
        }
        assert_eq!(Flags::parse_from(["x"]).limits, ClientLimits::default());
    }

    #[test]
    fn connections_leave_room_for_other_descriptors() {
        assert_eq!(connections_within(20_000, Some(1024)), 768);
        assert_eq!(connections_within(20_000, Some(1 << 20)), 20_000);
        assert_eq!(connections_within(500, Some(1024)), 500);
        assert_eq!(connections_within(20_000, Some(64)), 48);
        assert_eq!(connections_within(20_000, Some(0)), 1);
        assert_eq!(connections_within(20_000, None), 20_000);
    }

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        let Ok((_, hard)) = rlimit::Resource::NOFILE.get() else {
            panic!("cannot read RLIMIT_NOFILE");
        };
        let hard_or_cap = if hard == rlimit::INFINITY {
            NR_OPEN_DEFAULT
        } else {
            hard
        };
        rlimit::Resource::NOFILE
            .set(hard_or_cap.min(256), hard)
            .expect("lower the soft limit");
        assert_eq!(raise_descriptor_limit(), Some(hard_or_cap));
        assert_eq!(
            rlimit::Resource::NOFILE.get().ok(),
            Some((hard_or_cap, hard))
        );
    }
}
