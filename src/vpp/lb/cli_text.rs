//! Parser for the text of `show lb vips verbose` (docs/vpp-wire.md §3.5, §3.6): the only place
//! VPP tells a VIP's pool index and whether it is src-ip-sticky. Accepts both the master
//! format (`weight:<w> buckets:<n> flows:<n>`) and the 26.06 one (`<n> buckets <n> flows`),
//! `\r\n` line ends and leading indentation.
//!
//! ```text
//! ip4-gre4 [1] 192.0.2.1/32 src_ip_sticky
//!   new_size:1024
//!   protocol:6 port:80
//!   counters:
//!     packet from existing sessions: 0
//!     ...
//!   #as:2
//!     10.0.0.1 weight:100 buckets:512 flows:0 dpo:1 used
//!     10.0.0.2 512 buckets   0 flows  dpo:2 removed
//! ```

use std::net::IpAddr;

use super::VipKey;
use crate::vpp::messages::lb::PROTOCOL_ANY;
use crate::vpp::wire::{EncapType, Prefix};

/// One AS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliAs {
    pub address: IpAddr,
    /// Master only.
    pub weight: Option<u8>,
    pub buckets: Option<u32>,
    pub flows: Option<u64>,
    /// `used` (true) or `removed` (false).
    pub used: bool,
}

/// One VIP block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliVip {
    /// `ip4-gre4`, `ip6-gre6`, ...
    pub vip_type: String,
    /// Pool index (stats counters are keyed by it).
    pub index: u32,
    pub prefix: Prefix,
    pub src_ip_sticky: bool,
    /// Listed with ` removed` (26.06 still shows deleted VIPs).
    pub removed: bool,
    pub new_size: Option<u32>,
    /// Per-port VIPs only.
    pub protocol: Option<u8>,
    pub port: Option<u16>,
    pub ases: Vec<CliAs>,
}

impl CliVip {
    /// The VIP this block lists (a block without `protocol:` is an all-port VIP).
    pub fn key(&self) -> VipKey {
        VipKey::new(
            self.prefix,
            self.protocol.unwrap_or(PROTOCOL_ANY),
            self.port.unwrap_or(0),
        )
    }

    /// The encap, from the type name's tunnel part (`ip4-gre6` -> gre6).
    pub fn encap(&self) -> Option<EncapType> {
        let (_, tunnel) = self.vip_type.split_once('-')?;
        Some(match tunnel {
            "gre4" => EncapType::GRE4,
            "gre6" => EncapType::GRE6,
            "l3dsr" => EncapType::L3DSR,
            "nat4" => EncapType::NAT4,
            "nat6" => EncapType::NAT6,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show lb vips verbose, line {line}: {reason}: {text:?}")]
pub struct CliParseError {
    pub line: usize,
    pub reason: String,
    pub text: String,
}

const VIP_TYPES: [&str; 7] = [
    "ip4-gre4",
    "ip4-gre6",
    "ip6-gre4",
    "ip6-gre6",
    "ip4-l3dsr",
    "ip4-nat4",
    "ip6-nat6",
];

/// Parses the whole output. Lines it does not model (counters) are skipped; a line that
/// looks like a VIP or AS line but does not parse is an error, so that a changed format
/// is noticed instead of silently misread.
pub fn parse_show_lb_vips_verbose(text: &str) -> Result<Vec<CliVip>, CliParseError> {
    let mut vips: Vec<CliVip> = Vec::new();
    let mut in_as_list = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |reason: &str| CliParseError {
            line: i + 1,
            reason: reason.to_string(),
            text: line.to_string(),
        };
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if VIP_TYPES.contains(&first) {
            vips.push(parse_vip_header(first, words).map_err(|r| err(&r))?);
            in_as_list = false;
            continue;
        }
        let Some(vip) = vips.last_mut() else {
            // Anything before the first VIP (nothing in known versions) is not ours.
            continue;
        };
        if let Some(n) = first.strip_prefix("new_size:") {
            vip.new_size = Some(n.parse().map_err(|_| err("bad new_size"))?);
        } else if let Some(p) = first.strip_prefix("protocol:") {
            vip.protocol = Some(p.parse().map_err(|_| err("bad protocol"))?);
            let port = words
                .next()
                .and_then(|w| w.strip_prefix("port:"))
                .ok_or_else(|| err("protocol without port"))?;
            vip.port = Some(port.parse().map_err(|_| err("bad port"))?);
        } else if first.starts_with("#as:") {
            in_as_list = true;
        } else if in_as_list && let Ok(address) = first.parse::<IpAddr>() {
            vip.ases
                .push(parse_as(address, words).map_err(|r| err(&r))?);
        }
    }
    Ok(vips)
}

fn parse_vip_header<'a>(
    vip_type: &str,
    mut words: impl Iterator<Item = &'a str>,
) -> Result<CliVip, String> {
    let index = words
        .next()
        .and_then(|w| w.strip_prefix('['))
        .and_then(|w| w.strip_suffix(']'))
        .and_then(|w| w.parse().ok())
        .ok_or("no [pool-index]")?;
    let prefix = words.next().and_then(parse_prefix).ok_or("no prefix")?;
    let mut vip = CliVip {
        vip_type: vip_type.to_string(),
        index,
        prefix,
        src_ip_sticky: false,
        removed: false,
        new_size: None,
        protocol: None,
        port: None,
        ases: Vec::new(),
    };
    for flag in words {
        match flag {
            "src_ip_sticky" => vip.src_ip_sticky = true,
            "removed" => vip.removed = true,
            other => return Err(format!("unknown VIP flag {other:?}")),
        }
    }
    Ok(vip)
}

fn parse_prefix(s: &str) -> Option<Prefix> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some(Prefix::new(addr, len))
}

fn parse_as<'a>(address: IpAddr, words: impl Iterator<Item = &'a str>) -> Result<CliAs, String> {
    let mut out = CliAs {
        address,
        weight: None,
        buckets: None,
        flows: None,
        used: false,
    };
    let mut state = None;
    // 26.06 writes the number before its name ("512 buckets"); master after ("buckets:512").
    let mut number: Option<&str> = None;
    for w in words {
        let bad = || format!("bad AS field {w:?}");
        if let Some((name, value)) = w.split_once(':') {
            match name {
                "weight" => out.weight = Some(value.parse().map_err(|_| bad())?),
                "buckets" => out.buckets = Some(value.parse().map_err(|_| bad())?),
                "flows" => out.flows = Some(value.parse().map_err(|_| bad())?),
                _ => {} // dpo:<i> and anything newer
            }
        } else {
            match w {
                "buckets" => {
                    out.buckets = Some(number.take().ok_or_else(bad)?.parse().map_err(|_| bad())?)
                }
                "flows" => {
                    out.flows = Some(number.take().ok_or_else(bad)?.parse().map_err(|_| bad())?)
                }
                "used" => state = Some(true),
                "removed" => state = Some(false),
                n if n.bytes().all(|b| b.is_ascii_digit()) => number = Some(n),
                _ => return Err(bad()),
            }
        }
    }
    out.used = state.ok_or("AS line without used/removed")?;
    Ok(out)
}
