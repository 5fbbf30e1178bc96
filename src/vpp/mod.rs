//! VPP binary API over the Unix socket (DESIGN.md §7, shared/VPP-WIRE.md): the wire
//! codec, typed messages, an async client with reconnect supervision, and the daemon's
//! VPP service (status, reconciler).

pub mod client;
pub mod lb;
pub mod messages;
pub mod service;
pub mod status;
pub mod wire;

pub use service::{VppService, start};
pub use status::{VppInfo, VppStatus};
