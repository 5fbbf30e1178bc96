//! `maglev ctl`: the operator's shell and scripting interface (docs/design.md §9).
//!
//! - `grammar`: the one command tree (parse, `?` help, completion, `help` listing);
//! - `client`: connecting (`host:port`, `http(s)://`, `unix:`) and exit-code mapping;
//! - `run`: running a command, text or JSON output; `render`/`json`: the two output forms;
//! - `shell`: the interactive shell (reedline); `keys`: "any key stops `watch events`".
//!
//! Exit codes: 0 ok, 1 the daemon refused or the command failed, 2 usage error, 3 the daemon
//! cannot be reached (or does not answer within `--timeout`).

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::{ColorMode, CtlArgs};

pub mod client;
pub mod grammar;
pub mod json;
pub mod keys;
pub mod render;
pub mod run;
pub mod shell;

use client::{Client, CtlError, TlsFiles, parse_timeout};
use grammar::Command;
use run::{Outcome, Session};

/// Entry point of the ctl role: no words = the shell, words = one command.
pub fn main(args: CtlArgs) -> ExitCode {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = use_color(args.color, no_color, std::io::stdout().is_terminal());
    let runtime = match runtime_for(args.words.is_empty()) {
        Ok(rt) => rt,
        Err(e) => return report(&CtlError::Local(format!("cannot start: {e}")), args.json),
    };
    let result = if args.words.is_empty() {
        shell::run(&runtime, &args, color)
    } else {
        runtime.block_on(one_shot(&args, color))
    };
    match result {
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => report(&e, args.json),
    }
}

/// A one-shot command runs on the main thread alone (no worker thread to start). The shell
/// keeps a worker: it prefetches names in the background while the line editor waits for
/// keys, and its completer blocks on the runtime from inside the editor, which on a
/// current-thread runtime would drive no I/O or timers.
fn runtime_for(shell: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if shell {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Colour only on a terminal in `auto`, and never with NO_COLOR set (unless `always`).
pub fn use_color(mode: ColorMode, no_color_env: bool, stdout_is_tty: bool) -> bool {
    match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => stdout_is_tty && !no_color_env,
    }
}

pub(crate) fn tls_files(args: &CtlArgs) -> TlsFiles {
    args.tls.clone()
}

async fn one_shot(args: &CtlArgs, color: bool) -> Result<Outcome, CtlError> {
    let timeout = parse_timeout(&args.timeout)?;
    let line = args.words.join(" ");
    let command = grammar::parse(&line).map_err(|error| CtlError::Parse { line, error })?;
    let session = Session::new(args.json, color);
    let mut out = std::io::stdout();
    match command {
        Command::Help => return session.help(&mut out).map(|()| Outcome::Done),
        Command::Quit => return Ok(Outcome::Done),
        _ => {}
    }
    let client = Client::connect(&args.server, &tls_files(args), timeout).await?;
    if let Command::WatchEvents(spec) = &command {
        keys::watch_until_stopped(&session, &client, spec, &mut out).await
    } else {
        session.clone().execute(&client, &command, &mut out).await
    }
}

/// Prints the error to stderr (as JSON with `--json`) and returns its exit code.
fn report(error: &CtlError, json: bool) -> ExitCode {
    let code = error.exit_code();
    if let CtlError::Local(msg) = error
        && msg.is_empty()
    {
        // A closed output pipe: nothing to say.
        return ExitCode::from(code);
    }
    if json {
        eprintln!("{}", error_json(error));
    } else {
        match error {
            CtlError::Parse { line, error } => eprintln!("{}", error.pointed(line)),
            other => eprintln!("error: {other}"),
        }
    }
    ExitCode::from(code)
}

/// `{"error": {"kind": "usage", "exit_code": 2, "message": ..., ...}}`; usage errors from
/// the grammar add `word`, `position` (byte offset in the space-joined words), `expected`.
pub fn error_json(error: &CtlError) -> serde_json::Value {
    let kind = match error {
        CtlError::Usage(_) | CtlError::Parse { .. } => "usage",
        CtlError::Refused(_) => "refused",
        CtlError::Unreachable { .. } => "unreachable",
        CtlError::Local(_) => "local",
    };
    let mut body = json!({
        "kind": kind,
        "exit_code": error.exit_code(),
        "message": error.to_string(),
    });
    if let CtlError::Parse { error: e, .. } = error {
        body["position"] = json!(e.pos());
        body["expected"] = json!(e.choices());
        let word = match e {
            grammar::ParseError::Unknown { word, .. }
            | grammar::ParseError::Ambiguous { word, .. }
            | grammar::ParseError::BadValue { word, .. } => Some(word.clone()),
            _ => None,
        };
        body["word"] = json!(word);
    }
    if let CtlError::Unreachable { server, .. } = error {
        body["server"] = json!(server);
    }
    json!({ "error": body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_decision() {
        assert!(use_color(ColorMode::Auto, false, true));
        assert!(
            !use_color(ColorMode::Auto, false, false),
            "never on a pipe in auto"
        );
        assert!(!use_color(ColorMode::Auto, true, true), "NO_COLOR");
        assert!(use_color(ColorMode::Always, true, false));
        assert!(!use_color(ColorMode::Never, false, true));
    }

    #[test]
    fn json_error_shape() {
        let line = "sh bogus".to_string();
        let error = grammar::parse(&line).expect_err("bogus");
        let v = error_json(&CtlError::Parse { line, error });
        assert_eq!(v["error"]["kind"], "usage");
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["error"]["word"], "bogus");
        assert_eq!(v["error"]["position"], 3);
        assert_eq!(v["error"]["expected"][0], "version");
        let v = error_json(&CtlError::Unreachable {
            server: "s:1".into(),
            reason: "refused".into(),
        });
        assert_eq!(v["error"]["kind"], "unreachable");
        assert_eq!(v["error"]["exit_code"], 3);
        assert_eq!(v["error"]["server"], "s:1");
    }
}
