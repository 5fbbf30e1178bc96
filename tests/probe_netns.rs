//! Probes inside network namespaces the tests create themselves (root and iproute2 needed;
//! skipped when not root).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use maglev::config::model::CheckKind;
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const TIMEOUT: Duration = Duration::from_millis(1000);

#[path = "support/netns.rs"]
mod netns;
use netns::TestNs;

#[path = "support/icmp_forge.rs"]
mod icmp_forge;
use icmp_forge::{into_echo_reply, next_echo_request};

fn spec(check: CheckKind, netns: &str) -> ProbeSpec {
    ProbeSpec {
        check: check.into(),
        addr: "127.0.0.1".parse().unwrap(),
        timeout: TIMEOUT,
        source: None,
        netns: Some(netns.to_string()),
    }
}

/// Up against a listener that exists only inside the namespace: the same address and
/// port in ours refuses. (The check resets before the handshake's last ACK, so the
/// listener never accepts anything.)
#[tokio::test]
async fn tcp_probe_runs_inside_the_namespace() {
    let Some(ns) = TestNs::create("tcp") else {
        return;
    };
    let (port_tx, port_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = ns.spawn(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let _ = port_tx.send(listener.local_addr()?.port());
        // Listen until the probe is over.
        let _ = done_rx.recv();
        drop(listener);
        Ok(())
    });
    let port = port_rx.recv().expect("listener in namespace");
    let r = Prober::new()
        .probe(&spec(CheckKind::Tcp { port }, &ns.name))
        .await;
    let ours = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    let _ = done_tx.send(());
    server.join().unwrap().unwrap();
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    let refused = ours.expect_err("nothing listens on that port in our namespace");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn missing_namespace_is_a_socket_error() {
    let name = format!("maglev-test-{}-absent", std::process::id());
    let r = Prober::new()
        .probe(&spec(CheckKind::Tcp { port: 80 }, &name))
        .await;
    assert_eq!(r.code, ResultCode::SockErr, "{r:?}");
    assert!(
        r.detail.contains("cannot open network namespace"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains(&name), "{}", r.detail);
}

#[tokio::test]
async fn icmp_times_out_when_echo_is_ignored() {
    let Some(ns) = TestNs::create("icmptout") else {
        return;
    };
    ns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    let r = Prober::new().probe(&spec(CheckKind::Icmp, &ns.name)).await;
    assert_eq!(r.code, ResultCode::L4Tout, "{r:?}");
}

/// Watches for our probe's echo request inside the namespace and answers it with a forged
/// reply that has the right identifier and sequence; the payload is copied when
/// `copy_token`, else altered.
fn forge_reply(ns: &TestNs, copy_token: bool) -> (mpsc::Receiver<()>, JoinHandle<io::Result<()>>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = ns.spawn(move || {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))?;
        let _ = ready_tx.send(());
        let (_, mut reply) = next_echo_request(&sock)?;
        if !copy_token {
            for b in &mut reply[8..] {
                *b ^= 0xff;
            }
        }
        into_echo_reply(&mut reply);
        let to = SockAddr::from(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        sock.send_to(&reply, &to)?;
        Ok(())
    });
    (ready_rx, handle)
}

#[tokio::test]
async fn forged_reply_without_the_token_is_not_credited() {
    let Some(ns) = TestNs::create("forge") else {
        return;
    };
    ns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    let prober = Prober::new();

    // Right identifier and sequence, wrong token: dropped, counted, the probe times out.
    let (ready, forger) = forge_reply(&ns, false);
    ready.recv().expect("forger ready");
    let r = prober.probe(&spec(CheckKind::Icmp, &ns.name)).await;
    forger.join().unwrap().expect("forger saw the request");
    assert_eq!(r.code, ResultCode::L4Tout, "{r:?}");
    assert!(
        prober.unmatched_replies() >= 1,
        "forged reply was not counted"
    );

    // Control: the same forgery with the token copied is credited, so the socket did see it.
    let (ready, forger) = forge_reply(&ns, true);
    ready.recv().expect("forger ready");
    let r = prober.probe(&spec(CheckKind::Icmp, &ns.name)).await;
    forger.join().unwrap().expect("forger saw the request");
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}
