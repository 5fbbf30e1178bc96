//! The event bus: every backend transition, frontend state change and log line the daemon
//! publishes. Built on `tokio::sync::broadcast`, so a slow subscriber loses the oldest events
//! (and learns how many) instead of ever blocking the checker.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::health::{FrontendState, Transition};

/// One transition of one backend, published once per frontend that references it
/// (and once with `frontend: None` when no frontend does).
#[derive(Debug, Clone)]
pub struct BackendEvent {
    pub backend: String,
    pub frontend: Option<String>,
    pub address: IpAddr,
    pub transition: Transition,
}

/// A frontend's state changed (up / down / unknown).
#[derive(Debug, Clone)]
pub struct FrontendEvent {
    pub frontend: String,
    pub from: FrontendState,
    pub to: FrontendState,
    pub at: SystemTime,
}

/// Severity of a log event, ordered from most to least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Every level, from most to least verbose.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn from_tracing(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::TRACE => LogLevel::Trace,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::ERROR => LogLevel::Error,
        }
    }
}

/// One log line, as the `tracing` layer saw it.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub at: SystemTime,
    pub level: LogLevel,
    pub target: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Backend(BackendEvent),
    Frontend(FrontendEvent),
    Log(LogEvent),
}

/// Cheap to clone; all clones publish to the same subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    /// `capacity` events are buffered per subscriber before the oldest are dropped.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus { tx }
    }

    /// Publishes to every current subscriber; having none is not an error.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(msg: &str) -> Event {
        Event::Log(LogEvent {
            at: SystemTime::now(),
            level: LogLevel::Info,
            target: "t".into(),
            message: msg.into(),
            fields: BTreeMap::new(),
        })
    }

    #[tokio::test]
    async fn slow_subscriber_is_told_how_many_it_lost() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        for i in 0..5 {
            bus.publish(log(&i.to_string()));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 3),
            other => panic!("expected lag, got {other:?}"),
        }
        match rx.recv().await.map(|e| (*e).clone()) {
            Ok(Event::Log(l)) => assert_eq!(l.message, "3"),
            other => panic!("expected event 3, got {other:?}"),
        }
    }

    #[test]
    fn publishing_without_subscribers_is_fine() {
        let bus = EventBus::new(1);
        bus.publish(log("nobody listens"));
        assert_eq!(bus.subscriber_count(), 0);
    }
}
