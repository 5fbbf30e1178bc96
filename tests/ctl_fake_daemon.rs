//! `maglev ctl` one-shot against a small fake daemon on a Unix socket: the `unix:` connector,
//! text and JSON output of real answers, a refusal (exit 1, message only), and
//! `watch events num N` over a server stream. The real daemon's tests come with the server.

use std::path::PathBuf;
use std::pin::Pin;

use assert_cmd::Command;
use maglev::proto::maglev_server::{Maglev, MaglevServer};
use maglev::proto::*;
use serde_json::Value;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

struct Fake;

fn web1() -> Backend {
    Backend {
        name: "web1".into(),
        address: "192.0.2.10".into(),
        healthcheck: "http".into(),
        enabled: true,
        state: BackendState::Up as i32,
        health: 4,
        rise: 2,
        fall: 3,
        last_result: Some(ProbeResult {
            code: ResultCode::L7ok as i32,
            ok: true,
            detail: "HTTP 200".into(),
            ..ProbeResult::default()
        }),
        frontends: vec!["vip1".into()],
        ..Backend::default()
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn no<T>() -> Reply<T> {
    Err(Status::unimplemented("not in the fake"))
}

#[tonic::async_trait]
impl Maglev for Fake {
    async fn list_frontends(
        &self,
        _: Request<ListFrontendsRequest>,
    ) -> Reply<ListFrontendsResponse> {
        no()
    }
    async fn get_frontend(&self, _: Request<GetFrontendRequest>) -> Reply<Frontend> {
        no()
    }
    async fn list_backends(&self, _: Request<ListBackendsRequest>) -> Reply<ListBackendsResponse> {
        Ok(Response::new(ListBackendsResponse {
            backends: vec![web1()],
        }))
    }
    async fn get_backend(&self, r: Request<GetBackendRequest>) -> Reply<Backend> {
        match r.into_inner().name.as_str() {
            "web1" => Ok(Response::new(web1())),
            other => Err(Status::not_found(format!("no backend {other:?}"))),
        }
    }
    async fn pause_backend(&self, _: Request<BackendActionRequest>) -> Reply<Backend> {
        Err(Status::failed_precondition(
            "backend web1 is disabled: enable it first",
        ))
    }
    async fn resume_backend(&self, _: Request<BackendActionRequest>) -> Reply<Backend> {
        no()
    }
    async fn enable_backend(&self, _: Request<BackendActionRequest>) -> Reply<Backend> {
        no()
    }
    async fn disable_backend(&self, _: Request<BackendActionRequest>) -> Reply<Backend> {
        no()
    }
    async fn list_health_checks(
        &self,
        _: Request<ListHealthChecksRequest>,
    ) -> Reply<ListHealthChecksResponse> {
        no()
    }
    async fn get_health_check(&self, _: Request<GetHealthCheckRequest>) -> Reply<HealthCheck> {
        no()
    }
    async fn set_frontend_pool_backend_weight(
        &self,
        _: Request<SetFrontendPoolBackendWeightRequest>,
    ) -> Reply<Frontend> {
        no()
    }
    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;
    async fn watch_events(&self, _: Request<WatchEventsRequest>) -> Reply<Self::WatchEventsStream> {
        let initial = Event {
            kind: Some(event::Kind::Frontend(FrontendEvent {
                frontend: "vip1".into(),
                to: FrontendState::Up as i32,
                initial: true,
                ..FrontendEvent::default()
            })),
            ..Event::default()
        };
        let transition = |to: BackendState| Event {
            kind: Some(event::Kind::Backend(BackendEvent {
                backend: "web1".into(),
                frontend: "vip1".into(),
                address: "192.0.2.10".into(),
                transition: Some(Transition {
                    from: BackendState::Up as i32,
                    to: to as i32,
                    reason: "probe".into(),
                    ..Transition::default()
                }),
            })),
            ..Event::default()
        };
        // Two transitions, then the stream stays open: `num 2` must end it on the client.
        let events: Vec<Result<Event, Status>> = vec![
            Ok(initial),
            Ok(transition(BackendState::Down)),
            Ok(transition(BackendState::Up)),
        ];
        let stream = tokio_stream::iter(events).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
    async fn check_config(&self, _: Request<CheckConfigRequest>) -> Reply<ConfigResult> {
        Ok(Response::new(ConfigResult {
            ok: false,
            kind: ConfigErrorKind::Parse as i32,
            path: "/etc/vpp-maglev/maglev.toml".into(),
            errors: vec![ConfigError {
                file: "/etc/vpp-maglev/maglev.toml".into(),
                line: 3,
                column: 7,
                message: "expected a table".into(),
                ..ConfigError::default()
            }],
            ..ConfigResult::default()
        }))
    }
    async fn reload_config(&self, _: Request<ReloadConfigRequest>) -> Reply<ConfigResult> {
        no()
    }
    async fn get_vpp_info(&self, _: Request<GetVppInfoRequest>) -> Reply<VppInfo> {
        Err(Status::unavailable("VPP is disabled"))
    }
    async fn get_vpplb_state(&self, _: Request<GetVpplbStateRequest>) -> Reply<VpplbState> {
        no()
    }
    async fn sync_vpplb_state(
        &self,
        _: Request<SyncVpplbStateRequest>,
    ) -> Reply<SyncVpplbStateResponse> {
        no()
    }
    async fn get_vpplb_counters(
        &self,
        _: Request<GetVpplbCountersRequest>,
    ) -> Reply<VpplbCounters> {
        no()
    }
    async fn get_version(&self, _: Request<GetVersionRequest>) -> Reply<VersionInfo> {
        Ok(Response::new(VersionInfo {
            version: "9.9.9".into(),
            commit: "abc".into(),
            build_date: "today".into(),
        }))
    }
}

/// Serves the fake on a fresh Unix socket; the returned dir keeps it alive.
fn start() -> (tempfile::TempDir, PathBuf, tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("maglev.sock");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&path) })
        .expect("bind");
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(MaglevServer::new(Fake))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    (dir, path, rt)
}

fn ctl(path: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("maglev").expect("binary");
    cmd.args(["ctl", "--server", &format!("unix:{}", path.display())]);
    cmd
}

#[test]
fn text_and_json_over_a_unix_socket() {
    let (_dir, path, _rt) = start();
    let out = ctl(&path)
        .args(["sh", "ba"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("web1") && text.contains("L7OK (HTTP 200)") && text.contains("4/4"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour on a pipe");

    let out = ctl(&path)
        .args(["--json", "show", "backends", "web1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["name"], "web1");
    assert_eq!(v["state"], "up");
    assert_eq!(v["last_result"]["code"], "L7OK");

    let out = ctl(&path)
        .args(["show", "version"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("9.9.9 (commit abc, built today)"));
}

#[test]
fn refusals_are_exit_1_with_the_message_only() {
    let (_dir, path, _rt) = start();
    let out = ctl(&path)
        .args(["show", "backends", "web9"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no backend \"web9\"\n"
    );
    // FAILED_PRECONDITION and a server-side UNAVAILABLE are refusals too, not exit 3.
    ctl(&path)
        .args(["set", "backend", "web1", "pause"])
        .assert()
        .code(1);
    let out = ctl(&path)
        .args(["show", "vpp", "info"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: VPP is disabled\n"
    );
    // An invalid config is printed, and the exit code says so.
    let out = ctl(&path)
        .args(["config", "check"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/etc/vpp-maglev/maglev.toml:3:7: expected a table"),
        "{text}"
    );
}

#[test]
fn watch_events_stops_after_num_events_not_counting_the_replay() {
    let (_dir, path, _rt) = start();
    let out = ctl(&path)
        .args(["--json", "watch", "events", "num", "2"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .get_output()
        .clone();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 3, "replay + 2 events");
    assert_eq!(lines[0]["type"], "frontend");
    assert_eq!(lines[0]["frontend"]["initial"], true);
    assert_eq!(lines[1]["backend"]["transition"]["to"], "down");
    assert_eq!(lines[2]["backend"]["transition"]["to"], "up");
}
