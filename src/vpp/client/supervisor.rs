//! Keeps a [`Client`] connected: connect, read version and pid, publish
//! [`ConnState::Connected`] with a fresh epoch, wait for the connection to die, publish
//! [`ConnState::Disconnected`], retry with backoff. The reconciler watches the state and
//! runs a full sync on every new epoch (VPP may have restarted empty; `vpe_pid` tells).

use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::api::VersionInfo;
use super::conn::{Client, ClientConfig};
use super::error::VppError;
use super::table::LbApiGeneration;

/// Settings of the supervisor.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client: ClientConfig,
    /// First retry delay after a failure (doubles up to `max_retry_interval`).
    pub retry_interval: Duration,
    pub max_retry_interval: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            retry_interval: Duration::from_secs(5),
            max_retry_interval: Duration::from_secs(60),
        }
    }
}

/// Connection state published by [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Disconnected,
    Connected {
        generation: LbApiGeneration,
        /// `control_ping_reply.vpe_pid`: a change means VPP restarted.
        vpe_pid: u32,
        /// `show_version_reply.version`.
        version: String,
        /// `show_version_reply.build_date` (read once, in the handshake).
        build_date: String,
        connected_since: SystemTime,
        /// Increments on every successful (re)connect, starting at 1.
        epoch: u64,
    },
}

impl ConnState {
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnState::Connected { .. })
    }

    pub fn epoch(&self) -> Option<u64> {
        match self {
            ConnState::Connected { epoch, .. } => Some(*epoch),
            ConnState::Disconnected => None,
        }
    }
}

/// A supervised connection to VPP. Dropping it stops the supervisor and the connection.
pub struct Connection {
    state: watch::Receiver<ConnState>,
    client: watch::Receiver<Option<Client>>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Starts the supervisor task (needs a tokio runtime).
    pub fn spawn(config: ConnectionConfig) -> Connection {
        let (state_tx, state) = watch::channel(ConnState::Disconnected);
        let (client_tx, client) = watch::channel(None);
        let task = tokio::spawn(supervise(config, state_tx, client_tx));
        Connection {
            state,
            client,
            task,
        }
    }

    /// Subscribe to state changes.
    pub fn state(&self) -> watch::Receiver<ConnState> {
        self.state.clone()
    }

    pub fn current(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// The live client, if connected.
    pub fn client(&self) -> Option<Client> {
        self.client.borrow().clone().filter(|c| !c.is_closed())
    }

    /// Stops supervising and drops the connection at once (VPP frees the registration
    /// on EOF). For owners that share the `Connection` and cannot consume it.
    pub fn stop(&self) {
        self.task.abort();
        if let Some(client) = self.client.borrow().as_ref() {
            client.close("stopped".to_string());
        }
    }

    /// Stops supervising and unregisters from VPP.
    pub async fn shutdown(self) {
        self.task.abort();
        let client = self.client.borrow().clone();
        if let Some(client) = client {
            client.disconnect().await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(client) = self.client.borrow().as_ref() {
            client.close("connection supervisor dropped".to_string());
        }
    }
}

async fn establish(config: &ClientConfig) -> Result<(Client, VersionInfo, u32), VppError> {
    let client = Client::connect(config.clone()).await?;
    let setup = async {
        let version = client.show_version().await?;
        let pid = client.control_ping().await?;
        Ok::<_, VppError>((version, pid))
    };
    match setup.await {
        Ok((version, pid)) => Ok((client, version, pid)),
        Err(e) => {
            client.close(format!("setup failed: {e}"));
            Err(e)
        }
    }
}

async fn supervise(
    config: ConnectionConfig,
    state_tx: watch::Sender<ConnState>,
    client_tx: watch::Sender<Option<Client>>,
) {
    let mut epoch = 0u64;
    let mut delay = config.retry_interval;
    let mut last_pid = None;
    loop {
        match establish(&config.client).await {
            Ok((
                client,
                VersionInfo {
                    version,
                    build_date,
                    ..
                },
                vpe_pid,
            )) => {
                epoch += 1;
                delay = config.retry_interval;
                let generation = client.generation();
                if last_pid.is_some_and(|p| p != vpe_pid) {
                    info!(vpe_pid, "VPP restarted since the last connection");
                }
                last_pid = Some(vpe_pid);
                match generation {
                    LbApiGeneration::Weighted => {}
                    LbApiGeneration::Legacy => warn!(
                        %version,
                        "lb API 1.1.0: no AS weights (weight 0 means removing the AS), gre4 only"
                    ),
                    LbApiGeneration::Absent => warn!(%version, "VPP has no usable lb plugin API"),
                }
                info!(%version, vpe_pid, epoch, ?generation, "connected to VPP");
                client_tx.send_replace(Some(client.clone()));
                state_tx.send_replace(ConnState::Connected {
                    generation,
                    vpe_pid,
                    version,
                    build_date,
                    connected_since: SystemTime::now(),
                    epoch,
                });
                let reason = client.closed().await;
                client_tx.send_replace(None);
                state_tx.send_replace(ConnState::Disconnected);
                warn!(%reason, retry_in = ?delay, "lost the VPP connection");
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "cannot connect to VPP");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(config.max_retry_interval);
                continue;
            }
        }
        tokio::time::sleep(delay).await;
    }
}
