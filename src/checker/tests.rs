//! Checker tests on paused tokio time with a scripted probe: deterministic, no sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::*;
use crate::events::Event;
use crate::health::{FrontendState, ResultCode, State};

/// Answers pass/fail per address as the test sets it, and logs when each probe ran.
#[derive(Default)]
struct Script {
    pass: Mutex<HashMap<IpAddr, bool>>,
    log: Mutex<Vec<(IpAddr, Instant)>>,
    reloads: std::sync::atomic::AtomicUsize,
}

impl Script {
    fn set(&self, addr: &str, pass: bool) {
        let ip: IpAddr = addr.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.pass
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ip, pass);
    }

    fn probes_of(&self, addr: &str) -> Vec<Instant> {
        let ip: IpAddr = addr.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .filter(|(a, _)| *a == ip)
            .map(|(_, t)| *t)
            .collect()
    }
}

impl Probe for Script {
    fn probe<'a>(
        &'a self,
        spec: &'a ProbeSpec,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((spec.addr, Instant::now()));
            let pass = *self
                .pass
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&spec.addr)
                .unwrap_or(&false);
            if pass {
                ProbeResult::new(ResultCode::L4Ok, "", Duration::from_micros(100))
            } else {
                ProbeResult::new(
                    ResultCode::L4Con,
                    "connection refused",
                    Duration::from_micros(100),
                )
            }
        })
    }

    fn config_reloaded(&self) {
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

const BASE: &str = r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.tcp]
type = "tcp"
port = 80
interval = "1s"
fast-interval = "250ms"
down-interval = "2s"
timeout = "500ms"
rise = 2
fall = 2

[backends.a]
address = "127.0.0.11"
healthcheck = "tcp"
[backends.b]
address = "127.0.0.12"
healthcheck = "tcp"
[backends.c]
address = "127.0.0.13"
healthcheck = "tcp"
[backends.d]
address = "127.0.0.14"
healthcheck = "tcp"

[frontends.web]
address = "192.0.2.1"
port = 80
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = {}, b = {} }
  [[frontends.web.pools]]
  name = "fallback"
  backends = { c = {}, d = { weight = 50 } }
"#;

fn config(src: &str) -> Arc<Config> {
    match crate::config::load_str(src, Path::new("test.toml")) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("test config invalid: {}", e.lines().join("\n")),
    }
}

fn start(src: &str, script: &Arc<Script>) -> (Checker, broadcast::Receiver<Arc<Event>>) {
    let bus = EventBus::new(1024);
    let rx = bus.subscribe();
    let probe: Arc<dyn Probe> = script.clone();
    (Checker::start(config(src), probe, bus), rx)
}

fn state_of(c: &Checker, name: &str) -> Option<State> {
    c.read(|st| st.backends.get(name).map(|e| e.health.state()))
}

fn drain(rx: &mut broadcast::Receiver<Arc<Event>>) -> Vec<Arc<Event>> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

async fn advance(d: Duration) {
    // Step in small increments so every woken task runs before time moves on.
    let step = Duration::from_millis(10);
    let mut done = Duration::ZERO;
    while done < d {
        tokio::time::advance(step).await;
        tokio::task::yield_now().await;
        done += step;
    }
}

#[tokio::test(start_paused = true)]
async fn first_probes_are_spread_over_the_first_interval() {
    let script = Arc::new(Script::default());
    let t0 = Instant::now();
    let (_c, _rx) = start(BASE, &script);
    advance(Duration::from_millis(990)).await;
    let mut firsts: Vec<Duration> = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"]
        .iter()
        .map(|a| {
            script
                .probes_of(a)
                .first()
                .map(|t| *t - t0)
                .unwrap_or(Duration::MAX)
        })
        .collect();
    firsts.sort();
    // 4 backends over 1 s: offsets 0, 250, 500, 750 ms (10 ms steps of the test clock).
    for (i, got) in firsts.iter().enumerate() {
        let want = Duration::from_millis(250 * i as u64);
        assert!(
            *got >= want && *got <= want + Duration::from_millis(20),
            "backend {i}: first probe at {got:?}, want ~{want:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rise_and_fall_drive_transitions_and_events() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, mut rx) = start(BASE, &script);
    advance(Duration::from_millis(100)).await;
    // From unknown, one pass decides: up.
    assert_eq!(state_of(&c, "a"), Some(State::Up));
    let events = drain(&mut rx);
    let backend_events: Vec<_> = events
        .iter()
        .filter_map(|e| match &**e {
            Event::Backend(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        backend_events.len(),
        1,
        "one frontend references a: {backend_events:?}"
    );
    assert_eq!(backend_events[0].frontend.as_deref(), Some("web"));
    assert_eq!(backend_events[0].transition.to, State::Up);
    assert!(
        events
            .iter()
            .any(|e| matches!(&**e, Event::Frontend(f) if f.to == FrontendState::Up))
    );

    // Up from a single pass has health rise-1+1 = 2 of max 3: fast interval until max.
    script.set("127.0.0.11", false);
    // fall = 2 from health 2..3: needs two fails at most.
    advance(Duration::from_secs(3)).await;
    assert_eq!(state_of(&c, "a"), Some(State::Down));
    let probes = script.probes_of("127.0.0.11");
    assert!(probes.len() >= 3, "probes: {}", probes.len());
}

#[tokio::test(start_paused = true)]
async fn next_delay_follows_the_state_with_bounded_jitter() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    // After enough passes the counter is at max: interval (1 s) ± 10 %.
    advance(Duration::from_secs(4)).await;
    let d = c.next_delay("a").unwrap_or_default();
    assert!(
        d >= Duration::from_millis(900) && d < Duration::from_millis(1100),
        "{d:?}"
    );
    // b never passes: at 0 and down -> down-interval (2 s) ± 10 %.
    advance(Duration::from_secs(2)).await;
    let d = c.next_delay("b").unwrap_or_default();
    assert!(
        d >= Duration::from_millis(1800) && d < Duration::from_millis(2200),
        "{d:?}"
    );
    assert_eq!(state_of(&c, "b"), Some(State::Down));
}

#[tokio::test(start_paused = true)]
async fn act_replies_with_what_the_action_left() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    advance(Duration::from_millis(100)).await;
    let state = |_: &Config, e: &BackendSnapshot| e.health.state();
    assert_eq!(
        c.act("a", BackendHealth::disable, state),
        Ok(State::Disabled)
    );
    match c.act("a", BackendHealth::pause, state) {
        Err(CheckerError::Action { .. }) => {}
        other => panic!("pause of a disabled backend must fail, got {other:?}"),
    }
    assert_eq!(c.act("a", BackendHealth::enable, state), Ok(State::Unknown));
    match c.act("nope", BackendHealth::pause, state) {
        Err(CheckerError::NotFound { .. }) => {}
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn operator_actions_stop_and_restart_probing() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    advance(Duration::from_millis(100)).await;
    assert_eq!(state_of(&c, "a"), Some(State::Up));

    assert_eq!(c.pause("a"), Ok(()));
    assert_eq!(state_of(&c, "a"), Some(State::Paused));
    let before = script.probes_of("127.0.0.11").len();
    advance(Duration::from_secs(5)).await;
    assert_eq!(
        script.probes_of("127.0.0.11").len(),
        before,
        "no probes while paused"
    );

    assert_eq!(c.resume("a"), Ok(()));
    assert_eq!(state_of(&c, "a"), Some(State::Unknown));
    advance(Duration::from_millis(20)).await;
    assert_eq!(
        script.probes_of("127.0.0.11").len(),
        before + 1,
        "resume probes at once"
    );
    assert_eq!(state_of(&c, "a"), Some(State::Up));

    assert_eq!(c.disable("a"), Ok(()));
    assert_eq!(c.disable("a"), Ok(()), "disable is idempotent");
    match c.pause("a") {
        Err(CheckerError::Action { .. }) => {}
        other => panic!("pause of a disabled backend must fail, got {other:?}"),
    }
    assert_eq!(c.enable("a"), Ok(()));
    assert_eq!(state_of(&c, "a"), Some(State::Unknown));
    match c.pause("nope") {
        Err(CheckerError::NotFound { known, .. }) => assert_eq!(known, "a, b, c, d"),
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn weight_override_validates_and_changes_the_view() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, mut rx) = start(BASE, &script);
    advance(Duration::from_millis(100)).await;
    drain(&mut rx);
    assert_eq!(c.set_weight("web", "primary", "a", 40), Ok(()));
    let w = c.read(|st| frontend_view(st, "web").and_then(|v| v.weights.action("primary", "a")));
    assert_eq!(w.map(|a| a.weight()), Some(40));
    assert!(
        drain(&mut rx)
            .iter()
            .any(|e| matches!(&**e, Event::Frontend(f) if f.frontend == "web")),
        "a weight change emits a frontend event"
    );
    assert!(matches!(
        c.set_weight("web", "primary", "a", 101),
        Err(CheckerError::InvalidArgument(_))
    ));
    assert!(matches!(
        c.set_weight("web", "nopool", "a", 1),
        Err(CheckerError::NotFound { .. })
    ));
    assert!(matches!(
        c.set_weight("web", "primary", "c", 1),
        Err(CheckerError::NotFound { .. })
    ));
    assert!(matches!(
        c.set_weight("nofe", "primary", "a", 1),
        Err(CheckerError::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_unchanged_backends_and_restarts_changed_ones() {
    let script = Arc::new(Script::default());
    for a in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
        script.set(a, true);
    }
    let (c, mut rx) = start(BASE, &script);
    advance(Duration::from_secs(2)).await;
    assert_eq!(state_of(&c, "a"), Some(State::Up));
    assert_eq!(state_of(&c, "b"), Some(State::Up));
    assert_eq!(c.set_weight("web", "primary", "a", 30), Ok(()));
    let history_a = c.read(|st| st.backends.get("a").map(|e| e.health.history().len()));
    drain(&mut rx);

    // b moves to another address (restart), d is removed, e is added.
    let new = BASE
        .replace("address = \"127.0.0.12\"", "address = \"127.0.0.22\"")
        .replace(
            "[backends.d]\naddress = \"127.0.0.14\"\nhealthcheck = \"tcp\"\n",
            "[backends.e]\naddress = \"127.0.0.15\"\nhealthcheck = \"tcp\"\n",
        )
        .replace("d = { weight = 50 }", "e = {}");
    let reloads = || script.reloads.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reloads(), 0);
    let diff = c.reload(config(&new));
    assert_eq!(
        reloads(),
        1,
        "the probe is told (the prober drops cached CA files)"
    );
    assert_eq!(diff.backends_restart, vec!["b".to_string()]);
    assert_eq!(diff.backends_removed, vec!["d".to_string()]);
    assert_eq!(diff.backends_added, vec!["e".to_string()]);

    assert_eq!(
        state_of(&c, "a"),
        Some(State::Up),
        "unchanged keeps its state"
    );
    assert_eq!(
        c.read(|st| st.backends.get("a").map(|e| e.health.history().len())),
        history_a,
        "unchanged keeps its history"
    );
    assert_eq!(
        c.read(|st| st
            .overrides
            .get(&("web".into(), "primary".into(), "a".into()))
            .copied()),
        Some(30),
        "override survives"
    );
    assert_eq!(
        state_of(&c, "b"),
        Some(State::Unknown),
        "changed restarts at unknown"
    );
    assert_eq!(state_of(&c, "d"), None, "removed is gone");
    assert_eq!(state_of(&c, "e"), Some(State::Unknown));
    let events = drain(&mut rx);
    assert!(events.iter().any(|e| matches!(&**e,
        Event::Backend(b) if b.backend == "d" && b.transition.to == State::Removed)));

    // The restarted worker probes the new address without a gap.
    advance(Duration::from_millis(50)).await;
    assert!(!script.probes_of("127.0.0.22").is_empty());
    assert_eq!(
        state_of(&c, "b"),
        Some(State::Down),
        "new address fails: down"
    );
}

#[tokio::test(start_paused = true)]
async fn transitions_are_counted_per_from_and_to() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    advance(Duration::from_millis(100)).await;
    assert!(c.pause("a").is_ok());
    assert!(c.resume("a").is_ok());
    advance(Duration::from_millis(100)).await;
    let counts = c.read(|st| st.backends.get("a").map(|e| e.transitions.clone()));
    let counts = counts.unwrap_or_default();
    assert_eq!(counts.get(&(State::Unknown, State::Up)), Some(&2));
    assert_eq!(counts.get(&(State::Up, State::Paused)), Some(&1));
    assert_eq!(counts.get(&(State::Paused, State::Unknown)), Some(&1));
    assert_eq!(counts.values().sum::<u64>(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_held_snapshot_keeps_its_health_and_the_generation_increases() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    let before = c.snapshot();
    assert_eq!(
        before.backends.get("a").map(|e| e.health.state()),
        Some(State::Unknown)
    );
    advance(Duration::from_secs(2)).await;
    let after = c.snapshot();
    assert_eq!(
        after.backends.get("a").map(|e| e.health.state()),
        Some(State::Up)
    );
    assert!(after.generation > before.generation);
    // The old snapshot still shows what it showed.
    assert_eq!(
        before.backends.get("a").map(|e| e.health.state()),
        Some(State::Unknown)
    );
    // The probe counters are live in every snapshot (one record, shared).
    let count = |s: &HealthSnapshot| s.backends.get("a").map(|e| e.stats.load().count);
    assert!(count(&before) >= Some(2));
    assert_eq!(count(&before), count(&after));
    let a_view = |s: &HealthSnapshot| {
        s.frontend("web")
            .and_then(|v| v.weights.action("primary", "a"))
            .map(|a| a.weight())
    };
    assert_eq!(a_view(&before), Some(0));
    assert_eq!(a_view(&after), Some(100));

    // An operator action publishes before it returns, with a higher generation.
    assert_eq!(c.set_weight("web", "primary", "a", 40), Ok(()));
    let weighted = c.snapshot();
    assert!(weighted.generation > after.generation);
    assert_eq!(a_view(&weighted), Some(40));
    assert_eq!(a_view(&after), Some(100));
}

#[tokio::test(start_paused = true)]
async fn a_publish_shares_the_entries_that_did_not_change() {
    let script = Arc::new(Script::default());
    let (c, _rx) = start(BASE, &script);
    advance(Duration::from_secs(3)).await;
    let before = c.snapshot();
    // Pause d: only d's entry (and the frontend it sits in) is rebuilt.
    assert_eq!(c.pause("d"), Ok(()));
    let after = c.snapshot();
    let same = |name: &str| match (before.backends.get_arc(name), after.backends.get_arc(name)) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    };
    assert!(!same("d"));
    assert!(same("a") && same("b") && same("c"));
    assert_eq!(
        after.backends.get("d").map(|e| e.health.state()),
        Some(State::Paused)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reader_holding_the_state_does_not_block_probe_results() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let reader = c.clone();
    // A slow reader: it stays inside `read` until the test lets it go (or 10 s pass).
    let slow = std::thread::spawn(move || {
        reader.read(|st| {
            let _ = started_tx.send(st.generation);
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(10));
            st.backends.get("a").map(|e| e.health.state())
        })
    });
    let held = started_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or(u64::MAX);
    // Probes record results (and publish) while the reader is still inside.
    advance(Duration::from_secs(2)).await;
    let now = c.snapshot();
    assert!(now.generation > held, "{} > {held}", now.generation);
    assert_eq!(state_of(&c, "a"), Some(State::Up));
    assert!(!slow.is_finished(), "the reader is still inside read()");
    let _ = release_tx.send(());
    let seen = slow.join().ok().flatten();
    assert_eq!(seen, Some(State::Unknown), "the reader kept its snapshot");
}

#[tokio::test(start_paused = true)]
async fn stop_ends_all_probing_and_one_driver_probes_every_backend() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    advance(Duration::from_secs(3)).await;
    let addrs = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"];
    // Up every 1 s, down every 2 s (rise 2 on the way up uses the fast interval): every
    // backend was probed more than once over 3 s by the one driver.
    for a in addrs {
        assert!(
            script.probes_of(a).len() >= 2,
            "{a}: {:?}",
            script.probes_of(a)
        );
    }
    c.stop();
    let before: Vec<usize> = addrs.iter().map(|a| script.probes_of(a).len()).collect();
    advance(Duration::from_secs(5)).await;
    let after: Vec<usize> = addrs.iter().map(|a| script.probes_of(a).len()).collect();
    assert_eq!(before, after, "no probe after stop");
}

#[tokio::test(start_paused = true)]
async fn a_repeated_result_updates_the_live_stats_without_a_publish() {
    let script = Arc::new(Script::default());
    script.set("127.0.0.11", true);
    let (c, _rx) = start(BASE, &script);
    // rise 2: up after two passes (fast interval 250 ms), then every 1 s (±10 %).
    advance(Duration::from_secs(2)).await;
    assert_eq!(state_of(&c, "a"), Some(State::Up));
    // Settled: b, c and d fail at the bottom of their counter (no change), a passes at the top.
    advance(Duration::from_secs(5)).await;
    let held = c.snapshot();
    let a = |s: &HealthSnapshot| {
        s.backends
            .get("a")
            .map(|e| (e.stats.load().count, e.last_result()))
    };
    let (count_before, last_before) = a(&held).unwrap_or_default();
    advance(Duration::from_secs(5)).await;
    let now = c.snapshot();
    // Nothing changed in health: no new snapshot was published.
    assert_eq!(now.generation, held.generation);
    assert!(Arc::ptr_eq(&c.snapshot(), &now));
    // Yet the counters and the last probe's time moved on, in the held snapshot too.
    let (count_after, last_after) = a(&held).unwrap_or_default();
    assert!(
        count_after >= count_before + 4,
        "{count_before} -> {count_after}"
    );
    let (Some(last_before), Some(last_after)) = (last_before, last_after) else {
        panic!("a has been probed");
    };
    assert_eq!(last_after.code, ResultCode::L4Ok);
    assert!(last_after.at > last_before.at);
    // A result that changes the health is published at once.
    script.set("127.0.0.11", false);
    advance(Duration::from_millis(1_200)).await;
    let failed = c.snapshot();
    assert!(failed.generation > held.generation);
    let last = failed.backends.get("a").and_then(|e| e.last_result());
    assert_eq!(
        last.map(|r| (r.code, r.detail)),
        Some((ResultCode::L4Con, "connection refused".to_string()))
    );
}
