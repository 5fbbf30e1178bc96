//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod maglev_table;
pub mod vpp_double;
