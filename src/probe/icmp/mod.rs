//! ICMP echo check. One socket per (family, source address, namespace) serves every ICMP
//! probe; a reader task per socket hands replies to waiting probes (see `demux`).
//!
//! Raw sockets need CAP_NET_RAW. Without it, unprivileged ping (datagram) sockets are used
//! when `net.ipv4.ping_group_range` covers our group.

pub mod demux;
pub mod packet;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socket2::{Domain, Protocol, Type};
use tokio::sync::oneshot;

use crate::health::result::ResultCode;

use super::bpf;
use super::errors::errno_text;
use super::netns::{SocketError, SocketFactory, SocketKind};
use super::shared_socket::{self, Demux, RawSocket, SocketKey, SocketPool};
use super::{Outcome, ProbeSpec};
use demux::{Answer, Dispatch, Outstanding};
use packet::{Received, Token};

/// Shared ICMP sockets and the unmatched-reply counter.
#[derive(Default)]
pub struct IcmpPool {
    sockets: SocketPool<EchoSocket>,
}

impl IcmpPool {
    /// Echo replies received that matched no outstanding probe (late, foreign or forged).
    pub fn unmatched_replies(&self) -> u64 {
        self.sockets.unmatched_replies()
    }

    /// One echo request to `spec.addr`; the caller bounds the wait.
    pub async fn probe(&self, sockets: &SocketFactory, spec: &ProbeSpec) -> Outcome {
        let opened = self
            .sockets
            .socket_for(SocketKey::of(spec), |key, unmatched| {
                EchoSocket::open(sockets, key, unmatched)
            })
            .await;
        match opened {
            Ok(sock) => sock.echo(spec.addr).await,
            Err(o) => o,
        }
    }
}

/// Raw sockets see whole ICMP traffic; ping sockets only their own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Raw,
    Ping,
}

struct EchoSocket {
    raw: RawSocket,
    v6: bool,
    mode: Mode,
    /// Our identifier (raw sockets); ping sockets get theirs from the kernel.
    ident: u16,
    table: Mutex<Outstanding>,
    unmatched: Arc<AtomicU64>,
}

impl EchoSocket {
    async fn open(
        sockets: &SocketFactory,
        key: SocketKey,
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
        let ident = rand::random::<u16>();
        // Ping sockets already get only their own replies.
        if mode == Mode::Raw {
            let filter = if key.v6 {
                bpf::icmp_answers_v6(ident)
            } else {
                bpf::icmp_answers_v4(ident)
            };
            bpf::attach(&sock, &filter).map_err(|e| {
                Outcome::new(
                    ResultCode::SockErr,
                    format!("ICMP socket filter: {}", errno_text(&e)),
                )
            })?;
        }
        if !key.v6 {
            shared_socket::dont_fragment(&sock);
        }
        let raw = RawSocket::register(sock, key.source, Self::LABEL)?;
        let table_ident = match mode {
            Mode::Raw => Some(ident),
            Mode::Ping => None,
        };
        Ok(EchoSocket {
            raw,
            v6: key.v6,
            mode,
            ident,
            table: Mutex::new(Outstanding::new(table_ident, rand::random())),
            unmatched,
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
        if let Err(e) = self.raw.send_to(&request, addr).await {
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
}

impl Demux for EchoSocket {
    const LABEL: &'static str = "ICMP";

    fn raw(&self) -> &RawSocket {
        &self.raw
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

fn is_permission(e: &SocketError) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}
