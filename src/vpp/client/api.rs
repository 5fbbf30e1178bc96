//! Typed calls on top of [`Client`]: vpe (version, CLI, ping) and lb. Requests that VPP
//! would accept but misbehave on (docs/vpp-wire.md §3.4) are refused client-side with
//! [`VppError::Invalid`]; on lb API 1.1.0 the IPv4 `len + 96` quirk is applied on the
//! way out and undone on the way back (docs/vpp-wire.md §3.5).

use std::net::IpAddr;

use super::conn::Client;
use super::error::{ApiErrorCode, VppError};
use super::table::LbApiGeneration;
use crate::vpp::messages::ip::{IpRoute, IpRouteLookup};
use crate::vpp::messages::lb::*;
use crate::vpp::messages::memclnt::ControlPing;
use crate::vpp::messages::vpe::{CliInband, ShowVersion};
use crate::vpp::wire::{EncapType, LbVip, Prefix, VlaString};

/// `show_version_reply`, as plain strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub program: String,
    pub version: String,
    pub build_date: String,
    pub build_directory: String,
}

/// One AS of one VIP, from whichever AS dump the running VPP offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbAsEntry {
    pub vip: LbVip,
    pub address: IpAddr,
    /// `LB_AS_FLAGS_USED`; false = deleted, waiting for garbage collection.
    pub used: bool,
    pub in_use_since: u32,
    /// `None` on lb API 1.1.0 (every AS weighs 100 there).
    pub weight: Option<u8>,
    pub num_buckets: Option<u32>,
}

impl Client {
    pub async fn show_version(&self) -> Result<VersionInfo, VppError> {
        let r = self.call(&ShowVersion {}).await?;
        Ok(VersionInfo {
            program: r.program.0,
            version: r.version.0,
            build_date: r.build_date.0,
            build_directory: r.build_directory.0,
        })
    }

    /// Pings VPP and returns its pid (changes when VPP restarts).
    pub async fn control_ping(&self) -> Result<u32, VppError> {
        Ok(self.call(&ControlPing {}).await?.vpe_pid)
    }

    /// Runs a CLI command. A non-zero retval is an error carrying VPP's text.
    pub async fn cli_inband(&self, cmd: &str) -> Result<String, VppError> {
        let (header, reply) = self
            .call_raw(&CliInband {
                cmd: VlaString::new(cmd),
            })
            .await?;
        if header.retval != 0 {
            return Err(VppError::Cli {
                cmd: cmd.to_string(),
                code: ApiErrorCode(header.retval),
                output: reply.reply.0,
            });
        }
        Ok(reply.reply.0)
    }

    /// Current lb settings (lb API 1.2.0 only).
    pub async fn lb_conf_get(&self) -> Result<LbConfGetReply, VppError> {
        self.call(&LbConfGet {}).await
    }

    pub async fn lb_conf(&self, msg: &LbConf) -> Result<(), VppError> {
        validate_conf(msg)?;
        self.call(msg).await.map(drop)
    }

    /// Every VIP (VPP ignores dump filters). On 1.1.0 the prefix length is normalised;
    /// protocol, encap and table length read back wrong there (docs/vpp-wire.md §3.5).
    pub async fn lb_vip_dump(&self) -> Result<Vec<LbVipDetails>, VppError> {
        let mut vips = self.dump(&LbVipDump::all()).await?;
        if self.generation() == LbApiGeneration::Legacy {
            for v in &mut vips {
                v.vip.pfx = from_legacy_prefix(v.vip.pfx);
            }
        }
        Ok(vips)
    }

    /// ASes of every VIP with weights (lb API 1.2.0). Filter client-side: an IPv4 filter
    /// never matches in VPP.
    pub async fn lb_as_v2_dump(&self) -> Result<Vec<LbAsV2Details>, VppError> {
        self.dump(&LbAsV2Dump::all()).await
    }

    /// ASes of every VIP without weights (all versions).
    pub async fn lb_as_dump(&self) -> Result<Vec<LbAsDetails>, VppError> {
        let mut ases = self.dump(&LbAsDump::all()).await?;
        if self.generation() == LbApiGeneration::Legacy {
            for a in &mut ases {
                a.vip.pfx = from_legacy_prefix(a.vip.pfx);
            }
        }
        Ok(ases)
    }

    /// ASes of every VIP through the best dump this VPP has.
    pub async fn lb_as_entries(&self) -> Result<Vec<LbAsEntry>, VppError> {
        if self.supports::<LbAsV2Dump>() {
            let ases = self.lb_as_v2_dump().await?;
            return Ok(ases
                .into_iter()
                .map(|a| LbAsEntry {
                    vip: a.vip,
                    address: a.app_srv,
                    used: a.flags & AS_FLAG_USED != 0,
                    in_use_since: a.in_use_since,
                    weight: Some(a.weight),
                    num_buckets: Some(a.num_buckets),
                })
                .collect());
        }
        let ases = self.lb_as_dump().await?;
        Ok(ases
            .into_iter()
            .map(|a| LbAsEntry {
                vip: a.vip,
                address: a.app_srv,
                used: a.flags & AS_FLAG_USED != 0,
                in_use_since: a.in_use_since,
                weight: None,
                num_buckets: None,
            })
            .collect())
    }

    /// Adds or deletes a VIP (`lb_add_del_vip_v2`, VPP >= 23.02).
    pub async fn lb_add_del_vip_v2(&self, msg: &LbAddDelVipV2) -> Result<(), VppError> {
        validate_vip(msg)?;
        let mut msg = msg.clone();
        if self.generation() == LbApiGeneration::Legacy {
            if !msg.is_del && msg.encap != EncapType::GRE4 {
                return Err(VppError::Invalid(format!(
                    "encap {} is misread by lb API 1.1.0 (only gre4 works before VPP 26.10)",
                    msg.encap.0
                )));
            }
            msg.pfx = to_legacy_prefix(msg.pfx);
        }
        self.call(&msg).await.map(drop)
    }

    /// Adds, revives (with a weight) or deletes an AS (lb API 1.2.0).
    pub async fn lb_add_del_as_v2(&self, msg: &LbAddDelAsV2) -> Result<(), VppError> {
        validate_weight(msg.weight)?;
        if !msg.is_del {
            validate_as_address(msg.as_address)?;
        }
        self.call(msg).await.map(drop)
    }

    /// Adds (at weight 100) or deletes an AS (all versions).
    pub async fn lb_add_del_as(&self, msg: &LbAddDelAs) -> Result<(), VppError> {
        if !msg.is_del {
            validate_as_address(msg.as_address)?;
        }
        let mut msg = msg.clone();
        if self.generation() == LbApiGeneration::Legacy {
            msg.pfx = to_legacy_prefix(msg.pfx);
        }
        self.call(&msg).await.map(drop)
    }

    /// Changes the weight of a live AS (lb API 1.2.0); -6 if the AS is missing or removed.
    pub async fn lb_as_set_weight(&self, msg: &LbAsSetWeight) -> Result<(), VppError> {
        validate_weight(msg.weight)?;
        self.call(msg).await.map(drop)
    }

    /// Flushes the VIP's sticky entries. VPP answers 0 even for a missing VIP.
    pub async fn lb_flush_vip(&self, msg: &LbFlushVip) -> Result<(), VppError> {
        let mut msg = msg.clone();
        if self.generation() == LbApiGeneration::Legacy {
            msg.pfx = to_legacy_prefix(msg.pfx);
        }
        self.call(&msg).await.map(drop)
    }

    pub async fn lb_add_del_intf_nat4(&self, msg: &LbAddDelIntfNat4) -> Result<(), VppError> {
        self.call(msg).await.map(drop)
    }

    pub async fn lb_add_del_intf_nat6(&self, msg: &LbAddDelIntfNat6) -> Result<(), VppError> {
        self.call(msg).await.map(drop)
    }

    /// The FIB entry of exactly `prefix` in table `table_id` (0 = default VRF); `None`
    /// when there is none (`NO_SUCH_ENTRY`). Its `stats_index` keys `/net/route/to`.
    pub async fn ip_route_lookup(
        &self,
        table_id: u32,
        prefix: Prefix,
    ) -> Result<Option<IpRoute>, VppError> {
        match self.call(&IpRouteLookup::exact(table_id, prefix)).await {
            Ok(reply) => Ok(Some(reply.route)),
            Err(VppError::Api { code, .. }) if code == ApiErrorCode::NO_SUCH_ENTRY => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// lb API 1.1.0 wants IPv4 prefix lengths in the internal ip46 form (`len + 96`).
pub(crate) fn to_legacy_prefix(p: Prefix) -> Prefix {
    match p.addr {
        IpAddr::V4(_) if p.len <= 32 => Prefix::new(p.addr, p.len + 96),
        _ => p,
    }
}

/// Undoes [`to_legacy_prefix`] on what a 1.1.0 dump returns.
pub(crate) fn from_legacy_prefix(p: Prefix) -> Prefix {
    match p.addr {
        IpAddr::V4(_) if p.len >= 96 => Prefix::new(p.addr, p.len - 96),
        _ => p,
    }
}

fn invalid(msg: String) -> VppError {
    VppError::Invalid(msg)
}

fn validate_conf(msg: &LbConf) -> Result<(), VppError> {
    let b = msg.sticky_buckets_per_core;
    if b != KEEP_CURRENT && !(b.is_power_of_two()) {
        // 0 would be taken as a power of two by VPP and crash it.
        return Err(invalid(format!(
            "sticky_buckets_per_core {b} is not a non-zero power of two"
        )));
    }
    Ok(())
}

fn validate_vip(msg: &LbAddDelVipV2) -> Result<(), VppError> {
    let max_len = if msg.pfx.addr.is_ipv4() { 32 } else { 128 };
    if msg.pfx.len > max_len {
        return Err(invalid(format!(
            "prefix length {} too long for {}",
            msg.pfx.len, msg.pfx.addr
        )));
    }
    if msg.is_del {
        return Ok(());
    }
    let n = msg.new_flows_table_length;
    if !n.is_power_of_two() {
        // is_pow2(0) is true inside VPP: a 0 here makes VPP allocate 4 G entries and die.
        return Err(invalid(format!(
            "new_flows_table_length {n} is not a non-zero power of two"
        )));
    }
    let ok = match msg.pfx.addr {
        IpAddr::V4(_) => matches!(
            msg.encap,
            EncapType::GRE4 | EncapType::GRE6 | EncapType::L3DSR | EncapType::NAT4
        ),
        // VPP silently creates ip6-gre6 for an IPv6 VIP with l3dsr/nat4.
        IpAddr::V6(_) => matches!(
            msg.encap,
            EncapType::GRE4 | EncapType::GRE6 | EncapType::NAT6
        ),
    };
    if !ok {
        return Err(invalid(format!(
            "encap {} is not valid for VIP {}",
            msg.encap.0, msg.pfx
        )));
    }
    if msg.encap == EncapType::L3DSR && msg.dscp >= 64 {
        return Err(invalid(format!("dscp {} must be below 64", msg.dscp)));
    }
    Ok(())
}

fn validate_weight(weight: u8) -> Result<(), VppError> {
    // The API handlers do not check this; the CLI does.
    if weight > DEFAULT_WEIGHT {
        return Err(invalid(format!("weight {weight} exceeds 100")));
    }
    Ok(())
}

fn validate_as_address(addr: IpAddr) -> Result<(), VppError> {
    // VPP takes any address in ::/96 for IPv4 (ip46_address_is_ip4), so such an IPv6 AS
    // can never be programmed.
    if let IpAddr::V6(v6) = addr
        && u128::from(v6) >> 32 == 0
    {
        return Err(invalid(format!(
            "AS {addr} lies in ::/96, which VPP mistakes for IPv4; it cannot be an AS"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(addr: &str, len: u8, encap: EncapType) -> LbAddDelVipV2 {
        LbAddDelVipV2::add(Prefix::new(addr.parse().unwrap(), len), 6, 80, encap)
    }

    #[test]
    fn vip_validation_catches_vpp_traps() {
        assert!(validate_vip(&vip("192.0.2.1", 32, EncapType::GRE4)).is_ok());
        assert!(validate_vip(&vip("2001:db8::1", 128, EncapType::NAT6)).is_ok());
        let mut zero = vip("192.0.2.1", 32, EncapType::GRE4);
        zero.new_flows_table_length = 0;
        assert!(validate_vip(&zero).is_err());
        let mut odd = vip("192.0.2.1", 32, EncapType::GRE4);
        odd.new_flows_table_length = 1000;
        assert!(validate_vip(&odd).is_err());
        assert!(validate_vip(&vip("2001:db8::1", 128, EncapType::L3DSR)).is_err());
        assert!(validate_vip(&vip("192.0.2.1", 32, EncapType::NAT6)).is_err());
        assert!(validate_vip(&vip("192.0.2.1", 33, EncapType::GRE4)).is_err());
        let mut dscp = vip("192.0.2.1", 32, EncapType::L3DSR);
        dscp.dscp = 64;
        assert!(validate_vip(&dscp).is_err());
    }

    #[test]
    fn as_validation() {
        assert!(validate_weight(100).is_ok());
        assert!(validate_weight(101).is_err());
        assert!(validate_as_address("::1".parse().unwrap()).is_err());
        assert!(validate_as_address("::192.0.2.5".parse().unwrap()).is_err());
        assert!(validate_as_address("2001:db8::1".parse().unwrap()).is_ok());
        assert!(validate_as_address("10.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn legacy_prefix_roundtrip() {
        let v4 = Prefix::new("192.0.2.1".parse().unwrap(), 32);
        assert_eq!(to_legacy_prefix(v4).len, 128);
        assert_eq!(from_legacy_prefix(to_legacy_prefix(v4)), v4);
        let v6 = Prefix::new("2001:db8::".parse().unwrap(), 64);
        assert_eq!(to_legacy_prefix(v6), v6);
        assert_eq!(from_legacy_prefix(v6), v6);
    }

    #[test]
    fn conf_validation() {
        let mut c = LbConf::new([0; 4].into(), [0; 16].into());
        assert!(validate_conf(&c).is_ok());
        c.sticky_buckets_per_core = 0;
        assert!(validate_conf(&c).is_err());
        c.sticky_buckets_per_core = 1024;
        assert!(validate_conf(&c).is_ok());
    }
}
