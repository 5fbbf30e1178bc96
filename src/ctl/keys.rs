//! "Any key stops it" for `watch events`: raw mode while the stream runs, and a thread that
//! polls the terminal for a key press. Dropping the watcher stops the thread (so it never
//! steals input from the shell afterwards) and restores the terminal, on every path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal;
use tokio::sync::oneshot;

/// A running key watcher; `pressed` resolves on the first key (Ctrl-C included).
pub struct KeyWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    raw: bool,
}

impl KeyWatch {
    /// Puts the terminal in raw mode and starts watching. Returns the watcher and a receiver
    /// that fires on a key press. Fails only if raw mode cannot be entered.
    pub fn start() -> std::io::Result<(KeyWatch, oneshot::Receiver<()>)> {
        terminal::enable_raw_mode()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(50)) {
                    Ok(true) => match event::read() {
                        Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                            let _ = tx.send(());
                            return;
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        });
        Ok((
            KeyWatch {
                stop,
                thread: Some(thread),
                raw: true,
            },
            rx,
        ))
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.raw {
            let _ = terminal::disable_raw_mode();
        }
    }
}

/// Runs `watch events` until it ends by itself, a key is pressed (when stdin is a terminal),
/// or Ctrl-C (SIGINT, when it is not). The terminal is restored before this returns.
pub async fn watch_until_stopped(
    session: &super::run::Session,
    client: &super::client::Client,
    spec: &super::grammar::WatchSpec,
    out: &mut dyn std::io::Write,
) -> Result<super::run::Outcome, super::client::CtlError> {
    use std::io::IsTerminal;
    let (guard, key) = if std::io::stdin().is_terminal() {
        match KeyWatch::start() {
            Ok((guard, rx)) => (Some(guard), Some(rx)),
            Err(_) => (None, None),
        }
    } else {
        (None, None)
    };
    // Raw mode turns "\n" into a bare line feed on the terminal.
    let line_end = if guard.is_some() && std::io::stdout().is_terminal() {
        "\r\n"
    } else {
        "\n"
    };
    let stop = async move {
        let key = async move {
            match key {
                // A closed channel (the watcher thread failed) also stops: never hang.
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = key => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let result = session.watch(client, spec, out, line_end, stop).await;
    drop(guard);
    result
}
