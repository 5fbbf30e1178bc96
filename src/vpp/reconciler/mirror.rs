//! The reconciler's copy of VPP's lb state. The reconciler is the only writer, so what it
//! last read plus what it wrote since is what VPP holds: a per-VIP sync diffs against this
//! and reads nothing from VPP. A full sync reads VPP and replaces it. A write that failed,
//! timed out or got an unexpected reply makes it stale (VPP may or may not have applied
//! it): the next sync reads VPP again.

use crate::vpp::lb::{ActualState, LbOp, WeightMode};

#[derive(Debug)]
pub struct Mirror {
    state: ActualState,
    /// The connection it was read on: another connection may be another VPP.
    epoch: u64,
    stale: bool,
}

impl Mirror {
    /// A fresh read on connection `epoch`; `old` hands over what only it knew (which ASes
    /// at weight 0 were flushed).
    pub fn read(mut state: ActualState, epoch: u64, old: Option<&Mirror>) -> Mirror {
        if let Some(old) = old {
            state.keep_flushed_from(&old.state);
        }
        Mirror {
            state,
            epoch,
            stale: false,
        }
    }

    /// Usable for a sync on connection `epoch` without reading VPP first.
    pub fn usable(&self, epoch: u64) -> bool {
        !self.stale && self.epoch == epoch
    }

    pub fn state(&self) -> &ActualState {
        &self.state
    }

    /// `op` was applied by VPP.
    pub fn wrote(&mut self, op: &LbOp, mode: WeightMode) {
        self.state.apply(op, mode);
    }

    /// A write whose outcome is unknown: trust nothing until the next read.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::lb::{ActualVip, VipKey};
    use crate::vpp::wire::{EncapType, Prefix};

    fn key() -> VipKey {
        VipKey::new(Prefix::new([192, 0, 2, 1].into(), 32), 6, 80)
    }

    #[test]
    fn writes_update_it_and_a_failure_or_new_connection_makes_it_unusable() {
        let mut m = Mirror::read(ActualState::default(), 1, None);
        assert!(m.usable(1));
        assert!(!m.usable(2), "another connection");
        m.wrote(
            &LbOp::AddVip {
                key: key(),
                encap: EncapType::GRE4,
                src_ip_sticky: false,
            },
            WeightMode::Weighted,
        );
        let vip: Option<&ActualVip> = m.state().vips.get(&key());
        assert!(vip.is_some());
        m.mark_stale();
        assert!(!m.usable(1));
        let fresh = Mirror::read(ActualState::default(), 1, Some(&m));
        assert!(fresh.usable(1));
        assert!(fresh.state().vips.is_empty());
    }
}
