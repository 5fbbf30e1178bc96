//! Per-backend probe statistics kept beside the health state, so that metrics are read from
//! the same place the gRPC API reads (no second bookkeeping).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, fence};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::health::{ProbeResult, ResultCode, State};

/// Upper bounds (seconds) of the probe duration histogram buckets; the last, +Inf, takes
/// every slower probe. The recorder (`observe`) and the exporter (`le` labels) both read
/// this array, so the counts and their labels cannot drift apart.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    f64::INFINITY,
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeStats {
    /// Probes per result code, indexed like `ResultCode::ALL`.
    pub by_code: [u64; ResultCode::ALL.len()],
    /// Non-cumulative counts per bucket of `DURATION_BUCKETS`.
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    pub duration_sum: f64,
    pub count: u64,
}

impl ProbeStats {
    pub fn count_of(&self, code: ResultCode) -> u64 {
        self.by_code.get(code.index()).copied().unwrap_or(0)
    }
}

/// The `DURATION_BUCKETS` bucket of a probe that took `duration`.
fn bucket_of(duration: Duration) -> usize {
    let secs = duration.as_secs_f64();
    // Only a NaN could miss the +Inf bucket; a Duration never is one.
    DURATION_BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(DURATION_BUCKETS.len() - 1)
}

/// The live probe record of a backend: its counters, its last probe's timing and the
/// delay its next probe was scheduled with. Written only by the checker's driver, read by
/// anyone holding a snapshot, without a lock: a probe result that changes nothing of the
/// backend's health (the common case: up, and up again) updates these atomics and leaves
/// the published snapshot alone, instead of rebuilding the backend's snapshot entry and
/// copying its chunk per result (issue 14: ≈ 10 % of a tcp-syn check's CPU).
///
/// The checker's entry and every snapshot share the one record by `Arc`, so a snapshot's
/// counters are the current ones, not those of its publish: Prometheus counters only need
/// to be monotonic, and the ctl's "last probe" should be the last probe.
#[derive(Debug, Clone, Default)]
pub struct SharedStats(Arc<LiveStats>);

#[derive(Debug)]
pub struct LiveStats {
    by_code: [AtomicU64; ResultCode::ALL.len()],
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_sum_nanos: AtomicU64,
    count: AtomicU64,
    next_delay_nanos: AtomicU64,
    /// Seqlock over the last probe's code, end time and duration (odd while written).
    last_seq: AtomicU64,
    last_code: AtomicU64,
    last_at_unix_nanos: AtomicU64,
    last_duration_nanos: AtomicU64,
}

/// The last probe as `LiveStats` keeps it (its detail stays in the health record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastProbe {
    pub code: ResultCode,
    pub at: SystemTime,
    pub duration: Duration,
}

/// `last_code` before the first probe.
const NO_CODE: u64 = u64::MAX;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One writer (the driver): a load and a store, no locked read-modify-write.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

impl SharedStats {
    /// Counts one probe result. Only the checker's driver calls this (one writer).
    pub fn observe(&self, result: &ProbeResult) {
        let s = &*self.0;
        let code = result.code.index();
        if let Some(c) = s.by_code.get(code) {
            bump(c, 1);
        }
        if let Some(b) = s.duration_buckets.get(bucket_of(result.duration)) {
            bump(b, 1);
        }
        let duration = nanos(result.duration);
        bump(&s.duration_sum_nanos, duration);
        bump(&s.count, 1);
        let at = result.at.duration_since(UNIX_EPOCH).map(nanos).unwrap_or(0);
        let seq = s.last_seq.load(Relaxed);
        s.last_seq.store(seq.wrapping_add(1), Relaxed);
        fence(Release);
        s.last_code.store(code as u64, Relaxed);
        s.last_at_unix_nanos.store(at, Relaxed);
        s.last_duration_nanos.store(duration, Relaxed);
        s.last_seq.store(seq.wrapping_add(2), Release);
    }

    /// A new record whose next probe is due after `delay`.
    pub fn with_next_delay(delay: Duration) -> SharedStats {
        let stats = SharedStats::default();
        stats.set_next_delay(delay);
        stats
    }

    /// Records the delay the next probe was scheduled with (jitter included).
    pub fn set_next_delay(&self, delay: Duration) {
        self.0.next_delay_nanos.store(nanos(delay), Relaxed);
    }

    pub fn next_delay(&self) -> Duration {
        Duration::from_nanos(self.0.next_delay_nanos.load(Relaxed))
    }

    /// The counters as of now.
    pub fn load(&self) -> ProbeStats {
        let s = &*self.0;
        ProbeStats {
            by_code: std::array::from_fn(|i| s.by_code[i].load(Relaxed)),
            duration_buckets: std::array::from_fn(|i| s.duration_buckets[i].load(Relaxed)),
            duration_sum: s.duration_sum_nanos.load(Relaxed) as f64 / 1e9,
            count: s.count.load(Relaxed),
        }
    }

    /// The last probe's code and timing; `None` before the first.
    pub fn last_probe(&self) -> Option<LastProbe> {
        let s = &*self.0;
        let mut tries = 0u32;
        loop {
            let before = s.last_seq.load(Acquire);
            let code = s.last_code.load(Relaxed);
            let at = s.last_at_unix_nanos.load(Relaxed);
            let duration = s.last_duration_nanos.load(Relaxed);
            fence(Acquire);
            let after = s.last_seq.load(Relaxed);
            if before != after || !before.is_multiple_of(2) {
                // The driver is between two stores; if it was preempted there, let it run.
                tries += 1;
                if tries.is_multiple_of(64) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            let code = usize::try_from(code)
                .ok()
                .and_then(|i| ResultCode::ALL.get(i).copied())?;
            return Some(LastProbe {
                code,
                at: UNIX_EPOCH + Duration::from_nanos(at),
                duration: Duration::from_nanos(duration),
            });
        }
    }
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats {
            by_code: Default::default(),
            duration_buckets: Default::default(),
            duration_sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
            next_delay_nanos: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            last_code: AtomicU64::new(NO_CODE),
            last_at_unix_nanos: AtomicU64::new(0),
            last_duration_nanos: AtomicU64::new(0),
        }
    }
}

/// Transitions published so far, per (from, to): `maglev_backend_transitions_total`. Shared
/// by `Arc` between the checker's entry and its snapshots (a snapshot of a probe result
/// copies a pointer); a transition copies the map only while a snapshot still holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionCounts(Arc<BTreeMap<(State, State), u64>>);

impl TransitionCounts {
    /// Counts one transition `from` -> `to`.
    pub fn count(&mut self, from: State, to: State) {
        *Arc::make_mut(&mut self.0).entry((from, to)).or_insert(0) += 1;
    }

    /// Sets the count of `from` -> `to` (for tests that set a state up by hand).
    pub fn insert(&mut self, key: (State, State), n: u64) -> Option<u64> {
        Arc::make_mut(&mut self.0).insert(key, n)
    }
}

impl Deref for TransitionCounts {
    type Target = BTreeMap<(State, State), u64>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<'a> IntoIterator for &'a TransitionCounts {
    type Item = (&'a (State, State), &'a u64);
    type IntoIter = btree_map::Iter<'a, (State, State), u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn observe_counts_codes_and_buckets() {
        let live = SharedStats::default();
        live.observe(&ProbeResult::new(
            ResultCode::L4Ok,
            "",
            Duration::from_micros(300),
        ));
        live.observe(&ProbeResult::new(
            ResultCode::L7Sts,
            "HTTP 503",
            Duration::from_millis(30),
        ));
        live.observe(&ProbeResult::new(
            ResultCode::L4Tout,
            "",
            Duration::from_secs(5),
        ));
        let s = live.load();
        assert_eq!(s.count, 3);
        assert_eq!(s.count_of(ResultCode::L4Ok), 1);
        assert_eq!(s.count_of(ResultCode::L7Sts), 1);
        assert_eq!(s.count_of(ResultCode::L7Ok), 0);
        let up_to = |i: usize| s.duration_buckets[..=i].iter().sum::<u64>();
        assert_eq!((DURATION_BUCKETS[0], up_to(0)), (0.0005, 1)); // 300 µs
        assert_eq!(up_to(5), 1); // <= 25 ms: only the first
        assert_eq!(up_to(6), 2); // <= 50 ms: the 30 ms one too
        assert_eq!(up_to(DURATION_BUCKETS.len() - 1), 3); // +Inf holds all
        assert_eq!(DURATION_BUCKETS.last(), Some(&f64::INFINITY));
        assert!((s.duration_sum - 5.0303).abs() < 1e-9);
    }

    #[test]
    fn transition_counts_copy_on_write() {
        let mut a = TransitionCounts::default();
        a.count(State::Unknown, State::Up);
        let held = a.clone();
        a.count(State::Unknown, State::Up);
        a.count(State::Up, State::Down);
        assert_eq!(held.get(&(State::Unknown, State::Up)), Some(&1));
        assert_eq!(held.len(), 1);
        assert_eq!(a.get(&(State::Unknown, State::Up)), Some(&2));
        assert_eq!((&a).into_iter().map(|(_, n)| n).sum::<u64>(), 3);
        // Unchanged since the clone: one map, not two.
        let again = a.clone();
        assert!(Arc::ptr_eq(&a.0, &again.0));
    }

    #[test]
    fn clones_share_one_live_record() {
        let entry = SharedStats::default();
        let snapshot = entry.clone();
        assert_eq!(snapshot.last_probe(), None);
        assert_eq!(snapshot.load().count, 0);
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let r = ProbeResult::new_at(ResultCode::L7Ok, "", Duration::from_micros(1_234), at);
        entry.observe(&r);
        entry.set_next_delay(Duration::from_millis(987));
        assert_eq!(snapshot.load().count, 1);
        assert_eq!(
            snapshot.last_probe(),
            Some(LastProbe {
                code: ResultCode::L7Ok,
                at,
                duration: Duration::from_micros(1_234),
            })
        );
        assert_eq!(snapshot.next_delay(), Duration::from_millis(987));
    }

    #[test]
    fn a_reader_never_sees_half_of_a_last_probe() {
        // The writer keeps duration == at (in µs since the epoch); a torn read breaks that.
        let live = SharedStats::default();
        let writer = {
            let live = live.clone();
            std::thread::spawn(move || {
                for i in 1..=200_000u64 {
                    let d = Duration::from_micros(i);
                    live.observe(&ProbeResult::new_at(
                        ResultCode::L4Ok,
                        "",
                        d,
                        UNIX_EPOCH + d,
                    ));
                }
            })
        };
        let mut seen = 0u64;
        while seen < 200_000 {
            if let Some(p) = live.last_probe() {
                assert_eq!(p.at.duration_since(UNIX_EPOCH).ok(), Some(p.duration));
                seen = p.duration.as_micros() as u64;
            }
            if writer.is_finished() && seen < 200_000 {
                seen = live
                    .last_probe()
                    .map_or(0, |p| p.duration.as_micros() as u64);
                break;
            }
        }
        assert!(writer.join().is_ok());
        assert_eq!(live.load().count, 200_000);
        assert_eq!(seen, 200_000);
    }
}
