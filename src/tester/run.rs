//! The probe tasks (one per VIP, never two probes of a VIP at once) and the loop that feeds
//! their results to the figures and the chosen output until the run ends.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::SignalKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::probe::Prober;
use super::report;
use super::screen::{Key, Screen};
use super::stats::{ErrorEvent, Probe, VipStats};
use super::target::Target;
use super::{Settings, TesterError};

/// Failures and spikes the error panel keeps (newest first).
const PANEL_KEEP: usize = 200;

/// One finished probe of VIP number `vip`.
#[derive(Debug)]
pub struct ProbeReport {
    pub vip: usize,
    pub probe: Probe,
}

/// A line of the error panel.
#[derive(Debug, Clone)]
pub struct PanelError {
    pub vip: usize,
    pub event: ErrorEvent,
}

/// Everything the outputs show.
pub struct Board {
    pub settings: Settings,
    pub targets: Vec<Target>,
    pub stats: Vec<VipStats>,
    pub errors: VecDeque<PanelError>,
    pub start: Instant,
    pub start_wall: SystemTime,
    pub paused: bool,
    pub host: String,
}

impl Board {
    /// `host` is this host's name for the screen header.
    pub fn new(settings: Settings, targets: Vec<Target>, start: Instant, host: String) -> Board {
        let stats = targets
            .iter()
            .map(|_| VipStats::new(settings.window))
            .collect();
        Board {
            settings,
            targets,
            stats,
            errors: VecDeque::new(),
            start,
            start_wall: SystemTime::now(),
            paused: false,
            host,
        }
    }

    pub fn record(&mut self, report: ProbeReport) {
        let Some(stats) = self.stats.get_mut(report.vip) else {
            return;
        };
        if let Some(event) = stats.record(report.probe) {
            self.errors.push_front(PanelError {
                vip: report.vip,
                event,
            });
            self.errors.truncate(PANEL_KEEP);
        }
    }

    /// The `r` key: every figure starts over.
    pub fn reset(&mut self) {
        self.stats.iter_mut().for_each(VipStats::reset);
        self.errors.clear();
    }

    /// Time since the start of the run.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The wall-clock time of an offset into the run.
    pub fn wall(&self, at: Duration) -> SystemTime {
        self.start_wall + at
    }
}

/// Probes `target` every `interval` (a slow probe delays the next; they never overlap),
/// unless paused, until the receiver is gone.
async fn probe_loop(
    vip: usize,
    target: Target,
    prober: Arc<Prober>,
    interval: Duration,
    start: Instant,
    paused: watch::Receiver<bool>,
    results: mpsc::Sender<ProbeReport>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if *paused.borrow() {
            continue;
        }
        let sent = start.elapsed();
        let (latency, outcome) = prober.probe(&target).await;
        let probe = Probe {
            sent,
            latency,
            outcome,
        };
        if results.send(ProbeReport { vip, probe }).await.is_err() {
            return;
        }
    }
}

/// The live output: the screen, JSON lines, or nothing (no terminal: only the summary).
enum Output {
    Screen(Box<Screen>),
    Json,
    Quiet,
}

/// Runs until `--duration` is up, `q`, or SIGINT/SIGTERM; prints the summary; returns the
/// exit code.
pub async fn run(
    settings: Settings,
    targets: Vec<Target>,
    prober: Arc<Prober>,
) -> Result<u8, TesterError> {
    let mut output = if settings.json {
        Output::Json
    } else if std::io::stdout().is_terminal() {
        Output::Screen(Box::new(Screen::start()?))
    } else {
        Output::Quiet
    };
    let start = Instant::now();
    // The FQDN only for the screen: resolving it may ask DNS, which --json has no use for.
    let host = match output {
        Output::Screen(_) => super::hostname::fqdn(),
        Output::Json | Output::Quiet => String::new(),
    };
    let mut board = Board::new(settings.clone(), targets.clone(), start, host);
    let (pause_tx, pause_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::channel(1024);
    let mut tasks = JoinSet::new();
    for (vip, target) in targets.iter().enumerate() {
        tasks.spawn(probe_loop(
            vip,
            target.clone(),
            Arc::clone(&prober),
            settings.interval,
            start,
            pause_rx.clone(),
            tx.clone(),
        ));
    }
    drop(tx);
    let period = match output {
        Output::Json | Output::Quiet => Duration::from_secs(1),
        // Redraw and look at the keys ten times a second.
        Output::Screen(_) => Duration::from_millis(100),
    };
    let mut tick = tokio::time::interval_at((start + period).into(), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = settings.duration.map(|d| start + d);
    // Made once, before the loop: a signal between two turns of the loop is not lost.
    let signal = |kind: SignalKind| {
        tokio::signal::unix::signal(kind)
            .map_err(|e| TesterError::Local(format!("signal handler: {e}")))
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let ended = loop {
        tokio::select! {
            Some(r) = rx.recv() => board.record(r),
            _ = tick.tick() => {
                if step(&mut output, &mut board)? {
                    break board.now();
                }
                pause_tx.send_replace(board.paused);
            }
            () = sleep_until(deadline) => break settings.duration.unwrap_or_default(),
            _ = sigint.recv() => break board.now(),
            _ = sigterm.recv() => break board.now(),
        }
    };
    tasks.abort_all();
    // Probes that finished in time but were still queued count; those in flight do not.
    while let Ok(r) = rx.try_recv() {
        if r.probe.sent + r.probe.latency <= ended {
            board.record(r);
        }
    }
    drop(output);
    let summary = report::summarize(&board, ended);
    let mut out = std::io::stdout().lock();
    let written = if settings.json {
        writeln!(out, "{}", report::summary_json(&board, ended, &summary))
    } else {
        write!(out, "{}", report::summary_text(&board, ended, &summary))
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| TesterError::Local(format!("output: {e}")))?;
    Ok(report::exit_code(&summary, settings.max_outage))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// One tick of the output; true = quit.
fn step(output: &mut Output, board: &mut Board) -> Result<bool, TesterError> {
    match output {
        Output::Json => {
            let now = board.now();
            let mut out = std::io::stdout().lock();
            for vip in 0..board.targets.len() {
                writeln!(out, "{}", report::record(board, vip, now))
                    .map_err(|e| TesterError::Local(format!("output: {e}")))?;
            }
            out.flush()
                .map_err(|e| TesterError::Local(format!("output: {e}")))?;
            Ok(false)
        }
        Output::Quiet => Ok(false),
        Output::Screen(screen) => {
            for key in screen.keys()? {
                match key {
                    Key::Quit => return Ok(true),
                    Key::Reset => board.reset(),
                    Key::Pause => board.paused = !board.paused,
                }
            }
            screen.draw(board)?;
            Ok(false)
        }
    }
}
