//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod maglev_table;
pub mod scenario;
pub mod stats_double;
pub mod vpp_double;
