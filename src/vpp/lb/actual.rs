//! The lb state VPP has, assembled from its reads: `lb_conf_get`, `lb_vip_dump`, the AS
//! dump (filtered client-side: VPP's own filter never matches IPv4, docs/vpp-wire.md §3.4) and
//! `show lb vips verbose` (src-ip-sticky, pool index). On lb API 1.1.0 the dumps report
//! protocol, encap and table length wrongly (docs/vpp-wire.md §3.5): the CLI text fills them in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

use super::cli_text::{CliParseError, CliVip};
use super::diff::{LbOp, WeightMode};
use super::{LbConfValues, VipKey, encap_name};
use crate::vpp::client::LbAsEntry;
use crate::vpp::messages::lb::{LbConfGetReply, LbVipDetails};
use crate::vpp::wire::{EncapType, Prefix};

/// One AS as VPP has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualAs {
    /// `None` on lb API 1.1.0 (no weights there: every live AS counts as 100).
    pub weight: Option<u8>,
    /// False = deleted, waiting for VPP's garbage collection: counts as absent, and
    /// adding it again revives it.
    pub used: bool,
    pub num_buckets: Option<u32>,
    /// At weight 0 and its flows flushed since it got there. VPP does not tell: a read
    /// says false, the reconciler's mirror of VPP knows (flush is an edge, not a level).
    pub flushed: bool,
}

/// One live VIP as VPP has it (deleted VIPs that 26.06 still lists are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualVip {
    pub key: VipKey,
    pub encap: EncapType,
    /// `None` when `show lb vips verbose` could not be read.
    pub src_ip_sticky: Option<bool>,
    /// Pool index (keys the stats counters).
    pub index: Option<u32>,
    pub flow_table_length: Option<u32>,
    pub ases: BTreeMap<IpAddr, ActualAs>,
}

/// Everything VPP holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActualState {
    /// `None` when VPP cannot tell (lb API 1.1.0 has no `lb_conf_get`).
    pub conf: Option<LbConfValues>,
    pub vips: BTreeMap<VipKey, ActualVip>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Cli(#[from] CliParseError),
    #[error("VPP's dumps and `show lb vips verbose` disagree: {0}")]
    Inconsistent(String),
}

impl From<&LbConfGetReply> for LbConfValues {
    fn from(r: &LbConfGetReply) -> Self {
        LbConfValues {
            ip4_src_address: r.ip4_src_address,
            ip6_src_address: r.ip6_src_address,
            sticky_buckets_per_core: r.sticky_buckets_per_core,
            flow_timeout: r.flow_timeout,
        }
    }
}

impl ActualState {
    /// lb API 1.2.0: the dumps are right; the CLI text (if it could be read) adds
    /// src-ip-sticky and the pool index.
    pub fn from_weighted(
        conf: LbConfValues,
        vips: &[LbVipDetails],
        ases: &[LbAsEntry],
        cli: Option<&[CliVip]>,
    ) -> ActualState {
        let by_key: HashMap<VipKey, &CliVip> = cli
            .unwrap_or_default()
            .iter()
            .filter(|c| !c.removed)
            .map(|c| (c.key(), c))
            .collect();
        let mut out = ActualState {
            conf: Some(conf),
            vips: BTreeMap::new(),
        };
        for d in vips {
            let key = VipKey::new(d.vip.pfx, d.vip.protocol.0, d.vip.port);
            let text = by_key.get(&key);
            let vip = ActualVip {
                key,
                encap: d.encap,
                src_ip_sticky: text.map(|c| c.src_ip_sticky),
                index: text.map(|c| c.index),
                // A u16 on the wire: 65536 reads back as 0.
                flow_table_length: text.and_then(|c| c.new_size).or(Some(
                    match d.flow_table_length {
                        0 => 65536,
                        n => u32::from(n),
                    },
                )),
                ases: BTreeMap::new(),
            };
            out.vips.insert(key, vip);
        }
        for a in ases {
            let key = VipKey::new(a.vip.pfx, a.vip.protocol.0, a.vip.port);
            if let Some(vip) = out.vips.get_mut(&key) {
                insert_as(
                    &mut vip.ases,
                    a.address,
                    ActualAs {
                        weight: a.weight,
                        used: a.used,
                        num_buckets: a.num_buckets,
                        flushed: false,
                    },
                );
            }
        }
        out
    }

    /// lb API 1.1.0: `lb_vip_dump` lists removed VIPs too, reads protocol 0 and carries
    /// the internal VIP type in `encap`; its AS dump has the same protocol problem. So
    /// each dumped VIP is paired with the CLI block of the same prefix and port (both
    /// list VIPs in pool order), which gives protocol, liveness, src-ip-sticky and ASes.
    pub fn from_legacy(
        conf: Option<LbConfValues>,
        vips: &[LbVipDetails],
        cli: &[CliVip],
    ) -> Result<ActualState, ReadError> {
        let mut blocks: HashMap<(Prefix, u16), VecDeque<&CliVip>> = HashMap::new();
        for c in cli {
            blocks
                .entry((c.prefix.normalized(), c.port.unwrap_or(0)))
                .or_default()
                .push_back(c);
        }
        let mut out = ActualState {
            conf,
            vips: BTreeMap::new(),
        };
        for d in vips {
            let prefix = d.vip.pfx.normalized();
            let block = blocks
                .get_mut(&(prefix, d.vip.port))
                .and_then(VecDeque::pop_front)
                .ok_or_else(|| {
                    ReadError::Inconsistent(format!(
                        "VIP {prefix} port {} is dumped but not shown",
                        d.vip.port
                    ))
                })?;
            let encap = legacy_vip_type_encap(d.encap.0)
                .or_else(|| block.encap())
                .ok_or_else(|| {
                    ReadError::Inconsistent(format!("VIP {prefix}: unknown VIP type {}", d.encap.0))
                })?;
            if block.encap().is_some_and(|e| e != encap) {
                return Err(ReadError::Inconsistent(format!(
                    "VIP {prefix}: dump says {}, CLI says {}",
                    encap_name(encap),
                    block.vip_type
                )));
            }
            if block.removed {
                continue;
            }
            let key = block.key();
            let mut ases = BTreeMap::new();
            for a in &block.ases {
                insert_as(
                    &mut ases,
                    a.address,
                    ActualAs {
                        weight: a.weight,
                        used: a.used,
                        num_buckets: a.buckets,
                        flushed: false,
                    },
                );
            }
            out.vips.insert(
                key,
                ActualVip {
                    key,
                    encap,
                    src_ip_sticky: Some(block.src_ip_sticky),
                    index: Some(block.index),
                    flow_table_length: block.new_size,
                    ases,
                },
            );
        }
        if let Some(((prefix, port), _)) = blocks.iter().find(|(_, b)| !b.is_empty()) {
            return Err(ReadError::Inconsistent(format!(
                "VIP {prefix} port {port} is shown but not dumped"
            )));
        }
        Ok(out)
    }
}

impl ActualState {
    /// What VPP holds once `op` succeeded: how the reconciler keeps its mirror of VPP
    /// without reading it back. A deleted AS stays, unused (as in VPP until its GC).
    pub fn apply(&mut self, op: &LbOp, mode: WeightMode) {
        let weight = |w: u8| match mode {
            WeightMode::Weighted => Some(w),
            WeightMode::Legacy => None,
        };
        match op {
            LbOp::SetConf(c) => self.conf = Some(*c),
            LbOp::AddVip {
                key,
                encap,
                src_ip_sticky,
            } => {
                self.vips.insert(
                    *key,
                    ActualVip {
                        key: *key,
                        encap: *encap,
                        src_ip_sticky: Some(*src_ip_sticky),
                        index: None,
                        flow_table_length: None,
                        ases: BTreeMap::new(),
                    },
                );
            }
            LbOp::DelVip { key } => {
                self.vips.remove(key);
            }
            LbOp::AddAs {
                key,
                address,
                weight: w,
            } => {
                if let Some(vip) = self.vips.get_mut(key) {
                    vip.ases.insert(
                        *address,
                        ActualAs {
                            weight: weight(*w),
                            used: true,
                            num_buckets: None,
                            // A new AS has no flows to flush.
                            flushed: *w == 0,
                        },
                    );
                }
            }
            LbOp::SetWeight {
                key,
                address,
                weight: w,
                flush,
            } => {
                if let Some(a) = self.vips.get_mut(key).and_then(|v| v.ases.get_mut(address)) {
                    let was_flushed_at_0 = a.weight == Some(0) && a.flushed;
                    a.weight = weight(*w);
                    a.flushed = *w == 0 && (*flush || was_flushed_at_0);
                }
            }
            LbOp::DelAs { key, address, .. } => {
                if let Some(a) = self.vips.get_mut(key).and_then(|v| v.ases.get_mut(address)) {
                    a.used = false;
                    a.flushed = false;
                }
            }
        }
    }

    /// A fresh read of VPP, keeping what only the old mirror knew: which ASes at weight 0
    /// were flushed since they got there (VPP does not say).
    pub fn keep_flushed_from(&mut self, old: &ActualState) {
        for (key, vip) in &mut self.vips {
            let Some(old_vip) = old.vips.get(key) else {
                continue;
            };
            for (addr, a) in &mut vip.ases {
                if a.used && a.weight == Some(0) {
                    a.flushed = old_vip
                        .ases
                        .get(addr)
                        .is_some_and(|o| o.used && o.weight == Some(0) && o.flushed);
                }
            }
        }
    }
}

/// An AS may be listed twice (a removed entry awaiting GC and a live one after a
/// re-add would be merged by VPP, but be safe): a live entry wins.
fn insert_as(ases: &mut BTreeMap<IpAddr, ActualAs>, address: IpAddr, a: ActualAs) {
    match ases.get(&address) {
        Some(existing) if existing.used && !a.used => {}
        _ => {
            ases.insert(address, a);
        }
    }
}

/// What a 1.1.0 VPP puts in `lb_vip_details.encap`: the internal `lb_vip_type`
/// (docs/vpp-wire.md §3.2), reduced to the tunnel it uses.
pub fn legacy_vip_type_encap(vip_type: u32) -> Option<EncapType> {
    Some(match vip_type {
        0 | 2 => EncapType::GRE6, // ip6-gre6, ip4-gre6
        1 | 3 => EncapType::GRE4, // ip6-gre4, ip4-gre4
        4 => EncapType::L3DSR,
        5 => EncapType::NAT4,
        6 => EncapType::NAT6,
        _ => return None,
    })
}
