//! Building blocks of the daemon-against-VPP scenarios: a small builder for the TOML config
//! (VPP on, loopback backends, frontends with pools) and what the VPP double holds, read
//! back as plain maps to compare with what a test expects.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use super::vpp_double::{VipView, VppDouble};

/// Timing of a healthcheck.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: &'static str,
    /// `fast-interval` and `down-interval`, when the test sets them.
    pub fast_down: Option<(&'static str, &'static str)>,
    pub timeout: &'static str,
    pub rise: u32,
    pub fall: u32,
}

impl Timing {
    /// Probes every 200 ms with a 150 ms timeout; one result decides (rise 1, fall 1).
    pub const QUICK: Timing = Timing {
        interval: "200ms",
        fast_down: None,
        timeout: "150ms",
        rise: 1,
        fall: 1,
    };

    /// `QUICK`, with a 100 ms fast interval and a 200 ms down interval.
    pub const QUICK_FAST: Timing = Timing {
        fast_down: Some(("100ms", "200ms")),
        ..Timing::QUICK
    };
}

/// A maglev config written section by section, in the order of the calls. `raw` adds lines
/// as they are, e.g. a key to the table opened just before.
#[derive(Debug, Default)]
pub struct ConfigText {
    text: String,
}

impl ConfigText {
    pub fn new() -> ConfigText {
        ConfigText::default()
    }

    /// `[healthchecker]` keeping `n` transitions per backend.
    pub fn transition_history(self, n: u32) -> ConfigText {
        self.raw(&format!("\n[healthchecker]\ntransition-history = {n}"))
    }

    /// `[vpp.lb]`: a full sync every `sync_interval`, IPv4 source 192.0.2.254, and the
    /// startup hold between `min` and `max`.
    pub fn vpp_lb(self, sync_interval: &str, min: &str, max: &str) -> ConfigText {
        self.raw(&format!(
            r#"
[vpp.lb]
sync-interval = "{sync_interval}"
ipv4-src-address = "192.0.2.254"
startup-min-delay = "{min}"
startup-max-delay = "{max}""#
        ))
    }

    /// `[healthchecks.<name>]` of type `kind` (`tcp`, `http`) on `port`.
    pub fn check(mut self, name: &str, kind: &str, port: u16, t: Timing) -> ConfigText {
        let _ = write!(
            self.text,
            "\n[healthchecks.{name}]\ntype = \"{kind}\"\nport = {port}\ninterval = \"{}\"\n",
            t.interval
        );
        if let Some((fast, down)) = t.fast_down {
            let _ = write!(
                self.text,
                "fast-interval = \"{fast}\"\ndown-interval = \"{down}\"\n"
            );
        }
        let _ = writeln!(
            self.text,
            "timeout = \"{}\"\nrise = {}\nfall = {}",
            t.timeout, t.rise, t.fall
        );
        self
    }

    /// `[backends.<name>]` at `address`, probed by the check `check`.
    pub fn backend(self, name: &str, address: &str, check: &str) -> ConfigText {
        self.raw(&format!(
            "[backends.{name}]\naddress = \"{address}\"\nhealthcheck = \"{check}\""
        ))
    }

    /// `[frontends.<name>]`; its keys beyond these go in with `raw`, its pools with `pool`.
    pub fn frontend(self, name: &str, address: &str, protocol: &str, port: u16) -> ConfigText {
        self.raw(&format!(
            "\n[frontends.{name}]\naddress = \"{address}\"\nprotocol = \"{protocol}\"\nport = {port}"
        ))
    }

    /// A pool of `frontend`; `backends` is the inline table's body, e.g. `a = {}, b = {}`.
    pub fn pool(self, frontend: &str, name: &str, backends: &str) -> ConfigText {
        self.raw(&format!(
            "  [[frontends.{frontend}.pools]]\n  name = \"{name}\"\n  backends = {{ {backends} }}"
        ))
    }

    /// `text` and a line break.
    pub fn raw(mut self, text: &str) -> ConfigText {
        self.text.push_str(text);
        self.text.push('\n');
        self
    }

    pub fn build(self) -> String {
        self.text
    }
}

/// Live ASes of a VIP (address, weight), sorted.
pub fn live_ases(v: &VipView) -> Vec<(IpAddr, u8)> {
    let mut ases: Vec<(IpAddr, u8)> = v
        .ases
        .iter()
        .filter(|a| a.used)
        .map(|a| (a.address, a.weight))
        .collect();
    ases.sort();
    ases
}

/// VIP (`prefix/len:port`) -> AS address -> weight.
pub type Table = BTreeMap<String, BTreeMap<IpAddr, u8>>;

/// The double's live VIPs and ASes. Panics on a duplicate VIP, or a duplicate AS inside one.
pub fn vpp_table(double: &VppDouble) -> Table {
    let mut t = Table::new();
    for v in double.vips().into_iter().filter(|v| v.used) {
        let key = format!("{}/{}:{}", v.prefix.addr, v.prefix.len, v.port);
        let mut ases = BTreeMap::new();
        for a in v.ases.iter().filter(|a| a.used) {
            assert!(
                ases.insert(a.address, a.weight).is_none(),
                "duplicate AS {} in {key}",
                a.address
            );
        }
        assert!(t.insert(key.clone(), ases).is_none(), "duplicate VIP {key}");
    }
    t
}
