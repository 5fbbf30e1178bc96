//! How long to wait before the next probe: the base interval by health, uniform ±10% jitter
//! from an injectable source, and the spread of first probes over the first interval.

use std::time::Duration;

use super::counter::HealthCounter;
use super::result::State;

/// The three intervals of a health check (docs/design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalPolicy {
    /// When fully up (counter at max).
    pub interval: Duration,
    /// While going up or down, or unknown.
    pub fast_interval: Duration,
    /// When fully down (counter at 0 and state down).
    pub down_interval: Duration,
}

impl IntervalPolicy {
    pub fn new(interval: Duration, fast_interval: Duration, down_interval: Duration) -> Self {
        IntervalPolicy {
            interval,
            fast_interval,
            down_interval,
        }
    }

    /// The un-jittered delay: `interval` when the counter is at max, `down_interval` when it is
    /// 0 and the state is down, `fast_interval` otherwise. (Only meaningful while probing; the
    /// checker does not probe paused, disabled or removed backends.)
    pub fn base(&self, state: State, counter: &HealthCounter) -> Duration {
        if counter.is_at_max() {
            self.interval
        } else if state == State::Down && counter.is_zero() {
            self.down_interval
        } else {
            self.fast_interval
        }
    }
}

/// A source of uniform numbers in `[0, 1)`, injectable so delays are testable.
pub trait Jitter {
    /// A uniform number in `[0, 1)`.
    fn unit(&mut self) -> f64;
}

/// A small, fast, deterministic xorshift64* generator. Seed it from anything (time, a hash of
/// the backend name); equal seeds give equal sequences.
#[derive(Debug, Clone)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A seed of 0 (the one fixed point of xorshift) is replaced by a constant.
    pub fn new(seed: u64) -> Self {
        XorShift64 {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Jitter for XorShift64 {
    fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly: the result is in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Always the same number: `FixedJitter(0.5)` means no jitter at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn unit(&mut self) -> f64 {
        self.0
    }
}

/// `base` scaled by a uniform factor in `[0.9, 1.1)`. A jitter source that strays outside
/// `[0, 1]` is clamped (NaN counts as the middle), so this never panics.
pub fn jittered(base: Duration, jitter: &mut dyn Jitter) -> Duration {
    let unit = jitter.unit();
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let factor = 0.9 + 0.2 * unit;
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
}

/// When backend `index` of `count` should send its first probe: evenly spread over the first
/// `interval`, so N backends do not all probe at once. `index` wraps at `count`; `count == 0`
/// gives zero.
pub fn first_probe_offset(index: usize, count: usize, interval: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let index = (index % count) as u128;
    let nanos = interval.as_nanos() * index / count as u128;
    // nanos <= interval's nanos, so the seconds part fits in u64.
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: IntervalPolicy = IntervalPolicy {
        interval: Duration::from_secs(2),
        fast_interval: Duration::from_millis(500),
        down_interval: Duration::from_secs(5),
    };

    fn counter_at(rise: u32, fall: u32, passes: u32, fails: u32) -> HealthCounter {
        let mut c = HealthCounter::new(rise, fall);
        for _ in 0..passes {
            c.record(true);
        }
        for _ in 0..fails {
            c.record(false);
        }
        c
    }

    #[test]
    fn base_interval_when_at_max() {
        let c = counter_at(2, 3, 10, 0);
        assert_eq!(POLICY.base(State::Up, &c), POLICY.interval);
    }

    #[test]
    fn base_down_interval_when_zero_and_down() {
        let c = counter_at(2, 3, 0, 10);
        assert_eq!(POLICY.base(State::Down, &c), POLICY.down_interval);
    }

    #[test]
    fn base_fast_interval_in_between_and_when_unknown() {
        // Up but not at max (one fail from the top).
        let c = counter_at(2, 3, 10, 1);
        assert!(c.is_up());
        assert_eq!(POLICY.base(State::Up, &c), POLICY.fast_interval);
        // Down but not at zero.
        let c = counter_at(2, 3, 0, 0);
        assert_eq!(c.health(), 1);
        assert_eq!(POLICY.base(State::Down, &c), POLICY.fast_interval);
        // Unknown with rise = 1 sits at 0, but is not down: still fast.
        let c = HealthCounter::new(1, 3);
        assert!(c.is_zero());
        assert_eq!(POLICY.base(State::Unknown, &c), POLICY.fast_interval);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(2);
        let mut rng = XorShift64::new(42);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let d = jittered(base, &mut rng);
            assert!(d >= base.mul_f64(0.9) && d < base.mul_f64(1.1), "{d:?}");
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // Uniform over the whole band: both ends are reached closely.
        assert!(lo < base.mul_f64(0.91), "lowest {lo:?}");
        assert!(hi > base.mul_f64(1.09), "highest {hi:?}");
    }

    #[test]
    fn fixed_half_means_no_jitter_and_extremes_are_the_band_edges() {
        let base = Duration::from_secs(10);
        assert_eq!(jittered(base, &mut FixedJitter(0.5)), base);
        assert_eq!(
            jittered(base, &mut FixedJitter(0.0)),
            Duration::from_secs(9)
        );
        assert_eq!(
            jittered(base, &mut FixedJitter(1.0)),
            Duration::from_secs(11)
        );
    }

    #[test]
    fn misbehaving_jitter_is_clamped() {
        let base = Duration::from_secs(10);
        assert_eq!(
            jittered(base, &mut FixedJitter(-3.0)),
            Duration::from_secs(9)
        );
        assert_eq!(
            jittered(base, &mut FixedJitter(7.0)),
            Duration::from_secs(11)
        );
        assert_eq!(jittered(base, &mut FixedJitter(f64::NAN)), base);
        assert_eq!(
            jittered(Duration::MAX, &mut FixedJitter(1.0)),
            Duration::MAX
        );
    }

    #[test]
    fn xorshift_is_deterministic_and_in_unit_range() {
        let mut a = XorShift64::new(7);
        let mut b = XorShift64::new(7);
        for _ in 0..1000 {
            let (x, y) = (a.unit(), b.unit());
            assert_eq!(x, y);
            assert!((0.0..1.0).contains(&x));
        }
        let mut zero = XorShift64::new(0);
        assert_ne!(zero.next_u64(), 0);
    }

    #[test]
    fn first_probes_are_spread_evenly_over_the_interval() {
        let interval = Duration::from_secs(1);
        let offsets: Vec<_> = (0..4).map(|i| first_probe_offset(i, 4, interval)).collect();
        assert_eq!(
            offsets,
            [0, 250, 500, 750].map(Duration::from_millis).to_vec()
        );
        let many: Vec<_> = (0..1000)
            .map(|i| first_probe_offset(i, 1000, interval))
            .collect();
        assert!(many.windows(2).all(|w| w[0] < w[1]));
        assert!(many.iter().all(|d| *d < interval));
    }

    #[test]
    fn first_probe_offset_edge_cases() {
        let interval = Duration::from_secs(3);
        assert_eq!(first_probe_offset(0, 0, interval), Duration::ZERO);
        assert_eq!(first_probe_offset(0, 1, interval), Duration::ZERO);
        assert_eq!(
            first_probe_offset(5, 4, interval),
            first_probe_offset(1, 4, interval)
        );
        assert_eq!(first_probe_offset(1, 3, interval), Duration::from_secs(1));
    }
}
