//! Signals on the real daemon: SIGHUP reloads (a good file applies, a bad one keeps the
//! running config), SIGTERM/SIGINT end open WatchEvents streams and exit 0 within 2 s,
//! and SIGTERM in the middle of a large VPP sync leaves every VIP fully old or fully new.

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use daemon_support::{DaemonBuilder, UpBackend, basic_config, eventually};
use maglev::proto::{ListBackendsRequest, WatchEventsRequest};
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::{LbAddDelAsV2, LbAddDelVipV2};
use maglev::vpp::wire::{EncapType, Prefix};
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_good_file_and_keeps_the_old_config_on_a_bad_one() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let c = d.client().await;
    let names = || {
        let mut c = c.clone();
        async move {
            c.list_backends(ListBackendsRequest {}).await.ok().map(|r| {
                r.into_inner()
                    .backends
                    .into_iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
            })
        }
    };

    let grown = basic_config(backend.port()).replace(
        "[frontends.web]",
        "[backends.extra]\naddress = \"127.0.0.5\"\nhealthcheck = \"tcp\"\n\n[frontends.web]",
    );
    d.write_config(&grown);
    d.signal(libc::SIGHUP);
    eventually("SIGHUP applied the new backend", || async {
        names().await.filter(|n| n.contains(&"extra".to_string()))
    })
    .await;

    d.write_config("[backends.broken\n");
    d.signal(libc::SIGHUP);
    eventually("the refused reload is logged", || async {
        d.log().contains("reload refused").then_some(())
    })
    .await;
    let now = names().await.expect("still answering");
    assert_eq!(
        now,
        ["down", "extra", "off", "up"],
        "the old config keeps running"
    );
}

async fn exits_on(sig: libc::c_int) {
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let mut c = d.client().await;
    let mut stream = c
        .watch_events(WatchEventsRequest {
            log: true,
            backend: true,
            frontend: true,
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    // The stream is live (the replay arrived) before the signal.
    let first = stream.message().await.expect("replay").expect("one event");
    assert!(first.kind.is_some());

    d.signal(sig);
    let status = d.wait_exit(Duration::from_secs(2));
    let status =
        status.unwrap_or_else(|| panic!("still running 2 s after signal {sig}:\n{}", d.log()));
    assert!(status.success(), "{status}");
    // The daemon ended the stream (end of stream, not a broken connection).
    let end = tokio::time::timeout(daemon_support::DEADLINE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "ended",
                Err(_) => return "broken",
            }
        }
    })
    .await;
    assert_eq!(
        end.ok(),
        Some("ended"),
        "the daemon ends the watch stream cleanly"
    );
    assert!(d.log().contains("maglev daemon stopped"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_and_exits_within_two_seconds() {
    exits_on(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_ends_streams_and_exits_within_two_seconds() {
    exits_on(libc::SIGINT).await;
}

const VIPS: usize = 100;
const NEW_ASES: u8 = 20;

fn vip_prefix(i: usize) -> Prefix {
    Prefix::new(
        IpAddr::from([10, 9, (i / 250) as u8, (i % 250 + 1) as u8]),
        32,
    )
}

fn old_ases() -> BTreeSet<IpAddr> {
    (2..=4u8).map(|l| IpAddr::from([127, 0, 0, l])).collect()
}

fn new_ases() -> BTreeSet<IpAddr> {
    (0..NEW_ASES)
        .map(|i| IpAddr::from([127, 0, 0, 10 + i]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_leaves_every_vip_fully_old_or_fully_new() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    // What an earlier writer left: VIPs without src-ip-sticky and 3 ASes each.
    let c = Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "test-setup".into(),
        ..ClientConfig::default()
    })
    .await
    .expect("connect to the double");
    for i in 0..VIPS {
        let p = vip_prefix(i);
        c.lb_add_del_vip_v2(&LbAddDelVipV2::add(p, 6, 80, EncapType::GRE4))
            .await
            .expect("add vip");
        for a in old_ases() {
            c.lb_add_del_as_v2(&LbAddDelAsV2 {
                pfx: p,
                protocol: 6,
                port: 80,
                as_address: a,
                weight: 100,
                is_del: false,
                is_flush: false,
            })
            .await
            .expect("add as");
        }
    }
    drop(c);
    // The config wants them src-ip-sticky with 20 other ASes: each VIP is re-created
    // (its ASes deleted, the VIP deleted, added, 20 ASes added), one full sync for all.
    let members: Vec<String> = (0..NEW_ASES).map(|i| format!("n{i} = {{}}")).collect();
    let mut cfg = ConfigText::new().vpp_lb("1h", "0s", "0s").check(
        "tcp",
        "tcp",
        loopback::free_port(),
        Timing::QUICK,
    );
    for i in 0..NEW_ASES {
        cfg = cfg.backend(&format!("n{i}"), &format!("127.0.0.{}", 10 + i), "tcp");
    }
    for i in 0..VIPS {
        let name = format!("f{i}");
        let addr = vip_prefix(i).addr.to_string();
        cfg = cfg
            .frontend(&name, &addr, "tcp", 80)
            .raw("src-ip-sticky = true")
            .pool(&name, "p", &members.join(", "));
    }
    // Every reply 1 ms late: the sync takes seconds, so the signal lands in its middle.
    double.set_reply_delay(Duration::from_millis(1));
    let writes_before = double.writes().len();
    let mut d = DaemonBuilder::with_vpp(cfg.build(), double.socket_path())
        .log_format("text")
        .start()
        .await;
    let per_vip = old_ases().len() + 2 + new_ases().len();
    eventually("a quarter of the sync written", || {
        let n = double.writes().len() - writes_before;
        async move { (n > VIPS * per_vip / 4).then_some(()) }
    })
    .await;
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(7));
    let status = status.unwrap_or_else(|| panic!("still running 7 s after SIGTERM:\n{}", d.log()));
    assert!(status.success(), "{status}\n{}", d.log());
    let log = d.log();
    assert!(
        !log.contains("did not finish in time"),
        "the VIPs in flight finished:\n{log}"
    );

    let (mut old, mut new) = (0, 0);
    for i in 0..VIPS {
        let p = vip_prefix(i);
        let v = double
            .vip(p, 80)
            .unwrap_or_else(|| panic!("VIP {p} missing:\n{log}"));
        let live: BTreeSet<IpAddr> = v
            .ases
            .iter()
            .filter(|a| a.used)
            .map(|a| a.address)
            .collect();
        if !v.src_ip_sticky && live == old_ases() {
            old += 1;
        } else if v.src_ip_sticky && live == new_ases() {
            new += 1;
        } else {
            panic!(
                "VIP {p} half re-created: sticky {} ASes {live:?}",
                v.src_ip_sticky
            );
        }
    }
    println!("SIGTERM mid-sync: {new} VIPs new, {old} old");
    assert!(
        old > 0 && new > 0,
        "the signal came mid-sync: {new} new, {old} old"
    );
}
