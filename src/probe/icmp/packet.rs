//! Echo request building and reply parsing (pure; pnet_packet does the byte work).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::Packet;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes, MutableIcmpPacket};
use pnet_packet::icmpv6::{Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;

/// Random bytes in every request payload; a reply must echo them back.
pub type Token = [u8; 8];

/// ICMP header length (type, code, checksum, identifier, sequence).
const HEADER_LEN: usize = 8;

/// What arrived on an ICMP socket, as far as probes care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An echo reply from `src`.
    Reply {
        src: IpAddr,
        ident: u16,
        seq: u16,
        payload: Vec<u8>,
    },
    /// A destination-unreachable about an echo request we (or someone) sent to `dst`.
    Unreachable {
        dst: IpAddr,
        ident: u16,
        seq: u16,
        code: u8,
    },
    /// Anything else (our own requests seen on lo, other ICMP types, junk).
    Other,
}

/// An echo request (ICMP for IPv4, ICMPv6 for IPv6) carrying `token` as payload. The
/// ICMPv6 checksum covers a pseudo header with our source address, which only the kernel
/// knows, so it is left zero: Linux always fills it in for ICMPv6 sockets.
pub fn echo_request(v6: bool, ident: u16, seq: u16, token: &Token) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + token.len()];
    if let Some(mut pkt) = MutableEchoRequestPacket::new(&mut buf) {
        // The ICMPv6 echo layout matches ICMP's; only the type number differs.
        pkt.set_icmp_type(IcmpTypes::EchoRequest);
        pkt.set_identifier(ident);
        pkt.set_sequence_number(seq);
        pkt.set_payload(token);
    }
    if v6 {
        buf[0] = Icmpv6Types::EchoRequest.0;
    } else if let Some(mut pkt) = MutableIcmpPacket::new(&mut buf) {
        let sum = pnet_packet::icmp::checksum(&pkt.to_immutable());
        pkt.set_checksum(sum);
    }
    buf
}

/// Parses what an IPv4 ICMP socket received. Raw sockets deliver the IP header too
/// (`with_ip_header`); ping (datagram) sockets deliver the ICMP message alone.
pub fn parse_v4(buf: &[u8], with_ip_header: bool, from: Ipv4Addr) -> Received {
    let icmp_bytes = if with_ip_header {
        let Some(ip) = Ipv4Packet::new(buf) else {
            return Received::Other;
        };
        let hlen = usize::from(ip.get_header_length()) * 4;
        match buf.get(hlen..) {
            Some(rest) if hlen >= 20 => rest,
            _ => return Received::Other,
        }
    } else {
        buf
    };
    let Some(icmp) = IcmpPacket::new(icmp_bytes) else {
        return Received::Other;
    };
    let t = icmp.get_icmp_type();
    if t == IcmpTypes::EchoReply {
        let Some((ident, seq)) = ident_seq(icmp_bytes) else {
            return Received::Other;
        };
        return Received::Reply {
            src: IpAddr::V4(from),
            ident,
            seq,
            payload: icmp_bytes[HEADER_LEN..].to_vec(),
        };
    }
    if t == IcmpTypes::DestinationUnreachable {
        return unreachable_v4(icmp_bytes).unwrap_or(Received::Other);
    }
    Received::Other
}

/// The echo request quoted inside a destination unreachable.
fn unreachable_v4(icmp_bytes: &[u8]) -> Option<Received> {
    let code = *icmp_bytes.get(1)?;
    let quoted = icmp_bytes.get(HEADER_LEN..)?;
    let ip = Ipv4Packet::new(quoted)?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Icmp {
        return None;
    }
    let hlen = usize::from(ip.get_header_length()) * 4;
    let inner = quoted.get(hlen..)?;
    if *inner.first()? != IcmpTypes::EchoRequest.0 {
        return None;
    }
    let (ident, seq) = ident_seq(inner)?;
    Some(Received::Unreachable {
        dst: IpAddr::V4(ip.get_destination()),
        ident,
        seq,
        code,
    })
}

/// Parses what an ICMPv6 socket received (never with an IP header).
pub fn parse_v6(buf: &[u8], from: Ipv6Addr) -> Received {
    let Some(icmp) = Icmpv6Packet::new(buf) else {
        return Received::Other;
    };
    let t = icmp.get_icmpv6_type();
    if t == Icmpv6Types::EchoReply {
        let Some((ident, seq)) = ident_seq(buf) else {
            return Received::Other;
        };
        return Received::Reply {
            src: IpAddr::V6(from),
            ident,
            seq,
            payload: buf[HEADER_LEN..].to_vec(),
        };
    }
    if t == Icmpv6Types::DestinationUnreachable {
        return unreachable_v6(buf).unwrap_or(Received::Other);
    }
    Received::Other
}

fn unreachable_v6(buf: &[u8]) -> Option<Received> {
    let code = *buf.get(1)?;
    let quoted = buf.get(HEADER_LEN..)?;
    let ip = Ipv6Packet::new(quoted)?;
    // Extension headers between IPv6 and ICMPv6 are not followed: probes send none.
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return None;
    }
    let inner = ip.payload();
    if *inner.first()? != Icmpv6Types::EchoRequest.0 {
        return None;
    }
    let (ident, seq) = ident_seq(inner)?;
    Some(Received::Unreachable {
        dst: IpAddr::V6(ip.get_destination()),
        ident,
        seq,
        code,
    })
}

/// Identifier and sequence of an echo message (same place in ICMP and ICMPv6).
fn ident_seq(icmp: &[u8]) -> Option<(u16, u16)> {
    let h = icmp.get(..HEADER_LEN)?;
    Some((
        u16::from_be_bytes([h[4], h[5]]),
        u16::from_be_bytes([h[6], h[7]]),
    ))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use pnet_packet::ipv4::{MutableIpv4Packet, checksum as ip_checksum};

    const TOKEN: Token = [1, 2, 3, 4, 5, 6, 7, 8];

    /// Wraps an ICMP message in a minimal IPv4 header, like a raw socket delivers it.
    pub fn with_ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, icmp: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 20 + icmp.len()];
        let mut ip = MutableIpv4Packet::new(&mut buf).unwrap();
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length((20 + icmp.len()) as u16);
        ip.set_ttl(64);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Icmp);
        ip.set_source(src);
        ip.set_destination(dst);
        ip.set_payload(icmp);
        let sum = ip_checksum(&ip.to_immutable());
        ip.set_checksum(sum);
        buf
    }

    /// Turns a request into the reply a host would send.
    pub fn as_reply(mut req: Vec<u8>, v6: bool) -> Vec<u8> {
        req[0] = if v6 {
            Icmpv6Types::EchoReply.0
        } else {
            IcmpTypes::EchoReply.0
        };
        req[2] = 0;
        req[3] = 0;
        if !v6 {
            let sum = pnet_packet::icmp::checksum(&IcmpPacket::new(&req).unwrap());
            req[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        req
    }

    #[test]
    fn v4_request_layout_and_checksum() {
        let pkt = echo_request(false, 0x1234, 0xbeef, &TOKEN);
        assert_eq!(pkt.len(), 16);
        assert_eq!(pkt[0], 8, "echo request type");
        assert_eq!(&pkt[4..8], &[0x12, 0x34, 0xbe, 0xef]);
        assert_eq!(&pkt[8..], &TOKEN);
        let icmp = IcmpPacket::new(&pkt).unwrap();
        assert_eq!(icmp.get_checksum(), pnet_packet::icmp::checksum(&icmp));
        assert_ne!(icmp.get_checksum(), 0);
    }

    #[test]
    fn v6_request_layout() {
        let pkt = echo_request(true, 7, 9, &TOKEN);
        assert_eq!(pkt[0], 128, "ICMPv6 echo request type");
        assert_eq!(&pkt[2..4], &[0, 0], "kernel fills the checksum");
        assert_eq!(&pkt[4..8], &[0, 7, 0, 9]);
        assert_eq!(&pkt[8..], &TOKEN);
    }

    #[test]
    fn v4_reply_with_and_without_ip_header() {
        let src = Ipv4Addr::new(192, 0, 2, 9);
        let reply = as_reply(echo_request(false, 42, 7, &TOKEN), false);
        let want = Received::Reply {
            src: IpAddr::V4(src),
            ident: 42,
            seq: 7,
            payload: TOKEN.to_vec(),
        };
        assert_eq!(parse_v4(&reply, false, src), want);
        let raw = with_ipv4_header(src, Ipv4Addr::LOCALHOST, &reply);
        assert_eq!(parse_v4(&raw, true, src), want);
    }

    #[test]
    fn own_request_and_junk_are_ignored() {
        let lo = Ipv4Addr::LOCALHOST;
        let req = echo_request(false, 42, 7, &TOKEN);
        assert_eq!(
            parse_v4(&with_ipv4_header(lo, lo, &req), true, lo),
            Received::Other
        );
        assert_eq!(parse_v4(&[], true, lo), Received::Other);
        assert_eq!(parse_v4(&[0x45, 0, 0], true, lo), Received::Other);
        assert_eq!(parse_v4(&[0, 0, 0, 0], false, lo), Received::Other);
        let req6 = echo_request(true, 42, 7, &TOKEN);
        assert_eq!(parse_v6(&req6, Ipv6Addr::LOCALHOST), Received::Other);
        assert_eq!(parse_v6(&[129, 0], Ipv6Addr::LOCALHOST), Received::Other);
    }

    #[test]
    fn v6_reply() {
        let src: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let reply = as_reply(echo_request(true, 1, 65535, &TOKEN), true);
        assert_eq!(
            parse_v6(&reply, src),
            Received::Reply {
                src: IpAddr::V6(src),
                ident: 1,
                seq: 65535,
                payload: TOKEN.to_vec(),
            }
        );
    }

    #[test]
    fn v4_unreachable_quotes_our_request() {
        let me = Ipv4Addr::new(10, 0, 0, 1);
        let backend = Ipv4Addr::new(10, 0, 0, 2);
        let router = Ipv4Addr::new(10, 0, 0, 254);
        let quoted = with_ipv4_header(me, backend, &echo_request(false, 5, 6, &TOKEN));
        let mut unreach = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        unreach.extend_from_slice(&quoted);
        let raw = with_ipv4_header(router, me, &unreach);
        assert_eq!(
            parse_v4(&raw, true, router),
            Received::Unreachable {
                dst: IpAddr::V4(backend),
                ident: 5,
                seq: 6,
                code: 1,
            }
        );
    }

    #[test]
    fn v6_unreachable_quotes_our_request() {
        let me: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let backend: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let req = echo_request(true, 5, 6, &TOKEN);
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(req.len() as u16).to_be_bytes());
        ip[6] = 58; // ICMPv6
        ip[7] = 64;
        ip[8..24].copy_from_slice(&me.octets());
        ip[24..40].copy_from_slice(&backend.octets());
        let mut msg = vec![1u8, 3, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&ip);
        msg.extend_from_slice(&req);
        assert_eq!(
            parse_v6(&msg, "2001:db8::fe".parse().unwrap()),
            Received::Unreachable {
                dst: IpAddr::V6(backend),
                ident: 5,
                seq: 6,
                code: 3,
            }
        );
    }
}
