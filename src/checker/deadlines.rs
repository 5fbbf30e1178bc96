//! The probe deadline queue. Most deadlines sit on the batching grid (`task::BATCH_TICK`
//! from the checker's epoch), so thousands of backends share a hundred or so distinct
//! deadlines per second: those go into one FIFO bucket per deadline (a bucket map of about
//! a hundred keys, instead of a binary heap of every backend whose pop walks its depth).
//! Deadlines off the grid (delays under `task::BATCH_MIN_DELAY`, a probe woken "now") keep
//! a binary heap. Both give their entries back in deadline order, the earlier source first.

use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::task::Due;

#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// (epoch, tick in ns) of the grid; none until the checker sets it: everything in the heap.
    grid: Option<(Instant, u64)>,
    buckets: BTreeMap<Instant, VecDeque<Due>>,
    heap: BinaryHeap<Due>,
    /// Emptied buckets kept for reuse (no allocation per tick).
    spare: Vec<VecDeque<Due>>,
}

impl Deadlines {
    /// Deadlines `epoch + k × tick` go into buckets from now on.
    pub(crate) fn set_grid(&mut self, epoch: Instant, tick: Duration) {
        let tick = u64::try_from(tick.as_nanos()).unwrap_or(0);
        self.grid = (tick > 0).then_some((epoch, tick));
    }

    fn on_grid(&self, when: Instant) -> bool {
        let Some((epoch, tick)) = self.grid else {
            return false;
        };
        when >= epoch
            && u64::try_from(when.duration_since(epoch).as_nanos()).is_ok_and(|ns| ns % tick == 0)
    }

    pub(crate) fn push(&mut self, due: Due) {
        if !self.on_grid(due.when) {
            self.heap.push(due);
            return;
        }
        let spare = &mut self.spare;
        self.buckets
            .entry(due.when)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back(due);
    }

    /// The earliest deadline queued.
    pub(crate) fn next(&self) -> Option<Instant> {
        let bucket = self.buckets.first_key_value().map(|(when, _)| *when);
        let heap = self.heap.peek().map(|d| d.when);
        match (bucket, heap) {
            (Some(b), Some(h)) => Some(b.min(h)),
            (b, h) => b.or(h),
        }
    }

    /// The earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        let bucket = self.buckets.first_key_value().map(|(when, _)| *when);
        let heap = self.heap.peek().map(|d| d.when);
        let from_heap = match (bucket, heap) {
            (_, Some(h)) if h > now => false,
            (Some(b), Some(h)) => h < b,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if from_heap {
            return self.heap.pop();
        }
        let mut entry = self.buckets.first_entry()?;
        if *entry.key() > now {
            return None;
        }
        let due = entry.get_mut().pop_front();
        if entry.get().is_empty() {
            self.spare.push(entry.remove());
        }
        due
    }

    /// Entries queued (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.buckets.values().map(VecDeque::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(when: Instant, seq: u64) -> Due {
        Due {
            when,
            seq,
            slot: u32::try_from(seq).unwrap_or(0),
            generation: 1,
        }
    }

    fn drain(d: &mut Deadlines, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| d.pop_due(now))
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn entries_come_out_in_deadline_order_from_grid_and_heap() {
        let epoch = Instant::now();
        let ms = |n: u64| epoch + Duration::from_millis(n);
        let mut d = Deadlines::default();
        d.set_grid(epoch, Duration::from_millis(10));
        d.push(due(ms(30), 1)); // grid
        d.push(due(ms(10), 2)); // grid
        d.push(due(ms(15), 3)); // off the grid: heap
        d.push(due(ms(30), 4)); // grid, same bucket as 1: after it
        d.push(due(ms(5), 5)); // heap
        d.push(due(ms(10), 6)); // grid, after 2
        assert_eq!(d.len(), 6);
        assert_eq!(d.next(), Some(ms(5)));
        // Nothing due before the earliest deadline.
        assert_eq!(d.pop_due(ms(4)).map(|e| e.seq), None);
        assert_eq!(drain(&mut d, ms(12)), [5, 2, 6]);
        assert_eq!(d.next(), Some(ms(15)));
        assert_eq!(drain(&mut d, ms(100)), [3, 1, 4]);
        assert_eq!((d.next(), d.len()), (None, 0));
        // The emptied buckets are kept for reuse.
        assert_eq!(d.spare.len(), 2);
        d.push(due(ms(40), 7));
        assert_eq!(d.spare.len(), 1);
        assert_eq!(drain(&mut d, ms(40)), [7]);
    }

    #[test]
    fn without_a_grid_everything_is_in_the_heap() {
        let epoch = Instant::now();
        let mut d = Deadlines::default();
        for (i, ms) in [30u64, 10, 20, 10].into_iter().enumerate() {
            d.push(due(
                epoch + Duration::from_millis(ms),
                u64::try_from(i).unwrap_or(0) + 1,
            ));
        }
        assert!(d.buckets.is_empty());
        // Equal deadlines in push (seq) order, as the heap orders them.
        assert_eq!(drain(&mut d, epoch + Duration::from_secs(1)), [2, 4, 3, 1]);
    }

    #[test]
    fn a_deadline_before_the_epoch_is_kept_in_the_heap() {
        let now = Instant::now();
        let epoch = now + Duration::from_secs(1);
        let mut d = Deadlines::default();
        d.set_grid(epoch, Duration::from_millis(10));
        d.push(due(now, 1));
        d.push(due(epoch, 2));
        assert_eq!(d.heap.len(), 1);
        assert_eq!(drain(&mut d, epoch), [1, 2]);
    }
}
