//! A TCP echo service for the tests that carry TCP through sidecars, and a client for it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A TCP echo server: each line it reads comes back prefixed with its `name`.
pub async fn echo_server(port: u16, name: &'static str) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind echo server");
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if w.write_all(format!("{name} {line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
}

/// One connection: sends a line, returns the name of the instance that echoed it.
pub async fn ask(addr: SocketAddr) -> Result<String, String> {
    let io = async {
        let sock = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (r, mut w) = sock.into_split();
        w.write_all(b"hello\n").await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(r)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        match line.trim_end().split_once(' ') {
            Some((name, "hello")) => Ok(name.to_string()),
            _ => Err(format!("unexpected reply {line:?}")),
        }
    };
    tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .unwrap_or_else(|_| Err("no reply within 5 s".into()))
}
