//! The TLS handshake of accepted xDS connections, done here rather than inside tonic so that a
//! refused handshake (no client certificate, another CA's, plaintext) is counted
//! (`meshplane_xds_tls_handshake_failures_total`) and logged, at most once per interval. Handshakes
//! run concurrently, each within the handshake timeout; tonic gets only finished ones, whose
//! connect info carries the client's certificates (`Request::peer_certs`). The acceptor is shared
//! ([`SharedAcceptor`]) so whoever owns the credentials can replace them while serving: each new
//! handshake takes the acceptor of the moment; connections already made keep theirs.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::Stream;
use tonic::transport::server::Connected;
use tracing::info;

use crate::xds::accept::Incoming;
use crate::xds::conn::Conn;
use crate::xds::metrics::XdsMetrics;

/// At most one handshake-failure log line per this interval (a port scan must not flood the log).
const LOG_EVERY: Duration = Duration::from_secs(10);

type Handshake = Result<TlsStream<Conn>, String>;

/// The xDS port's current TLS acceptor, replaceable while serving (renewed credentials).
#[derive(Clone)]
pub struct SharedAcceptor(Arc<RwLock<TlsAcceptor>>);

impl SharedAcceptor {
    pub fn new(acceptor: TlsAcceptor) -> SharedAcceptor {
        SharedAcceptor(Arc::new(RwLock::new(acceptor)))
    }

    /// The acceptor new handshakes use now.
    pub fn current(&self) -> TlsAcceptor {
        // A poisoned lock still holds a whole acceptor (replace writes one value).
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// From now on, handshakes use `acceptor`.
    pub fn replace(&self, acceptor: TlsAcceptor) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
    }
}

/// [`Incoming`] with TLS on top.
pub struct TlsIncoming {
    inner: Incoming,
    acceptor: SharedAcceptor,
    timeout: Duration,
    handshakes: JoinSet<Handshake>,
    metrics: Arc<XdsMetrics>,
    /// The listener is gone: end once the handshakes under way are done.
    done: bool,
    logged: Option<Instant>,
    unlogged: u64,
}

impl TlsIncoming {
    pub fn new(
        inner: Incoming,
        acceptor: SharedAcceptor,
        timeout: Duration,
        metrics: Arc<XdsMetrics>,
    ) -> TlsIncoming {
        TlsIncoming {
            inner,
            acceptor,
            timeout,
            handshakes: JoinSet::new(),
            metrics,
            done: false,
            logged: None,
            unlogged: 0,
        }
    }

    fn start(&mut self, conn: Conn) {
        let (acceptor, timeout) = (self.acceptor.current(), self.timeout);
        let peer = conn.connect_info().remote_addr();
        self.handshakes.spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(conn)).await {
                Ok(Ok(tls)) => Ok(tls),
                Ok(Err(e)) => Err(format!("{}: {e}", show(peer))),
                Err(_) => Err(format!("{}: no handshake within {timeout:?}", show(peer))),
            }
        });
    }

    fn failed(&mut self, why: &str) {
        self.metrics
            .tls_handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        self.unlogged += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            info!(failures = self.unlogged, last = %why, "xDS TLS handshake refused (no or untrusted client certificate?)");
            self.logged = Some(Instant::now());
            self.unlogged = 0;
        }
    }
}

fn show(peer: Option<std::net::SocketAddr>) -> String {
    peer.map_or_else(|| "?".to_string(), |p| p.to_string())
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<Conn>, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while !this.done {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(conn))) => this.start(conn),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Ok(tls)))) => return Poll::Ready(Some(Ok(tls))),
                Poll::Ready(Some(Ok(Err(why)))) => this.failed(&why),
                // A handshake task panicked or was cancelled: that connection is gone.
                Poll::Ready(Some(Err(_))) => {}
                Poll::Ready(None) if this.done => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
