//! `VppService` in-process, as the gRPC server uses it: `sync` (full, per frontend,
//! unknown frontend, warmup, VPP off), `lb_state` with maglev's names, counters and the
//! status it keeps.

mod support;

#[path = "support/loopback.rs"]
mod loopback;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use loopback::{TcpBackend, free_port, sock};
use maglev::checker::Checker;
use maglev::cli::{Cli, Command};
use maglev::config;
use maglev::daemon::Daemon;
use maglev::events::EventBus;
use maglev::probe::Prober;
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::LbAsSetWeight;
use maglev::vpp::wire::Prefix;
use maglev::vpp::{SyncError, VppService};
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> Prefix {
    Prefix::new(ip("192.0.2.1"), 32)
}

fn config_text(port: u16, min: &str) -> String {
    ConfigText::new()
        .vpp_lb("30s", min, min)
        .check("tcp", "tcp", port, Timing::QUICK)
        .backend("a", "127.0.0.2", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "a = {}")
        .build()
}

/// A daemon core (checker + VPP side) in this process; no signals, no listeners.
async fn start(text: &str, vpp_api_addr: &str) -> (Arc<Daemon>, Arc<VppService>) {
    let cfg = Arc::new(config::load_str(text, Path::new("test.toml")).expect("valid config"));
    let cli = Cli::parse_from(["maglev", "daemon", "--vpp-api-addr", vpp_api_addr]);
    let Command::Daemon(args) = cli.command else {
        panic!("not the daemon role");
    };
    let bus = EventBus::new(1024);
    let checker = Checker::start(cfg.clone(), Arc::new(Prober::new()), bus.clone());
    let daemon = Arc::new(Daemon::new(args, checker, bus, cfg));
    let service = daemon.start_vpp().expect("vpp side starts");
    (daemon, service)
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lb_state_counters_and_status() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let sock = double.socket_path().to_string_lossy().to_string();
    let (daemon, service) = start(&config_text(port, "0s"), &sock).await;
    assert!(service.enabled());

    wait_for("AS a at 100", || {
        let v = double.vip(vip(), 80)?;
        (v.ases.len() == 1 && v.ases[0].weight == 100).then_some(())
    })
    .await;
    wait_for("warmup over", || daemon.vpp.get().warmup_done.then_some(())).await;
    let info = daemon.vpp.get();
    assert!(info.connected);
    assert_eq!(info.api_generation, "1.2.0");
    assert!(!info.legacy);
    assert_eq!(info.pid, double.pid());

    // Unknown frontend: NotFound. Steady state: nothing to write.
    assert!(matches!(
        service.sync(Some("nope".into())).await,
        Err(SyncError::NotFound(name)) if name == "nope"
    ));
    assert_eq!(service.sync(None).await.unwrap(), Vec::<String>::new());

    // Someone else changed a weight: a per-frontend sync puts it back.
    let c = Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    c.lb_as_set_weight(&LbAsSetWeight {
        pfx: vip(),
        protocol: 6,
        port: 80,
        as_address: ip("127.0.0.2"),
        weight: 7,
        is_flush: false,
    })
    .await
    .unwrap();
    let ops = service.sync(Some("web".into())).await.unwrap();
    assert_eq!(
        ops,
        vec!["set as 127.0.0.2 of vip 192.0.2.1/32 tcp/80 weight 100".to_string()]
    );
    assert_eq!(double.vip(vip(), 80).unwrap().ases[0].weight, 100);

    let state = service.lb_state().await.unwrap();
    assert!(!state.legacy);
    let conf = state.conf.expect("1.2.0 reports its conf");
    assert_eq!(conf.ip4_src_address.to_string(), "192.0.2.254");
    assert_eq!(state.vips.len(), 1);
    let v = &state.vips[0];
    assert_eq!(v.frontend.as_deref(), Some("web"));
    assert_eq!(v.src_ip_sticky, Some(false));
    assert_eq!(v.pool_index, Some(1));
    assert_eq!(v.ases[0].backend.as_deref(), Some("a"));
    assert_eq!(
        (v.ases[0].weight, v.ases[0].flags, v.ases[0].num_buckets),
        (100, 1, 1024)
    );

    let counters = service.counters();
    assert!(
        counters
            .api
            .iter()
            .any(|(m, r, n)| *m == "lb_as_set_weight" && *r == "ok" && *n >= 1)
    );
    assert!(
        counters
            .lbsync
            .iter()
            .any(|(s, k, _)| *s == "vip" && *k == "applied")
    );
    assert!(
        counters
            .lbsync
            .iter()
            .any(|(s, k, _)| *s == "all" && *k == "noop")
    );
    assert!(counters.writes.iter().any(|(op, _)| *op == "add_vip"));
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_refused_during_the_hold_and_when_vpp_is_off() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let sock = double.socket_path().to_string_lossy().to_string();
    let (daemon, service) = start(&config_text(free_port(), "1m"), &sock).await;
    assert!(matches!(
        service.sync(None).await,
        Err(SyncError::Warmup(_))
    ));
    assert!(!daemon.vpp.get().warmup_done);
    service.stop();

    let (daemon, service) = start(&config_text(free_port(), "0s"), "").await;
    assert!(!service.enabled());
    assert!(matches!(service.sync(None).await, Err(SyncError::Disabled)));
    assert!(service.lb_state().await.is_err());
    assert!(daemon.vpp.get().warmup_done);
}
