//! VPP binary API over the Unix socket (DESIGN.md §7, shared/VPP-WIRE.md): the wire
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

pub use counters::CountersSnapshot;
pub use counters_poller::{CountersSample, CountersUnavailable, LbCountersView, VipCountersView};
pub use reconciler::SyncError;
pub use service::{LbAsView, LbStateView, LbVipView, VppService, start};
pub use status::{VppInfo, VppStatus};
