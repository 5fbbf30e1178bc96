//! TCP connect check, and the connect helper HTTP(S) builds on.

use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::health::result::ResultCode;

use super::errors::{connect_failure, errno_text};
use super::netns::{SocketFactory, SocketKind};
use super::{Outcome, ProbeSpec};

/// Connects to `addr` from `source` (if any) inside `netns` (if any), with Nagle off for
/// the request that follows. The stream closes with a RST (linger 0), so probes leave no
/// TIME_WAIT behind.
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
    let sock = sockets
        .socket(netns, kind)
        .await
        .map_err(|e| Outcome::new(ResultCode::SockErr, e.to_string()))?;
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(sock));
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| local_error(&format!("cannot bind source {src}"), e))?;
    }
    let stream = sock.connect(addr).await.map_err(|e| connect_failure(&e))?;
    SockRef::from(&stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .map_err(|e| local_error("set linger", e))?;
    Ok(stream)
}

fn local_error(what: &str, e: std::io::Error) -> Outcome {
    Outcome::new(ResultCode::SockErr, format!("{what}: {}", errno_text(&e)))
}

/// The `tcp` check: connected = up; the connection is then reset right away. The handshake
/// completes, so the backend sees an accepted connection (the probe_tcp tests rely on it);
/// a check that stops at the SYN-ACK is `tcp-syn`.
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
