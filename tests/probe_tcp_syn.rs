//! tcp-syn (half-open) probes to loopback listeners (need CAP_NET_RAW; skipped otherwise).

use std::time::Duration;

use maglev::config::model::CheckKind;
use maglev::health::result::{ProbeResult, ResultCode};
use maglev::probe::{ProbeSpec, Prober};
use tokio::net::TcpListener;

fn spec(addr: &str, port: u16) -> ProbeSpec {
    ProbeSpec {
        check: CheckKind::TcpSyn { port }.into(),
        addr: addr.parse().unwrap(),
        timeout: Duration::from_secs(2),
        source: None,
        netns: None,
    }
}

fn not_permitted(r: &ProbeResult) -> bool {
    if r.code == ResultCode::SockErr && r.detail.contains("CAP_NET_RAW") {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // CI runs as root with every capability: there a refusal is a failure, not a skip.
        let required = root && std::env::var_os("CI").is_some();
        assert!(
            !required,
            "CI as root, yet raw TCP was refused: {}",
            r.detail
        );
        eprintln!("skipped: raw TCP not permitted here: {}", r.detail);
        return true;
    }
    false
}

#[tokio::test]
async fn syn_to_listener_is_up_and_leaves_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "SYN-ACK");
    // The kernel reset the half-open connection, so nothing completes the handshake.
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "a connection was established: {accepted:?}"
    );
}

#[tokio::test]
async fn syn_to_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
}

#[tokio::test]
async fn syn_over_ipv6_and_with_source() {
    let prober = Prober::new();
    if let Ok(listener) = TcpListener::bind("[::1]:0").await {
        let port = listener.local_addr().unwrap().port();
        let r = prober.probe(&spec("::1", port)).await;
        if not_permitted(&r) {
            return;
        }
        assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    } else {
        eprintln!("skipped IPv6 part: no ::1");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec("127.0.0.1", port);
    s.source = Some("127.0.0.2".parse().unwrap());
    let r = prober.probe(&s).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}
