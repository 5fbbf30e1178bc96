//! The `maglev tester` screen in a pseudo-terminal, read through a terminal emulator: the
//! header, one row per VIP (figures, LAST, the current outage), the backend tally, the error
//! panel; `p` pauses, `r` resets the figures, `q` quits with the terminal restored and the
//! summary printed.

#[path = "support/pty.rs"]
mod pty;
#[path = "support/tester_vip.rs"]
mod tester_vip;

use std::process::Command;
use std::time::Duration;

use pty::Pty;
use tester_vip::{Answer, Vip};

const LIMIT: Duration = Duration::from_secs(30);

/// The answer count the tally shows for `backend` ("nginx0 50.0% (12)" -> 12).
fn tally_count(screen: &str, backend: &str) -> Option<u64> {
    let at = screen.find(&format!("{backend} "))?;
    let rest = &screen[at..];
    let open = rest.find('(')?;
    let close = rest.find(')')?;
    rest.get(open + 1..close)?.parse().ok()
}

/// The row of the VIP table whose first cell is `name`.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches(['│', '|', ' ']).starts_with(name))
}

#[test]
fn rows_tally_and_errors_render_and_the_keys_work() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let up = runtime
        .block_on(Vip::start(
            "127.0.0.1:0",
            Answer::from(&["nginx0", "nginx1"]),
        ))
        .expect("bind");
    // A port nothing listens on: every probe is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let up_url = format!("http://{}/", up.addr);
    let down_url = format!("tcp://{closed}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maglev"));
    cmd.args(["tester", "--target", &up_url, "--target", &down_url])
        .args(["--interval", "100ms"])
        .env_remove("MAGLEV_CA");
    let Some(mut term) = Pty::start(cmd, 40, 160) else {
        return;
    };

    let screen = term.wait("rows, tally and errors", LIMIT, |s| {
        row(s, &up_url).is_some_and(|r| r.contains("200"))
            && row(s, &down_url).is_some_and(|r| r.contains("net-err") && r.contains("OUT "))
            && tally_count(s, "nginx0").is_some()
            && tally_count(s, "nginx1").is_some()
            && s.contains("connection refused")
    });
    // Header: who probes, from what, for how long, and the keys.
    assert!(screen.contains("maglevt"), "{screen}");
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most name.len() bytes into our buffer.
    assert_eq!(
        unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) },
        0
    );
    let short = String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(0)])
        .into_owned();
    assert!(
        screen.contains(&format!("on {short}")),
        "host {short}: {screen}"
    );
    assert!(screen.contains("targets: command line"), "{screen}");
    assert!(screen.contains("running 00:00:"), "{screen}");
    assert!(
        screen.contains("keys: q quit  r reset  p pause"),
        "{screen}"
    );
    for column in [
        "P50 ms", "P95 ms", "P99 ms", "MAX ms", "OK %", "FAIL", "LAST", "OUTAGE",
    ] {
        assert!(screen.contains(column), "{column}: {screen}");
    }
    let up_row = row(&screen, &up_url).expect("up row");
    assert!(up_row.contains("100.00"), "OK % of the up VIP: {up_row}");
    let down_row = row(&screen, &down_url).expect("down row");
    assert!(
        down_row.contains("0.00"),
        "OK % of the down VIP: {down_row}"
    );
    // The error panel: time, VIP, class, detail.
    let error = screen
        .lines()
        .find(|l| l.contains("connection refused"))
        .expect("an error line");
    assert!(
        error.contains(&down_url) && error.contains("net-err"),
        "{error}"
    );

    // `p` pauses: the header says so and the tally stops growing; `p` again resumes.
    term.send("p");
    let paused = term.wait("PAUSED", LIMIT, |s| s.contains("PAUSED"));
    let frozen = tally_count(&paused, "nginx0").expect("tally");
    std::thread::sleep(Duration::from_millis(600));
    let later = tally_count(&term.text(), "nginx0").expect("tally");
    assert!(later <= frozen + 1, "paused, yet {frozen} -> {later}");
    term.send("p");
    term.wait("probing again", LIMIT, |s| {
        !s.contains("PAUSED") && tally_count(s, "nginx0").is_some_and(|n| n > later + 2)
    });

    // `r` resets: the counts start again from zero.
    let before = tally_count(&term.text(), "nginx0").expect("tally");
    assert!(before >= 3, "{before}");
    term.send("r");
    term.wait("the reset tally", LIMIT, |s| {
        tally_count(s, "nginx0").is_none_or(|n| n < before)
    });

    // `q` quits: status 0, terminal back in cooked mode, the summary on the main screen.
    term.send("q");
    let status = term.wait_exit(LIMIT);
    assert!(status.success(), "{status}: {}", term.text());
    assert!(term.cooked(), "the terminal was left raw");
    let after = term.text();
    assert!(after.contains("drill summary: 2 VIP(s)"), "{after}");
    assert!(
        !after.contains("keys: q quit"),
        "the screen was not left: {after}"
    );
}
