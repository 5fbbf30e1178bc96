//! Composite and named field types: IP prefixes, enums kept as raw integers (VPP may
//! return values outside the enum, docs/vpp-wire.md §3.5), strings, and the typedefs lb uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

use super::WireError;
use super::codec::{Reader, WireType};
use super::schema::Shape;

/// `vl_api_address_with_prefix_t` (alias of `vl_api_prefix_t`, 18 bytes): address + length.
/// Decoding is lenient: a released VPP returns IPv4 prefixes with `len + 96`
/// (docs/vpp-wire.md §3.5), so the length is taken as sent and host bits are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub const fn new(addr: IpAddr, len: u8) -> Self {
        Self { addr, len }
    }

    /// The all-zero IPv4 prefix `0.0.0.0/0`: "no filter" in dumps.
    pub const fn unspecified() -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            len: 0,
        }
    }

    /// Host bits cleared, as VPP normalises VIP prefixes.
    pub fn normalized(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let len = u32::from(self.len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let len = u32::from(self.len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Self {
            addr,
            len: self.len,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl WireType for Prefix {
    const API_TYPE: &'static str = "vl_api_address_with_prefix_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.addr.encode(buf);
        buf.push(self.len);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let addr = IpAddr::decode(r)?;
        Ok(Self { addr, len: r.u8()? })
    }
}

/// Declares a newtype over an integer that stands for a `.api` enum or alias.
macro_rules! raw_newtype {
    ($(#[$m:meta])* $name:ident($inner:ty) = $api:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl WireType for $name {
            const API_TYPE: &'static str = $api;
            fn encode(&self, buf: &mut Vec<u8>) {
                self.0.encode(buf);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(Self(<$inner>::decode(r)?))
            }
        }
    };
}

raw_newtype!(
    /// `vl_api_ip_proto_t` (`enum ip_proto : u8`).
    IpProto(u8) = "vl_api_ip_proto_t"
);
raw_newtype!(
    /// `vl_api_ip_dscp_t` (`enum ip_dscp : u8`).
    IpDscp(u8) = "vl_api_ip_dscp_t"
);
raw_newtype!(
    /// `vl_api_lb_encap_type_t` (u32 enum). Kept raw: a 1.1.0 dump returns the internal VIP type here.
    EncapType(u32) = "vl_api_lb_encap_type_t"
);
raw_newtype!(
    /// `vl_api_lb_srv_type_t` (u32 enum).
    SrvType(u32) = "vl_api_lb_srv_type_t"
);
raw_newtype!(
    /// `vl_api_interface_index_t` (alias of u32).
    InterfaceIndex(u32) = "vl_api_interface_index_t"
);

impl IpProto {
    pub const TCP: IpProto = IpProto(6);
    pub const UDP: IpProto = IpProto(17);
    /// "Any protocol": what VPP stores for all-port VIPs, and the API default.
    pub const ANY: IpProto = IpProto(255);
}

impl EncapType {
    pub const GRE4: EncapType = EncapType(0);
    pub const GRE6: EncapType = EncapType(1);
    pub const L3DSR: EncapType = EncapType(2);
    pub const NAT4: EncapType = EncapType(3);
    pub const NAT6: EncapType = EncapType(4);
}

impl SrvType {
    pub const CLUSTERIP: SrvType = SrvType(0);
    pub const NODEPORT: SrvType = SrvType(1);
}

/// `string name[N]`: NUL-terminated and NUL-padded, at most N-1 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct FixedString<const N: usize>(pub String);

impl<const N: usize> FixedString<N> {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> WireType for FixedString<N> {
    const API_TYPE: &'static str = "string";
    const SHAPE: Shape = Shape::Fixed(N as u32);
    fn encode(&self, buf: &mut Vec<u8>) {
        let bytes = self.0.as_bytes();
        // Cut at a character boundary, so what is sent is always valid UTF-8.
        let mut n = bytes.len().min(N.saturating_sub(1));
        while !self.0.is_char_boundary(n) {
            n -= 1;
        }
        buf.extend_from_slice(&bytes[..n]);
        buf.resize(buf.len() + (N - n), 0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let raw = r.take(N)?;
        // The last byte is the terminator (VPP fills at most N-1); text in it is ignored,
        // so every decoded value encodes back unchanged.
        let text = &raw[..N.saturating_sub(1)];
        let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        Ok(Self(String::from_utf8_lossy(&text[..end]).into_owned()))
    }
}

/// `string name[]`: `u32` byte length, then the bytes (no NUL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct VlaString(pub String);

impl VlaString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl WireType for VlaString {
    const API_TYPE: &'static str = "string";
    const SHAPE: Shape = Shape::Vla(None);
    fn encode(&self, buf: &mut Vec<u8>) {
        let bytes = self.0.as_bytes();
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        len.encode(buf);
        buf.extend_from_slice(&bytes[..len as usize]);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = r.u32()? as usize;
        // `take` checks the length against the bytes present before anything is copied.
        let raw = r.take(len)?;
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }
}

/// `vl_api_prefix_matcher_t`: `u8 le, u8 ge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PrefixMatcher {
    pub le: u8,
    pub ge: u8,
}

impl WireType for PrefixMatcher {
    const API_TYPE: &'static str = "vl_api_prefix_matcher_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(self.le);
        buf.push(self.ge);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            le: r.u8()?,
            ge: r.u8()?,
        })
    }
}

/// `vl_api_lb_vip_t` (21 bytes): the VIP key as VPP reports it in details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LbVip {
    pub pfx: Prefix,
    pub protocol: IpProto,
    pub port: u16,
}

impl WireType for LbVip {
    const API_TYPE: &'static str = "vl_api_lb_vip_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.pfx.encode(buf);
        self.protocol.encode(buf);
        self.port.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            pfx: Prefix::decode(r)?,
            protocol: IpProto::decode(r)?,
            port: r.u16()?,
        })
    }
}

/// `vl_api_message_table_entry_t` (66 bytes): one `name_crc -> id` pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageTableEntry {
    pub index: u16,
    pub name: FixedString<64>,
}

impl WireType for MessageTableEntry {
    const API_TYPE: &'static str = "vl_api_message_table_entry_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.index.encode(buf);
        self.name.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            index: r.u16()?,
            name: FixedString::decode(r)?,
        })
    }
}

/// `vl_api_module_version_t` (76 bytes), in `api_versions_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub name: FixedString<64>,
}

impl WireType for ModuleVersion {
    const API_TYPE: &'static str = "vl_api_module_version_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        self.major.encode(buf);
        self.minor.encode(buf);
        self.patch.encode(buf);
        self.name.encode(buf);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            major: r.u32()?,
            minor: r.u32()?,
            patch: r.u32()?,
            name: FixedString::decode(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (vpp_frame): a fixed string with no NUL in its N bytes decoded to N
    /// characters, which encode to N-1, so decode → encode → decode changed the value.
    #[test]
    fn unterminated_fixed_string_keeps_n_minus_one_bytes() {
        let decoded = FixedString::<4>::decode(&mut Reader::new(b"abcd")).unwrap();
        assert_eq!(decoded.as_str(), "abc");
        let mut buf = Vec::new();
        decoded.encode(&mut buf);
        assert_eq!(buf, b"abc\0");
        assert_eq!(
            FixedString::<4>::decode(&mut Reader::new(&buf)),
            Ok(decoded)
        );
        assert_eq!(
            FixedString::<1>::decode(&mut Reader::new(b"x"))
                .unwrap()
                .as_str(),
            ""
        );
    }

    /// Fuzz finding (vpp_frame): truncation to N-1 bytes could split a character, so the
    /// encoding of a decoded value was not stable (and not UTF-8).
    #[test]
    fn fixed_string_truncates_on_a_char_boundary() {
        let mut buf = Vec::new();
        FixedString::<4>::new("abé").encode(&mut buf);
        assert_eq!(buf, b"ab\0\0");
        let mut buf = Vec::new();
        FixedString::<5>::new("\u{fffd}\u{fffd}").encode(&mut buf);
        assert_eq!(buf, "\u{fffd}\0\0".as_bytes());
        let decoded = FixedString::<5>::decode(&mut Reader::new(&buf)).unwrap();
        let mut again = Vec::new();
        decoded.encode(&mut again);
        assert_eq!(again, buf);
    }

    #[test]
    fn fixed_string_pads_truncates_and_stops_at_nul() {
        let mut buf = Vec::new();
        FixedString::<4>::new("abcdef").encode(&mut buf);
        assert_eq!(buf, b"abc\0");
        let decoded = FixedString::<8>::decode(&mut Reader::new(b"hi\0junk\x13")).unwrap();
        assert_eq!(decoded.as_str(), "hi");
    }

    #[test]
    fn vla_string_rejects_length_beyond_payload() {
        let bytes = [0xff, 0xff, 0xff, 0xff, b'a'];
        assert!(matches!(
            VlaString::decode(&mut Reader::new(&bytes)),
            Err(WireError::Truncated { .. })
        ));
        let mut buf = Vec::new();
        VlaString::new("ok").encode(&mut buf);
        assert_eq!(buf, [0, 0, 0, 2, b'o', b'k']);
    }

    #[test]
    fn prefix_normalisation_clears_host_bits() {
        let p = Prefix::new("192.0.2.77".parse().unwrap(), 24);
        assert_eq!(p.normalized().to_string(), "192.0.2.0/24");
        let p6 = Prefix::new("2001:db8::ff".parse().unwrap(), 64);
        assert_eq!(p6.normalized().to_string(), "2001:db8::/64");
        let all = Prefix::new("10.1.2.3".parse().unwrap(), 0);
        assert_eq!(all.normalized().to_string(), "0.0.0.0/0");
    }
}
