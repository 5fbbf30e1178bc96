//! When a per-VIP sync is due. The first event of a quiet VIP is synced at once (a failure
//! reaches VPP within the same millisecond); events that follow within [`COALESCE`] of that
//! VIP's last sync wait until the window ends and then go out as one sync. So a burst still
//! costs at most one sync per VIP per window, and a lone event costs no waiting.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The shortest time between two event-driven syncs of one VIP.
pub const COALESCE: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub struct Coalescer {
    /// Frontend -> when its VIP was last synced (only entries younger than the window).
    last_sync: BTreeMap<String, Instant>,
}

impl Coalescer {
    /// When an event of `frontend` seen at `now` should be synced.
    pub fn due(&self, frontend: &str, now: Instant) -> Instant {
        match self.last_sync.get(frontend) {
            Some(last) => now.max(*last + COALESCE),
            None => now,
        }
    }

    /// Remembers that `frontend` was synced at `now`, and forgets syncs whose window is over.
    pub fn synced<'a>(&mut self, frontends: impl IntoIterator<Item = &'a String>, now: Instant) {
        self.last_sync.retain(|_, t| now < *t + COALESCE);
        for f in frontends {
            self.last_sync.insert(f.clone(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_vip_is_due_at_once() {
        let c = Coalescer::default();
        let now = Instant::now();
        assert_eq!(c.due("web", now), now);
    }

    #[test]
    fn events_right_after_a_sync_wait_for_the_window() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        c.synced([&"web".to_string()], t0);
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(c.due("web", t1), t0 + COALESCE);
        // Another VIP is not held back.
        assert_eq!(c.due("other", t1), t1);
        // Once the window is over, the next event goes out at once again.
        let t2 = t0 + COALESCE + Duration::from_millis(1);
        assert_eq!(c.due("web", t2), t2);
    }

    #[test]
    fn old_entries_are_forgotten() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        c.synced([&"a".to_string()], t0);
        let later = t0 + COALESCE * 3;
        c.synced([&"b".to_string()], later);
        assert_eq!(c.last_sync.len(), 1);
        assert!(c.last_sync.contains_key("b"));
    }
}
