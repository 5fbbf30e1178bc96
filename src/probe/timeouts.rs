//! Probe deadlines without a tokio timer per probe.
//!
//! `tokio::time::timeout` registers a timer per probe, and tokio's timer wheel unparks the
//! runtime's driver (an `eventfd` write, and a spurious `epoll_wait` return after it) for
//! every timer registered while the runtime runs tasks and not parked: that is every probe
//! a checker tick starts. At 10,000 checks a second that was 9,000 `write`s a second, about
//! a tenth of a `tcp-syn` check (issue 14, docs/performance.md).
//!
//! Here a probe's deadline is an entry in a FIFO per timeout value (probes with one
//! timeout expire in the order they started, so the FIFO stays sorted), and one sweeper
//! task, with one tokio timer, sleeps until the earliest head and wakes the probes whose
//! time is up. A probe that finishes first releases its slot; its FIFO entry is skipped
//! when it comes up.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The probe's time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Shared by every probe of a `Prober`; cheap to clone.
#[derive(Clone, Default)]
pub struct ProbeTimeouts {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Tells the sweeper that an entry earlier than its target was queued.
    earlier: Notify,
}

#[derive(Default)]
struct Queue {
    /// One FIFO per distinct timeout value (a handful: one per health check timeout).
    fifos: Vec<(Duration, VecDeque<Entry>)>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// When the sweeper will next look (None: it waits for an entry, or is not running).
    target: Option<Instant>,
    /// A sweeper task is alive (it clears this when its runtime drops it).
    sweeping: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: Instant,
    slot: u32,
    generation: u32,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    waker: Option<Waker>,
}

impl Queue {
    /// Queues `deadline` for a probe whose timeout is `after`; its slot and generation.
    fn arm(&mut self, after: Duration, deadline: Instant, waker: &Waker) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let generation = match self.slots.get_mut(slot as usize) {
            Some(s) => {
                s.waker = Some(waker.clone());
                s.generation
            }
            None => 0,
        };
        let entry = Entry {
            deadline,
            slot,
            generation,
        };
        match self.fifos.iter_mut().find(|(d, _)| *d == after) {
            Some((_, fifo)) => fifo.push_back(entry),
            None => self.fifos.push((after, VecDeque::from([entry]))),
        }
        (slot, generation)
    }

    /// A probe's new waker (it moved between tasks; rare).
    fn rewake(&mut self, slot: u32, generation: u32, waker: &Waker) {
        if let Some(s) = self.slots.get_mut(slot as usize)
            && s.generation == generation
            && !s.waker.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            s.waker = Some(waker.clone());
        }
    }

    /// The probe is done (or dropped): its slot is free, its FIFO entry now stale.
    fn release(&mut self, slot: u32, generation: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize)
            && s.generation == generation
        {
            s.generation = s.generation.wrapping_add(1);
            s.waker = None;
            self.free.push(slot);
        }
    }

    /// Takes the wakers of every probe whose deadline is at or before `now`; the earliest
    /// deadline still queued.
    fn expire(&mut self, now: Instant, woken: &mut Vec<Waker>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for (_, fifo) in &mut self.fifos {
            while let Some(head) = fifo.front().copied() {
                let live = self
                    .slots
                    .get(head.slot as usize)
                    .is_some_and(|s| s.generation == head.generation);
                if live && head.deadline > now {
                    earliest = Some(earliest.map_or(head.deadline, |e| e.min(head.deadline)));
                    break;
                }
                fifo.pop_front();
                if live
                    && let Some(w) = self
                        .slots
                        .get_mut(head.slot as usize)
                        .and_then(|s| s.waker.take())
                {
                    woken.push(w);
                }
            }
        }
        // A timeout no longer used leaves no empty FIFO behind for ever.
        self.fifos.retain(|(_, fifo)| !fifo.is_empty());
        earliest
    }
}

impl ProbeTimeouts {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `fut` for at most `after`; `Err(Elapsed)` if the time ran out first. Must be
    /// polled inside a tokio runtime (the sweeper is a task of the first one that needs it).
    pub async fn within<F: Future>(&self, after: Duration, fut: F) -> Result<F::Output, Elapsed> {
        let deadline = Instant::now() + after;
        let mut fut = pin!(fut);
        let mut ticket = Ticket {
            timeouts: self,
            armed: None,
        };
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            match ticket.armed {
                Some((slot, generation)) => {
                    if Instant::now() >= deadline {
                        return Poll::Ready(Err(Elapsed));
                    }
                    self.lock().rewake(slot, generation, cx.waker());
                }
                None => {
                    let (start, notify) = {
                        let mut q = self.lock();
                        ticket.armed = Some(q.arm(after, deadline, cx.waker()));
                        let start = !q.sweeping;
                        q.sweeping = true;
                        let notify = !start && q.target.is_none_or(|t| deadline < t);
                        if notify {
                            // Once per new earliest head, not per probe.
                            q.target = Some(deadline);
                        }
                        (start, notify)
                    };
                    if start {
                        tokio::spawn(sweep(Arc::clone(&self.shared)));
                    } else if notify {
                        self.shared.earlier.notify_one();
                    }
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Probes whose deadline is queued and not yet passed or released (for tests).
    #[cfg(test)]
    fn live(&self) -> usize {
        self.lock()
            .slots
            .iter()
            .filter(|s| s.waker.is_some())
            .count()
    }
}

/// Releases the probe's slot however its future ends (done, timed out, or dropped).
struct Ticket<'a> {
    timeouts: &'a ProbeTimeouts,
    armed: Option<(u32, u32)>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some((slot, generation)) = self.armed.take() {
            self.timeouts.lock().release(slot, generation);
        }
    }
}

/// Clears `sweeping` when the sweeper's runtime drops it, so the next probe starts one
/// on its own runtime.
struct SweeperAlive(Arc<Shared>);

impl Drop for SweeperAlive {
    fn drop(&mut self) {
        let mut q = self
            .0
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        q.sweeping = false;
        q.target = None;
    }
}

async fn sweep(shared: Arc<Shared>) {
    let alive = SweeperAlive(shared);
    let shared = &alive.0;
    let mut woken = Vec::new();
    let sleep = tokio::time::sleep_until(Instant::now() + Duration::from_secs(86_400));
    let mut sleep = pin!(sleep);
    loop {
        let next = {
            let mut q = shared
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let next = q.expire(Instant::now(), &mut woken);
            q.target = next;
            next
        };
        for w in woken.drain(..) {
            w.wake();
        }
        match next {
            Some(t) => {
                if sleep.deadline() != t {
                    sleep.as_mut().reset(t);
                }
                tokio::select! {
                    biased;
                    _ = shared.earlier.notified() => {}
                    _ = &mut sleep => {}
                }
            }
            None => shared.earlier.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_future_times_out_at_its_deadline() {
        let t = ProbeTimeouts::default();
        let start = Instant::now();
        let r = t
            .within(
                Duration::from_millis(500),
                tokio::time::sleep(Duration::from_secs(5)),
            )
            .await;
        assert_eq!(r, Err(Elapsed));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_millis(510), "{took:?}");
        assert_eq!(t.live(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_future_returns_its_output_and_frees_its_slot() {
        let t = ProbeTimeouts::default();
        let r = t
            .within(Duration::from_secs(1), async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                7
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(t.live(), 0);
        // The stale entry is dropped when its deadline comes up; the slot is reused.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = t
            .within(Duration::from_secs(1), std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Elapsed));
        assert_eq!(t.lock().slots.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn many_timeouts_each_end_at_their_own_deadline() {
        // Three timeout values, started out of order of their deadlines: each FIFO is
        // sorted, the sweeper follows the earliest head of all.
        let t = ProbeTimeouts::default();
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..300u64 {
            let t = t.clone();
            let after = Duration::from_millis([900, 300, 600][(i % 3) as usize]);
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(i)).await;
                let r = t.within(after, std::future::pending::<()>()).await;
                (i, after, r, Instant::now())
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((i, after, r, ended)) = joined else {
                panic!("a probe task failed");
            };
            assert_eq!(r, Err(Elapsed));
            let due = start + Duration::from_millis(i) + after;
            assert!(ended >= due, "probe {i} ended early");
            assert!(
                ended < due + Duration::from_millis(5),
                "probe {i} ended late"
            );
        }
        assert_eq!(t.live(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wakes_a_sleeping_sweeper() {
        let t = ProbeTimeouts::default();
        // The sweeper sleeps towards a 10 s deadline ...
        let long = tokio::spawn({
            let t = t.clone();
            async move {
                t.within(Duration::from_secs(10), std::future::pending::<()>())
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // ... and a 100 ms one must still end on time.
        let start = Instant::now();
        let r = t
            .within(Duration::from_millis(100), std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Elapsed));
        assert!(start.elapsed() < Duration::from_millis(110));
        long.abort();
    }

    #[test]
    fn a_new_runtime_gets_a_sweeper_of_its_own() {
        let t = ProbeTimeouts::default();
        for _ in 0..2 {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => panic!("runtime: {e}"),
            };
            let r = rt.block_on(t.within(Duration::from_millis(20), std::future::pending::<()>()));
            assert_eq!(r, Err(Elapsed));
            // The runtime drops its sweeper task with it.
            drop(rt);
            assert!(!t.lock().sweeping);
        }
    }
}
