//! maglev: health checker and gRPC control plane for the VPP lb (Maglev) plugin.
//!
//! Data flows one way: probe -> health -> events -> reconciler -> VPP. Only the
//! reconciler writes to VPP. Both roles (`daemon`, `ctl`) share this one module tree.

pub mod checker;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod events;
pub mod health;
pub mod metrics;
pub mod probe;
pub mod server;
pub mod tester;
pub mod version;
pub mod vpp;
pub mod web;

/// Generated protobuf/gRPC types of `proto/maglev/v1/maglev.proto`.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("maglev.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/maglev_descriptor.bin"));
}
