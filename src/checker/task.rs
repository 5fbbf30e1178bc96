//! The per-backend worker: sleep, probe, record, repeat. It holds no state of its own
//! beyond its jitter source; everything it learns goes into the shared state under a short
//! write lock, and a generation number tells it when it has been replaced.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use super::state::CheckerState;
use crate::health::{XorShift64, first_probe_offset};

/// When the first probe of a (re)started worker runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FirstProbe {
    /// Evenly spread over the first interval: a start with 10,000 backends is no burst.
    Spread { index: usize, count: usize },
    /// Right away (a restarted worker continues without a gap).
    Now,
}

/// Spawns the worker of `name` and remembers its abort handle in the entry.
pub(crate) fn spawn(inner: &Arc<Inner>, st: &mut CheckerState, name: &str, first: FirstProbe) {
    let Some(entry) = st.backends.get_mut(name) else {
        return;
    };
    let delay = match first {
        FirstProbe::Spread { index, count } => {
            first_probe_offset(index, count, entry.healthcheck.interval)
        }
        FirstProbe::Now => Duration::ZERO,
    };
    let generation = entry.generation;
    let handle = inner.runtime.spawn(run(
        Arc::clone(inner),
        Arc::clone(&entry.name),
        generation,
        delay,
    ));
    if let Some(old) = entry.task.replace(handle.abort_handle()) {
        old.abort();
    }
}

/// Probe start times are rounded up to this grid (for delays of at least
/// [`BATCH_MIN_DELAY`]), so that the checker's thread wakes up once per tick for all probes
/// due in it, rather than once per probe: at thousands of checks per second the wake-ups cost
/// more than the probes' own user-space work. HAProxy batches the same way.
pub(crate) const BATCH_TICK: Duration = Duration::from_millis(10);
/// Shorter delays are kept exact (10 % of this is the tick).
pub(crate) const BATCH_MIN_DELAY: Duration = Duration::from_millis(100);

/// When a probe due `delay` after `now` runs: `now + delay`, rounded up to the next
/// [`BATCH_TICK`] counted from `epoch` when the delay is long enough not to notice.
pub(crate) fn batched_deadline(epoch: Instant, now: Instant, delay: Duration) -> Instant {
    let exact = now + delay;
    if delay < BATCH_MIN_DELAY {
        return exact;
    }
    let since = exact.saturating_duration_since(epoch).as_nanos();
    let tick = BATCH_TICK.as_nanos();
    let rounded = since.div_ceil(tick) * tick;
    let extra = u64::try_from(rounded - since).unwrap_or(0);
    exact + Duration::from_nanos(extra)
}

async fn run(inner: Arc<Inner>, name: Arc<str>, generation: u64, first_delay: Duration) {
    if !first_delay.is_zero() {
        let deadline = batched_deadline(inner.epoch, Instant::now(), first_delay);
        tokio::time::sleep_until(deadline).await;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    generation.hash(&mut hasher);
    let mut jitter = XorShift64::new(hasher.finish() | 1);
    loop {
        // Take what the probe needs, then let go of the lock while it runs.
        let (spec, wake, probing) = {
            let st = match inner.state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match st.backends.get(&*name) {
                Some(e) if e.generation == generation => (
                    Arc::clone(&e.spec),
                    e.wake.clone(),
                    e.health.state().is_probing(),
                ),
                _ => return,
            }
        };
        if !probing {
            // Paused or disabled: wait for the operator.
            wake.notified().await;
            continue;
        }
        let result = inner.probe.probe(&spec).await;
        tracing::debug!(target: "maglev::records::probe", backend = %name, check = spec.kind().as_str(), code = result.code.as_str(), duration = ?result.duration, detail = %result.detail, "probe");
        let delay = {
            let mut st = match inner.state.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let transition;
            let delay;
            match st.backends.get_mut(&*name) {
                Some(e) if e.generation == generation => {
                    e.stats.observe(&result);
                    // Refused only if an operator paused/disabled it while the probe ran:
                    // then the result is stale and dropped.
                    transition = e.health.record(result).ok().flatten();
                    delay = e.health.next_delay(&e.policy, &mut jitter);
                    e.next_delay = delay;
                }
                _ => return,
            }
            st.changes.backends.insert(Arc::clone(&name));
            if let Some(t) = transition {
                st.publish_transition(&name, t);
            }
            delay
        };
        inner.schedule_publish();
        let deadline = batched_deadline(inner.epoch, Instant::now(), delay);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn long_delays_land_on_the_tick_grid() {
        let epoch = Instant::now();
        let now = epoch + Duration::from_millis(3);
        let d = batched_deadline(epoch, now, Duration::from_millis(1_001));
        // 1,004 ms after the epoch, rounded up to 1,010.
        assert_eq!(d - epoch, Duration::from_millis(1_010));
        // Already on the grid: unchanged.
        let d = batched_deadline(epoch, epoch, Duration::from_millis(500));
        assert_eq!(d - epoch, Duration::from_millis(500));
    }

    #[test]
    fn never_early_and_at_most_one_tick_late() {
        let epoch = Instant::now();
        for (now_us, delay_ms) in [(0, 100), (1_234, 250), (9_999, 2_000), (77_777, 30_000)] {
            let now = epoch + Duration::from_micros(now_us);
            let delay = Duration::from_millis(delay_ms);
            let d = batched_deadline(epoch, now, delay);
            assert!(d >= now + delay);
            assert!(d < now + delay + BATCH_TICK);
        }
    }

    #[test]
    fn short_delays_stay_exact() {
        let epoch = Instant::now();
        let now = epoch + Duration::from_micros(1_234);
        let d = batched_deadline(epoch, now, Duration::from_millis(20));
        assert_eq!(d, now + Duration::from_millis(20));
    }
}
