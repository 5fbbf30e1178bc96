//! VPP stats segment (VPP-WIRE §4): receive the segment's memfd over `stats.sock`, map it
//! read-only, and read counters safely under VPP's optimistic epoch lock.

pub mod memory;
pub mod segment;
