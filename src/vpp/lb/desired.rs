//! The lb state maglev wants: a pure function of the config and the frontend views
//! (effective weights, docs/design.md §5).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{LbConfValues, VipKey, is_unusable_as_address};
use crate::checker::{FrontendView, HealthSnapshot, frontend_view};
use crate::config::{Config, VppLbConfig};
use crate::health::weight::MAX_WEIGHT;
use crate::health::{AsAction, State};
use crate::vpp::wire::{EncapType, Prefix};

/// One AS as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAs {
    /// The backend it stands for (the first one, should two share an address).
    pub backend: String,
    /// 0..=100.
    pub weight: u8,
    /// Drop the AS's existing flows when its weight goes to 0.
    pub flush: bool,
}

/// One VIP as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVip {
    pub frontend: String,
    pub key: VipKey,
    /// GRE4 for IPv4 backends, GRE6 for IPv6 backends.
    pub encap: EncapType,
    pub src_ip_sticky: bool,
    /// By address: IPv4 first, then numeric order (the order of AS writes).
    pub ases: BTreeMap<IpAddr, DesiredAs>,
    /// Some backend of this frontend is still `unknown` (the warmup waits for none).
    pub has_unknown: bool,
}

/// Everything maglev wants VPP to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    pub conf: LbConfValues,
    pub vips: BTreeMap<VipKey, DesiredVip>,
    /// Things that could not be expressed in VPP (logged by the reconciler).
    pub problems: Vec<String>,
}

impl DesiredState {
    /// The VIP of a frontend.
    pub fn vip_of(&self, frontend: &str) -> Option<&DesiredVip> {
        self.vips.values().find(|v| v.frontend == frontend)
    }
}

/// `lb_conf` values for the config; an absent source address is sent as VPP's own
/// "unset" value (all ones).
pub fn desired_conf(lb: &VppLbConfig) -> LbConfValues {
    LbConfValues {
        ip4_src_address: lb.ipv4_src_address.unwrap_or(Ipv4Addr::BROADCAST),
        ip6_src_address: lb.ipv6_src_address.unwrap_or(Ipv6Addr::from(u128::MAX)),
        sticky_buckets_per_core: lb.sticky_buckets_per_core,
        flow_timeout: u32::try_from(lb.flow_timeout.as_secs()).unwrap_or(u32::MAX),
    }
}

/// What maglev wants now: [`desired_state`] of every frontend's current view.
pub fn desired_now(st: &HealthSnapshot) -> DesiredState {
    let views: Vec<FrontendView> = st
        .config
        .frontends
        .keys()
        .filter_map(|name| frontend_view(st, name))
        .collect();
    desired_state(&st.config, &views)
}

/// What maglev wants now for `frontends` only (a per-VIP sync): their views alone, so
/// the cost follows the VIPs synced, not the whole config. A VIP shared with a frontend
/// that comes earlier in the config is that one's, as in [`desired_now`].
pub fn desired_of(st: &HealthSnapshot, frontends: &[String]) -> DesiredState {
    let views: Vec<FrontendView> = frontends
        .iter()
        .filter_map(|name| frontend_view(st, name))
        .collect();
    let mut state = desired_state(&st.config, &views);
    // The first frontend (in name order) of each VIP owns it: one pass over the config.
    let mut owner: std::collections::HashMap<VipKey, &str> = std::collections::HashMap::new();
    for (name, f) in &st.config.frontends {
        owner.entry(vip_key(f)).or_insert(name.as_str());
    }
    state
        .vips
        .retain(|key, vip| owner.get(key).is_none_or(|o| *o == vip.frontend));
    state
}

/// The VIP of a frontend.
pub fn vip_key(fe: &crate::config::Frontend) -> VipKey {
    VipKey::new(
        Prefix::new(fe.address.addr, fe.address.len),
        fe.protocol.ip_proto(),
        fe.port,
    )
}

/// The desired state for `config`, from one view per frontend (views of frontends not in
/// the config are ignored).
pub fn desired_state(config: &Config, views: &[FrontendView]) -> DesiredState {
    let mut state = DesiredState {
        conf: desired_conf(&config.vpp.lb),
        vips: BTreeMap::new(),
        problems: Vec::new(),
    };
    for view in views {
        if !config.frontends.contains_key(&view.frontend.name) {
            continue;
        }
        let vip = desired_vip(config, view, &mut state.problems);
        if let Some(other) = state.vips.get(&vip.key) {
            state.problems.push(format!(
                "frontends {} and {} share VIP {}; only {} is programmed",
                other.frontend, vip.frontend, vip.key, other.frontend
            ));
            continue;
        }
        state.vips.insert(vip.key, vip);
    }
    state
}

fn desired_vip(config: &Config, view: &FrontendView, problems: &mut Vec<String>) -> DesiredVip {
    let fe = &view.frontend;
    let key = vip_key(fe);
    // The backends' family picks the tunnel (validated to be one family per frontend).
    let first_backend = fe
        .backend_names()
        .into_iter()
        .find_map(|b| config.backends.get(b).map(|b| b.address));
    let backend_v4 = first_backend.unwrap_or(fe.address.addr).is_ipv4();
    let encap = if backend_v4 {
        EncapType::GRE4
    } else {
        EncapType::GRE6
    };

    let mut ases: BTreeMap<IpAddr, DesiredAs> = BTreeMap::new();
    let mut has_unknown = false;
    for (pool_index, pool) in view.weights.pools.iter().enumerate() {
        for (member_index, member) in pool.backends.iter().enumerate() {
            let state = view
                .inputs
                .get(pool_index)
                .and_then(|p| p.backends.get(member_index))
                .map(|b| b.state);
            if state == Some(State::Unknown) {
                has_unknown = true;
            }
            let Some(backend) = config.backends.get(&member.name) else {
                problems.push(format!(
                    "frontend {}: backend {} is not in the config",
                    fe.name, member.name
                ));
                continue;
            };
            let addr = backend.address;
            if addr.is_ipv4() != backend_v4 {
                problems.push(format!(
                    "frontend {}: backend {} ({addr}) is not of the family of the others; skipped",
                    fe.name, member.name
                ));
                continue;
            }
            if is_unusable_as_address(addr) {
                problems.push(format!(
                    "frontend {}: backend {} ({addr}) lies in ::/96, which VPP takes for IPv4; it cannot be an AS",
                    fe.name, member.name
                ));
                continue;
            }
            let (weight, flush) = match member.action {
                AsAction::Weight { weight, flush } => (weight, flush),
                // A removed backend has no AS: the diff deletes it (with flush).
                AsAction::Delete { .. } => continue,
            };
            let weight = if weight > MAX_WEIGHT {
                problems.push(format!(
                    "frontend {}: backend {} weight {weight} above {MAX_WEIGHT}; using {MAX_WEIGHT}",
                    fe.name, member.name
                ));
                MAX_WEIGHT
            } else {
                weight
            };
            let next = DesiredAs {
                backend: member.name.clone(),
                weight,
                flush,
            };
            ases.entry(addr)
                .and_modify(|cur| *cur = merge(cur, &next))
                .or_insert(next);
        }
    }
    DesiredVip {
        frontend: fe.name.clone(),
        key,
        encap,
        src_ip_sticky: fe.src_ip_sticky,
        ases,
        has_unknown,
    }
}

/// One address listed twice (a backend in two pools): the highest weight wins; a zero
/// weight flushes only if every listing asks for it.
fn merge(a: &DesiredAs, b: &DesiredAs) -> DesiredAs {
    let weight = a.weight.max(b.weight);
    DesiredAs {
        backend: a.backend.clone(),
        weight,
        flush: weight == 0 && a.flush && b.flush,
    }
}
