//! The interactive `maglev ctl` shell in a pseudo-terminal, against the real daemon.
//!
//! The test side of the pty feeds everything the shell writes into a terminal emulator
//! (`vt100`), so assertions read the screen a user would see (colours and cursor moves
//! gone), and it answers the cursor-position queries the line editor sends. Keys are the
//! bytes a terminal would send: TAB, `?`, Enter (CR), Ctrl-C (0x03), Ctrl-D (0x04).
//!
//! Covered: TAB completion (a lone keyword, menus of keywords and names), `?` help (at an
//! empty prompt, after words, inside a word, over an open menu) that never lands in the line,
//! Ctrl-C clearing a line and interrupting a hanging command, backend actions, pointed usage
//! errors, `watch events` ended by its count and by a key, Ctrl-D quitting with status 0, the
//! history file, and the terminal left in cooked mode.

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/pty.rs"]
mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use daemon_support::{DEADLINE, Daemon, DaemonBuilder, UpBackend, start_settled};

/// Tall enough that a whole session fits without scrolling, so rows keep their order.
const ROWS: u16 = 400;
const COLS: u16 = 140;

const CTRL_C: &str = "\x03";
const CTRL_D: &str = "\x04";
const ENTER: &str = "\r";

// ---------------------------------------------------------------- the pseudo-terminal

/// `maglev ctl` (the shell) running in a pty.
struct Shell {
    pty: pty::Pty,
    prompt: String,
    /// Prompt rows already waited for: a new prompt is a row beyond these.
    prompts_seen: usize,
}

impl Shell {
    /// Starts the shell on `server`, with its history under `state`. `None` (after printing
    /// why) when no pty can be had here.
    fn start(server: &str, state: &Path) -> Option<Shell> {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("maglev"));
        cmd.args(["ctl", "--server", server, "--timeout", "20s"])
            .env_remove("MAGLEV_SERVER")
            .env_remove("NO_COLOR")
            .env("HOME", state)
            .env("XDG_STATE_HOME", state);
        Some(Shell {
            pty: pty::Pty::start(cmd, ROWS, COLS)?,
            prompt: format!("maglev {server}> "),
            prompts_seen: 0,
        })
    }

    fn send(&self, keys: &str) {
        self.pty.send(keys);
    }

    /// The screen as text, trailing blank rows dropped.
    fn text(&self) -> String {
        self.with_screen(|s| s.contents())
    }

    fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        self.pty.with_screen(f)
    }

    fn rows(&self) -> Vec<String> {
        self.with_screen(|s| s.rows(0, COLS).map(|r| r.trim_end().to_string()).collect())
    }

    /// Indices of the rows that start with the prompt.
    fn prompt_rows(&self) -> Vec<usize> {
        let prompt = self.prompt.trim_end();
        self.rows()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.starts_with(prompt))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether the cursor sits at the end of `prompt + buffer` on the last prompt row.
    fn editing(&self, buffer: &str) -> bool {
        let want = format!("{}{buffer}", self.prompt);
        let (row, col) = self.with_screen(|s| s.cursor_position());
        let rows = self.rows();
        self.prompt_rows().last() == Some(&usize::from(row))
            && rows.get(usize::from(row)).map(String::as_str) == Some(want.trim_end())
            && usize::from(col) == want.chars().count()
    }

    /// Waits for `what` to hold, or fails with the screen.
    fn wait(&self, what: &str, mut ok: impl FnMut(&Shell) -> bool) {
        let start = Instant::now();
        while !ok(self) {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the line being edited reads `buffer`.
    fn wait_line(&self, buffer: &str) {
        self.wait(&format!("the line {buffer:?}"), |s| s.editing(buffer));
    }

    /// Whether a prompt newer than the last one waited for is being edited with `buffer`.
    fn has_new_prompt(&self, buffer: &str) -> bool {
        self.prompt_rows().len() > self.prompts_seen && self.editing(buffer)
    }

    /// Waits for a new prompt holding `buffer`; returns the rows printed since the previous
    /// prompt row (that row, with what was typed on it, first).
    fn wait_prompt(&mut self, buffer: &str) -> Vec<String> {
        self.wait(&format!("a new prompt with {buffer:?}"), |s| {
            s.has_new_prompt(buffer)
        });
        self.take_output()
    }

    /// Marks the current prompt as seen; returns the rows from the previous one to it.
    fn take_output(&mut self) -> Vec<String> {
        let rows = self.rows();
        let prompts = self.prompt_rows();
        let from = match self.prompts_seen {
            0 => 0,
            n => prompts.get(n - 1).copied().unwrap_or(0),
        };
        let to = prompts.last().copied().unwrap_or(0);
        self.prompts_seen = prompts.len();
        rows.get(from..to)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// Types `line`, checks it is echoed, presses Enter; returns the output rows.
    fn run(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.wait_line(line);
        self.send(ENTER);
        let out = self.wait_prompt("");
        assert!(
            out.first().is_some_and(|r| r.ends_with(line.trim_end())),
            "{line:?} was not the line run: {out:#?}"
        );
        out
    }

    fn wait_exit(&mut self) -> ExitStatus {
        self.pty.wait_exit(DEADLINE)
    }

    /// Whether the terminal is back in cooked mode (line editing and echo on).
    fn cooked(&self) -> bool {
        self.pty.cooked()
    }
}

// ---------------------------------------------------------------- the daemon

/// The daemon with `up` up and `down` down (see `basic_config`).
fn started() -> (Daemon, UpBackend) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (d, backend, _) = runtime.block_on(start_settled(DaemonBuilder::new));
    (d, backend)
}

fn history_file(state: &Path) -> PathBuf {
    state.join("maglev").join("history")
}

/// The row of `rows` whose first word is `first`.
fn row<'a>(rows: &'a [String], first: &str) -> &'a str {
    rows.iter()
        .find(|r| r.split_whitespace().next() == Some(first))
        .map_or_else(|| panic!("no row {first:?} in {rows:#?}"), String::as_str)
}

/// Each `?` help row: `word  one-line help`.
fn help_entries(rows: &[String]) -> Vec<(String, String)> {
    rows.iter()
        .skip(1)
        .map(|r| {
            let r = r.trim_start();
            let (word, help) = r.split_once(' ').unwrap_or((r, ""));
            (word.to_string(), help.trim().to_string())
        })
        .collect()
}

// ---------------------------------------------------------------- the tests

#[test]
fn tab_completes_then_tables_help_pause_and_ctrl_d_quits() {
    let (d, _backend) = started();
    let state = tempfile::tempdir().expect("tempdir");
    let Some(mut sh) = Shell::start(&d.grpc_addr, state.path()) else {
        return;
    };

    let banner = sh.wait_prompt("");
    assert!(
        banner.iter().any(|r| r.starts_with("maglev ctl ")
            && r.contains(env!("CARGO_PKG_VERSION"))
            && r.contains("Ctrl-D quits")),
        "{banner:#?}"
    );

    // TAB completes the only keyword that fits.
    sh.send("sh ba");
    sh.wait_line("sh ba");
    sh.send("\t");
    sh.wait_line("sh backends ");
    sh.send(ENTER);
    let table = sh.wait_prompt("");
    assert!(table[0].ends_with("> sh backends"), "{table:#?}");
    let header: Vec<&str> = table[1].split_whitespace().collect();
    assert_eq!(header[..3], ["NAME", "ADDRESS", "STATE"], "{table:#?}");
    let cols = |name: &str| -> Vec<String> {
        row(&table, name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(cols("up")[1..3], ["127.0.0.2", "up"], "{table:#?}");
    assert_eq!(cols("down")[1..3], ["127.0.0.3", "down"], "{table:#?}");
    assert_eq!(cols("off")[1], "127.0.0.4", "{table:#?}");

    // `?` at an empty prompt: every command with its help; the line stays empty.
    sh.send("?");
    let help = sh.wait_prompt("");
    assert!(help[0].ends_with("> ?"), "{help:#?}");
    let entries = help_entries(&help);
    for word in ["show", "set", "watch", "config", "help", "quit"] {
        let entry = entries.iter().find(|(w, _)| w == word);
        assert!(
            entry.is_some_and(|(_, h)| !h.is_empty()),
            "{word} with its help: {help:#?}"
        );
    }
    assert!(
        entries.iter().all(|(w, h)| !h.is_empty() && w != "<cr>"),
        "{help:#?}"
    );

    // A frontend with its pools and weights.
    let web = sh.run("show frontends web");
    let text = web.join("\n");
    assert!(text.contains("pool primary (active)"), "{text}");
    assert!(text.contains("pool backup"), "{text}");
    let up = row(&web, "up");
    assert!(up.contains("127.0.0.2") && up.contains("80"), "{text}");

    // Pause a backend, then see it paused.
    let out = sh.run("set backend up pause").join("\n");
    assert!(out.contains("paused"), "{out}");
    let out = sh.run("show backends up").join("\n");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("state") && l.contains("paused")),
        "{out}"
    );

    // Ctrl-D at an empty prompt quits cleanly and leaves the terminal as it found it.
    sh.send(CTRL_D);
    let status = sh.wait_exit();
    assert!(status.success(), "{status}; screen:\n{}", sh.text());
    assert!(sh.cooked(), "the terminal is left in raw mode");
    let history = std::fs::read_to_string(history_file(state.path())).unwrap_or_default();
    for line in [
        "sh backends",
        "show frontends web",
        "set backend up pause",
        "show backends up",
    ] {
        assert!(
            history.lines().any(|l| l.trim_end() == line),
            "{line:?} in history:\n{history}"
        );
    }
    assert!(!history.contains('?'), "{history}");

    // The session as seen, for the record (shown with --nocapture).
    println!("{}", sh.text());
}

#[test]
fn question_mark_helps_without_entering_the_line_ctrl_c_clears_errors_point() {
    let (d, _backend) = started();
    let state = tempfile::tempdir().expect("tempdir");
    let Some(mut sh) = Shell::start(&d.grpc_addr, state.path()) else {
        return;
    };
    sh.wait_prompt("");

    // After words: the slot and `<cr>`, each with help; the line comes back unchanged.
    sh.send("show backends ");
    sh.wait_line("show backends ");
    sh.send("?");
    let help = sh.wait_prompt("show backends ");
    assert!(help[0].ends_with("> show backends ?"), "{help:#?}");
    let entries = help_entries(&help);
    let words: Vec<&str> = entries.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(words, ["<backend>", "<cr>"], "{help:#?}");
    assert!(entries.iter().all(|(_, h)| !h.is_empty()), "{help:#?}");
    // Enter runs the line without the `?`: the table of all backends.
    sh.send(ENTER);
    let table = sh.wait_prompt("");
    assert!(table[0].ends_with("> show backends"), "{table:#?}");
    for name in ["up", "down", "off"] {
        row(&table, name);
    }

    // Inside a word: only the keywords it starts.
    sh.send("sh ba");
    sh.wait_line("sh ba");
    sh.send("?");
    let help = sh.wait_prompt("sh ba");
    let words: Vec<String> = help_entries(&help).into_iter().map(|(w, _)| w).collect();
    assert_eq!(words, ["backends"], "{help:#?}");

    // Ctrl-C clears the partial line; the shell goes on.
    sh.send(CTRL_C);
    sh.wait_prompt("");
    // With TAB's menu of names open: `?` closes it, and the help stays on the screen.
    let names_menu = |s: &Shell| {
        s.rows()
            .iter()
            .filter(|r| r.contains("the backend") && !r.starts_with(' '))
            .count()
    };
    sh.send("set backend ");
    sh.wait_line("set backend ");
    sh.send("\t");
    sh.wait("the menu of backends", |s| names_menu(s) == 3);
    sh.send("?");
    let help = sh.wait_prompt("set backend ");
    assert_eq!(names_menu(&sh), 0, "menu closed: {help:#?}");
    assert!(help[0].ends_with("> set backend ?"), "{help:#?}");
    let entries = help_entries(&help);
    assert_eq!(entries.len(), 1, "{help:#?}");
    assert_eq!(entries[0].0, "<backend>", "{help:#?}");
    assert!(!entries[0].1.is_empty(), "{help:#?}");
    sh.send(CTRL_C);
    sh.wait_prompt("");
    let out = sh.run("show version").join("\n");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    // History is written as lines are run, not only on exit.
    let history = std::fs::read_to_string(history_file(state.path())).unwrap_or_default();
    assert!(
        history.lines().any(|l| l.trim_end() == "show version"),
        "{history}"
    );

    // A menu of keywords; typing on past the word closes it, so one Enter runs the line.
    sh.send("show ");
    sh.wait_line("show ");
    sh.send("\t");
    sh.wait("the menu of keywords", |s| {
        s.rows()
            .iter()
            .any(|r| r.starts_with("healthchecks") && r.contains("health checks"))
    });
    sh.send("backends up");
    sh.wait_line("show backends up");
    sh.send(ENTER);
    let out = sh.wait_prompt("");
    assert!(out[0].ends_with("> show backends up"), "{out:#?}");
    assert!(
        out.iter()
            .any(|r| r.starts_with("address:") && r.ends_with("127.0.0.2")),
        "{out:#?}"
    );

    // An unknown word: the line, a caret under the word, what was expected.
    let out = sh.run("show bogus");
    assert_eq!(out[1], "  show bogus", "{out:#?}");
    assert_eq!(
        out[2].find('^'),
        out[1].find("bogus"),
        "caret under the word: {out:#?}"
    );
    assert!(
        out[3].starts_with("error: unknown word \"bogus\"; expected one of")
            && out[3].contains("backends"),
        "{out:#?}"
    );

    sh.send(CTRL_D);
    let status = sh.wait_exit();
    assert!(status.success(), "{status}");
    let history = std::fs::read_to_string(history_file(state.path())).unwrap_or_default();
    assert!(
        history.lines().any(|l| l.trim_end() == "show backends"),
        "{history}"
    );
    assert!(!history.contains('?'), "no `?` in history:\n{history}");
    assert!(
        !history.lines().any(|l| l.trim_end() == "set backend"),
        "a line cleared with Ctrl-C is not history:\n{history}"
    );
}

#[test]
fn watch_events_ends_after_its_count_or_a_key_and_the_prompt_returns() {
    let (d, _backend) = started();
    let state = tempfile::tempdir().expect("tempdir");
    let Some(mut sh) = Shell::start(&d.grpc_addr, state.path()) else {
        return;
    };
    sh.wait_prompt("");

    let line = "watch events num 1 backend";
    sh.send(line);
    sh.wait_line(line);
    sh.send(ENTER);
    // The subscription may not be in place yet: act until the watch has seen one event.
    let start = Instant::now();
    let mut pause = true;
    while !sh.has_new_prompt("") {
        assert!(
            start.elapsed() < DEADLINE,
            "the watch never ended; screen:\n{}",
            sh.text()
        );
        let action = if pause { "pause" } else { "resume" };
        let o = d.ctl(&["set", "backend", "up", action]);
        assert!(o.status.success(), "{o:?}");
        pause = !pause;
        let waited = Instant::now();
        while !sh.has_new_prompt("") && waited.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let out = sh.take_output();
    assert!(out[0].ends_with(line), "{out:#?}");
    assert_eq!(out.len(), 2, "exactly one event: {out:#?}");
    // Starts at the left edge (raw mode restored to "\r\n" endings), about `up`.
    assert!(
        out[1].contains(" backend up (127.0.0.2) frontend web: "),
        "{out:#?}"
    );

    // No count: the frontend replay, then any key stops it and is not typed into the line.
    sh.send("watch events");
    sh.wait_line("watch events");
    sh.send(ENTER);
    sh.wait("the replay", |s| {
        s.rows()
            .iter()
            .any(|r| r.contains("frontend web:") && r.contains("(current)"))
    });
    sh.send("x");
    let out = sh.wait_prompt("");
    assert!(out.len() >= 2, "{out:#?}");

    // The line editor works as before.
    let out = sh.run("show backends up").join("\n");
    assert!(out.contains("127.0.0.2"), "{out}");
    sh.send(CTRL_D);
    let status = sh.wait_exit();
    assert!(status.success(), "{status}");
    assert!(sh.cooked(), "the terminal is left in raw mode");
}

#[test]
fn ctrl_c_interrupts_a_hanging_command_and_the_shell_goes_on() {
    // Listening but never accepting: connections open, no answer ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = silent.local_addr().expect("addr").to_string();
    let state = tempfile::tempdir().expect("tempdir");
    let Some(mut sh) = Shell::start(&server, state.path()) else {
        return;
    };
    sh.wait_prompt("");

    sh.send("show version");
    sh.wait_line("show version");
    sh.send(ENTER);
    // The line editor hands the terminal back (cooked) while the command runs: Ctrl-C is
    // then SIGINT, which must stop the command and not the shell.
    sh.wait("the command to run", |s| s.cooked());
    sh.send(CTRL_C);
    let out = sh.wait_prompt("");
    assert!(
        out.iter().any(|r| r.ends_with("error: interrupted")),
        "{out:#?}"
    );

    // Still alive: a local command works, Ctrl-D quits with 0.
    let out = sh.run("help").join("\n");
    assert!(out.contains("show backends"), "{out}");
    sh.send(CTRL_D);
    let status = sh.wait_exit();
    assert!(status.success(), "{status}; screen:\n{}", sh.text());
}
