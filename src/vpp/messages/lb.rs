//! lb plugin messages (`lb.api`, docs/vpp-wire.md §3.3): API 1.1.0 (v23.02–v26.06) and the 1.2.0
//! additions of master (`lb_conf_get`, weights). `.api` defaults are client-side sugar,
//! so the `new` constructors apply them explicitly (protocol 255, table 1024, weight 100,
//! `0xFFFFFFFF` = keep for `lb_conf`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{dumps, message, replies};
use crate::vpp::wire::schema::MessageDef;
use crate::vpp::wire::{EncapType, InterfaceIndex, IpDscp, LbVip, Prefix, PrefixMatcher, SrvType};

/// Protocol value meaning "any" (all-port VIPs; also the `.api` default).
pub const PROTOCOL_ANY: u8 = 255;
/// `lb_conf` value that keeps the current setting of a u32 field.
pub const KEEP_CURRENT: u32 = 0xFFFF_FFFF;
/// The only new-flow table length maglev ever sends (never 0: VPP would OOM,
/// docs/vpp-wire.md §3.4).
pub const DEFAULT_FLOWS_TABLE_LENGTH: u32 = 1024;
/// Default and maximum AS weight.
pub const DEFAULT_WEIGHT: u8 = 100;
/// `lb_as_details.flags` bit: the AS is in use (clear = removed, waiting for GC).
pub const AS_FLAG_USED: u8 = 1;

message! {
    /// Global settings; both source addresses are set every time.
    LbConf = "lb_conf", crc "56cd3261", Request {
        ip4_src_address: Ipv4Addr,
        ip6_src_address: Ipv6Addr,
        sticky_buckets_per_core: u32,
        flow_timeout: u32,
    }
}
message! { LbConfReply = "lb_conf_reply", crc "e8d4e804", Reply {} }
message! {
    /// 1.2.0 only; its presence in the message table marks the fixed handlers.
    LbConfGet = "lb_conf_get", crc "51077d14", Request {}
}
message! {
    LbConfGetReply = "lb_conf_get_reply", crc "923427ac", Reply {
        ip4_src_address: Ipv4Addr,
        ip6_src_address: Ipv6Addr,
        sticky_buckets_per_core: u32,
        flow_timeout: u32,
    }
}
message! {
    LbAddDelVip = "lb_add_del_vip", crc "6fa569c7", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
        encap: EncapType,
        dscp: u8,
        srv_type as "type": SrvType,
        target_port: u16,
        node_port: u16,
        new_flows_table_length: u32,
        is_del: bool,
    }
}
message! { LbAddDelVipReply = "lb_add_del_vip_reply", crc "e8d4e804", Reply {} }
message! {
    LbAddDelVipV2 = "lb_add_del_vip_v2", crc "7c520e0f", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
        encap: EncapType,
        dscp: u8,
        srv_type as "type": SrvType,
        target_port: u16,
        node_port: u16,
        new_flows_table_length: u32,
        src_ip_sticky: bool,
        is_del: bool,
    }
}
message! { LbAddDelVipV2Reply = "lb_add_del_vip_v2_reply", crc "e8d4e804", Reply {} }
message! {
    /// v1: always adds at weight 100.
    LbAddDelAs = "lb_add_del_as", crc "35d72500", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
        as_address: IpAddr,
        is_del: bool,
        is_flush: bool,
    }
}
message! { LbAddDelAsReply = "lb_add_del_as_reply", crc "e8d4e804", Reply {} }
message! {
    LbAddDelAsV2 = "lb_add_del_as_v2", crc "2f1d3b0e", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
        as_address: IpAddr,
        weight: u8,
        is_del: bool,
        is_flush: bool,
    }
}
message! { LbAddDelAsV2Reply = "lb_add_del_as_v2_reply", crc "e8d4e804", Reply {} }
message! {
    LbAsSetWeight = "lb_as_set_weight", crc "2d89bdbd", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
        as_address: IpAddr,
        weight: u8,
        is_flush: bool,
    }
}
message! { LbAsSetWeightReply = "lb_as_set_weight_reply", crc "e8d4e804", Reply {} }
message! {
    /// Always answers 0, even for a missing VIP (docs/vpp-wire.md §3.4): check existence first.
    LbFlushVip = "lb_flush_vip", crc "1063f819", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
    }
}
message! { LbFlushVipReply = "lb_flush_vip_reply", crc "e8d4e804", Reply {} }
message! {
    /// Filters are ignored by VPP: every VIP is returned.
    LbVipDump = "lb_vip_dump", crc "56110cb7", Request {
        pfx: Prefix,
        pfx_matcher: PrefixMatcher,
        protocol: u8,
        port: u16,
    }
}
message! {
    LbVipDetails = "lb_vip_details", crc "1329ec9b", ContextOnly {
        vip: LbVip,
        encap: EncapType,
        dscp: IpDscp,
        srv_type: SrvType,
        target_port: u16,
        flow_table_length: u16,
    }
}
message! {
    /// An all-zero prefix dumps the ASes of every VIP; an IPv4 filter never matches
    /// (docs/vpp-wire.md §3.4).
    LbAsDump = "lb_as_dump", crc "1063f819", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
    }
}
message! {
    LbAsDetails = "lb_as_details", crc "8d24c29e", ContextOnly {
        vip: LbVip,
        app_srv: IpAddr,
        flags: u8,
        in_use_since: u32,
    }
}
message! {
    LbAsV2Dump = "lb_as_v2_dump", crc "1063f819", Request {
        pfx: Prefix,
        protocol: u8,
        port: u16,
    }
}
message! {
    LbAsV2Details = "lb_as_v2_details", crc "90064aae", ContextOnly {
        vip: LbVip,
        app_srv: IpAddr,
        flags: u8,
        in_use_since: u32,
        weight: u8,
        num_buckets: u32,
    }
}
message! {
    LbAddDelIntfNat4 = "lb_add_del_intf_nat4", crc "47d6e753", Request {
        is_add: bool,
        sw_if_index: InterfaceIndex,
    }
}
message! { LbAddDelIntfNat4Reply = "lb_add_del_intf_nat4_reply", crc "e8d4e804", Reply {} }
message! {
    LbAddDelIntfNat6 = "lb_add_del_intf_nat6", crc "47d6e753", Request {
        is_add: bool,
        sw_if_index: InterfaceIndex,
    }
}
message! { LbAddDelIntfNat6Reply = "lb_add_del_intf_nat6_reply", crc "e8d4e804", Reply {} }

replies! {
    LbConf => LbConfReply,
    LbConfGet => LbConfGetReply,
    LbAddDelVip => LbAddDelVipReply,
    LbAddDelVipV2 => LbAddDelVipV2Reply,
    LbAddDelAs => LbAddDelAsReply,
    LbAddDelAsV2 => LbAddDelAsV2Reply,
    LbAsSetWeight => LbAsSetWeightReply,
    LbFlushVip => LbFlushVipReply,
    LbAddDelIntfNat4 => LbAddDelIntfNat4Reply,
    LbAddDelIntfNat6 => LbAddDelIntfNat6Reply,
}
dumps! {
    LbVipDump => LbVipDetails,
    LbAsDump => LbAsDetails,
    LbAsV2Dump => LbAsV2Details,
}

impl LbConf {
    /// Sets both source addresses and keeps the current buckets and timeout.
    pub fn new(ip4_src_address: Ipv4Addr, ip6_src_address: Ipv6Addr) -> Self {
        Self {
            ip4_src_address,
            ip6_src_address,
            sticky_buckets_per_core: KEEP_CURRENT,
            flow_timeout: KEEP_CURRENT,
        }
    }
}

impl LbAddDelVipV2 {
    /// Adds a VIP with the `.api` defaults: no dscp/NAT fields, table length 1024.
    /// `port == 0` makes an all-port VIP (protocol forced to 255).
    pub fn add(pfx: Prefix, protocol: u8, port: u16, encap: EncapType) -> Self {
        Self {
            pfx,
            protocol: if port == 0 { PROTOCOL_ANY } else { protocol },
            port,
            encap,
            dscp: 0,
            srv_type: SrvType::CLUSTERIP,
            target_port: 0,
            node_port: 0,
            new_flows_table_length: DEFAULT_FLOWS_TABLE_LENGTH,
            src_ip_sticky: false,
            is_del: false,
        }
    }

    /// Deletes the VIP with this key.
    pub fn delete(pfx: Prefix, protocol: u8, port: u16) -> Self {
        Self {
            is_del: true,
            ..Self::add(pfx, protocol, port, EncapType::GRE4)
        }
    }
}

impl LbVipDump {
    /// Dump everything (VPP ignores the filter anyway).
    pub fn all() -> Self {
        Self {
            pfx: Prefix::unspecified(),
            pfx_matcher: PrefixMatcher::default(),
            protocol: PROTOCOL_ANY,
            port: 0,
        }
    }
}

impl LbAsDump {
    /// ASes of every VIP.
    pub fn all() -> Self {
        Self {
            pfx: Prefix::unspecified(),
            protocol: 0,
            port: 0,
        }
    }
}

impl LbAsV2Dump {
    /// ASes of every VIP.
    pub fn all() -> Self {
        Self {
            pfx: Prefix::unspecified(),
            protocol: 0,
            port: 0,
        }
    }
}

pub(crate) fn definitions() -> Vec<MessageDef> {
    vec![
        MessageDef::of::<LbConf>(),
        MessageDef::of::<LbConfReply>(),
        MessageDef::of::<LbConfGet>(),
        MessageDef::of::<LbConfGetReply>(),
        MessageDef::of::<LbAddDelVip>(),
        MessageDef::of::<LbAddDelVipReply>(),
        MessageDef::of::<LbAddDelVipV2>(),
        MessageDef::of::<LbAddDelVipV2Reply>(),
        MessageDef::of::<LbAddDelAs>(),
        MessageDef::of::<LbAddDelAsReply>(),
        MessageDef::of::<LbAddDelAsV2>(),
        MessageDef::of::<LbAddDelAsV2Reply>(),
        MessageDef::of::<LbAsSetWeight>(),
        MessageDef::of::<LbAsSetWeightReply>(),
        MessageDef::of::<LbFlushVip>(),
        MessageDef::of::<LbFlushVipReply>(),
        MessageDef::of::<LbVipDump>(),
        MessageDef::of::<LbVipDetails>(),
        MessageDef::of::<LbAsDump>(),
        MessageDef::of::<LbAsDetails>(),
        MessageDef::of::<LbAsV2Dump>(),
        MessageDef::of::<LbAsV2Details>(),
        MessageDef::of::<LbAddDelIntfNat4>(),
        MessageDef::of::<LbAddDelIntfNat4Reply>(),
        MessageDef::of::<LbAddDelIntfNat6>(),
        MessageDef::of::<LbAddDelIntfNat6Reply>(),
    ]
}
