//! `maglev config import`: the Go tool's YAML config turned into this project's TOML.
//!
//! The YAML is read with saphyr (positions on every node, duplicate keys refused, alias
//! expansion bounded), walked section by section, and written as TOML text. Unknown keys
//! are errors with line and column, as in TOML files. Keys whose Go spelling is not
//! certain (HTTP params) accept the plausible spellings; each one that is not the TOML key
//! itself is reported in `Imported::mapped`. The TOML is then validated by the caller
//! exactly as `--check` does.

mod run;
mod toml_out;
mod yaml;

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml};

use super::error::Diagnostic;
use toml_out::{Table, members, string, strings};
use yaml::{Field, Reader};

pub use run::main;

/// The result of a successful import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The TOML text.
    pub toml: String,
    /// "yaml.path -> toml-key" for each uncertain spelling that was mapped.
    pub mapped: Vec<String>,
}

/// Why a YAML file could not be imported: every problem found, located in the YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(Diagnostic::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ImportError(pub Vec<Diagnostic>);

const TOP: &[&str] = &[
    "healthchecker",
    "vpp",
    "healthchecks",
    "backends",
    "frontends",
];
const HEALTHCHECKER: &[&str] = &["transition-history", "netns"];
const LB: &[&str] = &[
    "sync-interval",
    "ipv4-src-address",
    "ipv6-src-address",
    "sticky-buckets-per-core",
    "flow-timeout",
    "startup-min-delay",
    "startup-max-delay",
];
const LB_DURATIONS: &[&str] = &[
    "sync-interval",
    "flow-timeout",
    "startup-min-delay",
    "startup-max-delay",
];
const HEALTHCHECK: &[&str] = &[
    "type",
    "port",
    "params",
    "interval",
    "fast-interval",
    "down-interval",
    "timeout",
    "rise",
    "fall",
    "probe-ipv4-src",
    "probe-ipv6-src",
    "netns",
];
const BACKEND: &[&str] = &["address", "healthcheck", "enabled"];
const FRONTEND: &[&str] = &[
    "description",
    "address",
    "protocol",
    "port",
    "src-ip-sticky",
    "flush-on-down",
    "pools",
];
const POOL: &[&str] = &["name", "backends"];

/// HTTP params whose Go spelling is uncertain: (TOML key, accepted spellings).
const PARAM_HOST: &[&str] = &["host", "host-header", "hostname", "header-host", "vhost"];
const PARAM_STATUS: &[&str] = &[
    "expect-status",
    "response-code",
    "response-codes",
    "expected-code",
    "expected-codes",
    "expected-status",
    "status-code",
    "status-codes",
    "status",
    "code",
    "codes",
];
const PARAM_REGEX: &[&str] = &[
    "regex",
    "regexp",
    "response-regexp",
    "response-regex",
    "body-regexp",
    "body-regex",
    "expect-regexp",
];
const PARAM_BODY: &[&str] = &["expect-body", "response-body", "body"];
const PARAM_SNI: &[&str] = &[
    "sni",
    "server-name",
    "servername",
    "tls-server-name",
    "tls-servername",
];
/// These mean the opposite of `verify`.
const PARAM_SKIP_VERIFY: &[&str] = &[
    "insecure-skip-verify",
    "skip-verify",
    "tls-skip-verify",
    "insecure",
];
const PARAM_VERIFY: &[&str] = &["verify", "tls-verify"];
const PARAM_CA: &[&str] = &["ca-file", "ca", "tls-ca-file"];

/// Converts the Go tool's YAML to TOML text. `file` is only used in messages.
pub fn import_str(src: &str, file: &Path) -> Result<Imported, ImportError> {
    let mut r = Reader::new(file);
    let docs = match MarkedYaml::load_from_str(src) {
        Ok(d) => d,
        Err(e) => {
            r.error(*e.marker(), "", format!("YAML syntax: {}", e.info()));
            return Err(ImportError(r.errors));
        }
    };
    let mut tables = Vec::new();
    match docs.as_slice() {
        [] => r.error(
            saphyr::Marker::new(0, 1, 0),
            "",
            "empty file (expected a top-level \"maglev:\" key)",
        ),
        [doc] => convert(&mut r, doc, &mut tables),
        [_, second, ..] => r.error(
            second.span.start,
            "",
            "more than one YAML document; the config is one document",
        ),
    }
    if !r.errors.is_empty() {
        let mut errors = r.errors;
        errors.sort_by_key(|d| (d.line, d.column));
        return Err(ImportError(errors));
    }
    let comment = format!(
        "Imported from {} by `maglev config import` (maglev {}).\nDurations are strings (\"500ms\", \"2s\", \"1m30s\"); unknown keys are errors.",
        file.display(),
        crate::version::VERSION
    );
    Ok(Imported {
        toml: toml_out::render(&comment, &tables),
        mapped: r.mapped,
    })
}

fn convert(r: &mut Reader<'_>, doc: &MarkedYaml<'_>, out: &mut Vec<Table>) {
    let Some(mut root) = r.fields(doc, "") else {
        return;
    };
    let Some(maglev) = r.require(&mut root, "maglev") else {
        return;
    };
    r.no_more(root, &["maglev"]);
    let Some(mut top) = r.fields(maglev.value, "maglev") else {
        return;
    };
    let healthchecker = r.take(&mut top, "healthchecker");
    let vpp = r.take(&mut top, "vpp");
    let healthchecks = r.take(&mut top, "healthchecks");
    let backends = r.take(&mut top, "backends");
    let frontends = r.take(&mut top, "frontends");
    r.no_more(top, TOP);

    if let Some(f) = healthchecker {
        section_healthchecker(r, &f, out);
    }
    if let Some(f) = vpp {
        section_vpp(r, &f, out);
    }
    for (name, f) in named(r, healthchecks.as_ref()) {
        healthcheck(r, &name, &f, out);
    }
    for (name, f) in named(r, backends.as_ref()) {
        backend(r, &name, &f, out);
    }
    for (name, f) in named(r, frontends.as_ref()) {
        frontend(r, &name, &f, out);
    }
}

fn named<'n, 'i>(r: &mut Reader<'_>, f: Option<&Field<'n, 'i>>) -> Vec<(String, Field<'n, 'i>)> {
    f.and_then(|f| r.fields(f.value, &f.path))
        .map(yaml::Fields::named)
        .unwrap_or_default()
}

fn section_healthchecker(r: &mut Reader<'_>, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["healthchecker"]);
    if let Some(v) = r.take(&mut fields, "transition-history")
        && let Some(n) = r.int(&v)
    {
        t.set("transition-history", n.to_string());
    }
    if let Some(v) = r.take(&mut fields, "netns")
        && let Some(s) = r.string(&v)
    {
        t.set("netns", string(&s));
    }
    r.no_more(fields, HEALTHCHECKER);
    out.push(t);
}

fn section_vpp(r: &mut Reader<'_>, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut vpp) = r.fields(f.value, &f.path) else {
        return;
    };
    let lb = r.take(&mut vpp, "lb");
    r.no_more(vpp, &["lb"]);
    let Some(lb) = lb else {
        return;
    };
    let Some(mut fields) = r.fields(lb.value, &lb.path) else {
        return;
    };
    let mut t = Table::new(&["vpp", "lb"]);
    for key in LB {
        let Some(v) = r.take(&mut fields, key) else {
            continue;
        };
        let value = if LB_DURATIONS.contains(key) {
            r.duration(&v).map(|d| string(&d))
        } else if *key == "sticky-buckets-per-core" {
            r.int(&v).map(|n| n.to_string())
        } else {
            r.text(&v).map(|s| string(&s))
        };
        if let Some(value) = value {
            t.set(key, value);
        }
    }
    r.no_more(fields, LB);
    out.push(t);
}

fn healthcheck(r: &mut Reader<'_>, name: &str, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["healthchecks", name]);
    if let Some(v) = r.require(&mut fields, "type")
        && let Some(s) = r.string(&v)
    {
        t.set("type", string(&s));
    }
    if let Some(v) = r.take(&mut fields, "port")
        && let Some(n) = r.int(&v)
    {
        t.set("port", n.to_string());
    }
    for key in ["interval", "fast-interval", "down-interval", "timeout"] {
        if let Some(v) = r.take(&mut fields, key)
            && let Some(d) = r.duration(&v)
        {
            t.set(key, string(&d));
        }
    }
    for key in ["rise", "fall"] {
        if let Some(v) = r.take(&mut fields, key)
            && let Some(n) = r.int(&v)
        {
            t.set(key, n.to_string());
        }
    }
    for key in ["probe-ipv4-src", "probe-ipv6-src", "netns"] {
        if let Some(v) = r.take(&mut fields, key)
            && let Some(s) = r.text(&v)
        {
            t.set(key, string(&s));
        }
    }
    let params = r.take(&mut fields, "params");
    r.no_more(fields, HEALTHCHECK);
    out.push(t);
    if let Some(p) = params {
        http_params(r, name, &p, out);
    }
}

fn http_params(r: &mut Reader<'_>, name: &str, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["healthchecks", name, "params"]).nested();
    if let Some(v) = r.take(&mut fields, "path")
        && let Some(s) = r.string(&v)
    {
        t.set("path", string(&s));
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_HOST, "host")
        && let Some(s) = r.string(&v)
    {
        t.set("host", string(&s));
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_STATUS, "expect-status")
        && let Some(codes) = status_codes(r, &v)
    {
        t.set("expect-status", strings(&codes));
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_BODY, "expect-body")
        && let Some(s) = r.string(&v)
    {
        t.set("expect-body", string(&s));
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_REGEX, "regex")
        && let Some(s) = r.string(&v)
    {
        t.set("regex", string(&s));
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_SNI, "sni")
        && let Some(s) = r.string(&v)
    {
        t.set("sni", string(&s));
    }
    let skip = r.take_any(&mut fields, PARAM_SKIP_VERIFY, "verify (inverted)");
    let verify = r.take_any(&mut fields, PARAM_VERIFY, "verify");
    match (skip, verify) {
        (Some(s), Some(v)) => r.error(
            v.at(),
            &v.path,
            format!("{} already sets verify; keep one", s.path),
        ),
        (Some(s), None) => {
            if let Some(b) = r.bool(&s) {
                t.set("verify", (!b).to_string());
            }
        }
        (None, Some(v)) => {
            if let Some(b) = r.bool(&v) {
                t.set("verify", b.to_string());
            }
        }
        (None, None) => {}
    }
    if let Some(v) = r.take_any(&mut fields, PARAM_CA, "ca-file")
        && let Some(s) = r.string(&v)
    {
        t.set("ca-file", string(&s));
    }
    let mut known = vec!["path"];
    for list in [
        PARAM_HOST,
        PARAM_STATUS,
        PARAM_BODY,
        PARAM_REGEX,
        PARAM_SNI,
        PARAM_SKIP_VERIFY,
        PARAM_VERIFY,
        PARAM_CA,
    ] {
        known.extend_from_slice(list);
    }
    r.no_more(fields, &known);
    out.push(t);
}

/// Expected codes: `200`, `"200-299"`, or a list of either.
fn status_codes(r: &mut Reader<'_>, f: &Field<'_, '_>) -> Option<Vec<String>> {
    let one = |r: &mut Reader<'_>, f: &Field<'_, '_>| match r.text(f) {
        Some(s) if !s.contains('.') => Some(s),
        Some(_) => {
            r.error(
                f.at(),
                &f.path,
                "expected a status code such as 200 or \"200-299\"",
            );
            None
        }
        None => None,
    };
    if matches!(f.value.data, saphyr::YamlData::Sequence(_)) {
        let items = r.sequence(f)?;
        let codes: Vec<String> = items.iter().filter_map(|i| one(r, i)).collect();
        (codes.len() == items.len()).then_some(codes)
    } else {
        one(r, f).map(|c| vec![c])
    }
}

fn backend(r: &mut Reader<'_>, name: &str, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["backends", name]);
    if let Some(v) = r.require(&mut fields, "address")
        && let Some(s) = r.text(&v)
    {
        t.set("address", string(&s));
    }
    if let Some(v) = r.require(&mut fields, "healthcheck")
        && let Some(s) = r.text(&v)
    {
        t.set("healthcheck", string(&s));
    }
    if let Some(v) = r.take(&mut fields, "enabled")
        && let Some(b) = r.bool(&v)
    {
        t.set("enabled", b.to_string());
    }
    r.no_more(fields, BACKEND);
    out.push(t);
}

fn frontend(r: &mut Reader<'_>, name: &str, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["frontends", name]);
    if let Some(v) = r.take(&mut fields, "description")
        && let Some(s) = r.text(&v)
    {
        t.set("description", string(&s));
    }
    if let Some(v) = r.require(&mut fields, "address")
        && let Some(s) = r.text(&v)
    {
        t.set("address", string(&s));
    }
    if let Some(v) = r.take(&mut fields, "protocol")
        && let Some(s) = r.string(&v)
    {
        t.set("protocol", string(&s));
    }
    if let Some(v) = r.take(&mut fields, "port")
        && let Some(n) = r.int(&v)
    {
        t.set("port", n.to_string());
    }
    for key in ["src-ip-sticky", "flush-on-down"] {
        if let Some(v) = r.take(&mut fields, key)
            && let Some(b) = r.bool(&v)
        {
            t.set(key, b.to_string());
        }
    }
    let pools = r.require(&mut fields, "pools");
    r.no_more(fields, FRONTEND);
    out.push(t);
    let Some(pools) = pools else {
        return;
    };
    for pool in r.sequence(&pools).unwrap_or_default() {
        pool_table(r, name, &pool, out);
    }
}

fn pool_table(r: &mut Reader<'_>, frontend: &str, f: &Field<'_, '_>, out: &mut Vec<Table>) {
    let Some(mut fields) = r.fields(f.value, &f.path) else {
        return;
    };
    let mut t = Table::new(&["frontends", frontend, "pools"])
        .array()
        .nested();
    if let Some(v) = r.require(&mut fields, "name")
        && let Some(s) = r.text(&v)
    {
        t.set("name", string(&s));
    }
    let backends = r.require(&mut fields, "backends");
    r.no_more(fields, POOL);
    let mut list = Vec::new();
    for (name, m) in named(r, backends.as_ref()) {
        let Some(mut mf) = r.fields(m.value, &m.path) else {
            continue;
        };
        let weight = r.take(&mut mf, "weight").and_then(|w| r.int(&w));
        r.no_more(mf, &["weight"]);
        list.push((name, weight));
    }
    t.set("backends", members(&list));
    out.push(t);
}

#[cfg(test)]
mod tests;
