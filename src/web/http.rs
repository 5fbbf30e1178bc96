//! The HTTP surface: routes, security headers, JSON API, admin login and actions.
//!
//! `/` -> `/view/`; `/view/` and `/admin/` serve the same page (the admin one adds actions);
//! `/assets/*` the embedded files with ETags; `/healthz`; `/view/api/{state,state/NAME,
//! daemons,version,events}`; `/admin/login`, `/admin/api/{login,logout,session,action}`.
//! Without `--users` everything under `/admin/` is 404.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::actions::Action;
use super::auth::{Auth, COOKIE, LoginError, Session, same};
use super::ring::Hub;
use super::upstream::{Upstream, now_ms};
use super::{assets, sse};

pub type Body = BoxBody<Bytes, Infallible>;

/// Everything a request may need.
#[derive(Debug)]
pub struct App {
    pub daemons: Vec<Arc<Upstream>>,
    pub hub: Arc<Hub>,
    /// None without `--users`: the admin side is off.
    pub auth: Option<Auth>,
    /// Listening with TLS: cookies get `Secure`, responses HSTS.
    pub secure_cookies: bool,
    /// Open event streams (at most `sse::MAX_STREAMS`).
    pub streams: Arc<std::sync::atomic::AtomicUsize>,
}

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
pub const CSRF_HEADER: &str = "x-csrf-token";
const MAX_BODY: usize = 16 * 1024;

/// Accepts connections until aborted; each connection in its own task.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, app: Arc<App>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(TokioIo::new(stream), peer, app).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => connection(TokioIo::new(s), peer, app).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<I>(io: I, peer: SocketAddr, app: Arc<App>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, req, peer.ip()).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, svc);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Routes one request and adds the security headers to whatever comes back.
pub async fn handle(app: &App, req: Request<Incoming>, from: IpAddr) -> Response<Body> {
    let mut resp = route(app, req, from).await;
    let h = resp.headers_mut();
    let mut set = |k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set("content-security-policy", CSP);
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    set("referrer-policy", "no-referrer");
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set(
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if app.secure_cookies {
        set("strict-transport-security", "max-age=31536000");
    }
    resp
}

async fn route(app: &App, req: Request<Incoming>, from: IpAddr) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    if path == "/admin" || path.starts_with("/admin/") {
        return match &app.auth {
            None => not_found(),
            Some(auth) => admin(app, auth, req, &path, from).await,
        };
    }
    if !get {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match path.as_str() {
        "/" | "/view" => redirect("/view/"),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/view/" => asset(&req, "index.html"),
        "/favicon.ico" => asset(&req, "favicon.svg"),
        "/view/api/state" => json_ok(&state(app)),
        "/view/api/daemons" => json_ok(&daemons(app)),
        "/view/api/version" => json_ok(&json!({
            "version": crate::version::VERSION,
            "commit": crate::version::GIT_COMMIT,
            "build_date": crate::version::BUILD_DATE,
        })),
        "/view/api/events" => events(app, &req),
        p => {
            if let Some(name) = p.strip_prefix("/assets/") {
                return asset(&req, name);
            }
            if let Some(name) = p.strip_prefix("/view/api/state/") {
                return match app.daemons.iter().find(|d| d.server.name == name) {
                    Some(d) => json_ok(&d.view()),
                    None => error(StatusCode::NOT_FOUND, &format!("no daemon {name:?}")),
                };
            }
            not_found()
        }
    }
}

fn state(app: &App) -> serde_json::Value {
    json!({
        "now_ms": now_ms(),
        "epoch": app.hub.epoch,
        "last_id": app.hub.last_id(),
        "admin": app.auth.is_some(),
        "daemons": app.daemons.iter().map(|d| d.view()).collect::<Vec<_>>(),
    })
}

fn daemons(app: &App) -> serde_json::Value {
    serde_json::Value::Array(
        app.daemons
            .iter()
            .map(|d| {
                let v = d.view();
                json!({"name": v.name, "addr": v.addr, "reachable": v.reachable, "version": v.version, "error": v.error})
            })
            .collect(),
    )
}

fn events(app: &App, req: &Request<Incoming>) -> Response<Body> {
    // The browser sends Last-Event-ID on its own reconnects; the page passes `?last=` when it
    // reopens the stream itself (after a clock jump).
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query_param(req.uri().query().unwrap_or(""), "last"));
    let Some(slot) = sse::Slot::try_take(&app.streams, sse::MAX_STREAMS) else {
        let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "too many event streams");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return resp;
    };
    let admin = app
        .auth
        .as_ref()
        .is_some_and(|a| session_of(a, req).is_some());
    let mut resp = Response::new(sse::body(app.hub.clone(), last, admin, slot));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // Never compressed: a proxy must not buffer to compress.
    h.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    resp
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

fn session_of(auth: &Auth, req: &Request<Incoming>) -> Option<Session> {
    let cookies: Vec<&str> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    cookies.into_iter().find_map(|c| auth.session(Some(c)))
}

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

async fn admin(
    app: &App,
    auth: &Auth,
    req: Request<Incoming>,
    path: &str,
    from: IpAddr,
) -> Response<Body> {
    let method = req.method().clone();
    if method == Method::POST && !same_origin(&req) {
        tracing::warn!(%from, path, "POST from another origin refused");
        return error(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let session = session_of(auth, &req);
    match (method.as_str(), path) {
        ("GET" | "HEAD", "/admin") => redirect("/admin/"),
        ("GET" | "HEAD", "/admin/login") => asset(&req, "login.html"),
        ("GET" | "HEAD", "/admin/") => match session {
            Some(_) => asset(&req, "index.html"),
            None => redirect("/admin/login"),
        },
        ("GET", "/admin/api/session") => match session {
            Some(s) => json_ok(&json!({"user": s.user, "csrf": s.csrf})),
            None => error(StatusCode::UNAUTHORIZED, "not logged in"),
        },
        ("POST", "/admin/api/login") => {
            if let Some(bad) = require_json(&req) {
                return bad;
            }
            let Ok(body) = read_body(req).await else {
                return error(StatusCode::BAD_REQUEST, "body too large or unreadable");
            };
            let Ok(login) = serde_json::from_slice::<Login>(&body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected {\"user\": ..., \"password\": ...}",
                );
            };
            match auth.login(from, &login.user, &login.password).await {
                Ok(s) => {
                    let mut resp = json_ok(&json!({"user": s.user, "csrf": s.csrf}));
                    let cookie = format!(
                        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                        s.token,
                        super::auth::SESSION_LIFETIME.as_secs(),
                        if app.secure_cookies { "; Secure" } else { "" }
                    );
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        resp.headers_mut().insert(header::SET_COOKIE, v);
                    }
                    resp
                }
                Err(LoginError::Denied) => {
                    error(StatusCode::UNAUTHORIZED, "wrong user or password")
                }
                Err(LoginError::RateLimited(wait)) => {
                    let secs = wait.as_secs().max(1);
                    let mut resp = error(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!("too many failed logins; try again in {secs} s"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    resp
                }
            }
        }
        ("POST", "/admin/api/logout" | "/admin/api/action") => {
            let Some(s) = session else {
                return error(StatusCode::UNAUTHORIZED, "not logged in");
            };
            let token = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(token, &s.csrf) {
                tracing::warn!(%from, user = %s.user, path, "POST without a valid CSRF token");
                return error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
            }
            if let Some(bad) = require_json(&req) {
                return bad;
            }
            if path == "/admin/api/logout" {
                auth.logout(&s.token);
                let mut resp = json_ok(&json!({"ok": true}));
                let gone = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
                if let Ok(v) = HeaderValue::from_str(&gone) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
            let Ok(body) = read_body(req).await else {
                return error(StatusCode::BAD_REQUEST, "body too large or unreadable");
            };
            match serde_json::from_slice::<Action>(&body) {
                Ok(action) => run_action(app, &s.user, action).await,
                Err(e) => error(StatusCode::BAD_REQUEST, &format!("bad action: {e}")),
            }
        }
        (
            _,
            "/admin/api/login" | "/admin/api/logout" | "/admin/api/action" | "/admin/api/session",
        ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => not_found(),
    }
}

/// Runs an action on its daemon; the answer and the panel line say what happened.
async fn run_action(app: &App, user: &str, action: Action) -> Response<Body> {
    let Some(up) = app
        .daemons
        .iter()
        .find(|d| d.server.name == action.daemon())
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no daemon {:?}", action.daemon()),
        );
    };
    let what = action.describe();
    let Some(client) = up.client() else {
        let message = format!("{what}: daemon {} is unreachable", up.server.name);
        up.panel("error", "action", format!("{user}: {message}"), true);
        return json_status(
            StatusCode::BAD_GATEWAY,
            &json!({"ok": false, "message": message}),
        );
    };
    let result = action.run(&client).await;
    up.nudge();
    match result {
        Ok(reply) => {
            tracing::info!(user, daemon = %up.server.name, action = %what, %reply, "admin action");
            up.panel("info", "action", format!("{user}: {what}: {reply}"), true);
            json_ok(&json!({"ok": true, "message": reply}))
        }
        Err(e) => {
            let message = format!("{what}: {e}");
            tracing::warn!(user, daemon = %up.server.name, %message, "admin action failed");
            up.panel("error", "action", format!("{user}: {message}"), true);
            let status = if e.exit_code() == 3 {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            json_status(status, &json!({"ok": false, "message": message}))
        }
    }
}

/// A POST that names its origin (browsers do) must come from this very host.
fn same_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin_matches(origin, host)
}

/// `https://lb.example:9092` vs the Host header `lb.example:9092`.
fn origin_matches(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// POSTs must be JSON: a plain HTML form from another site cannot send that.
fn require_json(req: &Request<Incoming>) -> Option<Response<Body>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (!ct.starts_with("application/json")).then(|| {
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        )
    })
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ()> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| ())
}

fn asset(req: &Request<Incoming>, name: &str) -> Response<Body> {
    let Some((a, tag)) = assets::get(name) else {
        return not_found();
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if matches {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(full(Bytes::from_static(a.body)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn full(b: Bytes) -> Body {
    Full::new(b).boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_ok(v: &impl serde::Serialize) -> Response<Body> {
    json_status(StatusCode::OK, v)
}

fn json_status(status: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_status(status, &json!({"ok": false, "error": message}))
}

fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not found")
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(origin_matches("http://127.0.0.1:9092", "127.0.0.1:9092"));
        assert!(origin_matches("https://LB.example:9443", "lb.example:9443"));
        assert!(!origin_matches("http://evil.example", "127.0.0.1:9092"));
        assert!(!origin_matches("null", "127.0.0.1:9092"));
        assert!(!origin_matches("http://127.0.0.1:9092", ""));
    }

    #[test]
    fn last_event_id_from_the_query() {
        assert_eq!(query_param("last=12-34", "last").as_deref(), Some("12-34"));
        assert_eq!(query_param("a=1&last=5-6", "last").as_deref(), Some("5-6"));
        assert_eq!(query_param("last=<x>", "last"), None);
        assert_eq!(query_param("", "last"), None);
    }
}
