//! The real daemon's gRPC API over loopback TCP, with real loopback backends: every query
//! RPC, operator actions, weights, config check/reload, VPP RPCs with VPP off, version,
//! and the status codes of every refusal. Also grpc.health.v1 and reflection.

#[path = "support/daemon.rs"]
mod daemon_support;

use daemon_support::{DaemonBuilder, UpBackend, basic_config, eventually, start_settled};
use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::*;
use tonic::Code;
use tonic::transport::Channel;

async fn state_of(c: &mut MaglevClient<Channel>, name: &str) -> Option<BackendState> {
    let b = c
        .get_backend(GetBackendRequest { name: name.into() })
        .await
        .ok()?
        .into_inner();
    Some(b.state())
}

fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_show_backends_frontends_healthchecks_and_version() {
    let (_d, backend, mut c) = start_settled(DaemonBuilder::new).await;

    let list = c
        .list_backends(ListBackendsRequest {})
        .await
        .expect("list backends")
        .into_inner()
        .backends;
    let names: Vec<&str> = list.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["down", "off", "up"]);

    let up = c
        .get_backend(GetBackendRequest { name: "up".into() })
        .await
        .expect("get up")
        .into_inner();
    assert_eq!(up.address, "127.0.0.2");
    assert_eq!(up.healthcheck, "tcp");
    assert!(up.enabled);
    assert_eq!((up.rise, up.fall), (2, 2));
    assert!(up.health >= 2 && up.health <= 3, "health {}", up.health);
    let last = up.last_result.clone().expect("a probe ran");
    assert_eq!(last.code(), ResultCode::L4ok);
    assert!(last.ok && last.at.is_some() && last.duration.is_some());
    let first = up.history.first().expect("one transition at least");
    assert_eq!(
        (first.from(), first.to()),
        (BackendState::Unknown, BackendState::Up)
    );
    assert_eq!(first.reason, "probe");
    assert!(first.at.is_some() && first.result.is_some());
    assert_eq!(up.frontends, ["web"]);
    assert!(up.state_since.is_some());
    let next = up.next_interval.expect("next interval");
    assert!(next.seconds == 0 && next.nanos > 0, "{next:?}");

    let down = list.iter().find(|b| b.name == "down").expect("down listed");
    assert_eq!(
        down.last_result.as_ref().map(|r| (r.code(), r.ok)),
        Some((ResultCode::L4con, false))
    );
    let off = list.iter().find(|b| b.name == "off").expect("off listed");
    assert_eq!(off.state(), BackendState::Disabled);
    assert!(!off.enabled);
    assert!(off.last_result.is_none());

    let frontends = c
        .list_frontends(ListFrontendsRequest {})
        .await
        .expect("list frontends")
        .into_inner()
        .frontends;
    assert_eq!(frontends.len(), 1);
    let web = c
        .get_frontend(GetFrontendRequest { name: "web".into() })
        .await
        .expect("get web")
        .into_inner();
    assert_eq!(web, frontends[0]);
    assert_eq!(web.description, "test VIP");
    assert_eq!(web.address, "192.0.2.1/32");
    assert_eq!((web.protocol.as_str(), web.port), ("tcp", 80));
    assert_eq!(web.state(), FrontendState::Up);
    assert_eq!(web.active_pool, "primary");
    let primary = &web.pools[0];
    assert!(primary.active && !web.pools[1].active);
    let pb = |name: &str| {
        primary
            .backends
            .iter()
            .find(|b| b.name == name)
            .cloned()
            .expect("member")
    };
    let (u, dn) = (pb("up"), pb("down"));
    assert_eq!((u.configured_weight, u.effective_weight), (80, 80));
    assert_eq!(u.address, "127.0.0.2");
    assert_eq!((dn.configured_weight, dn.effective_weight), (100, 0));
    assert!(dn.flush, "flush-on-down defaults to true");
    assert_eq!(web.pools[1].backends[0].state(), BackendState::Disabled);

    let hcs = c
        .list_health_checks(ListHealthChecksRequest {})
        .await
        .expect("list healthchecks")
        .into_inner()
        .healthchecks;
    assert_eq!(hcs.len(), 1);
    let hc = c
        .get_health_check(GetHealthCheckRequest { name: "tcp".into() })
        .await
        .expect("get tcp")
        .into_inner();
    assert_eq!(hc, hcs[0]);
    assert_eq!(
        (hc.r#type.as_str(), hc.port),
        ("tcp", u32::from(backend.port()))
    );
    assert_eq!(hc.interval.map(|d| d.nanos), Some(200_000_000));
    assert_eq!(hc.timeout.map(|d| d.nanos), Some(150_000_000));
    assert_eq!((hc.rise, hc.fall), (2, 2));
    assert_eq!(hc.backends, ["down", "off", "up"]);
    assert!(hc.http.is_none());

    let v = c
        .get_version(GetVersionRequest {})
        .await
        .expect("version")
        .into_inner();
    assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
    assert!(!v.commit.is_empty() && !v.build_date.is_empty());

    // Unknown names: NOT_FOUND naming the known ones; empty names: INVALID_ARGUMENT.
    let (k, m) = code(
        c.get_backend(GetBackendRequest {
            name: "nope".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    assert!(m.contains("\"nope\"") && m.contains("down, off, up"), "{m}");
    let (k, m) = code(
        c.get_frontend(GetFrontendRequest {
            name: "nope".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    assert!(m.contains("known: web"), "{m}");
    let (k, m) = code(
        c.get_health_check(GetHealthCheckRequest {
            name: "nope".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    assert!(m.contains("known: tcp"), "{m}");
    let (k, _) = code(
        c.get_backend(GetBackendRequest {
            name: String::new(),
        })
        .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    let (k, _) = code(
        c.get_frontend(GetFrontendRequest {
            name: String::new(),
        })
        .await,
    );
    assert_eq!(k, Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_return_the_new_state_and_refusals_have_codes() {
    let (_d, _backend, mut c) = start_settled(DaemonBuilder::new).await;
    let act = |name: &str| BackendActionRequest { name: name.into() };

    let b = c
        .pause_backend(act("up"))
        .await
        .expect("pause")
        .into_inner();
    assert_eq!(b.state(), BackendState::Paused);
    assert_eq!(b.history.last().map(|t| t.reason.as_str()), Some("pause"));
    let again = c
        .pause_backend(act("up"))
        .await
        .expect("pause is idempotent");
    assert_eq!(again.into_inner().state(), BackendState::Paused);
    let b = c
        .resume_backend(act("up"))
        .await
        .expect("resume")
        .into_inner();
    assert!(
        matches!(b.state(), BackendState::Unknown | BackendState::Up),
        "{:?}",
        b.state()
    );
    eventually("up is up again after resume", || {
        let mut c = c.clone();
        async move { (state_of(&mut c, "up").await? == BackendState::Up).then_some(()) }
    })
    .await;

    let b = c
        .disable_backend(act("down"))
        .await
        .expect("disable")
        .into_inner();
    assert_eq!(b.state(), BackendState::Disabled);
    assert!(!b.enabled);
    let (k, m) = code(c.pause_backend(act("down")).await);
    assert_eq!(k, Code::FailedPrecondition, "{m}");
    assert!(m.contains("disabled"), "{m}");
    let (k, _) = code(c.resume_backend(act("down")).await);
    assert_eq!(k, Code::FailedPrecondition);
    let b = c
        .enable_backend(act("down"))
        .await
        .expect("enable")
        .into_inner();
    // The reply is built under the same lock as the action: the worker's first probe after
    // the enable cannot have landed yet.
    assert_eq!(b.state(), BackendState::Unknown);
    assert!(b.enabled);

    let (k, m) = code(c.pause_backend(act("ghost")).await);
    assert_eq!(k, Code::NotFound);
    assert!(m.contains("down, off, up"), "{m}");
    for r in [
        c.pause_backend(act("")).await,
        c.resume_backend(act("")).await,
        c.enable_backend(act("")).await,
        c.disable_backend(act("")).await,
    ] {
        assert_eq!(code(r).0, Code::InvalidArgument);
    }

    // Weights: the frontend comes back with the override in force.
    let set = |pool: &str, backend: &str, weight: u32| SetFrontendPoolBackendWeightRequest {
        frontend: "web".into(),
        pool: pool.into(),
        backend: backend.into(),
        weight,
    };
    let f = c
        .set_frontend_pool_backend_weight(set("primary", "up", 30))
        .await
        .expect("set weight")
        .into_inner();
    let up = f.pools[0]
        .backends
        .iter()
        .find(|b| b.name == "up")
        .cloned()
        .expect("up in primary");
    assert_eq!((up.configured_weight, up.effective_weight), (30, 30));
    assert!(up.weight_overridden);
    let (k, m) = code(
        c.set_frontend_pool_backend_weight(set("primary", "up", 101))
            .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(m.contains("101"), "{m}");
    let (k, m) = code(
        c.set_frontend_pool_backend_weight(set("nopool", "up", 10))
            .await,
    );
    assert_eq!(k, Code::NotFound);
    assert!(m.contains("primary, backup"), "{m}");
    let (k, _) = code(
        c.set_frontend_pool_backend_weight(set("backup", "up", 10))
            .await,
    );
    assert_eq!(k, Code::NotFound, "up is not a member of backup");
    let mut bad = set("primary", "up", 10);
    bad.frontend = "nope".into();
    assert_eq!(
        code(c.set_frontend_pool_backend_weight(bad).await).0,
        Code::NotFound
    );
    assert_eq!(
        code(c.set_frontend_pool_backend_weight(set("", "up", 10)).await).0,
        Code::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_rpcs_are_unavailable_when_vpp_is_off() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let mut c = d.client().await;
    let disabled = "VPP is disabled (--vpp-api-addr is empty)";
    let (k, m) = code(c.get_vpp_info(GetVppInfoRequest {}).await);
    assert_eq!((k, m.as_str()), (Code::Unavailable, disabled));
    let (k, m) = code(c.get_vpplb_state(GetVpplbStateRequest {}).await);
    assert_eq!((k, m.as_str()), (Code::Unavailable, disabled));
    let (k, m) = code(
        c.sync_vpplb_state(SyncVpplbStateRequest {
            frontend: String::new(),
        })
        .await,
    );
    assert_eq!((k, m.as_str()), (Code::Unavailable, disabled));
    let (k, m) = code(c.get_vpplb_counters(GetVpplbCountersRequest {}).await);
    assert_eq!((k, m.as_str()), (Code::Unavailable, disabled));
    // An unknown frontend is named as such before VPP is even considered.
    let (k, m) = code(
        c.sync_vpplb_state(SyncVpplbStateRequest {
            frontend: "nope".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound, "{m}");
}

fn with_extra_backend(port: u16) -> String {
    basic_config(port).replace(
        "[frontends.web]",
        "[backends.extra]\naddress = \"127.0.0.5\"\nhealthcheck = \"tcp\"\n\n[frontends.web]",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_and_reload_through_the_rpc() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let mut c = d.client().await;
    let check = |path: &str| CheckConfigRequest { path: path.into() };

    let r = c.check_config(check("")).await.expect("check").into_inner();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.kind(), ConfigErrorKind::None);
    assert_eq!(r.path, d.config.display().to_string());
    assert_eq!(r.diff, Some(ConfigDiffSummary::default()), "no change");
    assert!(!r.applied);

    // Parse, semantic and I/O errors are told apart and located.
    let parse = daemon_support::in_dir(&d, "parse.toml");
    std::fs::write(&parse, "[backends.x\naddress = 1\n").expect("write");
    let r = c
        .check_config(check(&parse.display().to_string()))
        .await
        .expect("check")
        .into_inner();
    assert!(!r.ok);
    assert_eq!(r.kind(), ConfigErrorKind::Parse);
    let e = r.errors.first().expect("one located error");
    assert_eq!(e.file, parse.display().to_string());
    assert_eq!(e.line, 1);
    let semantic = daemon_support::in_dir(&d, "semantic.toml");
    std::fs::write(
        &semantic,
        basic_config(backend.port()).replace(
            "healthcheck = \"tcp\"\nenabled",
            "healthcheck = \"nope\"\nenabled",
        ),
    )
    .expect("write");
    let r = c
        .check_config(check(&semantic.display().to_string()))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(r.kind(), ConfigErrorKind::Semantic, "{r:?}");
    let e = r.errors.first().expect("one located error");
    assert!(e.key.contains("backends.off"), "{e:?}");
    assert!(
        e.line > 1 && e.column >= 1 && e.message.contains("nope"),
        "{e:?}"
    );
    let r = c
        .check_config(check("/nonexistent/maglev.toml"))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(r.kind(), ConfigErrorKind::Io);

    // A good change: check shows the diff and changes nothing; reload applies it.
    d.write_config(&with_extra_backend(backend.port()));
    let r = c.check_config(check("")).await.expect("check").into_inner();
    assert!(r.ok && !r.applied);
    assert_eq!(
        r.diff.map(|d| d.backends_added),
        Some(vec!["extra".to_string()])
    );
    let names = |c: &mut MaglevClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.list_backends(ListBackendsRequest {})
                .await
                .expect("list")
                .into_inner()
                .backends
                .into_iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
        }
    };
    assert!(!names(&mut c).await.contains(&"extra".to_string()));
    let r = c
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(r.ok && r.applied, "{r:?}");
    assert_eq!(
        r.diff.map(|d| d.backends_added),
        Some(vec!["extra".to_string()])
    );
    assert!(names(&mut c).await.contains(&"extra".to_string()));

    // A bad file changes nothing.
    d.write_config("this is = not [valid toml\n");
    let r = c
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(!r.ok && !r.applied, "{r:?}");
    assert_eq!(r.kind(), ConfigErrorKind::Parse);
    assert!(!r.errors.is_empty());
    assert!(
        names(&mut c).await.contains(&"extra".to_string()),
        "old config still runs"
    );
    assert!(d.log().contains("reload refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", d.grpc_addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "maglev.v1.Maglev"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await;
    assert_eq!(unknown.err().map(|s| s.code()), Some(Code::NotFound));

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let first = answers
        .message()
        .await
        .expect("answer")
        .expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("list services expected: {first:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"maglev.v1.Maglev".to_string()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

/// A backend that stays up changes no health, so no snapshot is published for its probes;
/// its last probe's time still moves on, read live through the API (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_backends_last_probe_keeps_moving() {
    let (_d, _backend, c) = start_settled(DaemonBuilder::new).await;
    let last_probe = |c: &MaglevClient<Channel>| {
        let mut c = c.clone();
        async move {
            let b = c
                .get_backend(GetBackendRequest { name: "up".into() })
                .await
                .ok()?
                .into_inner();
            let at = b.last_result.as_ref()?.at.as_ref()?;
            Some((b.state(), b.history.len(), (at.seconds, at.nanos)))
        }
    };
    let (state, transitions, first) = last_probe(&c).await.expect("up was probed");
    assert_eq!(state, BackendState::Up);
    let later = eventually("a later probe of up", || {
        let c = c.clone();
        async move {
            let now = last_probe(&c).await?;
            (now.2 > first).then_some(now)
        }
    })
    .await;
    assert_eq!(later.0, BackendState::Up);
    assert_eq!(later.1, transitions, "no transition in between");
}
