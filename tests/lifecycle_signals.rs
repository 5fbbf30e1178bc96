//! Signals on the real daemon: SIGHUP reloads (a good file applies, a bad one keeps the
//! running config), SIGTERM/SIGINT end open WatchEvents streams and exit 0 within 2 s.

#[path = "support/daemon.rs"]
mod daemon_support;

use std::time::Duration;

use daemon_support::{DaemonBuilder, UpBackend, basic_config, eventually};
use maglev::proto::{ListBackendsRequest, WatchEventsRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_good_file_and_keeps_the_old_config_on_a_bad_one() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let c = d.client().await;
    let names = || {
        let mut c = c.clone();
        async move {
            c.list_backends(ListBackendsRequest {}).await.ok().map(|r| {
                r.into_inner()
                    .backends
                    .into_iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
            })
        }
    };

    let grown = basic_config(backend.port()).replace(
        "[frontends.web]",
        "[backends.extra]\naddress = \"127.0.0.5\"\nhealthcheck = \"tcp\"\n\n[frontends.web]",
    );
    d.write_config(&grown);
    d.signal(libc::SIGHUP);
    eventually("SIGHUP applied the new backend", || async {
        names().await.filter(|n| n.contains(&"extra".to_string()))
    })
    .await;

    d.write_config("[backends.broken\n");
    d.signal(libc::SIGHUP);
    eventually("the refused reload is logged", || async {
        d.log().contains("reload refused").then_some(())
    })
    .await;
    let now = names().await.expect("still answering");
    assert_eq!(
        now,
        ["down", "extra", "off", "up"],
        "the old config keeps running"
    );
}

async fn exits_on(sig: libc::c_int) {
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let mut c = d.client().await;
    let mut stream = c
        .watch_events(WatchEventsRequest {
            log: true,
            backend: true,
            frontend: true,
            ..WatchEventsRequest::default()
        })
        .await
        .expect("watch")
        .into_inner();
    // The stream is live (the replay arrived) before the signal.
    let first = stream.message().await.expect("replay").expect("one event");
    assert!(first.kind.is_some());

    d.signal(sig);
    let status = d.wait_exit(Duration::from_secs(2));
    let status =
        status.unwrap_or_else(|| panic!("still running 2 s after signal {sig}:\n{}", d.log()));
    assert!(status.success(), "{status}");
    // The daemon ended the stream (end of stream, not a broken connection).
    let end = tokio::time::timeout(daemon_support::DEADLINE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "ended",
                Err(_) => return "broken",
            }
        }
    })
    .await;
    assert_eq!(
        end.ok(),
        Some("ended"),
        "the daemon ends the watch stream cleanly"
    );
    assert!(d.log().contains("maglev daemon stopped"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_and_exits_within_two_seconds() {
    exits_on(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_ends_streams_and_exits_within_two_seconds() {
    exits_on(libc::SIGINT).await;
}
