//! TCP connect probes against loopback listeners: what the `tcp` check promises.
//!
//! Up means the handshake completed; a refusal is L4CON, silence is L4TOUT, and the SYN
//! leaves from the configured source. How the connection ends (linger-0 RST before the
//! delayed ACK, as HAProxy does) is checked on the wire where raw sockets are permitted.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use maglev::config::model::CheckKind;
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

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

/// The segments of one TCP conversation to `port`, as a raw socket on lo sees them.
struct Wire {
    sock: Socket,
}

/// (source address, source port, destination port, flags) of one IPv4 TCP segment.
type Seen = (IpAddr, u16, u16, u8);

impl Wire {
    /// None (with the reason printed) where raw sockets are not permitted; CI is root, so
    /// there a refusal fails the test.
    fn open() -> Option<Wire> {
        match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)) {
            Ok(sock) => {
                sock.set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                Some(Wire { sock })
            }
            Err(e) => {
                // SAFETY: geteuid has no preconditions.
                let root = unsafe { libc::geteuid() } == 0;
                assert!(
                    !(root && std::env::var_os("CI").is_some()),
                    "CI as root, yet raw TCP was refused: {e}"
                );
                eprintln!("skipped: raw TCP not permitted here: {e}");
                None
            }
        }
    }

    /// Every segment to or from `port` seen until `quiet` passes without one.
    fn segments(&self, port: u16, quiet: Duration) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut last = Instant::now();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        while last.elapsed() < quiet {
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            // SAFETY: recv initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            let hl = usize::from(pkt[0] & 0x0f) * 4;
            if pkt.len() < hl + 14 {
                continue;
            }
            let src = IpAddr::from([pkt[12], pkt[13], pkt[14], pkt[15]]);
            let sport = u16::from_be_bytes([pkt[hl], pkt[hl + 1]]);
            let dport = u16::from_be_bytes([pkt[hl + 2], pkt[hl + 3]]);
            if sport == port || dport == port {
                out.push((src, sport, dport, pkt[hl + 13]));
                last = Instant::now();
            }
        }
        out
    }
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

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
        .find(|(_, _, dport, flags)| *dport == port && *flags == SYN)
        .unwrap_or_else(|| panic!("no SYN seen: {seen:?}"));
    assert_eq!(syn.0, source, "{seen:?}");
    let probe_port = syn.1;
    let ours: Vec<u8> = seen
        .iter()
        .filter(|(src, sport, _, _)| *src == source && *sport == probe_port)
        .map(|s| s.3)
        .collect();
    let answers: Vec<u8> = seen
        .iter()
        .filter(|(_, sport, dport, _)| *sport == port && *dport == probe_port)
        .map(|s| s.3)
        .collect();
    assert_eq!(answers, [SYN | ACK], "{seen:?}");
    assert_eq!(ours.first(), Some(&SYN), "{seen:?}");
    assert_eq!(ours.last().map(|f| f & RST), Some(RST), "{seen:?}");
    assert!(!ours.contains(&ACK), "the handshake ACK went out: {seen:?}");
}
