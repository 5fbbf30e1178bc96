//! TCP connect check, and the connect helper HTTP(S) builds on.
//!
//! Both connect the way HAProxy's checks do: TCP_QUICKACK off before `connect`, so the
//! kernel holds back the last ACK of the handshake (it rides on the HTTP request, or never
//! goes out for the `tcp` check), and linger 0, so the close is a RST and leaves no
//! TIME_WAIT. For the `tcp` check the backend's listener therefore only ever sees a SYN,
//! answers it, and gets a RST: its application is never woken.
//!
//! The `tcp` check does not hand its socket to tokio: a second `connect` right after the
//! first says whether the handshake is already done (it is on loopback, where the SYN-ACK
//! is handled within the first call), and otherwise the socket waits for its one writable event in the
//! [`ConnectPoller`]'s epoll set (one `epoll_ctl` per check instead of tokio's two).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::health::result::ResultCode;

use super::connect_poll::ConnectPoller;
use super::errors::{connect_failure, errno_text};
use super::netns::{SocketError, SocketFactory, SocketKind};
use super::sockopt;
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

/// A non-blocking TCP socket for `addr` in `netns`.
async fn new_socket(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
) -> Result<Socket, Outcome> {
    let kind = SocketKind {
        domain: Domain::for_address(addr),
        // Non-blocking from the start: saves two fcntl calls per probe.
        ty: Type::STREAM.nonblocking(),
        protocol: Some(Protocol::TCP),
    };
    // Our own namespace needs no await: that keeps this future (which every checker task
    // embeds) small; the namespace path is boxed.
    match netns {
        None => Socket::new(kind.domain, kind.ty, kind.protocol).map_err(SocketError::Create),
        Some(_) => Box::pin(sockets.socket(netns, kind)).await,
    }
    .map_err(|e| Outcome::new(ResultCode::SockErr, e.to_string()))
}

/// A connected tokio stream (tokio waits for the handshake): for HTTP(S).
async fn open(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, Outcome> {
    let sock = new_socket(sockets, netns, addr).await?;
    prepare(&sock)?;
    if let Some(src) = source {
        bind_source(&sock, src)?;
    }
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(sock));
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

/// Binds `sock` to the source address with the port left to `connect`, as HAProxy does
/// (IP_BIND_ADDRESS_NO_PORT): a plain `bind(src, 0)` reserves a port from the ephemeral
/// range for that address alone, searching the bind table for a free one; left to
/// `connect`, the port only has to be unique per destination, so thousands of checks in
/// flight from one source address do not run out of ports.
fn bind_source(sock: &Socket, src: IpAddr) -> Result<(), Outcome> {
    sockopt::set_int(sock, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)
        .map_err(|e| local_error("set IP_BIND_ADDRESS_NO_PORT", e))?;
    sock.bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| local_error(&format!("cannot bind source {src}"), e))
}

fn local_error(what: &str, e: std::io::Error) -> Outcome {
    Outcome::new(ResultCode::SockErr, format!("{what}: {}", errno_text(&e)))
}

/// The `tcp` check: up = the handshake completed (our side saw the SYN-ACK and is
/// connected); the socket is then reset before its delayed ACK goes out. A check that does
/// not even complete the handshake on our side is `tcp-syn`.
pub async fn probe(
    sockets: &SocketFactory,
    poller: &ConnectPoller,
    spec: &ProbeSpec,
    port: u16,
) -> Outcome {
    let addr = SocketAddr::new(spec.addr, port);
    let sock = match start(sockets, spec.netns.as_deref(), addr, spec.source).await {
        Ok(Started::Connected) => return connected(),
        Ok(Started::InProgress(sock)) => sock,
        Err(outcome) => return outcome,
    };
    // On loopback the handshake is done by the time `connect` returns (the SYN-ACK is
    // processed within the call): asking again answers at once, without any epoll.
    if let Some(done) = finished(&sock, addr) {
        return done;
    }
    // Still in progress (a remote backend): wait for the one writable event.
    let mut again = false;
    loop {
        if let Err(e) = poller.ready(sock.as_raw_fd(), again).await {
            return local_error("wait for connect", e);
        }
        if let Some(done) = finished(&sock, addr) {
            return done;
        }
        again = true;
    }
}

fn connected() -> Outcome {
    Outcome::new(ResultCode::L4Ok, "connected")
}

/// How a non-blocking `connect` began.
enum Started {
    /// Done within the call (rare: TCP connects to loopback still say EINPROGRESS).
    Connected,
    InProgress(Socket),
}

/// A prepared socket with its connect started.
async fn start(
    sockets: &SocketFactory,
    netns: Option<&str>,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<Started, Outcome> {
    let sock = new_socket(sockets, netns, addr).await?;
    prepare(&sock)?;
    if let Some(src) = source {
        bind_source(&sock, src)?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => Ok(Started::Connected),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Started::InProgress(sock)),
        Err(e) => Err(connect_failure(&e)),
    }
}

/// How the connect of `sock` ended, or None while it is still in progress. A second
/// `connect` says it in one call: 0 (or EISCONN) once established, the error that ended
/// it (ECONNREFUSED, ETIMEDOUT, ...), or EALREADY.
fn finished(sock: &Socket, addr: SocketAddr) -> Option<Outcome> {
    match sock.connect(&addr.into()) {
        Ok(()) => Some(connected()),
        Err(e) => match e.raw_os_error() {
            Some(libc::EISCONN) => Some(connected()),
            Some(libc::EALREADY | libc::EINPROGRESS | libc::EINTR) => None,
            _ => Some(connect_failure(&e)),
        },
    }
}
