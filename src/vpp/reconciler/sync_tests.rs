//! `sync::run` against the in-memory executor, and its pure steps.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use super::super::executor::fake::FakeVpp;
use super::*;
use crate::vpp::lb::{DesiredAs, DesiredVip, VipKey};
use crate::vpp::wire::{EncapType, Prefix};

fn key(vip: u8) -> VipKey {
    VipKey::new(Prefix::new([192, 0, 2, vip].into(), 32), 6, 80)
}

fn backend(vip: u8, n: u8) -> IpAddr {
    [10, 0, vip, n].into()
}

/// An AS `(n, weight, flush)` at 10.0.v.n.
type As = (u8, u8, bool);

/// VIP `v` of frontend `f{v}` with its ASes.
fn desired(vips: &[(u8, &[As])]) -> DesiredState {
    let mut d = DesiredState {
        conf: LbConfValues {
            ip4_src_address: [192, 0, 2, 254].into(),
            ip6_src_address: std::net::Ipv6Addr::UNSPECIFIED,
            sticky_buckets_per_core: 1024,
            flow_timeout: 40,
        },
        vips: Default::default(),
        problems: vec![],
    };
    for (v, ases) in vips {
        let ases = ases
            .iter()
            .map(|(n, weight, flush)| {
                (
                    backend(*v, *n),
                    DesiredAs {
                        backend: format!("b{v}.{n}"),
                        weight: *weight,
                        flush: *flush,
                    },
                )
            })
            .collect();
        d.vips.insert(
            key(*v),
            DesiredVip {
                frontend: format!("f{v}"),
                key: key(*v),
                encap: EncapType::GRE4,
                src_ip_sticky: false,
                ases,
                has_unknown: false,
            },
        );
    }
    d
}

fn never() -> bool {
    false
}

fn input<'a>(
    desired: &'a DesiredState,
    scopes: &'a [Scope],
    mode: WeightMode,
    dry_run: bool,
) -> SyncInput<'a> {
    SyncInput {
        desired,
        scopes,
        mode,
        epoch: 1,
        read: false,
        dry_run,
    }
}

fn texts(ops: &[LbOp]) -> Vec<String> {
    ops.iter().map(ToString::to_string).collect()
}

fn reads(vpp: &FakeVpp) -> usize {
    vpp.reads.load(Ordering::Relaxed)
}

fn writes(vpp: &FakeVpp) -> usize {
    vpp.writes.load(Ordering::Relaxed)
}

fn vpp_state(vpp: &FakeVpp) -> ActualState {
    vpp.state.lock().map(|s| s.clone()).unwrap_or_default()
}

fn mirror_state(st: &SyncState) -> Option<ActualState> {
    st.mirror.as_ref().map(|m| m.state().clone())
}

/// One sync with no stop; a failed read gives an empty report (the tests check its fields).
async fn sync_once(
    vpp: &FakeVpp,
    st: &mut SyncState,
    desired: &DesiredState,
    scopes: &[Scope],
    mode: WeightMode,
    dry_run: bool,
) -> Report {
    run(vpp, st, &input(desired, scopes, mode, dry_run), &never)
        .await
        .unwrap_or_default()
}

/// A full sync into an empty VPP, as the start of most tests.
async fn synced(vpp: &FakeVpp, want: &DesiredState, mode: WeightMode) -> SyncState {
    let mut st = SyncState::default();
    let report = sync_once(vpp, &mut st, want, &[Scope::All], mode, false).await;
    assert_eq!(report.first_error, None);
    st
}

#[tokio::test]
async fn full_scope_reads_once_and_writes_every_op_in_order() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Weighted;
    let want = desired(&[
        (1, &[(1, 100, false), (2, 50, false)]),
        (2, &[(1, 100, false)]),
    ]);
    let mut st = SyncState::default();
    let report = sync_once(&vpp, &mut st, &want, &[Scope::All], mode, false).await;
    let expected: Vec<String> = diff(&want, &ActualState::default(), Scope::All, mode)
        .ops
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(texts(&report.ops), expected);
    assert_eq!(report.ops.len(), 1 + 2 + 3, "conf, two VIPs, three ASes");
    assert!(report.read);
    assert_eq!(report.scopes, [(Scope::All, ScopeOutcome::Applied)]);
    assert_eq!(report.kinds.get("add_as"), Some(&3));
    assert_eq!(reads(&vpp), 1);
    assert_eq!(writes(&vpp), 6);
    assert_eq!(mirror_state(&st), Some(vpp_state(&vpp)));
    // The conf pushed is kept for this connection (lb 1.1.0 cannot read it back).
    assert_eq!(st.known_conf(1), Some(want.conf));
    assert_eq!(st.known_conf(2), None);
    // Again: nothing to do, but a full sync still reads.
    let report = sync_once(&vpp, &mut st, &want, &[Scope::All], mode, false).await;
    assert!(report.ops.is_empty());
    assert_eq!(report.scopes, [(Scope::All, ScopeOutcome::Noop)]);
    assert_eq!((reads(&vpp), writes(&vpp)), (2, 6));
}

#[tokio::test]
async fn vip_scope_writes_from_the_mirror_and_touches_no_other_vip() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Weighted;
    let want = desired(&[(1, &[(1, 100, false)]), (2, &[(1, 100, false)])]);
    let mut st = synced(&vpp, &want, mode).await;
    // Both VIPs change; only VIP 1 is in scope.
    let want = desired(&[(1, &[(1, 30, false)]), (2, &[(1, 0, true)])]);
    let scopes = [Scope::Vip(key(1))];
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert!(!report.read);
    assert_eq!(
        texts(&report.ops),
        [format!(
            "set as {} of vip {} weight 30",
            backend(1, 1),
            key(1)
        )]
    );
    assert_eq!(report.scopes, [(Scope::Vip(key(1)), ScopeOutcome::Applied)]);
    assert_eq!(reads(&vpp), 1, "no read for a per-VIP sync");
    let vpp_now = vpp_state(&vpp);
    let weight = |v: u8| {
        vpp_now
            .vips
            .get(&key(v))
            .and_then(|vip| vip.ases.get(&backend(v, 1)))
            .and_then(|a| a.weight)
    };
    assert_eq!((weight(1), weight(2)), (Some(30), Some(100)));
    assert_eq!(mirror_state(&st), Some(vpp_now));
    // Two VIPs in one sync: one batch, each scope reported.
    let scopes = [Scope::Vip(key(1)), Scope::Vip(key(2))];
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert_eq!(
        report.scopes,
        [
            (Scope::Vip(key(1)), ScopeOutcome::Noop),
            (Scope::Vip(key(2)), ScopeOutcome::Applied)
        ]
    );
    assert_eq!(report.ops.len(), 1);
    // A mirror of another connection is not used: that sync reads.
    let mut other = input(&want, &scopes, mode, false);
    other.epoch = 2;
    let report = run(&vpp, &mut st, &other, &never).await.unwrap_or_default();
    assert!(report.read);
    assert_eq!(reads(&vpp), 2);
}

#[tokio::test]
async fn dry_run_reports_the_ops_writes_nothing_and_leaves_the_mirror() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Weighted;
    let want = desired(&[(1, &[(1, 100, false)])]);
    // Into an empty VPP: every op reported, none sent.
    let mut st = SyncState::default();
    let report = sync_once(&vpp, &mut st, &want, &[Scope::All], mode, true).await;
    assert_eq!(report.ops.len(), 3);
    assert_eq!(report.scopes, [(Scope::All, ScopeOutcome::DryRun)]);
    assert!(report.kinds.is_empty(), "nothing was written");
    assert_eq!(writes(&vpp), 0);
    assert_eq!(mirror_state(&st), Some(ActualState::default()));
    // Per VIP, against a synced VPP: the mirror stays as it was.
    let mut st = synced(&vpp, &want, mode).await;
    let before = (mirror_state(&st), vpp_state(&vpp), writes(&vpp));
    let changed = desired(&[(1, &[(1, 0, true)])]);
    let scopes = [Scope::Vip(key(1))];
    let report = sync_once(&vpp, &mut st, &changed, &scopes, mode, true).await;
    assert_eq!(
        texts(&report.ops),
        [format!(
            "set as {} of vip {} weight 0 flush",
            backend(1, 1),
            key(1)
        )]
    );
    assert_eq!(report.scopes, [(scopes[0], ScopeOutcome::DryRun)]);
    assert_eq!((mirror_state(&st), vpp_state(&vpp), writes(&vpp)), before);
    assert!(st.mirror.as_ref().is_some_and(|m| m.usable(1)));
}

#[tokio::test]
async fn a_failed_write_is_reported_and_makes_the_mirror_stale() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Weighted;
    let want = desired(&[(1, &[(1, 100, false)]), (2, &[(1, 100, false)])]);
    let mut st = synced(&vpp, &want, mode).await;
    if let Ok(mut f) = vpp.fail.lock() {
        f.insert(backend(2, 1));
    }
    let want = desired(&[(1, &[(1, 50, false)]), (2, &[(1, 50, false)])]);
    let scopes = [Scope::Vip(key(1)), Scope::Vip(key(2))];
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert_eq!(report.errors, 1);
    assert_eq!(report.failed, ["f2".to_string()].into());
    assert_eq!(
        report.scopes,
        [
            (scopes[0], ScopeOutcome::Applied),
            (scopes[1], ScopeOutcome::Error)
        ]
    );
    // The write that worked is reported; the mirror is not trusted any more.
    assert_eq!(report.ops.len(), 1);
    assert!(st.mirror.as_ref().is_some_and(|m| !m.usable(1)));
    assert!(matches!(
        report.into_result(),
        Err(SyncError::Write { failed: 1, .. })
    ));
    // So the next per-VIP sync reads VPP first, and then has only VIP 2 to do.
    if let Ok(mut f) = vpp.fail.lock() {
        f.clear();
    }
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert!(report.read);
    assert_eq!(report.ops.len(), 1);
    assert_eq!(report.first_error, None);
    assert!(st.mirror.as_ref().is_some_and(|m| m.usable(1)));
}

/// Flush is an edge: an AS already at weight 0 unflushed gets one flushing write when the
/// policy starts asking for it, and a second sync writes nothing.
#[tokio::test]
async fn flush_is_sent_once_for_an_as_already_at_zero() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Weighted;
    let mut st = synced(&vpp, &desired(&[(1, &[(1, 100, false)])]), mode).await;
    let scopes = [Scope::Vip(key(1))];
    // To 0 without flush (e.g. down without flush-on-down).
    let quiet = desired(&[(1, &[(1, 0, false)])]);
    let report = sync_once(&vpp, &mut st, &quiet, &scopes, mode, false).await;
    assert_eq!(report.ops.len(), 1);
    // Disabled: weight 0 with flush, the weight is already 0.
    let disabled = desired(&[(1, &[(1, 0, true)])]);
    let report = sync_once(&vpp, &mut st, &disabled, &scopes, mode, false).await;
    assert_eq!(
        texts(&report.ops),
        [format!(
            "set as {} of vip {} weight 0 flush",
            backend(1, 1),
            key(1)
        )]
    );
    let report = sync_once(&vpp, &mut st, &disabled, &scopes, mode, false).await;
    assert!(report.ops.is_empty(), "a second disable writes nothing");
    assert_eq!(report.scopes, [(scopes[0], ScopeOutcome::Noop)]);
    // A full sync re-reads VPP (which does not say what was flushed): the mirror keeps it.
    let report = sync_once(&vpp, &mut st, &disabled, &[Scope::All], mode, false).await;
    assert!(report.read && report.ops.is_empty());
}

/// lb API 1.1.0 has no weights: weight 0 deletes the AS (flushing per the policy), every
/// write is verified by reading VPP back.
#[tokio::test]
async fn legacy_weight_zero_deletes_the_as_and_is_verified() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Legacy;
    let want = desired(&[(1, &[(1, 100, false), (2, 100, false)])]);
    let mut st = synced(&vpp, &want, mode).await;
    assert_eq!(reads(&vpp), 2, "the full read and the verify read");
    let scopes = [Scope::Vip(key(1))];
    let down = desired(&[(1, &[(1, 0, true), (2, 100, false)])]);
    let report = sync_once(&vpp, &mut st, &down, &scopes, mode, false).await;
    assert_eq!(
        texts(&report.ops),
        [format!(
            "del as {} from vip {} flush",
            backend(1, 1),
            key(1)
        )]
    );
    assert_eq!(report.first_error, None);
    assert_eq!(reads(&vpp), 3, "verified");
    let gone = vpp_state(&vpp)
        .vips
        .get(&key(1))
        .and_then(|v| v.ases.get(&backend(1, 1)))
        .is_some_and(|a| !a.used);
    assert!(gone);
    // Already deleted: a second request writes nothing (its flows end with the timeout).
    let report = sync_once(&vpp, &mut st, &down, &scopes, mode, false).await;
    assert!(report.ops.is_empty());
    assert_eq!(reads(&vpp), 3, "nothing written, nothing to verify");
    // Up again: added back.
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert_eq!(
        texts(&report.ops),
        [format!(
            "add as {} to vip {} weight 100",
            backend(1, 1),
            key(1)
        )]
    );
}

#[tokio::test]
async fn legacy_verify_catches_a_write_vpp_acknowledged_but_did_not_apply() {
    let vpp = FakeVpp::default();
    let mode = WeightMode::Legacy;
    let mut st = synced(&vpp, &desired(&[(1, &[(1, 100, false)])]), mode).await;
    if let Ok(mut s) = vpp.swallow.lock() {
        s.insert(backend(1, 2));
    }
    let want = desired(&[(1, &[(1, 100, false), (2, 100, false)])]);
    let scopes = [Scope::Vip(key(1))];
    let report = sync_once(&vpp, &mut st, &want, &scopes, mode, false).await;
    assert_eq!(report.errors, 1);
    assert!(
        report
            .first_error
            .as_deref()
            .is_some_and(|e| e.starts_with("verify: still to do: add as 10.0.1.2"))
    );
    assert_eq!(report.failed, ["f1".to_string()].into());
    assert_eq!(report.scopes, [(scopes[0], ScopeOutcome::Error)]);
    // The mirror is what VPP showed: the retry adds the AS again.
    assert_eq!(mirror_state(&st), Some(vpp_state(&vpp)));
}

#[tokio::test]
async fn a_stop_after_the_read_writes_nothing() {
    let vpp = FakeVpp::default();
    let want = desired(&[(1, &[(1, 100, false)])]);
    let mut st = SyncState::default();
    let stopped = || true;
    let report = run(
        &vpp,
        &mut st,
        &input(&want, &[Scope::All], WeightMode::Weighted, false),
        &stopped,
    )
    .await
    .unwrap_or_default();
    assert!(report.read && report.ops.is_empty() && report.scopes.is_empty());
    assert_eq!(writes(&vpp), 0);
}

#[test]
fn plan_sends_the_conf_once_and_sorts_scopes_by_outcome() {
    let mode = WeightMode::Weighted;
    let want = desired(&[(1, &[(1, 100, false)]), (2, &[(1, 100, false)])]);
    let mut mirror = ActualState::default();
    for op in diff(&want, &ActualState::default(), Scope::Vip(key(2)), mode).ops {
        mirror.apply(&op, mode);
    }
    mirror.conf = None; // the conf differs again
    let scopes = [Scope::Vip(key(1)), Scope::Vip(key(2)), Scope::Vip(key(3))];
    // The conf differs: every scope carries it, the batch holds it once, first.
    let p = plan(&want, &mirror, &scopes, mode, false);
    assert_eq!(p.batch.iter().filter(|o| o.kind() == "set_conf").count(), 1);
    assert_eq!(p.batch.first().map(LbOp::kind), Some("set_conf"));
    assert_eq!(p.writing, scopes);
    assert!(p.noop.is_empty());
    // The conf is right: VIP 2 is in place and VIP 3 is not desired (a per-VIP scope
    // never removes): nothing to do for either.
    let mut conf_right = mirror.clone();
    conf_right.conf = Some(want.conf);
    let p = plan(&want, &conf_right, &scopes, mode, false);
    assert_eq!(p.writing, scopes[..1]);
    assert_eq!(p.noop, scopes[1..]);
    assert_eq!(p.batch.len(), 2, "add vip, add as");
    let d = plan(&want, &mirror, &scopes, mode, true);
    assert!(d.batch.is_empty() && d.writing.is_empty());
    assert_eq!(
        d.dry_run.len(),
        3,
        "each scope reports its own ops, conf included"
    );
    assert!(
        d.dry_run
            .iter()
            .all(|(_, ops)| ops.first().map(LbOp::kind) == Some("set_conf"))
    );
}
