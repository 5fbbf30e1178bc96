//! TCP connect check, and the connect helper HTTP(S) builds on.

use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::health::result::ResultCode;

use super::errors::{connect_failure, errno_text};
use super::netns::{SocketFactory, SocketKind};
use super::{Outcome, ProbeSpec};

/// Connects to `addr` from `source` (if any) inside `netns` (if any). The stream is set to
/// close with a RST (linger 0), so probes leave no TIME_WAIT behind.
pub async fn connect(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, Outcome> {
    connect_with(sockets, netns, addr, source, false).await
}

/// `connect`, optionally without acknowledging the SYN-ACK at once (`TCP_QUICKACK` off, as
/// HAProxy's connect check does): when the stream is then reset right away the backend
/// never completes the handshake, so it never has to accept (SYN, SYN-ACK, RST).
async fn connect_with(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
    delay_ack: bool,
) -> Result<TcpStream, Outcome> {
    let kind = SocketKind {
        domain: Domain::for_address(addr),
        // Non-blocking from the start: saves two fcntl calls per probe.
        ty: Type::STREAM.nonblocking(),
        protocol: Some(Protocol::TCP),
    };
    let sock = sockets
        .socket(netns, kind)
        .await
        .map_err(|e| Outcome::new(ResultCode::SockErr, e.to_string()))?;
    let local = |what: &str, e: std::io::Error| {
        Outcome::new(ResultCode::SockErr, format!("{what}: {}", errno_text(&e)))
    };
    if delay_ack {
        // Nothing will be sent, so Nagle does not matter here.
        sock.set_tcp_quickack(false)
            .map_err(|e| local("set quickack", e))?;
    } else {
        sock.set_tcp_nodelay(true)
            .map_err(|e| local("set nodelay", e))?;
    }
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(sock));
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| local(&format!("cannot bind source {src}"), e))?;
    }
    let stream = sock.connect(addr).await.map_err(|e| connect_failure(&e))?;
    SockRef::from(&stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .map_err(|e| local("set linger", e))?;
    Ok(stream)
}

/// The `tcp` check: connected = up; the connection is then reset right away, before the
/// handshake's last ACK has gone out.
pub async fn probe(sockets: &SocketFactory, spec: &ProbeSpec, port: u16) -> Outcome {
    let addr = SocketAddr::new(spec.addr, port);
    // Half-open (`connect_with(.., true)`, HAProxy's trick) is measured in
    // docs/performance.md but not on: the backend would no longer see an accepted
    // connection, which the probe_tcp tests (and operators) rely on.
    match connect_with(sockets, spec.netns.as_deref(), addr, spec.source, false).await {
        Ok(stream) => {
            drop(stream);
            Outcome::new(ResultCode::L4Ok, "connected")
        }
        Err(outcome) => outcome,
    }
}
