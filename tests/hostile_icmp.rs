//! Spoofed ICMP echo replies, in a network namespace the test creates (root needed; skipped
//! otherwise). The kernel of the namespace does not answer pings, so only the forger does;
//! each forgery gets one thing wrong and must not be credited. tests/probe_netns.rs covers
//! the wrong token and the faithful control.

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
/// Where the forger claims its wrong-source replies come from (lo owns all of 127/8).
const OTHER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

#[path = "support/netns.rs"]
mod netns;
use netns::TestNs;

#[path = "support/icmp_forge.rs"]
mod icmp_forge;
use icmp_forge::{into_echo_reply, next_echo_request};

/// A test namespace with echo answers off, so every reply the probe sees is a forgery.
fn hostile_ns(tag: &str) -> Option<TestNs> {
    let ns = TestNs::create(&format!("hostile-{tag}"))?;
    ns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    Some(ns)
}

fn icmp_spec(netns: &str) -> ProbeSpec {
    ProbeSpec {
        check: CheckKind::Icmp.into(),
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        timeout: TIMEOUT,
        source: None,
        netns: Some(netns.to_string()),
    }
}

/// What the forged reply gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgery {
    /// Nothing: a faithful copy (the control).
    Faithful,
    /// Another identifier; sequence and token copied.
    WrongIdent,
    /// Another sequence number; identifier and token copied.
    WrongSeq,
    /// Identifier, sequence and token copied, but sent from an address we did not probe.
    WrongSource,
}

/// Watches for the probe's echo request inside the namespace and answers it once with the
/// reply `forgery` describes. Signals readiness before the probe starts.
fn forge_reply(ns: &TestNs, forgery: Forgery) -> (mpsc::Receiver<()>, JoinHandle<io::Result<()>>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = ns.spawn(move || {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        // A bound raw socket only receives what is addressed to it, so the wrong-source
        // reply leaves through a second socket.
        let sender = match forgery {
            Forgery::WrongSource => {
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
                s.bind(&SockAddr::from(SocketAddr::new(
                    IpAddr::V4(OTHER_SOURCE),
                    0,
                )))?;
                s
            }
            _ => sock.try_clone()?,
        };
        sock.set_read_timeout(Some(Duration::from_secs(3)))?;
        let _ = ready_tx.send(());
        let (prober, mut reply) = next_echo_request(&sock)?;
        match forgery {
            Forgery::Faithful | Forgery::WrongSource => {}
            Forgery::WrongIdent => reply[4] ^= 0xff,
            Forgery::WrongSeq => reply[7] ^= 0xff,
        }
        into_echo_reply(&mut reply);
        let to = SockAddr::from(SocketAddr::new(IpAddr::V4(prober), 0));
        sender.send_to(&reply, &to)?;
        Ok(())
    });
    (ready_rx, handle)
}

/// Probes once while `forgery` is sent; returns the result code and the growth of the
/// unmatched-reply counter.
async fn probe_with(ns: &TestNs, prober: &Prober, forgery: Forgery) -> (ResultCode, u64) {
    let before = prober.unmatched_replies();
    let (ready, forger) = forge_reply(ns, forgery);
    ready.recv().expect("forger ready");
    let r = prober.probe(&icmp_spec(&ns.name)).await;
    forger
        .join()
        .expect("forger thread")
        .expect("forger saw the request and answered");
    (r.code, prober.unmatched_replies() - before)
}

#[tokio::test]
async fn reply_with_wrong_identifier_is_not_credited() {
    let Some(ns) = hostile_ns("ident") else {
        return;
    };
    let prober = Prober::new();
    let (code, _) = probe_with(&ns, &prober, Forgery::WrongIdent).await;
    // A raw socket sees it and drops it; a ping socket's kernel filter never delivers it.
    assert_eq!(code, ResultCode::L4Tout);
}

#[tokio::test]
async fn reply_with_wrong_sequence_is_not_credited() {
    let Some(ns) = hostile_ns("seq") else {
        return;
    };
    let prober = Prober::new();
    let (code, unmatched) = probe_with(&ns, &prober, Forgery::WrongSeq).await;
    assert_eq!(code, ResultCode::L4Tout);
    assert!(unmatched >= 1, "the forged reply was not seen and counted");
}

#[tokio::test]
async fn right_reply_from_the_wrong_source_is_not_credited() {
    let Some(ns) = hostile_ns("src") else {
        return;
    };
    let prober = Prober::new();
    let (code, unmatched) = probe_with(&ns, &prober, Forgery::WrongSource).await;
    assert_eq!(code, ResultCode::L4Tout);
    assert!(unmatched >= 1, "the forged reply was not seen and counted");

    // Control: the same forger, sending from the probed address, is credited.
    let (code, _) = probe_with(&ns, &prober, Forgery::Faithful).await;
    assert_eq!(code, ResultCode::L4Ok);
}
