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
mod tests {
    use super::super::accept::Incoming;
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A listener, a gate over it, and a task serving each admitted connection by reading it.
    async fn serve(
        max: usize,
        timeout: Duration,
    ) -> (std::net::SocketAddr, Arc<XdsMetrics>, ConnGate) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(XdsMetrics::default());
        let gate = ConnGate::new(max, timeout, metrics.clone());
        let mut incoming = Incoming::new(listener, gate.clone());
        tokio::spawn(async move {
            while let Some(Ok(mut conn)) = tokio_stream::StreamExt::next(&mut incoming).await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        (addr, metrics, gate)
    }

    /// Whether the server closes `c` within `wait`.
    async fn closed_within(c: &mut TcpStream, wait: Duration) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(wait, c.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    const PREFACE_BYTES: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[tokio::test]
    async fn a_connection_that_never_speaks_is_closed_after_the_handshake_timeout() {
        let (addr, m, _) = serve(10, Duration::from_millis(200)).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut spoke = TcpStream::connect(addr).await.unwrap();
        spoke.write_all(PREFACE_BYTES).await.unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
        assert!(!closed_within(&mut spoke, Duration::from_millis(500)).await);
        assert_eq!(m.handshake_timeouts.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn when_full_the_oldest_silent_connection_makes_room_else_the_new_one_is_closed() {
        let (addr, m, _) = serve(3, Duration::from_secs(60)).await;
        let mut spoken = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(PREFACE_BYTES).await.unwrap();
            spoken.push(c);
        }
        let mut silent = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut newcomer = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(2)).await);
        newcomer.write_all(PREFACE_BYTES).await.unwrap();
        assert!(!closed_within(&mut newcomer, Duration::from_millis(300)).await);
        assert_eq!(m.connections_evicted.load(Relaxed), 1);
        // Three connections that have all spoken: a fourth is closed at once.
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut refused, Duration::from_secs(2)).await);
        assert_eq!(m.connections_refused.load(Relaxed), 1);
        for c in &mut spoken {
            assert!(!closed_within(c, Duration::from_millis(50)).await);
        }
    }

    #[tokio::test]
    async fn shutdown_closes_silent_connections_first_and_then_all() {
        let (addr, m, gate) = serve(10, Duration::from_secs(60)).await;
        let mut spoke = TcpStream::connect(addr).await.unwrap();
        spoke.write_all(PREFACE_BYTES).await.unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!((gate.open(), m.connections_open.load(Relaxed)), (2, 2));
        gate.close_silent();
        assert!(closed_within(&mut silent, Duration::from_secs(2)).await);
        assert!(!closed_within(&mut spoke, Duration::from_millis(200)).await);
        let mut late = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut late, Duration::from_secs(2)).await,
            "admitted after shutdown"
        );
        gate.close_all();
        assert!(closed_within(&mut spoke, Duration::from_secs(2)).await);
        assert_eq!(gate.open(), 0);
    }
}
