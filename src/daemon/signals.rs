//! Signals on a thread of their own, with a current-thread runtime of its own: SIGTERM
//! and SIGINT are seen however busy the daemon's runtime is. The first stop signal also
//! arms a last resort: if the orderly shutdown has not ended the process by then, this
//! thread ends it (exit 0: VPP keeps what it has, as in an orderly stop).

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What the daemon is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reload,
    /// Stop; the name of the signal.
    Stop(&'static str),
}

/// Starts the signal thread. `hard_exit`: how long after the first stop signal the
/// process is ended whatever it is doing.
pub fn start(hard_exit: Duration) -> std::io::Result<mpsc::UnboundedReceiver<Request>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Installed before returning, so no signal between here and the thread's start is
    // taken by the default action (which would kill the process).
    let (mut hup, mut term, mut int) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("maglev-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut armed = false;
                loop {
                    let request = tokio::select! {
                        _ = hup.recv() => Request::Reload,
                        _ = term.recv() => Request::Stop("SIGTERM"),
                        _ = int.recv() => Request::Stop("SIGINT"),
                    };
                    if let Request::Stop(name) = request
                        && !armed
                    {
                        armed = true;
                        tokio::spawn(async move {
                            tokio::time::sleep(hard_exit).await;
                            eprintln!(
                                "maglev daemon: still running {hard_exit:?} after {name}: exiting"
                            );
                            std::process::exit(0);
                        });
                    }
                    // Nobody listening any more: the daemon is on its way out.
                    let _ = tx.send(request);
                }
            });
        })?;
    Ok(rx)
}
