//! What a reload changes: which items were added, removed or changed, and which backends
//! must restart their probe worker (docs/design.md §5: health is kept only where the effective
//! probe definition is unchanged).

use std::collections::BTreeMap;

use super::model::{Config, HealthCheck};

/// The difference between two configs. Every list is sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub backends_added: Vec<String>,
    pub backends_removed: Vec<String>,
    /// Backends in both whose definition or effective probe changed in any way
    /// (a superset of `backends_restart`; e.g. an `enabled` flip lands only here).
    pub backends_changed: Vec<String>,
    /// Backends in both whose effective probe changed: address, healthcheck name, the
    /// referenced healthcheck's definition, or the effective network namespace. Their
    /// worker restarts and their state goes back to `unknown`.
    pub backends_restart: Vec<String>,
    pub healthchecks_added: Vec<String>,
    pub healthchecks_removed: Vec<String>,
    pub healthchecks_changed: Vec<String>,
    pub frontends_added: Vec<String>,
    pub frontends_removed: Vec<String>,
    pub frontends_changed: Vec<String>,
    /// `[healthchecker]` changed (transition history or the default netns).
    pub healthchecker_changed: bool,
    /// `[vpp.lb]` changed.
    pub vpp_lb_changed: bool,
}

impl ConfigDiff {
    /// True when the two configs are equivalent (the file path is not compared).
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

/// Compares an old and a new config.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let (backends_added, backends_removed, backends_changed) =
        compare(&old.backends, &new.backends, |name, _, _| {
            old.backends.get(name) != new.backends.get(name)
                || probe_of(old, name) != probe_of(new, name)
        });
    let backends_restart = old
        .backends
        .keys()
        .filter(|name| new.backends.contains_key(*name))
        .filter(|name| probe_of(old, name) != probe_of(new, name))
        .cloned()
        .collect();
    let (healthchecks_added, healthchecks_removed, healthchecks_changed) =
        compare(&old.healthchecks, &new.healthchecks, |_, a, b| a != b);
    let (frontends_added, frontends_removed, frontends_changed) =
        compare(&old.frontends, &new.frontends, |_, a, b| a != b);

    ConfigDiff {
        backends_added,
        backends_removed,
        backends_changed,
        backends_restart,
        healthchecks_added,
        healthchecks_removed,
        healthchecks_changed,
        frontends_added,
        frontends_removed,
        frontends_changed,
        healthchecker_changed: old.healthchecker != new.healthchecker,
        vpp_lb_changed: old.vpp.lb != new.vpp.lb,
    }
}

/// Everything that determines how a backend is probed.
#[derive(PartialEq)]
struct EffectiveProbe<'a> {
    address: std::net::IpAddr,
    healthcheck: Option<&'a HealthCheck>,
    netns: Option<String>,
}

fn probe_of<'a>(config: &'a Config, backend: &str) -> Option<EffectiveProbe<'a>> {
    let b = config.backends.get(backend)?;
    let healthcheck = config.healthchecks.get(&b.healthcheck);
    Some(EffectiveProbe {
        address: b.address,
        healthcheck,
        netns: healthcheck.and_then(|hc| config.netns_of(hc)),
    })
}

/// (added, removed, changed) names; BTreeMap iteration keeps each list sorted.
fn compare<T>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    changed: impl Fn(&str, &T, &T) -> bool,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .cloned()
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    let changed = old
        .iter()
        .filter_map(|(k, a)| {
            let b = new.get(k)?;
            changed(k, a, b).then(|| k.clone())
        })
        .collect();
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    const BASE: &str = r#"
[healthchecker]
netns = ""

[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.web]
type = "http"
port = 80

[healthchecks.ping]
type = "icmp"

[backends.a]
address = "192.0.2.10"
healthcheck = "web"

[backends.b]
address = "192.0.2.11"
healthcheck = "web"

[backends.c]
address = "192.0.2.12"
healthcheck = "ping"

[frontends.vip]
address = "198.51.100.1"
port = 80
  [[frontends.vip.pools]]
  name = "primary"
  backends = { a = {}, b = {}, c = {} }
"#;

    fn load(src: &str) -> Config {
        match load_str(src, Path::new("diff.toml")) {
            Ok(c) => c,
            Err(e) => panic!("test config must load:\n{e}"),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_configs_have_an_empty_diff() {
        let a = load(BASE);
        let mut b = load(BASE);
        b.path = "elsewhere.toml".into();
        let d = diff(&a, &b);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn enabled_flip_changes_but_does_not_restart() {
        let new = BASE.replacen(
            "healthcheck = \"web\"\n\n[backends.b]",
            "healthcheck = \"web\"\nenabled = false\n\n[backends.b]",
            1,
        );
        let d = diff(&load(BASE), &load(&new));
        assert_eq!(d.backends_changed, names(&["a"]));
        assert!(d.backends_restart.is_empty());
        assert!(d.healthchecks_changed.is_empty());
        assert!(d.frontends_changed.is_empty());
    }

    #[test]
    fn address_change_restarts() {
        let new = BASE.replace("192.0.2.11", "192.0.2.21");
        let d = diff(&load(BASE), &load(&new));
        assert_eq!(d.backends_changed, names(&["b"]));
        assert_eq!(d.backends_restart, names(&["b"]));
    }

    #[test]
    fn healthcheck_definition_change_restarts_every_user() {
        let new = BASE.replace(
            "port = 80\n\n[healthchecks.ping]",
            "port = 8080\n\n[healthchecks.ping]",
        );
        let d = diff(&load(BASE), &load(&new));
        assert_eq!(d.healthchecks_changed, names(&["web"]));
        assert_eq!(d.backends_restart, names(&["a", "b"]));
        assert_eq!(d.backends_changed, names(&["a", "b"]));
    }

    #[test]
    fn healthcheck_name_change_restarts_even_with_same_definition() {
        let new = BASE.replace(
            "[healthchecks.ping]\ntype = \"icmp\"",
            "[healthchecks.ping]\ntype = \"icmp\"\n\n[healthchecks.ping2]\ntype = \"icmp\"",
        );
        let new = new.replace(
            "address = \"192.0.2.12\"\nhealthcheck = \"ping\"",
            "address = \"192.0.2.12\"\nhealthcheck = \"ping2\"",
        );
        let d = diff(&load(BASE), &load(&new));
        assert_eq!(d.healthchecks_added, names(&["ping2"]));
        assert_eq!(d.backends_restart, names(&["c"]));
    }

    #[test]
    fn global_netns_change_restarts_every_backend() {
        let new = BASE.replace("netns = \"\"", "netns = \"probe\"");
        let d = diff(&load(BASE), &load(&new));
        assert!(d.healthchecker_changed);
        assert_eq!(d.backends_restart, names(&["a", "b", "c"]));
        assert!(d.healthchecks_changed.is_empty());
    }

    #[test]
    fn added_removed_and_frontend_changes_are_sorted() {
        let new = BASE
            .replace(
                "[backends.c]",
                "[backends.z]\naddress = \"192.0.2.30\"\nhealthcheck = \"ping\"\n\n[backends.d]\naddress = \"192.0.2.31\"\nhealthcheck = \"ping\"\n\n[backends.c]",
            )
            .replace("backends = { a = {}, b = {}, c = {} }", "backends = { a = {}, z = {}, d = { weight = 50 } }")
            .replace(
                "[backends.b]\naddress = \"192.0.2.11\"\nhealthcheck = \"web\"\n",
                "",
            )
            .replace(
                "[backends.c]\naddress = \"192.0.2.12\"\nhealthcheck = \"ping\"\n",
                "",
            )
            .replace("ipv4-src-address = \"192.0.2.254\"", "ipv4-src-address = \"192.0.2.253\"")
            + "\n[frontends.extra]\naddress = \"198.51.100.2\"\n  [[frontends.extra.pools]]\n  name = \"p\"\n  backends = { a = {} }\n";
        let d = diff(&load(BASE), &load(&new));
        assert_eq!(d.backends_added, names(&["d", "z"]));
        assert_eq!(d.backends_removed, names(&["b", "c"]));
        assert!(d.backends_changed.is_empty());
        assert_eq!(d.frontends_added, names(&["extra"]));
        assert_eq!(d.frontends_changed, names(&["vip"]));
        assert!(d.frontends_removed.is_empty());
        assert!(d.vpp_lb_changed);
        assert!(!d.healthchecker_changed);

        let back = diff(&load(&new), &load(BASE));
        assert_eq!(back.backends_added, names(&["b", "c"]));
        assert_eq!(back.backends_removed, names(&["d", "z"]));
        assert_eq!(back.frontends_removed, names(&["extra"]));
    }
}
