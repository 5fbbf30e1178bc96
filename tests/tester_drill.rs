//! `maglev tester` against loopback HTTP servers standing in for VIPs: the JSON records and
//! their figures (tally, OK %, latency percentiles against a server that sleeps a known
//! time, error classes), a drill with a server stopped for about a second (one outage of
//! about that length, and the `--max-outage` verdict both ways), HEAD over IPv6, `--source`,
//! https VIPs (`--probe-ca`, `--insecure`, an untrusted certificate),
//! latency spikes, probes that never overlap, SIGINT, and bad targets refused before any probe.

#[path = "support/tester_vip.rs"]
mod tester_vip;

use std::time::{Duration, Instant};

use serde_json::Value;
use tester_vip::{Answer, Vip};

/// A finished tester run.
struct Run {
    code: i32,
    records: Vec<Value>,
    summary: Value,
    stdout: String,
    stderr: String,
}

fn command(args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglev"));
    cmd.arg("tester")
        .args(args)
        .env_remove("MAGLEV_CA")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn finish(out: std::process::Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut records = Vec::new();
    let mut summary = Value::Null;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nstderr: {stderr}"));
        match v["record"].as_str() {
            Some("vip") => records.push(v),
            Some("summary") => summary = v,
            other => panic!("unknown record {other:?}: {line}"),
        }
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        records,
        summary,
        stdout,
        stderr,
    }
}

async fn tester(args: &[String]) -> Run {
    let out = command(args).output().await.expect("run maglev tester");
    finish(out)
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn url(vip: &Vip) -> String {
    format!("http://{}/", vip.addr)
}

/// The summary entry of `vip` (by name = the URL as given).
fn vip_summary<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["vips"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["vip"] == name))
        .unwrap_or_else(|| panic!("no {name} in {summary:#}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_carry_tally_ok_pct_latency_and_error_classes() {
    let two = Vip::start("127.0.0.1:0", Answer::from(&["nginx0", "nginx1"]))
        .await
        .expect("bind");
    let slow = Vip::start(
        "127.0.0.1:0",
        Answer {
            delay: Duration::from_millis(60),
            ..Answer::from(&["slow0"])
        },
    )
    .await
    .expect("bind");
    let broken = Vip::start(
        "127.0.0.1:0",
        Answer {
            status: 503,
            ..Answer::from(&[])
        },
    )
    .await
    .expect("bind");
    let tcp = format!("tcp://{}", two.addr);
    let run = tester(&args(&[
        "--target",
        &url(&two),
        "--target",
        &url(&slow),
        "--target",
        &url(&broken),
        "--target",
        &tcp,
        "--json",
        "--duration",
        "3s",
        "--interval",
        "100ms",
    ]))
    .await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    // Every record carries every field, with the right types.
    assert!(
        run.records.len() >= 8,
        "two seconds of 4 VIPs: {}",
        run.stdout
    );
    for r in &run.records {
        for key in ["time", "vip", "url", "last"] {
            assert!(r[key].is_string(), "{key} in {r}");
        }
        for key in ["elapsed_ms", "sent", "ok", "fail"] {
            assert!(r[key].is_u64(), "{key} in {r}");
        }
        assert!(r["ok_pct"].is_number() && r["window_s"].is_number(), "{r}");
        assert!(r["paused"].is_boolean(), "{r}");
        for key in ["samples", "p50", "p95", "p99", "max"] {
            assert!(r["latency_ms"][key].is_number(), "latency_ms.{key} in {r}");
        }
        for key in ["timeout", "http-err", "net-err", "spike"] {
            assert!(r["errors"][key].is_u64(), "errors.{key} in {r}");
        }
        assert!(
            r["outage"].is_null() || r["outage"]["length_ms"].is_u64(),
            "{r}"
        );
        assert!(r["backends"].is_array(), "{r}");
        assert_eq!(u(&r["sent"]), u(&r["ok"]) + u(&r["fail"]), "{r}");
    }
    let last_of = |name: &str| {
        run.records
            .iter()
            .rev()
            .find(|r| r["vip"] == name)
            .unwrap_or_else(|| panic!("no record of {name}"))
    };

    // The tally: round robin over two backends, about half each, every answer counted.
    let r = last_of(&url(&two));
    assert_eq!(r["last"], "200");
    assert_eq!(f(&r["ok_pct"]), 100.0, "{r}");
    let backends = r["backends"].as_array().expect("backends");
    assert_eq!(backends.len(), 2, "{r}");
    let answers: u64 = backends.iter().map(|b| u(&b["answers"])).sum();
    assert_eq!(answers, u(&r["ok"]), "{r}");
    for b in backends {
        assert!(b["active"].as_bool() == Some(true), "{b}");
        let share = f(&b["share_pct"]);
        assert!((40.0..=60.0).contains(&share), "{b}");
    }

    // Latency against a server that sleeps 60 ms: the percentiles cannot be below it.
    let s = vip_summary(&run.summary, &url(&slow));
    let lat = &s["latency_ms"];
    let (p50, p99, max) = (f(&lat["p50"]), f(&lat["p99"]), f(&lat["max"]));
    assert!(p50 >= 60.0, "p50 {p50} under the 60 ms sleep: {s}");
    assert!(p50 < 60.0 + 400.0, "p50 {p50}: {s}");
    assert!(p50 <= p99 && p99 <= max, "{s}");
    // A 60 ms probe fits in the 100 ms interval: one probe per interval, 3 s = about 30.
    let sent = u(&s["sent"]);
    assert!((15..=31).contains(&sent), "sent {sent}: {s}");
    // One request per probe (plus the one in flight when the run ended, not counted).
    let requests = slow.seen().len() as u64;
    assert!(
        requests == sent || requests == sent + 1,
        "{requests} requests, {sent} probes"
    );
    assert_eq!(s["backends"][0]["name"], "slow0", "{s}");
    assert_eq!(f(&s["backends"][0]["share_pct"]), 100.0, "{s}");

    // 503: every probe an http-err, one outage from the first probe to the end.
    let r = last_of(&url(&broken));
    assert_eq!(r["last"], "http-err");
    assert_eq!(u(&r["ok"]), 0);
    assert_eq!(u(&r["errors"]["http-err"]), u(&r["sent"]), "{r}");
    assert_eq!(r["outage"]["class"], "http-err", "{r}");
    let s = vip_summary(&run.summary, &url(&broken));
    assert_eq!(s["outages"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(s["longest_outage"]["open"], true, "{s}");
    assert_eq!(f(&s["ok_pct"]), 0.0);

    // A tcp:// target: a connect is a success, with no HTTP status.
    let r = last_of(&tcp);
    assert_eq!(r["last"], "ok");
    assert_eq!(f(&r["ok_pct"]), 100.0, "{r}");
    assert!(u(&r["sent"]) > 0);
}

/// Runs a 4 s drill against a fresh VIP stopped for about 1 s once probes flow; returns the
/// run and how long the server was really down.
async fn drill(max_outage_ms: u64, json: bool) -> (Run, Duration, String) {
    let mut vip = Vip::start("127.0.0.1:0", Answer::from(&["nginx0"]))
        .await
        .expect("bind");
    let name = url(&vip);
    let max = max_outage_ms.to_string();
    let mut a = args(&[
        "--target",
        &name,
        "--duration",
        "4s",
        "--interval",
        "50ms",
        "--max-outage",
        &max,
    ]);
    if json {
        a.push("--json".into());
    }
    let child = command(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn maglev tester");
    let start = Instant::now();
    while vip.seen().len() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no probes arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let down = Instant::now();
    vip.stop().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    vip.restart().await.expect("listen again on the same port");
    let down_for = down.elapsed();
    let out = child.wait_with_output().await.expect("tester output");
    (finish(out), down_for, name)
}

/// The documented bound: one probe interval (50 ms) either side, plus scheduling slack on
/// a loaded machine.
const EDGE: Duration = Duration::from_millis(50 + 150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_stop_is_one_outage_of_about_a_second_and_the_verdict_follows() {
    let ((below, down1, name1), (above, down2, name2)) =
        tokio::join!(drill(300, true), drill(3000, false));

    // --max-outage below the outage: exit 1, and the JSON summary says why.
    assert_eq!(
        below.code, 1,
        "stdout {} stderr {}",
        below.stdout, below.stderr
    );
    let s = vip_summary(&below.summary, &name1);
    let outages = s["outages"].as_array().expect("outages");
    assert_eq!(outages.len(), 1, "{s:#}");
    let o = &outages[0];
    assert_eq!(o["class"], "net-err", "a stopped server refuses: {o}");
    assert_eq!(o["open"], false, "it came back: {o}");
    let length = Duration::from_millis(u(&o["length_ms"]));
    let diff = length.abs_diff(down1);
    eprintln!("drill (json): outage {length:?}, server down {down1:?}");
    assert!(diff <= EDGE, "outage {length:?} vs down {down1:?}: {o}");
    assert_eq!(u(&o["end_ms"]) - u(&o["start_ms"]), u(&o["length_ms"]));
    assert_eq!(s["longest_outage"], *o);
    assert_eq!(below.summary["exit_code"], 1);
    assert_eq!(below.summary["max_outage_ms"], 300);
    assert!(f(&s["ok_pct"]) < 100.0 && f(&s["ok_pct"]) > 50.0, "{s}");

    // Above it: exit 0; without --json and without a terminal, the text summary alone.
    assert_eq!(
        above.code, 0,
        "stdout {} stderr {}",
        above.stdout, above.stderr
    );
    assert!(above.records.is_empty(), "{}", above.stdout);
    let text = &above.stdout;
    assert!(
        text.starts_with("drill summary: 1 VIP(s) from command line"),
        "{text}"
    );
    assert!(text.contains(&name2), "{text}");
    let outage_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("outages "))
        .unwrap_or_else(|| panic!("no outages line: {text}"));
    let longest: u64 = outage_line
        .split("longest ")
        .nth(1)
        .and_then(|r| r.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no longest: {outage_line}"));
    assert!(
        outage_line.starts_with("  outages 1 "),
        "one outage: {outage_line}"
    );
    let diff = Duration::from_millis(longest).abs_diff(down2);
    eprintln!("drill (text): outage {longest} ms, server down {down2:?}");
    assert!(
        diff <= EDGE,
        "outage {longest} ms vs down {down2:?}: {text}"
    );
    assert!(text.contains("net-err"), "{text}");
    assert!(text.contains("backends  nginx0 100.0 %"), "{text}");
    assert!(text.contains("PASS: longest outage"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_is_a_timeout_and_probes_never_overlap() {
    let hang = Vip::start(
        "127.0.0.1:0",
        Answer {
            hang: true,
            ..Answer::from(&[])
        },
    )
    .await
    .expect("bind");
    let run = tester(&args(&[
        "--target",
        &url(&hang),
        "--json",
        "--duration",
        "1500ms",
        "--interval",
        "100ms",
        "--timeout",
        "300ms",
    ]))
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = vip_summary(&run.summary, &url(&hang));
    let sent = u(&s["sent"]);
    // Back to back at 300 ms each: 1.5 s holds at most 5 finished, plus the one cut off.
    assert!((3..=5).contains(&sent), "sent {sent}: {s}");
    assert!(
        hang.seen().len() <= 6,
        "overlapping probes: {:?}",
        hang.seen()
    );
    let o = &s["outages"][0];
    assert_eq!(o["class"], "timeout", "{s}");
    let last = run.records.last().expect("a record");
    assert_eq!(u(&last["errors"]["timeout"]), u(&last["sent"]), "{last}");
    assert_eq!(last["last"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_ipv6_and_the_source_address() {
    match Vip::start("[::1]:0", Answer::from(&["v6"])).await {
        Err(e) => eprintln!("skipping the IPv6 half: cannot bind [::1]: {e}"),
        Ok(v6) => {
            let run = tester(&args(&[
                "--target",
                &url(&v6),
                "--method",
                "head",
                "--json",
                "--duration",
                "600ms",
            ]))
            .await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            let s = vip_summary(&run.summary, &url(&v6));
            assert!(u(&s["sent"]) >= 2 && f(&s["ok_pct"]) == 100.0, "{s}");
            assert_eq!(s["backends"][0]["name"], "v6");
            let seen = v6.seen();
            assert!(
                !seen.is_empty() && seen.iter().all(|r| r.method == "HEAD"),
                "{seen:?}"
            );
        }
    }
    let v4 = Vip::start("127.0.0.1:0", Answer::from(&["v4"]))
        .await
        .expect("bind");
    let run = tester(&args(&[
        "--target",
        &url(&v4),
        "--source",
        "127.0.0.2",
        "--json",
        "--duration",
        "500ms",
    ]))
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = v4.seen();
    assert!(!seen.is_empty(), "no probe arrived");
    for r in &seen {
        assert_eq!(r.method, "GET");
        assert_eq!(r.peer.ip().to_string(), "127.0.0.2", "{seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_exit_2_before_any_probe() {
    let vip = Vip::start("127.0.0.1:0", Answer::from(&["x"]))
        .await
        .expect("bind");
    let good = url(&vip);
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_config = dir.path().join("maglev.toml");
    std::fs::write(
        &bad_config,
        "[frontends.web]\naddress = \"192.0.2.1\"\nprotocol = \"tcp\"\nport = 80\n  [[frontends.web.pools]]\n  name = \"p\"\n  backends = { nosuch = {} }\n",
    )
    .expect("write config");
    let config = bad_config.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            args(&["--target", &good, "--target", "ftp://x:21"]),
            "unknown scheme",
        ),
        (
            args(&["--target", &good, "--target", "http://no-such-vip.invalid/"]),
            "cannot resolve",
        ),
        (args(&["--target", "tcp://127.0.0.1"]), "needs a port"),
        (args(&["--config", &config]), "invalid config"),
        (
            args(&["--target", &good, "--max-outage", "300"]),
            "needs --duration",
        ),
        (args(&["--json"]), "no targets"),
        (args(&["--target", &good, "--only", "web"]), "no such VIP"),
        (
            args(&["--target", &good, "--interval", "fast"]),
            "--interval",
        ),
        (args(&["--target", &good, "--source", "::1"]), "family"),
        (args(&["--server", "127.0.0.1:1"]), "--server"),
    ];
    for (a, needle) in cases {
        let run = tester(&a).await;
        assert_eq!(run.code, 2, "{a:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{a:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{a:?}: {}", run.stdout);
    }
    // A flag clap itself refuses is a usage error too.
    let run = tester(&args(&["--target", &good, "--method", "POST"])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(vip.seen().is_empty(), "a probe went out: {:?}", vip.seen());
}

/// A CA (PEM file) and a server config with a certificate for 127.0.0.1 signed by it.
fn pki() -> (
    tempfile::NamedTempFile,
    std::sync::Arc<rustls::ServerConfig>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::Write;
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file
        .write_all(ca_cert.pem().as_bytes())
        .expect("write CA");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("server config");
    (ca_file, std::sync::Arc::new(server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_vips_verify_against_the_probe_ca_or_not_at_all() {
    let (ca_file, server) = pki();
    let (other_ca, _) = pki();
    let vip = Vip::start(
        "127.0.0.1:0",
        Answer {
            tls: Some(server),
            ..Answer::from(&["tls0"])
        },
    )
    .await
    .expect("bind");
    let name = format!("https://{}/", vip.addr);
    let ca = ca_file.path().display().to_string();
    let other = other_ca.path().display().to_string();
    let base = ["--target", name.as_str(), "--json", "--duration", "500ms"];
    let with = |extra: &[&str]| args(&[&base[..], extra].concat());
    let (a, b, c) = (
        with(&["--probe-ca", &ca]),
        with(&["--insecure"]),
        with(&["--probe-ca", &other]),
    );
    let (trusted, insecure, untrusted) = tokio::join!(tester(&a), tester(&b), tester(&c));
    for (what, run) in [("--probe-ca", &trusted), ("--insecure", &insecure)] {
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        let s = vip_summary(&run.summary, &name);
        assert_eq!(f(&s["ok_pct"]), 100.0, "{what}: {s}");
        assert!(u(&s["sent"]) >= 2, "{what}: {s}");
        assert_eq!(s["backends"][0]["name"], "tls0", "{what}: {s}");
    }
    let s = vip_summary(&untrusted.summary, &name);
    assert_eq!(f(&s["ok_pct"]), 0.0, "another CA: {s}");
    assert_eq!(s["outages"][0]["class"], "net-err", "{s}");
    let last = untrusted.records.last().map(|r| r["last"].clone());
    assert!(last.is_none() || last == Some("net-err".into()), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_ends_an_open_ended_run_with_its_summary() {
    use tokio::io::AsyncBufReadExt;
    let vip = Vip::start("127.0.0.1:0", Answer::from(&["b0"]))
        .await
        .expect("bind");
    let mut child = command(&args(&["--target", &url(&vip), "--json"]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn maglev tester");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a record within 20 s")
        .expect("read")
        .expect("a line");
    assert!(first.contains(r#""record":"vip""#), "{first}");
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let mut summary = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains(r#""record":"summary""#) {
            summary = Some(line);
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGINT")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    let summary: Value = serde_json::from_str(&summary.expect("a summary line")).expect("JSON");
    let s = vip_summary(&summary, &url(&vip));
    assert!(u(&s["sent"]) >= 5 && f(&s["ok_pct"]) == 100.0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_successes_are_spikes_not_failures() {
    // Every 10th answer from the 30th on takes 250 ms more: far over 5x a loopback p50.
    let vip = Vip::start(
        "127.0.0.1:0",
        Answer {
            spike: Some((30, Duration::from_millis(250))),
            ..Answer::from(&["b0"])
        },
    )
    .await
    .expect("bind");
    let run = tester(&args(&[
        "--target",
        &url(&vip),
        "--json",
        "--duration",
        "3s",
        "--interval",
        "50ms",
    ]))
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let last = run.records.last().expect("a record");
    let spikes = u(&last["errors"]["spike"]);
    assert!(spikes >= 1, "no spike counted: {last}");
    assert_eq!(u(&last["fail"]), 0, "spikes are successes: {last}");
    let s = vip_summary(&run.summary, &url(&vip));
    assert_eq!(f(&s["ok_pct"]), 100.0, "{s}");
    assert!(s["outages"].as_array().is_some_and(Vec::is_empty), "{s}");
    assert!(f(&s["latency_ms"]["max"]) >= 250.0, "{s}");
}
