//! Counters of the VPP side, read by the metrics code: API calls by message and result
//! (`maglev_vpp_api_total{msg,result}`), sync runs by scope and outcome
//! (`maglev_vpp_lbsync_total{scope,kind}`), and writes by operation.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A consistent copy of every counter, sorted by labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// `(msg, result, count)`: msg is the VPP message name (`lb_as_set_weight`,
    /// `cli_inband`, ...), result is `ok` or `error`. Only messages actually sent.
    pub api: Vec<(&'static str, &'static str, u64)>,
    /// `(scope, kind, count)`: scope `all` or `vip`; kind `noop` (nothing to write),
    /// `applied`, `error` (a read or a write failed) or `dry_run`.
    pub lbsync: Vec<(&'static str, &'static str, u64)>,
    /// `(op, count)` of writes sent: `set_conf`, `add_vip`, `del_vip`, `add_as`,
    /// `set_weight`, `del_as`.
    pub writes: Vec<(&'static str, u64)>,
}

#[derive(Default)]
struct Inner {
    api: BTreeMap<(&'static str, &'static str), u64>,
    lbsync: BTreeMap<(&'static str, &'static str), u64>,
    writes: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct VppCounters {
    inner: Mutex<Inner>,
}

impl VppCounters {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn api(&self, msg: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.with(|i| *i.api.entry((msg, result)).or_default() += 1);
    }

    pub fn lbsync(&self, scope: &'static str, kind: &'static str) {
        self.with(|i| *i.lbsync.entry((scope, kind)).or_default() += 1);
    }

    pub fn write(&self, op: &'static str) {
        self.with(|i| *i.writes.entry(op).or_default() += 1);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        self.with(|i| CountersSnapshot {
            api: i.api.iter().map(|((m, r), n)| (*m, *r, *n)).collect(),
            lbsync: i.lbsync.iter().map(|((s, k), n)| (*s, *k, *n)).collect(),
            writes: i.writes.iter().map(|(o, n)| (*o, *n)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let c = VppCounters::default();
        c.api("lb_vip_dump", true);
        c.api("lb_vip_dump", true);
        c.api("lb_as_set_weight", false);
        c.lbsync("vip", "applied");
        c.write("set_weight");
        let s = c.snapshot();
        assert_eq!(
            s.api,
            vec![("lb_as_set_weight", "error", 1), ("lb_vip_dump", "ok", 2)]
        );
        assert_eq!(s.lbsync, vec![("vip", "applied", 1)]);
        assert_eq!(s.writes, vec![("set_weight", 1)]);
    }
}
