//! Cross-check against vpp-papi 2.4.2 (PyPI), an independent implementation of the wire
//! format: our crate emits vpp-papi JSON definitions from its own message types; every
//! message we use is encoded by us and unpacked by vpp-papi (values must match), and
//! packed by vpp-papi from the same values and decoded by us (bytes and values must match).
//! Outside CI it skips (with a printed reason) when `python3 -c "import vpp_papi"` fails.

#[path = "support/papi_json.rs"]
mod papi_json;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use maglev::vpp::messages::all_messages;
use maglev::vpp::messages::ip::*;
use maglev::vpp::messages::lb::*;
use maglev::vpp::messages::memclnt::*;
use maglev::vpp::messages::vpe::*;
use maglev::vpp::wire::{
    EncapType, FixedString, Header, HeaderKind, InterfaceIndex, IpDscp, IpProto, LbVip, Message,
    MessageTableEntry, ModuleVersion, Prefix, PrefixMatcher, SrvType, VlaString, decode_message,
    encode_message,
};
use papi_json::papi_json;
use serde::Serialize;
use serde_json::{Value, json};

/// Decodes bytes packed by vpp-papi and compares with the original message.
type SameMessage = Box<dyn Fn(&[u8]) -> bool>;

struct Sample {
    name: &'static str,
    bytes: Vec<u8>,
    value: Value,
    same_message: SameMessage,
}

fn sample<M: Message + Serialize + PartialEq + 'static>(msg: M) -> Sample {
    let header = Header {
        msg_id: 0x1234,
        client_index: if matches!(
            M::HEADER,
            HeaderKind::Request | HeaderKind::ClientContextResponse
        ) {
            0x8000_0001
        } else {
            0
        },
        context: 0x0102_0304,
        retval: if matches!(M::HEADER, HeaderKind::Reply) {
            -81
        } else {
            0
        },
    };
    let bytes = encode_message(&header, &msg);
    let mut value = json!({ "_vl_msg_id": header.msg_id });
    for field in M::HEADER.fields() {
        let v = match field.name {
            "client_index" => json!(header.client_index),
            "context" => json!(header.context),
            _ => json!(header.retval),
        };
        value[field.name] = v;
    }
    if let Value::Object(body) = serde_json::to_value(&msg).unwrap() {
        for (k, v) in body {
            value[k] = v;
        }
    }
    Sample {
        name: M::NAME,
        bytes,
        value,
        same_message: Box::new(move |packed| {
            decode_message::<M>(packed).is_ok_and(|(h, m)| h == header && m == msg)
        }),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4_vip() -> Prefix {
    Prefix::new(ip("192.0.2.1"), 32)
}

fn v6_vip() -> Prefix {
    Prefix::new(ip("2001:db8::"), 64)
}

fn samples() -> Vec<Sample> {
    let lb_vip = LbVip {
        pfx: v6_vip(),
        protocol: IpProto::UDP,
        port: 53,
    };
    let mut vip_v2 = LbAddDelVipV2::add(v4_vip(), 6, 80, EncapType::L3DSR);
    vip_v2.dscp = 46;
    vip_v2.src_ip_sticky = true;
    vec![
        sample(SockclntCreate {
            name: FixedString::new("maglev"),
        }),
        sample(SockclntCreateReply::new(
            0x8000_0002,
            vec![
                MessageTableEntry {
                    index: 23,
                    name: FixedString::new("control_ping_51077d14"),
                },
                MessageTableEntry {
                    index: 812,
                    name: FixedString::new("lb_add_del_vip_v2_7c520e0f"),
                },
            ],
        )),
        sample(SockclntDelete { index: 0x8000_0001 }),
        sample(SockclntDeleteReply {}),
        sample(ControlPing {}),
        sample(ControlPingReply {
            client_index: 0x8000_0001,
            vpe_pid: 4242,
        }),
        sample(MemclntKeepalive {}),
        sample(MemclntKeepaliveReply {}),
        sample(ApiVersions {}),
        sample(ApiVersionsReply {
            count: 1,
            api_versions: vec![ModuleVersion {
                major: 1,
                minor: 2,
                patch: 0,
                name: FixedString::new("lb"),
            }],
        }),
        sample(GetApiJson {}),
        sample(GetApiJsonReply {
            json: VlaString::new("{\"types\": []}"),
        }),
        sample(ShowVersion {}),
        sample(ShowVersionReply {
            program: FixedString::new("vpe"),
            version: FixedString::new("26.10-rc0~42"),
            build_date: FixedString::new("2026-08-01T00:00:00"),
            build_directory: FixedString::new("/w/workspace/vpp"),
        }),
        sample(CliInband {
            cmd: VlaString::new("show lb vips verbose"),
        }),
        sample(CliInbandReply {
            reply: VlaString::new("ip4-gre4 [1] 192.0.2.1/32\n  new_size:1024\n"),
        }),
        sample(LbConf {
            ip4_src_address: Ipv4Addr::new(192, 0, 2, 10),
            ip6_src_address: "2001:db8::10".parse::<Ipv6Addr>().unwrap(),
            sticky_buckets_per_core: 2048,
            flow_timeout: KEEP_CURRENT,
        }),
        sample(LbConfReply {}),
        sample(LbConfGet {}),
        sample(LbConfGetReply {
            ip4_src_address: Ipv4Addr::new(192, 0, 2, 10),
            ip6_src_address: "2001:db8::10".parse::<Ipv6Addr>().unwrap(),
            sticky_buckets_per_core: 1024,
            flow_timeout: 40,
        }),
        sample(LbAddDelVip {
            pfx: v6_vip(),
            protocol: 17,
            port: 443,
            encap: EncapType::NAT6,
            dscp: 0,
            srv_type: SrvType::NODEPORT,
            target_port: 8443,
            node_port: 30443,
            new_flows_table_length: 65536,
            is_del: false,
        }),
        sample(LbAddDelVipReply {}),
        sample(vip_v2),
        sample(LbAddDelVipV2Reply {}),
        sample(LbAddDelAs {
            pfx: v4_vip(),
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.1"),
            is_del: true,
            is_flush: true,
        }),
        sample(LbAddDelAsReply {}),
        sample(LbAddDelAsV2 {
            pfx: v6_vip(),
            protocol: 6,
            port: 443,
            as_address: ip("2001:db8:1::5"),
            weight: 25,
            is_del: false,
            is_flush: true,
        }),
        sample(LbAddDelAsV2Reply {}),
        sample(LbAsSetWeight {
            pfx: v4_vip(),
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.1"),
            weight: 50,
            is_flush: false,
        }),
        sample(LbAsSetWeightReply {}),
        sample(LbFlushVip {
            pfx: Prefix::new(ip("192.0.2.0"), 24),
            protocol: 17,
            port: 53,
        }),
        sample(LbFlushVipReply {}),
        sample(LbVipDump {
            pfx: v4_vip(),
            pfx_matcher: PrefixMatcher { le: 32, ge: 24 },
            protocol: PROTOCOL_ANY,
            port: 0,
        }),
        sample(LbVipDetails {
            vip: lb_vip,
            encap: EncapType::GRE6,
            dscp: IpDscp(46),
            srv_type: SrvType::CLUSTERIP,
            target_port: 0,
            flow_table_length: 1024,
        }),
        sample(LbAsDump::all()),
        sample(LbAsDetails {
            vip: lb_vip,
            app_srv: ip("2001:db8:1::7"),
            flags: AS_FLAG_USED,
            in_use_since: 123_456,
        }),
        sample(LbAsV2Dump {
            pfx: v6_vip(),
            protocol: 6,
            port: 443,
        }),
        sample(LbAsV2Details {
            vip: LbVip {
                pfx: v4_vip(),
                protocol: IpProto::TCP,
                port: 80,
            },
            app_srv: ip("10.0.0.1"),
            flags: 0,
            in_use_since: 7,
            weight: 50,
            num_buckets: 512,
        }),
        sample(LbAddDelIntfNat4 {
            is_add: true,
            sw_if_index: InterfaceIndex(1),
        }),
        sample(LbAddDelIntfNat4Reply {}),
        sample(LbAddDelIntfNat6 {
            is_add: false,
            sw_if_index: InterfaceIndex(7),
        }),
        sample(LbAddDelIntfNat6Reply {}),
        sample(IpRouteLookup::exact(7, v6_vip())),
        sample(IpRouteLookupReply {
            route: IpRoute {
                table_id: 7,
                stats_index: 42,
                prefix: FibPrefix(v4_vip()),
                n_paths: 1,
                paths: vec![FibPath {
                    sw_if_index: 2,
                    weight: 1,
                    path_type: FibPathType(0),
                    flags: FibPathFlags(2),
                    proto: FibPathNhProto(0),
                    nh: FibPathNh {
                        address: Ipv4Addr::new(10, 0, 0, 1).into(),
                        ..FibPathNh::default()
                    },
                    n_labels: 1,
                    label_stack: {
                        let mut labels = [FibMplsLabel::default(); FIB_PATH_LABELS];
                        labels[0] = FibMplsLabel {
                            is_uniform: 1,
                            label: 16,
                            ttl: 64,
                            exp: 0,
                        };
                        labels
                    },
                    ..FibPath::default()
                }],
            },
        }),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vpp_papi_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import vpp_papi"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("python3 not runnable: {e}")),
    }
}

#[test]
fn every_message_matches_vpp_papi_both_ways() {
    if let Err(reason) = vpp_papi_available() {
        // .ci/run installs vpp-papi: in CI a missing oracle is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI without vpp-papi: {reason}"
        );
        println!("skipping vpp-papi cross-check: `import vpp_papi` failed: {reason}");
        return;
    }
    let samples = samples();
    let covered: Vec<&str> = samples.iter().map(|s| s.name).collect();
    for def in all_messages() {
        assert!(
            covered.contains(&def.name),
            "no cross-check sample for {}",
            def.name
        );
    }

    let api = papi_json(&all_messages()).unwrap();
    let input = json!({
        "api": api,
        "samples": samples
            .iter()
            .map(|s| json!({ "name": s.name, "hex": hex(&s.bytes), "value": s.value }))
            .collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().unwrap();
    let in_path = dir.path().join("in.json");
    let out_path = dir.path().join("out.json");
    std::fs::write(&in_path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/vpp_papi_crosscheck.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&in_path)
        .arg(&out_path)
        .status()
        .unwrap();
    assert!(status.success(), "cross-check script failed");
    let results: Vec<Value> = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(results.len(), samples.len());

    let mut failures = Vec::new();
    for (s, r) in samples.iter().zip(&results) {
        if let Some(err) = r.get("error") {
            failures.push(format!("{}: vpp-papi error {err}", s.name));
            continue;
        }
        // Rust -> vpp-papi: same values, every byte consumed.
        if r["unpacked"] != s.value {
            failures.push(format!(
                "{}: vpp-papi read {} but we meant {}",
                s.name, r["unpacked"], s.value
            ));
        }
        if r["size"] != json!(s.bytes.len()) {
            failures.push(format!(
                "{}: vpp-papi consumed {} of {} bytes",
                s.name,
                r["size"],
                s.bytes.len()
            ));
        }
        // vpp-papi -> Rust: identical bytes, decoding to the same message.
        let packed = unhex(r["packed"].as_str().unwrap_or_default());
        if packed != s.bytes {
            failures.push(format!(
                "{}: vpp-papi packed {} vs ours {}",
                s.name,
                hex(&packed),
                hex(&s.bytes)
            ));
        }
        if !(s.same_message)(&packed) {
            failures.push(format!(
                "{}: our decoder disagrees with vpp-papi's bytes",
                s.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
