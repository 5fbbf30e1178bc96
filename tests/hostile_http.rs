//! Hostile HTTP backends: a 1 GiB body, never-ending headers, a header line without end,
//! a dripping server, an absurd chunk size. Each probe must end with a failure verdict
//! within its timeout, having read only a bounded amount (the body cap, hyper's head
//! limits), so the daemon's memory stays bounded whatever a backend sends.

use std::time::Duration;

use maglev::config::model::{BodyMatch, HttpParams};
use maglev::health::result::{ProbeResult, ResultCode};
use maglev::probe::{ProbeSpec, Prober};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[path = "support/http_probe.rs"]
mod http_probe;
use http_probe::{http_params, http_spec, read_head};

const TIMEOUT: Duration = Duration::from_millis(2000);
const GIB: u64 = 1 << 30;
/// Generated data is written in pieces of this size, never held whole.
const PIECE: usize = 64 * 1024;
/// Growth of our resident memory tolerated across one hostile probe.
const RSS_SLACK_KIB: u64 = 64 * 1024;

fn params(expect_body: Option<BodyMatch>) -> HttpParams {
    HttpParams {
        expect_body,
        ..http_params()
    }
}

fn spec(port: u16, http: HttpParams) -> ProbeSpec {
    http_spec(port, TIMEOUT, http)
}

/// Resident set size of this process in KiB (None where /proc is not Linux's).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the hostile server sends after reading the request head.
#[derive(Clone, Copy)]
enum Hostile {
    /// `Content-Length: 1 GiB` and that many bytes, generated piece by piece.
    HugeBody,
    /// A status line, then header after header, for up to 1 GiB.
    EndlessHeaders,
    /// A status line, then one header line that never ends, for up to 1 GiB.
    EndlessHeaderLine,
    /// One byte of a valid response every 200 ms.
    Drip,
    /// A chunked body announcing a chunk of 2^64-1 bytes, then data.
    HugeChunk,
}

/// Serves one connection with `behaviour`; yields how many bytes it managed to write before
/// the probe hung up (or it ran out of things to send).
async fn serve(behaviour: Hostile) -> (u16, JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let Ok((mut conn, _)) = listener.accept().await else {
            return 0;
        };
        read_head(&mut conn).await;
        match behaviour {
            Hostile::HugeBody => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\n\r\n");
                stream(&mut conn, head.as_bytes(), |piece, _| piece.fill(b'x')).await
            }
            Hostile::EndlessHeaders => {
                stream(&mut conn, b"HTTP/1.1 200 OK\r\n", |piece, n| {
                    let mut line = format!("X-Filler-{n}: ").into_bytes();
                    line.resize(PIECE - 2, b'a');
                    line.extend_from_slice(b"\r\n");
                    piece.copy_from_slice(&line);
                })
                .await
            }
            Hostile::EndlessHeaderLine => {
                stream(&mut conn, b"HTTP/1.1 200 OK\r\nX-Endless: ", |piece, _| {
                    piece.fill(b'a')
                })
                .await
            }
            Hostile::Drip => {
                let mut written = 0;
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" {
                    if conn.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    written += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                written
            }
            Hostile::HugeChunk => {
                let head =
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n";
                stream(&mut conn, head.as_bytes(), |piece, _| piece.fill(b'x')).await
            }
        }
    });
    (port, task)
}

/// Writes `head`, then up to 1 GiB of pieces made by `fill(piece, index)`, stopping at the
/// first write error (the probe closed the connection). Returns the bytes written.
async fn stream(conn: &mut TcpStream, head: &[u8], fill: impl Fn(&mut [u8], u64)) -> u64 {
    if conn.write_all(head).await.is_err() {
        return 0;
    }
    let mut written = head.len() as u64;
    let mut piece = vec![0u8; PIECE];
    let mut index = 0;
    while written < GIB {
        fill(&mut piece, index);
        index += 1;
        if conn.write_all(&piece).await.is_err() {
            break;
        }
        written += PIECE as u64;
    }
    written
}

/// Runs one probe against `behaviour`; returns the result and what the server wrote,
/// checking our memory did not grow with what the server sent. The prober enforces the
/// check's timeout itself; the outer limit only keeps a broken build from hanging CI.
async fn probe_hostile(behaviour: Hostile, http: HttpParams) -> (ProbeResult, u64) {
    let (port, server) = serve(behaviour).await;
    let rss_before = rss_kib();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        Prober::new().probe(&spec(port, http)),
    )
    .await
    .expect("the probe ends by itself");
    let rss_after = rss_kib();
    let written = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops once the probe hangs up")
        .expect("server task");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        assert!(
            after < before + RSS_SLACK_KIB,
            "RSS grew from {before} KiB to {after} KiB"
        );
    }
    (r, written)
}

/// The probe must give up long before the server runs out: whatever it read is bounded.
fn assert_cut_short(written: u64) {
    assert!(
        written < GIB / 16,
        "the server wrote {written} bytes: the probe kept reading"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_is_cut_at_the_cap_and_fails_the_match() {
    let expect = Some(BodyMatch::Substring("never-sent".into()));
    let (r, written) = probe_hostile(Hostile::HugeBody, params(expect)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert_eq!(r.detail, "body mismatch");
    assert_cut_short(written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_is_not_read_when_only_the_status_matters() {
    let (r, written) = probe_hostile(Hostile::HugeBody, params(None)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_cut_short(written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_headers_are_a_response_failure() {
    let (r, written) = probe_hostile(Hostile::EndlessHeaders, params(None)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert!(r.detail.contains("malformed"), "{r:?}");
    assert_cut_short(written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_header_line_is_a_response_failure() {
    let (r, written) = probe_hostile(Hostile::EndlessHeaderLine, params(None)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert!(r.detail.contains("malformed"), "{r:?}");
    assert_cut_short(written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dripping_response_times_out_at_layer_7() {
    let (r, _) = probe_hostile(Hostile::Drip, params(None)).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_chunk_size_is_bounded() {
    let expect = Some(BodyMatch::Substring("never-sent".into()));
    let (r, written) = probe_hostile(Hostile::HugeChunk, params(expect)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert_cut_short(written);
}
