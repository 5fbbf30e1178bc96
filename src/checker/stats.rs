//! Per-backend probe statistics kept beside the health state, so that metrics are read from
//! the same place the gRPC API reads (no second bookkeeping).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Deref;
use std::sync::Arc;

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
    pub fn observe(&mut self, result: &ProbeResult) {
        if let Some(i) = ResultCode::ALL.iter().position(|c| *c == result.code) {
            self.by_code[i] += 1;
        }
        let secs = result.duration.as_secs_f64();
        // Only a NaN could miss the +Inf bucket; a Duration never is one.
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len() - 1);
        self.duration_buckets[bucket] += 1;
        self.duration_sum += secs;
        self.count += 1;
    }

    pub fn count_of(&self, code: ResultCode) -> u64 {
        ResultCode::ALL
            .iter()
            .position(|c| *c == code)
            .map(|i| self.by_code[i])
            .unwrap_or(0)
    }
}

/// The probe stats of a backend, stored once: the checker's entry and its snapshots share
/// them by `Arc` (a snapshot copies a pointer, not 208 bytes). A probe result copies them
/// on write while the last snapshot still holds the old ones, which replaces the copy the
/// snapshot used to make.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedStats(Arc<ProbeStats>);

impl SharedStats {
    pub fn observe(&mut self, result: &ProbeResult) {
        Arc::make_mut(&mut self.0).observe(result);
    }
}

impl Deref for SharedStats {
    type Target = ProbeStats;
    fn deref(&self) -> &ProbeStats {
        &self.0
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
        let mut s = ProbeStats::default();
        s.observe(&ProbeResult::new(
            ResultCode::L4Ok,
            "",
            Duration::from_micros(300),
        ));
        s.observe(&ProbeResult::new(
            ResultCode::L7Sts,
            "HTTP 503",
            Duration::from_millis(30),
        ));
        s.observe(&ProbeResult::new(
            ResultCode::L4Tout,
            "",
            Duration::from_secs(5),
        ));
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
    fn shared_stats_are_one_copy_until_a_probe_writes() {
        let mut entry = SharedStats::default();
        let ok = ProbeResult::new(ResultCode::L4Ok, "", Duration::from_micros(300));
        entry.observe(&ok);
        let snapshot = entry.clone();
        assert!(Arc::ptr_eq(&entry.0, &snapshot.0));
        entry.observe(&ok);
        assert_eq!((snapshot.count, entry.count), (1, 2));
        assert!(!Arc::ptr_eq(&entry.0, &snapshot.0));
    }
}
