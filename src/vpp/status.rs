//! What the VPP side tells the rest of the daemon: connection, version, API generation,
//! warmup. Written only by the VPP service; read by gRPC, metrics and `/readyz`.

use std::sync::RwLock;
use std::time::SystemTime;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VppInfo {
    /// `--vpp-api-addr` is not empty.
    pub enabled: bool,
    pub dry_run: bool,
    pub connected: bool,
    pub version: String,
    pub build_date: String,
    pub pid: u32,
    pub connected_since: Option<SystemTime>,
    /// "1.2.0" (weights) or "1.1.0" (legacy).
    pub api_generation: String,
    pub legacy: bool,
    pub warmup_done: bool,
    pub reconnects: u64,
    pub last_error: String,
}

#[derive(Debug, Default)]
pub struct VppStatus {
    info: RwLock<VppInfo>,
}

impl VppStatus {
    pub fn new(enabled: bool, dry_run: bool) -> Self {
        VppStatus {
            info: RwLock::new(VppInfo {
                enabled,
                dry_run,
                // With VPP off there is nothing to warm up.
                warmup_done: !enabled,
                ..VppInfo::default()
            }),
        }
    }

    pub fn get(&self) -> VppInfo {
        match self.info.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut VppInfo)) {
        match self.info.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// `/readyz`: VPP off, or the warmup is over.
    pub fn ready(&self) -> Result<(), String> {
        let info = self.get();
        if !info.enabled || info.warmup_done {
            Ok(())
        } else {
            Err("VPP warmup in progress".into())
        }
    }
}
