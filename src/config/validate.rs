//! Semantic validation: turns the raw schema into the model, applying defaults and every
//! rule of docs/design.md §4. All violations are collected (sorted by position), not just the
//! first, and each points at the offending key or value.
//!
//! `ca-file` is deliberately not checked for existence here: `--check` may run on another
//! host than the daemon, and a missing file is reported by the https probe (L6) at runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::error::{Diagnostic, SourceMap};
use super::load::LoadOptions;
use super::model::*;
use super::schema::*;

pub(crate) const DEFAULT_TRANSITION_HISTORY: usize = 5;
pub(crate) const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_STICKY_BUCKETS_PER_CORE: u32 = 65536;
pub(crate) const DEFAULT_FLOW_TIMEOUT: Duration = Duration::from_secs(40);
pub(crate) const DEFAULT_STARTUP_MIN_DELAY: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_STARTUP_MAX_DELAY: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_RISE: u32 = 2;
pub(crate) const DEFAULT_FALL: u32 = 3;
/// Upper bound for rise and fall: keeps `rise + fall` far from overflow and catches typos.
pub(crate) const MAX_RISE_FALL: i64 = 1000;
pub(crate) const DEFAULT_WEIGHT: u8 = 100;
const FLOW_TIMEOUT_MIN: Duration = Duration::from_secs(1);
const FLOW_TIMEOUT_MAX: Duration = Duration::from_secs(120);
const MAX_TRANSITION_HISTORY: usize = 1000;

/// Validates a parsed file. `file` is recorded in `Config::path`.
pub(crate) fn validate(
    raw: RawConfig,
    map: &SourceMap<'_>,
    file: PathBuf,
    opts: &LoadOptions,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut v = Validator {
        map,
        opts,
        diags: Vec::new(),
        warnings: Vec::new(),
    };
    let healthchecker = v.healthchecker(raw.healthchecker.as_ref());
    let lb = v.vpp_lb(raw.vpp.as_ref().and_then(|s| s.get_ref().lb.as_ref()));
    let healthchecks = v.healthchecks(&raw.healthchecks);
    let backends = v.backends(&raw.backends, &raw.healthchecks);
    let (frontends, families) = v.frontends(&raw.frontends, &raw.backends, &backends);
    v.src_addresses_present(&lb, &families);

    if v.diags.is_empty() {
        let mut warnings = v.warnings;
        warnings.sort_by_key(|d| (d.line, d.column));
        let config = Config {
            path: file,
            healthchecker,
            vpp: VppConfig { lb: lb.config },
            healthchecks,
            backends,
            frontends,
        };
        Ok((config, warnings))
    } else {
        let mut diags = v.diags;
        diags.sort_by_key(|d| (d.line, d.column));
        Err(diags)
    }
}

struct Validator<'a> {
    map: &'a SourceMap<'a>,
    opts: &'a LoadOptions,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// The validated `vpp.lb` plus whether each source address was written at all (an invalid
/// one is already reported and must not also be reported as missing).
struct LbResult {
    config: VppLbConfig,
    ipv4_src_written: bool,
    ipv6_src_written: bool,
}

/// The backends a frontend may reference: every defined name, and the valid ones.
struct Known<'a> {
    names: String,
    raw: &'a Named<RawBackend>,
    valid: &'a BTreeMap<String, Backend>,
}

/// Where the first backend of each family is referenced by a frontend.
#[derive(Default)]
struct FamilyUse {
    ipv4: Option<(Range<usize>, String)>,
    ipv6: Option<(Range<usize>, String)>,
}

impl Validator<'_> {
    fn warning(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(self.map.diagnostic(&span, key, message));
    }

    fn error(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.diags.push(self.map.diagnostic(&span, key, message));
    }

    fn healthchecker(&mut self, raw: Option<&Spanned<RawHealthChecker>>) -> HealthCheckerConfig {
        let mut out = HealthCheckerConfig {
            transition_history: DEFAULT_TRANSITION_HISTORY,
            netns: None,
        };
        let Some(raw) = raw.map(Spanned::get_ref) else {
            return out;
        };
        if let Some(th) = &raw.transition_history
            // The ring is allocated per backend: bound it like rise/fall.
            && let Some(n) = self.int_field(
                th,
                "healthchecker.transition-history",
                |n: &usize| (1..=MAX_TRANSITION_HISTORY).contains(n),
                &format!("within 1..={MAX_TRANSITION_HISTORY}"),
            )
        {
            out.transition_history = n;
        }
        out.netns = non_empty(raw.netns.as_ref());
        out
    }

    fn vpp_lb(&mut self, raw: Option<&Spanned<RawVppLb>>) -> LbResult {
        let mut config = VppLbConfig {
            sync_interval: DEFAULT_SYNC_INTERVAL,
            ipv4_src_address: None,
            ipv6_src_address: None,
            sticky_buckets_per_core: DEFAULT_STICKY_BUCKETS_PER_CORE,
            flow_timeout: DEFAULT_FLOW_TIMEOUT,
            startup_min_delay: DEFAULT_STARTUP_MIN_DELAY,
            startup_max_delay: DEFAULT_STARTUP_MAX_DELAY,
        };
        let Some(raw) = raw.map(Spanned::get_ref) else {
            return LbResult {
                config,
                ipv4_src_written: false,
                ipv6_src_written: false,
            };
        };
        let p = "vpp.lb";

        config.sync_interval = self.positive_duration(
            raw.sync_interval.as_ref(),
            &join(p, "sync-interval"),
            DEFAULT_SYNC_INTERVAL,
        );
        config.ipv4_src_address =
            self.ipv4(raw.ipv4_src_address.as_ref(), &join(p, "ipv4-src-address"));
        config.ipv6_src_address =
            self.ipv6(raw.ipv6_src_address.as_ref(), &join(p, "ipv6-src-address"));

        if let Some(b) = &raw.sticky_buckets_per_core
            && let Some(n) = self.int_field(
                b,
                &join(p, "sticky-buckets-per-core"),
                |n: &u32| n.is_power_of_two(),
                "a power of two (e.g. 65536)",
            )
        {
            config.sticky_buckets_per_core = n;
        }

        if let Some(ft) = &raw.flow_timeout {
            let key = join(p, "flow-timeout");
            if let Some(d) = self.duration(ft, &key) {
                if !(FLOW_TIMEOUT_MIN..=FLOW_TIMEOUT_MAX).contains(&d) {
                    self.error(
                        ft.span(),
                        key,
                        format!(
                            "flow-timeout must be between 1s and 120s, got {}",
                            ft.get_ref().0
                        ),
                    );
                } else if d.subsec_nanos() != 0 {
                    self.error(
                        ft.span(),
                        key,
                        format!(
                            "flow-timeout must be whole seconds (VPP counts in seconds), got {}",
                            ft.get_ref().0
                        ),
                    );
                } else {
                    config.flow_timeout = d;
                }
            }
        }

        let min_key = join(p, "startup-min-delay");
        let max_key = join(p, "startup-max-delay");
        let min = raw
            .startup_min_delay
            .as_ref()
            .and_then(|d| self.duration(d, &min_key));
        let max = raw
            .startup_max_delay
            .as_ref()
            .and_then(|d| self.duration(d, &max_key));
        config.startup_min_delay = min.unwrap_or(DEFAULT_STARTUP_MIN_DELAY);
        config.startup_max_delay = max.unwrap_or(DEFAULT_STARTUP_MAX_DELAY);
        if config.startup_min_delay > config.startup_max_delay {
            // Point at whichever of the two the operator wrote (max first: usually the culprit).
            let (span, key) = match (&raw.startup_max_delay, &raw.startup_min_delay) {
                (Some(m), _) => (m.span(), max_key),
                (None, Some(m)) => (m.span(), min_key),
                (None, None) => (0..0, p.to_string()),
            };
            self.error(
                span,
                key,
                format!(
                    "startup-min-delay ({}) must not be longer than startup-max-delay ({})",
                    super::duration::format_duration(config.startup_min_delay),
                    super::duration::format_duration(config.startup_max_delay)
                ),
            );
        }

        LbResult {
            config,
            ipv4_src_written: raw.ipv4_src_address.is_some(),
            ipv6_src_written: raw.ipv6_src_address.is_some(),
        }
    }

    fn healthchecks(&mut self, raw: &Named<RawHealthCheck>) -> BTreeMap<String, HealthCheck> {
        let mut out = BTreeMap::new();
        for (name, hc) in raw {
            let key = join("healthchecks", name.get_ref());
            self.name_not_empty(name, &key, "healthcheck");
            if let Some(hc) = self.healthcheck(name, hc.get_ref(), &key) {
                out.insert(name.get_ref().clone(), hc);
            }
        }
        out
    }

    fn healthcheck(
        &mut self,
        name: &Spanned<String>,
        raw: &RawHealthCheck,
        p: &str,
    ) -> Option<HealthCheck> {
        let kind = match raw.kind.get_ref().as_str() {
            "icmp" => Some(CheckType::Icmp),
            "tcp" => Some(CheckType::Tcp),
            "tcp-syn" => Some(CheckType::TcpSyn),
            "http" => Some(CheckType::Http),
            "https" => Some(CheckType::Https),
            other => {
                self.error(
                    raw.kind.span(),
                    join(p, "type"),
                    format!(
                        "unknown healthcheck type \"{other}\" (expected icmp, tcp, tcp-syn, http or https)"
                    ),
                );
                None
            }
        };

        let port = self.check_port(kind, name, raw.port.as_ref(), p);

        let interval = self.positive_duration(
            raw.interval.as_ref(),
            &join(p, "interval"),
            DEFAULT_INTERVAL,
        );
        let fast_interval = self.positive_duration(
            raw.fast_interval.as_ref(),
            &join(p, "fast-interval"),
            interval / 4,
        );
        let down_interval = self.positive_duration(
            raw.down_interval.as_ref(),
            &join(p, "down-interval"),
            interval,
        );
        // The default timeout shrinks with a short interval; a written one is never clamped.
        let timeout_key = join(p, "timeout");
        let timeout = self.positive_duration(
            raw.timeout.as_ref(),
            &timeout_key,
            DEFAULT_TIMEOUT.min(interval),
        );
        // The Go tool accepts this (its README has interval 2s, timeout 3s), so do we: the
        // checker never overlaps probes of one backend, the next one simply waits.
        if let Some(t) = &raw.timeout
            && timeout > interval
        {
            let interval = super::duration::format_duration(interval);
            self.warning(
                t.span(),
                timeout_key,
                format!(
                    "timeout ({}) is longer than interval ({interval}): accepted, but probes of a backend never overlap, so a probe that runs into the timeout delays the next one (each starts {interval} after the previous one ended)",
                    t.get_ref().0,
                ),
            );
        }

        let rise = self.rise_fall(raw.rise.as_ref(), &join(p, "rise"), DEFAULT_RISE);
        let fall = self.rise_fall(raw.fall.as_ref(), &join(p, "fall"), DEFAULT_FALL);
        let probe_ipv4_src = self.ipv4(raw.probe_ipv4_src.as_ref(), &join(p, "probe-ipv4-src"));
        let probe_ipv6_src = self.ipv6(raw.probe_ipv6_src.as_ref(), &join(p, "probe-ipv6-src"));
        let netns = non_empty(raw.netns.as_ref());

        let http = match (kind, &raw.params) {
            (Some(k @ (CheckType::Http | CheckType::Https)), params) => {
                Some(self.http_params(k, params.as_ref().map(Spanned::get_ref), &join(p, "params")))
            }
            (Some(k), Some(params)) => {
                self.error(
                    params.span(),
                    join(p, "params"),
                    format!(
                        "params are only used by http and https checks, not {}",
                        k.as_str()
                    ),
                );
                None
            }
            _ => None,
        };

        // A missing port was reported by check_port; the check is then left out.
        let check = match (kind?, port, http) {
            (CheckType::Icmp, _, _) => CheckKind::Icmp,
            (CheckType::Tcp, Some(port), _) => CheckKind::Tcp { port },
            (CheckType::TcpSyn, Some(port), _) => CheckKind::TcpSyn { port },
            (CheckType::Http, Some(port), Some((params, _))) => CheckKind::Http { port, params },
            (CheckType::Https, Some(port), Some((params, tls))) => {
                CheckKind::Https { port, params, tls }
            }
            _ => return None,
        };

        Some(HealthCheck {
            name: name.get_ref().clone(),
            check,
            interval,
            fast_interval,
            down_interval,
            timeout,
            rise,
            fall,
            probe_ipv4_src,
            probe_ipv6_src,
            netns,
        })
    }

    fn check_port(
        &mut self,
        kind: Option<CheckType>,
        name: &Spanned<String>,
        port: Option<&Spanned<i64>>,
        p: &str,
    ) -> Option<u16> {
        let kind = kind?;
        match port {
            None if kind.needs_port() => {
                self.error(
                    name.span(),
                    p,
                    format!("a {} check needs a port (1..65535)", kind.as_str()),
                );
                None
            }
            None => None,
            Some(port) if !kind.needs_port() => {
                self.error(
                    port.span(),
                    join(p, "port"),
                    format!("port is not used by {} checks; remove it", kind.as_str()),
                );
                None
            }
            Some(port) => self.int_field(port, &join(p, "port"), |n: &u16| *n >= 1, "1..65535"),
        }
    }

    /// The HTTP and TLS parameters (the TLS ones are defaults for http, where setting them
    /// is an error).
    fn http_params(
        &mut self,
        kind: CheckType,
        raw: Option<&RawHttpParams>,
        p: &str,
    ) -> (HttpParams, TlsParams) {
        let mut out = HttpParams {
            path: "/".to_string(),
            host: None,
            expect_status: vec![StatusRange { lo: 200, hi: 399 }],
            expect_body: None,
        };
        let mut tls = TlsParams::default();
        let Some(raw) = raw else {
            return (out, tls);
        };

        if let Some(path) = &raw.path {
            if path.get_ref().starts_with('/') {
                out.path = path.get_ref().clone();
            } else {
                self.error(
                    path.span(),
                    join(p, "path"),
                    format!("path must start with \"/\", got \"{}\"", path.get_ref()),
                );
            }
        }
        out.host = self.non_empty_string(raw.host.as_ref(), &join(p, "host"), "host");

        if let Some(list) = &raw.expect_status {
            let key = join(p, "expect-status");
            if list.get_ref().is_empty() {
                self.error(
                    list.span(),
                    key.clone(),
                    "expect-status must list at least one code or range",
                );
            }
            let mut ranges = Vec::new();
            for (i, item) in list.get_ref().iter().enumerate() {
                match parse_status_range(item.get_ref()) {
                    Ok(r) => ranges.push(r),
                    Err(msg) => self.error(item.span(), format!("{key}[{i}]"), msg),
                }
            }
            if !ranges.is_empty() {
                out.expect_status = ranges;
            }
        }

        if let Some(body) = &raw.expect_body {
            out.expect_body = Some(BodyMatch::Substring(body.get_ref().clone()));
        }
        if let Some(re) = &raw.regex {
            let key = join(p, "regex");
            if raw.expect_body.is_some() {
                self.error(re.span(), key, "set either expect-body or regex, not both");
            } else {
                match BodyMatch::regex(re.get_ref()) {
                    Ok(m) => out.expect_body = Some(m),
                    Err(e) => self.error(
                        re.span(),
                        key,
                        format!("invalid regex: {}", one_line_regex_error(&e)),
                    ),
                }
            }
        }

        let https_only = |v: &mut Self, span: Range<usize>, field: &str| {
            v.error(
                span,
                join(p, field),
                format!("{field} is only used by https checks (this is http)"),
            );
        };
        if kind == CheckType::Https {
            tls.sni = self.non_empty_string(raw.sni.as_ref(), &join(p, "sni"), "sni");
            if let Some(verify) = &raw.verify {
                tls.verify = *verify.get_ref();
            }
            tls.ca_file = self
                .non_empty_string(raw.ca_file.as_ref(), &join(p, "ca-file"), "ca-file")
                .map(PathBuf::from);
        } else {
            if let Some(s) = &raw.sni {
                https_only(self, s.span(), "sni");
            }
            if let Some(s) = &raw.verify {
                https_only(self, s.span(), "verify");
            }
            if let Some(s) = &raw.ca_file {
                https_only(self, s.span(), "ca-file");
            }
        }
        (out, tls)
    }

    fn backends(
        &mut self,
        raw: &Named<RawBackend>,
        healthchecks: &Named<RawHealthCheck>,
    ) -> BTreeMap<String, Backend> {
        let known_checks = known_names(healthchecks);
        let mut out = BTreeMap::new();
        for (name, b) in raw {
            let p = join("backends", name.get_ref());
            self.name_not_empty(name, &p, "backend");
            let b = b.get_ref();
            let address = match b.address.get_ref().parse::<IpAddr>() {
                Ok(a) if a.is_unspecified() || a.is_multicast() => {
                    self.error(
                        b.address.span(),
                        join(&p, "address"),
                        format!("{a} is not a usable backend address"),
                    );
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    self.error(
                        b.address.span(),
                        join(&p, "address"),
                        format!("invalid IP address \"{}\"", b.address.get_ref()),
                    );
                    None
                }
            };
            let hc = b.healthcheck.get_ref();
            if !healthchecks.contains_key(hc.as_str()) {
                self.error(
                    b.healthcheck.span(),
                    join(&p, "healthcheck"),
                    format!("unknown healthcheck \"{hc}\" (known: {known_checks})"),
                );
            }
            if let Some(address) = address {
                out.insert(
                    name.get_ref().clone(),
                    Backend {
                        name: name.get_ref().clone(),
                        address,
                        healthcheck: hc.clone(),
                        enabled: b.enabled.unwrap_or(true),
                    },
                );
            }
        }
        out
    }

    fn frontends(
        &mut self,
        raw: &Named<RawFrontend>,
        raw_backends: &Named<RawBackend>,
        backends: &BTreeMap<String, Backend>,
    ) -> (BTreeMap<String, Frontend>, FamilyUse) {
        let known = Known {
            names: known_names(raw_backends),
            raw: raw_backends,
            valid: backends,
        };
        let mut out = BTreeMap::new();
        let mut families = FamilyUse::default();
        for (name, f) in raw {
            let p = join("frontends", name.get_ref());
            self.name_not_empty(name, &p, "frontend");
            if let Some(fe) = self.frontend(name, f.get_ref(), &p, &known, &mut families) {
                out.insert(name.get_ref().clone(), fe);
            }
        }
        // VPP keys a VIP by (prefix, protocol, port): two frontends on one key would fight
        // over the same VIP, so the second (in name order) is an error.
        let mut seen: BTreeMap<(Prefix, Protocol, u16), &str> = BTreeMap::new();
        for (name, f) in raw {
            let Some(fe) = out.get(name.get_ref()) else {
                continue;
            };
            let key = (fe.address, fe.protocol, fe.port);
            if let Some(first) = seen.get(&key) {
                self.error(
                    f.get_ref().address.span(),
                    join(&join("frontends", name.get_ref()), "address"),
                    format!(
                        "VIP {} {} port {} is already used by frontend \"{first}\"",
                        fe.address,
                        fe.protocol.as_str(),
                        fe.port
                    ),
                );
            } else {
                seen.insert(key, name.get_ref());
            }
        }
        (out, families)
    }

    fn frontend(
        &mut self,
        name: &Spanned<String>,
        raw: &RawFrontend,
        p: &str,
        backends: &Known<'_>,
        families: &mut FamilyUse,
    ) -> Option<Frontend> {
        let address = match parse_prefix(raw.address.get_ref()) {
            Ok(a) => Some(a),
            Err(msg) => {
                self.error(raw.address.span(), join(p, "address"), msg);
                None
            }
        };

        let protocol = match raw
            .protocol
            .as_ref()
            .map(|s| (s.get_ref().as_str(), s.span()))
        {
            None | Some(("tcp", _)) => Protocol::Tcp,
            Some(("udp", _)) => Protocol::Udp,
            Some(("any", _)) => Protocol::Any,
            Some((other, span)) => {
                self.error(
                    span,
                    join(p, "protocol"),
                    format!("unknown protocol \"{other}\" (expected tcp, udp or any)"),
                );
                Protocol::Tcp
            }
        };

        let mut port = 0;
        if let Some(raw_port) = &raw.port {
            match u16::try_from(*raw_port.get_ref()) {
                Ok(n) if n != 0 && protocol == Protocol::Any => self.error(
                    raw_port.span(),
                    join(p, "port"),
                    "protocol \"any\" covers all ports: use port = 0, or protocol tcp or udp",
                ),
                Ok(n) => port = n,
                Err(_) => self.error(
                    raw_port.span(),
                    join(p, "port"),
                    format!(
                        "port must be 0..65535 (0 = all ports), got {}",
                        raw_port.get_ref()
                    ),
                ),
            }
        }

        let pools = self.pools(name, raw.pools.as_ref(), p, backends, families);
        let fail = match raw.fail.as_ref().map(|f| (f, f.get_ref().as_str())) {
            None | Some((_, "closed")) => FailPolicy::Closed,
            Some((_, "open")) => FailPolicy::Open,
            Some((f, other)) => {
                self.error(
                    f.span(),
                    join(p, "fail"),
                    format!("fail must be \"closed\" or \"open\", got \"{other}\""),
                );
                FailPolicy::Closed
            }
        };

        Some(Frontend {
            name: name.get_ref().clone(),
            description: raw.description.clone().unwrap_or_default(),
            address: address?,
            protocol,
            port,
            src_ip_sticky: raw.src_ip_sticky.unwrap_or(false),
            flush_on_down: raw.flush_on_down.unwrap_or(true),
            fail,
            pools,
        })
    }

    fn pools(
        &mut self,
        frontend: &Spanned<String>,
        raw: Option<&Spanned<Vec<Spanned<RawPool>>>>,
        p: &str,
        backends: &Known<'_>,
        families: &mut FamilyUse,
    ) -> Vec<Pool> {
        let raw_pools = raw.map(|r| r.get_ref().as_slice()).unwrap_or_default();
        if raw_pools.is_empty() {
            let span = raw.map_or_else(|| frontend.span(), Spanned::span);
            self.error(
                span,
                p,
                format!(
                    "frontend \"{}\" has no pools (add at least one [[{}.pools]] with backends)",
                    frontend.get_ref(),
                    p
                ),
            );
            return Vec::new();
        }

        // Per frontend: pool names seen, which pool holds each backend, which backend has
        // each address, and the family of the first backend.
        let mut pool_names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut member_pool: BTreeMap<&str, String> = BTreeMap::new();
        let mut by_address: BTreeMap<IpAddr, &str> = BTreeMap::new();
        let mut family: Option<(bool, &str)> = None;
        let mut out = Vec::new();

        for (i, pool) in raw_pools.iter().enumerate() {
            let pp = format!("{p}.pools[{i}]");
            let raw_pool = pool.get_ref();
            let pool_name = match &raw_pool.name {
                None => {
                    self.error(pool.span(), &pp, "pool needs a name (name = \"primary\")");
                    String::new()
                }
                Some(n) if n.get_ref().is_empty() => {
                    self.error(n.span(), join(&pp, "name"), "pool name must not be empty");
                    String::new()
                }
                Some(n) => {
                    if let Some(first) = pool_names.get(n.get_ref().as_str()) {
                        self.error(
                            n.span(),
                            join(&pp, "name"),
                            format!(
                                "duplicate pool name \"{}\" (also {p}.pools[{first}])",
                                n.get_ref()
                            ),
                        );
                    } else {
                        pool_names.insert(n.get_ref(), i);
                    }
                    n.get_ref().clone()
                }
            };
            if raw_pool.backends.is_empty() {
                let label = if pool_name.is_empty() {
                    format!("pools[{i}]")
                } else {
                    format!("pool \"{pool_name}\"")
                };
                self.error(pool.span(), &pp, format!("{label} has no backends"));
            }

            let mut members = Vec::new();
            for (bname, member) in &raw_pool.backends {
                let bn = bname.get_ref().as_str();
                let mp = join(&join(&pp, "backends"), bn);
                let weight = member
                    .get_ref()
                    .weight
                    .as_ref()
                    .and_then(|w| {
                        self.int_field(w, &join(&mp, "weight"), |n: &u8| *n <= 100, "0..100")
                    })
                    .unwrap_or(DEFAULT_WEIGHT);
                members.push(PoolMember {
                    backend: bn.to_string(),
                    weight,
                });

                let Some(backend) = backends.valid.get(bn) else {
                    // Unknown, or defined but invalid (that definition is reported already).
                    if !backends.raw.contains_key(bn) {
                        self.error(
                            bname.span(),
                            mp,
                            format!("unknown backend \"{bn}\" (known: {})", backends.names),
                        );
                    }
                    continue;
                };
                if let Some(other_pool) = member_pool.get(bn) {
                    self.error(
                        bname.span(),
                        mp,
                        format!(
                            "backend \"{bn}\" is already in pool \"{other_pool}\" of this frontend (one VIP has one AS per address)"
                        ),
                    );
                    continue;
                }
                member_pool.insert(bn, pool_name.clone());
                if let Some(other) = by_address.get(&backend.address) {
                    self.error(
                        bname.span(),
                        mp,
                        format!(
                            "backend \"{bn}\" has the same address {} as backend \"{other}\" in this frontend",
                            backend.address
                        ),
                    );
                    continue;
                }
                by_address.insert(backend.address, bn);

                let is_v4 = backend.address.is_ipv4();
                match family {
                    None => family = Some((is_v4, bn)),
                    Some((fam_v4, first)) if fam_v4 != is_v4 => {
                        self.error(
                            bname.span(),
                            mp,
                            format!(
                                "backend \"{bn}\" is {} ({}) but backend \"{first}\" of this frontend is {}; all backends of a frontend must share one address family",
                                family_name(is_v4),
                                backend.address,
                                family_name(fam_v4)
                            ),
                        );
                        continue;
                    }
                    Some(_) => {}
                }
                let slot = if is_v4 {
                    &mut families.ipv4
                } else {
                    &mut families.ipv6
                };
                if slot.is_none() {
                    *slot = Some((bname.span(), mp));
                }
            }
            out.push(Pool {
                name: pool_name,
                backends: members,
            });
        }
        out
    }

    /// vpp.lb needs the GRE source of every family some frontend sends to, but only once
    /// the daemon talks to VPP: with VPP off (health checking only) a missing one is a
    /// warning, as in the Go tool, which asks for them only when it connects.
    fn src_addresses_present(&mut self, lb: &LbResult, families: &FamilyUse) {
        let missing = [
            (
                &families.ipv4,
                lb.config.ipv4_src_address.is_none() && !lb.ipv4_src_written,
                "an IPv4 backend needs vpp.lb.ipv4-src-address (the GRE4 source), which is not set",
            ),
            (
                &families.ipv6,
                lb.config.ipv6_src_address.is_none() && !lb.ipv6_src_written,
                "an IPv6 backend needs vpp.lb.ipv6-src-address (the GRE6 source), which is not set",
            ),
        ];
        for (used, absent, what) in missing {
            let Some((span, key)) = used else { continue };
            if !absent {
                continue;
            }
            if self.opts.vpp {
                self.error(
                    span.clone(),
                    key.clone(),
                    format!("{what} (an error because VPP is on; with --vpp-api-addr \"\" it is only a warning)"),
                );
            } else {
                self.warning(
                    span.clone(),
                    key.clone(),
                    format!("{what} (a warning because VPP is off, --vpp-api-addr \"\"; an error once VPP is on)"),
                );
            }
        }
    }

    // ---- small typed readers -------------------------------------------------------------

    fn name_not_empty(&mut self, name: &Spanned<String>, key: &str, what: &str) {
        if name.get_ref().is_empty() {
            self.error(name.span(), key, format!("{what} name must not be empty"));
        }
    }

    fn duration(&mut self, raw: &Spanned<DurationText>, key: &str) -> Option<Duration> {
        match parse_duration(&raw.get_ref().0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(raw.span(), key, e.to_string());
                None
            }
        }
    }

    /// A duration that must be > 0; `default` when absent or invalid (the error is recorded).
    fn positive_duration(
        &mut self,
        raw: Option<&Spanned<DurationText>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(raw) = raw else {
            return default;
        };
        match self.duration(raw, key) {
            Some(d) if d.is_zero() => {
                self.error(
                    raw.span(),
                    key,
                    format!("{} must be greater than 0", field_of(key)),
                );
                default
            }
            Some(d) => d,
            None => default,
        }
    }

    fn rise_fall(&mut self, raw: Option<&Spanned<i64>>, key: &str, default: u32) -> u32 {
        raw.and_then(|raw| {
            self.int_field(
                raw,
                key,
                |n: &u32| (1..=MAX_RISE_FALL).contains(&i64::from(*n)),
                &format!("1..{MAX_RISE_FALL}"),
            )
        })
        .unwrap_or(default)
    }

    /// An integer that fits `T` and passes `accept`; else the error
    /// "<field> must be <expect>, got <n>" is recorded and the result is `None`.
    fn int_field<T: TryFrom<i64>>(
        &mut self,
        raw: &Spanned<i64>,
        key: &str,
        accept: impl FnOnce(&T) -> bool,
        expect: &str,
    ) -> Option<T> {
        let n = *raw.get_ref();
        match T::try_from(n) {
            Ok(v) if accept(&v) => Some(v),
            _ => {
                self.error(
                    raw.span(),
                    key,
                    format!("{} must be {expect}, got {n}", field_of(key)),
                );
                None
            }
        }
    }

    fn ip(&mut self, raw: &Spanned<String>, key: &str) -> Option<IpAddr> {
        match raw.get_ref().parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    raw.span(),
                    key,
                    format!("invalid IP address \"{}\"", raw.get_ref()),
                );
                None
            }
        }
    }

    fn ipv4(&mut self, raw: Option<&Spanned<String>>, key: &str) -> Option<Ipv4Addr> {
        match self.ip_of_family(raw, key, true)? {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    fn ipv6(&mut self, raw: Option<&Spanned<String>>, key: &str) -> Option<Ipv6Addr> {
        match self.ip_of_family(raw, key, false)? {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    /// An address of the family asked for (`is_v4`), else the error is recorded.
    fn ip_of_family(
        &mut self,
        raw: Option<&Spanned<String>>,
        key: &str,
        is_v4: bool,
    ) -> Option<IpAddr> {
        let raw = raw?;
        let a = self.ip(raw, key)?;
        if a.is_ipv4() == is_v4 {
            return Some(a);
        }
        self.error(
            raw.span(),
            key,
            format!(
                "{} must be an {} address, got {} {a}",
                field_of(key),
                family_name(is_v4),
                family_name(!is_v4)
            ),
        );
        None
    }

    fn non_empty_string(
        &mut self,
        raw: Option<&Spanned<String>>,
        key: &str,
        field: &str,
    ) -> Option<String> {
        let raw = raw?;
        if raw.get_ref().is_empty() {
            self.error(
                raw.span(),
                key,
                format!("{field} must not be empty (leave it out for the default)"),
            );
            None
        } else {
            Some(raw.get_ref().clone())
        }
    }
}

/// "" means "not set" for optional names such as netns.
fn non_empty(raw: Option<&Spanned<String>>) -> Option<String> {
    raw.map(|s| s.get_ref().clone()).filter(|s| !s.is_empty())
}

/// The last segment of a key path: the field name errors speak of.
fn field_of(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn family_name(is_v4: bool) -> &'static str {
    if is_v4 { "IPv4" } else { "IPv6" }
}

fn known_names<T>(table: &Named<T>) -> String {
    let names: BTreeSet<&str> = table.keys().map(|k| k.get_ref().as_str()).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// "200" or "200-299", codes within 100..599.
pub(crate) fn parse_status_range(s: &str) -> Result<StatusRange, String> {
    let code = |t: &str| -> Option<u16> {
        let t = t.trim();
        if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok().filter(|c| (100..=599).contains(c))
    };
    let bad = || {
        format!(
            "invalid status \"{s}\" (expected a code like \"200\" or a range like \"200-299\", within 100..599)"
        )
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (code(a).ok_or_else(bad)?, code(b).ok_or_else(bad)?),
        None => {
            let c = code(s).ok_or_else(bad)?;
            (c, c)
        }
    };
    if lo > hi {
        return Err(format!(
            "invalid status range \"{s}\": {lo} is greater than {hi}"
        ));
    }
    Ok(StatusRange { lo, hi })
}

/// An address ("192.0.2.1" = /32, "2001:db8::1" = /128) or a CIDR without host bits.
pub(crate) fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let (addr_text, len_text) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        format!("invalid address \"{s}\" (expected an IP address or a CIDR such as 192.0.2.0/24)")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(format!(
                    "invalid prefix length in \"{s}\" (expected 0..{max})"
                ));
            }
        },
    };
    let network = mask(addr, len);
    if network != addr {
        return Err(format!(
            "\"{s}\" has host bits set (did you mean {network}/{len}?)"
        ));
    }
    Ok(Prefix { addr, len })
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The regex crate renders syntax errors over several lines with a caret; keep the gist.
fn one_line_regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// A key path segment, quoted when it is not a bare TOML key.
pub(crate) fn key_segment(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.escape_default())
    }
}

/// `parent.key`, quoting `key` if needed.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key_segment(key)
    } else {
        format!("{parent}.{}", key_segment(key))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, load_str};

    /// Lines joined with '\n', so a line's index + 1 is its line number in messages.
    fn doc(lines: &[&str]) -> String {
        lines.join("\n")
    }

    fn load_ok(src: &str) -> Config {
        match load_str(src, Path::new("t.toml")) {
            Ok(c) => c,
            Err(e) => panic!("expected a valid config, got:\n{e}"),
        }
    }

    fn load_with(src: &str, vpp: bool) -> crate::config::Loaded {
        let opts = crate::config::LoadOptions { vpp };
        match crate::config::load_str_with(src, Path::new("t.toml"), &opts) {
            Ok(l) => l,
            Err(e) => panic!("expected a valid config, got:\n{e}"),
        }
    }

    #[test]
    fn fail_policy_defaults_to_closed_and_takes_open() {
        let pools = [
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ];
        let base = frontend_doc(&pools);
        assert_eq!(load_ok(&base).frontends["web"].fail, FailPolicy::Closed);
        let with = |v: &str| {
            base.replace(
                "[[frontends.web.pools]]",
                &format!("fail = \"{v}\"\n[[frontends.web.pools]]"),
            )
        };
        assert_eq!(
            load_ok(&with("open")).frontends["web"].fail,
            FailPolicy::Open
        );
        assert_eq!(
            load_ok(&with("closed")).frontends["web"].fail,
            FailPolicy::Closed
        );
        let errs: Vec<String> = semantic(&with("ajar"))
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        assert_eq!(
            errs,
            ["frontends.web.fail: fail must be \"closed\" or \"open\", got \"ajar\""]
        );
    }

    #[test]
    fn missing_gre_source_is_a_warning_with_vpp_off() {
        let src = frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ])
        .replace("ipv4-src-address = \"192.0.2.254\"", "");
        let loaded = load_with(&src, false);
        assert_eq!(loaded.config.vpp.lb.ipv4_src_address, None);
        let got: Vec<String> = loaded.warnings.iter().map(Diagnostic::to_string).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:19:14: frontends.web.pools[0].backends.a: an IPv4 backend needs vpp.lb.ipv4-src-address (the GRE4 source), which is not set (a warning because VPP is off, --vpp-api-addr \"\"; an error once VPP is on)"
            ]
        );
        // A complete config has no warnings either way.
        let full = frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ]);
        assert!(load_with(&full, false).warnings.is_empty());
        assert!(load_with(&full, true).warnings.is_empty());
    }

    fn semantic(src: &str) -> Vec<Diagnostic> {
        match load_str(src, Path::new("t.toml")) {
            Err(ConfigError::Semantic(d)) => d,
            Err(e) => panic!("expected semantic errors, got another error:\n{e}"),
            Ok(_) => panic!("expected semantic errors, but the config loaded"),
        }
    }

    /// Asserts exactly one semantic error, at (line, column), for `key`, with `message`.
    fn one_error(src: &str, line: u32, column: u32, key: &str, message: &str) {
        let diags = semantic(src);
        assert_eq!(diags.len(), 1, "expected one error, got {diags:#?}");
        let d = &diags[0];
        assert_eq!(
            (d.line, d.column, d.key.as_str(), d.message.as_str()),
            (line, column, key, message),
            "full diagnostic: {d}"
        );
    }

    /// A valid frontend section on lines 1..=12 that tests extend or alter.
    fn frontend_doc(pools: &[&str]) -> String {
        let mut lines = vec![
            "[vpp.lb]",                            // 1
            "ipv4-src-address = \"192.0.2.254\"",  // 2
            "ipv6-src-address = \"2001:db8::fe\"", // 3
            "[healthchecks.h]",                    // 4
            "type = \"icmp\"",                     // 5
            "[backends.a]",                        // 6
            "address = \"192.0.2.10\"",            // 7
            "healthcheck = \"h\"",                 // 8
            "[backends.b]",                        // 9
            "address = \"192.0.2.11\"",            // 10
            "healthcheck = \"h\"",                 // 11
            "[backends.v6]",                       // 12
            "address = \"2001:db8::10\"",          // 13
            "healthcheck = \"h\"",                 // 14
            "[frontends.web]",                     // 15
            "address = \"198.51.100.1\"",          // 16
        ];
        lines.extend_from_slice(pools);
        doc(&lines)
    }

    // ---- defaults -----------------------------------------------------------------------

    #[test]
    fn defaults_are_applied() {
        let c = load_ok(&frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"primary\"",
            "backends = { a = {}, b = { weight = 7 } }",
        ]));
        assert_eq!(c.path, Path::new("t.toml"));
        assert_eq!(c.healthchecker.transition_history, 5);
        assert_eq!(c.healthchecker.netns, None);
        let lb = &c.vpp.lb;
        assert_eq!(lb.sync_interval, Duration::from_secs(30));
        assert_eq!(lb.sticky_buckets_per_core, 65536);
        assert_eq!(lb.flow_timeout, Duration::from_secs(40));
        assert_eq!(lb.startup_min_delay, Duration::from_secs(5));
        assert_eq!(lb.startup_max_delay, Duration::from_secs(30));
        assert_eq!(lb.ipv4_src_address, Some(Ipv4Addr::new(192, 0, 2, 254)));

        let h = &c.healthchecks["h"];
        assert_eq!(h.kind(), CheckType::Icmp);
        assert_eq!(h.port(), None);
        assert_eq!(h.interval, Duration::from_secs(2));
        assert_eq!(h.fast_interval, Duration::from_millis(500));
        assert_eq!(h.down_interval, Duration::from_secs(2));
        assert_eq!(h.timeout, Duration::from_secs(1));
        assert_eq!((h.rise, h.fall), (2, 3));
        assert_eq!(h.http(), None);

        assert!(c.backends["a"].enabled);
        let f = &c.frontends["web"];
        assert_eq!(f.description, "");
        assert_eq!(f.address.to_string(), "198.51.100.1/32");
        assert_eq!(f.protocol, Protocol::Tcp);
        assert_eq!(f.port, 0);
        assert!(!f.src_ip_sticky);
        assert!(f.flush_on_down);
        assert_eq!(
            f.pools[0].backends,
            vec![
                PoolMember {
                    backend: "a".into(),
                    weight: 100
                },
                PoolMember {
                    backend: "b".into(),
                    weight: 7
                },
            ]
        );
    }

    #[test]
    fn http_defaults_and_interval_derived_defaults() {
        let c = load_ok(&doc(&[
            "[healthchecks.h]",
            "type = \"https\"",
            "port = 443",
            "interval = \"10s\"",
            "[healthchecks.fast]",
            "type = \"tcp\"",
            "port = 22",
            "interval = \"400ms\"",
        ]));
        let h = &c.healthchecks["h"];
        assert_eq!(h.fast_interval, Duration::from_millis(2500));
        assert_eq!(h.down_interval, Duration::from_secs(10));
        let http = h.http().expect("https has params");
        let tls = h.tls().expect("https has tls");
        assert_eq!(http.path, "/");
        assert_eq!(http.expect_status, vec![StatusRange { lo: 200, hi: 399 }]);
        assert!(tls.verify);
        assert_eq!((&http.host, &tls.sni, &tls.ca_file), (&None, &None, &None));
        // With a short interval the *default* timeout shrinks to the interval.
        assert_eq!(c.healthchecks["fast"].timeout, Duration::from_millis(400));
    }

    #[test]
    fn explicit_values_are_kept() {
        let c = load_ok(&doc(&[
            "[healthchecker]",
            "transition-history = 12",
            "netns = \"dataplane\"",
            "[vpp.lb]",
            "sync-interval = \"1m30s\"",
            "sticky-buckets-per-core = 1024",
            "flow-timeout = \"120s\"",
            "startup-min-delay = \"1s\"",
            "startup-max-delay = \"1s\"",
            "[healthchecks.h]",
            "type = \"https\"",
            "port = 8443",
            "fast-interval = \"100ms\"",
            "down-interval = \"1m\"",
            "timeout = \"2s\"",
            "rise = 1",
            "fall = 5",
            "probe-ipv4-src = \"192.0.2.1\"",
            "probe-ipv6-src = \"2001:db8::1\"",
            "netns = \"other\"",
            "[healthchecks.h.params]",
            "path = \"/healthz\"",
            "host = \"www.example.com\"",
            "expect-status = [\"200\", \"301-302\"]",
            "regex = \"^ok$\"",
            "sni = \"sni.example.com\"",
            "verify = false",
            "ca-file = \"/etc/ca.pem\"",
        ]));
        assert_eq!(c.healthchecker.transition_history, 12);
        assert_eq!(c.healthchecker.netns.as_deref(), Some("dataplane"));
        assert_eq!(c.vpp.lb.sync_interval, Duration::from_secs(90));
        assert_eq!(c.vpp.lb.sticky_buckets_per_core, 1024);
        assert_eq!(c.vpp.lb.flow_timeout, Duration::from_secs(120));
        let h = &c.healthchecks["h"];
        assert_eq!(h.timeout, Duration::from_secs(2));
        assert_eq!((h.rise, h.fall), (1, 5));
        assert_eq!(c.netns_of(h).as_deref(), Some("other"));
        let http = h.http().expect("https has params");
        let tls = h.tls().expect("https has tls");
        assert_eq!(http.host.as_deref(), Some("www.example.com"));
        assert_eq!(
            http.expect_status,
            vec![
                StatusRange { lo: 200, hi: 200 },
                StatusRange { lo: 301, hi: 302 }
            ]
        );
        assert_eq!(http.expect_body, Some(BodyMatch::regex("^ok$").unwrap()));
        assert_eq!(tls.sni.as_deref(), Some("sni.example.com"));
        assert!(!tls.verify);
        assert_eq!(tls.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    }

    // ---- names and references -----------------------------------------------------------

    #[test]
    fn pool_names_unique_within_a_frontend() {
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]", // 17
                "name = \"p\"",            // 18
                "backends = { a = {} }",   // 19
                "[[frontends.web.pools]]", // 20
                "name = \"p\"",            // 21
                "backends = { b = {} }",   // 22
            ]),
            21,
            8,
            "frontends.web.pools[1].name",
            "duplicate pool name \"p\" (also frontends.web.pools[0])",
        );
    }

    #[test]
    fn unknown_backend_lists_known_names() {
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]",            // 17
                "name = \"p\"",                       // 18
                "backends = { a = {}, nginx0 = {} }", // 19
            ]),
            19,
            22,
            "frontends.web.pools[0].backends.nginx0",
            "unknown backend \"nginx0\" (known: a, b, v6)",
        );
    }

    #[test]
    fn unknown_healthcheck_lists_known_names() {
        one_error(
            &doc(&[
                "[healthchecks.ping]",
                "type = \"icmp\"",
                "[healthchecks.web]",
                "type = \"tcp\"",
                "port = 80",
                "[backends.x]",
                "address = \"192.0.2.1\"",
                "healthcheck = \"htp\"",
            ]),
            8,
            15,
            "backends.x.healthcheck",
            "unknown healthcheck \"htp\" (known: ping, web)",
        );
    }

    #[test]
    fn unknown_healthcheck_when_none_exist() {
        one_error(
            &doc(&[
                "[backends.x]",
                "address = \"192.0.2.1\"",
                "healthcheck = \"h\"",
            ]),
            3,
            15,
            "backends.x.healthcheck",
            "unknown healthcheck \"h\" (known: none)",
        );
    }

    #[test]
    fn two_frontends_on_one_vip_are_refused() {
        let mut src = frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ]);
        src.push_str("\n[frontends.www]\naddress = \"198.51.100.1/32\"\n[[frontends.www.pools]]\nname = \"p\"\nbackends = { b = {} }\n");
        one_error(
            &src,
            21,
            11,
            "frontends.www.address",
            "VIP 198.51.100.1/32 tcp port 0 is already used by frontend \"web\"",
        );
    }

    #[test]
    fn frontend_needs_a_pool() {
        one_error(
            &frontend_doc(&[]),
            15,
            12,
            "frontends.web",
            "frontend \"web\" has no pools (add at least one [[frontends.web.pools]] with backends)",
        );
        one_error(
            &frontend_doc(&["pools = []"]),
            17,
            9,
            "frontends.web",
            "frontend \"web\" has no pools (add at least one [[frontends.web.pools]] with backends)",
        );
    }

    #[test]
    fn pool_needs_backends() {
        one_error(
            &frontend_doc(&["[[frontends.web.pools]]", "name = \"p\"", "backends = {}"]),
            17,
            1,
            "frontends.web.pools[0]",
            "pool \"p\" has no backends",
        );
    }

    #[test]
    fn pool_needs_a_non_empty_name() {
        one_error(
            &frontend_doc(&["[[frontends.web.pools]]", "backends = { a = {} }"]),
            17,
            1,
            "frontends.web.pools[0]",
            "pool needs a name (name = \"primary\")",
        );
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]",
                "name = \"\"",
                "backends = { a = {} }",
            ]),
            18,
            8,
            "frontends.web.pools[0].name",
            "pool name must not be empty",
        );
    }

    #[test]
    fn item_names_must_not_be_empty() {
        one_error(
            &doc(&["[healthchecks.\"\"]", "type = \"icmp\""]),
            1,
            15,
            "healthchecks.\"\"",
            "healthcheck name must not be empty",
        );
    }

    #[test]
    fn key_paths_quote_names_that_are_not_bare_keys() {
        one_error(
            &doc(&["[healthchecks.\"a.b\"]", "type = \"icmp\"", "port = 1"]),
            3,
            8,
            "healthchecks.\"a.b\".port",
            "port is not used by icmp checks; remove it",
        );
    }

    #[test]
    fn a_backend_appears_once_per_frontend() {
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]", // 17
                "name = \"p\"",            // 18
                "backends = { a = {} }",   // 19
                "[[frontends.web.pools]]", // 20
                "name = \"q\"",            // 21
                "backends = { a = {} }",   // 22
            ]),
            22,
            14,
            "frontends.web.pools[1].backends.a",
            "backend \"a\" is already in pool \"p\" of this frontend (one VIP has one AS per address)",
        );
    }

    #[test]
    fn backend_addresses_unique_per_frontend() {
        let src = frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {}, b = {} }",
        ])
        .replace("address = \"192.0.2.11\"", "address = \"192.0.2.10\"");
        one_error(
            &src,
            19,
            22,
            "frontends.web.pools[0].backends.b",
            "backend \"b\" has the same address 192.0.2.10 as backend \"a\" in this frontend",
        );
    }

    // ---- weights and families -----------------------------------------------------------

    #[test]
    fn weights_are_0_to_100() {
        let ok = load_ok(&frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = { weight = 0 }, b = { weight = 100 } }",
        ]));
        assert_eq!(ok.frontends["web"].pools[0].backends[0].weight, 0);
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]",
                "name = \"p\"",
                "backends = { a = { weight = 101 } }",
            ]),
            19,
            29,
            "frontends.web.pools[0].backends.a.weight",
            "weight must be 0..100, got 101",
        );
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]",
                "name = \"p\"",
                "backends = { a = { weight = -1 } }",
            ]),
            19,
            29,
            "frontends.web.pools[0].backends.a.weight",
            "weight must be 0..100, got -1",
        );
    }

    #[test]
    fn backends_of_a_frontend_share_one_family() {
        one_error(
            &frontend_doc(&[
                "[[frontends.web.pools]]", // 17
                "name = \"p\"",            // 18
                "backends = { a = {} }",   // 19
                "[[frontends.web.pools]]", // 20
                "name = \"q\"",            // 21
                "backends = { v6 = {} }",  // 22
            ]),
            22,
            14,
            "frontends.web.pools[1].backends.v6",
            "backend \"v6\" is IPv6 (2001:db8::10) but backend \"a\" of this frontend is IPv4; all backends of a frontend must share one address family",
        );
    }

    #[test]
    fn vip_family_may_differ_from_backend_family() {
        let c = load_ok(
            &frontend_doc(&[
                "[[frontends.web.pools]]",
                "name = \"p\"",
                "backends = { v6 = {} }",
            ])
            .replace("address = \"198.51.100.1\"", "address = \"203.0.113.7\""),
        );
        assert!(c.frontends["web"].address.addr.is_ipv4());
        assert!(c.backends["v6"].address.is_ipv6());
    }

    #[test]
    fn gre_source_required_per_backend_family() {
        let pools = [
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ];
        one_error(
            &frontend_doc(&pools).replace("ipv4-src-address = \"192.0.2.254\"", ""),
            19,
            14,
            "frontends.web.pools[0].backends.a",
            "an IPv4 backend needs vpp.lb.ipv4-src-address (the GRE4 source), which is not set (an error because VPP is on; with --vpp-api-addr \"\" it is only a warning)",
        );
        // Only the IPv6 address is needed for a frontend with IPv6 backends.
        let v6_only = frontend_doc(&[
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { v6 = {} }",
        ])
        .replace("ipv4-src-address = \"192.0.2.254\"", "");
        load_ok(&v6_only);
        one_error(
            &v6_only.replace("ipv6-src-address = \"2001:db8::fe\"", ""),
            19,
            14,
            "frontends.web.pools[0].backends.v6",
            "an IPv6 backend needs vpp.lb.ipv6-src-address (the GRE6 source), which is not set (an error because VPP is on; with --vpp-api-addr \"\" it is only a warning)",
        );
    }

    #[test]
    fn source_addresses_have_the_right_family() {
        one_error(
            &doc(&["[vpp.lb]", "ipv4-src-address = \"2001:db8::1\""]),
            2,
            20,
            "vpp.lb.ipv4-src-address",
            "ipv4-src-address must be an IPv4 address, got IPv6 2001:db8::1",
        );
        one_error(
            &doc(&["[vpp.lb]", "ipv6-src-address = \"192.0.2.1\""]),
            2,
            20,
            "vpp.lb.ipv6-src-address",
            "ipv6-src-address must be an IPv6 address, got IPv4 192.0.2.1",
        );
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "probe-ipv4-src = \"::1\"",
            "probe-ipv6-src = \"127.0.0.1\"",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:3:18: healthchecks.h.probe-ipv4-src: probe-ipv4-src must be an IPv4 address, got IPv6 ::1",
                "t.toml:4:18: healthchecks.h.probe-ipv6-src: probe-ipv6-src must be an IPv6 address, got IPv4 127.0.0.1",
            ]
        );
        one_error(
            &doc(&["[vpp.lb]", "ipv4-src-address = \"not-an-ip\""]),
            2,
            20,
            "vpp.lb.ipv4-src-address",
            "invalid IP address \"not-an-ip\"",
        );
    }

    // ---- healthchecks -------------------------------------------------------------------

    #[test]
    fn healthcheck_type_is_known() {
        one_error(
            &doc(&["[healthchecks.h]", "type = \"udp\""]),
            2,
            8,
            "healthchecks.h.type",
            "unknown healthcheck type \"udp\" (expected icmp, tcp, tcp-syn, http or https)",
        );
    }

    #[test]
    fn port_required_for_tcp_like_checks() {
        for kind in ["tcp", "tcp-syn", "http", "https"] {
            one_error(
                &doc(&["[healthchecks.check]", &format!("type = \"{kind}\"")]),
                1,
                15,
                "healthchecks.check",
                &format!("a {kind} check needs a port (1..65535)"),
            );
        }
    }

    #[test]
    fn port_range_of_checks() {
        for bad in ["0", "65536", "-5"] {
            one_error(
                &doc(&[
                    "[healthchecks.h]",
                    "type = \"tcp\"",
                    &format!("port = {bad}"),
                ]),
                3,
                8,
                "healthchecks.h.port",
                &format!("port must be 1..65535, got {bad}"),
            );
        }
        let c = load_ok(&doc(&[
            "[healthchecks.h]",
            "type = \"tcp\"",
            "port = 65535",
        ]));
        assert_eq!(c.healthchecks["h"].port(), Some(65535));
    }

    #[test]
    fn icmp_must_not_have_a_port() {
        one_error(
            &doc(&["[healthchecks.h]", "type = \"icmp\"", "port = 80"]),
            3,
            8,
            "healthchecks.h.port",
            "port is not used by icmp checks; remove it",
        );
    }

    #[test]
    fn timeout_longer_than_interval_is_a_warning() {
        let src = doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "interval = \"2s\"",
            "timeout = \"2500ms\"",
        ]);
        let loaded = load_with(&src, true);
        assert_eq!(
            loaded.config.healthchecks["h"].timeout,
            Duration::from_millis(2500)
        );
        let got: Vec<String> = loaded.warnings.iter().map(Diagnostic::to_string).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:4:11: healthchecks.h.timeout: timeout (2500ms) is longer than interval (2s): accepted, but probes of a backend never overlap, so a probe that runs into the timeout delays the next one (each starts 2s after the previous one ended)"
            ]
        );
        // Equal is fine.
        load_ok(&doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "interval = \"2s\"",
            "timeout = \"2s\"",
        ]));
    }

    #[test]
    fn intervals_must_be_positive() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "interval = \"0s\"",
            "fast-interval = \"0ms\"",
            "down-interval = \"0\"",
            "timeout = \"0s\"",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:3:12: healthchecks.h.interval: interval must be greater than 0",
                "t.toml:4:17: healthchecks.h.fast-interval: fast-interval must be greater than 0",
                "t.toml:5:17: healthchecks.h.down-interval: down-interval must be greater than 0",
                "t.toml:6:11: healthchecks.h.timeout: timeout must be greater than 0",
            ]
        );
    }

    #[test]
    fn rise_and_fall_at_least_one() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "rise = 0",
            "fall = 1001",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:3:8: healthchecks.h.rise: rise must be 1..1000, got 0",
                "t.toml:4:8: healthchecks.h.fall: fall must be 1..1000, got 1001",
            ]
        );
    }

    #[test]
    fn bad_duration_text_is_a_semantic_error() {
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"icmp\"",
                "interval = \"2 seconds\"",
            ]),
            3,
            12,
            "healthchecks.h.interval",
            "unknown unit \" seconds\" in duration \"2 seconds\" (use ns, us, ms, s, m or h)",
        );
        one_error(
            &doc(&["[vpp.lb]", "sync-interval = \"30\""]),
            2,
            17,
            "vpp.lb.sync-interval",
            "missing unit in duration \"30\" (use ns, us, ms, s, m or h, e.g. \"30s\")",
        );
    }

    #[test]
    fn params_only_for_http_checks() {
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"tcp\"",
                "port = 22",
                "[healthchecks.h.params]",
                "path = \"/\"",
            ]),
            4,
            1,
            "healthchecks.h.params",
            "params are only used by http and https checks, not tcp",
        );
    }

    #[test]
    fn tls_params_only_for_https() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"http\"",
            "port = 80",
            "params = { sni = \"x\", verify = false, ca-file = \"/ca.pem\" }",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:4:18: healthchecks.h.params.sni: sni is only used by https checks (this is http)",
                "t.toml:4:32: healthchecks.h.params.verify: verify is only used by https checks (this is http)",
                "t.toml:4:49: healthchecks.h.params.ca-file: ca-file is only used by https checks (this is http)",
            ]
        );
    }

    #[test]
    fn http_path_starts_with_slash() {
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"http\"",
                "port = 80",
                "params = { path = \"healthz\" }",
            ]),
            4,
            19,
            "healthchecks.h.params.path",
            "path must start with \"/\", got \"healthz\"",
        );
    }

    #[test]
    fn expect_status_entries_are_checked() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"http\"",
            "port = 80",
            "params = { expect-status = [\"200\", \"99\", \"300-200\", \"600\"] }",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        let bad = |s: &str| {
            format!(
                "invalid status \"{s}\" (expected a code like \"200\" or a range like \"200-299\", within 100..599)"
            )
        };
        assert_eq!(
            got,
            vec![
                format!("t.toml:4:36: healthchecks.h.params.expect-status[1]: {}", bad("99")),
                "t.toml:4:42: healthchecks.h.params.expect-status[2]: invalid status range \"300-200\": 300 is greater than 200".to_string(),
                format!("t.toml:4:53: healthchecks.h.params.expect-status[3]: {}", bad("600")),
            ]
        );
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"http\"",
                "port = 80",
                "params = { expect-status = [] }",
            ]),
            4,
            28,
            "healthchecks.h.params.expect-status",
            "expect-status must list at least one code or range",
        );
    }

    #[test]
    fn status_range_parser() {
        assert_eq!(
            parse_status_range("200"),
            Ok(StatusRange { lo: 200, hi: 200 })
        );
        assert_eq!(
            parse_status_range("100-599"),
            Ok(StatusRange { lo: 100, hi: 599 })
        );
        assert_eq!(
            parse_status_range("204-204"),
            Ok(StatusRange { lo: 204, hi: 204 })
        );
        for bad in [
            "",
            "2xx",
            "20",
            "2000",
            "099",
            "600",
            "200-",
            "-200",
            "200-300-400",
            "+20",
        ] {
            assert!(
                parse_status_range(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(parse_status_range("399-300").is_err());
    }

    #[test]
    fn expect_body_and_regex_exclusive() {
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"http\"",
                "port = 80",
                "params = { expect-body = \"ok\", regex = \"o+k\" }",
            ]),
            4,
            40,
            "healthchecks.h.params.regex",
            "set either expect-body or regex, not both",
        );
        let c = load_ok(&doc(&[
            "[healthchecks.h]",
            "type = \"http\"",
            "port = 80",
            "params = { expect-body = \"ok\" }",
        ]));
        let http = c.healthchecks["h"].http().cloned().expect("http params");
        assert_eq!(http.expect_body, Some(BodyMatch::Substring("ok".into())));
    }

    #[test]
    fn regex_must_compile() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"http\"",
            "port = 80",
            "params = { regex = \"(ok\" }",
        ]));
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = &diags[0];
        assert_eq!(
            (d.line, d.column, d.key.as_str()),
            (4, 20, "healthchecks.h.params.regex")
        );
        assert!(d.message.starts_with("invalid regex: "), "{}", d.message);
        assert!(d.message.contains("unclosed group"), "{}", d.message);
        assert!(!d.message.contains('\n'), "one line: {}", d.message);
    }

    #[test]
    fn empty_host_is_rejected() {
        one_error(
            &doc(&[
                "[healthchecks.h]",
                "type = \"https\"",
                "port = 443",
                "params = { host = \"\" }",
            ]),
            4,
            19,
            "healthchecks.h.params.host",
            "host must not be empty (leave it out for the default)",
        );
    }

    // ---- healthchecker and vpp.lb -------------------------------------------------------

    #[test]
    fn transition_history_at_least_one() {
        one_error(
            &doc(&["[healthchecker]", "transition-history = 0"]),
            2,
            22,
            "healthchecker.transition-history",
            "transition-history must be within 1..=1000, got 0",
        );
        one_error(
            &doc(&["[healthchecker]", "transition-history = 1000000000000"]),
            2,
            22,
            "healthchecker.transition-history",
            "transition-history must be within 1..=1000, got 1000000000000",
        );
    }

    #[test]
    fn sticky_buckets_power_of_two() {
        for bad in ["1000", "0", "-4", "8589934592"] {
            one_error(
                &doc(&["[vpp.lb]", &format!("sticky-buckets-per-core = {bad}")]),
                2,
                27,
                "vpp.lb.sticky-buckets-per-core",
                &format!("sticky-buckets-per-core must be a power of two (e.g. 65536), got {bad}"),
            );
        }
    }

    #[test]
    fn flow_timeout_range_and_whole_seconds() {
        for bad in ["500ms", "121s", "0s"] {
            one_error(
                &doc(&["[vpp.lb]", &format!("flow-timeout = \"{bad}\"")]),
                2,
                16,
                "vpp.lb.flow-timeout",
                &format!("flow-timeout must be between 1s and 120s, got {bad}"),
            );
        }
        one_error(
            &doc(&["[vpp.lb]", "flow-timeout = \"1500ms\""]),
            2,
            16,
            "vpp.lb.flow-timeout",
            "flow-timeout must be whole seconds (VPP counts in seconds), got 1500ms",
        );
        let c = load_ok(&doc(&["[vpp.lb]", "flow-timeout = \"1s\""]));
        assert_eq!(c.vpp.lb.flow_timeout, Duration::from_secs(1));
    }

    #[test]
    fn startup_min_not_after_max() {
        one_error(
            &doc(&[
                "[vpp.lb]",
                "startup-min-delay = \"10s\"",
                "startup-max-delay = \"5s\"",
            ]),
            3,
            21,
            "vpp.lb.startup-max-delay",
            "startup-min-delay (10s) must not be longer than startup-max-delay (5s)",
        );
        // Against the default max (30s), the written min is the one to point at.
        one_error(
            &doc(&["[vpp.lb]", "startup-min-delay = \"1m\""]),
            2,
            21,
            "vpp.lb.startup-min-delay",
            "startup-min-delay (1m) must not be longer than startup-max-delay (30s)",
        );
    }

    // ---- backends and frontends ---------------------------------------------------------

    #[test]
    fn backend_address_is_a_usable_ip() {
        let diags = semantic(&doc(&[
            "[healthchecks.h]",
            "type = \"icmp\"",
            "[backends.a]",
            "address = \"192.0.2.300\"",
            "healthcheck = \"h\"",
            "[backends.b]",
            "address = \"0.0.0.0\"",
            "healthcheck = \"h\"",
        ]));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:4:11: backends.a.address: invalid IP address \"192.0.2.300\"",
                "t.toml:7:11: backends.b.address: 0.0.0.0 is not a usable backend address",
            ]
        );
    }

    #[test]
    fn frontend_protocol_is_known() {
        one_error(
            &frontend_doc(&[
                "protocol = \"sctp\"",
                "[[frontends.web.pools]]",
                "name = \"p\"",
                "backends = { a = {} }",
            ]),
            17,
            12,
            "frontends.web.protocol",
            "unknown protocol \"sctp\" (expected tcp, udp or any)",
        );
    }

    #[test]
    fn frontend_port_range_and_any_protocol() {
        let pools = [
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ];
        let with = |extra: &[&str]| {
            let mut lines: Vec<&str> = extra.to_vec();
            lines.extend_from_slice(&pools);
            frontend_doc(&lines)
        };
        one_error(
            &with(&["port = 65536"]),
            17,
            8,
            "frontends.web.port",
            "port must be 0..65535 (0 = all ports), got 65536",
        );
        one_error(
            &with(&["protocol = \"any\"", "port = 80"]),
            18,
            8,
            "frontends.web.port",
            "protocol \"any\" covers all ports: use port = 0, or protocol tcp or udp",
        );
        // Port 0 (all ports) goes with every protocol.
        for proto in ["tcp", "udp", "any"] {
            let c = load_ok(&with(&[&format!("protocol = \"{proto}\""), "port = 0"]));
            assert_eq!(c.frontends["web"].port, 0);
            assert_eq!(c.frontends["web"].protocol.as_str(), proto);
        }
    }

    #[test]
    fn frontend_address_ip_or_cidr() {
        let pools = [
            "[[frontends.web.pools]]",
            "name = \"p\"",
            "backends = { a = {} }",
        ];
        let with_addr = |a: &str| {
            frontend_doc(&pools)
                .replace("address = \"198.51.100.1\"", &format!("address = \"{a}\""))
        };
        assert_eq!(
            load_ok(&with_addr("2001:db8::1")).frontends["web"]
                .address
                .to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            load_ok(&with_addr("198.51.100.0/24")).frontends["web"]
                .address
                .to_string(),
            "198.51.100.0/24"
        );
        one_error(
            &with_addr("198.51.100.1/24"),
            16,
            11,
            "frontends.web.address",
            "\"198.51.100.1/24\" has host bits set (did you mean 198.51.100.0/24?)",
        );
        one_error(
            &with_addr("198.51.100.0/33"),
            16,
            11,
            "frontends.web.address",
            "invalid prefix length in \"198.51.100.0/33\" (expected 0..32)",
        );
        one_error(
            &with_addr("web.example.com"),
            16,
            11,
            "frontends.web.address",
            "invalid address \"web.example.com\" (expected an IP address or a CIDR such as 192.0.2.0/24)",
        );
    }

    #[test]
    fn all_errors_are_collected_in_file_order() {
        let diags = semantic(&doc(&[
            "[vpp.lb]",                            // 1
            "flow-timeout = \"5m\"",               // 2
            "[healthchecks.h]",                    // 3
            "type = \"tcp\"",                      // 4
            "rise = 0",                            // 5
            "[backends.a]",                        // 6
            "address = \"192.0.2.1\"",             // 7
            "healthcheck = \"nope\"",              // 8
            "[frontends.f]",                       // 9
            "address = \"192.0.2.100\"",           // 10
            "[[frontends.f.pools]]",               // 11
            "name = \"p\"",                        // 12
            "backends = { a = { weight = 200 } }", // 13
        ]));
        let got: Vec<(u32, u32, &str)> = diags
            .iter()
            .map(|d| (d.line, d.column, d.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 16, "vpp.lb.flow-timeout"),
                (3, 15, "healthchecks.h"),
                (5, 8, "healthchecks.h.rise"),
                (8, 15, "backends.a.healthcheck"),
                // No vpp.lb.ipv4-src-address for this IPv4 backend.
                (13, 14, "frontends.f.pools[0].backends.a"),
                (13, 29, "frontends.f.pools[0].backends.a.weight"),
            ]
        );
    }

    #[test]
    fn prefix_parser_and_key_segments() {
        assert_eq!(parse_prefix("10.0.0.0/8").map(|p| p.len), Ok(8));
        assert_eq!(parse_prefix("0.0.0.0/0").map(|p| p.len), Ok(0));
        assert_eq!(parse_prefix("::/0").map(|p| p.len), Ok(0));
        assert_eq!(parse_prefix("2001:db8::/32").map(|p| p.len), Ok(32));
        assert!(parse_prefix("2001:db8::1/32").is_err());
        assert!(parse_prefix("2001:db8::/129").is_err());
        assert_eq!(key_segment("nginx0-ams"), "nginx0-ams");
        assert_eq!(key_segment("a b"), "\"a b\"");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", "b.c"), "a.\"b.c\"");
    }
}
