//! VPP binary API over the Unix socket (docs/design.md §7, docs/vpp-wire.md): the wire
//! codec, typed messages, an async client with reconnect supervision, and the daemon's
//! VPP service (status, reconciler).

pub mod client;
pub mod counters;
pub mod counters_poller;
pub mod lb;
pub mod lb_io;
pub mod messages;
pub mod reconciler;
pub mod service;
pub mod stats;
pub mod status;
pub mod wire;

/// VPP is turned off (`--vpp-api-addr ""`): the one wording of that, wherever it is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VPP is disabled (--vpp-api-addr is empty)")]
pub struct VppDisabled;

pub use counters::CountersSnapshot;
pub use counters_poller::{CountersSample, CountersUnavailable, LbCountersView, VipCountersView};
pub use reconciler::SyncError;
pub use service::{Handles, LbAsView, LbStateView, LbVipView, VppService, start};
pub use status::{VppInfo, VppStatus};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vpp_disabled_error_says_it_the_same_way() {
        let text = VppDisabled.to_string();
        assert_eq!(text, "VPP is disabled (--vpp-api-addr is empty)");
        assert_eq!(SyncError::Disabled.to_string(), text);
        assert_eq!(CountersUnavailable::VppDisabled.to_string(), text);
    }
}
