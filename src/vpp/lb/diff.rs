//! Desired vs actual -> the ordered writes (docs/design.md §7):
//!
//! 1. `SetConf` when the global settings differ (before any GRE VIP is added; in any scope).
//! 2. Removals: VIPs not in the config (full sync only) and VIPs to re-create (src-ip-sticky
//!    or encap changed): their live ASes deleted with flush, then the VIP.
//! 3. Per desired VIP in key order: `AddVip` if missing (or re-created), then the AS
//!    operations in numeric address order, IPv4 before IPv6, so that several daemons
//!    on one config build identical Maglev tables.
//!
//! An AS whose `used` flag is clear (deleted, awaiting GC) counts as absent: adding it
//! again is how VPP revives it. A weight change flushes only when the weight goes to 0 and
//! the policy says so; a weight that is already right is left alone (steady state: no ops),
//! except that an AS at 0 not flushed since it got there is flushed once when the policy
//! asks for it (`ActualAs::flushed`). Legacy (lb 1.1.0) has no weight 0: an AS at 0 is
//! deleted (flushing per the policy then); one already deleted has nothing to flush, so a
//! later flush request writes nothing and its flows end with the flow timeout.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use super::actual::{ActualAs, ActualState, ActualVip};
use super::desired::{DesiredState, DesiredVip};
use super::{LbConfValues, VipKey, encap_name};
use crate::vpp::client::LbApiGeneration;
use crate::vpp::wire::EncapType;

/// One write to VPP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbOp {
    SetConf(LbConfValues),
    AddVip {
        key: VipKey,
        encap: EncapType,
        src_ip_sticky: bool,
    },
    DelVip {
        key: VipKey,
    },
    /// Adds (or revives) an AS. On lb API 1.1.0 the weight is not sent (always 100).
    AddAs {
        key: VipKey,
        address: IpAddr,
        weight: u8,
    },
    SetWeight {
        key: VipKey,
        address: IpAddr,
        weight: u8,
        flush: bool,
    },
    DelAs {
        key: VipKey,
        address: IpAddr,
        flush: bool,
    },
}

impl LbOp {
    /// Short name, also the `kind` of metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LbOp::SetConf(_) => "set_conf",
            LbOp::AddVip { .. } => "add_vip",
            LbOp::DelVip { .. } => "del_vip",
            LbOp::AddAs { .. } => "add_as",
            LbOp::SetWeight { .. } => "set_weight",
            LbOp::DelAs { .. } => "del_as",
        }
    }

    /// The VIP written to (none for `SetConf`).
    pub fn vip(&self) -> Option<VipKey> {
        match self {
            LbOp::SetConf(_) => None,
            LbOp::AddVip { key, .. }
            | LbOp::DelVip { key }
            | LbOp::AddAs { key, .. }
            | LbOp::SetWeight { key, .. }
            | LbOp::DelAs { key, .. } => Some(*key),
        }
    }
}

impl fmt::Display for LbOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flush = |b: bool| if b { " flush" } else { "" };
        match self {
            LbOp::SetConf(c) => write!(f, "set lb conf {c}"),
            LbOp::AddVip {
                key,
                encap,
                src_ip_sticky,
            } => write!(
                f,
                "add vip {key} encap {}{}",
                encap_name(*encap),
                if *src_ip_sticky { " src-ip-sticky" } else { "" }
            ),
            LbOp::DelVip { key } => write!(f, "del vip {key}"),
            LbOp::AddAs {
                key,
                address,
                weight,
            } => write!(f, "add as {address} to vip {key} weight {weight}"),
            LbOp::SetWeight {
                key,
                address,
                weight,
                flush: fl,
            } => write!(
                f,
                "set as {address} of vip {key} weight {weight}{}",
                flush(*fl)
            ),
            LbOp::DelAs {
                key,
                address,
                flush: fl,
            } => write!(f, "del as {address} from vip {key}{}", flush(*fl)),
        }
    }
}

/// What to reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: conf, every VIP, and removal of VIPs that are not in the config.
    All,
    /// The conf and one VIP with its ASes; never removes a VIP (except to re-create
    /// this one).
    Vip(VipKey),
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Vip(_) => "vip",
        }
    }
}

/// How ASes carry weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    /// lb API 1.2.0: weights 0..=100.
    Weighted,
    /// lb API 1.1.0: no weights; weight 0 = AS deleted, above 0 = AS present.
    Legacy,
}

impl WeightMode {
    pub fn of(generation: LbApiGeneration) -> Self {
        if generation.has_weights() {
            WeightMode::Weighted
        } else {
            WeightMode::Legacy
        }
    }
}

/// The ordered writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbDiff {
    pub ops: Vec<LbOp>,
}

impl LbDiff {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The writes that make `actual` match `desired` within `scope`.
pub fn diff(
    desired: &DesiredState,
    actual: &ActualState,
    scope: Scope,
    mode: WeightMode,
) -> LbDiff {
    let mut ops = Vec::new();
    let in_scope = |key: &VipKey| match scope {
        Scope::All => true,
        Scope::Vip(k) => k == *key,
    };

    // Any scope: the GRE nodes need the source addresses before a VIP carries traffic,
    // and the warmup releases single VIPs long before its first full sync.
    if actual.conf != Some(desired.conf) {
        ops.push(LbOp::SetConf(desired.conf));
    }

    // Removals first: they free prefixes for VIPs added below (VPP refuses per-port
    // VIPs of one prefix with different encaps, and all-port next to per-port).
    let mut recreated: BTreeSet<VipKey> = BTreeSet::new();
    // A per-VIP scope looks at its VIP only: its cost does not grow with the table.
    let (actual_vips, desired_vips): (Vec<_>, Vec<_>) = match scope {
        Scope::All => (actual.vips.iter().collect(), desired.vips.iter().collect()),
        Scope::Vip(k) => (
            actual.vips.get_key_value(&k).into_iter().collect(),
            desired.vips.get_key_value(&k).into_iter().collect(),
        ),
    };
    for (key, have) in actual_vips {
        let remove = match desired.vips.get(key) {
            None => scope == Scope::All,
            Some(want) => in_scope(key) && needs_recreate(want, have),
        };
        if remove {
            remove_vip(have, &mut ops);
            recreated.insert(*key);
        }
    }

    for (key, want) in desired_vips.into_iter().filter(|(k, _)| in_scope(k)) {
        match actual.vips.get(key) {
            Some(have) if !recreated.contains(key) => as_ops(want, Some(have), mode, &mut ops),
            _ => {
                ops.push(LbOp::AddVip {
                    key: *key,
                    encap: want.encap,
                    src_ip_sticky: want.src_ip_sticky,
                });
                as_ops(want, None, mode, &mut ops);
            }
        }
    }
    LbDiff { ops }
}

/// src-ip-sticky cannot change on a live VIP, and an encap change changes the AS family.
fn needs_recreate(want: &DesiredVip, have: &ActualVip) -> bool {
    have.encap != want.encap || have.src_ip_sticky.is_some_and(|s| s != want.src_ip_sticky)
}

fn remove_vip(have: &ActualVip, ops: &mut Vec<LbOp>) {
    for (address, _) in have.ases.iter().filter(|(_, a)| a.used) {
        ops.push(LbOp::DelAs {
            key: have.key,
            address: *address,
            flush: true,
        });
    }
    ops.push(LbOp::DelVip { key: have.key });
}

fn as_ops(want: &DesiredVip, have: Option<&ActualVip>, mode: WeightMode, ops: &mut Vec<LbOp>) {
    let live = |addr: &IpAddr| -> Option<&ActualAs> {
        have.and_then(|h| h.ases.get(addr)).filter(|a| a.used)
    };
    let mut addresses: BTreeSet<IpAddr> = want.ases.keys().copied().collect();
    if let Some(h) = have {
        addresses.extend(h.ases.iter().filter(|(_, a)| a.used).map(|(addr, _)| *addr));
    }
    let key = want.key;
    for address in addresses {
        let op = match (want.ases.get(&address), live(&address), mode) {
            (None, Some(_), _) => Some(LbOp::DelAs {
                key,
                address,
                flush: true,
            }),
            (None, None, _) => None,
            (Some(w), None, WeightMode::Weighted) => Some(LbOp::AddAs {
                key,
                address,
                weight: w.weight,
            }),
            (Some(w), Some(a), WeightMode::Weighted) => {
                let flush = w.weight == 0 && w.flush;
                // Flush is an edge: an AS already at 0 whose flows were not flushed since
                // it got there (standby, paused, override 0, down without flush-on-down)
                // is flushed once when the policy starts asking for it.
                let reflush = flush && a.weight == Some(0) && !a.flushed;
                (a.weight != Some(w.weight) || reflush).then_some(LbOp::SetWeight {
                    key,
                    address,
                    weight: w.weight,
                    flush,
                })
            }
            (Some(w), None, WeightMode::Legacy) => (w.weight > 0).then_some(LbOp::AddAs {
                key,
                address,
                weight: w.weight,
            }),
            (Some(w), Some(_), WeightMode::Legacy) => (w.weight == 0).then_some(LbOp::DelAs {
                key,
                address,
                flush: w.flush,
            }),
        };
        ops.extend(op);
    }
}
