//! The xDS connections: admits them under a cap on open connections (when full, the oldest
//! connection that has not spoken yet is closed to make room), gives each a deadline for its
//! HTTP/2 preface, and can cut every connection when a drain runs out of time. `accept` feeds it;
//! tonic's server gets the [`Conn`]s.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::debug;

use super::metrics::XdsMetrics;

/// The HTTP/2 client preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`) is 24 bytes: a connection has
/// spoken once it sent that many.
const PREFACE: u8 = 24;

/// Shared by the acceptor, every connection and the shutdown: which connections are open, and
/// which of them have not spoken yet.
#[derive(Clone)]
pub struct ConnGate(Arc<Gate>);

struct Gate {
    max: usize,
    handshake_timeout: Duration,
    table: Mutex<Table>,
    metrics: Arc<XdsMetrics>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Arc<Cut>>,
    /// Open connections that have not sent their preface yet, oldest (lowest id) first.
    silent: BTreeSet<u64>,
    /// Set on shutdown: nothing more is admitted.
    closed: bool,
}

/// Lets the gate close a connection from outside: a flag, and the waker of the connection's
/// task the last time its socket had nothing to read or no room to write.
#[derive(Default)]
struct Cut {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Cut {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        // Only ever holds a waker: a panic elsewhere cannot leave it inconsistent.
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self) {
        self.done.store(true, Ordering::Release);
        if let Some(w) = self.waker().take() {
            w.wake();
        }
    }

    /// Remembers `w`, then tells whether the connection was cut meanwhile (so no wake-up is lost).
    fn park(&self, w: &Waker) -> bool {
        {
            let mut slot = self.waker();
            if !slot.as_ref().is_some_and(|s| s.will_wake(w)) {
                *slot = Some(w.clone());
            }
        }
        self.is_cut()
    }

    fn is_cut(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl ConnGate {
    /// A gate for at most `max` open connections, each with `handshake_timeout` to speak.
    pub fn new(max: usize, handshake_timeout: Duration, metrics: Arc<XdsMetrics>) -> ConnGate {
        ConnGate(Arc::new(Gate {
            max: max.max(1),
            handshake_timeout,
            table: Mutex::default(),
            metrics,
        }))
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.0.table().live.len()
    }

    /// Admits a new connection, or refuses it (`None`: dropping the socket closes it) when the
    /// gate is full of connections that have all spoken, or shut.
    pub fn admit(&self, io: TcpStream) -> Option<Conn> {
        let gate = &self.0;
        let mut t = gate.table();
        if t.closed {
            return None;
        }
        if t.live.len() >= gate.max {
            // A client that has not spoken yet costs nothing to drop; an Envoy sends its preface
            // at once, so only silent (idle or hostile) connections get old enough to be first.
            let Some(oldest) = t.silent.pop_first() else {
                gate.metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if let Some(cut) = t.live.remove(&oldest) {
                cut.cut();
                gate.metrics
                    .connections_evicted
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let cut = Arc::new(Cut::default());
        t.live.insert(id, cut.clone());
        t.silent.insert(id);
        gate.metrics
            .connections_open
            .store(t.live.len() as u64, Ordering::Relaxed);
        drop(t);
        Some(Conn {
            io,
            id,
            cut,
            gate: gate.clone(),
            preface_left: PREFACE,
            deadline: Some(Box::pin(tokio::time::sleep(gate.handshake_timeout))),
        })
    }

    /// Shutdown has begun: admit nothing more, and close the connections that never spoke (they
    /// have no streams to finish, and hyper's graceful shutdown would wait for their preface).
    pub fn close_silent(&self) {
        let mut t = self.0.table();
        t.closed = true;
        for id in std::mem::take(&mut t.silent) {
            if let Some(cut) = t.live.remove(&id) {
                cut.cut();
            }
        }
        self.0.store_open(&t);
    }

    /// The drain ran out of time: close every connection, whatever its streams are doing.
    pub fn close_all(&self) {
        let mut t = self.0.table();
        t.closed = true;
        t.silent.clear();
        for (_, cut) in t.live.drain() {
            cut.cut();
        }
        self.0.store_open(&t);
    }
}

impl Gate {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Each operation leaves the table consistent before anything that could panic.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store_open(&self, t: &Table) {
        self.metrics
            .connections_open
            .store(t.live.len() as u64, Ordering::Relaxed);
    }

    fn spoke(&self, id: u64) {
        self.table().silent.remove(&id);
    }

    fn remove(&self, id: u64) {
        let mut t = self.table();
        t.live.remove(&id);
        t.silent.remove(&id);
        self.store_open(&t);
    }
}

/// One accepted xDS connection: the socket, plus the gate's hold on it.
pub struct Conn {
    io: TcpStream,
    id: u64,
    cut: Arc<Cut>,
    gate: Arc<Gate>,
    /// Preface bytes still to come; 0 once the client has spoken.
    preface_left: u8,
    /// Until the client has spoken.
    deadline: Option<Pin<Box<Sleep>>>,
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server")
}

impl Conn {
    /// Counts preface bytes; once all arrived the connection is no longer silent.
    fn got(&mut self, n: usize) {
        if self.preface_left == 0 || n == 0 {
            return;
        }
        self.preface_left = self.preface_left.saturating_sub(n.min(255) as u8);
        if self.preface_left == 0 {
            self.deadline = None;
            self.gate.spoke(self.id);
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.got(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.cut.park(cx.waker()) {
                    return Poll::Ready(Err(cut_error()));
                }
                if let Some(d) = this.deadline.as_mut() {
                    if d.as_mut().poll(cx).is_ready() {
                        this.gate
                            .metrics
                            .handshake_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                        debug!("connection closed: no HTTP/2 preface within the handshake timeout");
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no HTTP/2 preface within the handshake timeout",
                        )));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if r.is_pending() && self.cut.park(cx.waker()) {
            return Poll::Ready(Err(cut_error()));
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if r.is_pending() && self.cut.park(cx.waker()) {
            return Poll::Ready(Err(cut_error()));
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.gate.remove(self.id);
    }
}

#[cfg(test)]
mod tests;
