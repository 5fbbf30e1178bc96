//! The figures of one VIP, fed one probe result at a time. Pure: times are offsets from the
//! start of the run, so the tests drive it with made-up clocks.
//!
//! Outage: from the send time of the first failed probe to the send time of the next
//! successful one (an outage still open at the end of the run ends at the end of the run).
//! Probes of a VIP never overlap, so a client cut off for `D` shows up as an outage of
//! `D` give or take one probe interval plus the time the probe in flight took (at most the
//! timeout) on each edge; a refused connection fails at once, so a stopped server is seen to
//! within about one interval.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// A success slower than this many times the VIP's rolling p50 is a `spike`.
pub const SPIKE_FACTOR: u32 = 5;
/// ... and only once the window holds this many successes (a p50 of three samples is noise).
pub const SPIKE_MIN_SAMPLES: usize = 20;
/// ... and only when it is this much slower in absolute terms: on loopback the p50 is tens of
/// microseconds and a scheduler hiccup would otherwise count.
pub const SPIKE_MIN_EXTRA: Duration = Duration::from_millis(1);
/// A backend is "active" (drawn bright) while it answered within this long.
pub const BACKEND_ACTIVE: Duration = Duration::from_secs(5);

/// Why a probe counts as bad. `Spike` is the one that is not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    Timeout,
    HttpErr,
    NetErr,
    Spike,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpErr => "http-err",
            ErrorClass::NetErr => "net-err",
            ErrorClass::Spike => "spike",
        }
    }

    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::Timeout,
        ErrorClass::HttpErr,
        ErrorClass::NetErr,
        ErrorClass::Spike,
    ];
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected (tcp) or answered below 500 (http): the status and the backend header.
    Ok {
        status: Option<u16>,
        backend: Option<String>,
    },
    /// Failed: the class (never `Spike`) and a short detail ("connection refused", "HTTP 503").
    Fail { class: ErrorClass, detail: String },
}

/// One finished probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// When it was sent, from the start of the run.
    pub sent: Duration,
    /// How long it took (to the full answer, the failure, or the timeout).
    pub latency: Duration,
    pub outcome: Outcome,
}

/// A failure or spike worth showing in the error panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEvent {
    pub at: Duration,
    pub class: ErrorClass,
    pub detail: String,
}

/// A finished (or, at the end of a run, cut short) outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub start: Duration,
    pub end: Duration,
    /// The class of the first failed probe.
    pub class: ErrorClass,
    pub failed_probes: u64,
    /// Still going when the run ended.
    pub open: bool,
}

impl Outage {
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// The length in whole milliseconds as reported: the difference of the rounded start and
    /// end, so that `end_ms - start_ms == length_ms` always holds in the output.
    pub fn length_ms(&self) -> u64 {
        millis(self.end).saturating_sub(millis(self.start))
    }
}

/// One backend seen in the answer header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSeen {
    pub answers: u64,
    pub last: Duration,
}

/// Latency percentiles of a set of successes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub count: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles; all zero for no samples.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |p: usize| {
            // ceil(p/100 * n), 1-based.
            let r = (p * samples.len()).div_ceil(100).max(1);
            samples[r - 1]
        };
        Percentiles {
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
            max: samples[samples.len() - 1],
            count: samples.len(),
        }
    }
}

/// The LAST column: an HTTP code, "ok" for a TCP connect, or the error class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub text: String,
    pub ok: bool,
    pub at: Duration,
}

/// Everything known about one VIP since the start (or the last reset).
#[derive(Debug, Clone)]
pub struct VipStats {
    window: Duration,
    /// Successes within the window: (send time, latency), oldest first.
    recent: VecDeque<(Duration, Duration)>,
    /// Every success's latency in microseconds (4 bytes each: a day at 10 probes a second
    /// is 3.5 MB per VIP), for the drill summary.
    all: Vec<u32>,
    /// The window's p50 as of a time: the spike test reuses it for up to a second instead of
    /// sorting the window on every probe.
    p50_cache: Option<(Duration, Duration)>,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub errors: BTreeMap<ErrorClass, u64>,
    pub last: Option<Last>,
    open: Option<Outage>,
    pub outages: Vec<Outage>,
    pub backends: BTreeMap<String, BackendSeen>,
}

impl VipStats {
    pub fn new(window: Duration) -> VipStats {
        VipStats {
            window,
            recent: VecDeque::new(),
            all: Vec::new(),
            p50_cache: None,
            sent: 0,
            ok: 0,
            failed: 0,
            errors: BTreeMap::new(),
            last: None,
            open: None,
            outages: Vec::new(),
            backends: BTreeMap::new(),
        }
    }

    /// Forgets everything (the `r` key).
    pub fn reset(&mut self) {
        *self = VipStats::new(self.window);
    }

    /// Counts one probe; returns what the error panel should show, if anything.
    pub fn record(&mut self, probe: Probe) -> Option<ErrorEvent> {
        self.sent += 1;
        self.expire(probe.sent);
        match probe.outcome {
            Outcome::Ok { status, backend } => {
                let spike = self.is_spike(probe.sent, probe.latency);
                self.ok += 1;
                self.recent.push_back((probe.sent, probe.latency));
                self.all
                    .push(u32::try_from(probe.latency.as_micros()).unwrap_or(u32::MAX));
                self.last = Some(Last {
                    text: status.map_or_else(|| "ok".to_string(), |s| s.to_string()),
                    ok: true,
                    at: probe.sent,
                });
                if let Some(mut outage) = self.open.take() {
                    outage.end = probe.sent;
                    outage.open = false;
                    self.outages.push(outage);
                }
                if let Some(name) = backend {
                    let seen = self.backends.entry(name).or_insert(BackendSeen {
                        answers: 0,
                        last: probe.sent,
                    });
                    seen.answers += 1;
                    seen.last = seen.last.max(probe.sent);
                }
                spike.then(|| {
                    *self.errors.entry(ErrorClass::Spike).or_default() += 1;
                    ErrorEvent {
                        at: probe.sent,
                        class: ErrorClass::Spike,
                        detail: format!("{} ms", millis(probe.latency)),
                    }
                })
            }
            Outcome::Fail { class, detail } => {
                self.failed += 1;
                *self.errors.entry(class).or_default() += 1;
                self.last = Some(Last {
                    text: class.as_str().to_string(),
                    ok: false,
                    at: probe.sent,
                });
                match &mut self.open {
                    Some(outage) => outage.failed_probes += 1,
                    None => {
                        self.open = Some(Outage {
                            start: probe.sent,
                            end: probe.sent,
                            class,
                            failed_probes: 1,
                            open: true,
                        });
                    }
                }
                Some(ErrorEvent {
                    at: probe.sent,
                    class,
                    detail,
                })
            }
        }
    }

    fn expire(&mut self, now: Duration) {
        while let Some(&(sent, _)) = self.recent.front() {
            if now.saturating_sub(sent) > self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    fn is_spike(&mut self, now: Duration, latency: Duration) -> bool {
        if self.recent.len() < SPIKE_MIN_SAMPLES {
            return false;
        }
        let p50 = match self.p50_cache {
            Some((at, p50)) if now.saturating_sub(at) < Duration::from_secs(1) => p50,
            _ => {
                let p50 = self.window_percentiles().p50;
                self.p50_cache = Some((now, p50));
                p50
            }
        };
        latency > p50 * SPIKE_FACTOR && latency >= p50 + SPIKE_MIN_EXTRA
    }

    /// Latency percentiles of the successes within the window (as of the last probe).
    pub fn window_percentiles(&self) -> Percentiles {
        let mut v: Vec<Duration> = self.recent.iter().map(|&(_, l)| l).collect();
        Percentiles::of(&mut v)
    }

    /// Latency percentiles of every success since the start.
    pub fn run_percentiles(&self) -> Percentiles {
        let mut v: Vec<Duration> = self
            .all
            .iter()
            .map(|&us| Duration::from_micros(u64::from(us)))
            .collect();
        Percentiles::of(&mut v)
    }

    /// Share of probes that succeeded, in percent (100 before the first probe).
    pub fn ok_pct(&self) -> f64 {
        if self.sent == 0 {
            100.0
        } else {
            self.ok as f64 * 100.0 / self.sent as f64
        }
    }

    /// The outage going on now: its start and class.
    pub fn current_outage(&self) -> Option<&Outage> {
        self.open.as_ref()
    }

    /// Every outage, the open one cut at `end`.
    pub fn outages_until(&self, end: Duration) -> Vec<Outage> {
        let mut all = self.outages.clone();
        if let Some(open) = &self.open {
            all.push(Outage {
                end: end.max(open.start),
                ..open.clone()
            });
        }
        all
    }

    /// Whether `name` answered within [`BACKEND_ACTIVE`] of `now`.
    pub fn backend_active(seen: &BackendSeen, now: Duration) -> bool {
        now.saturating_sub(seen.last) <= BACKEND_ACTIVE
    }

    /// Answers that carried the header.
    pub fn tallied(&self) -> u64 {
        self.backends.values().map(|b| b.answers).sum()
    }
}

/// Whole milliseconds, rounded to nearest (for display and JSON).
pub fn millis(d: Duration) -> u64 {
    ((d.as_micros() + 500) / 1000) as u64
}

/// Milliseconds with three decimals (latency figures).
pub fn millis_f(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ok(sent: u64, latency: u64, backend: &str) -> Probe {
        Probe {
            sent: ms(sent),
            latency: ms(latency),
            outcome: Outcome::Ok {
                status: Some(200),
                backend: Some(backend.to_string()),
            },
        }
    }

    fn fail(sent: u64, class: ErrorClass) -> Probe {
        Probe {
            sent: ms(sent),
            latency: ms(1),
            outcome: Outcome::Fail {
                class,
                detail: "x".into(),
            },
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).map(ms).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (ms(50), ms(95), ms(99), ms(100))
        );
        let mut one = vec![ms(7)];
        let p = Percentiles::of(&mut one);
        assert_eq!((p.p50, p.p99, p.max), (ms(7), ms(7), ms(7)));
        assert_eq!(Percentiles::of(&mut []).count, 0);
    }

    #[test]
    fn outage_runs_from_first_failure_to_next_success() {
        let mut s = VipStats::new(ms(60_000));
        s.record(ok(0, 1, "a"));
        s.record(fail(100, ErrorClass::NetErr));
        s.record(fail(200, ErrorClass::Timeout));
        assert_eq!(s.current_outage().map(|o| o.start), Some(ms(100)));
        s.record(ok(2300, 1, "a"));
        assert!(s.current_outage().is_none());
        assert_eq!(s.outages.len(), 1);
        let o = &s.outages[0];
        assert_eq!(o.length(), ms(2200));
        assert_eq!(o.class, ErrorClass::NetErr, "the first failure names it");
        assert_eq!(o.failed_probes, 2);
        assert!(!o.open);
        assert_eq!((s.sent, s.ok, s.failed), (4, 2, 2));
        assert!((s.ok_pct() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn reported_length_is_the_difference_of_the_reported_ends() {
        let o = Outage {
            start: Duration::from_micros(100_400),
            end: Duration::from_micros(1_106_600),
            class: ErrorClass::NetErr,
            failed_probes: 1,
            open: false,
        };
        assert_eq!((millis(o.start), millis(o.end)), (100, 1107));
        assert_eq!(o.length_ms(), 1007);
    }

    #[test]
    fn open_outage_is_cut_at_the_end_of_the_run() {
        let mut s = VipStats::new(ms(60_000));
        s.record(fail(500, ErrorClass::HttpErr));
        let all = s.outages_until(ms(1500));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].length(), ms(1000));
        assert!(all[0].open);
    }

    #[test]
    fn window_drops_old_successes() {
        let mut s = VipStats::new(ms(1000));
        s.record(ok(0, 50, "a"));
        s.record(ok(500, 10, "a"));
        assert_eq!(s.window_percentiles().max, ms(50));
        s.record(ok(1600, 10, "a"));
        assert_eq!(s.window_percentiles().max, ms(10), "the 50 ms one left");
        assert_eq!(s.run_percentiles().max, ms(50), "the run keeps it");
    }

    #[test]
    fn spikes_need_history_and_five_times_p50() {
        let mut s = VipStats::new(ms(60_000));
        for i in 0..SPIKE_MIN_SAMPLES as u64 {
            assert!(s.record(ok(i * 100, 10, "a")).is_none());
        }
        assert!(s.record(ok(5000, 49, "a")).is_none(), "under 5x");
        let e = s.record(ok(5100, 60, "a")).expect("a spike");
        assert_eq!(e.class, ErrorClass::Spike);
        assert_eq!(s.errors.get(&ErrorClass::Spike), Some(&1));
        assert_eq!(s.failed, 0, "a spike is still a success");
    }

    #[test]
    fn tally_and_activity() {
        let mut s = VipStats::new(ms(60_000));
        s.record(ok(0, 1, "nginx0"));
        s.record(ok(100, 1, "nginx1"));
        s.record(ok(6000, 1, "nginx1"));
        assert_eq!(s.tallied(), 3);
        let now = ms(6000);
        assert!(!VipStats::backend_active(&s.backends["nginx0"], now));
        assert!(VipStats::backend_active(&s.backends["nginx1"], now));
        assert_eq!(s.backends["nginx1"].answers, 2);
    }

    #[test]
    fn reset_forgets_everything() {
        let mut s = VipStats::new(ms(60_000));
        s.record(fail(0, ErrorClass::NetErr));
        s.reset();
        assert_eq!(s.sent, 0);
        assert!(s.current_outage().is_none());
        assert!(s.outages_until(ms(10)).is_empty());
    }
}
