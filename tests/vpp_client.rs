//! Client <-> VPP test double: handshake, id tables, dumps, lb semantics, error codes,
//! keepalive, reconnects and fault handling.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use maglev::vpp::client::{
    ApiErrorCode, Client, ClientConfig, ConnState, Connection, ConnectionConfig, LbApiGeneration,
    VppError,
};
use maglev::vpp::messages::lb::*;
use maglev::vpp::messages::memclnt::{ControlPing, SockclntCreate, SockclntCreateReply};
use maglev::vpp::wire::{
    EncapType, FixedString, Header, Message, Prefix, decode_message, encode_frame, encode_message,
    read_frame,
};
use support::vpp_double::{ApiMode, VppDouble};
use tokio::io::AsyncWriteExt;

fn config(double: &VppDouble) -> ClientConfig {
    ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "maglev-test".to_string(),
        request_timeout: Duration::from_secs(2),
        keepalive_interval: Duration::from_secs(60),
    }
}

async fn connect(double: &VppDouble) -> Client {
    Client::connect(config(double))
        .await
        .expect("connect to double")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str, len: u8) -> Prefix {
    Prefix::new(ip(s), len)
}

fn add_as(vip: Prefix, port: u16, addr: &str, weight: u8) -> LbAddDelAsV2 {
    LbAddDelAsV2 {
        pfx: vip,
        protocol: 6,
        port,
        as_address: ip(addr),
        weight,
        is_del: false,
        is_flush: false,
    }
}

/// Polls `f` every 10 ms for up to 5 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn handshake_builds_this_connections_id_table() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    assert_eq!(client.generation(), LbApiGeneration::Weighted);
    assert_ne!(client.client_index() & 0x8000_0000, 0);
    for key in [
        "lb_add_del_vip_v2_7c520e0f",
        "lb_as_v2_dump_1063f819",
        "cli_inband_f8377302",
    ] {
        assert_eq!(client.table().id(key), double.msg_id(key), "{key}");
        assert!(client.table().id(key).is_some());
    }
    assert!(
        client.table().len() > 50,
        "filler entries are part of the table"
    );
    let version = client.show_version().await.unwrap();
    assert_eq!(version.program, "vpe");
    assert!(version.version.starts_with("26.10"));
    assert_eq!(client.control_ping().await.unwrap(), double.pid());
    client.disconnect().await;
    assert!(client.is_closed());
    assert_eq!(double.requests("sockclnt_delete"), 1);
}

#[tokio::test]
async fn ids_are_not_reused_across_restarts() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let names = [
        "lb_conf_56cd3261",
        "lb_add_del_vip_v2_7c520e0f",
        "lb_add_del_as_v2_2f1d3b0e",
        "lb_as_set_weight_2d89bdbd",
        "lb_vip_dump_56110cb7",
        "show_version_51077d14",
    ];
    let before: Vec<_> = names.iter().map(|n| double.msg_id(n)).collect();
    double.restart_empty();
    let after: Vec<_> = names.iter().map(|n| double.msg_id(n)).collect();
    assert_ne!(before, after);
    let client = connect(&double).await;
    for n in names {
        assert_eq!(client.table().id(n), double.msg_id(n));
    }
    assert!(client.show_version().await.is_ok());
}

#[tokio::test]
async fn vip_and_as_lifecycle_with_weights() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;

    let mut conf = LbConf::new(
        "192.0.2.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    );
    conf.sticky_buckets_per_core = 2048;
    client.lb_conf(&conf).await.unwrap();
    let got = client.lb_conf_get().await.unwrap();
    assert_eq!(got.ip4_src_address.to_string(), "192.0.2.10");
    assert_eq!(got.sticky_buckets_per_core, 2048);
    assert_eq!(got.flow_timeout, 40, "0xFFFFFFFF keeps the default");

    let vip = pfx("192.0.2.1", 32);
    client
        .lb_add_del_vip_v2(&LbAddDelVipV2::add(vip, 6, 80, EncapType::GRE4))
        .await
        .unwrap();
    client
        .lb_add_del_vip_v2(&LbAddDelVipV2::add(
            pfx("2001:db8::1", 128),
            17,
            443,
            EncapType::GRE6,
        ))
        .await
        .unwrap();
    let vips = client.lb_vip_dump().await.unwrap();
    assert_eq!(vips.len(), 2);
    assert_eq!(vips[0].vip.pfx, vip);
    assert_eq!(vips[0].vip.port, 80);
    assert_eq!(vips[0].vip.protocol.0, 6);
    assert_eq!(vips[0].flow_table_length, 1024);
    assert_eq!(vips[1].encap, EncapType::GRE6);

    for (addr, w) in [("10.0.0.1", 100), ("10.0.0.2", 50), ("10.0.0.3", 0)] {
        client
            .lb_add_del_as_v2(&add_as(vip, 80, addr, w))
            .await
            .unwrap();
    }
    let ases = client.lb_as_v2_dump().await.unwrap();
    assert_eq!(ases.len(), 3);
    let total: u32 = ases.iter().map(|a| a.num_buckets).sum();
    assert_eq!(total, 1024, "every new-flow slot belongs to some AS");
    let by_addr = |addr: &str| ases.iter().find(|a| a.app_srv == ip(addr)).unwrap().clone();
    assert_eq!(by_addr("10.0.0.3").num_buckets, 0, "weight 0 drains");
    assert!(by_addr("10.0.0.1").num_buckets > by_addr("10.0.0.2").num_buckets);
    assert_eq!(by_addr("10.0.0.2").weight, 50);

    client
        .lb_as_set_weight(&LbAsSetWeight {
            pfx: vip,
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.3"),
            weight: 100,
            is_flush: false,
        })
        .await
        .unwrap();
    let view = double.vip(vip, 80).unwrap();
    assert_eq!(
        view.ases
            .iter()
            .find(|a| a.address == ip("10.0.0.3"))
            .unwrap()
            .weight,
        100
    );

    // Lazy deletion: the AS stays, flag cleared, until GC.
    let mut del = add_as(vip, 80, "10.0.0.2", 0);
    del.is_del = true;
    client.lb_add_del_as_v2(&del).await.unwrap();
    let entries = client.lb_as_entries().await.unwrap();
    let removed = entries
        .iter()
        .find(|a| a.address == ip("10.0.0.2"))
        .unwrap();
    assert!(!removed.used);
    assert_eq!(removed.num_buckets, Some(0));
    // Re-adding a removed AS revives it with the new weight.
    client
        .lb_add_del_as_v2(&add_as(vip, 80, "10.0.0.2", 30))
        .await
        .unwrap();
    let revived = double.vip(vip, 80).unwrap();
    let a = revived
        .ases
        .iter()
        .find(|a| a.address == ip("10.0.0.2"))
        .unwrap();
    assert!(a.used);
    assert_eq!(a.weight, 30);
    client.lb_add_del_as_v2(&del).await.unwrap();
    double.gc();
    assert_eq!(client.lb_as_v2_dump().await.unwrap().len(), 2);

    client
        .lb_add_del_vip_v2(&LbAddDelVipV2::delete(vip, 6, 80))
        .await
        .unwrap();
    let vips = client.lb_vip_dump().await.unwrap();
    assert_eq!(vips.len(), 1, "master hides removed VIPs");
    assert_eq!(double.requests("lb_add_del_as_v2"), 6);
    assert_eq!(double.requests("lb_as_set_weight"), 1);
}

#[tokio::test]
async fn vpp_error_codes_are_typed() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    let vip = pfx("192.0.2.1", 32);
    let add = LbAddDelVipV2::add(vip, 6, 80, EncapType::GRE4);
    client.lb_add_del_vip_v2(&add).await.unwrap();

    let code = |r: Result<(), VppError>| r.unwrap_err().api_code();
    // Duplicate VIP.
    assert_eq!(
        code(client.lb_add_del_vip_v2(&add).await),
        Some(ApiErrorCode::VALUE_EXIST)
    );
    // All-port VIP on a prefix that has a per-port VIP.
    let all_port = LbAddDelVipV2::add(vip, 0, 0, EncapType::GRE4);
    assert_eq!(
        code(client.lb_add_del_vip_v2(&all_port).await),
        Some(ApiErrorCode::VALUE_EXIST)
    );
    // Per-port VIPs of one prefix must share the encap.
    let other_encap = LbAddDelVipV2::add(vip, 6, 443, EncapType::GRE6);
    assert_eq!(
        code(client.lb_add_del_vip_v2(&other_encap).await),
        Some(ApiErrorCode::INVALID_ARGUMENT)
    );
    // Non power-of-two table: refused client-side, and by VPP when sent anyway.
    let mut odd = LbAddDelVipV2::add(pfx("192.0.2.2", 32), 6, 80, EncapType::GRE4);
    odd.new_flows_table_length = 1000;
    assert!(matches!(
        client.lb_add_del_vip_v2(&odd).await,
        Err(VppError::Invalid(_))
    ));
    let raw = client.call(&odd).await.unwrap_err();
    assert_eq!(raw.api_code(), Some(ApiErrorCode::INVALID_MEMORY_SIZE));
    // IPv6 AS on a gre4 VIP.
    let v6_as = add_as(vip, 80, "2001:db8::5", 100);
    assert_eq!(
        code(client.lb_add_del_as_v2(&v6_as).await),
        Some(ApiErrorCode::INVALID_ADDRESS_FAMILY)
    );
    // Live AS added twice; weight of a missing AS; VIP that does not exist.
    client
        .lb_add_del_as_v2(&add_as(vip, 80, "10.0.0.1", 100))
        .await
        .unwrap();
    assert_eq!(
        code(
            client
                .lb_add_del_as_v2(&add_as(vip, 80, "10.0.0.1", 20))
                .await
        ),
        Some(ApiErrorCode::VALUE_EXIST)
    );
    let set = LbAsSetWeight {
        pfx: vip,
        protocol: 6,
        port: 80,
        as_address: ip("10.0.0.9"),
        weight: 10,
        is_flush: false,
    };
    assert_eq!(
        code(client.lb_as_set_weight(&set).await),
        Some(ApiErrorCode::NO_SUCH_ENTRY)
    );
    let missing = LbAddDelVipV2::delete(pfx("198.51.100.1", 32), 6, 80);
    assert_eq!(
        code(client.lb_add_del_vip_v2(&missing).await),
        Some(ApiErrorCode::NO_SUCH_ENTRY)
    );
    // The connection survives API errors.
    assert!(client.control_ping().await.is_ok());
    // A 0 table length is never sent (it would kill VPP).
    let mut zero = LbAddDelVipV2::add(pfx("192.0.2.3", 32), 6, 80, EncapType::GRE4);
    zero.new_flows_table_length = 0;
    assert!(matches!(
        client.lb_add_del_vip_v2(&zero).await,
        Err(VppError::Invalid(_))
    ));
    assert_eq!(double.fatal_requests(), 0);
}

#[tokio::test]
async fn cli_inband_show_lb_vips_verbose_and_errors() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    let vip = pfx("192.0.2.1", 32);
    let mut add = LbAddDelVipV2::add(vip, 6, 80, EncapType::GRE4);
    add.src_ip_sticky = true;
    client.lb_add_del_vip_v2(&add).await.unwrap();
    client
        .lb_add_del_as_v2(&add_as(vip, 80, "10.0.0.1", 100))
        .await
        .unwrap();
    let text = client.cli_inband("show lb vips verbose").await.unwrap();
    assert!(
        text.contains("ip4-gre4 [1] 192.0.2.1/32 src_ip_sticky"),
        "{text}"
    );
    assert!(text.contains("10.0.0.1 weight:100 buckets:1024"), "{text}");
    assert!(
        client
            .cli_inband("show version")
            .await
            .unwrap()
            .starts_with("vpp v26.10")
    );
    match client.cli_inband("frobnicate").await {
        Err(VppError::Cli { code, output, .. }) => {
            assert_eq!(code, ApiErrorCode::UNSPECIFIED);
            assert!(output.contains("unknown input"));
        }
        other => panic!("expected a CLI error, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_vpp_quirks_and_missing_messages() {
    let double = VppDouble::start(ApiMode::V1_1).await;
    let client = connect(&double).await;
    assert_eq!(client.generation(), LbApiGeneration::Legacy);

    // Weights API absent: refused before sending anything.
    let set = LbAsSetWeight {
        pfx: pfx("192.0.2.1", 32),
        protocol: 6,
        port: 80,
        as_address: ip("10.0.0.1"),
        weight: 10,
        is_flush: false,
    };
    match client.lb_as_set_weight(&set).await {
        Err(VppError::Unsupported { name_crc }) => {
            assert_eq!(name_crc, "lb_as_set_weight_2d89bdbd")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(matches!(
        client.lb_conf_get().await,
        Err(VppError::Unsupported { .. })
    ));
    assert_eq!(double.requests("lb_as_set_weight"), 0);

    // The typed call adds the 96 that 1.1.0 wants; the dump comes back normalised.
    let vip = pfx("192.0.2.1", 32);
    client
        .lb_add_del_vip_v2(&LbAddDelVipV2::add(vip, 6, 80, EncapType::GRE4))
        .await
        .unwrap();
    assert!(double.vip(vip, 80).is_some(), "{:?}", double.vips());
    let vips = client.lb_vip_dump().await.unwrap();
    assert_eq!(vips[0].vip.pfx, vip);
    assert_eq!(
        vips[0].encap,
        EncapType(3),
        "1.1.0 dumps the internal ip4-gre4 type"
    );
    assert_eq!(
        vips[0].vip.protocol.0, 0,
        "1.1.0 dumps the low byte of htonl(protocol)"
    );
    client
        .lb_add_del_as(&LbAddDelAs {
            pfx: vip,
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.1"),
            is_del: false,
            is_flush: false,
        })
        .await
        .unwrap();
    let entries = client.lb_as_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].weight, None);
    assert_eq!(entries[0].vip.pfx, vip);

    // Sent raw with a plain /32, 1.1.0 creates the bogus ::/32 VIP.
    client
        .call(&LbAddDelVipV2::add(
            pfx("198.51.100.1", 32),
            6,
            80,
            EncapType::GRE4,
        ))
        .await
        .unwrap();
    assert!(double.vips().iter().any(|v| v.prefix == pfx("::", 32)));
    // GRE6 is misread on 1.1.0: refused client-side; VPP would answer -97.
    let gre6 = LbAddDelVipV2::add(pfx("203.0.113.1", 32), 6, 80, EncapType::GRE6);
    assert!(matches!(
        client.lb_add_del_vip_v2(&gre6).await,
        Err(VppError::Invalid(_))
    ));
    let mut raw = gre6.clone();
    raw.pfx.len += 96;
    assert_eq!(
        client.call(&raw).await.unwrap_err().api_code(),
        Some(ApiErrorCode::INVALID_ADDRESS_FAMILY)
    );
    let text = client.cli_inband("show lb vips verbose").await.unwrap();
    assert!(text.contains("\r\n"));
    assert!(!text.contains("weight:"));
}

#[tokio::test]
async fn wrong_client_index_gets_no_reply() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let stream = tokio::net::UnixStream::connect(double.socket_path())
        .await
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let create = encode_message(
        &Header {
            msg_id: 15,
            context: 124,
            ..Header::default()
        },
        &SockclntCreate {
            name: FixedString::new("raw"),
        },
    );
    wr.write_all(&encode_frame(&create, 0, 0)).await.unwrap();
    let reply = read_frame(&mut rd).await.unwrap().unwrap();
    let (h, r) = decode_message::<SockclntCreateReply>(&reply).unwrap();
    assert_eq!((h.msg_id, h.context, h.client_index), (16, 124, 0));
    let ping_id = r
        .message_table
        .iter()
        .find(|e| e.name.as_str() == ControlPing::name_crc())
        .unwrap()
        .index;
    let ping = |client_index, context| {
        encode_frame(
            &encode_message(
                &Header {
                    msg_id: ping_id,
                    client_index,
                    context,
                    retval: 0,
                },
                &ControlPing {},
            ),
            0,
            0,
        )
    };
    wr.write_all(&ping(r.index ^ 1, 1)).await.unwrap();
    wr.write_all(&ping(r.index, 2)).await.unwrap();
    let answer = read_frame(&mut rd).await.unwrap().unwrap();
    let (h, _) =
        decode_message::<maglev::vpp::messages::memclnt::ControlPingReply>(&answer).unwrap();
    assert_eq!(h.context, 2, "the ping with the wrong index got no reply");
    assert_eq!(double.requests("control_ping"), 1);
}

#[tokio::test]
async fn keepalives_both_ways() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let mut cfg = config(&double);
    cfg.keepalive_interval = Duration::from_millis(20);
    let client = Client::connect(cfg).await.unwrap();
    eventually("periodic control_ping", || {
        double.requests("control_ping") >= 3
    })
    .await;
    double.send_keepalive(77);
    eventually("memclnt_keepalive_reply", || {
        double.keepalive_replies() == 1
    })
    .await;
    assert!(!client.is_closed());
}

#[tokio::test]
async fn delayed_reply_times_out_and_drops_the_connection() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let mut cfg = config(&double);
    cfg.request_timeout = Duration::from_millis(100);
    let client = Client::connect(cfg).await.unwrap();
    double.set_reply_delay(Duration::from_millis(400));
    match client.show_version().await {
        Err(VppError::Timeout { message, .. }) => assert_eq!(message, "show_version"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(client.is_closed());
    assert!(matches!(
        client.control_ping().await,
        Err(VppError::Disconnected(_))
    ));
}

#[tokio::test]
async fn corrupt_frame_drops_the_connection() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    double.corrupt_next_reply();
    let err = client.lb_vip_dump().await.unwrap_err();
    assert!(matches!(err, VppError::Disconnected(_)), "{err:?}");
    assert!(client.closed_reason().unwrap().contains("garbage"));
}

#[tokio::test]
async fn absurd_length_drops_the_connection() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    double.absurd_length_next_reply();
    let err = client.show_version().await.unwrap_err();
    assert!(matches!(err, VppError::Disconnected(_)), "{err:?}");
    let reason = client.closed_reason().unwrap();
    assert!(reason.contains("exceeds"), "{reason}");
}

#[tokio::test]
async fn eof_fails_pending_calls() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    double.close_after(Some(1));
    let err = client.show_version().await.unwrap_err();
    assert!(matches!(err, VppError::Disconnected(_)), "{err:?}");
    assert!(client.is_closed());
}

#[tokio::test]
async fn supervisor_reconnects_after_vpp_restarts_empty() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let conn = Connection::spawn(ConnectionConfig {
        client: config(&double),
        retry_interval: Duration::from_millis(20),
        max_retry_interval: Duration::from_millis(100),
    });
    let mut state = conn.state();
    let first = state
        .wait_for(ConnState::is_connected)
        .await
        .unwrap()
        .clone();
    let ConnState::Connected {
        epoch,
        vpe_pid,
        generation,
        ..
    } = first
    else {
        unreachable!()
    };
    assert_eq!(
        (epoch, vpe_pid, generation),
        (1, double.pid(), LbApiGeneration::Weighted)
    );
    let client = conn.client().unwrap();
    client
        .lb_add_del_vip_v2(&LbAddDelVipV2::add(
            pfx("192.0.2.1", 32),
            6,
            80,
            EncapType::GRE4,
        ))
        .await
        .unwrap();

    let old_pid = double.pid();
    double.restart_empty();
    let second = state
        .wait_for(|s| s.epoch().is_some_and(|e| e >= 2))
        .await
        .unwrap()
        .clone();
    let ConnState::Connected { vpe_pid, .. } = second else {
        unreachable!()
    };
    assert_ne!(vpe_pid, old_pid);
    assert_eq!(vpe_pid, double.pid());
    assert!(client.is_closed(), "the old client never comes back");
    let fresh = conn.client().unwrap();
    let key = "lb_add_del_vip_v2_7c520e0f";
    assert_eq!(fresh.table().id(key), double.msg_id(key));
    assert!(
        fresh.lb_vip_dump().await.unwrap().is_empty(),
        "VPP restarted empty"
    );
    conn.shutdown().await;
}

#[tokio::test]
async fn supervisor_retries_until_the_socket_appears() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::spawn(ConnectionConfig {
        client: ClientConfig {
            socket_path: dir.path().join("missing.sock"),
            ..ClientConfig::default()
        },
        retry_interval: Duration::from_millis(10),
        max_retry_interval: Duration::from_millis(40),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(conn.current(), ConnState::Disconnected);
    assert!(conn.client().is_none());
}

#[tokio::test]
async fn dumps_stream_many_details_in_order() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let client = connect(&double).await;
    for i in 1..=40u8 {
        let vip = Prefix::new(IpAddr::from([10, 1, i, 0]), 24);
        client
            .lb_add_del_vip_v2(&LbAddDelVipV2::add(vip, 6, 80, EncapType::GRE4))
            .await
            .unwrap();
    }
    let vips = client.lb_vip_dump().await.unwrap();
    let thirds: Vec<u8> = vips
        .iter()
        .map(|v| match v.vip.pfx.addr {
            IpAddr::V4(a) => a.octets()[2],
            IpAddr::V6(_) => 0,
        })
        .collect();
    assert_eq!(thirds, (1..=40).collect::<Vec<u8>>());
    // Concurrent calls are routed by context.
    let (a, b, c) = tokio::join!(
        client.lb_vip_dump(),
        client.show_version(),
        client.lb_as_v2_dump()
    );
    assert_eq!(a.unwrap().len(), 40);
    assert!(b.is_ok());
    assert!(c.unwrap().is_empty());
}
