//! TCP connect probes against loopback listeners: what the `tcp` check promises.
//!
//! Up means the handshake completed; a refusal is L4CON, silence is L4TOUT, and the SYN
//! leaves from the configured source. How the connection ends (linger-0 RST before the
//! delayed ACK, as HAProxy does) is checked on the wire where raw sockets are permitted.

#[path = "support/wire.rs"]
mod wire;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use maglev::config::model::CheckKind;
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use wire::{ACK, RST, SYN, Wire};

const TIMEOUT: Duration = Duration::from_secs(2);

fn spec(addr: &str, port: u16) -> ProbeSpec {
    ProbeSpec {
        check: CheckKind::Tcp { port }.into(),
        addr: addr.parse().unwrap(),
        timeout: TIMEOUT,
        source: None,
        netns: None,
    }
}

/// A loopback listener whose accept queue is full (backlog 0 holds one connection, which
/// is returned): the kernel drops further SYNs until the queue has room.
fn full_listener() -> (Socket, std::net::SocketAddr, std::net::TcpStream) {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let at = listener.local_addr().unwrap().as_socket().unwrap();
    let queued = std::net::TcpStream::connect(at).unwrap();
    (listener, at, queued)
}

#[tokio::test]
async fn tcp_up_when_the_handshake_completes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "connected");
}

#[tokio::test]
async fn tcp_down_on_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert_eq!(r.detail, "connection refused");
}

/// A listener whose accept queue is full drops new SYNs: the handshake never completes.
#[tokio::test]
async fn tcp_timeout_when_no_syn_ack_comes() {
    // Nobody ever accepts the queued connection.
    let (_listener, at, _queued) = full_listener();
    let mut s = spec("127.0.0.1", at.port());
    s.timeout = Duration::from_millis(400);
    let started = Instant::now();
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::L4Tout, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{r:?}");
}

/// A handshake that completes only after `connect` has returned in progress (the first SYN
/// is dropped on a full accept queue, the retransmit a second later is answered): the check
/// waits for the socket's writable event and reports up.
#[tokio::test]
async fn tcp_up_when_the_handshake_completes_late() {
    let (listener, at, queued) = full_listener();
    // Makes room in the queue while the probe's first SYN is already dropped.
    let accepter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let taken = listener.accept().unwrap();
        drop(queued);
        // Keeps the listener open until the retransmitted SYN has been answered.
        std::thread::sleep(Duration::from_secs(3));
        drop(taken);
    });
    let mut s = spec("127.0.0.1", at.port());
    s.timeout = Duration::from_secs(3);
    let started = Instant::now();
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered before the queue had room: {r:?}"
    );
    accepter.join().unwrap();
}

/// A listener that goes away while the SYN waits for its retransmit: the check reports the
/// refusal that ends the wait.
#[tokio::test]
async fn tcp_refused_while_waiting() {
    let (listener, at, queued) = full_listener();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(listener);
        drop(queued);
    });
    let mut s = spec("127.0.0.1", at.port());
    s.timeout = Duration::from_secs(3);
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert_eq!(r.detail, "connection refused");
    closer.join().unwrap();
}

#[tokio::test]
async fn tcp_unusable_source_is_a_socket_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec("127.0.0.1", port);
    // TEST-NET-3: not assigned to any local interface.
    s.source = Some("203.0.113.77".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::SockErr, "{r:?}");
    assert!(r.detail.contains("203.0.113.77"), "{}", r.detail);
}

#[tokio::test]
async fn tcp_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: IPv6 loopback not available");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let r = Prober::new().probe(&spec("::1", port)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}

/// SYN from the configured source, SYN-ACK back, then our RST: no bare ACK completes the
/// backend's side of the handshake, so its application is never involved.
#[tokio::test]
async fn tcp_check_on_the_wire_from_its_source() {
    let Some(wire) = Wire::open() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec("127.0.0.1", port);
    s.source = Some("127.0.0.2".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    let seen = tokio::task::spawn_blocking(move || wire.segments(port, Duration::from_millis(300)))
        .await
        .unwrap();
    let source: IpAddr = "127.0.0.2".parse().unwrap();
    let syn = seen
        .iter()
        .find(|s| s.dport == port && s.flags == SYN)
        .unwrap_or_else(|| panic!("no SYN seen: {seen:?}"));
    assert_eq!(syn.src, source, "{seen:?}");
    let probe_port = syn.sport;
    let ours: Vec<u8> = seen
        .iter()
        .filter(|s| s.src == source && s.sport == probe_port)
        .map(|s| s.flags)
        .collect();
    let answers: Vec<u8> = seen
        .iter()
        .filter(|s| s.sport == port && s.dport == probe_port)
        .map(|s| s.flags)
        .collect();
    assert_eq!(answers, [SYN | ACK], "{seen:?}");
    assert_eq!(ours.first(), Some(&SYN), "{seen:?}");
    assert_eq!(ours.last().map(|f| f & RST), Some(RST), "{seen:?}");
    assert!(!ours.contains(&ACK), "the handshake ACK went out: {seen:?}");
}
