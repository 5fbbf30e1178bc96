//! The TOML schema of docs/design.md §4 as serde structs: the raw, unvalidated form.
//!
//! Everything that a semantic rule may complain about is `Spanned`, so `validate` can point
//! at the exact key or value. Numbers are read as `i64` and strings are kept as text here;
//! ranges, enumerations, addresses and durations are checked in `validate`, which collects
//! every violation instead of stopping at the first. Only TOML syntax, wrong value types,
//! unknown keys and missing required keys fail at this stage.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

/// A table of named items; the key keeps its span so errors can point at the name.
pub type Named<T> = BTreeMap<Spanned<String>, Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub healthchecker: Option<Spanned<RawHealthChecker>>,
    pub vpp: Option<Spanned<RawVpp>>,
    #[serde(default)]
    pub healthchecks: Named<RawHealthCheck>,
    #[serde(default)]
    pub backends: Named<RawBackend>,
    #[serde(default)]
    pub frontends: Named<RawFrontend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHealthChecker {
    pub transition_history: Option<Spanned<i64>>,
    pub netns: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVpp {
    pub lb: Option<Spanned<RawVppLb>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVppLb {
    pub sync_interval: Option<Spanned<DurationText>>,
    pub ipv4_src_address: Option<Spanned<String>>,
    pub ipv6_src_address: Option<Spanned<String>>,
    pub sticky_buckets_per_core: Option<Spanned<i64>>,
    pub flow_timeout: Option<Spanned<DurationText>>,
    pub startup_min_delay: Option<Spanned<DurationText>>,
    pub startup_max_delay: Option<Spanned<DurationText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHealthCheck {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub interval: Option<Spanned<DurationText>>,
    pub fast_interval: Option<Spanned<DurationText>>,
    pub down_interval: Option<Spanned<DurationText>>,
    pub timeout: Option<Spanned<DurationText>>,
    pub rise: Option<Spanned<i64>>,
    pub fall: Option<Spanned<i64>>,
    pub probe_ipv4_src: Option<Spanned<String>>,
    pub probe_ipv6_src: Option<Spanned<String>>,
    pub netns: Option<Spanned<String>>,
    pub params: Option<Spanned<RawHttpParams>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHttpParams {
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub expect_status: Option<Spanned<Vec<Spanned<String>>>>,
    pub expect_body: Option<Spanned<String>>,
    pub regex: Option<Spanned<String>>,
    pub sni: Option<Spanned<String>>,
    pub verify: Option<Spanned<bool>>,
    pub ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBackend {
    pub address: Spanned<String>,
    pub healthcheck: Spanned<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFrontend {
    pub description: Option<String>,
    pub address: Spanned<String>,
    pub protocol: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub src_ip_sticky: Option<bool>,
    pub flush_on_down: Option<bool>,
    pub fail: Option<Spanned<String>>,
    pub pools: Option<Spanned<Vec<Spanned<RawPool>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPool {
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub backends: Named<RawPoolMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPoolMember {
    pub weight: Option<Spanned<i64>>,
}

/// The text of a duration ("2s"). Parsed in `validate` so a bad duration is a semantic
/// error collected with the others; only a non-string value fails here, with a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl Visitor<'_> for TextVisitor {
            type Value = DurationText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"2s\", \"500ms\" or \"1m30s\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DurationText(v.to_string()))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}
