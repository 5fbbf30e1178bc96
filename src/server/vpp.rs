//! The VPP RPCs. Availability is decided here from `VppStatus`; the lb state, sync and
//! counters come from the VPP reconciler, which is not part of this build yet.
//!
//! Hook for the reconciler: once it exists, give the service a handle to it and replace
//! the bodies of `lb_state`, `sync` and `counters` below (after `require_connected`) with
//! calls that map its types to `proto::VpplbState`, `proto::SyncVpplbStateResponse` and
//! `proto::VpplbCounters`. Nothing else in the server needs to change.

use tonic::Status;

use super::convert;
use crate::daemon::Daemon;
use crate::proto;
use crate::vpp::VppInfo;

pub const DISABLED: &str = "VPP is disabled (--vpp-api-addr is empty)";

/// UNAVAILABLE unless VPP is enabled.
pub fn require_enabled(info: &VppInfo) -> Result<(), Status> {
    if info.enabled {
        Ok(())
    } else {
        Err(Status::unavailable(DISABLED))
    }
}

/// UNAVAILABLE unless VPP is enabled and connected; the message says which and why.
pub fn require_connected(info: &VppInfo, api_addr: &str) -> Result<(), Status> {
    require_enabled(info)?;
    if info.connected {
        return Ok(());
    }
    let why = if info.last_error.is_empty() {
        String::new()
    } else {
        format!(": {}", info.last_error)
    };
    Err(Status::unavailable(format!(
        "VPP is not connected (--vpp-api-addr {api_addr}){why}"
    )))
}

pub fn info(daemon: &Daemon) -> Result<proto::VppInfo, Status> {
    let info = daemon.vpp.get();
    require_enabled(&info)?;
    Ok(convert::vpp_info(
        &info,
        &daemon.args.vpp_api_addr,
        &daemon.args.vpp_stats_addr,
    ))
}

fn connected(daemon: &Daemon) -> Result<(), Status> {
    require_connected(&daemon.vpp.get(), &daemon.args.vpp_api_addr)
}

/// The reconciler is not wired in: a connected VPP (impossible in this build) says so.
fn not_wired(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what}: the VPP reconciler is not part of this build"
    ))
}

pub fn lb_state(daemon: &Daemon) -> Result<proto::VpplbState, Status> {
    connected(daemon)?;
    Err(not_wired("VPP lb state"))
}

pub fn sync(daemon: &Daemon, frontend: &str) -> Result<proto::SyncVpplbStateResponse, Status> {
    if !frontend.is_empty() && !daemon.config().frontends.contains_key(frontend) {
        let known: Vec<String> = daemon.config().frontends.keys().cloned().collect();
        return Err(Status::not_found(format!(
            "unknown frontend {frontend:?} (known: {})",
            convert::known_list(&known)
        )));
    }
    connected(daemon)?;
    Err(not_wired("VPP lb sync"))
}

pub fn counters(daemon: &Daemon) -> Result<proto::VpplbCounters, Status> {
    connected(daemon)?;
    Err(not_wired("VPP lb counters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_and_disconnected_are_unavailable_with_the_reason() {
        let off = VppInfo::default();
        let e = require_connected(&off, "");
        assert!(
            matches!(&e, Err(s) if s.code() == tonic::Code::Unavailable && s.message() == DISABLED)
        );

        let down = VppInfo {
            enabled: true,
            last_error: "connection refused".into(),
            ..VppInfo::default()
        };
        assert!(require_enabled(&down).is_ok());
        let Err(s) = require_connected(&down, "/run/vpp/api.sock") else {
            panic!("expected UNAVAILABLE")
        };
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            s.message(),
            "VPP is not connected (--vpp-api-addr /run/vpp/api.sock): connection refused"
        );

        let up = VppInfo {
            enabled: true,
            connected: true,
            ..VppInfo::default()
        };
        assert!(require_connected(&up, "x").is_ok());
    }
}
