//! Hostile gRPC input (issue 10): a table of malformed requests against the real daemon,
//! each checked for its status code AND for changing nothing (backends and frontends
//! compared before and after). Non-UTF-8 strings and garbage bodies are sent as raw
//! bytes through a pass-through codec, since prost would never encode them.

#[path = "support/daemon.rs"]
mod daemon_support;

use bytes::{Buf, BufMut};
use daemon_support::{Daemon, DaemonBuilder, UpBackend, eventually, start_settled};
use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::*;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

// ---------------------------------------------------------------- raw codec

/// Sends the given bytes as the message; returns the reply's bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// A unary call of `method` with a hand-built body: the status code.
async fn raw_unary(channel: &Channel, method: &'static str, body: Vec<u8>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(e) = grpc.ready().await {
        panic!("channel not ready: {e}");
    }
    let path = PathAndQuery::from_static(method);
    match grpc.unary(tonic::Request::new(body), path, RawCodec).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// A server-streaming call with a hand-built body: the status of the call itself.
async fn raw_stream(channel: &Channel, method: &'static str, body: Vec<u8>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(e) = grpc.ready().await {
        panic!("channel not ready: {e}");
    }
    let path = PathAndQuery::from_static(method);
    match grpc
        .server_streaming(tonic::Request::new(body), path, RawCodec)
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Protobuf field `field` as a length-delimited value (string/bytes).
fn ld(field: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    let mut n = value.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(value);
    out
}

/// Protobuf field `field` as a varint.
fn varint(field: u8, mut v: u64) -> Vec<u8> {
    let mut out = vec![field << 3];
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out
}

// ---------------------------------------------------------------- state snapshot

/// What a malformed request must not change: backends without their per-probe fields
/// (last result, next interval), and the frontends.
async fn snapshot(c: &mut MaglevClient<Channel>) -> (Vec<Backend>, Vec<Frontend>) {
    let mut backends = c
        .list_backends(ListBackendsRequest {})
        .await
        .expect("list backends")
        .into_inner()
        .backends;
    for b in &mut backends {
        b.last_result = None;
        b.next_interval = None;
    }
    let frontends = c
        .list_frontends(ListFrontendsRequest {})
        .await
        .expect("list frontends")
        .into_inner()
        .frontends;
    (backends, frontends)
}

async fn settled() -> (Daemon, UpBackend, MaglevClient<Channel>) {
    let (d, backend, c) =
        start_settled(|config| DaemonBuilder::new(config).log_level("info")).await;
    eventually("health counters at their ends", || {
        let mut c = c.clone();
        async move {
            let list = c
                .list_backends(ListBackendsRequest {})
                .await
                .ok()?
                .into_inner()
                .backends;
            let get = |n: &str| list.iter().find(|b| b.name == n).cloned();
            let (up, down) = (get("up")?, get("down")?);
            // At the ends of the counter: later probes change nothing visible.
            let steady = up.state() == BackendState::Up
                && up.health == up.rise + up.fall - 1
                && down.state() == BackendState::Down
                && down.health == 0;
            steady.then_some(())
        }
    })
    .await;
    (d, backend, c)
}

// ---------------------------------------------------------------- the table

type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Code> + Send>>;

fn status<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_right_status_and_change_nothing() {
    let (d, _backend, mut c) = settled().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", d.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let huge = "x".repeat(1024 * 1024);
    let huge_path = format!("/{}", "p".repeat(1024 * 1024));
    let weight = |f: &str, p: &str, b: &str, w: u32| SetFrontendPoolBackendWeightRequest {
        frontend: f.into(),
        pool: p.into(),
        backend: b.into(),
        weight: w,
    };
    let bad_utf8 = [0xff, 0xfe, 0x80];

    let mut table: Vec<(&str, Code, Call)> = Vec::new();
    macro_rules! case {
        ($name:expr, $code:expr, |$c:ident| $body:expr) => {{
            let mut $c = c.clone();
            table.push(($name, $code, Box::pin(async move { status($body.await) })));
        }};
    }
    let name = |n: &str| GetBackendRequest { name: n.into() };
    let action = |n: &str| BackendActionRequest { name: n.into() };
    case!("GetBackend empty", Code::InvalidArgument, |c| c
        .get_backend(name("")));
    let h = huge.clone();
    case!("GetBackend 1 MiB name", Code::NotFound, |c| c
        .get_backend(name(&h)));
    case!("GetBackend unknown", Code::NotFound, |c| c
        .get_backend(name("nope")));
    case!("GetBackend NUL and newline", Code::NotFound, |c| c
        .get_backend(name("up\0\n")));
    case!("GetFrontend empty", Code::InvalidArgument, |c| c
        .get_frontend(GetFrontendRequest {
            name: String::new()
        }));
    let h = huge.clone();
    case!("GetFrontend 1 MiB name", Code::NotFound, |c| c
        .get_frontend(GetFrontendRequest { name: h.clone() }));
    case!("GetFrontend unknown", Code::NotFound, |c| c.get_frontend(
        GetFrontendRequest {
            name: "nope".into()
        }
    ));
    case!("GetHealthCheck empty", Code::InvalidArgument, |c| c
        .get_health_check(GetHealthCheckRequest {
            name: String::new()
        }));
    case!("GetHealthCheck unknown", Code::NotFound, |c| c
        .get_health_check(GetHealthCheckRequest {
            name: "nope".into()
        }));
    case!("PauseBackend empty", Code::InvalidArgument, |c| c
        .pause_backend(action("")));
    case!("PauseBackend unknown", Code::NotFound, |c| c
        .pause_backend(action("nope")));
    let h = huge.clone();
    case!("PauseBackend 1 MiB name", Code::NotFound, |c| c
        .pause_backend(action(&h)));
    case!("ResumeBackend unknown", Code::NotFound, |c| c
        .resume_backend(action("nope")));
    case!("EnableBackend unknown", Code::NotFound, |c| c
        .enable_backend(action("nope")));
    case!("DisableBackend empty", Code::InvalidArgument, |c| c
        .disable_backend(action("")));
    case!("DisableBackend prefix of a name", Code::NotFound, |c| c
        .disable_backend(action("u")));
    case!("SetWeight 101", Code::InvalidArgument, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web", "primary", "up", 101
        )));
    case!("SetWeight u32::MAX", Code::InvalidArgument, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web",
            "primary",
            "up",
            u32::MAX
        )));
    case!("SetWeight unknown frontend", Code::NotFound, |c| c
        .set_frontend_pool_backend_weight(weight(
            "nope", "primary", "up", 10
        )));
    case!("SetWeight unknown pool", Code::NotFound, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web", "nope", "up", 10
        )));
    case!("SetWeight unknown backend", Code::NotFound, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web", "primary", "nope", 10
        )));
    case!("SetWeight backend of another pool", Code::NotFound, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web", "primary", "off", 10
        )));
    case!("SetWeight empty frontend", Code::InvalidArgument, |c| c
        .set_frontend_pool_backend_weight(weight(
            "", "primary", "up", 10
        )));
    case!("SetWeight empty pool", Code::InvalidArgument, |c| c
        .set_frontend_pool_backend_weight(weight("web", "", "up", 10)));
    case!("SetWeight empty backend", Code::InvalidArgument, |c| c
        .set_frontend_pool_backend_weight(weight(
            "web", "primary", "", 10
        )));
    let h = huge.clone();
    case!("SetWeight 1 MiB pool", Code::NotFound, |c| c
        .set_frontend_pool_backend_weight(weight("web", &h, "up", 10)));
    let h = huge.clone();
    case!("SyncVpplbState 1 MiB frontend", Code::NotFound, |c| c
        .sync_vpplb_state(SyncVpplbStateRequest {
            frontend: h.clone()
        }));
    case!("SyncVpplbState unknown frontend", Code::NotFound, |c| c
        .sync_vpplb_state(SyncVpplbStateRequest {
            frontend: "nope".into()
        }));

    // Raw bodies prost would never produce.
    let ch = channel.clone();
    table.push((
        "GetBackend non-UTF-8 name",
        Code::Internal,
        Box::pin(
            async move { raw_unary(&ch, "/maglev.v1.Maglev/GetBackend", ld(1, &bad_utf8)).await },
        ),
    ));
    let ch = channel.clone();
    table.push((
        "PauseBackend non-UTF-8 name",
        Code::Internal,
        Box::pin(async move {
            raw_unary(&ch, "/maglev.v1.Maglev/PauseBackend", ld(1, &bad_utf8)).await
        }),
    ));
    let ch = channel.clone();
    let mut body = ld(1, b"web");
    body.extend(ld(2, &bad_utf8));
    body.extend(ld(3, b"up"));
    body.extend(varint(4, 10));
    table.push((
        "SetWeight non-UTF-8 pool",
        Code::Internal,
        Box::pin(async move {
            raw_unary(&ch, "/maglev.v1.Maglev/SetFrontendPoolBackendWeight", body).await
        }),
    ));
    let ch = channel.clone();
    table.push((
        "DisableBackend garbage body",
        Code::Internal,
        Box::pin(async move {
            raw_unary(&ch, "/maglev.v1.Maglev/DisableBackend", vec![0xff; 64]).await
        }),
    ));
    let ch = channel.clone();
    table.push((
        "DisableBackend truncated length",
        Code::Internal,
        Box::pin(async move {
            // Field 1 announces 100 bytes, 2 follow.
            raw_unary(
                &ch,
                "/maglev.v1.Maglev/DisableBackend",
                vec![0x0a, 100, b'u', b'p'],
            )
            .await
        }),
    ));
    let ch = channel.clone();
    table.push((
        "unknown method",
        Code::Unimplemented,
        Box::pin(
            async move { raw_unary(&ch, "/maglev.v1.Maglev/DropAllBackends", Vec::new()).await },
        ),
    ));
    let ch = channel.clone();
    let mut body = varint(1, 1);
    body.extend(varint(2, 99));
    table.push((
        // Documented: an unknown level reads as the default (info).
        "WatchEvents log level 99",
        Code::Ok,
        Box::pin(async move { raw_stream(&ch, "/maglev.v1.Maglev/WatchEvents", body).await }),
    ));
    let ch = channel.clone();
    table.push((
        "WatchEvents non-UTF-8 backend filter",
        Code::Internal,
        Box::pin(async move {
            raw_stream(&ch, "/maglev.v1.Maglev/WatchEvents", ld(5, &bad_utf8)).await
        }),
    ));

    // CheckConfig reads any path it is given: it must answer (not ok) without reading
    // a device forever or blocking on a FIFO.
    let fifo = d.dir.path().join("fifo");
    let fifo_c = std::ffi::CString::new(fifo.display().to_string()).expect("path");
    // SAFETY: mkfifo(3) with a valid NUL-terminated path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) }, 0, "mkfifo");
    for (label, path) in [
        ("CheckConfig /dev/zero", "/dev/zero".to_string()),
        ("CheckConfig a FIFO", fifo.display().to_string()),
        ("CheckConfig a directory", "/".to_string()),
        (
            "CheckConfig missing file",
            "/nonexistent/maglev.toml".to_string(),
        ),
        ("CheckConfig 1 MiB path", huge_path.clone()),
    ] {
        let mut c = c.clone();
        table.push((
            label,
            Code::Ok,
            Box::pin(async move {
                let r = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    c.check_config(CheckConfigRequest { path }),
                )
                .await;
                match r {
                    Ok(Ok(res)) if !res.get_ref().ok => Code::Ok,
                    Ok(Ok(_)) => Code::Unknown,
                    Ok(Err(s)) => s.code(),
                    Err(_) => Code::DeadlineExceeded,
                }
            }),
        ));
    }

    // A file outside the config's directory is refused before it is read: the errors
    // would quote it (here: /etc/passwd, which parses as TOML garbage).
    {
        let mut c = c.clone();
        table.push((
            "CheckConfig outside the config dir",
            Code::Ok,
            Box::pin(async move {
                let req = CheckConfigRequest {
                    path: "/etc/passwd".to_string(),
                };
                match c.check_config(req).await {
                    Ok(res) => {
                        let res = res.into_inner();
                        let text = format!("{:?}", res.errors);
                        if !res.ok && text.contains("only files in") && !text.contains("root:") {
                            Code::Ok
                        } else {
                            Code::Unknown
                        }
                    }
                    Err(s) => s.code(),
                }
            }),
        ));
    }

    assert!(table.len() >= 25, "only {} cases", table.len());
    let rss0 = d.status_field("VmRSS");
    let mut failures = Vec::new();
    let count = table.len();
    for (label, want, call) in table {
        let before = snapshot(&mut c).await;
        let got = call.await;
        println!("{label}: {got:?}");
        let after = snapshot(&mut c).await;
        if got != want {
            failures.push(format!("{label}: got {got:?}, want {want:?}"));
        }
        if before != after {
            failures.push(format!("{label}: changed the daemon's state"));
        }
    }
    let rss1 = d.status_field("VmRSS");
    println!("{count} malformed requests; daemon VmRSS {rss0} -> {rss1} KiB");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Still serving.
    assert!(c.get_version(GetVersionRequest {}).await.is_ok());
}
