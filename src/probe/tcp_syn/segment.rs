//! SYN building, reply parsing and the table of outstanding half-open probes (pure).

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::task::{Poll, Waker};

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::{MutableTcpPacket, TcpFlags, TcpPacket};

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
    /// The SYN could not be sent (the errno of `sendmmsg`).
    SendFailed(i32),
}

#[derive(Debug)]
struct Pending {
    addr: IpAddr,
    port: u16,
    seq: u32,
    answer: Option<Answer>,
    waker: Option<Waker>,
}

/// What [`Outstanding::dispatch`] made of a segment.
#[derive(Debug)]
pub enum Dispatch {
    /// Not an answer to a probe of ours (our own SYN seen on lo, other traffic).
    Unrelated,
    /// Looked like an answer (SYN-ACK or RST to one of our ports) but matched no probe.
    Unmatched,
    /// Answered a probe; wake its task with this (outside the table's lock).
    Matched(Option<Waker>),
}

/// Outstanding SYNs of one socket, one slot per source port (one probe per port at a
/// time): no allocation or hashing per probe. The probe waits on its slot; the reader
/// puts the answer there and wakes it.
#[derive(Debug)]
pub struct Outstanding {
    /// Index of the next port to try.
    next: usize,
    slots: Vec<Option<Pending>>,
    len: usize,
}

impl Outstanding {
    pub fn new(first_port: u16) -> Self {
        let span = usize::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
        Outstanding {
            next: usize::from(first_port) % span,
            slots: (0..span).map(|_| None).collect(),
            len: 0,
        }
    }

    fn slot(&mut self, sport: u16) -> Option<&mut Option<Pending>> {
        let i = sport.checked_sub(*SOURCE_PORTS.start())?;
        self.slots.get_mut(usize::from(i))
    }

    /// Reserves a source port for a SYN with `seq` to `addr:port`; None when all are busy.
    pub fn insert(&mut self, addr: IpAddr, port: u16, seq: u32) -> Option<u16> {
        let span = self.slots.len();
        for _ in 0..span {
            let i = self.next;
            self.next = if i + 1 == span { 0 } else { i + 1 };
            if self.slots[i].is_none() {
                self.slots[i] = Some(Pending {
                    addr,
                    port,
                    seq,
                    answer: None,
                    waker: None,
                });
                self.len += 1;
                // i < span = the number of ports, so it fits.
                return Some(SOURCE_PORTS.start() + i as u16);
            }
        }
        None
    }

    /// The answer to the probe on `sport` with `seq` once it came (Ready(None) if the
    /// probe is not in the table); else remembers `waker` for it.
    pub fn poll(&mut self, sport: u16, seq: u32, waker: &Waker) -> Poll<Option<Answer>> {
        let Some(Some(p)) = self.slot(sport) else {
            return Poll::Ready(None);
        };
        if p.seq != seq {
            return Poll::Ready(None);
        }
        if let Some(a) = p.answer {
            return Poll::Ready(Some(a));
        }
        if !p.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            p.waker = Some(waker.clone());
        }
        Poll::Pending
    }

    /// Whether the probe on `sport` with `seq` still waits (not timed out and gone).
    pub fn waits(&mut self, sport: u16, seq: u32) -> bool {
        matches!(self.slot(sport), Some(Some(p)) if p.seq == seq && p.answer.is_none())
    }

    /// Ends the probe on `sport` with `seq` with its send error; its waker, if any.
    pub fn fail(&mut self, sport: u16, seq: u32, errno: i32) -> Option<Waker> {
        let Some(Some(p)) = self.slot(sport) else {
            return None;
        };
        if p.seq != seq || p.answer.is_some() {
            return None;
        }
        p.answer = Some(Answer::SendFailed(errno));
        p.waker.take()
    }

    pub fn remove(&mut self, sport: u16, seq: u32) {
        if let Some(slot) = self.slot(sport)
            && slot.as_ref().is_some_and(|p| p.seq == seq)
        {
            *slot = None;
            self.len -= 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records the answer a segment carries for its probe (the first one counts).
    pub fn dispatch(&mut self, seg: &Segment) -> Dispatch {
        let acks = seg.flags & TcpFlags::ACK != 0;
        let synack = acks && seg.flags & TcpFlags::SYN != 0;
        let reset = acks && seg.flags & TcpFlags::RST != 0;
        if !(synack || reset) || !SOURCE_PORTS.contains(&seg.dport) {
            return Dispatch::Unrelated;
        }
        let Some(Some(p)) = self.slot(seg.dport) else {
            return Dispatch::Unmatched;
        };
        let matches = p.answer.is_none()
            && p.addr == seg.src
            && p.port == seg.sport
            && p.seq.wrapping_add(1) == seg.ack;
        if !matches {
            return Dispatch::Unmatched;
        }
        p.answer = Some(if synack {
            Answer::SynAck
        } else {
            Answer::Reset
        });
        Dispatch::Matched(p.waker.take())
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

    fn matched(d: Dispatch) -> bool {
        matches!(d, Dispatch::Matched(_))
    }

    fn unmatched(d: Dispatch) -> bool {
        matches!(d, Dispatch::Unmatched)
    }

    fn unrelated(d: Dispatch) -> bool {
        matches!(d, Dispatch::Unrelated)
    }

    #[test]
    fn synack_and_reset_are_matched_exactly() {
        let noop = Waker::noop();
        let mut t = Outstanding::new(0);
        let sport = t.insert(v4("10.0.0.2"), 80, 1000).unwrap();
        assert!(SOURCE_PORTS.contains(&sport));
        assert_eq!(t.poll(sport, 1000, noop), Poll::Pending);
        let synack = TcpFlags::SYN | TcpFlags::ACK;
        // Our own SYN (seen on lo), wrong peer, wrong port, wrong ack: not credited.
        assert!(unrelated(t.dispatch(&answer(
            v4("10.0.0.1"),
            sport,
            80,
            0,
            TcpFlags::SYN
        ))));
        assert!(unmatched(t.dispatch(&answer(
            v4("10.0.0.3"),
            80,
            sport,
            1001,
            synack
        ))));
        assert!(unmatched(t.dispatch(&answer(
            v4("10.0.0.2"),
            81,
            sport,
            1001,
            synack
        ))));
        assert!(unmatched(t.dispatch(&answer(
            v4("10.0.0.2"),
            80,
            sport,
            1000,
            synack
        ))));
        assert_eq!(t.poll(sport, 1000, noop), Poll::Pending);
        // The waiting probe's waker is handed back to be woken.
        assert!(matches!(
            t.dispatch(&answer(v4("10.0.0.2"), 80, sport, 1001, synack)),
            Dispatch::Matched(Some(_))
        ));
        // A second answer (retransmitted SYN-ACK, then the RST) does not overwrite it.
        assert!(unmatched(t.dispatch(&answer(
            v4("10.0.0.2"),
            80,
            sport,
            1001,
            TcpFlags::RST | TcpFlags::ACK
        ))));
        assert_eq!(t.poll(sport, 1000, noop), Poll::Ready(Some(Answer::SynAck)));
        // Another probe's sequence on the same port reads nothing.
        assert_eq!(t.poll(sport, 7, noop), Poll::Ready(None));
        t.remove(sport, 1000);

        let sport = t.insert(v4("10.0.0.2"), 80, u32::MAX).unwrap();
        let rst = TcpFlags::RST | TcpFlags::ACK;
        assert!(matched(t.dispatch(&answer(
            v4("10.0.0.2"),
            80,
            sport,
            0,
            rst
        ))));
        assert_eq!(
            t.poll(sport, u32::MAX, noop),
            Poll::Ready(Some(Answer::Reset))
        );
        t.remove(sport, u32::MAX);
        assert!(t.is_empty());
        // Nothing outstanding on the port any more: a late answer matches nothing.
        assert!(unmatched(t.dispatch(&answer(
            v4("10.0.0.2"),
            80,
            sport,
            0,
            rst
        ))));
    }

    #[test]
    fn unrelated_traffic_is_ignored() {
        let mut t = Outstanding::new(0);
        let data = answer(v4("10.0.0.2"), 80, 40000, 1, TcpFlags::ACK | TcpFlags::PSH);
        assert!(unrelated(t.dispatch(&data)));
        let low_port = answer(v4("10.0.0.2"), 80, 40000, 1, TcpFlags::SYN | TcpFlags::ACK);
        assert!(unrelated(t.dispatch(&low_port)));
    }

    #[test]
    fn ports_wrap_within_the_range() {
        let span = SOURCE_PORTS.end() - SOURCE_PORTS.start();
        let mut t = Outstanding::new(span);
        assert_eq!(t.insert(v4("10.0.0.2"), 80, 1), Some(*SOURCE_PORTS.end()));
        assert_eq!(t.insert(v4("10.0.0.2"), 80, 2), Some(*SOURCE_PORTS.start()));
        t.remove(*SOURCE_PORTS.end(), 99);
        assert_eq!(t.len(), 2);
        t.remove(*SOURCE_PORTS.end(), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_and_busy_ports_are_skipped() {
        let mut t = Outstanding::new(0);
        let ports: Vec<u16> = SOURCE_PORTS
            .map(|_| t.insert(v4("10.0.0.2"), 80, 5).unwrap())
            .collect();
        assert_eq!(t.len(), SOURCE_PORTS.len());
        assert_eq!(t.insert(v4("10.0.0.2"), 80, 6), None);
        t.remove(ports[100], 5);
        assert_eq!(t.insert(v4("10.0.0.2"), 80, 6), Some(ports[100]));
    }

    #[test]
    fn a_send_failure_ends_only_its_own_waiting_probe() {
        let mut t = Outstanding::new(0);
        let a = t.insert(v4("10.0.0.2"), 80, 7).unwrap();
        let b = t.insert(v4("10.0.0.3"), 80, 8).unwrap();
        assert!(t.waits(a, 7));
        assert!(!t.waits(a, 8), "another seq is another probe");
        let waker = std::task::Waker::noop();
        assert_eq!(t.poll(a, 7, waker), Poll::Pending);
        assert!(t.fail(a, 7, libc::EHOSTUNREACH).is_some(), "its waker");
        assert!(!t.waits(a, 7));
        assert_eq!(
            t.poll(a, 7, waker),
            Poll::Ready(Some(Answer::SendFailed(libc::EHOSTUNREACH)))
        );
        // A late answer does not overwrite the failure; a stale seq fails nothing.
        assert!(t.fail(a, 7, libc::ENETUNREACH).is_none());
        assert!(t.fail(b, 9, libc::ENETUNREACH).is_none());
        assert!(t.waits(b, 8));
        t.remove(b, 8);
        assert!(!t.waits(b, 8));
    }
}
