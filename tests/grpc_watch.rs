//! WatchEvents against the real daemon: the initial replay of frontend states, live
//! backend and frontend events caused by operator actions, name filters, and log events
//! with a minimum level independent of the daemon's own log level.

#[path = "support/daemon.rs"]
mod daemon_support;

use std::time::Duration;

use daemon_support::{DaemonBuilder, start_settled};
use maglev::proto::*;
use tonic::Streaming;

async fn next(s: &mut Streaming<Event>) -> event::Kind {
    match tokio::time::timeout(daemon_support::DEADLINE, s.message()).await {
        Ok(Ok(Some(e))) => {
            assert!(e.at.is_some(), "every event has a time");
            e.kind.expect("event kind")
        }
        other => panic!("no event: {other:?}"),
    }
}

/// Reads until `pred` matches, returning everything read before it.
async fn until(s: &mut Streaming<Event>, pred: impl Fn(&event::Kind) -> bool) -> Vec<event::Kind> {
    let mut seen = Vec::new();
    loop {
        let k = next(s).await;
        if pred(&k) {
            return seen;
        }
        seen.push(k);
    }
}

fn act(name: &str) -> BackendActionRequest {
    BackendActionRequest { name: name.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_backend_and_frontend_events() {
    let (_d, _backend, mut c) = start_settled(DaemonBuilder::new).await;

    // Selecting nothing: backend and frontend events, starting with the replay.
    let mut s = c
        .watch_events(WatchEventsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let f = match next(&mut s).await {
        event::Kind::Frontend(f) => f,
        other => panic!("the replay comes first: {other:?}"),
    };
    assert!(f.initial, "{f:?}");
    assert_eq!(f.frontend, "web");
    assert_eq!(f.to(), FrontendState::Up);
    let snap = f.snapshot.expect("replay carries a snapshot");
    assert_eq!(
        (snap.name.as_str(), snap.active_pool.as_str()),
        ("web", "primary")
    );

    // Pausing the only up backend takes the frontend down.
    c.pause_backend(act("up")).await.expect("pause");
    let mut got_backend = None;
    let before = until(
        &mut s,
        |k| matches!(k, event::Kind::Frontend(f) if !f.initial && f.to() == FrontendState::Down),
    )
    .await;
    for k in before {
        if let event::Kind::Backend(b) = k
            && b.backend == "up"
        {
            got_backend = Some(b);
        }
    }
    let b = got_backend.expect("the backend event comes before the frontend event");
    assert_eq!(
        (b.frontend.as_str(), b.address.as_str()),
        ("web", "127.0.0.2")
    );
    let t = b.transition.expect("transition");
    assert_eq!((t.from(), t.to()), (BackendState::Up, BackendState::Paused));
    assert_eq!(t.reason, "pause");
    assert!(t.result.is_none(), "operator actions carry no probe result");

    // A weight change is a frontend event too (the reconciler syncs on it).
    c.resume_backend(act("up")).await.expect("resume");
    until(
        &mut s,
        |k| matches!(k, event::Kind::Frontend(f) if f.to() == FrontendState::Up),
    )
    .await;
    c.set_frontend_pool_backend_weight(SetFrontendPoolBackendWeightRequest {
        frontend: "web".into(),
        pool: "primary".into(),
        backend: "up".into(),
        weight: 10,
    })
    .await
    .expect("weight");
    until(&mut s, |k| {
        matches!(k, event::Kind::Frontend(f) if f.from() == FrontendState::Up && f.to() == FrontendState::Up)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_kinds_and_names() {
    let (_d, _backend, mut c) = start_settled(DaemonBuilder::new).await;

    // Backend events of `down` only: no replay (frontends not selected), no `up` events.
    let mut s = c
        .watch_events(WatchEventsRequest {
            backend: true,
            backend_names: vec!["down".into()],
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    // Frontend events of `web`, but of another frontend name: nothing at all.
    let mut other = c
        .watch_events(WatchEventsRequest {
            frontend: true,
            frontend_names: vec!["elsewhere".into()],
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    c.pause_backend(act("up")).await.expect("pause up");
    c.disable_backend(act("down")).await.expect("disable down");
    match next(&mut s).await {
        event::Kind::Backend(b) => {
            assert_eq!(b.backend, "down");
            let t = b.transition.expect("transition");
            assert_eq!(t.to(), BackendState::Disabled);
        }
        other => panic!("only backend events of down: {other:?}"),
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), other.message()).await;
    assert!(
        nothing.is_err(),
        "nothing selected for that frontend: {nothing:?}"
    );

    // Frontend events of web only: the replay, then its change.
    let mut fe = c
        .watch_events(WatchEventsRequest {
            frontend: true,
            frontend_names: vec!["web".into()],
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    match next(&mut fe).await {
        event::Kind::Frontend(f) => assert!(f.initial && f.frontend == "web"),
        other => panic!("replay expected: {other:?}"),
    }
    c.resume_backend(act("up")).await.expect("resume");
    match next(&mut fe).await {
        event::Kind::Frontend(f) => {
            assert!(!f.initial);
            assert_eq!(f.frontend, "web");
        }
        other => panic!("frontend events only: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_events_have_their_own_minimum_level() {
    // The daemon itself logs errors only; a watcher still gets info lines.
    let (d, _backend, mut c) =
        start_settled(|cfg| DaemonBuilder::new(cfg).log_level("error")).await;

    let mut info = c
        .watch_events(WatchEventsRequest {
            log: true,
            log_level: LogLevel::Info as i32,
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let mut errors = c
        .watch_events(WatchEventsRequest {
            log: true,
            log_level: LogLevel::Error as i32,
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();

    c.pause_backend(act("up")).await.expect("pause");
    let before = until(
        &mut info,
        |k| matches!(k, event::Kind::Log(l) if l.message.contains("backend up up -> paused")),
    )
    .await;
    assert!(
        before.iter().all(|k| matches!(k, event::Kind::Log(_))),
        "logs only: {before:?}"
    );
    assert!(
        !d.log().contains("up -> paused"),
        "the daemon's own output stays at error"
    );

    // A refused reload logs errors: the error watcher sees it, and nothing below error.
    d.write_config("not = [valid\n");
    let r = c
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(!r.applied);
    match next(&mut errors).await {
        event::Kind::Log(l) => {
            assert_eq!(l.level(), LogLevel::Error);
            assert!(l.message.contains("reload refused"), "{l:?}");
            assert!(l.target.starts_with("maglev"), "{l:?}");
        }
        other => panic!("log expected: {other:?}"),
    }
}
