//! The IPv4 TCP segments on lo to and from one port, as a raw socket sees them (for tests
//! that check what a probe puts on the wire). Needs CAP_NET_RAW: `Wire::open` says why
//! it skips where that is refused, and fails instead where CI runs as root.
#![allow(dead_code)] // each test reads the fields it checks

use std::net::IpAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// One IPv4 TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub src: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    /// The IP header's flags and fragment offset (0x4000: Don't Fragment).
    pub frag: u16,
    /// The IP header's identification.
    pub ip_id: u16,
}

pub struct Wire {
    sock: Socket,
}

impl Wire {
    /// None (with the reason printed) where raw sockets are not permitted.
    pub fn open() -> Option<Wire> {
        let sock = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)) {
            Ok(sock) => sock,
            Err(e) => {
                // SAFETY: geteuid has no preconditions.
                let root = unsafe { libc::geteuid() } == 0;
                assert!(
                    !(root && std::env::var_os("CI").is_some()),
                    "CI as root, yet raw TCP was refused: {e}"
                );
                eprintln!("skipped: raw TCP not permitted here: {e}");
                return None;
            }
        };
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        // Room for the other tests' segments (hundreds, in parallel) queued before ours.
        let room: libc::c_int = 8 << 20;
        // SAFETY: a valid fd and a c_int option value of the size given.
        let forced = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const room).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            let _ = sock.set_recv_buffer_size(8 << 20);
        }
        Some(Wire { sock })
    }

    /// Every segment to or from `port` seen until `quiet` passes without one.
    pub fn segments(&self, port: u16, quiet: Duration) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut last = Instant::now();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        while last.elapsed() < quiet {
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            // SAFETY: recv initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            let hl = usize::from(pkt[0] & 0x0f) * 4;
            if pkt.len() < hl + 14 {
                continue;
            }
            let seen = Seen {
                src: IpAddr::from([pkt[12], pkt[13], pkt[14], pkt[15]]),
                sport: u16::from_be_bytes([pkt[hl], pkt[hl + 1]]),
                dport: u16::from_be_bytes([pkt[hl + 2], pkt[hl + 3]]),
                flags: pkt[hl + 13],
                frag: u16::from_be_bytes([pkt[6], pkt[7]]),
                ip_id: u16::from_be_bytes([pkt[4], pkt[5]]),
            };
            if seen.sport == port || seen.dport == port {
                out.push(seen);
                last = Instant::now();
            }
        }
        out
    }
}
