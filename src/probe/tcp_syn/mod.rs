//! `tcp-syn`: a half-open check over a raw TCP socket. A SYN goes out from a port in
//! [`segment::SOURCE_PORTS`]; a SYN-ACK means up, a RST means refused. No local socket owns
//! that port, so the kernel itself resets the half-open connection. One raw socket per
//! (family, source address, namespace) serves every such check.

mod routes;
pub mod segment;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::health::result::ResultCode;

use super::bpf;
use super::errors::errno_text;
use super::netns::{SocketFactory, SocketKind};
use super::rawio;
use super::shared_socket::{self, Demux, RawSocket, SocketKey, SocketPool};
use super::{Outcome, ProbeSpec};
use segment::{Answer, Dispatch, Outstanding};

/// Shared raw TCP sockets of tcp-syn checks.
#[derive(Default)]
pub struct SynPool {
    sockets: SocketPool<SynSocket>,
}

impl SynPool {
    /// SYN-ACKs / RSTs to our probe ports that matched no outstanding probe.
    pub fn unmatched_replies(&self) -> u64 {
        self.sockets.unmatched_replies()
    }

    pub async fn probe(&self, sockets: &SocketFactory, spec: &ProbeSpec, port: u16) -> Outcome {
        let netns = spec.netns.as_deref();
        let opened = self
            .sockets
            .socket_for(SocketKey::of(spec), |key, unmatched| {
                SynSocket::open(sockets, key, unmatched)
            })
            .await;
        let sock = match opened {
            Ok(sock) => sock,
            Err(o) => return o,
        };
        let source = match spec.source {
            Some(s) => s,
            None => match sock.routes.source(sockets, netns, spec.addr, port).await {
                Ok(s) => s,
                Err(o) => return o,
            },
        };
        sock.syn(source, spec.addr, port).await
    }
}

/// Source addresses the kernel picked towards each backend, remembered for a while: the
/// lookup costs a socket and three system calls, more than the probe itself.
struct RouteSources {
    known: Mutex<routes::Known>,
}

impl Default for RouteSources {
    fn default() -> Self {
        RouteSources {
            known: Mutex::new(routes::Known::new(Instant::now())),
        }
    }
}

impl RouteSources {
    async fn source(
        &self,
        sockets: &SocketFactory,
        netns: Option<&str>,
        addr: IpAddr,
        port: u16,
    ) -> Result<IpAddr, Outcome> {
        let now = Instant::now();
        if let Ok(known) = self.known.lock()
            && let Some(src) = known.get(addr, now)
        {
            return Ok(src);
        }
        let src = route_source(sockets, netns, addr, port).await?;
        if let Ok(mut known) = self.known.lock() {
            known.insert(addr, src, now);
        }
        Ok(src)
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
    raw: RawSocket,
    v6: bool,
    table: Mutex<Outstanding>,
    /// SYNs waiting for the next batch send (see [`SynSocket::queue`]).
    outbox: Mutex<Vec<Queued>>,
    unmatched: Arc<AtomicU64>,
    /// Used when the check names no source address.
    routes: RouteSources,
}

impl SynSocket {
    async fn open(
        sockets: &SocketFactory,
        key: SocketKey,
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
        let filter = if key.v6 {
            bpf::tcp_answers_v6(&segment::SOURCE_PORTS)
        } else {
            bpf::tcp_answers_v4(&segment::SOURCE_PORTS)
        };
        bpf::attach(&sock, &filter).map_err(|e| {
            Outcome::new(
                ResultCode::SockErr,
                format!("raw TCP socket filter: {}", errno_text(&e)),
            )
        })?;
        if !key.v6 {
            shared_socket::dont_fragment(&sock);
        }
        let raw = RawSocket::register(sock, key.source, Self::LABEL)?;
        Ok(SynSocket {
            raw,
            v6: key.v6,
            table: Mutex::new(Outstanding::new(rand::random())),
            outbox: Mutex::default(),
            unmatched,
            routes: RouteSources::default(),
        })
    }

    async fn syn(self: &Arc<Self>, source: IpAddr, addr: IpAddr, port: u16) -> Outcome {
        let seq: u32 = rand::random();
        let Some(sport) = self.table().insert(addr, port, seq) else {
            return Outcome::new(ResultCode::SockErr, "too many outstanding tcp-syn probes");
        };
        let _forget = Forget {
            sock: self,
            sport,
            seq,
        };
        self.queue(Queued {
            packet: segment::syn(source, addr, sport, port, seq),
            to: SockAddr::from(SocketAddr::new(addr, 0)),
            sport,
            seq,
        });
        let answer = std::future::poll_fn(|cx| self.table().poll(sport, seq, cx.waker())).await;
        match answer {
            Some(Answer::SynAck) => Outcome::new(ResultCode::L4Ok, "SYN-ACK"),
            Some(Answer::Reset) => Outcome::new(ResultCode::L4Con, "connection refused"),
            Some(Answer::SendFailed(errno)) => {
                let e = io::Error::from_raw_os_error(errno);
                let code = match errno {
                    libc::EHOSTUNREACH | libc::ENETUNREACH => ResultCode::L4Con,
                    _ => ResultCode::SockErr,
                };
                Outcome::new(code, format!("send SYN: {}", errno_text(&e)))
            }
            None => Outcome::new(ResultCode::SockErr, "tcp-syn probe lost its table entry"),
        }
    }

    /// Queues a SYN for the next batch. The SYNs of one checker tick are queued while the
    /// checker's task starts its probes; the first one spawns the flush, which runs once
    /// that task yields and sends them all with `sendmmsg`.
    fn queue(self: &Arc<Self>, syn: Queued) {
        let first = {
            let mut out = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            out.push(syn);
            out.len() == 1
        };
        if first {
            tokio::spawn(Arc::clone(self).flush());
        }
    }

    /// Sends every queued SYN whose probe still waits; a SYN the kernel refuses ends its
    /// probe with the error.
    async fn flush(self: Arc<Self>) {
        let queued =
            std::mem::take(&mut *self.outbox.lock().unwrap_or_else(PoisonError::into_inner));
        let live: Vec<&Queued> = {
            let mut table = self.table();
            queued
                .iter()
                .filter(|q| table.waits(q.sport, q.seq))
                .collect()
        };
        let mut rest = &live[..];
        while !rest.is_empty() {
            let msgs: Vec<(&[u8], &SockAddr)> = rest
                .iter()
                .take(rawio::SEND_BATCH)
                .map(|q| (&q.packet[..], &q.to))
                .collect();
            match self.raw.send_many(&msgs).await {
                Ok(n) => rest = &rest[n.max(1).min(rest.len())..],
                Err(e) => {
                    let first = rest[0];
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    if let Some(waker) = self.table().fail(first.sport, first.seq, errno) {
                        waker.wake();
                    }
                    rest = &rest[1..];
                }
            }
        }
    }

    fn table(&self) -> MutexGuard<'_, Outstanding> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Demux for SynSocket {
    const LABEL: &'static str = "raw TCP";

    fn raw(&self) -> &RawSocket {
        &self.raw
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
        let dispatched = self.table().dispatch(&seg);
        match dispatched {
            Dispatch::Matched(Some(waker)) => waker.wake(),
            Dispatch::Unmatched => {
                self.unmatched.fetch_add(1, Ordering::Relaxed);
            }
            Dispatch::Matched(None) | Dispatch::Unrelated => {}
        }
    }
}

/// A SYN waiting in the outbox, and the probe it belongs to.
struct Queued {
    packet: [u8; 20],
    to: SockAddr,
    sport: u16,
    seq: u32,
}

/// Frees the probe's port when it ends, answered or not (timeout drops the future).
struct Forget<'a> {
    sock: &'a SynSocket,
    sport: u16,
    seq: u32,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.sock.table().remove(self.sport, self.seq);
    }
}
