//! The reconciler: the only writer to VPP (docs/design.md §7).
//!
//! - Per-VIP sync on every backend/frontend event of a frontend: a lone event at once,
//!   bursts coalesced (see `coalesce`).
//! - Full sync every `sync-interval`, after a reload, after every (re)connect, on request.
//! - Warmup after daemon start: no writes before `startup-min-delay`; then each VIP is
//!   released as soon as none of its backends is unknown (polled every 250 ms); a full
//!   sync at `startup-max-delay`, or as soon as every VIP was released. A reload does not
//!   restart the clock.
//! - `--dry-run`: reads and diffs, logs each write as "dry-run: would …", sends nothing.
//! - A failed write is logged, its VIP retried a little later; a lost connection needs
//!   nothing special, the reconnect brings a full sync.
//!
//! Parts: `planner` decides what is due (pure), `sync` runs one sync against an
//! `executor` (VPP, or an in-memory fake in the tests) and keeps the `mirror`; this file
//! is the shell that feeds them events and records counters, status and logs.

mod coalesce;
mod executor;
mod mirror;
mod planner;
mod sync;
mod warmup;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::client::{ConnState, Connection, LbApiGeneration, VppError};
use super::counters::VppCounters;
use super::lb::{DesiredState, Scope, desired_now, desired_of};
use super::lb_io::{self, ReadStateError};
use super::status::VppStatus;
use crate::checker::{Checker, DirtyFrontends};
use crate::config::Config;
use executor::VppExecutor;
use planner::{NewConnection, Planner};
use sync::{Report, ScopeOutcome, SyncInput, SyncState};

pub use warmup::{Phase, Warmup};

/// Warmup: how often to look for VIPs that can be released.
const WARMUP_POLL: Duration = Duration::from_millis(250);

/// Why a requested sync did not (fully) happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("{}", super::VppDisabled)]
    Disabled,
    #[error("unknown frontend {0:?}")]
    NotFound(String),
    #[error("not connected to VPP")]
    Disconnected,
    #[error("VPP warmup: no writes for another {0:?} (startup-min-delay)")]
    Warmup(Duration),
    #[error("reading VPP's lb state: {0}")]
    Read(#[from] ReadStateError),
    #[error("{failed} write(s) failed, first: {first}")]
    Write { failed: usize, first: String },
    #[error("the VPP reconciler is not running")]
    Stopped,
}

/// A sync asked for through the API (`None` = full sync).
pub(crate) struct SyncRequest {
    pub frontend: Option<String>,
    pub reply: oneshot::Sender<Result<Vec<String>, SyncError>>,
}

/// What the reconciler works on.
pub(crate) struct Inputs {
    pub checker: Checker,
    pub status: Arc<VppStatus>,
    pub conn: Arc<Connection>,
    pub counters: Arc<VppCounters>,
    pub config: watch::Receiver<Arc<Config>>,
    /// Frontends whose VIP may need a sync (never the log/event bus).
    pub dirty: Arc<DirtyFrontends>,
    pub requests: mpsc::Receiver<SyncRequest>,
    pub dry_run: bool,
    /// When the daemon started (the warmup clock).
    pub started: Instant,
    /// True = shutting down: start no sync and no further VIP, finish the VIPs in flight.
    pub stop: watch::Receiver<bool>,
}

enum Target {
    All,
    Frontends(Vec<String>),
}

pub(crate) struct Reconciler {
    checker: Checker,
    status: Arc<VppStatus>,
    conn: Arc<Connection>,
    conn_rx: watch::Receiver<ConnState>,
    counters: Arc<VppCounters>,
    dry_run: bool,
    stop: watch::Receiver<bool>,
    /// What is due when (pure; see `planner`).
    plan: Planner,
    /// VPP's lb state as last read or written (see `mirror`), and the conf pushed.
    sync_state: SyncState,
    problems: Vec<String>,
}

impl Reconciler {
    pub(crate) async fn run(inputs: Inputs) {
        let Inputs {
            checker,
            status,
            conn,
            counters,
            mut config,
            dirty,
            mut requests,
            dry_run,
            started,
            mut stop,
        } = inputs;
        config.mark_unchanged();
        let conn_rx = conn.state();
        let mut me = Reconciler {
            checker,
            status,
            conn,
            conn_rx,
            counters,
            dry_run,
            stop: stop.clone(),
            plan: Planner::new(started, Instant::now()),
            sync_state: SyncState::default(),
            problems: Vec::new(),
        };
        me.on_conn_change();
        let (mut config_open, mut conn_open, mut requests_open) = (true, true, true);
        loop {
            if me.stopping() {
                info!("VPP reconciler stopped (shutdown); VPP keeps what it has");
                return;
            }
            let wake = me.next_wake(Instant::now());
            tokio::select! {
                _ = stop.changed() => continue,
                req = requests.recv(), if requests_open => match req {
                    Some(req) => {
                        let result = me.on_request(req.frontend).await;
                        let _ = req.reply.send(result);
                    }
                    None => requests_open = false,
                },
                () = dirty.marked() => {
                    // Everything marked so far is one set: a burst of any size is one look.
                    for f in dirty.take().frontends {
                        me.on_dirty(&f);
                    }
                }
                changed = config.changed(), if config_open => match changed {
                    Ok(()) => me.on_reload(),
                    Err(_) => config_open = false,
                },
                changed = me.conn_rx.changed(), if conn_open => match changed {
                    Ok(()) => me.on_conn_change(),
                    Err(_) => conn_open = false,
                },
                () = sleep_until(wake) => {}
            }
            me.run_due().await;
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn connected(&self) -> bool {
        self.conn_rx.borrow().is_connected()
    }

    fn lb_config(&self) -> crate::config::VppLbConfig {
        self.checker.read(|st| st.config.vpp.lb.clone())
    }

    /// The next moment something is due (None = only an outside event can help).
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        self.plan
            .next_wake(now, &self.lb_config(), self.connected())
    }

    fn on_dirty(&mut self, frontend: &str) {
        self.plan.on_dirty(frontend, Instant::now());
    }

    fn on_reload(&mut self) {
        self.plan.on_reload(Instant::now());
    }

    fn on_conn_change(&mut self) {
        let state = self.conn_rx.borrow_and_update().clone();
        let ConnState::Connected {
            generation,
            vpe_pid,
            epoch,
            version,
            ..
        } = state
        else {
            return;
        };
        match self.plan.on_connected(epoch, vpe_pid, Instant::now()) {
            NewConnection::Same => return,
            NewConnection::New { restarted: true } => {
                info!(vpe_pid, "VPP restarted: its lb state is rebuilt");
            }
            NewConnection::New { restarted: false } => {}
        }
        match generation {
            LbApiGeneration::Weighted => {
                info!(%version, "lb API 1.2.0: weights in use");
            }
            LbApiGeneration::Legacy => warn!(
                %version,
                "LEGACY MODE (lb API 1.1.0, VPP <= 26.06): no AS weights; an effective weight \
                 of 0 deletes the AS, any weight above 0 adds it with the same share as the \
                 others; gre6 VIPs are created through the CLI and every write is verified"
            ),
            LbApiGeneration::Absent => error!(
                %version,
                "VPP has no usable lb plugin API: nothing will be programmed"
            ),
        }
        if self.plan.warmup.done() {
            info!(epoch, "connected to VPP: full sync");
        }
    }

    async fn on_request(&mut self, frontend: Option<String>) -> Result<Vec<String>, SyncError> {
        let now = Instant::now();
        if let Some(wait) = self.plan.refuse_request(now, &self.lb_config()) {
            return Err(SyncError::Warmup(wait));
        }
        let target = match frontend {
            None => Target::All,
            Some(name) => {
                if !self
                    .checker
                    .read(|st| st.config.frontends.contains_key(&name))
                {
                    return Err(SyncError::NotFound(name));
                }
                Target::Frontends(vec![name])
            }
        };
        let full = matches!(target, Target::All);
        let report = self.sync(&target, true).await?;
        if full && report.first_error.is_none() {
            self.plan
                .full_synced(true, Instant::now(), &self.lb_config());
        }
        report.into_result()
    }

    async fn run_due(&mut self) {
        let now = Instant::now();
        let lb = self.lb_config();
        match self.plan.warmup.phase(now, &lb) {
            Phase::Hold { .. } => return,
            Phase::Final => self.finish_warmup("startup-max-delay reached"),
            Phase::Release | Phase::Done => {}
        }
        if !self.connected() {
            return;
        }
        if !self.plan.warmup.done() {
            self.warmup_step(now).await;
            return;
        }
        if self.plan.full_due(now) {
            // Per-VIP failures are covered by the full retry.
            let ok = match self.sync(&Target::All, true).await {
                Ok(report) => report.first_error.is_none(),
                Err(e) => {
                    self.sync_failed(&e);
                    false
                }
            };
            self.plan.full_synced(ok, now, &lb);
            return;
        }
        let due = self.plan.take_due(now);
        if due.is_empty() {
            return;
        }
        self.sync_frontends(due, now).await;
    }

    /// Per-VIP syncs of `frontends`; failures come back later.
    async fn sync_frontends(&mut self, frontends: Vec<String>, now: Instant) -> BTreeSet<String> {
        let lb = self.lb_config();
        self.plan.vips_started(&frontends, Instant::now());
        match self
            .sync(&Target::Frontends(frontends.clone()), false)
            .await
        {
            Ok(report) => {
                self.plan.vips_synced(&report.failed, now, &lb);
                frontends
                    .into_iter()
                    .filter(|f| !report.failed.contains(f))
                    .collect()
            }
            Err(e) => {
                self.sync_failed(&e);
                if !matches!(e, SyncError::Disconnected) {
                    self.plan
                        .vips_synced(&frontends.into_iter().collect(), now, &lb);
                }
                BTreeSet::new()
            }
        }
    }

    /// Between min and max delay: release every VIP none of whose backends is unknown;
    /// keep released VIPs in step with their events.
    async fn warmup_step(&mut self, now: Instant) {
        // Due events of released VIPs are synced; those of the others are dropped (the
        // poll below releases them once their backends are known).
        let mut targets: BTreeSet<String> = self
            .plan
            .take_due(now)
            .into_iter()
            .filter(|f| self.plan.warmup.is_released(f))
            .collect();
        let desired = self.desired();
        if now >= self.plan.warmup.next_poll() {
            self.plan.warmup.polled(now + WARMUP_POLL);
            for vip in desired.vips.values() {
                if !vip.has_unknown && !self.plan.warmup.is_released(&vip.frontend) {
                    targets.insert(vip.frontend.clone());
                }
            }
        }
        if !targets.is_empty() {
            let newly: Vec<String> = targets
                .iter()
                .filter(|f| !self.plan.warmup.is_released(f))
                .cloned()
                .collect();
            if !newly.is_empty() {
                info!(frontends = ?newly, "warmup: releasing VIPs whose backends are all known");
            }
            let ok = self
                .sync_frontends(targets.into_iter().collect(), now)
                .await;
            for f in ok {
                self.plan.warmup.release(f);
            }
        }
        let all_released = desired
            .vips
            .values()
            .all(|v| self.plan.warmup.is_released(&v.frontend));
        if all_released {
            self.finish_warmup("every VIP is released");
        }
    }

    fn finish_warmup(&mut self, why: &str) {
        if self.plan.finish_warmup(Instant::now()) {
            info!("VPP warmup over ({why}): full sync");
            self.status.update(|i| i.warmup_done = true);
        }
    }

    fn sync_failed(&self, e: &SyncError) {
        match e {
            SyncError::Disconnected => {}
            e => {
                error!(error = %e, "VPP sync failed");
                self.status.update(|i| i.last_error = e.to_string());
            }
        }
    }

    fn desired(&self) -> DesiredState {
        self.checker.read(desired_now)
    }

    fn report_problems(&mut self, desired: &DesiredState) {
        if desired.problems != self.problems {
            for p in &desired.problems {
                warn!("VPP: {p}");
            }
            self.problems = desired.problems.clone();
        }
    }

    /// Reads VPP if it has to, then diffs and writes each scope of `target`
    /// (`sync::run`); counts, logs and reports the outcome.
    /// `read`: read VPP first even for a per-VIP sync (an operator's request: someone
    /// else may have written to VPP).
    async fn sync(&mut self, target: &Target, read: bool) -> Result<Report, SyncError> {
        let client = self.conn.client().ok_or(SyncError::Disconnected)?;
        let mode = lb_io::weight_mode(&client)?;
        let epoch = self.plan.epoch().unwrap_or_default();
        let full = matches!(target, Target::All);
        let desired = match target {
            Target::All => self.desired(),
            Target::Frontends(names) => self.checker.read(|st| desired_of(st, names)),
        };
        if full {
            self.report_problems(&desired);
        }
        let scopes: Vec<Scope> = match target {
            Target::All => vec![Scope::All],
            Target::Frontends(names) => names
                .iter()
                .filter_map(|n| desired.vip_of(n).map(|v| Scope::Vip(v.key)))
                .collect(),
        };
        let Some(scope_label) = scopes.first().map(|s| s.as_str()) else {
            return Ok(Report::default());
        };
        let started = Instant::now();
        let exec = VppExecutor {
            client: &client,
            counters: &self.counters,
        };
        let input = SyncInput {
            desired: &desired,
            scopes: &scopes,
            mode,
            epoch,
            read,
            dry_run: self.dry_run,
        };
        let stop = self.stop.clone();
        let report =
            match sync::run(&exec, &mut self.sync_state, &input, &move || *stop.borrow()).await {
                Ok(report) => report,
                Err(ReadStateError::Vpp(VppError::Disconnected(_))) => {
                    return Err(SyncError::Disconnected);
                }
                Err(e) => {
                    self.counters.lbsync(scope_label, "error");
                    return Err(e.into());
                }
            };
        // `lbsync` attributes the writes counted before it to its scope: the scopes that
        // wrote nothing first, then the writes, then the scopes that wrote.
        let wrote = |o: &ScopeOutcome| matches!(o, ScopeOutcome::Applied | ScopeOutcome::Error);
        for (scope, outcome) in report.scopes.iter().filter(|(_, o)| !wrote(o)) {
            self.counters.lbsync(scope.as_str(), outcome.label());
        }
        for (kind, n) in &report.kinds {
            for _ in 0..*n {
                self.counters.write(kind);
            }
        }
        for (scope, outcome) in report.scopes.iter().filter(|(_, o)| wrote(o)) {
            self.counters.lbsync(scope.as_str(), outcome.label());
        }
        if !report.kinds.is_empty() || report.errors > 0 {
            log_summary(scope_label, &report, started);
        }
        if let Some(e) = &report.first_error {
            self.status.update(|i| i.last_error = e.clone());
        }
        Ok(report)
    }
}

/// One INFO line per sync that wrote something: counts per kind and how long it took
/// (the single writes are at DEBUG, so a 64,000-AS sync is one line, not 64,000).
fn log_summary(scope: &str, report: &Report, started: Instant) {
    let counts: Vec<String> = report
        .kinds
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    info!(
        scope,
        writes = report.kinds.values().sum::<usize>(),
        errors = report.errors,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "VPP sync ({scope}): {}",
        counts.join(" ")
    );
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
