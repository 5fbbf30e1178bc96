//! Load and churn against the real daemon (issue 10): a reload storm, a flapping backend,
//! and 1,000 WatchEvents subscribers plus 50 ctl clients while backends change. Each test
//! prints what it measured.

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, DaemonBuilder};
use loopback::{HttpBackend, TcpBackend, free_port, sock, tcp_backends};
use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::*;
use support::scenario::{ConfigText, Timing, live_ases};
use support::vpp_double::{ApiMode, VppDouble};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

const LONG: Duration = Duration::from_secs(60);

/// Live ASes of one VIP: address -> weight.
fn vip_weights(double: &VppDouble, addr: &str, port: u16) -> Option<Vec<(IpAddr, u8)>> {
    let p = maglev::vpp::wire::Prefix::new(ip(addr), 32);
    double.vip(p, port).map(|v| live_ases(&v))
}

// ---------------------------------------------------------------- reload storm

/// `stable` (a, b, c) never changes; `churn` holds a, b and, per variant, d changed,
/// d removed, or e added.
fn storm_config(port: u16, variant: usize) -> String {
    let (d_backend, churn_members) = match variant % 4 {
        // base
        0 => (true, "a = {}, b = {}, d = {}"),
        // add e
        1 => (true, "a = {}, b = {}, d = {}, e = {}"),
        // remove d
        2 => (false, "a = {}, b = {}"),
        // change d's weight
        _ => (true, "a = {}, b = {}, d = { weight = 30 }"),
    };
    let mut cfg = ConfigText::new()
        .transition_history(5)
        .vpp_lb("60s", "0s", "1s")
        .check("tcp", "tcp", port, Timing::QUICK_FAST)
        .backend("a", "127.0.0.2", "tcp")
        .backend("b", "127.0.0.3", "tcp")
        .backend("c", "127.0.0.4", "tcp");
    if d_backend {
        cfg = cfg.backend("d", "127.0.0.5", "tcp");
    }
    cfg.backend("e", "127.0.0.6", "tcp")
        .frontend("stable", "192.0.2.10", "tcp", 80)
        .pool("stable", "all", "a = {}, b = {}, c = {}")
        .frontend("churn", "192.0.2.11", "tcp", 80)
        .pool("churn", "all", churn_members)
        .build()
}

async fn history(c: &mut MaglevClient<Channel>, name: &str) -> (i32, Vec<Transition>) {
    let b = c
        .get_backend(GetBackendRequest { name: name.into() })
        .await
        .expect("get backend")
        .into_inner();
    (b.state, b.history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_storm_keeps_unchanged_backends_and_writes_only_what_changed() {
    let port = free_port();
    let _backends = tcp_backends(port, 2..=6).await;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let mut d = DaemonBuilder::with_vpp(storm_config(port, 0), double.socket_path())
        .start()
        .await;
    let mut c = d.client().await;
    let base_churn = vec![
        (ip("127.0.0.2"), 100),
        (ip("127.0.0.3"), 100),
        (ip("127.0.0.5"), 100),
    ];
    let stable = vec![
        (ip("127.0.0.2"), 100),
        (ip("127.0.0.3"), 100),
        (ip("127.0.0.4"), 100),
    ];
    d.wait_for("first sync", LONG, || {
        (vip_weights(&double, "192.0.2.11", 80)? == base_churn
            && vip_weights(&double, "192.0.2.10", 80)? == stable)
            .then_some(())
    })
    .await;
    let mut before = Vec::new();
    for name in ["a", "b", "c"] {
        before.push(history(&mut c, name).await);
    }
    let writes_before = double.writes().len();
    let (fds0, rss0) = (d.fd_count(), d.status_field("VmRSS"));

    // 100 reloads in 10 s: variants 1, 2, 3, 0, ... (ends on the base), by RPC and SIGHUP.
    let t0 = Instant::now();
    let mut rpc_ok = 0;
    for i in 1..=100usize {
        d.write_config_atomic(&storm_config(port, i));
        if i % 2 == 0 {
            d.signal(libc::SIGHUP);
        } else {
            let r = c
                .reload_config(ReloadConfigRequest {})
                .await
                .expect("reload rpc")
                .into_inner();
            assert!(r.ok && r.applied, "reload {i}: {r:?}");
            rpc_ok += 1;
        }
        let next = t0 + Duration::from_millis(100 * i as u64);
        tokio::time::sleep_until(next.into()).await;
    }
    let storm = t0.elapsed();
    assert!(d.alive(), "daemon died in the storm:\n{}", d.log());
    // Settle on the base config (a last RPC reload makes sure it is the running one).
    let r = c
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(r.ok);
    d.wait_for("VPP back on the base config", LONG, || {
        (vip_weights(&double, "192.0.2.11", 80)? == base_churn).then_some(())
    })
    .await;
    // No write may be still on its way: the reconciler is VPP's only writer and answers a
    // full sync only after a pass over the running (base) config, so once it has answered
    // every write the storm caused is in the double's log.
    let settle = c
        .sync_vpplb_state(SyncVpplbStateRequest {
            frontend: String::new(),
        })
        .await
        .expect("sync after the storm")
        .into_inner();

    for (name, old) in ["a", "b", "c"].iter().zip(&before) {
        let now = history(&mut c, name).await;
        assert_eq!(&now, old, "backend {name} lost its state or history");
        assert_eq!(now.0, BackendState::Up as i32);
    }
    let writes: Vec<_> = double.writes().split_off(writes_before);
    let stable_writes = writes
        .iter()
        .filter(|w| w.prefix.is_some_and(|p| p.addr == ip("192.0.2.10")))
        .count();
    let unchanged_as_writes = writes
        .iter()
        .filter(|w| {
            w.address
                .is_some_and(|a| a == ip("127.0.0.2") || a == ip("127.0.0.3"))
        })
        .count();
    let conf_writes = writes.iter().filter(|w| w.msg == "lb_conf").count();
    let vip_writes = writes
        .iter()
        .filter(|w| w.msg.starts_with("lb_add_del_vip"))
        .count();
    let (fds1, rss1) = (d.fd_count(), d.status_field("VmRSS"));
    println!(
        "reload storm: 100 reloads ({rpc_ok} by RPC, {} by SIGHUP) in {:.1} s; {} VPP writes \
         (stable VIP {stable_writes}, unchanged ASes {unchanged_as_writes}, conf {conf_writes}, \
         VIP add/del {vip_writes}); fds {fds0} -> {fds1}, VmRSS {rss0} -> {rss1} KiB; \
         the sync after it wrote {:?}",
        100 - rpc_ok,
        storm.as_secs_f64(),
        writes.len(),
        settle.operations
    );
    assert_eq!(stable_writes, 0, "{writes:?}");
    assert_eq!(unchanged_as_writes, 0, "{writes:?}");
    assert_eq!((conf_writes, vip_writes), (0, 0), "{writes:?}");
    assert!(writes.iter().all(|w| w.retval == 0), "{writes:?}");
    // Every write concerns d or e, at most a few per reload.
    assert!(
        writes.iter().all(|w| w
            .address
            .is_some_and(|a| a == ip("127.0.0.5") || a == ip("127.0.0.6"))),
        "{writes:?}"
    );
    assert!(writes.len() <= 3 * 101, "{} writes", writes.len());
}

// ---------------------------------------------------------------- flapping

fn flap_config(port: u16, rise: u32, fall: u32) -> String {
    let timing = Timing {
        interval: "100ms",
        fast_down: Some(("100ms", "100ms")),
        timeout: "90ms",
        rise,
        fall,
    };
    ConfigText::new()
        .transition_history(5)
        .vpp_lb("60s", "0s", "0s")
        .check("http", "http", port, timing)
        .backend("flap", "127.0.0.2", "http")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .raw("flush-on-down = false")
        .pool("web", "all", "flap = {}")
        .build()
}

/// HAProxy's counter on a pass/fail sequence: the number of state changes (from unknown).
fn haproxy_transitions(results: &[bool], rise: u32, fall: u32) -> usize {
    let max = rise + fall - 1;
    let (mut health, mut up, mut changes) = (rise - 1, None::<bool>, 0);
    for &pass in results {
        if pass {
            health = (health + 1).min(max);
            if health >= rise {
                health = max;
            }
        } else {
            health = health.saturating_sub(1);
            if health < rise {
                health = 0;
            }
        }
        let now = health >= rise;
        if up != Some(now) {
            changes += 1;
            up = Some(now);
        }
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_backend_transitions_bounded_by_rise_fall_and_writes_by_transitions() {
    let (rise, fall) = (2u32, 3u32);
    let port = free_port();
    // 40 probes alternating, then 36 in runs of 3 passes / 3 fails, then steady pass.
    let script = |n: usize| match n {
        0..40 => n.is_multiple_of(2),
        40..76 => (n - 40) % 6 < 3,
        _ => true,
    };
    let backend = HttpBackend::start(sock(2, port), script).await;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let d = DaemonBuilder::with_vpp(flap_config(port, rise, fall), double.socket_path())
        .start()
        .await;
    let mut c = d.client().await;
    let mut events = c
        .watch_events(WatchEventsRequest {
            backend: true,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    // Transitions seen so far, shared so the test can wait on the count.
    let seen_so_far = Arc::new(AtomicUsize::new(0));
    let counted = seen_so_far.clone();
    let counter = tokio::spawn(async move {
        let mut n = 0usize;
        while let Some(Ok(e)) = events.next().await {
            if let Some(event::Kind::Backend(b)) = e.kind {
                // The first probe may decide before we subscribed: count that one too.
                let from_unknown = b
                    .transition
                    .is_some_and(|t| t.from() == BackendState::Unknown);
                if n == 0 && !from_unknown {
                    n += 1;
                }
                n += 1;
                counted.store(n, Ordering::SeqCst);
            }
        }
        n
    });
    d.wait_for("the script to run out", LONG, || {
        (backend.probes().len() > 85).then_some(())
    })
    .await;
    // Instead of sleeping for the last events: wait until the stream has delivered as many
    // transitions as the probes so far call for. Past the script every probe passes, so
    // that count is final; an extra transition arriving later still fails `seen == model`.
    d.wait_for("the transitions of the probes so far", LONG, || {
        let results: Vec<bool> = backend.probes().iter().map(|p| p.1).collect();
        let due = haproxy_transitions(&results, rise, fall);
        (seen_so_far.load(Ordering::SeqCst) >= due).then_some(())
    })
    .await;
    let probes: Vec<bool> = backend.probes().iter().map(|p| p.1).collect();
    let b = c
        .get_backend(GetBackendRequest {
            name: "flap".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(b.state(), BackendState::Up);
    drop(c);
    drop(d);
    let seen = tokio::time::timeout(Duration::from_secs(5), counter)
        .await
        .expect("stream ends with the daemon")
        .expect("counter task");

    let alternating = haproxy_transitions(&probes[..40], rise, fall);
    let model = haproxy_transitions(&probes, rise, fall);
    let bound = 1 + probes.len() / rise.min(fall) as usize;
    let writes: Vec<_> = double
        .writes()
        .into_iter()
        .filter(|w| w.address == Some(ip("127.0.0.2")))
        .collect();
    println!(
        "flapping: {} probes, {seen} transitions (HAProxy model {model}, of which {alternating} in \
         the 40 alternating probes; bound {bound}), {} VPP writes for the backend",
        probes.len(),
        writes.len()
    );
    // Strict alternation flips at most once after the first result decided.
    assert!(alternating <= 2);
    assert_eq!(seen, model, "transitions differ from HAProxy's counter");
    assert!(seen <= bound);
    // One AS add, then at most one weight change per transition.
    assert!(writes.len() <= seen + 1, "{writes:?}");
    assert!(writes.iter().all(|w| w.retval == 0));
}

// ---------------------------------------------------------------- many watchers

async fn channel(d: &Daemon) -> Channel {
    Endpoint::from_shared(format!("http://{}", d.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// When each probe reached `backend`.
fn arrivals(backend: &HttpBackend) -> Vec<Instant> {
    backend.probes().iter().map(|(at, _)| *at).collect()
}

/// Gaps between consecutive arrivals in `[from, to)`.
fn gaps(arrivals: &[Instant], from: Instant, to: Instant) -> Vec<Duration> {
    let inside: Vec<Instant> = arrivals
        .iter()
        .copied()
        .filter(|t| *t >= from && *t < to)
        .collect();
    inside.windows(2).map(|w| w[1] - w[0]).collect()
}

fn stats(g: &[Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = g.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    let p95 = ms.get(ms.len() * 95 / 100).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    (mean, p95, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_watchers_and_fifty_ctl_clients_leave_probe_timing_alone() {
    const INTERVAL_MS: f64 = 500.0;
    let port = free_port();
    // The steady backend answers HTTP, so every probe reaches its application and is timed
    // (a tcp check resets before the handshake ends: nothing is ever accepted).
    let steady = HttpBackend::start(sock(2, port), |_| true).await;
    let mut toggler = TcpBackend::start(sock(3, port)).await;
    let cfg = format!(
        r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.steady]
type = "tcp"
port = {port}
interval = "500ms"
fast-interval = "500ms"
down-interval = "500ms"
timeout = "400ms"
rise = 1
fall = 1

[healthchecks.steady-http]
type = "http"
port = {port}
interval = "500ms"
fast-interval = "500ms"
down-interval = "500ms"
timeout = "400ms"
rise = 1
fall = 1

[backends.steady]
address = "127.0.0.2"
healthcheck = "steady-http"
[backends.toggler]
address = "127.0.0.3"
healthcheck = "steady"

[frontends.web]
address = "192.0.2.1"
protocol = "tcp"
port = 80
  [[frontends.web.pools]]
  name = "all"
  backends = {{ steady = {{}}, toggler = {{}} }}
"#
    );
    // debug: plenty of log events for the watchers.
    let mut d = DaemonBuilder::new(cfg).log_level("debug").spawn();
    d.wait_grpc().await;
    let addr = d.grpc_addr.clone();

    // Baseline timing, nobody watching: the gaps this box gives without load, against
    // which the gaps under load are judged.
    let base_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let base = stats(&gaps(&arrivals(&steady), base_from, Instant::now()));

    // 900 silent watchers (never read) on 18 connections, 100 readers on 4 others.
    let request = WatchEventsRequest {
        log: true,
        log_level: LogLevel::Trace as i32,
        backend: true,
        frontend: true,
        ..Default::default()
    };
    let mut silent = Vec::new();
    for _ in 0..18 {
        let ch = channel(&d).await;
        for _ in 0..50 {
            let s = MaglevClient::new(ch.clone())
                .watch_events(request.clone())
                .await
                .expect("silent watcher")
                .into_inner();
            silent.push(s);
        }
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let ch = channel(&d).await;
        for _ in 0..25 {
            let mut s = MaglevClient::new(ch.clone())
                .watch_events(request.clone())
                .await
                .expect("reader")
                .into_inner();
            readers.push(tokio::spawn(async move {
                let (mut events, mut toggles) = (0usize, 0usize);
                while let Ok(Some(Ok(e))) =
                    tokio::time::timeout(Duration::from_secs(3), s.next()).await
                {
                    events += 1;
                    if let Some(event::Kind::Backend(b)) = &e.kind
                        && b.backend == "toggler"
                    {
                        toggles += 1;
                    }
                }
                (events, toggles)
            }));
        }
    }
    assert_eq!(silent.len() + readers.len(), 1000);

    // Under load: the toggler changes every 700 ms, 50 ctl clients run at once.
    let load_from = Instant::now();
    let ctl_bin = assert_cmd::cargo::cargo_bin("maglev");
    let ctl = tokio::task::spawn_blocking(move || {
        let children: Vec<_> = (0..50)
            .map(|_| {
                std::process::Command::new(&ctl_bin)
                    .args(["ctl", "--server", &addr, "show", "backends"])
                    .env_remove("MAGLEV_SERVER")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn ctl")
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("ctl output"))
            .filter(|o| !o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect::<Vec<_>>()
    });
    for toggled in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if toggled % 2 == 0 {
            toggler.down().await;
        } else {
            toggler.up().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let load_to = Instant::now();
    let ctl_failures = ctl.await.expect("ctl task");
    let load = stats(&gaps(&arrivals(&steady), load_from, load_to));

    // The silent watchers held nothing up (the readers and the probes above went on);
    // each is still attached with its buffered events (and a LostEvents marker had it
    // fallen more than the bus capacity behind).
    let (mut lost, mut drained) = (0u64, 0usize);
    let first = silent.first_mut().expect("a silent watcher");
    while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_millis(500), first.next()).await
    {
        drained += 1;
        if let Some(event::Kind::Lost(l)) = e.kind {
            lost += l.count;
        }
    }
    let mut reader_events = Vec::new();
    drop(silent);
    for r in readers {
        reader_events.push(r.await.expect("reader task"));
    }
    let transitions = GetBackendRequest {
        name: "toggler".into(),
    };
    let toggler_now = d
        .client()
        .await
        .get_backend(transitions)
        .await
        .expect("get")
        .into_inner();
    let min_toggles = reader_events.iter().map(|r| r.1).min().unwrap_or(0);
    let rss = d.status_field("VmRSS");
    println!(
        "probe interval {INTERVAL_MS} ms ±10%: baseline mean {:.0} p95 {:.0} max {:.0} ms; \
         with 1000 watchers + 50 ctl: mean {:.0} p95 {:.0} max {:.0} ms; a silent watcher \
         had {drained} events buffered, lost {lost}; readers saw >= {min_toggles} toggler events each; daemon VmRSS {rss} KiB; \
         ctl failures {}",
        base.0,
        base.1,
        base.2,
        load.0,
        load.1,
        load.2,
        ctl_failures.len()
    );
    assert!(ctl_failures.is_empty(), "{ctl_failures:?}");
    assert!(d.alive());
    assert_eq!(toggler_now.state(), BackendState::Up);
    // The readers were kept up to date: each saw the toggler's transitions.
    assert!(min_toggles >= 6, "{reader_events:?}");
    assert!(drained > 0, "the silent watcher's stream was dead");
    // Timing unaffected, judged against the baseline measured just before on this same
    // (shared, noisy) box: the mean gap moves by less than the ±10% jitter allows plus
    // scheduling slack, and the p95 by less than twice that.
    let allowed = INTERVAL_MS * 0.1 + 60.0;
    assert!(
        (load.0 - base.0).abs() < allowed,
        "mean gap {:.0} ms under load, {:.0} ms at baseline",
        load.0,
        base.0
    );
    assert!(
        load.1 < base.1 + 2.0 * allowed,
        "p95 gap {:.0} ms under load, {:.0} ms at baseline",
        load.1,
        base.1
    );
}
