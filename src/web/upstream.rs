//! One task per daemon: connect (ctl's transport: plaintext, TLS, mutual TLS, `unix:`), keep a
//! `WatchEvents` stream open, refresh the lists every 30 s as a safety net and soon after each
//! event, check health every 5 s (an answer-less daemon is marked unreachable), and fetch
//! VPP's lb state for the bucket counts at most once a second. Reconnects with backoff.
//! Each daemon has its own task: one that hangs or is down never holds up the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until};

use super::options::Server;
use super::ring::Hub;
use super::view::{self, DaemonView, VppView};
use crate::cli::LogLevel;
use crate::ctl::client::{Client, CtlError, TlsFiles};
use crate::proto;

pub const LIST_REFRESH: Duration = Duration::from_secs(30);
pub const HEALTH_CHECK: Duration = Duration::from_secs(5);
pub const LB_STATE_MIN_GAP: Duration = Duration::from_secs(1);
/// Events come in bursts (one per frontend of a backend): one refresh per burst.
const EVENT_SETTLE: Duration = Duration::from_millis(50);
/// The daemon writes VPP shortly after the event that caused it: each triggered lb-state
/// fetch is followed by one more this much later, which sees the write.
const LB_TRAILING: Duration = Duration::from_millis(1500);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A line of the event panel (the `log` server-sent event).
#[derive(Debug, Clone, Serialize)]
pub struct PanelLine {
    pub daemon: String,
    pub at_ms: i64,
    /// error | warn | info | debug | trace
    pub level: String,
    /// transition | frontend | vpp | daemon | log | action
    pub kind: &'static str,
    pub text: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The shared handle of one daemon: its view for the HTTP side, its client for actions.
#[derive(Debug)]
pub struct Upstream {
    pub server: Server,
    hub: Arc<Hub>,
    shared: Mutex<Shared>,
    nudge: Notify,
}

#[derive(Debug)]
struct Shared {
    view: DaemonView,
    client: Option<Client>,
}

impl Upstream {
    pub fn view(&self) -> DaemonView {
        self.lock().view.clone()
    }

    /// The connected client, or None while the daemon is unreachable.
    pub fn client(&self) -> Option<Client> {
        self.lock().client.clone()
    }

    /// After an admin action: refresh the lists and VPP's lb state soon.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// A line in the event panel.
    pub fn panel(&self, level: &str, kind: &'static str, text: String, admin_only: bool) {
        let line = PanelLine {
            daemon: self.server.name.clone(),
            at_ms: now_ms(),
            level: level.to_string(),
            kind,
            text,
        };
        if let Ok(json) = serde_json::to_string(&line) {
            self.hub.publish("log", json, admin_only);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `f`; if the view changed, bumps `rev` and publishes it.
    fn update(&self, f: impl FnOnce(&mut DaemonView)) {
        let mut shared = self.lock();
        let mut next = shared.view.clone();
        f(&mut next);
        next.rev = shared.view.rev;
        if next == shared.view {
            return;
        }
        next.rev += 1;
        if let Ok(json) = serde_json::to_string(&next) {
            // Published under the lock: a daemon's views reach the hub in rev order.
            self.hub.publish("daemon", json, false);
        }
        shared.view = next;
    }

    fn set_client(&self, client: Option<Client>) {
        self.lock().client = client;
    }

    fn unreachable(&self, reason: String) {
        let was = self.lock().view.reachable;
        self.set_client(None);
        if was {
            tracing::warn!(daemon = %self.server.name, %reason, "daemon unreachable");
            self.panel(
                "warn",
                "daemon",
                format!("daemon unreachable: {reason}"),
                false,
            );
        }
        self.update(|v| {
            v.reachable = false;
            v.error = reason;
        });
    }
}

/// Starts the task of one daemon.
pub fn spawn(
    server: Server,
    files: TlsFiles,
    timeout: Duration,
    log_level: LogLevel,
    hub: Arc<Hub>,
) -> Arc<Upstream> {
    let up = Arc::new(Upstream {
        shared: Mutex::new(Shared {
            view: DaemonView {
                name: server.name.clone(),
                addr: server.addr.clone(),
                error: "connecting".to_string(),
                ..DaemonView::default()
            },
            client: None,
        }),
        server,
        hub,
        nudge: Notify::new(),
    });
    tokio::spawn(run(up.clone(), files, timeout, log_level));
    up
}

async fn run(up: Arc<Upstream>, files: TlsFiles, timeout: Duration, log_level: LogLevel) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match Client::connect(&up.server.addr, &files, timeout).await {
            Ok(client) => {
                let reason = session(&up, client, log_level).await;
                up.unreachable(reason);
                backoff = BACKOFF_MIN;
            }
            Err(e) => {
                up.unreachable(e.to_string());
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        sleep(backoff).await;
    }
}

/// What one connection has learnt so far.
#[derive(Default)]
struct Known {
    fronts: Vec<proto::Frontend>,
    backs: Vec<proto::Backend>,
    buckets: Option<HashMap<(String, String), u32>>,
    vpp: Option<proto::VppInfo>,
}

/// One connection's life; returns why it ended.
async fn session(up: &Upstream, client: Client, log_level: LogLevel) -> String {
    let name = &up.server.name;
    let version = match client
        .call(client.rpc.clone().get_version(proto::GetVersionRequest {}))
        .await
    {
        Ok(v) => v.version,
        Err(e) => return e.to_string(),
    };
    let request = proto::WatchEventsRequest {
        log: true,
        log_level: proto_level(log_level) as i32,
        backend: true,
        frontend: true,
        ..Default::default()
    };
    let mut stream = match client.call(client.rpc.clone().watch_events(request)).await {
        Ok(s) => s,
        Err(e) => return format!("WatchEvents: {e}"),
    };
    let mut known = Known::default();
    if let Err(e) = refresh_lists(&client, &mut known).await {
        return e;
    }
    if let Err(e) = refresh_vpp(&client, &mut known).await {
        return e;
    }
    if known.vpp.as_ref().is_some_and(|v| v.connected) {
        fetch_lb(&client, &mut known).await;
    }
    up.set_client(Some(client.clone()));
    tracing::info!(daemon = %name, %version, "daemon connected");
    up.panel(
        "info",
        "daemon",
        format!("connected (maglev {version})"),
        false,
    );
    up.update(|v| {
        v.reachable = true;
        v.error.clear();
        v.version = version.clone();
    });
    publish(up, &known);

    let mut lists = tokio::time::interval_at(Instant::now() + LIST_REFRESH, LIST_REFRESH);
    let mut health = tokio::time::interval_at(Instant::now() + HEALTH_CHECK, HEALTH_CHECK);
    let mut refresh_at: Option<Instant> = None;
    let mut lb = LbSchedule::default();
    lb.want(Instant::now() + LB_TRAILING);
    let mut last_lb = Instant::now();
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(event)) => {
                    let (refresh, fetch_lb_state) = on_event(up, event);
                    if refresh {
                        refresh_at.get_or_insert(Instant::now() + EVENT_SETTLE);
                    }
                    if fetch_lb_state {
                        lb.want(Instant::now() + EVENT_SETTLE);
                    }
                }
                Ok(None) => return "the event stream ended".to_string(),
                Err(status) => return format!("event stream: {}", CtlError::from_status(&client.server, &status)),
            },
            _ = lists.tick() => {
                refresh_at = Some(Instant::now());
                lb.want(Instant::now());
            }
            _ = health.tick() => {
                let before = known.vpp.clone();
                if let Err(e) = refresh_vpp(&client, &mut known).await {
                    return format!("health check: {e}");
                }
                if vpp_changed(up, before.as_ref(), known.vpp.as_ref()) {
                    lb.want(Instant::now());
                }
                publish(up, &known);
            }
            () = up.nudge.notified() => {
                refresh_at = Some(Instant::now());
                lb.want(Instant::now());
            }
            () = sleep_until(refresh_at.unwrap_or(far)), if refresh_at.is_some() => {
                refresh_at = None;
                if let Err(e) = refresh_lists(&client, &mut known).await {
                    return e;
                }
                publish(up, &known);
            }
            () = sleep_until(lb.at.map_or(far, |t| t.max(last_lb + LB_STATE_MIN_GAP))), if lb.at.is_some() => {
                lb.fired(Instant::now());
                last_lb = Instant::now();
                if known.vpp.as_ref().is_some_and(|v| v.connected) {
                    fetch_lb(&client, &mut known).await;
                } else {
                    known.buckets = None;
                }
                publish(up, &known);
            }
        }
    }
}

/// When to fetch VPP's lb state next: soon after a trigger, then once more `LB_TRAILING`
/// later (the select loop also keeps fetches `LB_STATE_MIN_GAP` apart).
#[derive(Debug, Default, PartialEq, Eq)]
struct LbSchedule {
    at: Option<Instant>,
    trailing: bool,
}

impl LbSchedule {
    fn want(&mut self, at: Instant) {
        self.at = Some(self.at.map_or(at, |t| t.min(at)));
        self.trailing = true;
    }

    fn fired(&mut self, now: Instant) {
        self.at = self.trailing.then_some(now + LB_TRAILING);
        self.trailing = false;
    }
}

fn publish(up: &Upstream, known: &Known) {
    let fronts = view::frontends(&known.fronts, &known.backs, known.buckets.as_ref());
    let vpp = known.vpp.as_ref().map(VppView::from_info);
    up.update(|v| {
        v.frontends = fronts;
        v.vpp = vpp;
    });
}

async fn refresh_lists(client: &Client, known: &mut Known) -> Result<(), String> {
    let fronts = client
        .call(
            client
                .rpc
                .clone()
                .list_frontends(proto::ListFrontendsRequest {}),
        )
        .await
        .map_err(|e| format!("ListFrontends: {e}"))?;
    let backs = client
        .call(
            client
                .rpc
                .clone()
                .list_backends(proto::ListBackendsRequest {}),
        )
        .await
        .map_err(|e| format!("ListBackends: {e}"))?;
    known.fronts = fronts.frontends;
    known.backs = backs.backends;
    Ok(())
}

/// Also the health check: the daemon must answer; "VPP is disabled" is an answer.
async fn refresh_vpp(client: &Client, known: &mut Known) -> Result<(), String> {
    match client
        .call(client.rpc.clone().get_vpp_info(proto::GetVppInfoRequest {}))
        .await
    {
        Ok(info) => known.vpp = Some(info),
        Err(CtlError::Refused(_)) => known.vpp = None,
        Err(e) => return Err(format!("GetVPPInfo: {e}")),
    }
    Ok(())
}

/// Buckets are decoration: a failed fetch leaves them unknown, it does not end the session.
async fn fetch_lb(client: &Client, known: &mut Known) {
    match client
        .call(
            client
                .rpc
                .clone()
                .get_vpplb_state(proto::GetVpplbStateRequest {}),
        )
        .await
    {
        Ok(lb) => {
            tracing::debug!(server = %client.server, vips = lb.vips.len(), "fetched VPP lb state");
            known.buckets = Some(view::buckets(&lb));
        }
        Err(e) => {
            tracing::debug!(server = %client.server, error = %e, "GetVPPLBState failed");
            known.buckets = None;
        }
    }
}

/// Notes VPP (dis)connects in the panel; true when the lb state should be fetched again.
fn vpp_changed(
    up: &Upstream,
    before: Option<&proto::VppInfo>,
    now: Option<&proto::VppInfo>,
) -> bool {
    let (Some(b), Some(n)) = (before, now) else {
        return now.is_some();
    };
    if b.connected != n.connected || b.reconnects != n.reconnects {
        let text = if n.connected {
            format!("VPP connected ({})", n.version)
        } else if n.last_error.is_empty() {
            "VPP disconnected".to_string()
        } else {
            format!("VPP disconnected: {}", n.last_error)
        };
        up.panel(
            if n.connected { "info" } else { "warn" },
            "vpp",
            text,
            false,
        );
        return true;
    }
    false
}

/// Puts an event in the panel; says whether to refresh the lists and the lb state.
fn on_event(up: &Upstream, event: proto::Event) -> (bool, bool) {
    use proto::event::Kind;
    match event.kind {
        Some(Kind::Backend(b)) => {
            if let Some(t) = &b.transition {
                let from = state_word(t.from);
                let to = state_word(t.to);
                let why = t
                    .result
                    .as_ref()
                    .map(|r| format!(" ({})", r.detail))
                    .filter(|s| s != " ()")
                    .unwrap_or_else(|| {
                        if t.reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", t.reason)
                        }
                    });
                let level = if to == "down" { "warn" } else { "info" };
                up.panel(
                    level,
                    "transition",
                    format!("backend {} [{}]: {from} → {to}{why}", b.backend, b.frontend),
                    false,
                );
            }
            (true, true)
        }
        Some(Kind::Frontend(f)) => {
            if !f.initial {
                let word = |s: i32| {
                    proto::FrontendState::try_from(s)
                        .map(|s| view::enum_word(s.as_str_name(), "FRONTEND_STATE_"))
                        .unwrap_or_default()
                };
                let to = word(f.to);
                let level = if to == "down" { "warn" } else { "info" };
                up.panel(
                    level,
                    "frontend",
                    format!("frontend {}: {} → {to}", f.frontend, word(f.from)),
                    false,
                );
            }
            (true, !f.initial)
        }
        Some(Kind::Log(l)) => {
            let level = proto::LogLevel::try_from(l.level)
                .map(|s| view::enum_word(s.as_str_name(), "LOG_LEVEL_"))
                .unwrap_or_else(|_| "info".to_string());
            let mut text = l.message.clone();
            let mut fields: Vec<_> = l.fields.iter().collect();
            fields.sort();
            for (k, v) in fields {
                text.push_str(&format!(" {k}={v}"));
            }
            let vpp =
                l.target.contains("vpp") && l.message.to_ascii_lowercase().contains("connect");
            up.panel(&level, if vpp { "vpp" } else { "log" }, text, true);
            (false, vpp)
        }
        Some(Kind::Lost(n)) => {
            up.panel(
                "warn",
                "daemon",
                format!("{} events lost; refreshing", n.count),
                false,
            );
            (true, true)
        }
        None => (false, false),
    }
}

fn state_word(s: i32) -> String {
    proto::BackendState::try_from(s)
        .map(|s| view::enum_word(s.as_str_name(), "BACKEND_STATE_"))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn proto_level(l: LogLevel) -> proto::LogLevel {
    match l {
        LogLevel::Error => proto::LogLevel::Error,
        LogLevel::Warn => proto::LogLevel::Warn,
        LogLevel::Info => proto::LogLevel::Info,
        LogLevel::Debug => proto::LogLevel::Debug,
        LogLevel::Trace => proto::LogLevel::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_fetch_is_followed_by_one_trailing_fetch() {
        let t0 = Instant::now();
        let mut s = LbSchedule::default();
        s.want(t0 + Duration::from_secs(5));
        s.want(t0 + EVENT_SETTLE);
        assert_eq!(s.at, Some(t0 + EVENT_SETTLE), "the sooner wish wins");
        s.fired(t0);
        assert_eq!(s.at, Some(t0 + LB_TRAILING));
        s.fired(t0 + LB_TRAILING);
        assert_eq!(s.at, None, "one trailing fetch, not a loop");
        // A trigger while the trailing fetch waits pulls it in and earns a new trailing one.
        s.want(t0);
        s.fired(t0);
        s.want(t0 + EVENT_SETTLE);
        assert_eq!(s.at, Some(t0 + EVENT_SETTLE));
        assert!(s.trailing);
    }
}
