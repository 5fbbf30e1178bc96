//! ip.api: `ip_route_lookup`, whose reply carries the FIB entry's `stats_index` into the
//! `/net/route/to` combined counters (docs/vpp-wire.md §1.11, §4.6). The fib types are declared
//! exactly as in `fib_types.api` 2.0.x so that the reply's CRC check covers them.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

use super::{message, replies};
use crate::vpp::wire::schema::MessageDef;
use crate::vpp::wire::{Prefix, Reader, WireError, WireType, decode_counted};

/// Number of MPLS labels in every `fib_path` (a fixed array on the wire).
pub const FIB_PATH_LABELS: usize = 16;
/// `stats_index` VPP reports when a route has no counters (`INDEX_INVALID`).
pub const STATS_INDEX_INVALID: u32 = u32::MAX;

/// `vl_api_prefix_t` (18 bytes). Same layout as [`Prefix`], but a different `.api` type
/// (it counts for the CRC, and vpp-papi reads it as a network, host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FibPrefix(pub Prefix);

impl WireType for FibPrefix {
    const API_TYPE: &'static str = "vl_api_prefix_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.0.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self(Prefix::decode(r)?))
    }
}

/// `vl_api_address_union_t` without its family: the raw 16 bytes (IPv4 in bytes 0..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddressUnion(pub [u8; 16]);

impl AddressUnion {
    pub fn ip4(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[0], self.0[1], self.0[2], self.0[3])
    }

    pub fn ip6(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.0)
    }
}

impl From<Ipv4Addr> for AddressUnion {
    fn from(a: Ipv4Addr) -> Self {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&a.octets());
        Self(raw)
    }
}

impl From<Ipv6Addr> for AddressUnion {
    fn from(a: Ipv6Addr) -> Self {
        Self(a.octets())
    }
}

/// Both readings of the union, as vpp-papi unpacks it.
impl Serialize for AddressUnion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("ip4", &self.ip4().to_string())?;
        map.serialize_entry("ip6", &self.ip6().to_string())?;
        map.end()
    }
}

impl WireType for AddressUnion {
    const API_TYPE: &'static str = "vl_api_address_union_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self(r.array()?))
    }
}

/// Declares a u32 newtype for a `.api` enum (kept raw: VPP may add values).
macro_rules! raw_enum {
    ($(#[$m:meta])* $name:ident = $api:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl WireType for $name {
            const API_TYPE: &'static str = $api;
            fn encode(&self, buf: &mut Vec<u8>) {
                self.0.encode(buf);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(Self(r.u32()?))
            }
        }
    };
}

raw_enum!(
    /// `vl_api_fib_path_type_t` (u32): NORMAL=0, LOCAL, DROP, ...
    FibPathType = "vl_api_fib_path_type_t"
);
raw_enum!(
    /// `vl_api_fib_path_flags_t` (u32).
    FibPathFlags = "vl_api_fib_path_flags_t"
);
raw_enum!(
    /// `vl_api_fib_path_nh_proto_t` (u32): IP4=0, IP6=1, MPLS, ETHERNET, BIER.
    FibPathNhProto = "vl_api_fib_path_nh_proto_t"
);

/// `vl_api_fib_mpls_label_t` (7 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FibMplsLabel {
    pub is_uniform: u8,
    pub label: u32,
    pub ttl: u8,
    pub exp: u8,
}

impl WireType for FibMplsLabel {
    const API_TYPE: &'static str = "vl_api_fib_mpls_label_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.is_uniform.encode(buf);
        self.label.encode(buf);
        self.ttl.encode(buf);
        self.exp.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            is_uniform: r.u8()?,
            label: r.u32()?,
            ttl: r.u8()?,
            exp: r.u8()?,
        })
    }
}

/// `vl_api_fib_path_nh_t` (28 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FibPathNh {
    pub address: AddressUnion,
    pub via_label: u32,
    pub obj_id: u32,
    pub classify_table_index: u32,
}

impl WireType for FibPathNh {
    const API_TYPE: &'static str = "vl_api_fib_path_nh_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.address.encode(buf);
        self.via_label.encode(buf);
        self.obj_id.encode(buf);
        self.classify_table_index.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            address: AddressUnion::decode(r)?,
            via_label: r.u32()?,
            obj_id: r.u32()?,
            classify_table_index: r.u32()?,
        })
    }
}

/// `vl_api_fib_path_t` (167 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FibPath {
    pub sw_if_index: u32,
    pub table_id: u32,
    pub rpf_id: u32,
    pub weight: u8,
    pub preference: u8,
    #[serde(rename = "type")]
    pub path_type: FibPathType,
    pub flags: FibPathFlags,
    pub proto: FibPathNhProto,
    pub nh: FibPathNh,
    pub n_labels: u8,
    pub label_stack: [FibMplsLabel; FIB_PATH_LABELS],
}

impl WireType for FibPath {
    const API_TYPE: &'static str = "vl_api_fib_path_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.sw_if_index.encode(buf);
        self.table_id.encode(buf);
        self.rpf_id.encode(buf);
        self.weight.encode(buf);
        self.preference.encode(buf);
        self.path_type.encode(buf);
        self.flags.encode(buf);
        self.proto.encode(buf);
        self.nh.encode(buf);
        self.n_labels.encode(buf);
        for label in &self.label_stack {
            label.encode(buf);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut path = Self {
            sw_if_index: r.u32()?,
            table_id: r.u32()?,
            rpf_id: r.u32()?,
            weight: r.u8()?,
            preference: r.u8()?,
            path_type: FibPathType::decode(r)?,
            flags: FibPathFlags::decode(r)?,
            proto: FibPathNhProto::decode(r)?,
            nh: FibPathNh::decode(r)?,
            n_labels: r.u8()?,
            label_stack: [FibMplsLabel::default(); FIB_PATH_LABELS],
        };
        for label in &mut path.label_stack {
            *label = FibMplsLabel::decode(r)?;
        }
        Ok(path)
    }
}

/// `vl_api_ip_route_t`: the route and its paths (`paths[n_paths]`, last on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpRoute {
    pub table_id: u32,
    /// Index into `/net/route/to` (and `/net/route/via`); [`STATS_INDEX_INVALID`] if none.
    pub stats_index: u32,
    pub prefix: FibPrefix,
    pub n_paths: u8,
    pub paths: Vec<FibPath>,
}

impl WireType for IpRoute {
    const API_TYPE: &'static str = "vl_api_ip_route_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.table_id.encode(buf);
        self.stats_index.encode(buf);
        self.prefix.encode(buf);
        self.n_paths.encode(buf);
        for path in self.paths.iter().take(usize::from(self.n_paths)) {
            path.encode(buf);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let table_id = r.u32()?;
        let stats_index = r.u32()?;
        let prefix = FibPrefix::decode(r)?;
        let n_paths = r.u8()?;
        let paths = decode_counted(r, usize::from(n_paths), "paths")?;
        Ok(Self {
            table_id,
            stats_index,
            prefix,
            n_paths,
            paths,
        })
    }
}

message! {
    /// Looks up the FIB entry for `prefix` in `table_id`: `exact = 1` wants that very
    /// prefix (the VIP's host route), `0` a longest-prefix match.
    IpRouteLookup = "ip_route_lookup", crc "710d6471", Request {
        table_id: u32,
        exact: u8,
        prefix: FibPrefix,
    }
}
message! {
    /// A missing route answers with a non-zero retval (`NO_SUCH_ENTRY`).
    IpRouteLookupReply = "ip_route_lookup_reply", crc "5d8febcb", Reply {
        route: IpRoute,
    }
}

replies! {
    IpRouteLookup => IpRouteLookupReply,
}

impl IpRouteLookup {
    /// Exact-match lookup of `prefix` in table `table_id` (0 = default VRF).
    pub fn exact(table_id: u32, prefix: Prefix) -> Self {
        Self {
            table_id,
            exact: 1,
            prefix: FibPrefix(prefix),
        }
    }
}

pub(crate) fn definitions() -> Vec<MessageDef> {
    vec![
        MessageDef::of::<IpRouteLookup>(),
        MessageDef::of::<IpRouteLookupReply>(),
    ]
}
