//! Classic BPF socket filters for the shared raw sockets, so the kernel copies to us only
//! the segments a probe can be waiting for instead of every TCP segment / ICMP message on
//! the host. The programs are plain data; [`run`] interprets them for the unit tests.
//!
//! Where a filter starts reading: IPv4 raw sockets see the IP header at offset 0, IPv6 raw
//! sockets the transport header (the kernel strips the IPv6 header before delivery).

use std::io;
use std::ops::RangeInclusive;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes used here (linux/filter.h, linux/bpf_common.h).
const LD_B_ABS: u16 = 0x30; // A = pkt[k]
const LD_H_ABS: u16 = 0x28; // A = be16(pkt[k..])
const LD_B_IND: u16 = 0x50; // A = pkt[X + k]
const LD_H_IND: u16 = 0x48; // A = be16(pkt[X + k..])
const LDX_B_MSH: u16 = 0xb1; // X = 4 * (pkt[k] & 0xf): the IPv4 header length
const AND_K: u16 = 0x54; // A &= k
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45; // jump if A & k != 0
const RET_K: u16 = 0x06;

/// Bytes of an accepted packet the socket keeps: any IP header with any TCP header, or an
/// ICMP error quoting the IP and ICMP headers of our request with its payload.
const KEEP: u32 = 256;

const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

const TCP_SYN: u32 = 0x02;
const TCP_RST: u32 = 0x04;
const TCP_ACK: u32 = 0x10;

/// tcp-syn, IPv4: SYN-ACK or RST segments, first fragments only, to a port in `ports`.
pub fn tcp_answers_v4(ports: &RangeInclusive<u16>) -> Vec<Insn> {
    let mut p = vec![
        stmt(LD_H_ABS, 6),
        // A later fragment has no TCP header to look at.
        jump(JSET_K, 0x1fff, 0, 1),
        stmt(RET_K, 0),
        stmt(LDX_B_MSH, 0),
    ];
    p.extend(tcp_answer_checks(LD_H_IND, LD_B_IND, ports));
    p
}

/// tcp-syn, IPv6: the same, reading the TCP header at offset 0.
pub fn tcp_answers_v6(ports: &RangeInclusive<u16>) -> Vec<Insn> {
    tcp_answer_checks(LD_H_ABS, LD_B_ABS, ports)
}

/// Destination port in `ports`, then RST or SYN+ACK; loads are relative to the TCP header.
fn tcp_answer_checks(ld_h: u16, ld_b: u16, ports: &RangeInclusive<u16>) -> Vec<Insn> {
    vec![
        stmt(ld_h, 2),
        jump(JGE_K, u32::from(*ports.start()), 0, 6),
        jump(JGT_K, u32::from(*ports.end()), 5, 0),
        stmt(ld_b, 13),
        jump(JSET_K, TCP_RST, 2, 0),
        stmt(AND_K, TCP_SYN | TCP_ACK),
        jump(JEQ_K, TCP_SYN | TCP_ACK, 0, 1),
        stmt(RET_K, KEEP),
        stmt(RET_K, 0),
    ]
}

/// ICMP raw socket, IPv4: echo replies carrying `ident`, and destination-unreachables.
pub fn icmp_answers_v4(ident: u16) -> Vec<Insn> {
    vec![
        stmt(LD_H_ABS, 6),
        jump(JSET_K, 0x1fff, 8, 0),
        stmt(LDX_B_MSH, 0),
        stmt(LD_B_IND, 0),
        jump(JEQ_K, 3, 4, 0),
        jump(JEQ_K, 0, 0, 4),
        stmt(LD_H_IND, 4),
        jump(JEQ_K, u32::from(ident), 0, 2),
        stmt(RET_K, KEEP),
        stmt(RET_K, KEEP),
        stmt(RET_K, 0),
    ]
}

/// ICMPv6 raw socket: echo replies carrying `ident`, and destination-unreachables.
pub fn icmp_answers_v6(ident: u16) -> Vec<Insn> {
    vec![
        stmt(LD_B_ABS, 0),
        jump(JEQ_K, 1, 3, 0),
        jump(JEQ_K, 129, 0, 3),
        stmt(LD_H_ABS, 4),
        jump(JEQ_K, u32::from(ident), 0, 1),
        stmt(RET_K, KEEP),
        stmt(RET_K, 0),
    ]
}

/// Attaches `prog` to `sock` (SO_ATTACH_FILTER).
pub fn attach(sock: &Socket, prog: &[Insn]) -> io::Result<()> {
    let filter: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len =
        u16::try_from(filter.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fprog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points at `len` valid instructions that outlive the call; the kernel
    // copies the program.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `prog` on `pkt` as the kernel would: the bytes kept (0 = dropped). Only the
/// opcodes above are known; an unknown one, a load past the end or a jump out of the
/// program drops the packet, as the kernel's checker and interpreter would.
#[cfg(test)]
pub fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    let byte = |at: u64| pkt.get(usize::try_from(at).ok()?).map(|b| u32::from(*b));
    let half = |at: u64| Some((byte(at)? << 8) | byte(at + 1)?);
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = u64::from(i.k);
        let ind = u64::from(x) + k;
        let cond = match i.code {
            LD_B_ABS | LD_H_ABS | LD_B_IND | LD_H_IND => {
                let loaded = match i.code {
                    LD_B_ABS => byte(k),
                    LD_H_ABS => half(k),
                    LD_B_IND => byte(ind),
                    _ => half(ind),
                };
                match loaded {
                    Some(v) => a = v,
                    None => return 0,
                }
                continue;
            }
            LDX_B_MSH => {
                match byte(k) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                }
                continue;
            }
            AND_K => {
                a &= i.k;
                continue;
            }
            RET_K => return i.k,
            JEQ_K => a == i.k,
            JGT_K => a > i.k,
            JGE_K => a >= i.k,
            JSET_K => a & i.k != 0,
            _ => return 0,
        };
        pc += usize::from(if cond { i.jt } else { i.jf });
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: RangeInclusive<u16> = 61000..=65535;

    /// An IPv4 header (20 bytes, or 24 with options) followed by `payload`.
    fn ipv4(proto: u8, options: bool, frag: u16, payload: &[u8]) -> Vec<u8> {
        let hl = if options { 24 } else { 20 };
        let mut p = vec![0u8; hl];
        p[0] = 0x40 | (hl / 4) as u8;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p.extend_from_slice(payload);
        p
    }

    fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t
    }

    fn icmp(ty: u8, ident: u16) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0];
        m.extend_from_slice(&ident.to_be_bytes());
        m.extend_from_slice(&[0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        m
    }

    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;

    #[test]
    fn tcp_filters_keep_only_answers_to_our_ports() {
        let v4 = tcp_answers_v4(&PORTS);
        let v6 = tcp_answers_v6(&PORTS);
        let cases = [
            (tcp(80, 61000, SYN | ACK), true),
            (tcp(80, 65535, SYN | ACK), true),
            (tcp(80, 62000, RST | ACK), true),
            (tcp(80, 62000, RST), true),
            // Our own SYN seen on lo, data, a bare ACK, answers to other ports.
            (tcp(61000, 80, SYN), false),
            (tcp(80, 61000, ACK | PSH), false),
            (tcp(80, 61000, ACK), false),
            (tcp(80, 60999, SYN | ACK), false),
            (tcp(80, 40000, RST | ACK), false),
            (tcp(80, 61000, SYN), false),
        ];
        for (seg, keep) in &cases {
            for options in [false, true] {
                let pkt = ipv4(6, options, 0, seg);
                assert_eq!(run(&v4, &pkt) > 0, *keep, "v4 {seg:?} options {options}");
            }
            assert_eq!(run(&v6, seg) > 0, *keep, "v6 {seg:?}");
        }
        // A later fragment is dropped, a first one (MF set, offset 0) kept.
        let answer = tcp(80, 61000, SYN | ACK);
        assert_eq!(run(&v4, &ipv4(6, false, 0x0010, &answer)), 0);
        assert!(run(&v4, &ipv4(6, false, 0x2000, &answer)) > 0);
        // Too short to hold the fields: dropped, not misread.
        assert_eq!(run(&v4, &ipv4(6, false, 0, &answer[..10])), 0);
        assert_eq!(run(&v6, &answer[..3]), 0);
        // A narrower range is honoured at both ends.
        let narrow = tcp_answers_v6(&(61000..=61009));
        assert!(run(&narrow, &tcp(80, 61009, SYN | ACK)) > 0);
        assert_eq!(run(&narrow, &tcp(80, 61010, SYN | ACK)), 0);
    }

    #[test]
    fn icmp_filters_keep_our_replies_and_unreachables() {
        let v4 = icmp_answers_v4(0xbeef);
        for (msg, keep) in [
            (icmp(0, 0xbeef), true),
            (icmp(3, 0x1234), true),
            (icmp(0, 0xbeee), false),
            (icmp(8, 0xbeef), false),
            (icmp(11, 0xbeef), false),
        ] {
            for options in [false, true] {
                let pkt = ipv4(1, options, 0, &msg);
                assert_eq!(run(&v4, &pkt) > 0, keep, "v4 {msg:?}");
            }
        }
        assert_eq!(run(&v4, &ipv4(1, false, 0x0001, &icmp(0, 0xbeef))), 0);
        let v6 = icmp_answers_v6(0xbeef);
        for (msg, keep) in [
            (icmp(129, 0xbeef), true),
            (icmp(1, 0), true),
            (icmp(129, 0xbeee), false),
            (icmp(128, 0xbeef), false),
            (icmp(135, 0), false),
        ] {
            assert_eq!(run(&v6, &msg) > 0, keep, "v6 {msg:?}");
        }
    }

    #[test]
    fn the_interpreter_drops_on_bad_programs() {
        assert_eq!(run(&[], b"x"), 0);
        assert_eq!(run(&[stmt(0xffff, 0)], b"x"), 0);
        assert_eq!(run(&[jump(JEQ_K, 0, 9, 9)], b"x"), 0);
        assert_eq!(run(&[stmt(RET_K, 7)], b""), 7);
    }

    /// On lo, a filtered raw TCP socket gets a crafted SYN-ACK to one of our ports but
    /// none of the segments of an ordinary connection. Needs CAP_NET_RAW.
    #[test]
    fn on_the_wire_only_answers_get_through() {
        use socket2::{Domain, Protocol, Type};
        use std::mem::MaybeUninit;
        let Ok(sock) = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)) else {
            eprintln!("skipped: raw TCP not permitted here");
            return;
        };
        attach(&sock, &tcp_answers_v4(&PORTS)).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(conn);
        // Port 9 (discard) sends the SYN-ACK; nobody listens on 64999, so the kernel just
        // resets it; only the filter decides what we see.
        let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        sock.send_to(&tcp(9, 64999, SYN | ACK), &lo.into()).unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 512];
        let mut got = Vec::new();
        while let Ok(n) = sock.recv(&mut buf) {
            // SAFETY: recv initialised the first n bytes.
            got.push(
                buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect::<Vec<u8>>(),
            );
        }
        let ports: Vec<(u16, u16, u8)> = got
            .iter()
            .map(|p| {
                let t = &p[usize::from(p[0] & 0xf) * 4..];
                (
                    u16::from_be_bytes([t[0], t[1]]),
                    u16::from_be_bytes([t[2], t[3]]),
                    t[13],
                )
            })
            .collect();
        assert_eq!(ports, [(9, 64999, SYN | ACK)]);
    }

    /// The kernel accepts every program (its checker rejects bad jumps and opcodes).
    #[test]
    fn the_kernel_takes_the_programs() {
        let sock = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        for prog in [
            tcp_answers_v4(&PORTS),
            tcp_answers_v6(&PORTS),
            icmp_answers_v4(1),
            icmp_answers_v6(1),
        ] {
            attach(&sock, &prog).unwrap();
        }
        assert!(attach(&sock, &[jump(JEQ_K, 0, 9, 9)]).is_err());
    }
}
