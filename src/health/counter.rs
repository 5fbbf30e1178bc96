//! The HAProxy health counter.
//!
//! `health` moves in `0..=rise+fall-1`: a pass adds one, a fail takes one away, clamped at both
//! ends. The rule for up/down is a single comparison: **up when `health >= rise`**, down
//! otherwise. That gives the familiar hysteresis:
//!
//! - from the top (`rise+fall-1`) it takes `fall` consecutive fails to reach `rise-1` (down);
//! - from the bottom (`0`) it takes `rise` consecutive passes to reach `rise` (up);
//! - a transition jumps to the far end (HAProxy's `check->health = rise + fall - 1` /
//!   `= 0`): after going up it takes `fall` fails to go down again, after going down
//!   `rise` passes to go up, so transitions are bounded by rise/fall even when a backend
//!   alternates pass/fail;
//! - entering `unknown` parks the counter at `rise-1`, the boundary, so the first result
//!   decides at once: one pass gives `rise` (up), one fail gives less than `rise` (down).

/// HAProxy-style rise/fall counter. `rise` and `fall` are at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCounter {
    rise: u32,
    fall: u32,
    health: u32,
}

impl HealthCounter {
    /// A counter in the `unknown` position (`health = rise-1`). A `rise` or `fall` of 0 (the
    /// config forbids it) is treated as 1 so the arithmetic can never underflow.
    pub fn new(rise: u32, fall: u32) -> Self {
        let rise = rise.max(1);
        let fall = fall.max(1);
        HealthCounter {
            rise,
            fall,
            health: rise - 1,
        }
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }

    /// The current value, in `0..=max()`.
    pub fn health(&self) -> u32 {
        self.health
    }

    /// The top of the range: `rise + fall - 1`.
    pub fn max(&self) -> u32 {
        self.rise.saturating_add(self.fall - 1)
    }

    /// Up when `health >= rise`.
    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    /// Fully up: the counter is at the top of its range.
    pub fn is_at_max(&self) -> bool {
        self.health >= self.max()
    }

    /// Fully down: the counter is at the bottom of its range.
    pub fn is_zero(&self) -> bool {
        self.health == 0
    }

    /// Count one probe result: a pass adds one, a fail takes one away (clamped). As in
    /// HAProxy, crossing the boundary jumps to the far end: a pass that reaches `rise` sets
    /// the counter to max, a fail that drops below `rise` sets it to 0. Without the jump a
    /// backend alternating pass/fail would flip state on every probe.
    pub fn record(&mut self, pass: bool) {
        self.health = if pass {
            let h = (self.health + 1).min(self.max());
            if h >= self.rise { self.max() } else { h }
        } else {
            let h = self.health.saturating_sub(1);
            if h < self.rise { 0 } else { h }
        };
    }

    /// Park the counter at `rise-1`, where the next result decides (entering `unknown`).
    pub fn reset_to_unknown(&mut self) {
        self.health = self.rise - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All (rise, fall) pairs the tests sweep over.
    fn shapes() -> impl Iterator<Item = (u32, u32)> {
        (1..=5).flat_map(|rise| (1..=5).map(move |fall| (rise, fall)))
    }

    #[test]
    fn new_counter_sits_at_rise_minus_one() {
        for (rise, fall) in shapes() {
            let c = HealthCounter::new(rise, fall);
            assert_eq!(c.health(), rise - 1);
            assert_eq!(c.max(), rise + fall - 1);
            assert!(!c.is_up());
        }
    }

    #[test]
    fn zero_rise_or_fall_is_treated_as_one() {
        let c = HealthCounter::new(0, 0);
        assert_eq!((c.rise(), c.fall(), c.health(), c.max()), (1, 1, 0, 1));
    }

    #[test]
    fn from_unknown_one_pass_is_up_and_one_fail_is_down() {
        for (rise, fall) in shapes() {
            let mut pass = HealthCounter::new(rise, fall);
            pass.record(true);
            assert!(pass.is_up(), "rise={rise} fall={fall}");

            let mut fail = HealthCounter::new(rise, fall);
            fail.record(false);
            assert!(!fail.is_up(), "rise={rise} fall={fall}");
        }
    }

    #[test]
    fn from_max_it_takes_exactly_fall_fails_to_go_down() {
        for (rise, fall) in shapes() {
            let mut c = HealthCounter::new(rise, fall);
            for _ in 0..c.max() {
                c.record(true);
            }
            assert!(c.is_at_max());
            for i in 1..=fall {
                c.record(false);
                assert_eq!(
                    c.is_up(),
                    i < fall,
                    "rise={rise} fall={fall} after {i} fails"
                );
            }
            assert!(c.is_zero(), "going down jumps to 0");
        }
    }

    #[test]
    fn alternating_pass_fail_flips_at_most_once_per_rise_or_fall_results() {
        for (rise, fall) in shapes() {
            let mut c = HealthCounter::new(rise, fall);
            let mut up = c.is_up();
            let mut flips = 0;
            for i in 0..100 {
                c.record(i % 2 == 0);
                if c.is_up() != up {
                    up = c.is_up();
                    flips += 1;
                }
            }
            // Only rise = fall = 1 follows every result; otherwise the first result
            // decides, at most one more flip follows (when rise or fall is 1), and then
            // strict alternation never makes a long enough run.
            let bound = if rise == 1 && fall == 1 { 100 } else { 2 };
            assert!(flips <= bound, "rise={rise} fall={fall}: {flips} flips");
        }
    }

    #[test]
    fn from_zero_it_takes_exactly_rise_passes_to_go_up() {
        for (rise, fall) in shapes() {
            let mut c = HealthCounter::new(rise, fall);
            for _ in 0..rise {
                c.record(false);
            }
            assert!(c.is_zero());
            for i in 1..=rise {
                c.record(true);
                assert_eq!(
                    c.is_up(),
                    i == rise,
                    "rise={rise} fall={fall} after {i} passes"
                );
            }
        }
    }

    #[test]
    fn counter_clamps_at_both_ends() {
        let mut c = HealthCounter::new(2, 3);
        for _ in 0..10 {
            c.record(true);
        }
        assert_eq!(c.health(), 4);
        for _ in 0..10 {
            c.record(false);
        }
        assert_eq!(c.health(), 0);
    }

    #[test]
    fn reset_to_unknown_returns_to_the_boundary() {
        let mut c = HealthCounter::new(3, 2);
        for _ in 0..10 {
            c.record(true);
        }
        c.reset_to_unknown();
        assert_eq!(c.health(), 2);
    }
}
