//! Flush is an edge, not a level (issue 13): disabling a backend whose AS is already at
//! weight 0 (standby pool, paused, weight override 0) flushes its flows with exactly one
//! `lb_as_set_weight(weight 0, is_flush)`; a second disable writes nothing. (An AS added
//! at weight 0 never had flows: disabling it writes nothing either.)

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use daemon_support::{DaemonBuilder, eventually};
use loopback::{TcpBackend, free_port, sock};
use maglev::proto::{BackendActionRequest, SetFrontendPoolBackendWeightRequest};
use maglev::vpp::wire::Prefix;
use support::scenario::{ConfigText, Timing, live_ases};
use support::vpp_double::{ApiMode, VppDouble};

fn config(port: u16) -> String {
    let mut c = ConfigText::new()
        .vpp_lb("1h", "0s", "5s")
        .check("tcp", "tcp", port, Timing::QUICK);
    for (name, last) in [("a", 2), ("b", 3), ("c", 4), ("d", 5)] {
        c = c.backend(name, &format!("127.0.0.{last}"), "tcp");
    }
    c.frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "a = {}, c = {}, d = {}")
        .pool("web", "fallback", "b = {}")
        .build()
}

fn addr(last: u8) -> IpAddr {
    sock(last, 1).ip()
}

fn weights(double: &VppDouble) -> BTreeMap<IpAddr, u8> {
    double
        .vip(Prefix::new("192.0.2.1".parse().unwrap(), 32), 80)
        .map(|v| live_ases(&v).into_iter().collect())
        .unwrap_or_default()
}

/// `lb_as_set_weight(0, is_flush)` writes the double saw for `a`.
fn flushes(double: &VppDouble, a: IpAddr) -> usize {
    double
        .writes()
        .iter()
        .filter(|w| {
            w.msg == "lb_as_set_weight" && w.address == Some(a) && w.weight == Some(0) && w.is_flush
        })
        .count()
}

async fn wait_weights(double: &VppDouble, want: &[(u8, u8)]) {
    let want: BTreeMap<IpAddr, u8> = want.iter().map(|(l, w)| (addr(*l), *w)).collect();
    eventually(&format!("weights {want:?}"), || {
        let got = weights(double);
        let ok = got == want;
        async move { ok.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_as_already_at_zero_flushes_it_once() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    // Only b is up at first: the fallback pool serves.
    let _b = TcpBackend::start(sock(3, port)).await;
    let d = DaemonBuilder::with_vpp(config(port), double.socket_path())
        .start()
        .await;
    let mut c = d.client().await;
    wait_weights(&double, &[(2, 0), (3, 100), (4, 0), (5, 0)]).await;
    // The primary pool comes up: b stands by at 0, its flows not flushed.
    let mut _primary = Vec::new();
    for last in [2, 4, 5] {
        _primary.push(TcpBackend::start(sock(last, port)).await);
    }
    wait_weights(&double, &[(2, 100), (3, 0), (4, 100), (5, 100)]).await;

    // c paused, d overridden to 0: at 0 without a flush.
    let act = |name: &str| BackendActionRequest { name: name.into() };
    c.pause_backend(act("c")).await.expect("pause c");
    c.set_frontend_pool_backend_weight(SetFrontendPoolBackendWeightRequest {
        frontend: "web".into(),
        pool: "primary".into(),
        backend: "d".into(),
        weight: 0,
    })
    .await
    .expect("override d");
    wait_weights(&double, &[(2, 100), (3, 0), (4, 0), (5, 0)]).await;
    for last in [3, 4, 5] {
        assert_eq!(flushes(&double, addr(last)), 0, "127.0.0.{last}");
    }

    // Disabled: one flushing write each, though the weights were 0 already.
    for name in ["b", "c", "d"] {
        c.disable_backend(act(name)).await.expect("disable");
    }
    for _ in 0..100 {
        let n: Vec<usize> = [3, 4, 5]
            .iter()
            .map(|l| flushes(&double, addr(*l)))
            .collect();
        if n == [1, 1, 1] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n: Vec<usize> = [3, 4, 5]
        .iter()
        .map(|l| flushes(&double, addr(*l)))
        .collect();
    assert_eq!(
        n,
        [1, 1, 1],
        "one flush each for b, c and d: {:#?}\n{}",
        double.writes(),
        d.log()
    );

    // A second disable writes nothing; nor does b's way back to standby and out again
    // (its flows were flushed since it got to 0).
    for name in ["b", "c", "d"] {
        c.disable_backend(act(name)).await.expect("disable again");
    }
    c.enable_backend(act("b")).await.expect("enable b");
    eventually("b up again (standby)", || {
        let mut c = c.clone();
        async move {
            let b = c
                .get_backend(maglev::proto::GetBackendRequest { name: "b".into() })
                .await
                .ok()?
                .into_inner();
            (b.state() == maglev::proto::BackendState::Up).then_some(())
        }
    })
    .await;
    c.disable_backend(act("b")).await.expect("disable b again");
    tokio::time::sleep(Duration::from_millis(600)).await;
    for last in [3, 4, 5] {
        assert_eq!(flushes(&double, addr(last)), 1, "127.0.0.{last}");
    }
    // a never went to 0.
    assert_eq!(flushes(&double, addr(2)), 0);
    assert_eq!(weights(&double)[&addr(2)], 100);
}
