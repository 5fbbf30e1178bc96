//! The reconcile trigger: the set of frontends whose VPP state may have to change, from
//! the checker to the reconciler. A set, not a queue: marking a frontend twice before the
//! reconciler looks is one entry, so it cannot overflow or lag whatever the burst, and it
//! has nothing to do with logging (a log line never triggers, delays or drops a sync).

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Marks {
    names: BTreeSet<String>,
    /// Bumped on every mark: which change made the set what it is.
    generation: u64,
}

/// Frontends marked since the reader last took them. One reader (the reconciler).
#[derive(Debug, Default)]
pub struct DirtyFrontends {
    marks: Mutex<Marks>,
    notify: Notify,
}

/// What [`DirtyFrontends::take`] hands over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    pub frontends: BTreeSet<String>,
    /// The generation of the last mark included.
    pub generation: u64,
}

impl DirtyFrontends {
    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        // A panic while holding this lock leaves a set of names: still usable.
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `frontends` dirty and wakes the reader. Marking nothing does nothing.
    pub fn mark<'a>(&self, frontends: impl IntoIterator<Item = &'a str>) {
        let mut m = self.lock();
        let mut any = false;
        for f in frontends {
            any = true;
            if !m.names.contains(f) {
                m.names.insert(f.to_string());
            }
        }
        if !any {
            return;
        }
        m.generation += 1;
        drop(m);
        // At most one stored wake-up, however many marks.
        self.notify.notify_one();
    }

    /// Takes every marked frontend (empty when none).
    pub fn take(&self) -> Dirty {
        let mut m = self.lock();
        Dirty {
            frontends: std::mem::take(&mut m.names),
            generation: m.generation,
        }
    }

    /// Resolves once something was marked since the last `take` (at once when a mark
    /// came before this call: the wake-up is stored).
    pub async fn marked(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_one_set_and_one_wake_up() {
        let d = DirtyFrontends::default();
        for _ in 0..100_000 {
            d.mark(["web", "mail"]);
        }
        d.marked().await;
        let got = d.take();
        assert_eq!(got.frontends.len(), 2);
        assert_eq!(got.generation, 100_000);
        assert!(d.take().frontends.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn marking_nothing_wakes_nobody() {
        let d = DirtyFrontends::default();
        d.mark(std::iter::empty());
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), d.marked()).await;
        assert!(woke.is_err());
    }
}
