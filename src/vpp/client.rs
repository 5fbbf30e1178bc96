//! Async client for VPP's binary API socket (docs/vpp-wire.md §1, §5.5).
//!
//! - [`Client`]: one live connection: handshake, the `name_crc -> id` table of *this*
//!   connection, a reader task routing replies by context, dumps ended by
//!   `control_ping_reply`, per-request timeouts, keepalive pings. Any EOF, timeout or
//!   garbage fails every pending call and kills the connection; it is never reused.
//! - [`Connection`]: the supervisor that reconnects with backoff and publishes
//!   [`ConnState`] on a `watch` channel (with an epoch per successful connect).
//! - Typed calls (`show_version`, `lb_*`) live in `client/api.rs`.

mod api;
mod conn;
mod error;
mod supervisor;
mod table;

pub use api::{LbAsEntry, VersionInfo};
pub use conn::{Client, ClientConfig};
pub use error::{ApiErrorCode, VppError};
pub use supervisor::{ConnState, Connection, ConnectionConfig};
pub use table::{LbApiGeneration, MessageTable};
