//! `tcp-syn`: a half-open check over a raw TCP socket. A SYN goes out from a port in
//! [`segment::SOURCE_PORTS`]; a SYN-ACK means up, a RST means refused. No local socket owns
//! that port, so the kernel itself resets the half-open connection. One raw socket per
//! (family, source address, namespace) serves every such check.

pub mod segment;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::health::result::ResultCode;

use super::errors::errno_text;
use super::netns::{SocketFactory, SocketKind};
use super::rawio::recv_from;
use super::{Outcome, ProbeSpec};
use segment::{Answer, Outstanding};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SocketKey {
    v6: bool,
    source: Option<IpAddr>,
    netns: Option<String>,
}

/// Shared raw TCP sockets of tcp-syn checks.
#[derive(Default)]
pub struct SynPool {
    sockets: tokio::sync::Mutex<HashMap<SocketKey, Open>>,
    unmatched: Arc<AtomicU64>,
}

struct Open {
    sock: Arc<SynSocket>,
    reader: JoinHandle<()>,
}

impl Drop for SynPool {
    fn drop(&mut self) {
        for open in self.sockets.get_mut().values() {
            open.reader.abort();
        }
    }
}

impl SynPool {
    /// SYN-ACKs / RSTs to our probe ports that matched no outstanding probe.
    pub fn unmatched_replies(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    pub async fn probe(&self, sockets: &SocketFactory, spec: &ProbeSpec, port: u16) -> Outcome {
        let netns = spec.netns.as_deref();
        let source = match spec.source {
            Some(s) => s,
            None => match route_source(sockets, netns, spec.addr, port).await {
                Ok(s) => s,
                Err(o) => return o,
            },
        };
        let key = SocketKey {
            v6: spec.addr.is_ipv6(),
            source: spec.source,
            netns: spec.netns.clone(),
        };
        let sock = match self.socket_for(sockets, key).await {
            Ok(s) => s,
            Err(o) => return o,
        };
        sock.syn(source, spec.addr, port).await
    }

    async fn socket_for(
        &self,
        sockets: &SocketFactory,
        key: SocketKey,
    ) -> Result<Arc<SynSocket>, Outcome> {
        let mut map = self.sockets.lock().await;
        if let Some(open) = map.get(&key)
            && !open.sock.closed.load(Ordering::Relaxed)
        {
            return Ok(open.sock.clone());
        }
        let sock = Arc::new(SynSocket::open(sockets, &key, self.unmatched.clone()).await?);
        let reader = tokio::spawn(read_loop(sock.clone()));
        let open = Open {
            sock: sock.clone(),
            reader,
        };
        if let Some(old) = map.insert(key, open) {
            old.reader.abort();
        }
        Ok(sock)
    }
}

/// The source address the kernel would use towards `addr` (needed for the TCP checksum):
/// a connected UDP socket sends nothing but learns its route.
async fn route_source(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: IpAddr,
    port: u16,
) -> Result<IpAddr, Outcome> {
    let dst = SocketAddr::new(addr, port);
    let kind = SocketKind {
        domain: Domain::for_address(dst),
        ty: Type::DGRAM,
        protocol: Some(Protocol::UDP),
    };
    let udp = sockets
        .socket(netns, kind)
        .await
        .map_err(|e| Outcome::new(ResultCode::SockErr, e.to_string()))?;
    let fail = |e: io::Error| {
        let code = match e.raw_os_error() {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => ResultCode::L4Con,
            _ => ResultCode::SockErr,
        };
        Outcome::new(code, format!("no route to {addr}: {}", errno_text(&e)))
    };
    udp.connect(&SockAddr::from(dst)).map_err(fail)?;
    let local = udp.local_addr().map_err(fail)?;
    local
        .as_socket()
        .map(|s| s.ip())
        .ok_or_else(|| Outcome::new(ResultCode::SockErr, "route lookup gave no IP address"))
}

struct SynSocket {
    fd: AsyncFd<Socket>,
    v6: bool,
    table: Mutex<Outstanding>,
    unmatched: Arc<AtomicU64>,
    closed: AtomicBool,
}

impl SynSocket {
    async fn open(
        sockets: &SocketFactory,
        key: &SocketKey,
        unmatched: Arc<AtomicU64>,
    ) -> Result<SynSocket, Outcome> {
        let kind = SocketKind {
            domain: if key.v6 { Domain::IPV6 } else { Domain::IPV4 },
            ty: Type::RAW,
            protocol: Some(Protocol::TCP),
        };
        let sock = sockets
            .socket(key.netns.as_deref(), kind)
            .await
            .map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => " (tcp-syn needs CAP_NET_RAW)",
                    _ => "",
                };
                Outcome::new(ResultCode::SockErr, format!("raw TCP {e}{hint}"))
            })?;
        let local = |what: &str, e: io::Error| {
            Outcome::new(
                ResultCode::SockErr,
                format!("raw TCP {what}: {}", errno_text(&e)),
            )
        };
        if let Some(src) = key.source {
            sock.bind(&SockAddr::from(SocketAddr::new(src, 0)))
                .map_err(|e| local(&format!("cannot bind source {src}"), e))?;
        }
        sock.set_nonblocking(true)
            .map_err(|e| local("set non-blocking", e))?;
        // SAFETY: the AsyncFd owns the socket, so the fd stays open and the same for its life.
        let fd = unsafe { AsyncFd::register(sock) }
            .map_err(|e| local("register", io::Error::from(e)))?;
        Ok(SynSocket {
            fd,
            v6: key.v6,
            table: Mutex::new(Outstanding::new(rand::random())),
            unmatched,
            closed: AtomicBool::new(false),
        })
    }

    async fn syn(self: &Arc<Self>, source: IpAddr, addr: IpAddr, port: u16) -> Outcome {
        let seq: u32 = rand::random();
        let (tx, rx) = oneshot::channel();
        let sport = match self.table.lock() {
            Ok(mut t) => t.insert(addr, port, seq, tx),
            Err(_) => None,
        };
        let Some(sport) = sport else {
            return Outcome::new(ResultCode::SockErr, "too many outstanding tcp-syn probes");
        };
        let _forget = Forget {
            sock: self.clone(),
            sport,
            seq,
        };
        let packet = segment::syn(source, addr, sport, port, seq);
        if let Err(e) = self.send_to(&packet, addr).await {
            let code = match e.raw_os_error() {
                Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => ResultCode::L4Con,
                _ => ResultCode::SockErr,
            };
            return Outcome::new(code, format!("send SYN: {}", errno_text(&e)));
        }
        match rx.await {
            Ok(Answer::SynAck) => Outcome::new(ResultCode::L4Ok, "SYN-ACK"),
            Ok(Answer::Reset) => Outcome::new(ResultCode::L4Con, "connection refused"),
            Err(_) => Outcome::new(ResultCode::SockErr, "raw TCP reader stopped"),
        }
    }

    async fn send_to(&self, packet: &[u8], addr: IpAddr) -> io::Result<()> {
        // Port 0: raw IPv6 sockets reject any other value.
        let to = SockAddr::from(SocketAddr::new(addr, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send_to(packet, &to)) {
                Ok(res) => return res.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    fn dispatch(&self, buf: &[u8], from: IpAddr) {
        let seg = if self.v6 {
            segment::parse_v6(buf, from)
        } else {
            segment::parse_v4(buf)
        };
        let Some(seg) = seg else {
            return;
        };
        let matched = match self.table.lock() {
            Ok(mut t) => t.dispatch(&seg),
            Err(_) => None,
        };
        if matched == Some(false) {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Forget {
    sock: Arc<SynSocket>,
    sport: u16,
    seq: u32,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if let Ok(mut t) = self.sock.table.lock() {
            t.remove(self.sport, self.seq);
        }
    }
}

async fn read_loop(sock: Arc<SynSocket>) {
    let mut buf = vec![0u8; 2048];
    let mut errors = 0u32;
    loop {
        let mut guard = match sock.fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "raw TCP socket not readable; closing it");
                break;
            }
        };
        match guard.try_io(|fd| recv_from(fd.get_ref(), &mut buf)) {
            Ok(Ok((n, from))) => {
                errors = 0;
                if let Some(from) = from.as_socket() {
                    sock.dispatch(&buf[..n], from.ip());
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                if errors > 100 {
                    tracing::warn!(error = %e, "raw TCP socket keeps failing; closing it");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_would_block) => continue,
        }
    }
    sock.closed.store(true, Ordering::Relaxed);
}
