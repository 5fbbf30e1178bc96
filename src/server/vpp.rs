//! The VPP RPCs: availability from `VppStatus`, then the VPP service (`lb_state`, `sync`,
//! `lb_counters`), its errors mapped to gRPC codes with a message that says exactly why.

use tonic::Status;

use super::Handles;
use super::convert;
use super::service::not_found;
use crate::proto;
use crate::vpp::client::VppError;
use crate::vpp::lb_io::ReadStateError;
use crate::vpp::{CountersUnavailable, SyncError, VppDisabled, VppInfo, VppService};

/// UNAVAILABLE unless VPP is enabled.
pub fn require_enabled(info: &VppInfo) -> Result<(), Status> {
    if info.enabled {
        Ok(())
    } else {
        Err(Status::unavailable(VppDisabled.to_string()))
    }
}

/// UNAVAILABLE unless VPP is enabled and connected; the message says which and why.
pub fn require_connected(info: &VppInfo, api_addr: &str) -> Result<(), Status> {
    require_enabled(info)?;
    if info.connected {
        return Ok(());
    }
    Err(Status::unavailable(not_connected(info, api_addr)))
}

fn not_connected(info: &VppInfo, api_addr: &str) -> String {
    let why = if info.last_error.is_empty() {
        String::new()
    } else {
        format!(": {}", info.last_error)
    };
    format!("VPP is not connected (--vpp-api-addr {api_addr}){why}")
}

pub fn info(handles: &Handles) -> Result<proto::VppInfo, Status> {
    let info = handles.vpp_status.get();
    require_enabled(&info)?;
    Ok(convert::vpp_info(
        &info,
        &handles.args.vpp_api_addr,
        &handles.args.vpp_stats_addr,
    ))
}

fn connected(handles: &Handles) -> Result<(), Status> {
    require_connected(&handles.vpp_status.get(), &handles.args.vpp_api_addr)
}

/// The running VPP side (started before the server).
fn service(handles: &Handles) -> Result<&VppService, Status> {
    Ok(handles.vpp.as_ref())
}

fn unknown_frontend(handles: &Handles, name: &str) -> Status {
    not_found("frontend", name, handles.control.config().frontends.keys())
}

pub async fn lb_state(handles: &Handles) -> Result<proto::VpplbState, Status> {
    connected(handles)?;
    let view = service(handles)?
        .lb_state()
        .await
        .map_err(|e| vpp_error("reading VPP's lb state", &e))?;
    Ok(convert::vpp_lb_state(&view))
}

pub async fn sync(
    handles: &Handles,
    frontend: &str,
) -> Result<proto::SyncVpplbStateResponse, Status> {
    if !frontend.is_empty() && !handles.control.config().frontends.contains_key(frontend) {
        return Err(unknown_frontend(handles, frontend));
    }
    connected(handles)?;
    let service = service(handles)?;
    let target = (!frontend.is_empty()).then(|| frontend.to_string());
    match service.sync(target).await {
        Ok(operations) => Ok(proto::SyncVpplbStateResponse {
            operations,
            dry_run: service.dry_run(),
        }),
        Err(e) => Err(sync_error(handles, &e)),
    }
}

pub fn counters(handles: &Handles) -> Result<proto::VpplbCounters, Status> {
    let info = handles.vpp_status.get();
    require_enabled(&info)?;
    let service = service(handles)?;
    if !service.stats_enabled() {
        return Err(Status::unavailable(
            CountersUnavailable::StatsDisabled.to_string(),
        ));
    }
    require_connected(&info, &handles.args.vpp_api_addr)?;
    service
        .lb_counters()
        .map(|v| convert::vpp_lb_counters(&v))
        .map_err(|e| Status::unavailable(e.to_string()))
}

/// A failed sync as gRPC: refusals that pass with time are UNAVAILABLE, a VPP without
/// the lb plugin is FAILED_PRECONDITION, failed writes ABORTED (the reconciler retries
/// them), an unreadable state INTERNAL.
fn sync_error(handles: &Handles, e: &SyncError) -> Status {
    match e {
        SyncError::Disabled => Status::unavailable(VppDisabled.to_string()),
        SyncError::NotFound(name) => unknown_frontend(handles, name),
        SyncError::Disconnected => Status::unavailable(not_connected(
            &handles.vpp_status.get(),
            &handles.args.vpp_api_addr,
        )),
        SyncError::Warmup(left) => Status::unavailable(format!(
            "VPP warmup: no writes for another {:.1}s (startup-min-delay); try again then",
            left.as_secs_f64()
        )),
        SyncError::Read(ReadStateError::Vpp(v)) => vpp_error("reading VPP's lb state", v),
        SyncError::Read(r @ ReadStateError::NoLbPlugin) => {
            Status::failed_precondition(r.to_string())
        }
        SyncError::Read(r @ ReadStateError::Parse(_)) => {
            Status::internal(format!("reading VPP's lb state: {r}"))
        }
        SyncError::Write { failed, first } => Status::aborted(format!(
            "VPP sync incomplete: {failed} write(s) failed, first: {first} (retried automatically)"
        )),
        SyncError::Stopped => Status::unavailable(e.to_string()),
    }
}

/// A client error as gRPC: the connection going away is UNAVAILABLE, a VPP lacking a
/// message FAILED_PRECONDITION, anything else INTERNAL.
fn vpp_error(doing: &str, e: &VppError) -> Status {
    let text = format!("{doing}: {e}");
    match e {
        VppError::Disconnected(_)
        | VppError::Timeout { .. }
        | VppError::Connect { .. }
        | VppError::Handshake(_) => Status::unavailable(text),
        VppError::Unsupported { .. } => Status::failed_precondition(text),
        _ => Status::internal(text),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vpp::client::ApiErrorCode;

    #[test]
    fn disabled_and_disconnected_are_unavailable_with_the_reason() {
        let off = VppInfo::default();
        let e = require_connected(&off, "");
        assert!(
            matches!(&e, Err(s) if s.code() == tonic::Code::Unavailable && s.message() == VppDisabled.to_string())
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

    #[test]
    fn client_errors_map_to_codes() {
        let gone = vpp_error("x", &VppError::Disconnected("eof".into()));
        assert_eq!(gone.code(), tonic::Code::Unavailable);
        assert_eq!(gone.message(), "x: disconnected: eof");
        let slow = vpp_error(
            "x",
            &VppError::Timeout {
                message: "lb_vip_dump",
                after: Duration::from_secs(5),
            },
        );
        assert_eq!(slow.code(), tonic::Code::Unavailable);
        let missing = vpp_error(
            "x",
            &VppError::Unsupported {
                name_crc: "lb_vip_dump_56110cb7".into(),
            },
        );
        assert_eq!(missing.code(), tonic::Code::FailedPrecondition);
        let refused = vpp_error(
            "x",
            &VppError::Api {
                message: "lb_conf_get",
                code: ApiErrorCode(-1),
            },
        );
        assert_eq!(refused.code(), tonic::Code::Internal);
    }
}
