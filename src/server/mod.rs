//! The gRPC server: `maglev.v1.Maglev`, `grpc.health.v1` and server reflection (v1, and
//! v1alpha for grpcio-reflection, grpcui, Postman and older grpcurl), on
//! TCP (plaintext on loopback only, unless told otherwise; TLS or mutual TLS anywhere) or
//! a Unix socket.
//!
//! - `listen`: address parsing and the listening policy (pure), TLS files, socket file.
//! - `service`: the RPCs.
//! - `convert`: domain -> proto mapping (pure).
//! - `watch`: WatchEvents filter and per-watcher forwarder.
//! - `vpp`: the VPP RPCs (lb state, sync, counters) over the VPP service.

pub mod convert;
pub mod listen;
pub mod service;
pub mod vpp;
pub mod watch;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch as signal;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::checker::Checker;
use crate::cli::DaemonArgs;
use crate::config::{Config, ConfigDiff, ConfigError};
use crate::events::EventBus;
use crate::proto::maglev_server::MaglevServer;
use crate::vpp::{VppService, VppStatus};
use listen::ListenAddr;
use service::MaglevService;

/// The running config as the server sees it: read, checked, reloaded (the daemon's one
/// reload path, shared with SIGHUP).
pub trait ConfigControl: Send + Sync + 'static {
    fn config(&self) -> Arc<Config>;
    fn config_path(&self) -> &Path;
    /// Validates a file (default: the running one's) and diffs it; changes nothing.
    fn check_config(&self, path: Option<&Path>) -> Result<(Config, ConfigDiff), ConfigError>;
    fn reload(&self) -> Pin<Box<dyn Future<Output = Result<ConfigDiff, ConfigError>> + Send + '_>>;
}

/// What the gRPC server needs from the daemon (it never sees the daemon itself).
pub struct Handles {
    /// The daemon's flags: the listener (`--grpc-*`) and the VPP addresses errors quote.
    pub args: DaemonArgs,
    pub checker: Checker,
    pub bus: EventBus,
    pub vpp_status: Arc<VppStatus>,
    /// The VPP side, started before the server.
    pub vpp: Arc<VppService>,
    pub control: Arc<dyn ConfigControl>,
}

/// How long open connections get to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// The reflection service over the proto's descriptor set (with its google/protobuf
/// imports), so that `grpcurl` works without the .proto file.
pub fn reflection_service() -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")
}

/// The same reflection service in its older `grpc.reflection.v1alpha` form, which Python's
/// grpcio-reflection, grpcui, Postman and older grpcurl speak (and nothing else).
pub fn reflection_v1alpha_service() -> anyhow::Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("cannot build the gRPC reflection service (v1alpha)")
}

/// Handle to the running gRPC server.
pub struct ServerHandle {
    /// What it listens on (the real port when `:0` was asked for).
    pub addr: ListenAddr,
    shutdown: signal::Sender<bool>,
    health: HealthReporter,
    task: tokio::task::JoinHandle<()>,
    socket_file: Option<PathBuf>,
}

type GrpcServiceName = MaglevServer<MaglevService>;

impl ServerHandle {
    /// Ends every WatchEvents stream, stops accepting, gives open calls a short grace
    /// period, then drops whatever is left.
    pub async fn shutdown(mut self) {
        self.health.set_not_serving::<GrpcServiceName>().await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::debug!("gRPC connections still open after the grace period: dropped");
            self.task.abort();
        }
        if let Some(path) = &self.socket_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts the gRPC listener on `--grpc-addr`, or says why it may not.
pub async fn serve(handles: Arc<Handles>) -> anyhow::Result<ServerHandle> {
    let (addr, tls) = listen::plan(&handles.args)?;
    let (shutdown_tx, shutdown_rx) = signal::channel(false);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GrpcServiceName>().await;
    let maglev = MaglevServer::new(MaglevService::new(handles.clone(), shutdown_rx.clone()));

    let mut builder = Server::builder();
    if let Some(files) = &tls {
        builder = builder
            .tls_config(listen::tls_config(files)?)
            .context("invalid gRPC TLS certificate or key")?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection_service()?)
        .add_service(reflection_v1alpha_service()?)
        .add_service(maglev);

    let mut stop = shutdown_rx;
    let stopped = async move {
        let _ = stop.wait_for(|down| *down).await;
    };
    let (bound, task, socket_file) = match &addr {
        ListenAddr::Tcp(a) => {
            let listener = TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on --grpc-addr {a}"))?;
            let local = listener.local_addr()?;
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let task = tokio::spawn(async move {
                if let Err(e) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            });
            (ListenAddr::Tcp(local), task, None)
        }
        ListenAddr::Unix(path) => {
            listen::remove_stale_socket(path)?;
            let listener = UnixListener::bind(path)
                .with_context(|| format!("cannot listen on --grpc-addr unix:{}", path.display()))?;
            listen::restrict_socket(path)?;
            let incoming = UnixListenerStream::new(listener);
            let task = tokio::spawn(async move {
                if let Err(e) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            });
            (addr.clone(), task, Some(path.clone()))
        }
    };
    let security = match &tls {
        Some(files) if files.client_ca.is_some() => "mutual TLS",
        Some(_) => "TLS",
        None => "plaintext",
    };
    tracing::info!(addr = %bound, security, "gRPC listening on {bound} ({security})");
    Ok(ServerHandle {
        addr: bound,
        shutdown: shutdown_tx,
        health,
        task,
        socket_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    /// Serves reflection alone on a loopback port and asks it what a client would.
    #[tokio::test]
    async fn reflection_lists_the_service_and_resolves_imports() {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = listener.local_addr().ok();
        let service = match reflection_service() {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        };
        let server = tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let url = format!("http://{}", addr.map(|a| a.to_string()).unwrap_or_default());
        let channel = match tonic::transport::Endpoint::from_shared(url) {
            Ok(e) => e.connect().await,
            Err(e) => panic!("endpoint: {e}"),
        };
        let mut client = match channel {
            Ok(c) => ServerReflectionClient::new(c),
            Err(e) => panic!("connect: {e}"),
        };
        let ask = |m: MessageRequest| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        };
        let requests = vec![
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "maglev.v1.Maglev".into(),
            )),
            ask(MessageRequest::FileByFilename(
                "google/protobuf/timestamp.proto".into(),
            )),
        ];
        let mut answers = match client
            .server_reflection_info(tokio_stream::iter(requests))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) => panic!("reflection call: {e}"),
        };
        let mut got = Vec::new();
        while let Ok(Some(r)) = answers.message().await {
            got.push(r.message_response);
            if got.len() == 3 {
                break;
            }
        }
        let Some(Some(MessageResponse::ListServicesResponse(list))) = got.first() else {
            panic!("list services: {got:?}")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"maglev.v1.Maglev"), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
        let Some(Some(MessageResponse::FileDescriptorResponse(file))) = got.get(1) else {
            panic!("file containing symbol: {got:?}")
        };
        assert!(!file.file_descriptor_proto.is_empty());
        let Some(Some(MessageResponse::FileDescriptorResponse(ts))) = got.get(2) else {
            panic!("the google/protobuf import must resolve: {got:?}")
        };
        assert!(!ts.file_descriptor_proto.is_empty());
        server.abort();
    }
}
