//! The health core (DESIGN.md §5). Pure: no I/O, no tokio, no clocks read except where a
//! caller passes the time in. Everything here is deterministic and unit-tested.

pub mod result;

pub use result::{ProbeResult, ResultCode, State};
