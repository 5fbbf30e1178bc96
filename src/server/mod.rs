//! The gRPC service `maglev.v1.Maglev` (tonic).

use std::sync::Arc;

use crate::daemon::Daemon;

/// Handle to the running gRPC server.
pub struct ServerHandle {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// Ends streams and stops accepting.
    pub async fn shutdown(self) {
        if let Some(t) = self.task {
            t.abort();
        }
    }
}

/// Starts the gRPC listener on `--grpc-addr`.
pub async fn serve(daemon: Arc<Daemon>) -> anyhow::Result<ServerHandle> {
    tracing::warn!(grpc_addr = %daemon.args.grpc_addr, "gRPC API is not active yet in this build");
    Ok(ServerHandle { task: None })
}
