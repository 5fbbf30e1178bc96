//! Fault injection between the real daemon and the VPP test double (issue 10): the socket
//! closed at 20 points of a full sync, VPP restarting empty, VPP answering too slowly or
//! not at all, a corrupt frame and an absurd length field, and 100 connect/disconnect
//! cycles of the connection supervisor. Each test prints what it measured.

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, DaemonBuilder};
use loopback::{free_port, tcp_backends};
use maglev::proto::{
    BackendState, GetVppInfoRequest, ListBackendsRequest, WatchEventsRequest, event,
};
use maglev::vpp::client::{ClientConfig, ConnState, Connection, ConnectionConfig};
use support::scenario::{ConfigText, Table, Timing, vpp_table};
use support::vpp_double::{ApiMode, VppDouble};
use tokio_stream::StreamExt;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Six backends a..f on 127.0.0.2..7 (f never listens), three VIPs, one tcp check.
/// min = max startup delay: the first VPP programming is one full sync.
fn config(port: u16, startup: &str) -> String {
    let timing = Timing {
        // Generous for a loaded 2-core box with 21 daemons: a probe timeout here would be a
        // transition, and its per-VIP sync would add messages to the count below.
        interval: "1s",
        fast_down: Some(("500ms", "1s")),
        timeout: "900ms",
        ..Timing::QUICK
    };
    let mut cfg = ConfigText::new()
        .vpp_lb("60s", startup, startup)
        .check("tcp", "tcp", port, timing);
    for (name, last) in ["a", "b", "c", "d", "e", "f"].iter().zip(2..) {
        cfg = cfg.backend(name, &format!("127.0.0.{last}"), "tcp");
    }
    cfg.frontend("web", "192.0.2.1", "tcp", 80)
        .pool(
            "web",
            "primary",
            "a = { weight = 50 }, b = {}, c = {}, d = {}",
        )
        .frontend("api", "192.0.2.2", "tcp", 443)
        .pool("api", "primary", "c = {}, d = {}, e = { weight = 10 }")
        .frontend("dns", "192.0.2.3", "tcp", 53)
        .pool("dns", "primary", "d = {}, e = {}, f = {}")
        .build()
}

/// What VPP must hold for `config` with the backends in `down` failing.
fn expected(down: &[&str]) -> Table {
    let w = |name: &str, weight: u8| if down.contains(&name) { 0 } else { weight };
    let vip = |pairs: &[(&str, &str, u8)]| -> BTreeMap<IpAddr, u8> {
        pairs.iter().map(|(n, a, wt)| (ip(a), w(n, *wt))).collect()
    };
    let mut t = Table::new();
    t.insert(
        "192.0.2.1/32:80".into(),
        vip(&[
            ("a", "127.0.0.2", 50),
            ("b", "127.0.0.3", 100),
            ("c", "127.0.0.4", 100),
            ("d", "127.0.0.5", 100),
        ]),
    );
    t.insert(
        "192.0.2.2/32:443".into(),
        vip(&[
            ("c", "127.0.0.4", 100),
            ("d", "127.0.0.5", 100),
            ("e", "127.0.0.6", 10),
        ]),
    );
    t.insert(
        "192.0.2.3/32:53".into(),
        vip(&[
            ("d", "127.0.0.5", 100),
            ("e", "127.0.0.6", 100),
            ("f", "127.0.0.7", 0),
        ]),
    );
    t
}

const LONG: Duration = Duration::from_secs(60);

/// Messages of a full sync into an empty VPP on a fresh connection: `sockclnt_create`,
/// `show_version`, `control_ping` (supervisor's handshake; the status reuses its
/// version and build date); `lb_conf_get`, `lb_vip_dump` + ping, `lb_as_v2_dump` + ping,
/// `cli_inband` (read); `lb_conf`, 3 VIPs, 10 ASes (writes).
const FULL_SYNC_MESSAGES: usize = 3 + 6 + 14;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_closed_at_20_points_of_a_full_sync_converges_without_duplicates() {
    let port = free_port();
    let _backends = tcp_backends(port, 2..=6).await;
    let cfg = config(port, "1s");
    let want = expected(&["f"]);

    // n = messages answered before the close: 3 = right after the supervisor's setup
    // (the close hits the sync's first read) ... total - 1 = the
    // sync's last write. Run 0 is the reference: a restart without a close, to check the
    // message count.
    let (lo, hi) = (3usize, FULL_SYNC_MESSAGES - 1);
    let mut points: Vec<Option<usize>> = vec![None];
    points.extend((0..20).map(|i| Some(lo + i * (hi - lo) / 19)));
    let mut runs = Vec::new();
    for n in points {
        let double = VppDouble::start(ApiMode::V1_2).await;
        let d = DaemonBuilder::with_vpp(cfg.as_str(), double.socket_path()).spawn();
        runs.push((n, double, d));
    }
    // Everything settled and known: VPP restarts empty, and the reconnect's full sync is
    // cut at the chosen point.
    for (n, double, d) in &runs {
        d.wait_for("first sync", LONG, || {
            (vpp_table(double) == want).then_some(())
        })
        .await;
        let before = double.messages_received();
        double.restart_empty();
        if let Some(n) = n {
            double.close_once_after(*n);
        }
        if n.is_none() {
            d.wait_for("reference restore", LONG, || {
                (vpp_table(double) == want).then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let total = double.messages_received() - before;
            println!(
                "full sync into an empty VPP: {total} messages, {} writes",
                double.writes().len()
            );
            let names = [
                "show_version",
                "control_ping",
                "lb_conf_get",
                "lb_vip_dump",
                "lb_as_v2_dump",
                "cli_inband",
            ];
            let reads: Vec<(&str, u64)> = names.iter().map(|n| (*n, double.requests(n))).collect();
            // At least the full sync; a keepalive ping may land in the window too.
            assert!(total >= FULL_SYNC_MESSAGES, "{total} messages: {reads:?}");
        }
    }
    let t0 = Instant::now();
    let mut distinct = std::collections::BTreeSet::new();
    for (n, double, d) in runs.iter().filter_map(|(n, v, d)| Some((((*n)?), v, d))) {
        d.wait_for(
            &format!("close point {n}: cut, reconnect, converge"),
            LONG,
            || {
                (double.knob_closes() == 1
                    && double.connections_accepted() == 3
                    && vpp_table(double) == want)
                    .then_some(())
            },
        )
        .await;
        // After the cut: one reconnect was enough, and no write was refused (a refused
        // add would mean the daemon re-created something VPP already had).
        let writes = double.writes();
        let refused: Vec<_> = writes.iter().filter(|w| w.retval != 0).collect();
        assert!(
            refused.is_empty(),
            "close point {n}: refused writes {refused:?}"
        );
        // The write the close hit was never applied, so each of the 14 happened once.
        assert_eq!(writes.len(), 14, "close point {n}: {writes:?}");
        assert_eq!(double.fatal_requests(), 0);
        println!(
            "close after {n:2} messages: converged by {:.1} s, {} writes in both connections",
            t0.elapsed().as_secs_f64(),
            writes.len()
        );
        distinct.insert(n);
    }
    assert_eq!(distinct.len(), 20, "points {distinct:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restarting_empty_is_restored_in_one_reconnect_cycle() {
    let port = free_port();
    let _backends = tcp_backends(port, 2..=6).await;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let d = DaemonBuilder::with_vpp(config(port, "1s"), double.socket_path()).spawn();
    let want = expected(&["f"]);
    d.wait_for("first sync", LONG, || {
        (vpp_table(&double) == want).then_some(())
    })
    .await;
    let (fds0, rss0) = (d.fd_count(), d.status_field("VmRSS"));

    for round in 1..=2 {
        let old_pid = double.pid();
        let accepted = double.connections_accepted();
        let t0 = Instant::now();
        double.restart_empty();
        assert_ne!(double.pid(), old_pid);
        assert!(vpp_table(&double).is_empty());
        d.wait_for("restore after restart", LONG, || {
            (vpp_table(&double) == want).then_some(())
        })
        .await;
        let took = t0.elapsed();
        assert_eq!(
            double.connections_accepted(),
            accepted + 1,
            "round {round}: restored by exactly one new connection"
        );
        // Everything written once: conf, 3 VIPs, 10 ASes; nothing refused.
        let writes = double.writes();
        let vip_adds = writes
            .iter()
            .filter(|w| w.msg == "lb_add_del_vip_v2")
            .count();
        let as_adds = writes
            .iter()
            .filter(|w| w.msg == "lb_add_del_as_v2")
            .count();
        assert_eq!((vip_adds, as_adds), (3, 10), "{writes:?}");
        assert!(writes.iter().all(|w| w.retval == 0), "{writes:?}");
        println!(
            "restart {round}: new pid {}, restored in {:.2} s ({} writes)",
            double.pid(),
            took.as_secs_f64(),
            writes.len()
        );
    }
    let (fds1, rss1) = (d.fd_count(), d.status_field("VmRSS"));
    println!("daemon fds {fds0} -> {fds1}, VmRSS {rss0} -> {rss1} KiB over 2 restarts");
    assert!(fds1 <= fds0 + 2, "fds {fds0} -> {fds1}");
}

/// Calls ListBackends every 100 ms until `stop`; returns the slowest answer.
fn responsiveness_probe(
    d: &Daemon,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Duration)> {
    let addr = format!("http://{}", d.grpc_addr);
    tokio::spawn(async move {
        let channel = tonic::transport::Endpoint::from_shared(addr)
            .expect("endpoint")
            .connect_lazy();
        let mut c = maglev::proto::maglev_client::MaglevClient::new(channel);
        let (mut calls, mut worst) = (0, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                c.list_backends(ListBackendsRequest {}),
            )
            .await;
            assert!(matches!(r, Ok(Ok(_))), "ListBackends failed: {r:?}");
            worst = worst.max(t.elapsed());
            calls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (calls, worst)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_silent_vpp_keeps_checker_and_grpc_going_and_writes_resume() {
    let port = free_port();
    let mut backends = tcp_backends(port, 2..=6).await;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let mut d = DaemonBuilder::with_vpp(config(port, "1s"), double.socket_path()).spawn();
    d.wait_for("first sync", LONG, || {
        (vpp_table(&double) == expected(&["f"])).then_some(())
    })
    .await;
    d.wait_grpc().await;
    let mut c = d.client().await;
    let mut events = c
        .watch_events(WatchEventsRequest {
            backend: true,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = responsiveness_probe(&d, stop.clone());

    // Slow: every reply 6 s late, past the 5 s request timeout.
    double.set_reply_delay(Duration::from_secs(6));
    backends[1].down().await; // b
    wait_event(&mut events, "b", BackendState::Down).await;
    d.wait_for("a request timeout", LONG, || {
        d.log().contains("VPP did not answer").then_some(())
    })
    .await;

    // Silent: no reply at all.
    double.set_reply_delay(Duration::from_secs(3600));
    backends[2].down().await; // c
    wait_event(&mut events, "c", BackendState::Down).await;
    d.wait_for("a failed reconnect", LONG, || {
        d.log().contains("cannot connect to VPP").then_some(())
    })
    .await;
    let stalled_writes = double.writes().len();

    // VPP answers again: the writes for b and c go out.
    let t0 = Instant::now();
    double.set_reply_delay(Duration::ZERO);
    d.wait_for("writes after VPP recovered", LONG, || {
        (vpp_table(&double) == expected(&["b", "c", "f"])).then_some(())
    })
    .await;
    let resumed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (calls, worst) = probe.await.expect("probe task");
    println!(
        "VPP stalled: {calls} ListBackends calls, slowest {:.0} ms; writes resumed {:.1} s after VPP answered again ({} writes then, {} now)",
        worst.as_secs_f64() * 1e3,
        resumed.as_secs_f64(),
        stalled_writes,
        double.writes().len()
    );
    assert!(worst < Duration::from_secs(2), "gRPC stalled {worst:?}");
    assert!(calls > 20);
}

async fn wait_event(
    events: &mut tonic::Streaming<maglev::proto::Event>,
    backend: &str,
    to: BackendState,
) {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(e)) = events.next().await {
            if let Some(event::Kind::Backend(b)) = e.kind
                && b.backend == backend
                && b.transition.as_ref().is_some_and(|t| t.to() == to)
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no {backend} -> {to:?} event while VPP stalled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_frame_and_absurd_length_drop_and_rebuild_the_connection() {
    let port = free_port();
    let mut backends = tcp_backends(port, 2..=6).await;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let mut d = DaemonBuilder::with_vpp(config(port, "1s"), double.socket_path()).spawn();
    let want = expected(&["f"]);
    d.wait_for("first sync", LONG, || {
        (vpp_table(&double) == want).then_some(())
    })
    .await;
    d.wait_grpc().await;
    let mut c = d.client().await;
    let (fds0, rss0) = (d.fd_count(), d.status_field("VmRSS"));

    for (what, arm, log_needle, down) in [
        (
            "corrupt frame",
            VppDouble::corrupt_next_reply as fn(&VppDouble),
            "garbage from VPP",
            &["b", "f"][..],
        ),
        (
            "absurd length",
            VppDouble::absurd_length_next_reply,
            "exceeds the",
            &["f"][..],
        ),
    ] {
        let accepted = double.connections_accepted();
        arm(&double);
        let t0 = Instant::now();
        // b's transition makes the daemon sync its VIPs: the armed reply is the first
        // read's answer.
        if down.contains(&"b") {
            backends[1].down().await;
        } else {
            backends[1].up().await;
        }
        d.wait_for(&format!("{what}: reconnected"), LONG, || {
            (double.connections_accepted() == accepted + 1).then_some(())
        })
        .await;
        let reconnect = t0.elapsed();
        let info = loop {
            let i = c
                .get_vpp_info(GetVppInfoRequest {})
                .await
                .expect("vpp info")
                .into_inner();
            if i.connected {
                break i;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            d.log().contains(log_needle),
            "{what}: log lacks {log_needle:?}"
        );
        let want = expected(down);
        d.wait_for(&format!("{what}: VPP in step again"), LONG, || {
            (vpp_table(&double) == want).then_some(())
        })
        .await;
        println!(
            "{what}: dropped and reconnected in {:.2} s (reconnects {}), VmRSS {} KiB, VmHWM {} KiB",
            reconnect.as_secs_f64(),
            info.reconnects,
            d.status_field("VmRSS"),
            d.status_field("VmHWM"),
        );
    }
    let (fds1, rss1, hwm) = (
        d.fd_count(),
        d.status_field("VmRSS"),
        d.status_field("VmHWM"),
    );
    println!("daemon fds {fds0} -> {fds1}, VmRSS {rss0} -> {rss1} KiB, peak {hwm} KiB");
    // The 4 GiB length was never allocated: the peak stays far below it.
    assert!(hwm < rss0 + 64 * 1024, "peak RSS {hwm} KiB from {rss0} KiB");
    assert!(fds1 <= fds0 + 2, "fds {fds0} -> {fds1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connect_disconnect_cycles_leak_no_task_fd_or_memory() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let conn = Connection::spawn(ConnectionConfig {
        client: ClientConfig {
            socket_path: double.socket_path().to_path_buf(),
            client_name: "cycles".into(),
            request_timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        },
        retry_interval: Duration::from_millis(5),
        max_retry_interval: Duration::from_millis(20),
    });
    let state = conn.state();
    assert!(matches!(
        wait_epoch(&state, 1).await,
        Ok(Ok(ConnState::Connected { .. }))
    ));
    // Warm up allocator and runtime with a few cycles before the baseline.
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut epoch = 1;
    let cycle = |i: usize| {
        if i.is_multiple_of(2) {
            double.restart_empty();
        } else {
            // handshake, show_version, control_ping = 3; our ping is the 4th: closed.
            double.close_once_after(3);
            if let Some(c) = conn.client() {
                tokio::spawn(async move { c.control_ping().await });
            }
        }
    };
    for i in 0..4 {
        cycle(i);
        epoch += 1;
        assert!(wait_epoch(&state, epoch).await.is_ok(), "warm-up cycle {i}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (tasks0, fds0, rss0) = (
        metrics.num_alive_tasks(),
        loopback::self_fds(),
        loopback::self_rss_kib(),
    );
    let t0 = Instant::now();
    for i in 0..100 {
        cycle(i);
        epoch += 1;
        let r = wait_epoch(&state, epoch).await;
        assert!(matches!(r, Ok(Ok(_))), "cycle {i}: no reconnect");
    }
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tasks1, fds1, rss1) = (
        metrics.num_alive_tasks(),
        loopback::self_fds(),
        loopback::self_rss_kib(),
    );
    println!(
        "100 cycles in {:.2} s ({:.1} ms each): tasks {tasks0} -> {tasks1}, fds {fds0} -> {fds1}, VmRSS {rss0} -> {rss1} KiB; double saw {} connections",
        took.as_secs_f64(),
        took.as_secs_f64() * 10.0,
        double.connections_accepted()
    );
    assert!(state.borrow().is_connected());
    assert!(tasks1 <= tasks0 + 2, "tasks {tasks0} -> {tasks1}");
    assert!(fds1 <= fds0 + 2, "fds {fds0} -> {fds1}");
    assert!(rss1 < rss0 + 16 * 1024, "VmRSS {rss0} -> {rss1} KiB");
    assert!(double.connections_accepted() >= 105);
}

/// Waits until the supervisor published epoch `want` (or later).
async fn wait_epoch(
    state: &tokio::sync::watch::Receiver<ConnState>,
    want: u64,
) -> Result<Result<ConnState, tokio::sync::watch::error::RecvError>, tokio::time::error::Elapsed> {
    let mut state = state.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        state.wait_for(|s| s.epoch().is_some_and(|e| e >= want)),
    )
    .await
    .map(|r| r.map(|s| s.clone()))
}
