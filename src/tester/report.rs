//! What the tester prints for scripts: one JSON record per VIP per second (`--json`), and
//! the drill summary at the end (text, or one JSON line with `--json`), with its verdict.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::run::Board;
use super::stats::{ErrorClass, Outage, VipStats, millis, millis_f};

/// RFC 3339 UTC with milliseconds: `2026-12-07T18:40:03.512Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let mut ts = prost_types::Timestamp::from(t);
    ts.nanos -= ts.nanos % 1_000_000;
    ts.to_string()
}

fn time_of_day(t: SystemTime) -> String {
    // "2026-12-07T18:40:03.512Z" -> "18:40:03.512"
    let full = rfc3339(t);
    full.get(11..full.len().saturating_sub(1))
        .unwrap_or(&full)
        .to_string()
}

fn backends_json(stats: &VipStats, now: Duration) -> Value {
    let total = stats.tallied().max(1) as f64;
    stats
        .backends
        .iter()
        .map(|(name, seen)| {
            json!({
                "name": name,
                "answers": seen.answers,
                "share_pct": round2(seen.answers as f64 * 100.0 / total),
                "active": VipStats::backend_active(seen, now),
            })
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The per-second record of VIP `vip` (the same figures as its screen row).
pub fn record(board: &Board, vip: usize, now: Duration) -> Value {
    let (Some(target), Some(stats)) = (board.targets.get(vip), board.stats.get(vip)) else {
        return Value::Null;
    };
    let p = stats.window_percentiles();
    let errors: serde_json::Map<String, Value> = ErrorClass::ALL
        .iter()
        .map(|c| {
            (
                c.as_str().to_string(),
                json!(stats.errors.get(c).copied().unwrap_or(0)),
            )
        })
        .collect();
    let outage = stats.current_outage().map(|o| {
        json!({
            "start": rfc3339(board.wall(o.start)),
            "length_ms": millis(now.saturating_sub(o.start)),
            "class": o.class.as_str(),
        })
    });
    json!({
        "record": "vip",
        "time": rfc3339(board.wall(now)),
        "elapsed_ms": millis(now),
        "vip": target.name,
        "url": target.url(),
        "paused": board.paused,
        "sent": stats.sent,
        "ok": stats.ok,
        "fail": stats.failed,
        "ok_pct": round2(stats.ok_pct()),
        "window_s": board.settings.window.as_secs_f64(),
        "latency_ms": {
            "samples": p.count,
            "p50": millis_f(p.p50),
            "p95": millis_f(p.p95),
            "p99": millis_f(p.p99),
            "max": millis_f(p.max),
        },
        "last": stats.last.as_ref().map(|l| l.text.clone()),
        "outage": outage,
        "errors": errors,
        "backends": backends_json(stats, now),
    })
}

/// The drill figures of one VIP.
#[derive(Debug, Clone)]
pub struct VipSummary {
    pub name: String,
    pub url: String,
    pub sent: u64,
    pub ok: u64,
    pub ok_pct: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub outages: Vec<Outage>,
    /// (name, answers, share in percent), most answers first.
    pub backends: Vec<(String, u64, f64)>,
}

impl VipSummary {
    pub fn longest(&self) -> Option<&Outage> {
        self.outages.iter().max_by_key(|o| o.length_ms())
    }
}

/// The summary of every VIP at the end of a run `ended` long.
pub fn summarize(board: &Board, ended: Duration) -> Vec<VipSummary> {
    board
        .targets
        .iter()
        .zip(&board.stats)
        .map(|(t, s)| {
            let p = s.run_percentiles();
            let total = s.tallied().max(1) as f64;
            let mut backends: Vec<(String, u64, f64)> = s
                .backends
                .iter()
                .map(|(n, b)| (n.clone(), b.answers, b.answers as f64 * 100.0 / total))
                .collect();
            backends.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            VipSummary {
                name: t.name.clone(),
                url: t.url(),
                sent: s.sent,
                ok: s.ok,
                ok_pct: s.ok_pct(),
                p50: p.p50,
                p99: p.p99,
                max: p.max,
                outages: s.outages_until(ended),
                backends,
            }
        })
        .collect()
}

/// 1 when a VIP's longest outage is longer than `max_outage`, else 0.
pub fn exit_code(summary: &[VipSummary], max_outage: Option<Duration>) -> u8 {
    let Some(limit) = max_outage else {
        return 0;
    };
    let over = summary
        .iter()
        .any(|v| v.longest().is_some_and(|o| o.length_ms() > millis(limit)));
    u8::from(over)
}

fn outage_json(board: &Board, o: &Outage) -> Value {
    json!({
        "start": rfc3339(board.wall(o.start)),
        "end": rfc3339(board.wall(o.end)),
        "start_ms": millis(o.start),
        "end_ms": millis(o.end),
        "length_ms": o.length_ms(),
        "class": o.class.as_str(),
        "failed_probes": o.failed_probes,
        "open": o.open,
    })
}

/// `{"record": "summary", ...}`: the summary as one JSON line.
pub fn summary_json(board: &Board, ended: Duration, summary: &[VipSummary]) -> Value {
    let s = &board.settings;
    let vips: Vec<Value> = summary
        .iter()
        .map(|v| {
            json!({
                "vip": v.name,
                "url": v.url,
                "sent": v.sent,
                "ok": v.ok,
                "ok_pct": round2(v.ok_pct),
                "latency_ms": {
                    "p50": millis_f(v.p50),
                    "p99": millis_f(v.p99),
                    "max": millis_f(v.max),
                },
                "outages": v.outages.iter().map(|o| outage_json(board, o)).collect::<Vec<_>>(),
                "longest_outage": v.longest().map(|o| outage_json(board, o)),
                "backends": v.backends.iter().map(|(n, a, share)| json!({
                    "name": n, "answers": a, "share_pct": round2(*share),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "record": "summary",
        "start": rfc3339(board.start_wall),
        "duration_ms": millis(ended),
        "interval_ms": millis(s.interval),
        "timeout_ms": millis(s.timeout),
        "source": s.source_label,
        "max_outage_ms": s.max_outage.map(millis),
        "exit_code": exit_code(summary, s.max_outage),
        "vips": vips,
    })
}

/// The summary for people.
pub fn summary_text(board: &Board, ended: Duration, summary: &[VipSummary]) -> String {
    let s = &board.settings;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "drill summary: {} VIP(s) from {}, {:.1} s from {}, every {} ms, timeout {} ms",
        summary.len(),
        s.source_label,
        ended.as_secs_f64(),
        rfc3339(board.start_wall),
        millis(s.interval),
        millis(s.timeout),
    );
    for v in summary {
        let _ = writeln!(out, "\n{}  {}", v.name, v.url);
        let _ = writeln!(
            out,
            "  probes {}  ok {:.2} %  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            v.sent,
            v.ok_pct,
            millis_f(v.p50),
            millis_f(v.p99),
            millis_f(v.max),
        );
        match v.longest() {
            None => {
                let _ = writeln!(out, "  outages 0");
            }
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  outages {}  longest {} ms",
                    v.outages.len(),
                    l.length_ms()
                );
            }
        }
        for o in &v.outages {
            let _ = writeln!(
                out,
                "    {} .. {}  {:>6} ms  {:<8}  {} failed probe(s){}",
                time_of_day(board.wall(o.start)),
                time_of_day(board.wall(o.end)),
                o.length_ms(),
                o.class.as_str(),
                o.failed_probes,
                if o.open {
                    "  (still out at the end)"
                } else {
                    ""
                },
            );
        }
        if !v.backends.is_empty() {
            let list: Vec<String> = v
                .backends
                .iter()
                .map(|(n, a, share)| format!("{n} {share:.1} % ({a})"))
                .collect();
            let _ = writeln!(out, "  backends  {}", list.join(", "));
        }
    }
    if let Some(limit) = s.max_outage {
        let worst = summary
            .iter()
            .filter_map(|v| v.longest().map(|o| (v.name.as_str(), o.length_ms())))
            .max_by_key(|&(_, l)| l);
        let limit_ms = millis(limit);
        let verdict = match worst {
            Some((name, l)) if l > limit_ms => {
                format!("FAIL: {name} was out {l} ms, more than --max-outage {limit_ms} ms")
            }
            Some((name, l)) => {
                format!("PASS: longest outage {l} ms ({name}), within --max-outage {limit_ms} ms")
            }
            None => format!("PASS: no outage (--max-outage {} ms)", millis(limit)),
        };
        let _ = writeln!(out, "\n{verdict}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(outages: &[u64]) -> VipSummary {
        VipSummary {
            name: "v".into(),
            url: "tcp://192.0.2.1:1".into(),
            sent: 1,
            ok: 1,
            ok_pct: 100.0,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::ZERO,
            outages: outages
                .iter()
                .map(|&ms| Outage {
                    start: Duration::ZERO,
                    end: Duration::from_millis(ms),
                    class: ErrorClass::NetErr,
                    failed_probes: 1,
                    open: false,
                })
                .collect(),
            backends: Vec::new(),
        }
    }

    #[test]
    fn verdict_uses_the_longest_outage() {
        let limit = Some(Duration::from_millis(300));
        assert_eq!(exit_code(&[vip(&[100, 250])], limit), 0);
        assert_eq!(exit_code(&[vip(&[100]), vip(&[50, 301])], limit), 1);
        assert_eq!(exit_code(&[vip(&[300])], limit), 0, "equal is within");
        assert_eq!(exit_code(&[vip(&[5000])], None), 0, "no limit, no verdict");
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_500_123);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:01.500Z");
        assert_eq!(time_of_day(t), "00:00:01.500");
    }
}
