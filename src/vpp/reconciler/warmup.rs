//! The warmup clock of docs/design.md §7, as plain state: which phase the daemon is in and
//! which VIPs have been released. The durations come from the running config at each
//! look (a reload changes them but never restarts the clock).

use std::collections::BTreeSet;

use tokio::time::Instant;

use crate::config::VppLbConfig;

/// Where the warmup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `startup-min-delay`: no writes at all.
    Hold { until: Instant },
    /// Between min and max: VIPs released one by one.
    Release,
    /// `startup-max-delay` reached, warmup not yet marked over.
    Final,
    /// Over: normal operation.
    Done,
}

#[derive(Debug)]
pub struct Warmup {
    start: Instant,
    released: BTreeSet<String>,
    done: bool,
    next_poll: Instant,
}

impl Warmup {
    pub fn new(start: Instant) -> Self {
        Warmup {
            start,
            released: BTreeSet::new(),
            done: false,
            next_poll: start,
        }
    }

    pub fn phase(&self, now: Instant, lb: &VppLbConfig) -> Phase {
        if self.done {
            return Phase::Done;
        }
        let min = self.start + lb.startup_min_delay;
        let max = self.start + lb.startup_max_delay.max(lb.startup_min_delay);
        if now < min {
            Phase::Hold { until: min }
        } else if now < max {
            Phase::Release
        } else {
            Phase::Final
        }
    }

    pub fn done(&self) -> bool {
        self.done
    }

    pub fn finish(&mut self) {
        self.done = true;
        self.released.clear();
    }

    pub fn next_poll(&self) -> Instant {
        self.next_poll
    }

    pub fn polled(&mut self, next: Instant) {
        self.next_poll = next;
    }

    pub fn is_released(&self, frontend: &str) -> bool {
        self.done || self.released.contains(frontend)
    }

    pub fn release(&mut self, frontend: String) {
        self.released.insert(frontend);
    }

    /// After a reconnect during the warmup: VPP may be empty again.
    pub fn reset_released(&mut self) {
        self.released.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn lb(min: u64, max: u64) -> VppLbConfig {
        VppLbConfig {
            sync_interval: Duration::from_secs(30),
            ipv4_src_address: None,
            ipv6_src_address: None,
            sticky_buckets_per_core: 1024,
            flow_timeout: Duration::from_secs(40),
            startup_min_delay: Duration::from_secs(min),
            startup_max_delay: Duration::from_secs(max),
        }
    }

    #[test]
    fn phases_follow_the_clock() {
        let t0 = Instant::now();
        let mut w = Warmup::new(t0);
        let s = Duration::from_secs(1);
        assert_eq!(w.phase(t0, &lb(5, 30)), Phase::Hold { until: t0 + 5 * s });
        assert_eq!(w.phase(t0 + 5 * s, &lb(5, 30)), Phase::Release);
        assert_eq!(w.phase(t0 + 30 * s, &lb(5, 30)), Phase::Final);
        // A reload with other delays keeps the start.
        assert_eq!(
            w.phase(t0 + 6 * s, &lb(10, 30)),
            Phase::Hold { until: t0 + 10 * s }
        );
        assert_eq!(w.phase(t0, &lb(0, 0)), Phase::Final);
        w.finish();
        assert_eq!(w.phase(t0, &lb(5, 30)), Phase::Done);
        assert!(w.is_released("anything"));
    }

    #[test]
    fn release_and_reset() {
        let mut w = Warmup::new(Instant::now());
        assert!(!w.is_released("web"));
        w.release("web".into());
        assert!(w.is_released("web"));
        w.reset_released();
        assert!(!w.is_released("web"));
    }
}
