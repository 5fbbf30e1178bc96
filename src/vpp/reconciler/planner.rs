//! The reconciler's decisions, without I/O: which syncs are due and when to wake up. The
//! reconciler feeds it what happened (dirty frontends, a reload, a connection with its
//! epoch and VPP pid, the outcome of a sync) and does what it says; the rules are tested
//! here on paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::coalesce::Coalescer;
use super::warmup::{Phase, Warmup};
use crate::config::VppLbConfig;

/// A failed sync is tried again after this (or the sync interval, if shorter).
pub const RETRY: Duration = Duration::from_secs(2);

/// What a new connection means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewConnection {
    /// The same connection seen again: nothing to do.
    Same,
    /// A (re)connect: a full sync (or, during the warmup, released VIPs are written again).
    /// `restarted`: VPP's pid changed, its lb state is gone.
    New { restarted: bool },
}

#[derive(Debug)]
pub struct Planner {
    pub(super) warmup: Warmup,
    /// Frontend -> when its VIP is due for a sync.
    pending: BTreeMap<String, Instant>,
    coalesce: Coalescer,
    /// When the next full sync is due (after the warmup).
    next_full: Instant,
    epoch: Option<u64>,
    pid: Option<u32>,
}

impl Planner {
    /// `started`: when the daemon started (the warmup clock).
    pub fn new(started: Instant, now: Instant) -> Planner {
        Planner {
            warmup: Warmup::new(started),
            pending: BTreeMap::new(),
            coalesce: Coalescer::default(),
            next_full: now,
            epoch: None,
            pid: None,
        }
    }

    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The next moment something is due (None = only an outside event can help).
    pub fn next_wake(&self, now: Instant, lb: &VppLbConfig, connected: bool) -> Option<Instant> {
        match self.warmup.phase(now, lb) {
            Phase::Hold { until } => return Some(until),
            Phase::Final => return Some(now),
            Phase::Release | Phase::Done => {}
        }
        if !connected {
            return None;
        }
        let mut wake = self.pending.values().min().copied();
        let mut consider = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.warmup.done() {
            consider(self.next_full);
        } else {
            consider(self.warmup.next_poll());
        }
        wake
    }

    /// A frontend's VIP may have to change: due at once, or when its coalescing window
    /// ends (an earlier due time stays).
    pub fn on_dirty(&mut self, frontend: &str, now: Instant) {
        let due = self.coalesce.due(frontend, now);
        self.pending.entry(frontend.to_string()).or_insert(due);
    }

    /// A new config: a full sync, unless the warmup is still on (its clock goes on).
    pub fn on_reload(&mut self, now: Instant) {
        if self.warmup.done() {
            self.next_full = now;
        }
    }

    /// Connected on `epoch` to the VPP with `pid`.
    pub fn on_connected(&mut self, epoch: u64, pid: u32, now: Instant) -> NewConnection {
        if self.epoch == Some(epoch) {
            return NewConnection::Same;
        }
        let restarted = self.pid.is_some_and(|old| old != pid);
        self.epoch = Some(epoch);
        self.pid = Some(pid);
        if self.warmup.done() {
            self.next_full = now;
        } else {
            // VPP may have come back empty: released VIPs must be written again.
            self.warmup.reset_released();
        }
        NewConnection::New { restarted }
    }

    /// An operator's sync request now: refused (with how long to wait) before
    /// `startup-min-delay`.
    pub fn refuse_request(&self, now: Instant, lb: &VppLbConfig) -> Option<Duration> {
        match self.warmup.phase(now, lb) {
            Phase::Hold { until } => Some(until - now),
            _ => None,
        }
    }

    /// After the warmup: is the full sync due?
    pub fn full_due(&self, now: Instant) -> bool {
        self.warmup.done() && now >= self.next_full
    }

    /// A full sync ended: the next one after the interval, or soon when it failed. A good
    /// one covers every pending VIP.
    pub fn full_synced(&mut self, ok: bool, now: Instant, lb: &VppLbConfig) {
        if ok {
            self.pending.clear();
            self.next_full = now + lb.sync_interval;
        } else {
            self.next_full = now + RETRY.min(lb.sync_interval);
        }
    }

    /// Removes and returns the frontends whose sync is due.
    pub fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        self.pending.retain(|f, t| {
            let keep = *t > now;
            if !keep {
                due.push(f.clone());
            }
            keep
        });
        due
    }

    /// Per-VIP syncs of `frontends` start now (the coalescing windows start).
    pub fn vips_started(&mut self, frontends: &[String], now: Instant) {
        self.coalesce.synced(frontends, now);
    }

    /// Per-VIP syncs ended; `failed` are tried again soon, and since a failed write leaves
    /// the mirror stale, that retry is a full sync (once the warmup is over).
    pub fn vips_synced(&mut self, failed: &BTreeSet<String>, now: Instant, lb: &VppLbConfig) {
        if failed.is_empty() {
            return;
        }
        let retry_at = now + RETRY.min(lb.sync_interval);
        for f in failed {
            self.pending.insert(f.clone(), retry_at);
        }
        if self.warmup.done() {
            self.next_full = self.next_full.min(retry_at);
        }
    }

    /// The warmup is over: a full sync now.
    pub fn finish_warmup(&mut self, now: Instant) -> bool {
        if self.warmup.done() {
            return false;
        }
        self.warmup.finish();
        self.next_full = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::reconciler::coalesce::COALESCE;

    fn lb(min: u64, max: u64, interval: u64) -> VppLbConfig {
        VppLbConfig {
            sync_interval: Duration::from_secs(interval),
            ipv4_src_address: None,
            ipv6_src_address: None,
            sticky_buckets_per_core: 1024,
            flow_timeout: Duration::from_secs(40),
            startup_min_delay: Duration::from_secs(min),
            startup_max_delay: Duration::from_secs(max),
        }
    }

    fn planner_after_warmup(now: Instant) -> Planner {
        let mut p = Planner::new(now, now);
        p.on_connected(1, 100, now);
        p.finish_warmup(now);
        p.full_synced(true, now, &lb(0, 0, 60));
        p
    }

    #[tokio::test(start_paused = true)]
    async fn warmup_holds_until_min_then_releases_until_max() {
        let t0 = Instant::now();
        let lb = lb(5, 20, 60);
        let mut p = Planner::new(t0, t0);
        p.on_connected(1, 100, t0);
        // Before min: nothing but the wake-up at min, and requests are refused.
        assert_eq!(
            p.next_wake(t0, &lb, true),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(p.refuse_request(t0, &lb), Some(Duration::from_secs(5)));
        p.on_dirty("web", t0);
        assert!(!p.full_due(t0));
        // Between min and max: requests go through; the warmup polls.
        tokio::time::advance(Duration::from_secs(6)).await;
        let now = Instant::now();
        assert_eq!(p.refuse_request(now, &lb), None);
        assert_eq!(p.warmup.phase(now, &lb), Phase::Release);
        assert!(p.next_wake(now, &lb, true).is_some_and(|w| w <= now));
        // Per-VIP release: one VIP released, the others not.
        p.warmup.release("web".into());
        assert!(p.warmup.is_released("web") && !p.warmup.is_released("mail"));
        // At max: final, a full sync.
        tokio::time::advance(Duration::from_secs(15)).await;
        let now = Instant::now();
        assert_eq!(p.warmup.phase(now, &lb), Phase::Final);
        assert!(p.finish_warmup(now));
        assert!(p.full_due(now));
        assert!(!p.finish_warmup(now), "once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_the_warmup_clock() {
        let t0 = Instant::now();
        let mut p = Planner::new(t0, t0);
        tokio::time::advance(Duration::from_secs(3)).await;
        p.on_reload(Instant::now());
        // A longer min delay in the new config counts from the daemon's start.
        let now = Instant::now();
        assert_eq!(
            p.warmup.phase(now, &lb(5, 20, 60)),
            Phase::Hold {
                until: t0 + Duration::from_secs(5)
            }
        );
        assert!(!p.full_due(now));
        // After the warmup a reload is a full sync.
        let mut p = planner_after_warmup(now);
        assert!(!p.full_due(now));
        p.on_reload(now);
        assert!(p.full_due(now));
    }

    #[tokio::test(start_paused = true)]
    async fn dirty_vips_coalesce_per_vip() {
        let t0 = Instant::now();
        let mut p = planner_after_warmup(t0);
        p.on_dirty("web", t0);
        assert_eq!(p.take_due(t0), ["web"]);
        p.vips_started(&["web".to_string()], t0);
        // Right after a sync: the next event waits for the window; another VIP does not.
        let t1 = t0 + Duration::from_millis(10);
        p.on_dirty("web", t1);
        p.on_dirty("web", t1);
        p.on_dirty("mail", t1);
        assert_eq!(p.take_due(t1), ["mail"]);
        assert_eq!(p.next_wake(t1, &lb(0, 0, 60), true), Some(t0 + COALESCE));
        assert!(
            p.take_due(t0 + COALESCE - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(p.take_due(t0 + COALESCE), ["web"], "two events, one sync");
        // Disconnected: nothing wakes the reconciler but the connection.
        p.on_dirty("mail", t1);
        assert_eq!(p.next_wake(t1, &lb(0, 0, 60), false), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_retried_by_a_full_sync() {
        let t0 = Instant::now();
        let lb = lb(0, 0, 60);
        let mut p = planner_after_warmup(t0);
        assert!(!p.full_due(t0));
        let failed: BTreeSet<String> = ["web".to_string()].into();
        p.vips_synced(&failed, t0, &lb);
        assert!(!p.full_due(t0));
        assert!(p.full_due(t0 + RETRY), "the mirror is stale: a full sync");
        // A failed full sync is retried too; a good one clears what was pending.
        p.full_synced(false, t0 + RETRY, &lb);
        assert!(p.full_due(t0 + RETRY * 2));
        p.full_synced(true, t0 + RETRY * 2, &lb);
        assert!(p.take_due(t0 + RETRY * 3).is_empty());
        assert!(!p.full_due(t0 + RETRY * 3));
        assert!(p.full_due(t0 + RETRY * 2 + lb.sync_interval));
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_and_vpp_restart_bring_a_full_sync() {
        let t0 = Instant::now();
        let mut p = planner_after_warmup(t0);
        assert_eq!(p.on_connected(1, 100, t0), NewConnection::Same);
        assert!(!p.full_due(t0));
        // Same VPP, new connection.
        assert_eq!(
            p.on_connected(2, 100, t0),
            NewConnection::New { restarted: false }
        );
        assert!(p.full_due(t0));
        p.full_synced(true, t0, &lb(0, 0, 60));
        // VPP restarted (new pid).
        assert_eq!(
            p.on_connected(3, 200, t0),
            NewConnection::New { restarted: true }
        );
        assert!(p.full_due(t0));
        assert_eq!(p.epoch(), Some(3));
    }

    /// Operator requests (`maglev ctl sync`, also under `--dry-run`, where the same plan
    /// runs and only the sync itself writes nothing): refused before the min delay, let
    /// through after it without ending the warmup; after the warmup a requested full sync
    /// that went through counts as the full sync (pending VIPs covered, next one after the
    /// interval).
    #[tokio::test(start_paused = true)]
    async fn dry_run_requests_during_and_after_the_warmup() {
        let t0 = Instant::now();
        let lb = lb(5, 20, 60);
        let mut p = Planner::new(t0, t0);
        p.on_connected(1, 100, t0);
        p.on_dirty("web", t0);
        assert_eq!(
            p.refuse_request(t0 + Duration::from_secs(1), &lb),
            Some(Duration::from_secs(4))
        );
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(p.refuse_request(t1, &lb), None);
        // A requested full sync in the release phase: the warmup goes on.
        p.full_synced(true, t1, &lb);
        assert!(!p.warmup.done() && !p.full_due(t1));
        assert!(p.finish_warmup(t1));
        assert!(p.full_due(t1));
        p.full_synced(true, t1, &lb);
        // After the warmup: a request is never refused; one that went through moves the
        // next full sync and covers what was pending.
        let t2 = t1 + Duration::from_secs(10);
        p.on_dirty("web", t2);
        assert_eq!(p.refuse_request(t2, &lb), None);
        p.full_synced(true, t2, &lb);
        assert!(p.take_due(t2 + COALESCE).is_empty());
        assert!(!p.full_due(t1 + lb.sync_interval));
        assert!(p.full_due(t2 + lb.sync_interval));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnect_during_the_warmup_writes_released_vips_again() {
        let t0 = Instant::now();
        let mut p = Planner::new(t0, t0);
        p.on_connected(1, 100, t0);
        p.warmup.release("web".into());
        p.on_connected(2, 200, t0);
        assert!(!p.warmup.is_released("web"));
        assert!(!p.full_due(t0), "no full sync before the warmup ends");
    }
}
