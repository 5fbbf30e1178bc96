//! VPP stats segment (docs/vpp-wire.md §4): receive the segment's memfd over `stats.sock`, map it
//! read-only, and read counters safely under VPP's optimistic epoch lock.
//!
//! - [`segment`]: the pure reader over any [`memory::SegmentMemory`] (every pointer
//!   translated and bounds-checked, vector lengths capped, symlink cycles detected).
//! - [`shm`]: socket + `SCM_RIGHTS` + `mmap`; the only `unsafe` of this module.
//! - [`lb`]: the lb plugin's counters and the one-pass [`LbCounterSnapshot`] read.
//! - [`client`]: [`StatsClient`] (one mapping, restart detection) and [`StatsPoller`]
//!   (async, reconnects across VPP restarts).

pub mod client;
pub mod lb;
pub mod memory;
pub mod segment;
pub mod shm;

pub use client::{PollOutcome, RestartReason, StatsClient, StatsError, StatsPoller};
pub use lb::{LbCounterSnapshot, NO_ROUTE, VipCounters};
pub use segment::{CombinedCounter, EntryType, StatValue};

#[cfg(test)]
mod test_segment;
