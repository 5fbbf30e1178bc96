//! `tcp-syn`: half-open TCP check over a raw socket (not implemented yet).

use crate::health::result::ResultCode;

use super::netns::SocketFactory;
use super::{Outcome, ProbeSpec};

/// Shared state of tcp-syn checks.
#[derive(Default)]
pub struct SynPool {}

impl SynPool {
    pub async fn probe(&self, _sockets: &SocketFactory, _spec: &ProbeSpec, _port: u16) -> Outcome {
        Outcome::new(ResultCode::SockErr, "tcp-syn not implemented yet")
    }

    pub fn unmatched_replies(&self) -> u64 {
        0
    }
}
