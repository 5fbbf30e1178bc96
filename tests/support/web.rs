//! Helpers for tests of `maglev web`: run it against daemons, a users file made by
//! `maglev web hash-password`, and a small HTTP client (headers, cookies, SSE frames).
//!
//! Included with `#[path = "support/web.rs"] mod web_support;` next to `daemon_support`.
#![allow(dead_code)]

// Each helper file is included on its own by the tests that need it, so each carries ports.rs.
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
mod ports;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

pub const PASSWORD: &str = "correct horse battery staple";

/// A running `maglev web`, killed on drop.
pub struct Web {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// A users file with user `ops` (password `PASSWORD`), made by the real command.
pub fn users_file(dir: &Path) -> PathBuf {
    let out = Command::new(assert_cmd::cargo::cargo_bin("maglev"))
        .args(["web", "hash-password", "ops"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut stdin) = c.stdin.take() {
                writeln!(stdin, "{PASSWORD}")?;
            }
            c.wait_with_output()
        })
        .expect("run maglev web hash-password");
    assert!(out.status.success(), "hash-password failed");
    let line = String::from_utf8(out.stdout).expect("utf-8");
    assert!(line.starts_with("ops:$argon2id$"), "{line}");
    let path = dir.join("users");
    std::fs::write(&path, format!("# test users\n{line}")).expect("write users");
    path
}

impl Web {
    /// Starts `maglev web --server S...` on a free loopback port with `extra` flags, and
    /// waits until `/healthz` answers.
    pub async fn start(servers: &[String], extra: &[&str]) -> Web {
        let mut web = Self::spawn(servers, extra);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = web.child.try_wait() {
                panic!("maglev web exited ({status}):\n{}", web.log());
            }
            if let Some(r) = web.get("/healthz").await
                && r.status == 200
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "web never listened:\n{}",
                web.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        web
    }

    /// Starts the process without waiting for it (a TLS listener, a refusal to start).
    pub fn spawn(servers: &[String], extra: &[&str]) -> Web {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = ports::free_port("127.0.0.1");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let log = dir.path().join("web.log");
        let log_file = std::fs::File::create(&log).expect("log");
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("maglev"));
        cmd.arg("web").args(["--listen", &addr.to_string()]);
        for s in servers {
            cmd.args(["--server", s]);
        }
        let child = cmd
            .args(extra)
            .args(["--log-level", "debug"])
            .env_remove("RUST_LOG")
            .env_remove("MAGLEV_WEB_SERVERS")
            .env_remove("MAGLEV_WEB_USERS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn maglev web");
        Web {
            child,
            addr,
            dir,
            log,
        }
    }

    /// Open file descriptors of the web process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Option<Reply> {
        self.request("GET", path, &[], None).await
    }

    /// GET of JSON (panics unless 200 with JSON).
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await.expect("answer");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        serde_json::from_str(&r.body).expect("json")
    }

    /// Polls `path` (JSON) until `f` says Some.
    pub async fn wait_json<T>(
        &self,
        path: &str,
        what: &str,
        mut f: impl FnMut(&serde_json::Value) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(r) = self.get(path).await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body)
                    && let Some(t) = f(&v)
                {
                    return t;
                }
                last = r.body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; last {path}: {last}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One request; `body` is sent as JSON.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Option<Reply> {
        let resp = self.send(method, path, headers, body).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        Some(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// A request whose body is left to read (the event stream).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Option<Response<Incoming>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .ok()?;
        sender.send_request(req).await.ok()
    }

    /// Logs in as `ops`; returns (cookie header value, CSRF token).
    pub async fn login(&self) -> (String, String) {
        let r = self
            .request(
                "POST",
                "/admin/api/login",
                &[],
                Some(&serde_json::json!({"user": "ops", "password": PASSWORD}).to_string()),
            )
            .await
            .expect("login answer");
        assert_eq!(r.status, 200, "login: {}", r.body);
        let set = r
            .headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie")
            .to_string();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        let cookie = set.split(';').next().expect("cookie").to_string();
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        (cookie, v["csrf"].as_str().expect("csrf").to_string())
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One parsed server-sent event (or a comment, as kind ":").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sse {
    pub id: String,
    pub kind: String,
    pub data: String,
    pub retry: String,
}

/// Reads an event stream frame by frame.
pub struct SseReader {
    body: Incoming,
    buf: String,
}

impl SseReader {
    pub fn new(resp: Response<Incoming>) -> SseReader {
        SseReader {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event within `limit`, or None.
    pub async fn next(&mut self, limit: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut e = Sse::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        e.kind = ":".to_string();
                        e.data = c.trim().to_string();
                    } else if let Some((k, v)) = line.split_once(": ") {
                        match k {
                            "id" => e.id = v.to_string(),
                            "event" => e.kind = v.to_string(),
                            "data" => e.data = v.to_string(),
                            "retry" => e.retry = v.to_string(),
                            _ => {}
                        }
                    }
                }
                return Some(e);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Reads until an event matches `pred` (within `limit` overall); returns it and those before.
    pub async fn until(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Sse) -> bool,
    ) -> (Option<Sse>, Vec<Sse>) {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left).await {
                Some(e) if pred(&e) => return (Some(e), seen),
                Some(e) => seen.push(e),
                None => break,
            }
        }
        (None, seen)
    }
}
