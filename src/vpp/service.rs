//! The VPP side of the daemon as one unit: started by the daemon, stopped on shutdown.

use std::sync::Arc;

use crate::daemon::Daemon;

/// Handle to the running VPP side.
pub struct VppService {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the VPP side, or says clearly that it is off.
pub fn start(daemon: Arc<Daemon>) -> anyhow::Result<VppService> {
    let args = &daemon.args;
    if args.vpp_api_addr.is_empty() {
        tracing::info!("VPP disabled (--vpp-api-addr is empty): health checking only");
        return Ok(VppService { tasks: Vec::new() });
    }
    tracing::warn!(
        vpp_api_addr = %args.vpp_api_addr,
        vpp_stats_addr = %args.vpp_stats_addr,
        dry_run = args.dry_run,
        "VPP programming is not active yet in this build: health checking only, nothing is written to VPP"
    );
    daemon
        .vpp
        .update(|i| i.last_error = "VPP programming not active in this build".into());
    Ok(VppService { tasks: Vec::new() })
}

impl VppService {
    /// Stops talking to VPP. VPP itself is left exactly as it is.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
