//! SYN building, reply parsing and the table of outstanding half-open probes (pure).

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::{MutableTcpPacket, TcpFlags, TcpPacket};
use tokio::sync::oneshot;

/// Source ports of SYN probes: above Linux's default ephemeral range (32768-60999), so no
/// local socket owns them and the kernel answers the SYN-ACK with a RST. Operators with a
/// wider ephemeral range should reserve these (net.ipv4.ip_local_reserved_ports).
pub const SOURCE_PORTS: RangeInclusive<u16> = 61000..=65535;

/// TCP header without options.
const HEADER_LEN: usize = 20;

/// A TCP SYN from `src:sport` to `dst:dport` with sequence `seq`.
pub fn syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> [u8; HEADER_LEN] {
    let mut buf = [0u8; HEADER_LEN];
    if let Some(mut tcp) = MutableTcpPacket::new(&mut buf) {
        tcp.set_source(sport);
        tcp.set_destination(dport);
        tcp.set_sequence(seq);
        tcp.set_data_offset(5);
        tcp.set_flags(TcpFlags::SYN);
        tcp.set_window(64240);
        let sum = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                pnet_packet::tcp::ipv4_checksum(&tcp.to_immutable(), &s, &d)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                pnet_packet::tcp::ipv6_checksum(&tcp.to_immutable(), &s, &d)
            }
            // Mixed families never reach here (the socket is per family); leave it zero.
            _ => 0,
        };
        tcp.set_checksum(sum);
    }
    buf
}

/// The parts of a received segment that decide a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub src: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub ack: u32,
    pub flags: u8,
}

/// A segment from an IPv4 raw socket (IP header included).
pub fn parse_v4(buf: &[u8]) -> Option<Segment> {
    let ip = Ipv4Packet::new(buf)?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
        return None;
    }
    let hlen = usize::from(ip.get_header_length()) * 4;
    let tcp = buf.get(hlen..)?;
    parse_tcp(tcp, IpAddr::V4(ip.get_source()))
}

/// A segment from an IPv6 raw socket (no IP header; `src` from recvfrom).
pub fn parse_v6(buf: &[u8], src: IpAddr) -> Option<Segment> {
    parse_tcp(buf, src)
}

fn parse_tcp(buf: &[u8], src: IpAddr) -> Option<Segment> {
    let tcp = TcpPacket::new(buf)?;
    Some(Segment {
        src,
        sport: tcp.get_source(),
        dport: tcp.get_destination(),
        ack: tcp.get_acknowledgement(),
        flags: tcp.get_flags(),
    })
}

/// What the backend answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    SynAck,
    Reset,
}

#[derive(Debug)]
struct Pending {
    addr: IpAddr,
    port: u16,
    seq: u32,
    tx: oneshot::Sender<Answer>,
}

/// Outstanding SYNs of one socket, keyed by our source port (one probe per port at a time).
#[derive(Debug)]
pub struct Outstanding {
    next_port: u16,
    pending: HashMap<u16, Pending>,
}

impl Outstanding {
    pub fn new(first_port: u16) -> Self {
        let span = SOURCE_PORTS.end() - SOURCE_PORTS.start();
        Outstanding {
            next_port: SOURCE_PORTS.start() + first_port % (span + 1),
            pending: HashMap::new(),
        }
    }

    /// Reserves a source port for a SYN with `seq` to `addr:port`; None when all are busy.
    pub fn insert(
        &mut self,
        addr: IpAddr,
        port: u16,
        seq: u32,
        tx: oneshot::Sender<Answer>,
    ) -> Option<u16> {
        for _ in SOURCE_PORTS {
            let sport = self.next_port;
            self.next_port = if sport == *SOURCE_PORTS.end() {
                *SOURCE_PORTS.start()
            } else {
                sport + 1
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = self.pending.entry(sport) {
                slot.insert(Pending {
                    addr,
                    port,
                    seq,
                    tx,
                });
                return Some(sport);
            }
        }
        None
    }

    pub fn remove(&mut self, sport: u16, seq: u32) {
        if self.pending.get(&sport).is_some_and(|p| p.seq == seq) {
            self.pending.remove(&sport);
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Some(true) if the segment answered a probe, Some(false) if it looked like an answer
    /// (ACK to one of our ports) but matched nothing, None if it is unrelated traffic.
    pub fn dispatch(&mut self, seg: &Segment) -> Option<bool> {
        let acks = seg.flags & TcpFlags::ACK != 0;
        let synack = acks && seg.flags & TcpFlags::SYN != 0;
        let reset = acks && seg.flags & TcpFlags::RST != 0;
        if !(synack || reset) || !SOURCE_PORTS.contains(&seg.dport) {
            return None;
        }
        let matches = self.pending.get(&seg.dport).is_some_and(|p| {
            p.addr == seg.src && p.port == seg.sport && p.seq.wrapping_add(1) == seg.ack
        });
        if !matches {
            return Some(false);
        }
        if let Some(p) = self.pending.remove(&seg.dport) {
            let _ = p.tx.send(if synack {
                Answer::SynAck
            } else {
                Answer::Reset
            });
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_packet::ipv4::MutableIpv4Packet;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn answer(src: IpAddr, sport: u16, dport: u16, ack: u32, flags: u8) -> Segment {
        Segment {
            src,
            sport,
            dport,
            ack,
            flags,
        }
    }

    #[test]
    fn syn_layout_and_checksum() {
        let (s, d) = (v4("10.0.0.1"), v4("10.0.0.2"));
        let pkt = syn(s, d, 61000, 443, 0xdead_beef);
        let tcp = TcpPacket::new(&pkt).unwrap();
        assert_eq!(tcp.get_source(), 61000);
        assert_eq!(tcp.get_destination(), 443);
        assert_eq!(tcp.get_sequence(), 0xdead_beef);
        assert_eq!(tcp.get_flags(), TcpFlags::SYN);
        assert_eq!(tcp.get_data_offset(), 5);
        let (IpAddr::V4(s4), IpAddr::V4(d4)) = (s, d) else {
            unreachable!()
        };
        assert_eq!(
            tcp.get_checksum(),
            pnet_packet::tcp::ipv4_checksum(&tcp, &s4, &d4)
        );
        let v6 = syn(v4("::1"), v4("::1"), 61001, 80, 1);
        assert_ne!(TcpPacket::new(&v6).unwrap().get_checksum(), 0);
    }

    #[test]
    fn parse_v4_segment() {
        let tcp = syn(v4("10.0.0.2"), v4("10.0.0.1"), 443, 61000, 5);
        let mut buf = vec![0u8; 20 + tcp.len()];
        let mut ip = MutableIpv4Packet::new(&mut buf).unwrap();
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length((20 + tcp.len()) as u16);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Tcp);
        ip.set_source("10.0.0.2".parse().unwrap());
        ip.set_destination("10.0.0.1".parse().unwrap());
        ip.set_payload(&tcp);
        let seg = parse_v4(&buf).unwrap();
        assert_eq!(seg.src, v4("10.0.0.2"));
        assert_eq!((seg.sport, seg.dport), (443, 61000));
        assert_eq!(parse_v4(&buf[..10]), None);
    }

    #[test]
    fn synack_and_reset_are_matched_exactly() {
        let mut t = Outstanding::new(0);
        let (tx, mut rx) = oneshot::channel();
        let sport = t.insert(v4("10.0.0.2"), 80, 1000, tx).unwrap();
        assert!(SOURCE_PORTS.contains(&sport));
        let synack = TcpFlags::SYN | TcpFlags::ACK;
        // Our own SYN (seen on lo), wrong peer, wrong port, wrong ack: not credited.
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.1"), sport, 80, 0, TcpFlags::SYN)),
            None
        );
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.3"), 80, sport, 1001, synack)),
            Some(false)
        );
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.2"), 81, sport, 1001, synack)),
            Some(false)
        );
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.2"), 80, sport, 1000, synack)),
            Some(false)
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.2"), 80, sport, 1001, synack)),
            Some(true)
        );
        assert_eq!(rx.try_recv(), Ok(Answer::SynAck));

        let (tx, mut rx) = oneshot::channel();
        let sport = t.insert(v4("10.0.0.2"), 80, u32::MAX, tx).unwrap();
        let rst = TcpFlags::RST | TcpFlags::ACK;
        assert_eq!(
            t.dispatch(&answer(v4("10.0.0.2"), 80, sport, 0, rst)),
            Some(true)
        );
        assert_eq!(rx.try_recv(), Ok(Answer::Reset));
        assert!(t.is_empty());
    }

    #[test]
    fn unrelated_traffic_is_ignored() {
        let mut t = Outstanding::new(0);
        let data = answer(v4("10.0.0.2"), 80, 40000, 1, TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!(t.dispatch(&data), None);
        let low_port = answer(v4("10.0.0.2"), 80, 40000, 1, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(t.dispatch(&low_port), None);
    }

    #[test]
    fn ports_wrap_within_the_range() {
        let span = SOURCE_PORTS.end() - SOURCE_PORTS.start();
        let mut t = Outstanding::new(span);
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        assert_eq!(
            t.insert(v4("10.0.0.2"), 80, 1, a),
            Some(*SOURCE_PORTS.end())
        );
        assert_eq!(
            t.insert(v4("10.0.0.2"), 80, 2, b),
            Some(*SOURCE_PORTS.start())
        );
        t.remove(*SOURCE_PORTS.end(), 99);
        assert_eq!(t.len(), 2);
        t.remove(*SOURCE_PORTS.end(), 1);
        assert_eq!(t.len(), 1);
    }
}
