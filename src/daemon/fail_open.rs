//! The WARN log while a `fail = "open"` frontend is failed open (docs/design.md §12): once when
//! it opens, again every `REPEAT` while it stays open, and an INFO line when it closes.
//! The weights themselves come from the weight table; this only watches it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::FailPolicy;
use crate::daemon::Daemon;

/// How often the frontends are looked at.
const POLL: Duration = Duration::from_secs(1);
/// How often the WARN is repeated while a frontend stays failed open.
const REPEAT: Duration = Duration::from_secs(60);

/// What to log for one frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Opened(String),
    StillOpen(String, Duration),
    Closed(String),
}

/// Remembers which frontends are failed open, since when and when it was last said.
#[derive(Debug, Default)]
pub struct Tracker {
    open: BTreeMap<String, (Instant, Instant)>,
}

impl Tracker {
    /// `failed` = the frontends failed open right now.
    pub fn step(&mut self, now: Instant, failed: &[String]) -> Vec<Note> {
        let mut notes = Vec::new();
        self.open.retain(|name, _| {
            let keep = failed.contains(name);
            if !keep {
                notes.push(Note::Closed(name.clone()));
            }
            keep
        });
        for name in failed {
            match self.open.get_mut(name) {
                None => {
                    self.open.insert(name.clone(), (now, now));
                    notes.push(Note::Opened(name.clone()));
                }
                Some((since, said)) if now.duration_since(*said) >= REPEAT => {
                    *said = now;
                    notes.push(Note::StillOpen(name.clone(), now.duration_since(*since)));
                }
                Some(_) => {}
            }
        }
        notes
    }
}

/// The frontends failed open now (only `fail = "open"` ones are looked at).
fn failed_open(daemon: &Daemon) -> Vec<String> {
    daemon.checker.read(|st| {
        st.config
            .frontends
            .values()
            .filter(|f| f.fail == FailPolicy::Open)
            .filter_map(|f| st.frontend(&f.name))
            .filter(|v| v.weights.failed_open)
            .map(|v| v.frontend.name.clone())
            .collect()
    })
}

/// Runs until aborted.
pub fn spawn(daemon: Arc<Daemon>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tracker = Tracker::default();
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            for note in tracker.step(Instant::now(), &failed_open(&daemon)) {
                match note {
                    Note::Opened(f) => tracing::warn!(
                        frontend = %f,
                        "frontend {f} FAILED OPEN: every backend is down; the first pool's down backends keep their configured weights"
                    ),
                    Note::StillOpen(f, d) => tracing::warn!(
                        frontend = %f,
                        "frontend {f} still failed open after {}s",
                        d.as_secs()
                    ),
                    Note::Closed(f) => {
                        tracing::info!(frontend = %f, "frontend {f} no longer failed open")
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opened_repeated_and_closed() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        let web = vec!["web".to_string()];
        assert_eq!(t.step(t0, &web), vec![Note::Opened("web".into())]);
        assert!(t.step(t0 + Duration::from_secs(30), &web).is_empty());
        assert_eq!(
            t.step(t0 + REPEAT, &web),
            vec![Note::StillOpen("web".into(), REPEAT)]
        );
        assert!(
            t.step(t0 + REPEAT + Duration::from_secs(1), &web)
                .is_empty()
        );
        assert_eq!(
            t.step(t0 + REPEAT * 2, &[]),
            vec![Note::Closed("web".into())]
        );
        assert!(t.step(t0 + REPEAT * 3, &[]).is_empty());
        // Opening again is news again.
        assert_eq!(
            t.step(t0 + REPEAT * 4, &web),
            vec![Note::Opened("web".into())]
        );
    }
}
