//! The probe scheduler: one task drives every backend's probes from a deadline queue
//! (`CheckerState::queue`), instead of a task per backend. A backend costs a queue entry
//! (48 bytes) rather than a tokio task (640 bytes: tokio aligns a task's cell to 128 bytes)
//! with its own timer and `Notify`; probes in flight are futures the driver polls. All it
//! learns goes into the shared state under a short write lock; a generation number tells it
//! when a backend was restarted, and a sequence number which queue entry is the live one.

use std::cmp::Ordering;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use super::Inner;
use super::state::CheckerState;
use crate::health::{ProbeResult, XorShift64, first_probe_offset};

/// When the first probe of a (re)started worker runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FirstProbe {
    /// Evenly spread over the first interval: a start with 10,000 backends is no burst.
    Spread { index: usize, count: usize },
    /// Right away (a restarted worker continues without a gap).
    Now,
}

/// One entry of the deadline queue (`Deadlines`): probe the backend in `slot` (of
/// `generation`) at `when`. Only the entry whose `seq` the backend holds in `BackendEntry::due` is live; a wake-up or a
/// restart queues a new one and the old entry is skipped when it comes up.
#[derive(Debug)]
pub(crate) struct Due {
    pub(crate) when: Instant,
    pub(crate) seq: u64,
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest deadline must come first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

/// (Re)starts the probing of `name`: a new jitter source for its generation, the first
/// probe queued, the driver told.
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
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    entry.generation.hash(&mut hasher);
    entry.jitter = XorShift64::new(hasher.finish() | 1);
    // A probe of the old generation may still be in flight: its result will be dropped.
    entry.in_flight = false;
    entry.wake_pending = false;
    let now = Instant::now();
    let when = if delay.is_zero() {
        now
    } else {
        batched_deadline(inner.epoch, now, delay)
    };
    st.schedule(name, when);
    inner.driver_wake.notify_one();
}

/// Probes `name` again at once (after the probe in flight, if any): an operator action
/// or a reload changed what it should do.
pub(crate) fn wake(inner: &Inner, st: &mut CheckerState, name: &str) {
    st.schedule(name, Instant::now());
    inner.driver_wake.notify_one();
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

/// A probe in flight: the probe's own (boxed) future with the backend's slot id and
/// generation, and its name only when probe records are logged. Not wrapped in a second
/// box: one allocation per probe, the probe's.
pub(crate) struct InFlight {
    probe: Pin<Box<dyn Future<Output = ProbeResult> + Send>>,
    slot: u32,
    generation: u64,
    /// The backend's name and check type, for the `maglev::records::probe` debug record.
    logged: Option<(Arc<str>, &'static str)>,
}

impl Future for InFlight {
    type Output = (u32, u64, ProbeResult);

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let result = std::task::ready!(self.probe.as_mut().poll(cx));
        if let Some((name, check)) = &self.logged {
            tracing::debug!(target: "maglev::records::probe", backend = %name, check = *check, code = result.code.as_str(), duration = ?result.duration, detail = %result.detail, "probe");
        }
        std::task::Poll::Ready((self.slot, self.generation, result))
    }
}

/// The driver: starts the probes that are due, records the results, sleeps until the next
/// deadline (or a wake-up from `spawn`/`wake`). Runs until the checker stops it.
pub(crate) async fn drive(inner: Arc<Inner>) {
    let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
    let far = || Instant::now() + Duration::from_secs(86_400);
    let sleep = tokio::time::sleep_until(far());
    tokio::pin!(sleep);
    // The results of one wake-up, recorded and published together (kept for its capacity).
    let mut done: Vec<(u32, u64, ProbeResult)> = Vec::new();
    loop {
        let next = start_due(&inner, &mut in_flight);
        let target = next.unwrap_or_else(far);
        if sleep.deadline() != target {
            sleep.as_mut().reset(target);
        }
        tokio::select! {
            biased;
            Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                done.push(first);
                // Every other probe that finished in the same tick, without sleeping again.
                while let Some(Some(next)) =
                    futures_util::FutureExt::now_or_never(in_flight.next())
                {
                    done.push(next);
                }
                record_all(&inner, &mut done);
            }
            _ = &mut sleep => {}
            _ = inner.driver_wake.notified() => {}
        }
    }
}

/// Pops every live queue entry that is due and starts its probe; the next deadline.
fn start_due(inner: &Arc<Inner>, in_flight: &mut FuturesUnordered<InFlight>) -> Option<Instant> {
    let mut guard = match inner.state.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let st = &mut *guard;
    let now = Instant::now();
    while let Some(due) = st.queue.pop_due(now) {
        let Some(e) = st.backends.live_mut(due.slot, due.generation) else {
            continue; // removed or restarted since
        };
        if e.due != due.seq {
            continue; // replaced by a later entry
        }
        e.due = 0;
        if e.in_flight {
            // Woken while probing: probe again once this one is recorded.
            e.wake_pending = true;
            continue;
        }
        if !e.health.state().is_probing() {
            // Paused or disabled: nothing queued until the operator wakes it.
            continue;
        }
        e.in_flight = true;
        let logged = tracing::enabled!(target: "maglev::records::probe", tracing::Level::DEBUG)
            .then(|| (Arc::clone(&e.name), e.spec.kind().as_str()));
        in_flight.push(InFlight {
            probe: Arc::clone(&inner.probe).probe_owned(Arc::clone(&e.spec)),
            slot: due.slot,
            generation: due.generation,
            logged,
        });
    }
    st.queue.next()
}

/// Records the results of one wake-up under one write lock, queues each backend's next
/// probe, and publishes one snapshot of them all before the lock is released: readers see
/// the results of this wake-up once the driver goes back to waiting. (A publish used to be
/// a task of its own, spawned by the first result of a burst: one task and one more write
/// lock per publish, and one lock per result.)
fn record_all(inner: &Arc<Inner>, done: &mut Vec<(u32, u64, ProbeResult)>) {
    let mut guard = match inner.state.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let st = &mut *guard;
    // One clock read for the batch: its results were all ready at the same moment.
    let now = Instant::now();
    for (slot, generation, result) in done.drain(..) {
        record(inner, st, now, slot, generation, result);
    }
    // Results that changed no health: nothing to publish, no reader to wake.
    if st.has_news() {
        st.publish(inner);
    }
}

/// Records one probe result and queues the backend's next probe.
fn record(
    inner: &Inner,
    st: &mut CheckerState,
    now: Instant,
    slot: u32,
    generation: u64,
    result: ProbeResult,
) {
    let transition;
    let when;
    let name;
    let changed;
    match st.backends.live_mut(slot, generation) {
        Some(e) => {
            e.in_flight = false;
            e.stats.observe(&result);
            // Most results repeat the last one at the same health (up, and up again): the
            // live stats above are all they change, and the snapshot is left alone.
            let health_before = e.health.health();
            let repeats = e.health.repeats_last(&result);
            // Refused only if an operator paused/disabled it while the probe ran:
            // then the result is stale and dropped.
            transition = e.health.record(result).ok().flatten();
            changed = transition.is_some() || !repeats || e.health.health() != health_before;
            // The name only for a transition's events and log (a reference count).
            name = transition.as_ref().map(|_| Arc::clone(&e.name));
            let delay = e.health.next_delay(&e.policy, &mut e.jitter);
            e.stats.set_next_delay(delay);
            when = if std::mem::take(&mut e.wake_pending) {
                now
            } else {
                batched_deadline(inner.epoch, now, delay)
            };
        }
        None => return,
    }
    st.schedule_slot(slot, generation, when);
    if let (Some(t), Some(name)) = (transition, name) {
        st.publish_transition(&name, t);
    }
    if changed {
        st.changes.backend(slot);
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
