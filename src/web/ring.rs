//! The event hub behind `/view/api/events`: every event gets the id `<epoch>-<seq>` (epoch =
//! this process's start, so ids from an earlier run are recognised), goes to the live
//! subscribers, and stays in a replay ring (a time window, at most `RING_MAX` events) that
//! answers a reconnecting browser's `Last-Event-ID`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

/// The ring never holds more than this many events, whatever the window.
pub const RING_MAX: usize = 2000;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    /// SSE `event:` name: `daemon` (a daemon's whole view) or `log` (the event panel).
    pub kind: &'static str,
    /// SSE `data:` (one line of JSON).
    pub data: String,
    /// Only for signed-in admins (daemon logs, action results).
    pub admin_only: bool,
    pub at: Instant,
}

/// What a subscriber gets first.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// The missed events (possibly none): continue from there.
    Events(Vec<Arc<Event>>),
    /// The id is from another epoch or older than the ring: refetch the state.
    Resync,
}

#[derive(Debug)]
struct Ring {
    last_seq: u64,
    events: VecDeque<Arc<Event>>,
}

#[derive(Debug)]
pub struct Hub {
    pub epoch: u64,
    window: Duration,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Hub {
    pub fn new(window: Duration) -> Hub {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        Self::with_epoch(epoch, window)
    }

    pub fn with_epoch(epoch: u64, window: Duration) -> Hub {
        let (tx, _) = broadcast::channel(1024);
        Hub {
            epoch,
            window,
            ring: Mutex::new(Ring {
                last_seq: 0,
                events: VecDeque::new(),
            }),
            tx,
        }
    }

    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The id of the newest event (`<epoch>-0` before the first).
    pub fn last_id(&self) -> String {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        self.id(ring.last_seq)
    }

    /// Numbers, stores and broadcasts one event.
    pub fn publish(&self, kind: &'static str, data: String, admin_only: bool) {
        let now = Instant::now();
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.last_seq += 1;
        let event = Arc::new(Event {
            seq: ring.last_seq,
            kind,
            data,
            admin_only,
            at: now,
        });
        ring.events.push_back(event.clone());
        self.prune(&mut ring, now);
        // Sent under the lock, so that subscribe() sees each event exactly once: either in
        // the replay or on the channel.
        let _ = self.tx.send(event);
    }

    fn prune(&self, ring: &mut Ring, now: Instant) {
        while ring.events.len() > RING_MAX
            || ring
                .events
                .front()
                .is_some_and(|e| now.duration_since(e.at) > self.window)
        {
            ring.events.pop_front();
        }
    }

    /// A live receiver plus what to send first for `last_event_id` (None: a fresh client,
    /// nothing to replay), and the seq of the newest event at that moment.
    pub fn subscribe(
        &self,
        last_event_id: Option<&str>,
    ) -> (Replay, u64, broadcast::Receiver<Arc<Event>>) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        self.prune(&mut ring, Instant::now());
        let rx = self.tx.subscribe();
        let replay = match last_event_id {
            None => Replay::Events(Vec::new()),
            Some(id) => replay_after(self.epoch, &ring, id),
        };
        (replay, ring.last_seq, rx)
    }
}

fn replay_after(epoch: u64, ring: &Ring, id: &str) -> Replay {
    let Some((e, s)) = id.trim().split_once('-') else {
        return Replay::Resync;
    };
    let (Ok(e), Ok(seq)) = (e.parse::<u64>(), s.parse::<u64>()) else {
        return Replay::Resync;
    };
    if e != epoch || seq > ring.last_seq {
        return Replay::Resync;
    }
    if seq == ring.last_seq {
        return Replay::Events(Vec::new());
    }
    // Everything after `seq` must still be in the ring.
    match ring.events.front() {
        Some(first) if first.seq <= seq + 1 => Replay::Events(
            ring.events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect(),
        ),
        _ => Replay::Resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(r: Replay) -> Vec<u64> {
        match r {
            Replay::Events(v) => v.iter().map(|e| e.seq).collect(),
            Replay::Resync => panic!("unexpected resync"),
        }
    }

    #[test]
    fn replays_what_was_missed() {
        let hub = Hub::with_epoch(7, Duration::from_secs(30));
        for i in 0..5 {
            hub.publish("log", format!("{i}"), false);
        }
        assert_eq!(hub.last_id(), "7-5");
        assert_eq!(seqs(hub.subscribe(Some("7-2")).0), [3, 4, 5]);
        assert_eq!(seqs(hub.subscribe(Some("7-0")).0), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(hub.subscribe(Some("7-5")).0), Vec::<u64>::new());
        assert_eq!(seqs(hub.subscribe(None).0), Vec::<u64>::new());
    }

    #[test]
    fn other_epoch_future_or_garbage_ids_resync() {
        let hub = Hub::with_epoch(7, Duration::from_secs(30));
        hub.publish("log", "x".into(), false);
        for id in ["6-1", "7-9", "nonsense", "7-x", ""] {
            assert_eq!(hub.subscribe(Some(id)).0, Replay::Resync, "{id:?}");
        }
    }

    #[test]
    fn ids_older_than_the_ring_resync() {
        let hub = Hub::with_epoch(1, Duration::from_secs(30));
        for _ in 0..RING_MAX + 10 {
            hub.publish("log", String::new(), false);
        }
        assert_eq!(hub.subscribe(Some("1-5")).0, Replay::Resync);
        // The oldest retained event is 11: asking from 10 still replays everything.
        assert_eq!(seqs(hub.subscribe(Some("1-10")).0).len(), RING_MAX);
    }

    #[test]
    fn the_window_expires_events_but_an_up_to_date_client_is_fine() {
        let hub = Hub::with_epoch(1, Duration::from_millis(1));
        hub.publish("log", String::new(), false);
        hub.publish("log", String::new(), false);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(hub.subscribe(Some("1-1")).0, Replay::Resync);
        assert_eq!(seqs(hub.subscribe(Some("1-2")).0), Vec::<u64>::new());
    }

    #[tokio::test]
    async fn live_events_follow_the_replay_without_gap_or_duplicate() {
        let hub = Hub::with_epoch(1, Duration::from_secs(30));
        hub.publish("log", "a".into(), false);
        let (replay, _, mut rx) = hub.subscribe(Some("1-0"));
        hub.publish("log", "b".into(), false);
        assert_eq!(seqs(replay), [1]);
        let live = rx.recv().await.expect("live event");
        assert_eq!((live.seq, live.data.as_str()), (2, "b"));
    }
}
