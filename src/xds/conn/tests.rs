//! Tests of the connection gate over real sockets: handshake timeout, eviction of the oldest
//! silent connection when full, and the two steps of shutdown.

use super::super::accept::Incoming;
use super::*;
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A listener, a gate over it, and a task serving each admitted connection by reading it.
async fn serve(max: usize, timeout: Duration) -> (std::net::SocketAddr, Arc<XdsMetrics>, ConnGate) {
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
