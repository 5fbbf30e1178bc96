//! ICMP echo check. One socket per (family, source address, namespace) serves every ICMP
//! probe; a reader task per socket hands replies to waiting probes (see `demux`).
//!
//! Raw sockets need CAP_NET_RAW. Without it, unprivileged ping (datagram) sockets are used
//! when `net.ipv4.ping_group_range` covers our group.

pub mod demux;
pub mod packet;

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
use super::netns::{SocketError, SocketFactory, SocketKind};
use super::rawio::recv_from;
use super::{Outcome, ProbeSpec};
use demux::{Answer, Dispatch, Outstanding};
use packet::{Received, Token};

/// Which sockets exist: one per family, source address and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SocketKey {
    v6: bool,
    source: Option<IpAddr>,
    netns: Option<String>,
}

/// Shared ICMP sockets and the unmatched-reply counter.
#[derive(Default)]
pub struct IcmpPool {
    sockets: tokio::sync::Mutex<HashMap<SocketKey, Open>>,
    unmatched: Arc<AtomicU64>,
}

/// An open socket and the task reading it.
struct Open {
    sock: Arc<EchoSocket>,
    reader: JoinHandle<()>,
}

impl Drop for IcmpPool {
    fn drop(&mut self) {
        for open in self.sockets.get_mut().values() {
            open.reader.abort();
        }
    }
}

impl IcmpPool {
    /// Echo replies received that matched no outstanding probe (late, foreign or forged).
    pub fn unmatched_replies(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    /// One echo request to `spec.addr`; the caller bounds the wait.
    pub async fn probe(&self, sockets: &SocketFactory, spec: &ProbeSpec) -> Outcome {
        let key = SocketKey {
            v6: spec.addr.is_ipv6(),
            source: spec.source,
            netns: spec.netns.clone(),
        };
        let sock = match self.socket_for(sockets, key).await {
            Ok(s) => s,
            Err(o) => return o,
        };
        sock.echo(spec.addr).await
    }

    async fn socket_for(
        &self,
        sockets: &SocketFactory,
        key: SocketKey,
    ) -> Result<Arc<EchoSocket>, Outcome> {
        let mut map = self.sockets.lock().await;
        if let Some(open) = map.get(&key)
            && !open.sock.closed.load(Ordering::Relaxed)
        {
            return Ok(open.sock.clone());
        }
        let sock = Arc::new(EchoSocket::open(sockets, &key, self.unmatched.clone()).await?);
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

/// Raw sockets see whole ICMP traffic; ping sockets only their own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Raw,
    Ping,
}

struct EchoSocket {
    fd: AsyncFd<Socket>,
    v6: bool,
    mode: Mode,
    /// Our identifier (raw sockets); ping sockets get theirs from the kernel.
    ident: u16,
    table: Mutex<Outstanding>,
    unmatched: Arc<AtomicU64>,
    /// Set when the reader stopped; the pool then opens a new socket.
    closed: AtomicBool,
}

impl EchoSocket {
    async fn open(
        sockets: &SocketFactory,
        key: &SocketKey,
        unmatched: Arc<AtomicU64>,
    ) -> Result<EchoSocket, Outcome> {
        let (domain, protocol) = if key.v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let kind = |ty| SocketKind {
            domain,
            ty,
            protocol: Some(protocol),
        };
        let netns = key.netns.as_deref();
        let (sock, mode) = match sockets.socket(netns, kind(Type::RAW)).await {
            Ok(s) => (s, Mode::Raw),
            Err(raw_err) if is_permission(&raw_err) => {
                match sockets.socket(netns, kind(Type::DGRAM)).await {
                    Ok(s) => (s, Mode::Ping),
                    Err(ping_err) => {
                        return Err(Outcome::new(
                            ResultCode::SockErr,
                            format!(
                                "ICMP needs CAP_NET_RAW (raw socket: {raw_err}) or a group in \
                             net.ipv4.ping_group_range (ping socket: {ping_err})"
                            ),
                        ));
                    }
                }
            }
            Err(e) => return Err(Outcome::new(ResultCode::SockErr, format!("ICMP {e}"))),
        };
        let local = |what: &str, e: io::Error| {
            Outcome::new(
                ResultCode::SockErr,
                format!("ICMP {what}: {}", errno_text(&e)),
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
        let ident = rand::random::<u16>();
        let table_ident = match mode {
            Mode::Raw => Some(ident),
            Mode::Ping => None,
        };
        Ok(EchoSocket {
            fd,
            v6: key.v6,
            mode,
            ident,
            table: Mutex::new(Outstanding::new(table_ident, rand::random())),
            unmatched,
            closed: AtomicBool::new(false),
        })
    }

    async fn echo(self: &Arc<Self>, addr: IpAddr) -> Outcome {
        let token: Token = rand::random();
        let (tx, rx) = oneshot::channel();
        let seq = match self.table.lock() {
            Ok(mut t) => t.insert(addr, token, tx),
            Err(_) => None,
        };
        let Some(seq) = seq else {
            return Outcome::new(ResultCode::SockErr, "too many outstanding ICMP probes");
        };
        // Removes the entry however this probe ends (reply, error or timeout).
        let _forget = Forget {
            sock: self.clone(),
            seq,
            token,
        };
        let request = packet::echo_request(self.v6, self.ident, seq, &token);
        if let Err(e) = self.send_to(&request, addr).await {
            let code = match e.raw_os_error() {
                Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => ResultCode::L4Con,
                _ => ResultCode::SockErr,
            };
            return Outcome::new(code, format!("send echo request: {}", errno_text(&e)));
        }
        match rx.await {
            Ok(Answer::Reply) => Outcome::new(ResultCode::L4Ok, "echo reply"),
            Ok(Answer::Unreachable { code }) => Outcome::new(
                ResultCode::L4Con,
                format!("destination unreachable (code {code})"),
            ),
            Err(_) => Outcome::new(ResultCode::SockErr, "ICMP reader stopped"),
        }
    }

    async fn send_to(&self, packet: &[u8], addr: IpAddr) -> io::Result<()> {
        // Port 0: raw IPv6 sockets reject any other "port", ping sockets ignore it.
        let to = SockAddr::from(SocketAddr::new(addr, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send_to(packet, &to)) {
                Ok(res) => return res.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Hands one received message to the table.
    fn dispatch(&self, buf: &[u8], from: IpAddr) {
        let msg = match from {
            IpAddr::V4(a) => packet::parse_v4(buf, self.mode == Mode::Raw, a),
            IpAddr::V6(a) => packet::parse_v6(buf, a),
        };
        if matches!(msg, Received::Other) {
            return;
        }
        let outcome = match self.table.lock() {
            Ok(mut t) => t.dispatch(&msg),
            Err(_) => Dispatch::Unmatched,
        };
        if outcome == Dispatch::Unmatched {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Drops a probe's table entry when the probe ends.
struct Forget {
    sock: Arc<EchoSocket>,
    seq: u16,
    token: Token,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if let Ok(mut t) = self.sock.table.lock() {
            t.remove(self.seq, &self.token);
        }
    }
}

/// Receives everything on the socket and dispatches it, until the pool aborts it or the
/// socket fails for good.
async fn read_loop(sock: Arc<EchoSocket>) {
    let mut buf = vec![0u8; 2048];
    let mut errors = 0u32;
    loop {
        let mut guard = match sock.fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "ICMP socket not readable; closing it");
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
                    tracing::warn!(error = %e, "ICMP socket keeps failing; closing it");
                    break;
                }
                tracing::debug!(error = %e, "ICMP receive error");
                // ICMP errors queued on the socket can fail reads once; do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_would_block) => continue,
        }
    }
    sock.closed.store(true, Ordering::Relaxed);
}

fn is_permission(e: &SocketError) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}
