//! Accepting xDS connections: through the [`ConnGate`], with `TCP_NODELAY`, and without spinning
//! when the process runs out of descriptors (the pending connection stays queued, so an accept
//! retried at once fails at once). Yields to tonic's server only connections the gate admitted.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::time::Sleep;
use tokio_stream::Stream;
use tracing::{debug, warn};

use super::conn::{Conn, ConnGate};

/// Pause after an accept failed for lack of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one accept-failure warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The listener as tonic's stream of incoming connections, through the gate.
pub struct Incoming {
    listener: TcpListener,
    gate: ConnGate,
    backoff: Option<Pin<Box<Sleep>>>,
    /// When an accept failure was last logged, and how many failed since.
    warned: Option<Instant>,
    failures: u64,
}

impl Incoming {
    pub fn new(listener: TcpListener, gate: ConnGate) -> Incoming {
        Incoming {
            listener,
            gate,
            backoff: None,
            warned: None,
            failures: 0,
        }
    }

    fn accept_failed(&mut self, e: &io::Error) {
        self.failures += 1;
        if self.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            warn!(error = %e, failures = self.failures, "cannot accept xDS connections (out of descriptors?); retrying");
            self.warned = Some(Instant::now());
            self.failures = 0;
        }
        self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
    }
}

impl Stream for Incoming {
    /// Never an error: failures are handled here, so tonic's accept loop cannot spin on them.
    type Item = Result<Conn, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.backoff.as_mut() {
                ready!(b.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(this.listener.poll_accept(cx)) {
                Ok((io, _)) => {
                    // Responses and ACKs are small writes: without TCP_NODELAY, Nagle's
                    // algorithm holds one back until the peer's delayed ACK (up to 40 ms).
                    let _ = io.set_nodelay(true);
                    if let Some(conn) = this.gate.admit(io) {
                        return Poll::Ready(Some(Ok(conn)));
                    }
                }
                // This connection failed before it was accepted: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    debug!(error = %e, "accept failed")
                }
                Err(e) => this.accept_failed(&e),
            }
        }
    }
}
