//! Pieces of the in-namespace ICMP forgers of the ICMP tests: catch the probe's echo
//! request on a raw socket, turn it into a (possibly altered) reply.
#![allow(dead_code)]

use std::io::{self, Read};
use std::net::Ipv4Addr;

use pnet_packet::Packet;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes};
use pnet_packet::ipv4::Ipv4Packet;
use socket2::Socket;

/// Reads raw ICMPv4 `sock` until an echo request (with a token) arrives; yields who sent it
/// and its ICMP bytes. Fails with the socket's read timeout.
pub fn next_echo_request(mut sock: &Socket) -> io::Result<(Ipv4Addr, Vec<u8>)> {
    let mut buf = [0u8; 1500];
    loop {
        let n = sock.read(&mut buf)?;
        let Some(ip) = Ipv4Packet::new(&buf[..n]) else {
            continue;
        };
        let icmp = ip.payload();
        if icmp.len() >= 16 && icmp[0] == IcmpTypes::EchoRequest.0 {
            return Ok((ip.get_source(), icmp.to_vec()));
        }
    }
}

/// Makes the echo request `icmp` a reply, with its checksum recomputed.
pub fn into_echo_reply(icmp: &mut [u8]) {
    icmp[0] = IcmpTypes::EchoReply.0;
    icmp[2] = 0;
    icmp[3] = 0;
    let sum = IcmpPacket::new(icmp).map_or(0, |p| pnet_packet::icmp::checksum(&p));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
}
