//! Loopback HTTP servers standing in for VIPs in the `maglev tester` tests: each answer names
//! a backend in `X-IPng-Frontend` (round robin over the given names), after an optional
//! sleep, with a chosen status; a server can be stopped (connections refused) and restarted
//! on the same address, and it remembers each request's method and peer.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// How a VIP answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub backends: Vec<String>,
    pub delay: Duration,
    pub status: u16,
    /// Accept, then never answer.
    pub hang: bool,
    /// Speak TLS with this server config (an https VIP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// (n, extra): every n-th request (from the n-th on) waits `extra` more: latency spikes.
    pub spike: Option<(usize, Duration)>,
}

impl Answer {
    pub fn from(backends: &[&str]) -> Answer {
        Answer {
            backends: backends.iter().map(|b| b.to_string()).collect(),
            delay: Duration::ZERO,
            status: 200,
            hang: false,
            tls: None,
            spike: None,
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub peer: SocketAddr,
}

pub struct Vip {
    pub addr: SocketAddr,
    answer: Arc<Answer>,
    next: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    server: Option<JoinHandle<()>>,
}

impl Vip {
    /// Listens on `addr` (port 0 = any free port).
    pub async fn start(addr: &str, answer: Answer) -> std::io::Result<Vip> {
        let listener = TcpListener::bind(addr).await?;
        let mut vip = Vip {
            addr: listener.local_addr()?,
            answer: Arc::new(answer),
            next: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(Mutex::new(Vec::new())),
            server: None,
        };
        vip.serve(listener);
        Ok(vip)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (answer, next, seen) = (
            Arc::clone(&self.answer),
            Arc::clone(&self.next),
            Arc::clone(&self.seen),
        );
        self.server = Some(tokio::spawn(async move {
            // Connections live in this set: stopping the server drops them too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let (answer, next, seen) =
                    (Arc::clone(&answer), Arc::clone(&next), Arc::clone(&seen));
                conns.spawn(async move {
                    match answer.tls.clone() {
                        None => handle(stream, peer, answer, next, seen).await,
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(tls) = acceptor.accept(stream).await {
                                handle(tls, peer, answer, next, seen).await;
                            }
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and drops every open connection: new connects are refused.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Vip {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    answer: Arc<Answer>,
    next: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let method = String::from_utf8_lossy(&head)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let nth = match seen.lock() {
        Ok(mut s) => {
            s.push(Seen {
                method: method.clone(),
                peer,
            });
            s.len()
        }
        Err(_) => 0,
    };
    if let Some((n, extra)) = answer.spike
        && nth >= n
        && nth % n == 0
    {
        tokio::time::sleep(extra).await;
    }
    if answer.hang {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(answer.delay).await;
    let backend = match answer.backends.len() {
        0 => String::new(),
        n => format!(
            "X-IPng-Frontend: {}\r\n",
            answer.backends[next.fetch_add(1, Ordering::Relaxed) % n]
        ),
    };
    let body = if method == "HEAD" { "" } else { "ok\n" };
    let reply = format!(
        "HTTP/1.1 {} X\r\n{backend}Content-Length: 3\r\nConnection: close\r\n\r\n{body}",
        answer.status
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}
