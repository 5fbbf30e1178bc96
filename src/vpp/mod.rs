//! VPP binary API over the Unix socket (DESIGN.md §7, shared/VPP-WIRE.md): the wire
//! codec, typed messages, and an async client with reconnect supervision.

pub mod client;
pub mod messages;
pub mod wire;
