//! The interactive shell: reedline with history (written after every line), TAB completion
//! and `?` help from the grammar, live names from the daemon (fetched in the background and
//! cached briefly). Ctrl-C clears the line at the prompt and interrupts a running command
//! (never the shell); Ctrl-D quits.
//!
//! `?` is bound to `ExecuteHostCommand` (after closing a completion menu): reedline returns
//! `Signal::HostCommand` with the line left untouched, and the next `read_line` brings the
//! same line back, so `?` never lands in the buffer. The help is printed on a second round:
//! the host command raises the break signal, `read_line` repaints the line (without the menu)
//! and returns `ExternalBreak` at once, and only then is the help printed below the line.
//! Printed on the first round, it could land inside the rows reedline reserved for the menu,
//! which it wipes when it repaints there.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reedline::{
    ColumnarMenu, Completer, CompletionResult, Emacs, FileBackedHistory, KeyCode, KeyModifiers,
    MenuBuilder, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus, Reedline,
    ReedlineEvent, ReedlineMenu, Signal, Span, Suggestion, default_emacs_keybindings,
};
use tokio::runtime::{Handle, Runtime};

use super::client::{Client, CtlError, TlsFiles, parse_server, parse_timeout};
use super::grammar::{self, Command, NameKind, NameSource, Scope};
use super::keys;
use super::run::{Outcome, Session};
use crate::cli::CtlArgs;
use crate::proto::{ListBackendsRequest, ListFrontendsRequest, ListHealthChecksRequest};

/// What `?` sends back from reedline.
const HELP_COMMAND: &str = "help-at-cursor";
/// Besides letters and digits, what a word being completed may contain (names); any other
/// typed character (a space) closes the completion menu, so Enter then runs the line.
const WORD_CHARS: &str = "-_.:/@";
/// How long names fetched for completion stay fresh.
const NAMES_TTL: Duration = Duration::from_secs(5);
/// Completion must not hang the line editor on a slow daemon.
const NAMES_TIMEOUT: Duration = Duration::from_secs(1);
const HISTORY_SIZE: usize = 1000;

/// The daemon connection, made on first use and kept (tonic reconnects by itself).
struct Connection {
    server: String,
    files: TlsFiles,
    timeout: Duration,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Connection {
    async fn get(&self) -> Result<Client, CtlError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = Client::connect(&self.server, &self.files, self.timeout).await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// The pools of one frontend, each with its backends.
pub type Pools = Vec<(String, Vec<String>)>;

/// A snapshot of the daemon's names.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub backends: Vec<String>,
    pub healthchecks: Vec<String>,
    /// Frontend -> pools -> backends of the pool.
    pub frontends: Vec<(String, Pools)>,
}

impl NameSource for Names {
    fn names(&self, kind: NameKind, scope: Scope<'_>) -> Vec<String> {
        let frontend = scope
            .frontend
            .and_then(|f| self.frontends.iter().find(|(name, _)| name == f));
        match kind {
            NameKind::Frontend => self.frontends.iter().map(|(n, _)| n.clone()).collect(),
            NameKind::HealthCheck => self.healthchecks.clone(),
            NameKind::Pool => frontend.map_or_else(Vec::new, |(_, pools)| {
                pools.iter().map(|(p, _)| p.clone()).collect()
            }),
            NameKind::Backend => {
                let pool = frontend.and_then(|(_, pools)| {
                    scope
                        .pool
                        .and_then(|p| pools.iter().find(|(name, _)| name == p))
                });
                match pool {
                    Some((_, backends)) => backends.clone(),
                    None => self.backends.clone(),
                }
            }
        }
    }
}

async fn fetch_names(conn: &Connection) -> Result<Names, CtlError> {
    let client = conn.get().await?;
    let mut rpc = client.rpc.clone();
    let backends = client
        .call(rpc.list_backends(ListBackendsRequest {}))
        .await?;
    let frontends = client
        .call(rpc.list_frontends(ListFrontendsRequest {}))
        .await?;
    let checks = client
        .call(rpc.list_health_checks(ListHealthChecksRequest {}))
        .await?;
    Ok(Names {
        backends: backends.backends.into_iter().map(|b| b.name).collect(),
        healthchecks: checks.healthchecks.into_iter().map(|h| h.name).collect(),
        frontends: frontends
            .frontends
            .into_iter()
            .map(|f| {
                let pools = f
                    .pools
                    .into_iter()
                    .map(|p| (p.name, p.backends.into_iter().map(|b| b.name).collect()))
                    .collect();
                (f.name, pools)
            })
            .collect(),
    })
}

/// Names fetched for completion, and when.
type NameCache = Arc<Mutex<Option<(Instant, Names)>>>;

/// Refreshes the name cache in the background (at start and after each command), so TAB
/// rarely waits for the daemon. A failure leaves the cache as it is.
fn prefetch_names(runtime: &Runtime, conn: &Arc<Connection>, cache: &NameCache) {
    let (conn, cache) = (Arc::clone(conn), Arc::clone(cache));
    runtime.spawn(async move {
        if let Ok(Ok(names)) = tokio::time::timeout(conn.timeout, fetch_names(&conn)).await
            && let Ok(mut slot) = cache.lock()
        {
            *slot = Some((Instant::now(), names));
        }
    });
}

/// TAB completion from the grammar, names from a short-lived cache.
struct ShellCompleter {
    runtime: Handle,
    conn: Arc<Connection>,
    cache: NameCache,
}

impl ShellCompleter {
    fn names(&self) -> Names {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, names)) = cache.as_ref()
            && at.elapsed() < NAMES_TTL
        {
            return names.clone();
        }
        // A failure (daemon down) is cached as "no names" too, so TAB stays quick.
        let conn = Arc::clone(&self.conn);
        let names = self
            .runtime
            .block_on(async move { tokio::time::timeout(NAMES_TIMEOUT, fetch_names(&conn)).await })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), names.clone()));
        }
        names
    }
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let names = self.names();
        let (start, candidates) = grammar::complete(line, pos, &names);
        let suggestions: Vec<Suggestion> = candidates
            .into_iter()
            .map(|c| Suggestion {
                value: c.text,
                description: Some(c.help),
                span: Span::new(start, pos),
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect();
        CompletionResult::fresh(suggestions)
    }
}

struct ShellPrompt {
    server: String,
}

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Owned(format!("maglev {}", self.server))
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("::: ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({failing}search: {}) ", search.term))
    }
}

/// `$XDG_STATE_HOME/maglev/history`, else `~/.local/state/maglev/history`.
pub fn history_path(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match (xdg_state_home, home) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".local/state"),
        _ => return None,
    };
    Some(base.join("maglev").join("history"))
}

fn history() -> Option<Box<FileBackedHistory>> {
    let xdg = std::env::var("XDG_STATE_HOME").ok();
    let home = std::env::var("HOME").ok();
    let path = history_path(xdg.as_deref(), home.as_deref())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    FileBackedHistory::with_file(HISTORY_SIZE, path)
        .ok()
        .map(Box::new)
}

fn editor(completer: ShellCompleter, color: bool, help_break: Arc<AtomicBool>) -> Reedline {
    let mut keybindings = default_emacs_keybindings();
    keybindings.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion_menu".to_string()),
            ReedlineEvent::MenuNext,
        ]),
    );
    // `?` arrives with or without SHIFT depending on the terminal.
    for modifiers in [KeyModifiers::NONE, KeyModifiers::SHIFT] {
        keybindings.add_binding(
            modifiers,
            KeyCode::Char('?'),
            ReedlineEvent::Multiple(vec![
                ReedlineEvent::Esc,
                ReedlineEvent::ExecuteHostCommand(HELP_COMMAND.to_string()),
            ]),
        );
    }
    let menu = ColumnarMenu::default()
        .with_name("completion_menu")
        .with_word_chars(WORD_CHARS);
    let mut editor = Reedline::create()
        .with_completer(Box::new(completer))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_edit_mode(Box::new(Emacs::new(keybindings)))
        .with_ansi_colors(color)
        .with_break_signal(help_break);
    if let Some(history) = history() {
        editor = editor.with_history(history);
    }
    editor
}

/// Runs the shell until `quit`, `exit` or Ctrl-D.
pub fn run(runtime: &Runtime, args: &CtlArgs, color: bool) -> Result<Outcome, CtlError> {
    let timeout = parse_timeout(&args.timeout)?;
    parse_server(&args.server)?;
    let conn = Arc::new(Connection {
        server: args.server.clone(),
        files: super::tls_files(args),
        timeout,
        client: tokio::sync::Mutex::new(None),
    });
    let cache: NameCache = Arc::new(Mutex::new(None));
    prefetch_names(runtime, &conn, &cache);
    let completer = ShellCompleter {
        runtime: runtime.handle().clone(),
        conn: Arc::clone(&conn),
        cache: Arc::clone(&cache),
    };
    let help_break = Arc::new(AtomicBool::new(false));
    let mut editor = editor(completer, color, Arc::clone(&help_break));
    let prompt = ShellPrompt {
        server: args.server.clone(),
    };
    let mut session = Session::new(args.json, color);
    // From here on SIGINT never ends the shell: at the prompt Ctrl-C is a key (raw mode),
    // while a command runs it interrupts that command only (see `run_line`).
    let _sigint = {
        let _rt = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| CtlError::Local(format!("cannot handle Ctrl-C: {e}")))?
    };
    println!(
        "maglev ctl {} — ? lists what may come next, TAB completes, Ctrl-D quits",
        crate::version::VERSION
    );
    loop {
        let signal = editor
            .read_line(&prompt)
            .map_err(|e| CtlError::Local(format!("terminal: {e}")))?;
        match signal {
            Signal::Success(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                // Written now, not only on exit: a shell that is killed keeps its history.
                let _ = editor.sync_history();
                if run_line(runtime, &conn, &mut session, &line) == Outcome::Quit {
                    return Ok(Outcome::Done);
                }
                // An operator action may have changed names (reload): fetch them again.
                if let Ok(mut c) = cache.lock() {
                    *c = None;
                }
                prefetch_names(runtime, &conn, &cache);
            }
            // First round of `?`: have the line repainted (see the module comment).
            Signal::HostCommand(c) if c == HELP_COMMAND => {
                help_break.store(true, Ordering::Relaxed)
            }
            Signal::ExternalBreak(_) => {
                let buffer = editor.current_buffer_contents();
                let head = buffer
                    .get(..editor.current_insertion_point())
                    .unwrap_or(buffer);
                // The cursor is where `?` was typed: the rest of the line gives way to it.
                let clear_rest = if std::io::stdout().is_terminal() {
                    "\x1b[K"
                } else {
                    ""
                };
                println!("?{clear_rest}");
                print_help(head);
            }
            Signal::CtrlD => return Ok(Outcome::Done),
            // Ctrl-C: reedline has cleared the line already.
            _ => {}
        }
    }
}

fn print_help(head: &str) {
    match grammar::help_at(head) {
        Ok(entries) if entries.is_empty() => println!("  (nothing fits here)"),
        Ok(entries) => {
            for entry in entries {
                println!("  {entry}");
            }
        }
        Err(e) => eprintln!("{}", e.pointed(head)),
    }
}

/// Parses and runs one line; errors are printed, never fatal to the shell.
fn run_line(runtime: &Runtime, conn: &Connection, session: &mut Session, line: &str) -> Outcome {
    let command = match grammar::parse(line) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.pointed(line.trim_end()));
            return Outcome::Done;
        }
    };
    let mut out = std::io::stdout();
    let result = match &command {
        Command::Quit => return Outcome::Quit,
        Command::Help => session.help(&mut out).map(|()| Outcome::Done),
        _ => runtime.block_on(async {
            // The terminal is cooked while a command runs: Ctrl-C arrives as SIGINT.
            let client = interruptible(conn.get()).await?;
            match &command {
                // Stops by itself on a key or Ctrl-C.
                Command::WatchEvents(spec) => {
                    keys::watch_until_stopped(session, &client, spec, &mut out).await
                }
                other => interruptible(session.execute(&client, other, &mut out)).await,
            }
        }),
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = out.flush();
            if session.json {
                eprintln!("{}", super::error_json(&e));
            } else {
                eprintln!("error: {e}");
            }
            Outcome::Done
        }
    }
}

/// Runs `work` unless Ctrl-C (SIGINT) comes first.
async fn interruptible<T>(work: impl Future<Output = Result<T, CtlError>>) -> Result<T, CtlError> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(CtlError::Local("interrupted".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            backends: vec!["web1".into(), "web2".into(), "db1".into()],
            healthchecks: vec!["http".into()],
            frontends: vec![(
                "vip1".into(),
                vec![
                    ("primary".into(), vec!["web1".into()]),
                    ("fallback".into(), vec!["web2".into()]),
                ],
            )],
        }
    }

    #[test]
    fn names_follow_the_scope() {
        let n = names();
        let all = Scope::default();
        assert_eq!(n.names(NameKind::Backend, all), ["web1", "web2", "db1"]);
        assert_eq!(n.names(NameKind::Frontend, all), ["vip1"]);
        assert!(
            n.names(NameKind::Pool, all).is_empty(),
            "pools need a frontend"
        );
        let vip1 = Scope {
            frontend: Some("vip1"),
            pool: None,
        };
        assert_eq!(n.names(NameKind::Pool, vip1), ["primary", "fallback"]);
        let fallback = Scope {
            frontend: Some("vip1"),
            pool: Some("fallback"),
        };
        assert_eq!(n.names(NameKind::Backend, fallback), ["web2"]);
        let (_, c) = grammar::complete("set frontend vip1 pool ", 23, &n);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn history_location() {
        assert_eq!(
            history_path(Some("/x/state"), Some("/home/op")),
            Some(PathBuf::from("/x/state/maglev/history"))
        );
        assert_eq!(
            history_path(None, Some("/home/op")),
            Some(PathBuf::from("/home/op/.local/state/maglev/history"))
        );
        assert_eq!(
            history_path(Some(""), Some("/home/op")),
            Some(PathBuf::from("/home/op/.local/state/maglev/history"))
        );
        assert_eq!(history_path(None, None), None);
    }
}
