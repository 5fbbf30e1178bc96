//! Golden vectors of docs/vpp-wire.md Appendix A (produced by vpp-papi 2.4.2), byte for byte.

use std::net::IpAddr;

use super::lb::*;
use super::memclnt::*;
use super::vpe::*;
use crate::vpp::wire::{
    EncapType, FixedString, Header, IpProto, LbVip, Message, Prefix, VlaString, decode_message,
    encode_message,
};

const CLIENT: u32 = 0x8000_0001;

fn hex(s: &str) -> Vec<u8> {
    let mut out = String::new();
    // Expand the "00×12" shorthand of the appendix.
    for token in s.split_whitespace() {
        if let Some((byte, count)) = token.split_once('×') {
            out.push_str(&byte.repeat(count.parse().unwrap()));
        } else {
            out.push_str(token);
        }
    }
    (0..out.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&out[i..i + 2], 16).unwrap())
        .collect()
}

fn request(msg_id: u16, context: u32) -> Header {
    Header {
        msg_id,
        client_index: CLIENT,
        context,
        retval: 0,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str, len: u8) -> Prefix {
    Prefix::new(ip(s), len)
}

/// Encodes, compares with the vector, and decodes the vector back to the same value.
fn check<M: Message + PartialEq + std::fmt::Debug>(header: Header, msg: M, golden: &str) {
    let expected = hex(golden);
    let bytes = encode_message(&header, &msg);
    assert_eq!(bytes, expected, "{} encoding", M::NAME);
    let (h, decoded) = decode_message::<M>(&expected).unwrap();
    assert_eq!(h, header, "{} header", M::NAME);
    assert_eq!(decoded, msg, "{} decoding", M::NAME);
}

#[test]
fn sockclnt_create() {
    let header = Header {
        msg_id: SOCKCLNT_CREATE_ID,
        context: 0x7b,
        ..Header::default()
    };
    let msg = SockclntCreate {
        name: FixedString::new("rust-client"),
    };
    check(header, msg, "000f0000007b727573742d636c69656e74 00×53");
}

#[test]
fn control_ping() {
    check(request(23, 9), ControlPing {}, "00178000000100000009");
}

#[test]
fn lb_add_del_vip_v2_ipv4() {
    let msg = LbAddDelVipV2::add(pfx("192.0.2.1", 32), 6, 80, EncapType::GRE4);
    check(
        request(0x200, 1),
        msg,
        "0200 80000001 00000001 00 c0000201 000000000000000000000000 20 06 0050 \
         00000000 00 00000000 0000 0000 00000400 00 00",
    );
}

#[test]
fn lb_add_del_vip_v2_ipv6() {
    let mut msg = LbAddDelVipV2::add(pfx("2001:db8::1", 128), 17, 443, EncapType::GRE6);
    msg.new_flows_table_length = 65536;
    check(
        request(0x200, 1),
        msg,
        "0200 80000001 00000001 01 20010db8000000000000000000000001 80 11 01bb \
         00000001 00 00000000 0000 0000 00010000 00 00",
    );
}

#[test]
fn lb_add_del_as() {
    let msg = LbAddDelAs {
        pfx: pfx("192.0.2.1", 32),
        protocol: 6,
        port: 80,
        as_address: ip("10.0.0.1"),
        is_del: false,
        is_flush: false,
    };
    check(
        request(0x201, 2),
        msg,
        "0201 80000001 00000002 00 c0000201 00×12 20 06 0050 00 0a000001 00×12 00 00",
    );
}

#[test]
fn lb_add_del_as_v2() {
    let msg = LbAddDelAsV2 {
        pfx: pfx("2001:db8::", 64),
        protocol: 6,
        port: 443,
        as_address: ip("2001:db8:1::5"),
        weight: 25,
        is_del: false,
        is_flush: true,
    };
    check(
        request(0x1f5, 0x11),
        msg,
        "01f5 80000001 00000011 01 20010db8000000000000000000000000 40 06 01bb \
         01 20010db8000100000000000000000005 19 00 01",
    );
}

#[test]
fn lb_as_set_weight() {
    let msg = LbAsSetWeight {
        pfx: pfx("192.0.2.1", 32),
        protocol: 6,
        port: 80,
        as_address: ip("10.0.0.1"),
        weight: 50,
        is_flush: false,
    };
    check(
        request(0x204, 5),
        msg,
        "0204 80000001 00000005 00 c0000201 00×12 20 06 0050 00 0a000001 00×12 32 00",
    );
}

#[test]
fn lb_conf() {
    let msg = LbConf::new(
        "192.0.2.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    );
    check(
        request(0x202, 3),
        msg,
        "0202 80000001 00000003 c000020a 20010db8000000000000000000000010 ffffffff ffffffff",
    );
}

#[test]
fn lb_vip_dump_defaults() {
    check(
        request(0x203, 4),
        LbVipDump::all(),
        "0203 80000001 00000004 00 00×16 00 0000 ff 0000",
    );
}

#[test]
fn lb_flush_vip() {
    let msg = LbFlushVip {
        pfx: pfx("192.0.2.0", 24),
        protocol: 17,
        port: 53,
    };
    check(
        request(0x1f6, 0x12),
        msg,
        "01f6 80000001 00000012 00 c0000200 00×12 18 11 0035",
    );
}

#[test]
fn lb_add_del_intf_nat4() {
    let msg = LbAddDelIntfNat4 {
        is_add: true,
        sw_if_index: crate::vpp::wire::InterfaceIndex(1),
    };
    check(
        request(0x1f8, 0x14),
        msg,
        "01f8 80000001 00000014 01 00000001",
    );
}

#[test]
fn sockclnt_delete() {
    check(
        request(17, 0x16),
        SockclntDelete { index: CLIENT },
        "0011 80000001 00000016 80000001",
    );
}

#[test]
fn cli_inband() {
    check(
        request(0x1234, 7),
        CliInband {
            cmd: VlaString::new("show version"),
        },
        "1234 80000001 00000007 0000000c 73686f772076657273696f6e",
    );
}

#[test]
fn decode_lb_as_v2_details() {
    let bytes =
        hex("0200 00000013 00 c0000201 00×12 20 06 0050 00 0a000001 00×12 01 00000000 32 00000200");
    let (h, d) = decode_message::<LbAsV2Details>(&bytes).unwrap();
    assert_eq!(h.context, 0x13);
    let expected = LbAsV2Details {
        vip: LbVip {
            pfx: pfx("192.0.2.1", 32),
            protocol: IpProto::TCP,
            port: 80,
        },
        app_srv: ip("10.0.0.1"),
        flags: AS_FLAG_USED,
        in_use_since: 0,
        weight: 50,
        num_buckets: 512,
    };
    assert_eq!(d, expected);
    assert_eq!(encode_message(&h, &d), bytes);
}

#[test]
fn decode_control_ping_reply() {
    let bytes = hex("0018 00000009 00000000 80000001 000004d2");
    let (h, d) = decode_message::<ControlPingReply>(&bytes).unwrap();
    assert_eq!((h.msg_id, h.context, h.retval), (0x18, 9, 0));
    assert_eq!(d.vpe_pid, 1234);
    assert_eq!(d.client_index, CLIENT);
}

#[test]
fn wire_sizes_match_vpp_wire_table() {
    let sizes = [
        (
            encode_message(&request(1, 1), &LbConf::new([0; 4].into(), [0; 16].into())).len(),
            38,
        ),
        (encode_message(&request(1, 1), &LbConfGet {}).len(), 10),
        (encode_message(&request(1, 1), &LbAsV2Dump::all()).len(), 31),
        (encode_message(&request(1, 1), &LbAsDump::all()).len(), 31),
        (encode_message(&request(1, 1), &LbVipDump::all()).len(), 33),
    ];
    for (got, want) in sizes {
        assert_eq!(got, want);
    }
    let v1 = LbAddDelVip {
        pfx: Prefix::unspecified(),
        protocol: PROTOCOL_ANY,
        port: 0,
        encap: EncapType::GRE4,
        dscp: 0,
        srv_type: crate::vpp::wire::SrvType::CLUSTERIP,
        target_port: 0,
        node_port: 0,
        new_flows_table_length: 1024,
        is_del: false,
    };
    assert_eq!(encode_message(&request(1, 1), &v1).len(), 49);
    let details = LbVipDetails {
        vip: LbVip {
            pfx: Prefix::unspecified(),
            protocol: IpProto::ANY,
            port: 0,
        },
        encap: EncapType::GRE4,
        dscp: crate::vpp::wire::IpDscp(0),
        srv_type: crate::vpp::wire::SrvType::CLUSTERIP,
        target_port: 0,
        flow_table_length: 0,
    };
    assert_eq!(encode_message(&Header::default(), &details).len(), 40);
    let reply = ShowVersionReply {
        program: FixedString::new("vpe"),
        version: FixedString::new("v26.10"),
        build_date: FixedString::new(""),
        build_directory: FixedString::new(""),
    };
    assert_eq!(encode_message(&Header::default(), &reply).len(), 10 + 352);
}

#[test]
fn truncated_messages_are_errors_not_panics() {
    let full = encode_message(
        &request(1, 1),
        &LbAddDelAsV2 {
            pfx: pfx("192.0.2.1", 32),
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.1"),
            weight: 1,
            is_del: false,
            is_flush: false,
        },
    );
    for cut in 0..full.len() {
        assert!(
            decode_message::<LbAddDelAsV2>(&full[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // Longer than needed is accepted, like VPP does.
    let mut longer = full.clone();
    longer.extend_from_slice(&[0xaa; 7]);
    assert!(decode_message::<LbAddDelAsV2>(&longer).is_ok());
}

#[test]
fn sockclnt_create_reply_roundtrip_and_bogus_count() {
    use crate::vpp::wire::MessageTableEntry;
    let reply = SockclntCreateReply::new(
        CLIENT,
        vec![MessageTableEntry {
            index: 23,
            name: FixedString::new("control_ping_51077d14"),
        }],
    );
    let header = Header {
        msg_id: SOCKCLNT_CREATE_REPLY_ID,
        client_index: 0,
        context: 0x7b,
        retval: 0,
    };
    let bytes = encode_message(&header, &reply);
    assert_eq!(bytes.len(), 2 + 4 + 4 + 4 + 4 + 2 + 66);
    assert_eq!(
        decode_message::<SockclntCreateReply>(&bytes).unwrap().1,
        reply
    );
    let mut bogus = bytes.clone();
    bogus[18..20].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(decode_message::<SockclntCreateReply>(&bogus).is_err());
}

/// Vectors packed by vpp-papi 2.4.2 from hand-written fib_types/ip JSON definitions.
#[test]
fn ip_route_lookup() {
    use super::ip::*;
    check(
        request(0x300, 5),
        IpRouteLookup::exact(0, pfx("192.0.2.1", 32)),
        "0300 80000001 00000005 00000000 01 00 c0000201 00×12 20",
    );
}

#[test]
fn ip_route_lookup_reply_with_one_path() {
    use super::ip::*;
    let path = FibPath {
        sw_if_index: 1,
        weight: 1,
        nh: FibPathNh {
            address: std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
            ..FibPathNh::default()
        },
        ..FibPath::default()
    };
    let reply = IpRouteLookupReply {
        route: IpRoute {
            table_id: 0,
            stats_index: 42,
            prefix: FibPrefix(pfx("192.0.2.1", 32)),
            n_paths: 1,
            paths: vec![path],
        },
    };
    let header = Header {
        msg_id: 0x301,
        context: 5,
        ..Header::default()
    };
    check(
        header,
        reply,
        "0301 00000005 00000000 00000000 0000002a 00 c0000201 00×12 20 01 \
         00000001 00000000 00000000 01 00 00000000 00000000 00000000 \
         0a000001 00×12 00000000 00000000 00000000 00 00×112",
    );
    // A path count larger than the bytes present is an error, not an allocation.
    let mut bytes = encode_message(
        &header,
        &IpRouteLookupReply {
            route: IpRoute {
                table_id: 0,
                stats_index: 42,
                prefix: FibPrefix(pfx("192.0.2.1", 32)),
                n_paths: 0,
                paths: Vec::new(),
            },
        },
    );
    assert_eq!(bytes.len(), 10 + 27);
    bytes[36] = 200;
    assert!(decode_message::<IpRouteLookupReply>(&bytes).is_err());
}
