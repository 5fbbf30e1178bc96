//! Big-endian primitive codec: a bounds-checked reader and the [`WireType`] trait that
//! every field type implements (encode, decode, and how it appears in a `.api` file).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::WireError;
use super::schema::Shape;

/// Cursor over a received payload. Every read is bounds-checked; nothing panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let available = self.remaining();
        if n > available {
            return Err(WireError::Truncated {
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
}

/// A type that can appear as a field of a VPP API message.
pub trait WireType: Sized {
    /// The type as written in a `.api` field declaration (`u32`, `string`,
    /// `vl_api_address_t`, ...). Used for CRCs and vpp-papi JSON.
    const API_TYPE: &'static str;
    /// Scalar, fixed array (`[N]`) or variable-length array (`[]`).
    const SHAPE: Shape = Shape::Scalar;

    fn encode(&self, buf: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

macro_rules! int_wire_type {
    ($t:ty, $api:literal, $read:ident) => {
        impl WireType for $t {
            const API_TYPE: &'static str = $api;
            fn encode(&self, buf: &mut Vec<u8>) {
                buf.extend_from_slice(&self.to_be_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                r.$read()
            }
        }
    };
}

int_wire_type!(u8, "u8", u8);
int_wire_type!(u16, "u16", u16);
int_wire_type!(u32, "u32", u32);
int_wire_type!(u64, "u64", u64);
int_wire_type!(i32, "i32", i32);

impl WireType for bool {
    const API_TYPE: &'static str = "bool";
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(u8::from(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        // VPP tests for non-zero.
        Ok(r.u8()? != 0)
    }
}

/// `vl_api_ip4_address_t` (alias of `u8[4]`).
impl WireType for Ipv4Addr {
    const API_TYPE: &'static str = "vl_api_ip4_address_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Ipv4Addr::from(r.array::<4>()?))
    }
}

/// `vl_api_ip6_address_t` (alias of `u8[16]`).
impl WireType for Ipv6Addr {
    const API_TYPE: &'static str = "vl_api_ip6_address_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
}

pub(super) const ADDRESS_IP4: u8 = 0;
pub(super) const ADDRESS_IP6: u8 = 1;

/// `vl_api_address_t`: `u8 af` + 16-byte union; IPv4 sits in bytes 0..4, the rest zero.
impl WireType for IpAddr {
    const API_TYPE: &'static str = "vl_api_address_t";
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            IpAddr::V4(v4) => {
                buf.push(ADDRESS_IP4);
                buf.extend_from_slice(&v4.octets());
                buf.extend_from_slice(&[0u8; 12]);
            }
            IpAddr::V6(v6) => {
                buf.push(ADDRESS_IP6);
                buf.extend_from_slice(&v6.octets());
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let af = r.u8()?;
        let un = r.array::<16>()?;
        match af {
            ADDRESS_IP4 => Ok(IpAddr::V4(Ipv4Addr::new(un[0], un[1], un[2], un[3]))),
            ADDRESS_IP6 => Ok(IpAddr::V6(Ipv6Addr::from(un))),
            other => Err(WireError::InvalidValue {
                what: "address family",
                value: u64::from(other),
            }),
        }
    }
}

/// Decodes `count` elements of a VLA whose count came from the wire. The count is checked
/// against the bytes left (every element is at least one byte) before anything is allocated.
pub fn decode_counted<T: WireType>(
    r: &mut Reader<'_>,
    count: usize,
    what: &'static str,
) -> Result<Vec<T>, WireError> {
    if count > r.remaining() {
        return Err(WireError::CountTooLarge {
            what,
            count,
            available: r.remaining(),
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(T::decode(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_short_reads_without_panicking() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert!(matches!(
            r.u32(),
            Err(WireError::Truncated {
                needed: 4,
                available: 1,
                ..
            })
        ));
        assert_eq!(r.u8(), Ok(3));
        assert!(r.u8().is_err());
    }

    #[test]
    fn integers_are_big_endian() {
        let mut buf = Vec::new();
        0x0102_0304u32.encode(&mut buf);
        (-2i32).encode(&mut buf);
        0x0102_0304_0506_0708u64.encode(&mut buf);
        assert_eq!(
            buf,
            [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let mut r = Reader::new(&buf);
        assert_eq!(u32::decode(&mut r), Ok(0x0102_0304));
        assert_eq!(i32::decode(&mut r), Ok(-2));
        assert_eq!(u64::decode(&mut r), Ok(0x0102_0304_0506_0708));
    }

    #[test]
    fn address_union_layout() {
        let mut buf = Vec::new();
        IpAddr::from([192, 0, 2, 1]).encode(&mut buf);
        assert_eq!(buf.len(), 17);
        assert_eq!(&buf[..5], &[0, 192, 0, 2, 1]);
        assert!(buf[5..].iter().all(|b| *b == 0));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut buf6 = Vec::new();
        v6.encode(&mut buf6);
        assert_eq!(buf6[0], 1);
        assert_eq!(IpAddr::decode(&mut Reader::new(&buf6)), Ok(v6));
        let bad = [7u8; 17];
        assert!(matches!(
            IpAddr::decode(&mut Reader::new(&bad)),
            Err(WireError::InvalidValue { value: 7, .. })
        ));
    }

    #[test]
    fn counted_vla_checks_count_before_allocating() {
        let bytes = [0u8; 4];
        let mut r = Reader::new(&bytes);
        let err = decode_counted::<u16>(&mut r, usize::MAX / 2, "test").unwrap_err();
        assert!(matches!(err, WireError::CountTooLarge { .. }));
        let mut r = Reader::new(&bytes);
        assert_eq!(decode_counted::<u16>(&mut r, 2, "test"), Ok(vec![0, 0]));
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            decode_counted::<u32>(&mut r, 3, "test"),
            Err(WireError::Truncated { .. })
        ));
    }
}
