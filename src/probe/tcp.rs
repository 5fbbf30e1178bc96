//! TCP connect check, and the connect helper HTTP(S) builds on.
//!
//! Both connect the way HAProxy's checks do: TCP_QUICKACK off before `connect`, so the
//! kernel holds back the last ACK of the handshake (it rides on the HTTP request, or never
//! goes out for the `tcp` check), and linger 0, so the close is a RST and leaves no
//! TIME_WAIT. For the `tcp` check the backend's listener therefore only ever sees a SYN,
//! answers it, and gets a RST: its application is never woken.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::health::result::ResultCode;

use super::errors::{connect_failure, errno_text};
use super::netns::{SocketError, SocketFactory, SocketKind};
use super::{Outcome, ProbeSpec};

/// Connects to `addr` from `source` (if any) inside `netns` (if any), with Nagle off for
/// the request that follows.
pub async fn connect(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, Outcome> {
    let stream = open(sockets, netns, addr, source).await?;
    stream
        .set_nodelay(true)
        .map_err(|e| local_error("set nodelay", e))?;
    Ok(stream)
}

/// `connect` without `TCP_NODELAY`: for the TCP check, which sends nothing.
async fn open(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, Outcome> {
    let kind = SocketKind {
        domain: Domain::for_address(addr),
        // Non-blocking from the start: saves two fcntl calls per probe.
        ty: Type::STREAM.nonblocking(),
        protocol: Some(Protocol::TCP),
    };
    // Our own namespace needs no await: that keeps this future (which every checker task
    // embeds) small; the namespace path is boxed.
    let sock = match netns {
        None => Socket::new(kind.domain, kind.ty, kind.protocol).map_err(SocketError::Create),
        Some(_) => Box::pin(sockets.socket(netns, kind)).await,
    }
    .map_err(|e| Outcome::new(ResultCode::SockErr, e.to_string()))?;
    prepare(&sock)?;
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(sock));
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| local_error(&format!("cannot bind source {src}"), e))?;
    }
    sock.connect(addr).await.map_err(|e| connect_failure(&e))
}

/// Socket options set before `connect`: delayed handshake ACK and a RST on close. Both
/// stick for the socket's life, so nothing is left to set once connected.
fn prepare(sock: &Socket) -> Result<(), Outcome> {
    sock.set_tcp_quickack(false)
        .map_err(|e| local_error("set quickack", e))?;
    sock.set_linger(Some(Duration::ZERO))
        .map_err(|e| local_error("set linger", e))
}

fn local_error(what: &str, e: std::io::Error) -> Outcome {
    Outcome::new(ResultCode::SockErr, format!("{what}: {}", errno_text(&e)))
}

/// The `tcp` check: up = the handshake completed (our side saw the SYN-ACK and is
/// connected); the socket is then reset before its delayed ACK goes out. A check that does
/// not even complete the handshake on our side is `tcp-syn`.
pub async fn probe(sockets: &SocketFactory, spec: &ProbeSpec, port: u16) -> Outcome {
    let addr = SocketAddr::new(spec.addr, port);
    match open(sockets, spec.netns.as_deref(), addr, spec.source).await {
        Ok(stream) => {
            drop(stream);
            Outcome::new(ResultCode::L4Ok, "connected")
        }
        Err(outcome) => outcome,
    }
}
