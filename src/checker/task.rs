//! The per-backend worker: sleep, probe, record, repeat. It holds no state of its own
//! beyond its jitter source; everything it learns goes into the shared state under a short
//! write lock, and a generation number tells it when it has been replaced.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

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
    let handle = inner
        .runtime
        .spawn(run(Arc::clone(inner), name.to_string(), generation, delay));
    if let Some(old) = entry.task.replace(handle.abort_handle()) {
        old.abort();
    }
}

async fn run(inner: Arc<Inner>, name: String, generation: u64, first_delay: Duration) {
    if !first_delay.is_zero() {
        tokio::time::sleep(first_delay).await;
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
            match st.backends.get(&name) {
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
        let delay = {
            let mut st = match inner.state.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let transition;
            let delay;
            match st.backends.get_mut(&name) {
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
            if let Some(t) = transition {
                st.publish_transition(&inner, &name, t);
            }
            delay
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wake.notified() => {}
        }
    }
}
