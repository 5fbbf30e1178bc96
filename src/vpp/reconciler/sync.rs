//! One sync, generic over the executor: read VPP into the mirror when it has to, diff the
//! desired state against the mirror scope by scope, send the writes as one batch, put the
//! outcome into the mirror and the report, and on lb API 1.1.0 read back to verify. The
//! steps between the I/O ([`plan`], [`record`], [`verify_against`]) are pure. Counters,
//! status and the summary line are the reconciler's: it takes them from the [`Report`].

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, error, info};

use super::SyncError;
use super::executor::{LbExecutor, apply_to_mirror};
use super::mirror::Mirror;
use crate::vpp::lb::{ActualState, DesiredState, LbConfValues, LbOp, Scope, WeightMode, diff};
use crate::vpp::lb_io::{Applied, ReadStateError};

/// What one sync is asked to do.
pub struct SyncInput<'a> {
    pub desired: &'a DesiredState,
    /// In order; `Scope::All` or one scope per VIP.
    pub scopes: &'a [Scope],
    pub mode: WeightMode,
    /// The connection the sync runs on (the mirror of another one is not used).
    pub epoch: u64,
    /// Read VPP first even when the mirror is usable (an operator's request, a full sync).
    pub read: bool,
    /// Diff and report, write nothing.
    pub dry_run: bool,
}

/// What a sync carries over to the next: the mirror of VPP, and (lb API 1.1.0 cannot read
/// the conf back) the conf pushed on a connection.
#[derive(Debug, Default)]
pub struct SyncState {
    pub mirror: Option<Mirror>,
    pub pushed_conf: Option<(u64, LbConfValues)>,
}

impl SyncState {
    fn known_conf(&self, epoch: u64) -> Option<LbConfValues> {
        self.pushed_conf
            .filter(|(e, _)| *e == epoch)
            .map(|(_, c)| c)
    }
}

/// How one scope of a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeOutcome {
    /// Nothing to write.
    Noop,
    /// Dry-run: its writes are only reported.
    DryRun,
    /// Written, every write succeeded.
    Applied,
    /// Written, a write failed.
    Error,
}

impl ScopeOutcome {
    /// The `result` label of the lbsync counter.
    pub fn label(self) -> &'static str {
        match self {
            ScopeOutcome::Noop => "noop",
            ScopeOutcome::DryRun => "dry_run",
            ScopeOutcome::Applied => "applied",
            ScopeOutcome::Error => "error",
        }
    }
}

/// The outcome of one sync that could read VPP (or use its mirror).
#[derive(Debug, Default)]
pub struct Report {
    /// Writes made (or, in a dry-run, that would be made), in op order. Kept as ops, not
    /// text: only an operator's request prints them, a 64,000-AS sync formats none.
    pub ops: Vec<LbOp>,
    /// Frontends whose VIP had a failed write (retried soon).
    pub failed: BTreeSet<String>,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Writes made, per kind (for the sync's summary line and the write counters).
    pub kinds: BTreeMap<&'static str, usize>,
    /// Each scope and how it ended (scopes cut by a stop are left out).
    pub scopes: Vec<(Scope, ScopeOutcome)>,
    /// VPP was read (the mirror replaced) before the diff.
    pub read: bool,
}

impl Report {
    pub fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    pub fn into_result(self) -> Result<Vec<String>, SyncError> {
        match self.first_error {
            Some(first) => Err(SyncError::Write {
                failed: self.errors,
                first,
            }),
            None => Ok(self.ops.iter().map(ToString::to_string).collect()),
        }
    }
}

/// The writes of one sync, from the desired state and the mirror.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Planned {
    /// Every scope's ops in scope order (the conf once), to send as one batch.
    pub batch: Vec<LbOp>,
    /// The scopes that have ops in `batch`.
    pub writing: Vec<Scope>,
    /// Scopes with nothing to write, or (dry-run) their ops.
    pub noop: Vec<Scope>,
    pub dry_run: Vec<(Scope, Vec<LbOp>)>,
}

/// Pure: diffs each scope against `mirror`. Each per-VIP scope carries the conf when it
/// differs; the batch holds it once.
pub fn plan(
    desired: &DesiredState,
    mirror: &ActualState,
    scopes: &[Scope],
    mode: WeightMode,
    dry_run: bool,
) -> Planned {
    let mut out = Planned::default();
    for &scope in scopes {
        let ops = diff(desired, mirror, scope, mode).ops;
        if ops.is_empty() {
            out.noop.push(scope);
        } else if dry_run {
            out.dry_run.push((scope, ops));
        } else {
            for op in ops {
                if matches!(op, LbOp::SetConf(_)) && out.batch.contains(&op) {
                    continue;
                }
                out.batch.push(op);
            }
            out.writing.push(scope);
        }
    }
    out
}

/// Pure but for the log lines: puts the results of `ops` into the mirror (a failed write
/// makes it stale), the report (in op order) and the pushed conf.
pub fn record(
    state: &mut SyncState,
    desired: &DesiredState,
    ops: &[LbOp],
    results: Applied,
    mode: WeightMode,
    epoch: u64,
    report: &mut Report,
) {
    if let Some(m) = state.mirror.as_mut() {
        apply_to_mirror(m, ops, &results, mode);
    }
    for (op, result) in ops.iter().zip(results) {
        // None: skipped after an earlier failure of its VIP, or cut by a stop.
        let Some(result) = result else {
            continue;
        };
        let frontend = op
            .vip()
            .and_then(|k| desired.vips.get(&k))
            .map(|v| v.frontend.as_str());
        match result {
            Ok(msg) => {
                debug!(
                    kind = op.kind(),
                    msg,
                    frontend = frontend.unwrap_or("-"),
                    "VPP write: {op}"
                );
                *report.kinds.entry(op.kind()).or_insert(0) += 1;
                report.ops.push(op.clone());
                if let LbOp::SetConf(c) = op {
                    state.pushed_conf = Some((epoch, *c));
                }
            }
            Err(e) => {
                error!(error = %e, kind = op.kind(), "VPP write failed: {op}");
                report.fail(format!("{op}: {e}"));
                // Conf and stale VIPs are retried by the next full sync.
                if let Some(f) = frontend {
                    report.failed.insert(f.to_string());
                }
                // Later ops may have succeeded (several VIPs are in flight): they still
                // went into the mirror, so no early return here.
            }
        }
    }
}

/// Pure: after a legacy (lb 1.1.0) write, what `actual` (read back) still lacks per scope
/// goes into the report as failures of their VIPs.
pub fn verify_against(
    desired: &DesiredState,
    actual: &ActualState,
    scopes: &[Scope],
    report: &mut Report,
) {
    for scope in scopes {
        let left = diff(desired, actual, *scope, WeightMode::Legacy).ops;
        if left.is_empty() {
            continue;
        }
        let text: Vec<String> = left.iter().map(ToString::to_string).collect();
        error!(missing = ?text, "legacy mode: VPP does not show what was written");
        report.fail(format!("verify: still to do: {}", text.join("; ")));
        for v in left
            .iter()
            .filter_map(|op| op.vip().and_then(|k| desired.vips.get(&k)))
        {
            report.failed.insert(v.frontend.clone());
        }
        if let Some(entry) = report.scopes.iter_mut().find(|(s, _)| s == scope) {
            entry.1 = ScopeOutcome::Error;
        }
    }
}

/// Runs one sync through `exec`. Err only when VPP had to be read and could not be; a
/// failed write is in the report (and makes the mirror stale). `stop()`: start no further
/// VIP (shutdown).
pub async fn run<E: LbExecutor>(
    exec: &E,
    state: &mut SyncState,
    input: &SyncInput<'_>,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Report, ReadStateError> {
    let SyncInput {
        desired,
        scopes,
        mode,
        epoch,
        read,
        dry_run,
    } = *input;
    let mut report = Report::default();
    if scopes.is_empty() {
        return Ok(report);
    }
    // A full sync reads VPP; a per-VIP one diffs against the mirror, unless it is missing,
    // stale or of another connection.
    let full = scopes.contains(&Scope::All);
    let usable = state.mirror.as_ref().is_some_and(|m| m.usable(epoch));
    if full || read || !usable {
        let actual = exec.read(state.known_conf(epoch)).await?;
        state.mirror = Some(Mirror::read(actual, epoch, state.mirror.as_ref()));
        report.read = true;
        if stop() {
            return Ok(report);
        }
    }
    let planned = match &state.mirror {
        Some(m) => plan(desired, m.state(), scopes, mode, dry_run),
        None => Planned::default(),
    };
    for scope in &planned.noop {
        report.scopes.push((*scope, ScopeOutcome::Noop));
    }
    for (scope, ops) in &planned.dry_run {
        for op in ops {
            info!(kind = op.kind(), "dry-run: would {op}");
            report.ops.push(op.clone());
        }
        report.scopes.push((*scope, ScopeOutcome::DryRun));
    }
    if planned.batch.is_empty() || stop() {
        return Ok(report);
    }
    let results = exec.apply(&planned.batch, mode, stop).await;
    record(
        state,
        desired,
        &planned.batch,
        results,
        mode,
        epoch,
        &mut report,
    );
    for scope in &planned.writing {
        let failed = match scope {
            Scope::All => report.errors > 0,
            Scope::Vip(key) => desired
                .vips
                .get(key)
                .is_some_and(|v| report.failed.contains(&v.frontend)),
        };
        let outcome = if failed {
            ScopeOutcome::Error
        } else {
            ScopeOutcome::Applied
        };
        report.scopes.push((*scope, outcome));
    }
    if mode == WeightMode::Legacy && report.first_error.is_none() {
        match exec.read(state.known_conf(epoch)).await {
            Ok(actual) => {
                verify_against(desired, &actual, &planned.writing, &mut report);
                // What VPP showed is the best mirror there is.
                state.mirror = Some(Mirror::read(actual, epoch, state.mirror.as_ref()));
            }
            Err(e) => {
                report.fail(format!("verify read: {e}"));
                if let Some(m) = state.mirror.as_mut() {
                    m.mark_stale();
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
