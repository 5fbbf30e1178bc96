//! The HTTP check's response handling (the httparse head parser, the body decoder for
//! content-length, chunked and until-close bodies, status and body judging, the body cap)
//! on arbitrary server bytes, over an in-memory stream.
//!
//! Byte 0 picks the check parameters (body match, status ranges, http/https Host form);
//! the rest is what the "server" sends before closing. The verdict must be an L7 code and
//! come promptly: the stream is closed, so waiting can only mean a hang.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use maglev::config::model::{BodyMatch, HttpParams, StatusRange};
use maglev::health::result::ResultCode;
use maglev::probe::http::probe_stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    })
}

fn params(selector: u8) -> HttpParams {
    let expect_body = match selector & 0b11 {
        0 => None,
        1 => Some(BodyMatch::Substring("ok".into())),
        2 => BodyMatch::regex(r"^ok \d+").ok(),
        _ => Some(BodyMatch::Substring(String::new())),
    };
    let expect_status = if selector & 0b100 == 0 {
        Vec::new()
    } else {
        vec![
            StatusRange { lo: 200, hi: 299 },
            StatusRange { lo: 404, hi: 404 },
        ]
    };
    HttpParams {
        path: "/healthz".into(),
        host: (selector & 0b1_0000 != 0).then(|| "backend.example".into()),
        expect_status,
        expect_body,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, response)) = data.split_first() else {
        return;
    };
    let params = params(selector);
    let https = selector & 0b1000 != 0;
    let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    runtime().block_on(async {
        let (client, mut server) = tokio::io::duplex(16 * 1024);
        let serve = async move {
            // Read the request head (it fits the pipe), then answer and close.
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(response).await;
            let _ = server.shutdown().await;
            // Keep our end until the client is done so it sees EOF, not a reset.
            let mut sink = [0u8; 256];
            while matches!(server.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let check = probe_stream(client, &params, addr, 8080, https);
        let run = async { tokio::join!(serve, check).1 };
        let outcome = match tokio::time::timeout(Duration::from_secs(2), run).await {
            Ok(o) => o,
            Err(_) => panic!("HTTP check hung on a closed stream"),
        };
        assert!(
            matches!(
                outcome.code,
                ResultCode::L7Ok | ResultCode::L7Sts | ResultCode::L7Rsp
            ),
            "unexpected verdict {outcome:?}"
        );
    });
});
