//! The lb plugin state maglev wants, the state VPP has, and the ordered list of writes
//! that turns one into the other (docs/design.md §7). Pure: no I/O, no clock.
//!
//! - [`desired`]: config + frontend views (effective weights) -> [`DesiredState`].
//! - [`actual`]: what the VPP reads returned -> [`ActualState`], correcting the fields a
//!   1.1.0 VPP reports wrongly (docs/vpp-wire.md §3.5).
//! - [`cli_text`]: parser for `show lb vips verbose` (src-ip-sticky and pool index are not
//!   in any dump).
//! - [`diff`]: desired vs actual -> [`LbDiff`], in the deterministic order several
//!   daemons must share.

pub mod actual;
pub mod cli_text;
pub mod desired;
pub mod diff;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::vpp::messages::lb::PROTOCOL_ANY;
use crate::vpp::wire::{EncapType, Prefix};

pub use actual::{ActualAs, ActualState, ActualVip, ReadError};
pub use cli_text::{CliAs, CliParseError, CliVip, parse_show_lb_vips_verbose};
pub use desired::{
    DesiredAs, DesiredState, DesiredVip, desired_now, desired_of, desired_state, vip_key,
};
pub use diff::{LbDiff, LbOp, Scope, WeightMode, diff};

/// How VPP finds a VIP: prefix with host bits cleared, protocol (255 for an all-port
/// VIP, whatever was asked), port (0 = all ports). Ordered by address (IPv4 first), then
/// length, protocol, port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipKey {
    pub prefix: Prefix,
    pub protocol: u8,
    pub port: u16,
}

impl VipKey {
    pub fn new(prefix: Prefix, protocol: u8, port: u16) -> Self {
        VipKey {
            prefix: prefix.normalized(),
            protocol: if port == 0 { PROTOCOL_ANY } else { protocol },
            port,
        }
    }
}

impl fmt::Display for VipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 0 {
            write!(f, "{} all-ports", self.prefix)
        } else {
            write!(
                f,
                "{} {}/{}",
                self.prefix,
                protocol_name(self.protocol),
                self.port
            )
        }
    }
}

/// "tcp", "udp", "any" or the number.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        6 => "tcp".into(),
        17 => "udp".into(),
        PROTOCOL_ANY => "any".into(),
        n => n.to_string(),
    }
}

/// "gre4", "gre6", "l3dsr", "nat4", "nat6" or the number.
pub fn encap_name(encap: EncapType) -> String {
    match encap {
        EncapType::GRE4 => "gre4".into(),
        EncapType::GRE6 => "gre6".into(),
        EncapType::L3DSR => "l3dsr".into(),
        EncapType::NAT4 => "nat4".into(),
        EncapType::NAT6 => "nat6".into(),
        EncapType(n) => n.to_string(),
    }
}

/// The global lb settings (`lb_conf` / `lb_conf_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConfValues {
    pub ip4_src_address: Ipv4Addr,
    pub ip6_src_address: Ipv6Addr,
    pub sticky_buckets_per_core: u32,
    /// Seconds.
    pub flow_timeout: u32,
}

impl fmt::Display for LbConfValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ip4-src {} ip6-src {} buckets {} timeout {}s",
            self.ip4_src_address,
            self.ip6_src_address,
            self.sticky_buckets_per_core,
            self.flow_timeout
        )
    }
}

/// VPP's `ip46_address_is_ip4` takes any IPv6 address whose first 96 bits are zero for
/// IPv4 (docs/vpp-wire.md §3.4): such an address can never be an AS.
pub fn is_unusable_as_address(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if u128::from(v6) >> 32 == 0)
}

#[cfg(test)]
mod tests;
