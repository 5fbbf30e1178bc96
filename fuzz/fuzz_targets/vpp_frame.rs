//! VPP socket frames and every message decoder on arbitrary bytes: no panic, no allocation
//! driven by an unchecked length (run with -malloc_limit_mb=64), and decode → encode → decode
//! is stable.
//!
//! The input is used twice: as a byte stream of frames (`read_frame` until it fails), and
//! as one bare payload. Every payload goes through every message type's decoder.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maglev::vpp::messages::all_messages;
use maglev::vpp::messages::ip::*;
use maglev::vpp::messages::lb::*;
use maglev::vpp::messages::memclnt::*;
use maglev::vpp::messages::vpe::*;
use maglev::vpp::wire::{
    FRAME_HEADER_LEN, HeaderKind, Message, decode_message, encode_message, parse_frame_header,
    peek_context, peek_msg_id, read_frame,
};

/// Decodes `payload` as `M`; when that works, re-encodes and checks that the value is stable.
fn round_trip<M: Message + PartialEq + std::fmt::Debug>(payload: &[u8]) {
    let Ok((h1, m1)) = decode_message::<M>(payload) else {
        return;
    };
    let b2 = encode_message(&h1, &m1);
    let (h2, m2) = match decode_message::<M>(&b2) {
        Ok(v) => v,
        Err(e) => panic!("{}: re-encoded message does not decode: {e}", M::NAME),
    };
    assert_eq!(h1, h2, "{}: header changed", M::NAME);
    // Invalid UTF-8 in a string field decodes lossily (U+FFFD), which may not fit the
    // field again; otherwise the decoded value must survive encoding unchanged.
    if !format!("{m1:?}").contains('\u{fffd}') {
        assert_eq!(m1, m2, "{}: value changed by encode/decode", M::NAME);
    }
    // Whatever was normalised, the wire form is a fixpoint after one round.
    let b3 = encode_message(&h2, &m2);
    assert_eq!(b2, b3, "{}: encoding is not stable", M::NAME);
}

macro_rules! every_message {
    ($payload:expr; $($ty:ty),* $(,)?) => {{
        const COUNT: usize = [$(stringify!($ty)),*].len();
        $( round_trip::<$ty>($payload); )*
        COUNT
    }};
}

fn decode_all(payload: &[u8]) -> usize {
    let _ = peek_msg_id(payload);
    for kind in [
        HeaderKind::Request,
        HeaderKind::Reply,
        HeaderKind::ContextOnly,
        HeaderKind::ContextResponse,
        HeaderKind::ClientContextResponse,
    ] {
        let _ = peek_context(payload, kind);
    }
    every_message!(payload;
        // memclnt
        SockclntCreate, SockclntCreateReply, SockclntDelete, SockclntDeleteReply,
        ControlPing, ControlPingReply, MemclntKeepalive, MemclntKeepaliveReply,
        ApiVersions, ApiVersionsReply, GetApiJson, GetApiJsonReply,
        // vpe
        ShowVersion, ShowVersionReply, CliInband, CliInbandReply,
        // lb
        LbConf, LbConfReply, LbConfGet, LbConfGetReply, LbAddDelVip, LbAddDelVipReply,
        LbAddDelVipV2, LbAddDelVipV2Reply, LbAddDelAs, LbAddDelAsReply, LbAddDelAsV2,
        LbAddDelAsV2Reply, LbAsSetWeight, LbAsSetWeightReply, LbFlushVip, LbFlushVipReply,
        LbVipDump, LbVipDetails, LbAsDump, LbAsDetails, LbAsV2Dump, LbAsV2Details,
        LbAddDelIntfNat4, LbAddDelIntfNat4Reply, LbAddDelIntfNat6, LbAddDelIntfNat6Reply,
        // ip
        IpRouteLookup, IpRouteLookupReply,
    )
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

fn check_message_list() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let covered = decode_all(&[]);
        assert_eq!(
            covered,
            all_messages().len(),
            "a message type is missing from this fuzz target"
        );
    });
}

fuzz_target!(|data: &[u8]| {
    check_message_list();

    if let Some(header) = data.first_chunk::<FRAME_HEADER_LEN>() {
        let _ = parse_frame_header(header);
    }
    runtime().block_on(async {
        let mut stream = std::io::Cursor::new(data);
        for _ in 0..8 {
            match read_frame(&mut stream).await {
                Ok(Some(payload)) => {
                    decode_all(&payload);
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
    decode_all(data);
});
