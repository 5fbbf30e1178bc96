//! WatchEvents: which bus events a watcher selected (a pure filter), and the per-watcher
//! forwarder that turns the broadcast receiver into a bounded gRPC stream. The bus never
//! waits for a watcher: a slow one lags on its broadcast receiver and is sent a
//! `LostEvents` marker with the count instead.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert;
use crate::checker::Checker;
use crate::events::{self, Event};
use crate::proto;

/// Messages buffered per watcher between its forwarder and the gRPC stream.
pub const STREAM_BUFFER: usize = 64;

/// What one watcher asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub log: bool,
    pub min_level: events::LogLevel,
    pub backend: bool,
    pub frontend: bool,
    /// Empty = every backend.
    pub backend_names: BTreeSet<String>,
    /// Empty = every frontend.
    pub frontend_names: BTreeSet<String>,
}

impl Filter {
    /// A request selecting no kind at all means backend and frontend events (not logs).
    pub fn from_request(r: &proto::WatchEventsRequest) -> Filter {
        let nothing = !r.log && !r.backend && !r.frontend;
        Filter {
            log: r.log,
            min_level: convert::min_log_level(r.log_level),
            backend: r.backend || nothing,
            frontend: r.frontend || nothing,
            backend_names: r.backend_names.iter().cloned().collect(),
            frontend_names: r.frontend_names.iter().cloned().collect(),
        }
    }

    fn frontend_selected(&self, name: &str) -> bool {
        self.frontend_names.is_empty() || self.frontend_names.contains(name)
    }

    /// Whether `e` goes to this watcher. A backend event passes the frontend-name filter
    /// through the frontend it was published for.
    pub fn matches(&self, e: &Event) -> bool {
        match e {
            Event::Log(l) => self.log && l.level >= self.min_level,
            Event::Frontend(f) => self.frontend && self.frontend_selected(&f.frontend),
            Event::Backend(b) => {
                self.backend
                    && (self.backend_names.is_empty() || self.backend_names.contains(&b.backend))
                    && (self.frontend_names.is_empty()
                        || b.frontend
                            .as_deref()
                            .is_some_and(|f| self.frontend_names.contains(f)))
            }
        }
    }
}

/// The replay: the current state of every selected frontend (none unless frontend
/// events were asked for).
pub fn initial_events(checker: &Checker, filter: &Filter) -> Vec<proto::Event> {
    if !filter.frontend {
        return Vec::new();
    }
    let now = SystemTime::now();
    checker.read(|st| {
        st.config
            .frontends
            .keys()
            .filter(|name| filter.frontend_selected(name))
            .filter_map(|name| st.frontend(name))
            .map(|view| convert::initial_frontend_event(convert::frontend(st, view), now))
            .collect()
    })
}

pub type EventStream = ReceiverStream<Result<proto::Event, Status>>;

/// Starts a watcher: replay first, then live events until the client goes away or the
/// daemon shuts down (`shutdown` turns true, or its sender is dropped).
///
/// `rx` must be subscribed before the replay is taken so that nothing falls between them
/// (an event may then show up both in the replay and live, which is harmless).
pub fn spawn(
    rx: broadcast::Receiver<Arc<Event>>,
    replay: Vec<proto::Event>,
    filter: Filter,
    shutdown: watch::Receiver<bool>,
) -> EventStream {
    let (tx, out) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(forward(rx, replay, filter, shutdown, tx));
    ReceiverStream::new(out)
}

async fn forward(
    mut rx: broadcast::Receiver<Arc<Event>>,
    replay: Vec<proto::Event>,
    filter: Filter,
    mut shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<proto::Event, Status>>,
) {
    for e in replay {
        if !send(&tx, &mut shutdown, e).await {
            return;
        }
    }
    loop {
        let next = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.wait_for(|down| *down) => return,
            () = tx.closed() => return,
        };
        let out = match next {
            Ok(e) if filter.matches(&e) => convert::event(&e),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                convert::lost_events(n, SystemTime::now())
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !send(&tx, &mut shutdown, out).await {
            return;
        }
    }
}

/// Waits for room in the watcher's buffer; false when the watcher or the daemon is gone.
/// Waiting here holds up only this watcher: meanwhile its broadcast receiver lags.
async fn send(
    tx: &mpsc::Sender<Result<proto::Event, Status>>,
    shutdown: &mut watch::Receiver<bool>,
    e: proto::Event,
) -> bool {
    tokio::select! {
        r = tx.send(Ok(e)) => r.is_ok(),
        _ = shutdown.wait_for(|down| *down) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tokio_stream::StreamExt;

    use super::*;
    use crate::events::{BackendEvent, EventBus, FrontendEvent, LogEvent, LogLevel};
    use crate::health::{FrontendState, State, Transition, TransitionReason};

    fn req(log: bool, backend: bool, frontend: bool) -> proto::WatchEventsRequest {
        proto::WatchEventsRequest {
            log,
            backend,
            frontend,
            ..proto::WatchEventsRequest::default()
        }
    }

    fn log(level: LogLevel) -> Event {
        Event::Log(LogEvent {
            at: SystemTime::now(),
            level,
            target: "maglev".into(),
            message: "m".into(),
            fields: BTreeMap::new(),
        })
    }

    fn backend(name: &str, frontend: Option<&str>) -> Event {
        Event::Backend(BackendEvent {
            backend: name.into(),
            frontend: frontend.map(str::to_string),
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            transition: Transition {
                from: State::Up,
                to: State::Down,
                at: SystemTime::now(),
                result: None,
                reason: TransitionReason::Probe,
            },
        })
    }

    fn frontend(name: &str) -> Event {
        Event::Frontend(FrontendEvent {
            frontend: name.into(),
            from: FrontendState::Up,
            to: FrontendState::Down,
            at: SystemTime::now(),
        })
    }

    #[test]
    fn selecting_nothing_means_backend_and_frontend_but_no_logs() {
        let f = Filter::from_request(&req(false, false, false));
        assert!(f.backend && f.frontend && !f.log);
        assert!(f.matches(&backend("a", Some("v"))));
        assert!(f.matches(&frontend("v")));
        assert!(!f.matches(&log(LogLevel::Error)));
    }

    #[test]
    fn log_level_is_a_minimum() {
        let mut r = req(true, false, false);
        r.log_level = proto::LogLevel::Warn as i32;
        let f = Filter::from_request(&r);
        assert!(!f.matches(&log(LogLevel::Info)));
        assert!(f.matches(&log(LogLevel::Warn)));
        assert!(f.matches(&log(LogLevel::Error)));
        assert!(!f.matches(&backend("a", None)), "only logs were asked for");
        assert!(!f.matches(&frontend("v")));
        let f = Filter::from_request(&req(true, false, false));
        assert_eq!(f.min_level, LogLevel::Info, "unspecified = info");
        assert!(!f.matches(&log(LogLevel::Debug)));
    }

    #[test]
    fn names_narrow_each_kind() {
        let mut r = req(false, true, true);
        r.backend_names = vec!["a".into()];
        r.frontend_names = vec!["v".into()];
        let f = Filter::from_request(&r);
        assert!(f.matches(&backend("a", Some("v"))));
        assert!(!f.matches(&backend("a", Some("w"))));
        assert!(!f.matches(&backend("a", None)));
        assert!(!f.matches(&backend("b", Some("v"))));
        assert!(f.matches(&frontend("v")));
        assert!(!f.matches(&frontend("w")));
    }

    #[tokio::test]
    async fn replay_then_live_then_lost_marker_then_end_on_shutdown() {
        let bus = EventBus::new(4);
        let rx = bus.subscribe();
        let (down_tx, down_rx) = watch::channel(false);
        let replay = vec![convert::lost_events(0, SystemTime::now())];
        let filter = Filter::from_request(&req(false, true, false));
        let mut stream = spawn(rx, replay, filter, down_rx);

        let first = stream.next().await;
        assert!(matches!(
            first.and_then(Result::ok).and_then(|e| e.kind),
            Some(proto::event::Kind::Lost(proto::LostEvents { count: 0 }))
        ));
        bus.publish(frontend("skipped: not selected"));
        bus.publish(backend("a", None));
        let live = stream
            .next()
            .await
            .and_then(Result::ok)
            .and_then(|e| e.kind);
        let Some(proto::event::Kind::Backend(b)) = live else {
            panic!("expected the backend event, got {live:?}")
        };
        assert_eq!(b.backend, "a");

        // Overflow the bus (capacity 4) before the forwarder can read: it reports the loss.
        // The forwarder may already be parked in recv(); publish far more than capacity.
        for _ in 0..(STREAM_BUFFER * 4) {
            bus.publish(backend("b", None));
        }
        let mut lost = 0;
        let mut got = 0;
        while let Ok(Some(Ok(e))) =
            tokio::time::timeout(Duration::from_millis(200), stream.next()).await
        {
            match e.kind {
                Some(proto::event::Kind::Lost(l)) => lost += l.count,
                _ => got += 1,
            }
        }
        assert!(lost > 0, "a lagging watcher is told it lost events");
        assert_eq!(
            lost + got,
            (STREAM_BUFFER * 4) as u64,
            "every event is accounted for"
        );

        let _ = down_tx.send(true);
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        assert!(matches!(end, Ok(None)), "shutdown ends the stream");
    }
}
