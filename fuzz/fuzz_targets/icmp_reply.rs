//! ICMP reply parsing (IPv4 with and without the IP header, IPv6) and the reply demux on
//! arbitrary bytes: no panic, and a reply is only ever credited to the probe whose address,
//! identifier, sequence and token it carries.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use maglev::probe::icmp::demux::{Answer, Dispatch, Outstanding};
use maglev::probe::icmp::packet::{Received, Token, parse_v4, parse_v6};
use tokio::sync::oneshot;

const V4_PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const V6_PEER: Ipv6Addr = Ipv6Addr::LOCALHOST;
const IDENT: u16 = 0x4d47;
const TOKEN: Token = *b"maglev!!";

/// Feeds `msg` to a table holding one request to `addr` and checks the verdict.
fn check_dispatch(msg: &Received, addr: IpAddr, raw_socket: bool) {
    let ident = raw_socket.then_some(IDENT);
    let mut table = Outstanding::new(ident, 1);
    let (tx, mut rx) = oneshot::channel();
    let Some(seq) = table.insert(addr, TOKEN, tx) else {
        panic!("empty table refused a request");
    };
    let verdict = table.dispatch(msg);
    let answer = rx.try_recv().ok();
    match (verdict, msg) {
        (
            Dispatch::Matched,
            Received::Reply {
                src,
                ident: got_ident,
                seq: got_seq,
                payload,
            },
        ) => {
            assert_eq!(*src, addr, "reply credited from the wrong source");
            assert_eq!(*got_seq, seq);
            assert!(
                ident.is_none_or(|i| i == *got_ident),
                "wrong identifier credited"
            );
            assert!(
                payload.starts_with(&TOKEN),
                "reply without the token credited"
            );
            assert_eq!(answer, Some(Answer::Reply));
            assert!(table.is_empty());
        }
        (
            Dispatch::Matched,
            Received::Unreachable {
                dst,
                seq: got_seq,
                code,
                ..
            },
        ) => {
            assert_eq!(*dst, addr);
            assert_eq!(*got_seq, seq);
            assert_eq!(answer, Some(Answer::Unreachable { code: *code }));
        }
        (Dispatch::Matched, Received::Other) => panic!("junk was credited"),
        (Dispatch::Unmatched | Dispatch::Ignored, _) => {
            assert_eq!(answer, None, "a probe was woken without a match");
            assert_eq!(table.len(), 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Both what a raw socket hands us (IP header first) and a ping socket (ICMP alone).
    let with_header = parse_v4(data, true, V4_PEER);
    check_dispatch(&with_header, IpAddr::V4(V4_PEER), true);
    let bare = parse_v4(data, false, V4_PEER);
    check_dispatch(&bare, IpAddr::V4(V4_PEER), false);
    check_dispatch(&bare, IpAddr::V4(V4_PEER), true);
    let v6 = parse_v6(data, V6_PEER);
    check_dispatch(&v6, IpAddr::V6(V6_PEER), true);
    check_dispatch(&v6, IpAddr::V6(V6_PEER), false);
});
