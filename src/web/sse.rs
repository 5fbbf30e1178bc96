//! The server-sent event stream of `/view/api/events`: a `retry:` hint, then `hello` (fresh
//! client), the missed events (`Last-Event-ID` within the ring) or `resync`, then live events
//! and a `: ping` comment every 15 s. Ends when the client goes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Frame;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::ring::{Event, Hub, Replay};

pub const PING: Duration = Duration::from_secs(15);
/// Reconnect delay hint for the browser.
pub const RETRY_MS: u64 = 2000;

/// At most this many event streams at once (each holds a socket and a task).
pub const MAX_STREAMS: usize = 1024;

/// A place among the open streams; given back on drop (when the stream ends).
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    pub fn try_take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One event in the wire format (data is one line of JSON, so one `data:` line).
pub fn frame(id: &str, kind: &str, data: &str) -> String {
    format!("id: {id}\nevent: {kind}\ndata: {data}\n\n")
}

/// The body of one subscriber. `admin`: include the admin-only events.
pub fn body(
    hub: Arc<Hub>,
    last_event_id: Option<String>,
    admin: bool,
    slot: Slot,
) -> BoxBody<Bytes, Infallible> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        feed(hub, last_event_id, admin, tx).await;
        drop(slot);
    });
    let stream = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    http_body_util::StreamBody::new(stream).boxed()
}

async fn feed(hub: Arc<Hub>, last_event_id: Option<String>, admin: bool, tx: mpsc::Sender<Bytes>) {
    let (replay, last_seq, mut live) = hub.subscribe(last_event_id.as_deref());
    let mut first = format!("retry: {RETRY_MS}\n\n");
    let meta = format!("{{\"epoch\":{},\"admin\":{admin}}}", hub.epoch);
    match (replay, &last_event_id) {
        (Replay::Resync, _) => first.push_str(&frame(&hub.id(last_seq), "resync", &meta)),
        (Replay::Events(_), None) => first.push_str(&frame(&hub.id(last_seq), "hello", &meta)),
        (Replay::Events(events), Some(_)) => {
            for e in events.iter().filter(|e| admin || !e.admin_only) {
                first.push_str(&frame(&hub.id(e.seq), e.kind, &e.data));
            }
        }
    }
    if tx.send(Bytes::from(first)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
    loop {
        let chunk = tokio::select! {
            () = tx.closed() => return,
            _ = ping.tick() => ": ping\n\n".to_string(),
            got = live.recv() => match got {
                Ok(e) => match visible(&e, admin) {
                    Some(e) => frame(&hub.id(e.seq), e.kind, &e.data),
                    None => continue,
                },
                // Too slow a reader: it missed events, so it must refetch.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    frame(&hub.last_id(), "resync", &format!("{{\"epoch\":{},\"admin\":{admin}}}", hub.epoch))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
    }
}

fn visible(e: &Arc<Event>, admin: bool) -> Option<&Arc<Event>> {
    (admin || !e.admin_only).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_given_back() {
        let count = Arc::new(AtomicUsize::new(0));
        let a = Slot::try_take(&count, 2).expect("first");
        let b = Slot::try_take(&count, 2).expect("second");
        assert!(Slot::try_take(&count, 2).is_none(), "full");
        drop(a);
        let c = Slot::try_take(&count, 2).expect("freed");
        drop((b, c));
        assert_eq!(count.load(Ordering::Acquire), 0);
    }

    #[test]
    fn wire_format() {
        assert_eq!(
            frame("1-2", "log", "{}"),
            "id: 1-2\nevent: log\ndata: {}\n\n"
        );
    }
}
