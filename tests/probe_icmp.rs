//! ICMP echo probes to loopback (need CAP_NET_RAW or ping sockets; skipped otherwise).

use std::time::Duration;

use maglev::config::model::CheckKind;
use maglev::health::result::{ProbeResult, ResultCode};
use maglev::probe::{ProbeSpec, Prober};

const TIMEOUT: Duration = Duration::from_secs(2);

fn spec(addr: &str) -> ProbeSpec {
    ProbeSpec {
        check: CheckKind::Icmp.into(),
        addr: addr.parse().unwrap(),
        timeout: TIMEOUT,
        source: None,
        netns: None,
    }
}

/// True (after printing why) when this environment cannot send ICMP at all.
fn not_permitted(r: &ProbeResult) -> bool {
    if r.code == ResultCode::SockErr && r.detail.contains("CAP_NET_RAW") {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // CI runs as root with every capability: there a refusal is a failure, not a skip.
        let required = root && std::env::var_os("CI").is_some();
        assert!(!required, "CI as root, yet ICMP was refused: {}", r.detail);
        eprintln!("skipped: ICMP not permitted here: {}", r.detail);
        return true;
    }
    false
}

fn ipv6_loopback_available() -> bool {
    let disabled = std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
        .map(|s| s.trim() != "0")
        .unwrap_or(true);
    !disabled && std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[tokio::test]
async fn icmp_ipv4_loopback_is_up() {
    let r = Prober::new().probe(&spec("127.0.0.1")).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "echo reply");
}

#[tokio::test]
async fn icmp_ipv6_loopback_is_up() {
    if !ipv6_loopback_available() {
        eprintln!("skipped: IPv6 disabled on lo");
        return;
    }
    let r = Prober::new().probe(&spec("::1")).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}

#[tokio::test]
async fn icmp_with_source_address() {
    let mut s = spec("127.0.0.1");
    s.source = Some("127.0.0.2".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    if not_permitted(&r) {
        return;
    }
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");

    s.source = Some("203.0.113.77".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::SockErr, "{r:?}");
    assert!(r.detail.contains("203.0.113.77"), "{}", r.detail);
}

/// Many probes in flight on the one shared socket each get their own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icmp_concurrent_probes_share_one_socket() {
    let prober = Prober::new();
    let first = prober.probe(&spec("127.0.0.1")).await;
    if not_permitted(&first) {
        return;
    }
    let mut targets: Vec<String> = (1..=40).map(|i| format!("127.0.0.{i}")).collect();
    if ipv6_loopback_available() {
        targets.extend(std::iter::repeat_n("::1".to_string(), 10));
    }
    let probes = targets.iter().map(|t| {
        let prober = prober.clone();
        let s = spec(t);
        async move { prober.probe(&s).await }
    });
    let results = futures_util::future::join_all(probes).await;
    for (t, r) in targets.iter().zip(&results) {
        assert_eq!(r.code, ResultCode::L4Ok, "{t}: {r:?}");
    }
}
