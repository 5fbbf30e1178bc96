//! tcp-syn (half-open) probes to loopback listeners (need CAP_NET_RAW; skipped otherwise).

#[path = "support/wire.rs"]
mod wire;

use std::time::Duration;

use maglev::config::model::CheckKind;
use maglev::health::result::{ProbeResult, ResultCode};
use maglev::probe::{ProbeSpec, Prober};
use tokio::net::TcpListener;
use wire::{SYN, Wire};

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

/// The SYN leaves with Don't Fragment set and IP ID 0: with DF the kernel need not draw
/// an ID from its shared table for every probe (a plain raw socket has DF on the wire
/// too, yet still draws one).
#[tokio::test]
async fn syn_goes_out_with_df_and_no_ip_id() {
    let Some(wire) = Wire::open() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    let seen = tokio::task::spawn_blocking(move || wire.segments(port, Duration::from_millis(300)))
        .await
        .unwrap();
    let syn = seen
        .iter()
        .find(|s| s.dport == port && s.flags == SYN)
        .unwrap_or_else(|| panic!("our SYN was not seen on lo: {seen:?}"));
    let (frag, id) = (syn.frag, syn.ip_id);
    assert_eq!(frag & 0x4000, 0x4000, "DF not set: {frag:#06x}");
    assert_eq!(id, 0, "an IP ID was drawn");
}

/// Many probes started together go out in one batch and each gets its own answer:
/// up for the listener, refused for the closed port, none mixed up.
#[tokio::test]
async fn probes_started_together_each_get_their_own_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let prober = Prober::new();
    // One probe first opens the shared socket, so the rest start in the same poll.
    if not_permitted(&prober.probe(&spec("127.0.0.1", open)).await) {
        return;
    }
    let specs: Vec<(u16, ProbeSpec)> = (0..300)
        .map(|i| {
            let port = if i % 3 == 0 { closed } else { open };
            (port, spec("127.0.0.1", port))
        })
        .collect();
    let results = futures_util::future::join_all(specs.iter().map(|(_, s)| prober.probe(s))).await;
    for ((port, _), r) in specs.iter().zip(&results) {
        let want = if *port == open {
            ResultCode::L4Ok
        } else {
            ResultCode::L4Con
        };
        assert_eq!(r.code, want, "port {port}: {r:?}");
    }
}
