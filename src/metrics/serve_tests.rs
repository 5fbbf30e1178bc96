//! `/metrics` over HTTP: the body streamed in many pieces arrives whole, and a scraper
//! that hangs up stops the render instead of letting it run into a buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Format, MetricsSource, Sink, serve};

/// `lines` numbered lines, handed over in pieces as the real render does.
struct Lines {
    lines: usize,
    pieces: AtomicUsize,
    done: AtomicBool,
}

impl Lines {
    fn new(lines: usize) -> Arc<Lines> {
        Arc::new(Lines {
            lines,
            pieces: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        })
    }

    fn text(&self) -> String {
        (0..self.lines).map(|i| format!("line {i}\n")).collect()
    }
}

impl MetricsSource for Lines {
    fn render(&self, _format: Format, chunk: usize, sink: &mut Sink<'_>) {
        let mut piece = String::new();
        let mut open = true;
        for i in 0..self.lines {
            piece.push_str(&format!("line {i}\n"));
            if open && piece.len() >= chunk {
                self.pieces.fetch_add(1, Ordering::Relaxed);
                open = sink(std::mem::take(&mut piece));
            }
            if !open {
                piece.clear();
            }
        }
        if open && !piece.is_empty() {
            self.pieces.fetch_add(1, Ordering::Relaxed);
            sink(piece);
        }
        self.done.store(true, Ordering::Release);
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Status, headers and the response stream of `GET /metrics` (HTTP/1.1, hyper's client).
async fn get(addr: std::net::SocketAddr) -> hyper::Response<hyper::body::Incoming> {
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => panic!("handshake: {e}"),
        };
    tokio::spawn(conn);
    let req = match hyper::Request::get("/metrics")
        .header(hyper::header::HOST, "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => panic!("request: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_many_pieces_arrives_whole() {
    let source = Lines::new(200_000); // ≈ 2.3 MB: ≈ 36 pieces of 64 KiB
    let (addr, task) = match serve("127.0.0.1:0".parse().unwrap(), source.clone()).await {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    let resp = get(addr).await;
    assert_eq!(resp.status(), 200);
    let body = match http_body_util::BodyExt::collect(resp.into_body()).await {
        Ok(b) => b.to_bytes(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(String::from_utf8_lossy(&body), source.text());
    assert!(source.pieces.load(Ordering::Relaxed) > 30);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_that_hangs_up_stops_the_render() {
    let source = Lines::new(4_000_000); // ≈ 51 MB: ≈ 780 pieces of 64 KiB
    let (addr, task) = match serve("127.0.0.1:0".parse().unwrap(), source.clone()).await {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    let resp = get(addr).await;
    assert_eq!(resp.status(), 200);
    drop(resp); // the headers, then hang up without reading the body
    let mut waited = Duration::ZERO;
    while !source.done.load(Ordering::Acquire) {
        assert!(waited < Duration::from_secs(20), "the render never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    // What the socket buffers, hyper and the channel hold: far from every piece.
    let sent = source.pieces.load(Ordering::Relaxed);
    assert!(sent < 400, "{sent} pieces handed over after the hang-up");
    task.abort();
}
