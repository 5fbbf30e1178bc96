//! Text output: aligned tables and detail blocks, states coloured (up green, down red,
//! unknown/paused yellow, disabled/removed dimmed) only when colour is on. Pure functions
//! returning `String`, so they are tested without a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration as StdDuration, SystemTime};

use owo_colors::{OwoColorize, Style};

use super::json::{
    backend_state, backend_state_of, config_error_kind, duration_secs, frontend_state,
    frontend_state_of, log_level, result_code,
};
use crate::proto::{
    Backend, BackendState, ConfigResult, Event, Frontend, HealthCheck, ProbeResult,
    SyncVpplbStateResponse, Transition, VersionInfo, VipCounters, VppInfo, VpplbCounters,
    VpplbState, event,
};

/// How to render: colour on or off, and "now" for ages (`up 5m`).
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub color: bool,
    pub now: SystemTime,
}

impl Look {
    pub fn plain() -> Look {
        Look {
            color: false,
            now: SystemTime::now(),
        }
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint(text, Style::new().bold())
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "up" => Style::new().green(),
        "down" => Style::new().red(),
        "unknown" | "paused" => Style::new().yellow(),
        "disabled" | "removed" => Style::new().dimmed(),
        _ => Style::new(),
    }
}

// ---------------------------------------------------------------- tables

/// One cell: its text and how to colour it (colour is applied after padding, so escape
/// codes never disturb the alignment).
/// Text borrowed from the message where it can be: 10,000-row tables are printed.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    text: Cow<'a, str>,
    style: Option<Style>,
}

impl<'a> Cell<'a> {
    pub fn new(text: impl Into<Cow<'a, str>>) -> Cell<'a> {
        Cell {
            text: text.into(),
            style: None,
        }
    }

    pub fn state(state: &str) -> Cell<'a> {
        Cell {
            text: Cow::Owned(state.to_string()),
            style: Some(state_style(state)),
        }
    }
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Cell<'a> {
        Cell::new(s)
    }
}

impl From<String> for Cell<'_> {
    fn from(s: String) -> Self {
        Cell::new(s)
    }
}

/// An aligned table: columns padded to their widest cell, two spaces apart, headers bold.
#[derive(Debug, Default)]
pub struct Table<'a> {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell<'a>>>,
    /// Columns aligned right (numbers).
    right: Vec<usize>,
}

impl<'a> Table<'a> {
    pub fn new(headers: &[&'static str]) -> Table<'a> {
        Table {
            headers: headers.to_vec(),
            ..Table::default()
        }
    }

    pub fn right(mut self, columns: &[usize]) -> Table<'a> {
        self.right = columns.to_vec();
        self
    }

    pub fn row(&mut self, cells: Vec<Cell<'a>>) {
        self.rows.push(cells);
    }

    /// One string for the whole table, written in place: tables of 10,000 rows are
    /// printed (`show backends`), so no per-line or per-cell strings.
    pub fn render(&self, look: &Look) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(&cell.text));
            }
        }
        let line_len: usize = widths.iter().map(|w| w + 2).sum();
        let mut out = String::with_capacity(line_len * (self.rows.len() + 1));
        let bold = Style::new().bold();
        self.line(
            self.headers.iter().map(|h| (*h, Some(bold))),
            &widths,
            look,
            &mut out,
        );
        for row in &self.rows {
            let cells = row.iter().map(|c| (c.text.as_ref(), c.style));
            self.line(cells, &widths, look, &mut out);
        }
        out
    }

    /// Appends one line: cells padded to `widths` (missing ones empty), two spaces apart,
    /// no trailing blanks.
    fn line<'c>(
        &self,
        mut cells: impl Iterator<Item = (&'c str, Option<Style>)>,
        widths: &[usize],
        look: &Look,
        out: &mut String,
    ) {
        let start = out.len();
        let columns = widths.len();
        for (i, w) in widths.iter().enumerate() {
            let (cell, style) = cells.next().unwrap_or(("", None));
            let pad = w.saturating_sub(width(cell));
            if i > 0 {
                out.push_str("  ");
            }
            let right = self.right.contains(&i);
            if right {
                push_spaces(out, pad);
            }
            match style {
                Some(s) if look.color => {
                    let _ = write!(out, "{}", cell.style(s));
                }
                _ => out.push_str(cell),
            }
            if !right && i + 1 < columns {
                push_spaces(out, pad);
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    }
}

/// Display width of a cell: one column per character.
fn width(text: &str) -> usize {
    text.chars().count()
}

fn push_spaces(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let step = left.min(SPACES.len());
        out.push_str(&SPACES[..step]);
        left -= step;
    }
}

/// `key: value` lines with the keys aligned.
fn details(pairs: &[(&str, String)], look: &Look) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let key = format!("{k}:");
        let _ = writeln!(
            out,
            "{}{} {v}",
            look.bold(&key),
            " ".repeat(width - k.len())
        );
    }
    out
}

// ---------------------------------------------------------------- small formats

fn painted_state(state: &str, look: &Look) -> String {
    look.paint(state, state_style(state))
}

/// `1.5s`, `250ms`, `2m`.
pub fn human_duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{}ms", (secs * 1000.0).round() as u64)
    } else if secs < 60.0 {
        let s = format!("{secs:.1}");
        format!("{}s", s.trim_end_matches(".0"))
    } else {
        let whole = secs.round() as u64;
        match (whole / 3600, whole % 3600 / 60, whole % 60) {
            (0, m, 0) => format!("{m}m"),
            (0, m, s) => format!("{m}m{s}s"),
            (h, m, _) => format!("{h}h{m}m"),
        }
    }
}

fn opt_duration(d: Option<&prost_types::Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| human_duration(duration_secs(d)))
}

/// Age of a timestamp relative to `look.now`, in whole seconds: `5m12s ago`. Under a
/// second (or ahead of our clock) it is `just now`: whole seconds of that would read `0ms`.
fn age(ts: Option<&prost_types::Timestamp>, look: &Look) -> String {
    let Some(ts) = ts else {
        return "-".to_string();
    };
    let Ok(at) = SystemTime::try_from(*ts) else {
        return ts.to_string();
    };
    match look.now.duration_since(at) {
        Ok(d) if d.as_secs() > 0 => format!("{} ago", human_duration(d.as_secs() as f64)),
        _ => "just now".to_string(),
    }
}

fn time_of(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| "-".to_string(), ToString::to_string)
}

fn result_short(r: Option<&ProbeResult>) -> String {
    match r {
        None => "-".to_string(),
        Some(r) if r.detail.is_empty() => result_code(r.code()),
        Some(r) => format!("{} ({})", result_code(r.code()), r.detail),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn port(p: u32) -> String {
    if p == 0 {
        "all".to_string()
    } else {
        p.to_string()
    }
}

// ---------------------------------------------------------------- commands

pub fn version(ctl: &str, daemon: &VersionInfo, look: &Look) -> String {
    details(
        &[
            ("ctl", ctl.to_string()),
            (
                "daemon",
                format!(
                    "{} (commit {}, built {})",
                    daemon.version,
                    or_dash(&daemon.commit),
                    or_dash(&daemon.build_date)
                ),
            ),
        ],
        look,
    )
}

pub fn frontends(list: &[Frontend], look: &Look) -> String {
    let mut t = Table::new(&[
        "NAME",
        "STATE",
        "ADDRESS",
        "PROTO",
        "PORT",
        "ACTIVE POOL",
        "UP",
    ])
    .right(&[4]);
    for f in list {
        let backends = f.pools.iter().flat_map(|p| &p.backends);
        let total = backends.clone().count();
        let up = backends.filter(|b| b.state() == BackendState::Up).count();
        t.row(vec![
            f.name.clone().into(),
            Cell::state(&frontend_state(f.state())),
            f.address.clone().into(),
            f.protocol.clone().into(),
            port(f.port).into(),
            active_pool_cell(f).into(),
            format!("{up}/{total}").into(),
        ]);
    }
    t.render(look)
}

fn fail_text(f: &Frontend) -> String {
    match (f.fail.as_str(), f.failed_open) {
        ("", _) => "-".to_string(),
        (policy, false) => policy.to_string(),
        (policy, true) => {
            format!("{policy}: FAILED OPEN (every backend down, the first pool keeps its weights)")
        }
    }
}

/// The active pool, or, while a `fail = "open"` frontend is failed open, the first pool
/// (which then carries the traffic) marked as such.
fn active_pool_cell(f: &Frontend) -> String {
    match f.pools.first() {
        Some(first) if f.failed_open => format!("{} (failed open)", first.name),
        _ => or_dash(&f.active_pool),
    }
}

pub fn frontend_detail(f: &Frontend, look: &Look) -> String {
    let mut out = details(
        &[
            ("frontend", f.name.clone()),
            ("description", or_dash(&f.description)),
            ("state", painted_state(&frontend_state(f.state()), look)),
            (
                "address",
                format!("{} {} port {}", f.address, f.protocol, port(f.port)),
            ),
            ("src-ip-sticky", yes_no(f.src_ip_sticky)),
            ("flush-on-down", yes_no(f.flush_on_down)),
            ("fail", fail_text(f)),
            ("active pool", active_pool_cell(f)),
        ],
        look,
    );
    for pool in &f.pools {
        let marker = if pool.active { " (active)" } else { "" };
        let _ = write!(
            out,
            "\n{}{marker}\n",
            look.bold(&format!("pool {}", pool.name))
        );
        let mut t = Table::new(&[
            "BACKEND",
            "ADDRESS",
            "STATE",
            "WEIGHT",
            "EFFECTIVE",
            "FLUSH",
        ])
        .right(&[3, 4]);
        for b in &pool.backends {
            let weight = if b.weight_overridden {
                format!("{}*", b.configured_weight)
            } else {
                b.configured_weight.to_string()
            };
            t.row(vec![
                b.name.clone().into(),
                b.address.clone().into(),
                Cell::state(&backend_state(b.state())),
                weight.into(),
                b.effective_weight.to_string().into(),
                yes_no(b.flush).into(),
            ]);
        }
        out.push_str(&t.render(look));
    }
    if f.pools
        .iter()
        .flat_map(|p| &p.backends)
        .any(|b| b.weight_overridden)
    {
        out.push_str("\n* runtime weight override\n");
    }
    out
}

fn health_of(b: &Backend) -> String {
    let max = (b.rise + b.fall).saturating_sub(1);
    format!("{}/{max}", b.health)
}

pub fn backends(list: &[Backend], look: &Look) -> String {
    let mut t = Table::new(&[
        "NAME",
        "ADDRESS",
        "STATE",
        "HEALTH",
        "CHECK",
        "LAST RESULT",
        "SINCE",
    ]);
    for b in list {
        t.row(vec![
            b.name.as_str().into(),
            b.address.as_str().into(),
            Cell::state(&backend_state(b.state())),
            health_of(b).into(),
            b.healthcheck.as_str().into(),
            result_short(b.last_result.as_ref()).into(),
            age(b.state_since.as_ref(), look).into(),
        ]);
    }
    t.render(look)
}

pub fn backend_detail(b: &Backend, look: &Look) -> String {
    let last = b.last_result.as_ref().map_or_else(
        || "-".to_string(),
        |r| {
            format!(
                "{} in {} at {}",
                result_short(Some(r)),
                opt_duration(r.duration.as_ref()),
                time_of(r.at.as_ref())
            )
        },
    );
    let mut out = details(
        &[
            ("backend", b.name.clone()),
            ("address", b.address.clone()),
            (
                "state",
                format!(
                    "{} since {} ({})",
                    painted_state(&backend_state(b.state()), look),
                    time_of(b.state_since.as_ref()),
                    age(b.state_since.as_ref(), look)
                ),
            ),
            ("enabled", yes_no(b.enabled)),
            (
                "health",
                format!("{} (rise {}, fall {})", health_of(b), b.rise, b.fall),
            ),
            ("healthcheck", b.healthcheck.clone()),
            ("next probe in", opt_duration(b.next_interval.as_ref())),
            ("last probe", last),
            ("frontends", or_dash(&b.frontends.join(", "))),
        ],
        look,
    );
    out.push_str(&format!("\n{}\n", look.bold("transitions (oldest first)")));
    if b.history.is_empty() {
        out.push_str("none\n");
    } else {
        out.push_str(&transitions(&b.history, look));
    }
    out
}

fn transitions(history: &[Transition], look: &Look) -> String {
    let mut t = Table::new(&["AT", "FROM", "TO", "REASON", "RESULT"]);
    for tr in history {
        t.row(vec![
            time_of(tr.at.as_ref()).into(),
            Cell::state(&backend_state(backend_state_of(tr.from))),
            Cell::state(&backend_state(backend_state_of(tr.to))),
            or_dash(&tr.reason).into(),
            result_short(tr.result.as_ref()).into(),
        ]);
    }
    t.render(look)
}

pub fn healthchecks(list: &[HealthCheck], look: &Look) -> String {
    let mut t = Table::new(&[
        "NAME", "TYPE", "PORT", "INTERVAL", "TIMEOUT", "RISE", "FALL", "BACKENDS",
    ])
    .right(&[2, 5, 6, 7]);
    for h in list {
        t.row(vec![
            h.name.clone().into(),
            h.r#type.clone().into(),
            port(h.port).into(),
            opt_duration(h.interval.as_ref()).into(),
            opt_duration(h.timeout.as_ref()).into(),
            h.rise.to_string().into(),
            h.fall.to_string().into(),
            h.backends.len().to_string().into(),
        ]);
    }
    t.render(look)
}

pub fn healthcheck_detail(h: &HealthCheck, look: &Look) -> String {
    let mut pairs = vec![
        ("healthcheck", h.name.clone()),
        ("type", h.r#type.clone()),
        ("port", port(h.port)),
        (
            "intervals",
            format!(
                "{} (fast {}, down {})",
                opt_duration(h.interval.as_ref()),
                opt_duration(h.fast_interval.as_ref()),
                opt_duration(h.down_interval.as_ref())
            ),
        ),
        ("timeout", opt_duration(h.timeout.as_ref())),
        ("rise/fall", format!("{}/{}", h.rise, h.fall)),
        ("ipv4 source", or_dash(&h.probe_ipv4_src)),
        ("ipv6 source", or_dash(&h.probe_ipv6_src)),
        ("netns", or_dash(&h.netns)),
    ];
    if let Some(p) = &h.http {
        pairs.push(("http path", or_dash(&p.path)));
        pairs.push(("http host", or_dash(&p.host)));
        pairs.push(("expect status", or_dash(&p.expect_status.join(", "))));
        if !p.expect_body.is_empty() {
            pairs.push(("expect body", p.expect_body.clone()));
        }
        if !p.regex.is_empty() {
            pairs.push(("expect regex", p.regex.clone()));
        }
        if !p.sni.is_empty() || h.r#type == "https" {
            pairs.push(("tls sni", or_dash(&p.sni)));
            pairs.push(("tls verify", yes_no(p.verify)));
            pairs.push(("tls ca", or_dash(&p.ca_file)));
        }
    }
    pairs.push(("backends", or_dash(&h.backends.join(", "))));
    details(&pairs, look)
}

pub fn vpp_info(v: &VppInfo, look: &Look) -> String {
    if !v.enabled {
        return format!("{}: health checking only\n", crate::vpp::VppDisabled);
    }
    let connection = if v.connected {
        look.paint("connected", Style::new().green())
    } else {
        look.paint("disconnected", Style::new().red())
    };
    let mut pairs = vec![
        ("vpp", connection),
        ("version", or_dash(&v.version)),
        ("build date", or_dash(&v.build_date)),
        ("pid", v.pid.to_string()),
        (
            "connected since",
            format!(
                "{} ({})",
                time_of(v.connected_since.as_ref()),
                age(v.connected_since.as_ref(), look)
            ),
        ),
        (
            "lb api",
            if v.legacy {
                format!(
                    "{} (legacy: no weights; weight 0 deletes the AS)",
                    or_dash(&v.api_generation)
                )
            } else {
                or_dash(&v.api_generation)
            },
        ),
        ("dry run", yes_no(v.dry_run)),
        ("api socket", or_dash(&v.api_addr)),
        ("stats socket", or_dash(&v.stats_addr)),
        ("warmup done", yes_no(v.warmup_done)),
        ("reconnects", v.reconnects.to_string()),
    ];
    if !v.last_error.is_empty() {
        pairs.push(("last error", v.last_error.clone()));
    }
    details(&pairs, look)
}

pub fn vpp_lb_state(s: &VpplbState, look: &Look) -> String {
    let mut out = String::new();
    if let Some(c) = &s.conf {
        out.push_str(&details(
            &[
                ("ip4 src", or_dash(&c.ip4_src_address)),
                ("ip6 src", or_dash(&c.ip6_src_address)),
                ("sticky buckets/core", c.sticky_buckets_per_core.to_string()),
                ("flow timeout", format!("{}s", c.flow_timeout)),
            ],
            look,
        ));
    }
    if s.vips.is_empty() {
        out.push_str("\nno VIPs\n");
    }
    for v in &s.vips {
        let owner = if v.frontend.is_empty() {
            "not ours".to_string()
        } else {
            format!("frontend {}", v.frontend)
        };
        let title = format!("vip {} {} port {}", v.prefix, v.protocol, port(v.port));
        let _ = writeln!(
            out,
            "\n{} ({owner}) encap {}{} flow table {} pool {}",
            look.bold(&title),
            v.encap,
            if v.src_ip_sticky {
                " src-ip-sticky"
            } else {
                ""
            },
            v.flow_table_length,
            v.pool_index
        );
        let mut t = Table::new(&["AS", "BACKEND", "WEIGHT", "BUCKETS", "IN USE"]).right(&[2, 3]);
        for a in &v.ases {
            t.row(vec![
                a.address.clone().into(),
                or_dash(&a.backend).into(),
                a.weight.to_string().into(),
                a.num_buckets.to_string().into(),
                yes_no(a.flags & 1 == 1).into(),
            ]);
        }
        out.push_str(&t.render(look));
    }
    out
}

/// Counters; with an earlier sample, per-second rates beside the totals. The daemon's
/// previous pass (sent with the counters) is preferred; `prev` (this shell's last sample)
/// stands in when the daemon has none.
pub fn vpp_lb_counters(cur: &VpplbCounters, prev: Option<&VpplbCounters>, look: &Look) -> String {
    let prev = cur
        .previous
        .as_deref()
        .filter(|p| sample_interval(p, cur).is_some())
        .or(prev.filter(|p| sample_interval(p, cur).is_some()));
    let interval = prev.and_then(|p| sample_interval(p, cur));
    let mut headers = vec![
        "FRONTEND",
        "VIP",
        "NEXT",
        "FIRST",
        "UNTRACKED",
        "NO SERVER",
        "ROUTE PKTS",
        "ROUTE BYTES",
    ];
    if interval.is_some() {
        headers.extend([
            "NEXT/s",
            "FIRST/s",
            "UNTRACKED/s",
            "NO SERVER/s",
            "ROUTE PKTS/s",
            "ROUTE BYTES/s",
        ]);
    }
    let right: Vec<usize> = (2..headers.len()).collect();
    let mut t = Table::new(&headers).right(&right);
    let totals = |v: &VipCounters| {
        [
            v.next_packet,
            v.first_packet,
            v.untracked_packet,
            v.no_server,
            v.route_packets,
            v.route_bytes,
        ]
    };
    for v in &cur.vips {
        let vip = format!("{} {} {}", v.prefix, v.protocol, port(v.port));
        let now = totals(v);
        let mut row: Vec<Cell> = vec![or_dash(&v.frontend).into(), vip.into()];
        row.extend(now.iter().map(|n| Cell::new(n.to_string())));
        if let Some(dt) = interval {
            let earlier = prev
                .and_then(|p| {
                    p.vips.iter().find(|o| {
                        o.prefix == v.prefix && o.protocol == v.protocol && o.port == v.port
                    })
                })
                .map(totals);
            for (i, n) in now.iter().enumerate() {
                let rate = earlier
                    .map(|e| n.saturating_sub(e[i]) as f64 / dt.as_secs_f64())
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"));
                row.push(rate.into());
            }
        }
        t.row(row);
    }
    let mut out = t.render(look);
    if let Some(dt) = interval {
        let _ = writeln!(
            out,
            "rates over the last {}",
            human_duration(dt.as_secs_f64())
        );
    }
    if let Some(up) = &cur.vpp_uptime {
        let _ = writeln!(
            out,
            "VPP up {}",
            human_duration(up.seconds as f64 + f64::from(up.nanos) / 1e9)
        );
    }
    out
}

fn sample_interval(prev: &VpplbCounters, cur: &VpplbCounters) -> Option<StdDuration> {
    let a = SystemTime::try_from(prev.at?).ok()?;
    let b = SystemTime::try_from(cur.at?).ok()?;
    b.duration_since(a).ok().filter(|d| !d.is_zero())
}

pub fn sync_result(r: &SyncVpplbStateResponse) -> String {
    let mut out = String::new();
    match (r.operations.is_empty(), r.dry_run) {
        (true, _) => out.push_str("VPP already in sync: nothing to do\n"),
        (false, true) => out.push_str("dry run: would write\n"),
        (false, false) => out.push_str("written\n"),
    }
    for op in &r.operations {
        let _ = writeln!(out, "  {op}");
    }
    out
}

pub fn config_result(r: &ConfigResult, reload: bool, look: &Look) -> String {
    let mut out = String::new();
    if r.ok {
        let verdict = match (reload, r.applied) {
            (true, true) => "config reloaded",
            (true, false) => "config valid, not applied",
            (false, _) => "config ok",
        };
        let _ = writeln!(
            out,
            "{}: {}",
            look.paint(verdict, Style::new().green()),
            r.path
        );
    } else {
        let _ = writeln!(
            out,
            "{}: {} ({} error)",
            look.paint("config invalid", Style::new().red()),
            r.path,
            config_error_kind(r.kind())
        );
    }
    for e in &r.errors {
        let place = match (e.line, e.column) {
            (0, _) => e.file.clone(),
            (l, 0) => format!("{}:{l}", e.file),
            (l, c) => format!("{}:{l}:{c}", e.file),
        };
        let key = if e.key.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.key)
        };
        let _ = writeln!(out, "  {place}{key}: {}", e.message);
    }
    if let Some(d) = &r.diff {
        let groups = [
            ("backends added", &d.backends_added),
            ("backends removed", &d.backends_removed),
            ("backends changed", &d.backends_changed),
            ("healthchecks added", &d.healthchecks_added),
            ("healthchecks removed", &d.healthchecks_removed),
            ("healthchecks changed", &d.healthchecks_changed),
            ("frontends added", &d.frontends_added),
            ("frontends removed", &d.frontends_removed),
            ("frontends changed", &d.frontends_changed),
        ];
        let changes: Vec<(&str, String)> = groups
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(what, names)| (*what, names.join(", ")))
            .collect();
        if changes.is_empty() {
            out.push_str("no changes against the running config\n");
        } else {
            out.push_str(&details(&changes, look));
        }
    }
    out
}

/// One event as one line.
pub fn event(e: &Event, look: &Look) -> String {
    let at = time_of(e.at.as_ref());
    match &e.kind {
        Some(event::Kind::Backend(b)) => {
            let Some(t) = &b.transition else {
                return format!(
                    "{at} backend {} ({}) frontend {}",
                    b.backend, b.address, b.frontend
                );
            };
            let from = backend_state(backend_state_of(t.from));
            let to = backend_state(backend_state_of(t.to));
            let result = t
                .result
                .as_ref()
                .map_or_else(String::new, |r| format!(" {}", result_short(Some(r))));
            format!(
                "{at} backend {} ({}) frontend {}: {} -> {} [{}]{result}",
                b.backend,
                b.address,
                b.frontend,
                painted_state(&from, look),
                painted_state(&to, look),
                or_dash(&t.reason)
            )
        }
        Some(event::Kind::Frontend(f)) => {
            let from = frontend_state(frontend_state_of(f.from));
            let to = frontend_state(frontend_state_of(f.to));
            let active = f.snapshot.as_ref().map_or_else(String::new, |s| {
                format!(" active pool {}", or_dash(&s.active_pool))
            });
            if f.initial {
                format!(
                    "{at} frontend {}: {} (current){active}",
                    f.frontend,
                    painted_state(&to, look)
                )
            } else {
                format!(
                    "{at} frontend {}: {} -> {}{active}",
                    f.frontend,
                    painted_state(&from, look),
                    painted_state(&to, look)
                )
            }
        }
        Some(event::Kind::Log(l)) => {
            let level = log_level(l.level());
            let style = match level.as_str() {
                "error" => Style::new().red(),
                "warn" => Style::new().yellow(),
                "debug" | "trace" => Style::new().dimmed(),
                _ => Style::new(),
            };
            let mut fields: Vec<(&String, &String)> = l.fields.iter().collect();
            fields.sort();
            let fields: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
            format!(
                "{at} {} {}: {}{fields}",
                look.paint(&level, style),
                l.target,
                l.message
            )
        }
        Some(event::Kind::Lost(l)) => format!("{at} ... {} events lost (too slow)", l.count),
        None => format!("{at} (unknown event)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{FrontendState, Pool, PoolBackend, VipCounters};

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn look(color: bool) -> Look {
        Look {
            color,
            now: SystemTime::UNIX_EPOCH + StdDuration::from_secs(1_000),
        }
    }

    fn backend(name: &str, state: BackendState) -> Backend {
        Backend {
            name: name.into(),
            address: "192.0.2.1".into(),
            healthcheck: "http".into(),
            state: state as i32,
            health: 1,
            rise: 2,
            fall: 3,
            state_since: Some(prost_types::Timestamp {
                seconds: 700,
                nanos: 0,
            }),
            ..Backend::default()
        }
    }

    /// Column start offsets of each header in the first line.
    fn header_columns(text: &str) -> Vec<usize> {
        let first = text.lines().next().unwrap_or_default();
        let mut cols = Vec::new();
        let mut prev_space = true;
        let mut spaces = 0;
        for (i, c) in first.char_indices() {
            if c == ' ' {
                spaces += 1;
            } else {
                if prev_space && (i == 0 || spaces >= 2) {
                    cols.push(i);
                }
                spaces = 0;
            }
            prev_space = c == ' ';
        }
        cols
    }

    #[test]
    fn tables_align_with_and_without_colour() {
        let list = vec![
            backend("web1", BackendState::Up),
            backend("a-much-longer-name", BackendState::Down),
            backend("db", BackendState::Disabled),
        ];
        let plain = backends(&list, &look(false));
        assert!(!plain.contains('\u{1b}'), "no escape codes without colour");
        let coloured = backends(&list, &look(true));
        assert!(
            coloured.contains("\u{1b}[32mup"),
            "up is green: {coloured:?}"
        );
        assert!(coloured.contains("\u{1b}[31mdown"), "down is red");
        assert!(coloured.contains("\u{1b}[2mdisabled"), "disabled is dimmed");
        // Same layout once the escape codes are gone.
        assert_eq!(strip_ansi(&coloured), plain);
        // Every row's state cell starts in the STATE column.
        let state_col = header_columns(&plain)[2];
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 4);
        for (line, state) in lines[1..].iter().zip(["up", "down", "disabled"]) {
            assert_eq!(&line[state_col..state_col + state.len()], state, "{plain}");
        }
        assert!(lines[1].starts_with("web1                "), "{plain}");
        assert!(
            plain.contains("1/4"),
            "health counter of rise+fall-1: {plain}"
        );
        assert!(plain.contains("5m ago"), "age from now: {plain}");
    }

    #[test]
    fn right_aligned_numbers() {
        let mut t = Table::new(&["NAME", "N"]).right(&[1]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["b".into(), "123".into()]);
        assert_eq!(t.render(&look(false)), "NAME    N\na       5\nb     123\n");
    }

    #[test]
    fn unknown_and_paused_are_yellow() {
        let l = look(true);
        assert!(painted_state("unknown", &l).starts_with("\u{1b}[33m"));
        assert!(painted_state("paused", &l).starts_with("\u{1b}[33m"));
        assert_eq!(painted_state("paused", &look(false)), "paused");
    }

    #[test]
    fn failed_open_is_shown_in_the_list_and_the_detail() {
        let mut f = Frontend {
            name: "web".into(),
            state: FrontendState::Down as i32,
            fail: "open".into(),
            failed_open: true,
            pools: vec![Pool {
                name: "primary".into(),
                ..Pool::default()
            }],
            ..Frontend::default()
        };
        let list = frontends(std::slice::from_ref(&f), &look(false));
        assert!(list.contains("primary (failed open)"), "{list}");
        let detail = frontend_detail(&f, &look(false));
        assert!(detail.contains("open: FAILED OPEN"), "{detail}");
        f.failed_open = false;
        let list = frontends(std::slice::from_ref(&f), &look(false));
        assert!(!list.contains("failed open"), "{list}");
        let detail = frontend_detail(&f, &look(false));
        assert!(!detail.contains("FAILED"), "{detail}");
        assert!(
            detail.lines().any(|l| l.trim_end().ends_with("open")),
            "{detail}"
        );
    }

    #[test]
    fn frontend_detail_marks_the_active_pool_and_overrides() {
        let f = Frontend {
            name: "vip1".into(),
            address: "192.0.2.100/32".into(),
            protocol: "tcp".into(),
            port: 80,
            state: FrontendState::Up as i32,
            active_pool: "primary".into(),
            pools: vec![
                Pool {
                    name: "primary".into(),
                    active: true,
                    backends: vec![PoolBackend {
                        name: "web1".into(),
                        state: BackendState::Up as i32,
                        configured_weight: 100,
                        effective_weight: 30,
                        weight_overridden: true,
                        ..PoolBackend::default()
                    }],
                },
                Pool {
                    name: "fallback".into(),
                    active: false,
                    backends: vec![PoolBackend {
                        name: "web9".into(),
                        state: BackendState::Up as i32,
                        configured_weight: 100,
                        effective_weight: 0,
                        ..PoolBackend::default()
                    }],
                },
            ],
            ..Frontend::default()
        };
        let text = frontend_detail(&f, &look(false));
        assert!(text.contains("pool primary (active)\n"), "{text}");
        assert!(text.contains("pool fallback\n"), "{text}");
        assert!(text.contains("100*"), "{text}");
        assert!(text.contains("* runtime weight override"), "{text}");
        let web9 = text
            .lines()
            .find(|l| l.starts_with("web9"))
            .unwrap_or_default();
        assert!(
            web9.contains(" 0 "),
            "standby pool has effective weight 0: {web9}"
        );
    }

    #[test]
    fn backend_detail_has_history_and_last_probe() {
        let mut b = backend("web1", BackendState::Down);
        b.last_result = Some(ProbeResult {
            code: crate::proto::ResultCode::L7sts as i32,
            detail: "HTTP 503".into(),
            duration: Some(prost_types::Duration {
                seconds: 0,
                nanos: 3_000_000,
            }),
            ..ProbeResult::default()
        });
        b.history = vec![Transition {
            from: BackendState::Up as i32,
            to: BackendState::Down as i32,
            reason: "probe".into(),
            ..Transition::default()
        }];
        let text = backend_detail(&b, &look(false));
        assert!(text.contains("L7STS (HTTP 503) in 3ms"), "{text}");
        let row = text.lines().last().unwrap_or_default();
        assert!(
            row.contains("up") && row.contains("down") && row.contains("probe"),
            "{row}"
        );
    }

    #[test]
    fn counters_show_rates_only_with_two_samples() {
        let sample = |secs: i64, next: u64| VpplbCounters {
            at: Some(prost_types::Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            vips: vec![VipCounters {
                frontend: "vip1".into(),
                prefix: "192.0.2.100/32".into(),
                protocol: "tcp".into(),
                port: 80,
                next_packet: next,
                ..VipCounters::default()
            }],
            ..VpplbCounters::default()
        };
        let one = vpp_lb_counters(&sample(10, 1000), None, &look(false));
        assert!(!one.contains("NEXT/s"), "{one}");
        assert!(one.contains("1000"));
        let two = vpp_lb_counters(&sample(15, 1500), Some(&sample(10, 1000)), &look(false));
        assert!(two.contains("NEXT/s"), "{two}");
        assert!(two.contains("100.0"), "500 packets over 5 s: {two}");
        assert!(two.contains("rates over the last 5s"), "{two}");

        // The daemon's own previous pass gives rates in one shot, and wins over the
        // shell's older sample.
        let mut with_previous = sample(20, 2500);
        with_previous.previous = Some(Box::new(sample(18, 2300)));
        let three = vpp_lb_counters(&with_previous, Some(&sample(10, 1000)), &look(false));
        assert!(three.contains("rates over the last 2s"), "{three}");
        assert!(three.contains("100.0"), "200 packets over 2 s: {three}");
        // A previous pass that is not older is ignored.
        let mut same = sample(20, 2500);
        same.previous = Some(Box::new(sample(20, 2500)));
        let four = vpp_lb_counters(&same, None, &look(false));
        assert!(!four.contains("NEXT/s"), "{four}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0.0125), "13ms");
        assert_eq!(human_duration(1.5), "1.5s");
        assert_eq!(human_duration(2.0), "2s");
        assert_eq!(human_duration(300.0), "5m");
        assert_eq!(human_duration(312.0), "5m12s");
        assert_eq!(human_duration(7320.0), "2h2m");
    }

    #[test]
    fn ages_in_whole_seconds_and_just_now_under_one() {
        let l = look(false);
        let at = |secs: f64| {
            let t = SystemTime::UNIX_EPOCH + StdDuration::from_secs_f64(secs);
            age(Some(&prost_types::Timestamp::from(t)), &l)
        };
        assert_eq!(at(999.6), "just now", "not \"0ms ago\"");
        assert_eq!(at(1_000.0), "just now");
        assert_eq!(at(1_000.5), "just now", "a daemon clock slightly ahead");
        assert_eq!(at(997.3), "2s ago");
        assert_eq!(at(688.0), "5m12s ago");
        assert_eq!(age(None, &l), "-");
    }
}
