//! The VPP side of the daemon as one unit: the supervised API connection, the reconciler
//! (the only writer), the status the rest of the daemon reads, and the calls the gRPC
//! server makes (`lb_state`, `sync`, `counters`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::info;

use super::client::{
    ClientConfig, ConnState, Connection, ConnectionConfig, LbApiGeneration, VppError,
};
use super::counters::{CountersSnapshot, VppCounters};
use super::counters_poller::{
    self, CountersPoller, CountersUnavailable, LbCountersView, Published,
};
use super::lb::{LbConfValues, VipKey, desired_now};
use super::lb_io::{self, ReadStateError};
use super::reconciler::{Inputs, Reconciler, SyncError, SyncRequest};
use super::status::VppStatus;
use super::wire::EncapType;
use crate::checker::Checker;
use crate::config::Config;

/// One AS of [`LbStateView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbAsView {
    pub address: IpAddr,
    /// 0..=100. On lb API 1.1.0 (no weights): 100 for a live AS, 0 for a deleted one.
    pub weight: u8,
    /// Bit 0: in use (0 = deleted, awaiting VPP's garbage collection).
    pub flags: u32,
    /// The AS's share of the new-flow table (0 when VPP does not say).
    pub num_buckets: u32,
    /// The backend with this address in the VIP's frontend, when known.
    pub backend: Option<String>,
}

/// One VIP of [`LbStateView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbVipView {
    /// Prefix, protocol (255 = any) and port (0 = all); see `lb::protocol_name`.
    pub key: VipKey,
    /// See `lb::encap_name`.
    pub encap: EncapType,
    /// `None` when `show lb vips verbose` could not be read.
    pub src_ip_sticky: Option<bool>,
    pub flow_table_length: Option<u32>,
    /// VPP's pool index (keys the stats counters).
    pub pool_index: Option<u32>,
    /// The frontend this VIP belongs to; `None` for a VIP maglev does not manage.
    pub frontend: Option<String>,
    /// In address order (IPv4 first, numeric).
    pub ases: Vec<LbAsView>,
}

/// What `GetVPPLBState` shows: VPP's lb state, mapped to maglev's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbStateView {
    /// `None` on lb API 1.1.0 (no `lb_conf_get`).
    pub conf: Option<LbConfValues>,
    /// lb API 1.1.0 (no weights).
    pub legacy: bool,
    /// In key order (IPv4 first).
    pub vips: Vec<LbVipView>,
}

/// Handle to the running VPP side.
pub struct VppService {
    checker: Checker,
    dry_run: bool,
    conn: Option<Arc<Connection>>,
    requests: Option<mpsc::Sender<SyncRequest>>,
    counters: Arc<VppCounters>,
    /// Per-VIP counters; `None` when the stats are off (VPP or `--vpp-stats-addr`).
    lb_counters: Option<watch::Receiver<Published>>,
    /// True once shutting down (the reconciler finishes the VIPs in flight and stops).
    stop: watch::Sender<bool>,
    /// Awaited at shutdown (up to a deadline), not aborted: see `shutdown`.
    reconciler: std::sync::Mutex<Option<JoinHandle<()>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the VPP side needs from the daemon: its flags, the checker it reads health from,
/// the status it reports into and the running config.
pub struct Handles {
    pub vpp_api_addr: String,
    pub vpp_stats_addr: String,
    pub stats_interval: std::time::Duration,
    pub dry_run: bool,
    pub checker: Checker,
    pub status: Arc<VppStatus>,
    /// Sees every config that becomes the running one (the reconciler syncs on change).
    pub config: watch::Receiver<Arc<Config>>,
    /// When the daemon started (the warmup counts from it).
    pub started_at: SystemTime,
}

/// Starts the VPP side (or says clearly that it is off). Must run inside the tokio runtime.
pub fn start(handles: Handles) -> anyhow::Result<Arc<VppService>> {
    let args = &handles;
    let counters = Arc::new(VppCounters::default());
    let (stop, stop_rx) = watch::channel(false);
    let service = if args.vpp_api_addr.is_empty() {
        info!("VPP disabled (--vpp-api-addr is empty): health checking only");
        VppService {
            checker: handles.checker.clone(),
            dry_run: args.dry_run,
            conn: None,
            requests: None,
            counters,
            lb_counters: None,
            stop,
            reconciler: std::sync::Mutex::new(None),
            tasks: Vec::new(),
        }
    } else {
        let conn = Arc::new(Connection::spawn(ConnectionConfig {
            client: ClientConfig {
                socket_path: PathBuf::from(&args.vpp_api_addr),
                client_name: "maglev".to_string(),
                ..ClientConfig::default()
            },
            ..ConnectionConfig::default()
        }));
        info!(
            vpp_api_addr = %args.vpp_api_addr,
            dry_run = args.dry_run,
            "VPP programming active{}",
            if args.dry_run { " in dry-run mode: nothing will be written" } else { "" }
        );
        let (tx, rx) = mpsc::channel(16);
        let elapsed = SystemTime::now()
            .duration_since(handles.started_at)
            .unwrap_or_default();
        let now = tokio::time::Instant::now();
        let started = now.checked_sub(elapsed).unwrap_or(now);
        let reconciler = tokio::spawn(Reconciler::run(Inputs {
            checker: handles.checker.clone(),
            status: handles.status.clone(),
            conn: conn.clone(),
            counters: counters.clone(),
            config: handles.config.clone(),
            dirty: handles.checker.dirty(),
            requests: rx,
            dry_run: args.dry_run,
            started,
            stop: stop_rx,
        }));
        let status = tokio::spawn(track_status(handles.status.clone(), conn.clone()));
        let mut tasks = vec![status];
        let lb_counters = if args.vpp_stats_addr.is_empty() {
            info!("VPP stats off (--vpp-stats-addr is empty): no per-VIP counters");
            None
        } else {
            let interval = args.stats_interval;
            info!(vpp_stats_addr = %args.vpp_stats_addr, ?interval, "VPP per-VIP counters on");
            let (publish, rx) = watch::channel(Published::Pending);
            tasks.push(tokio::spawn(CountersPoller::run(counters_poller::Inputs {
                conn: conn.clone(),
                checker: handles.checker.clone(),
                counters: counters.clone(),
                stats_path: PathBuf::from(&args.vpp_stats_addr),
                interval,
                publish,
            })));
            Some(rx)
        };
        VppService {
            checker: handles.checker.clone(),
            dry_run: args.dry_run,
            conn: Some(conn),
            requests: Some(tx),
            counters,
            lb_counters,
            stop,
            reconciler: std::sync::Mutex::new(Some(reconciler)),
            tasks,
        }
    };
    Ok(Arc::new(service))
}

impl VppService {
    /// Stops talking to VPP. VPP itself is left exactly as it is.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        if let Some(t) = self.take_reconciler() {
            t.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        if let Some(conn) = &self.conn {
            conn.stop();
        }
    }

    fn take_reconciler(&self) -> Option<JoinHandle<()>> {
        self.reconciler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Shutdown: no new sync, no further VIP; the VIPs being written finish (a re-create
    /// is never left between its delete and its add) within `deadline`, after which the
    /// sync is cut (and logged). Then everything stops; VPP keeps what it has.
    pub async fn shutdown(&self, deadline: std::time::Duration) {
        self.stop.send_replace(true);
        if let Some(mut t) = self.take_reconciler() {
            match tokio::time::timeout(deadline, &mut t).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::error!(
                        ?deadline,
                        "shutdown: the VPP sync in flight did not finish in time: cut"
                    );
                    t.abort();
                }
            }
        }
        self.stop();
    }

    pub fn enabled(&self) -> bool {
        self.conn.is_some()
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Counters for `maglev_vpp_api_total` and `maglev_vpp_lbsync_total`.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    /// Whether per-VIP counters are read (VPP and `--vpp-stats-addr` both on).
    pub fn stats_enabled(&self) -> bool {
        self.lb_counters.is_some()
    }

    /// The last published per-VIP counters (and the pass before them, for rates).
    pub fn lb_counters(&self) -> Result<Arc<LbCountersView>, CountersUnavailable> {
        if !self.enabled() {
            return Err(CountersUnavailable::VppDisabled);
        }
        let rx = self
            .lb_counters
            .as_ref()
            .ok_or(CountersUnavailable::StatsDisabled)?;
        rx.borrow().view()
    }

    /// Runs a sync now through the reconciler: `None` = full sync, `Some(frontend)` = that
    /// frontend's VIP. Returns the writes made (or, with `--dry-run`, that would be made),
    /// as text. Refused before `startup-min-delay`.
    pub async fn sync(&self, frontend: Option<String>) -> Result<Vec<String>, SyncError> {
        let requests = self.requests.as_ref().ok_or(SyncError::Disabled)?;
        let (reply, rx) = oneshot::channel();
        requests
            .send(SyncRequest { frontend, reply })
            .await
            .map_err(|_| SyncError::Stopped)?;
        rx.await.map_err(|_| SyncError::Stopped)?
    }

    /// Reads VPP's lb state now (reads only) and names what maglev knows.
    pub async fn lb_state(&self) -> Result<LbStateView, VppError> {
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| VppError::Disconnected(super::VppDisabled.to_string()))?;
        let client = conn
            .client()
            .ok_or_else(|| VppError::Disconnected("not connected to VPP".into()))?;
        let legacy = client.generation() == LbApiGeneration::Legacy;
        let actual = lb_io::read_actual(&client, &self.counters, None)
            .await
            .map_err(|e| match e {
                ReadStateError::Vpp(e) => e,
                ReadStateError::NoLbPlugin => VppError::Unsupported {
                    name_crc: "lb_add_del_vip_v2_7c520e0f".into(),
                },
                ReadStateError::Parse(e) => VppError::Invalid(format!("reading lb state: {e}")),
            })?;
        let desired = self.checker.read(desired_now);
        let vips = actual
            .vips
            .values()
            .map(|v| {
                let ours = desired.vips.get(&v.key);
                LbVipView {
                    key: v.key,
                    encap: v.encap,
                    src_ip_sticky: v.src_ip_sticky,
                    flow_table_length: v.flow_table_length,
                    pool_index: v.index,
                    frontend: ours.map(|d| d.frontend.clone()),
                    ases: v
                        .ases
                        .iter()
                        .map(|(addr, a)| LbAsView {
                            address: *addr,
                            weight: a.weight.unwrap_or(if a.used { 100 } else { 0 }),
                            flags: u32::from(a.used),
                            num_buckets: a.num_buckets.unwrap_or(0),
                            backend: ours
                                .and_then(|d| d.ases.get(addr))
                                .map(|d| d.backend.clone()),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(LbStateView {
            conf: actual.conf,
            legacy,
            vips,
        })
    }
}

/// Mirrors the connection into [`VppStatus`] (gRPC, metrics and `/readyz` read it).
async fn track_status(status: Arc<VppStatus>, conn: Arc<Connection>) {
    let mut rx = conn.state();
    loop {
        let state = rx.borrow_and_update().clone();
        match state {
            ConnState::Connected {
                generation,
                vpe_pid,
                version,
                build_date,
                connected_since,
                epoch,
            } => {
                status.update(|i| {
                    i.connected = true;
                    i.version = version;
                    i.build_date = build_date;
                    i.pid = vpe_pid;
                    i.connected_since = Some(connected_since);
                    i.api_generation = match generation {
                        LbApiGeneration::Weighted => "1.2.0",
                        LbApiGeneration::Legacy => "1.1.0",
                        LbApiGeneration::Absent => "",
                    }
                    .to_string();
                    i.legacy = generation == LbApiGeneration::Legacy;
                    i.reconnects = epoch.saturating_sub(1);
                    if generation == LbApiGeneration::Absent {
                        i.last_error = "VPP has no usable lb plugin API".into();
                    }
                });
            }
            ConnState::Disconnected => status.update(|i| {
                if i.connected {
                    i.last_error = "lost the VPP connection".into();
                }
                i.connected = false;
            }),
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
