//! Per-backend probe statistics kept beside the health state, so that metrics are read from
//! the same place the gRPC API reads (no second bookkeeping).

use crate::health::{ProbeResult, ResultCode};

/// Upper bounds (seconds) of the probe duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeStats {
    /// Probes per result code, indexed like `ResultCode::ALL`.
    pub by_code: [u64; 11],
    /// Non-cumulative counts per bucket of `DURATION_BUCKETS`, plus one overflow bucket.
    pub duration_buckets: [u64; 13],
    pub duration_sum: f64,
    pub count: u64,
}

impl ProbeStats {
    pub fn observe(&mut self, result: &ProbeResult) {
        if let Some(i) = ResultCode::ALL.iter().position(|c| *c == result.code) {
            self.by_code[i] += 1;
        }
        let secs = result.duration.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
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
        assert_eq!(up_to(DURATION_BUCKETS.len()), 3); // +Inf holds all
        assert!((s.duration_sum - 5.0303).abs() < 1e-9);
    }
}
