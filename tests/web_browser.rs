//! `maglev web` in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. The page lists a daemon's frontends and
//! backends; a killed backend shows as down within 2 s without a reload; an admin logs in and
//! disables a backend, and the daemon reports it; two daemons are two tabs, and stopping one
//! marks its tab unreachable while the other stays live. Screenshots go to
//! `target/web-screenshots/`.
//!
//! Without chromium/chromedriver the test is skipped with a reason, except with CI=true
//! (`.ci/run` installs both), where their absence is a failure.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;
#[path = "support/web.rs"]
mod web_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemon_support::{DaemonBuilder, UpBackend, basic_config, wait_up_and_down};
use fantoccini::{Client, ClientBuilder, Locator};
use maglev::proto::{BackendActionRequest, GetBackendRequest};
use support::vpp_double::{ApiMode, VppDouble};
use web_support::{PASSWORD, Web, users_file};

const WAIT: Duration = Duration::from_secs(20);

fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// chromium and chromedriver, or why the test cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_tool(&["chromium", "chromium-browser"])
        .ok_or("chromium is not installed (apt-get install chromium)")?;
    let driver = find_tool(&["chromedriver"])
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(path: &Path) -> Driver {
        let port = daemon_support::free_port("127.0.0.1");
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        daemon_support::eventually("chromedriver answers", || {
            let status = status.clone();
            async move {
                daemon_support::http_get(&status)
                    .await
                    .filter(|(s, _)| *s == 200)
            }
        })
        .await;
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path, extra: &[&str]) -> Client {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        serde_json::json!({
            "binary": chromium.display().to_string(),
            "args": args,
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session with chromium")
}

/// Polls `f` every 50 ms until Some, panicking with `what` after `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out ({limit:?}) waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// textContent of the first match (works for hidden elements too), or None.
async fn text_of(c: &Client, css: &str) -> Option<String> {
    let v = c
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![serde_json::json!(css)],
        )
        .await
        .ok()?;
    v.as_str().map(str::to_string)
}

async fn class_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.attr("class").await.ok().flatten().unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn cell(daemon: &str, backend: &str, class: &str) -> String {
    format!("section[data-daemon=\"{daemon}\"] tr[data-backend=\"{backend}\"] td.{class}")
}

async fn wait_text(c: &Client, css: &str, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    poll(&format!("{css} to read {want:?}"), limit, || async {
        (text_of(c, css).await.as_deref() == Some(want)).then_some(())
    })
    .await;
    start.elapsed()
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|t| t.join("web-screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/web-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = shots_dir().join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

fn act(name: &str) -> BackendActionRequest {
    BackendActionRequest { name: name.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let (chromium, chromedriver) = match tools() {
        Ok(t) => t,
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "CI=true but the browser test cannot run: {why} (.ci/run installs it)"
            );
            eprintln!("skipped: {why}");
            return;
        }
    };

    // Two daemons, each with its `up` backend listening on 127.0.0.2 (own port); lb1
    // programs the VPP double (no startup hold), so its page shows VPP and buckets.
    let double = VppDouble::start(ApiMode::V1_2).await;
    let backend_a = UpBackend::start("127.0.0.2");
    let port_a = backend_a.port();
    let config_a = basic_config(port_a).replace(
        "ipv4-src-address = \"192.0.2.254\"",
        "ipv4-src-address = \"192.0.2.254\"\nstartup-min-delay = \"0s\"\nstartup-max-delay = \"2s\"",
    );
    let da = DaemonBuilder::new(config_a)
        .vpp_api(double.socket_path())
        .start()
        .await;
    let mut ca = da.client().await;
    let backend_b = UpBackend::start("127.0.0.2");
    let db = DaemonBuilder::new(basic_config(backend_b.port()))
        .start()
        .await;
    let cb = db.client().await;
    wait_up_and_down(&ca).await;
    wait_up_and_down(&cb).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let users = users_file(dir.path());
    let web = Web::start(
        &[
            format!("{}=lb1", da.grpc_addr),
            format!("{}=lb2", db.grpc_addr),
        ],
        &["--users", users.to_str().expect("path")],
    )
    .await;

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, &chromium, profile.path(), &[]).await;

    // The read-only page: the daemon's frontend and its backends, one tab per daemon.
    c.goto(&web.url("/")).await.expect("goto /");
    wait_text(&c, &cell("lb1", "up", "c-state"), "up", WAIT).await;
    wait_text(&c, &cell("lb1", "down", "c-state"), "down", WAIT).await;
    wait_text(&c, &cell("lb1", "off", "c-state"), "disabled", WAIT).await;
    assert_eq!(c.current_url().await.expect("url").path(), "/view/");
    let front = text_of(
        &c,
        "section[data-daemon=\"lb1\"] details[data-frontend=\"web\"] summary",
    )
    .await
    .unwrap_or_default();
    assert!(
        front.contains("web") && front.contains("192.0.2.1") && front.contains("tcp/80"),
        "{front}"
    );
    assert_eq!(
        text_of(&c, &cell("lb1", "up", "c-addr")).await.as_deref(),
        Some("127.0.0.2")
    );
    assert_eq!(
        text_of(&c, &cell("lb1", "up", "c-cw")).await.as_deref(),
        Some("80")
    );
    poll("lb1's VPP badge", WAIT, || async {
        let badge = text_of(&c, "section[data-daemon=\"lb1\"] .vpp").await?;
        badge.contains("lb API 1.2.0").then_some(())
    })
    .await;
    poll("buckets of lb1's `up`", WAIT, || async {
        let b = text_of(&c, &cell("lb1", "up", "c-buckets")).await?;
        (b.parse::<u32>().ok()? > 0).then_some(())
    })
    .await;
    assert_eq!(
        text_of(&c, "section[data-daemon=\"lb2\"] .vpp")
            .await
            .as_deref(),
        Some("VPP off")
    );
    // Time since a transition, two units (the page's own module, in the page).
    let since = c
        .execute(
            "return import('/assets/format.js').then((m) => \
             [0, 999, 45e3, 630e3, 600e3, 4320e3, 144e6].map(m.since));",
            vec![],
        )
        .await
        .expect("format.js");
    assert_eq!(
        since,
        serde_json::json!(["now", "now", "45s", "10m30s", "10m0s", "1h12m", "1d16h"])
    );
    // The tabs carry the VPP mark too: connected on lb1, off on lb2.
    assert!(
        class_of(&c, "[data-tab=\"lb1\"] .tvpp")
            .await
            .contains("v-up")
    );
    assert!(
        class_of(&c, "[data-tab=\"lb2\"] .tvpp")
            .await
            .contains("v-off")
    );
    let tabs = c.find_all(Locator::Css("[data-tab]")).await.expect("tabs");
    assert_eq!(tabs.len(), 2, "two daemons, two tabs");
    poll("both tabs reachable", WAIT, || async {
        let a = class_of(&c, "[data-tab=\"lb1\"]").await;
        let b = class_of(&c, "[data-tab=\"lb2\"]").await;
        (a.contains(" reachable") && b.contains(" reachable")).then_some(())
    })
    .await;
    assert!(
        !c.find(Locator::Css("button[data-act]"))
            .await
            .is_ok_and(|_| true),
        "no action buttons on the read-only page"
    );
    screenshot(&c, "view.png").await;

    // Kill the backend's listener: the page shows it down, live, without a reload.
    c.execute("window.__sameDocument = 42; return 1;", vec![])
        .await
        .expect("mark the document");
    drop(backend_a);
    let took = wait_text(
        &c,
        &cell("lb1", "up", "c-state"),
        "down",
        Duration::from_secs(2),
    )
    .await;
    eprintln!("backend killed -> page shows down: {took:?}");
    let flashed = class_of(&c, &cell("lb1", "up", "c-state")).await;
    assert!(
        flashed.contains("flash") && flashed.contains("s-down"),
        "{flashed}"
    );
    let same = c
        .execute("return window.__sameDocument;", vec![])
        .await
        .expect("read the mark");
    assert_eq!(same, serde_json::json!(42), "the page was not reloaded");

    // After a sleep the clock jumps: the page reopens its event stream and stays live.
    let opens = |c: &Client| {
        let c = c.clone();
        async move {
            c.execute("return document.body.dataset.streams;", vec![])
                .await
                .ok()?
                .as_str()?
                .parse::<u32>()
                .ok()
        }
    };
    let before = opens(&c).await.expect("streams opened");
    c.execute(
        "const real = Date.now; Date.now = () => real() + 60000; return 1;",
        vec![],
    )
    .await
    .expect("jump the clock");
    poll("the stream reopened after the clock jump", WAIT, || async {
        (opens(&c).await? > before).then_some(())
    })
    .await;
    ca.pause_backend(act("down")).await.expect("pause down");
    wait_text(&c, &cell("lb1", "down", "c-state"), "paused", WAIT).await;
    ca.resume_backend(act("down")).await.expect("resume down");

    // A folded card stays folded across a reload (localStorage).
    let card = "section[data-daemon=\"lb1\"] details[data-frontend=\"web\"]";
    c.find(Locator::Css(&format!("{card} > summary")))
        .await
        .expect("card title")
        .click()
        .await
        .expect("fold");
    // The toggle event is queued: let it store the fold before reloading.
    poll("the fold stored", WAIT, || async {
        let v = c
            .execute("return localStorage.getItem('maglev.folded');", vec![])
            .await
            .ok()?;
        v.as_str()?.contains("lb1/web").then_some(())
    })
    .await;
    c.refresh().await.expect("reload");
    wait_text(&c, &cell("lb1", "up", "c-state"), "down", WAIT).await;
    let open = c
        .execute(
            "return document.querySelector(arguments[0]).open;",
            vec![serde_json::json!(card)],
        )
        .await
        .expect("open?");
    assert_eq!(open, serde_json::json!(false), "the fold is remembered");
    c.find(Locator::Css(&format!("{card} > summary")))
        .await
        .expect("card title")
        .click()
        .await
        .expect("unfold");

    // The backend's listener comes back on the same port: up again, with its buckets.
    let backend_a = poll("the backend port free again", WAIT, || async {
        std::net::TcpListener::bind(("127.0.0.2", port_a)).ok()
    })
    .await;
    drop(backend_a);
    let _backend_a = UpBackend::start_on("127.0.0.2", port_a);
    wait_text(&c, &cell("lb1", "up", "c-state"), "up", WAIT).await;
    poll("buckets of lb1's `up` again", WAIT, || async {
        let b = text_of(&c, &cell("lb1", "up", "c-buckets")).await?;
        (b.parse::<u32>().ok()? > 0).then_some(())
    })
    .await;

    // Admin: log in, click disable, the daemon reports the backend disabled.
    c.goto(&web.url("/admin/")).await.expect("goto /admin/");
    assert_eq!(c.current_url().await.expect("url").path(), "/admin/login");
    c.find(Locator::Id("user"))
        .await
        .expect("user field")
        .send_keys("ops")
        .await
        .expect("type user");
    c.find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    c.find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click submit");
    poll("the admin page after login", WAIT, || async {
        let path = c.current_url().await.ok()?.path().to_string();
        (path == "/admin/").then_some(())
    })
    .await;
    wait_text(&c, "#user", "ops", WAIT).await;
    let disable =
        "section[data-daemon=\"lb1\"] tr[data-backend=\"down\"] button[data-act=\"disable\"]";
    let button = poll("the disable button", WAIT, || async {
        c.find(Locator::Css(disable)).await.ok()
    })
    .await;
    button.click().await.expect("click disable");
    poll("the daemon reports `down` disabled", WAIT, || {
        let mut ca = ca.clone();
        async move {
            let b = ca
                .get_backend(GetBackendRequest {
                    name: "down".into(),
                })
                .await
                .ok()?
                .into_inner();
            (!b.enabled).then_some(())
        }
    })
    .await;
    wait_text(&c, &cell("lb1", "down", "c-state"), "disabled", WAIT).await;
    poll("the action in the event panel", WAIT, || async {
        let panel = text_of(&c, "#events").await?;
        panel.contains("disable backend down").then_some(())
    })
    .await;
    // The button now offers the opposite action.
    wait_text(
        &c,
        "section[data-daemon=\"lb1\"] tr[data-backend=\"down\"] button.ed",
        "enable",
        WAIT,
    )
    .await;
    screenshot(&c, "admin.png").await;

    // Two daemons: stopping lb2 marks its tab unreachable; lb1 stays live.
    c.find(Locator::Css("[data-tab=\"lb2\"]"))
        .await
        .expect("tab lb2")
        .click()
        .await
        .expect("click tab");
    poll("lb2's panel shown", WAIT, || async {
        let shown = c
            .find(Locator::Css("section[data-daemon=\"lb2\"]"))
            .await
            .ok()?
            .is_displayed()
            .await
            .ok()?;
        shown.then_some(())
    })
    .await;
    drop(cb);
    drop(db);
    poll("lb2's tab unreachable", WAIT, || async {
        class_of(&c, "[data-tab=\"lb2\"]")
            .await
            .contains("unreachable")
            .then_some(())
    })
    .await;
    assert!(
        class_of(&c, "[data-tab=\"lb1\"]")
            .await
            .contains(" reachable")
    );
    screenshot(&c, "unreachable.png").await;
    c.find(Locator::Css("[data-tab=\"lb1\"]"))
        .await
        .expect("tab lb1")
        .click()
        .await
        .expect("click tab");
    ca.enable_backend(act("down")).await.expect("enable on lb1");
    poll("lb1 still live after lb2 went", WAIT, || async {
        let s = text_of(&c, &cell("lb1", "down", "c-state")).await?;
        (s != "disabled").then_some(())
    })
    .await;
    assert!(
        class_of(&c, "[data-tab=\"lb1\"]")
            .await
            .contains(" reachable")
    );

    // A phone's width: the page still renders (screenshot for the eye).
    c.set_window_size(390, 844).await.expect("phone size");
    screenshot(&c, "phone.png").await;
    c.close().await.expect("close the browser");

    // Dark mode follows the system's preference (prefers-color-scheme).
    let profile = tempfile::tempdir().expect("profile dir");
    let dark = browser(&driver, &chromium, profile.path(), &["--force-dark-mode"]).await;
    dark.goto(&web.url("/view/")).await.expect("goto /view/");
    wait_text(&dark, &cell("lb1", "down", "c-state"), "down", WAIT).await;
    let scheme = dark
        .execute(
            "return [matchMedia('(prefers-color-scheme: dark)').matches, \
             getComputedStyle(document.body).backgroundColor];",
            vec![],
        )
        .await
        .expect("colours");
    if scheme[0] == serde_json::json!(true) {
        assert_eq!(
            scheme[1],
            serde_json::json!("rgb(21, 23, 26)"),
            "dark background"
        );
        screenshot(&dark, "dark.png").await;
    } else {
        eprintln!("this chromium ignores --force-dark-mode for pages: dark check skipped");
    }
    dark.close().await.expect("close the dark browser");
}
