//! Counters of the VPP side, read by the metrics code: API calls by message, direction and
//! result (`maglev_vpp_api_total{msg,direction,result}`), sync runs by scope and outcome
//! and the writes of each sync by scope and operation (both
//! `maglev_vpp_lbsync_total{scope,kind}`, the latter with the Go tool's kind names).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::client::VppError;

/// The Go tool's `kind` of each write in `maglev_vpp_lbsync_total` (`set_conf` has none).
pub const LBSYNC_OP_KINDS: [(&str, &str); 5] = [
    ("add_vip", "vip_added"),
    ("del_vip", "vip_removed"),
    ("add_as", "as_added"),
    ("del_as", "as_removed"),
    ("set_weight", "as_weight_updated"),
];

/// The scopes of `maglev_vpp_lbsync_total`.
pub const LBSYNC_SCOPES: [&str; 2] = ["all", "vip"];

/// A consistent copy of every counter, sorted by labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// `(msg, result, count)`: msg is the VPP message name (`lb_as_set_weight`,
    /// `cli_inband`, ...), result is `ok` or `error`. One per request sent.
    pub api: Vec<(&'static str, &'static str, u64)>,
    /// `(msg, result, count)` of replies received: result `error` for a non-zero retval
    /// or an undecodable reply. Calls that timed out or lost the connection have none.
    pub api_replies: Vec<(&'static str, &'static str, u64)>,
    /// `(scope, kind, count)`: scope `all` or `vip`; kind `noop` (nothing to write),
    /// `applied`, `error` (a read or a write failed) or `dry_run`.
    pub lbsync: Vec<(&'static str, &'static str, u64)>,
    /// `(op, count)` of writes sent: `set_conf`, `add_vip`, `del_vip`, `add_as`,
    /// `set_weight`, `del_as`.
    pub writes: Vec<(&'static str, u64)>,
    /// `(scope, op, count)`: the writes above by the scope of the sync that sent them.
    pub scoped_writes: Vec<(&'static str, &'static str, u64)>,
}

#[derive(Default)]
struct Inner {
    api: BTreeMap<(&'static str, &'static str), u64>,
    api_replies: BTreeMap<(&'static str, &'static str), u64>,
    lbsync: BTreeMap<(&'static str, &'static str), u64>,
    writes: BTreeMap<&'static str, u64>,
    scoped_writes: BTreeMap<(&'static str, &'static str), u64>,
    /// Writes since the last `lbsync`: the reconciler reports a sync's outcome right
    /// after sending its writes, so that call names their scope.
    unscoped: Vec<&'static str>,
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

    /// One call: a request sent and, unless it timed out or the connection went, a reply
    /// received.
    pub fn api<T>(&self, msg: &'static str, result: &Result<T, VppError>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        let replied = !matches!(
            result,
            Err(VppError::Timeout { .. }
                | VppError::Disconnected(_)
                | VppError::Unsupported { .. }
                | VppError::Connect { .. })
        );
        self.with(|i| {
            *i.api.entry((msg, outcome)).or_default() += 1;
            if replied {
                *i.api_replies.entry((msg, outcome)).or_default() += 1;
            }
        });
    }

    pub fn lbsync(&self, scope: &'static str, kind: &'static str) {
        self.with(|i| {
            *i.lbsync.entry((scope, kind)).or_default() += 1;
            for op in std::mem::take(&mut i.unscoped) {
                *i.scoped_writes.entry((scope, op)).or_default() += 1;
            }
        });
    }

    pub fn write(&self, op: &'static str) {
        self.with(|i| {
            *i.writes.entry(op).or_default() += 1;
            i.unscoped.push(op);
        });
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        self.with(|i| CountersSnapshot {
            api: i.api.iter().map(|((m, r), n)| (*m, *r, *n)).collect(),
            api_replies: i
                .api_replies
                .iter()
                .map(|((m, r), n)| (*m, *r, *n))
                .collect(),
            lbsync: i.lbsync.iter().map(|((s, k), n)| (*s, *k, *n)).collect(),
            writes: i.writes.iter().map(|(o, n)| (*o, *n)).collect(),
            scoped_writes: i
                .scoped_writes
                .iter()
                .map(|((s, o), n)| (*s, *o, *n))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let c = VppCounters::default();
        let ok: Result<(), VppError> = Ok(());
        c.api("lb_vip_dump", &ok);
        c.api("lb_vip_dump", &ok);
        c.api::<()>(
            "lb_as_set_weight",
            &Err(VppError::Api {
                message: "lb_as_set_weight",
                code: super::super::client::ApiErrorCode(-1),
            }),
        );
        c.api::<()>(
            "lb_conf",
            &Err(VppError::Timeout {
                message: "lb_conf",
                after: std::time::Duration::from_secs(1),
            }),
        );
        c.write("set_weight");
        c.lbsync("vip", "applied");
        let s = c.snapshot();
        assert_eq!(
            s.api,
            vec![
                ("lb_as_set_weight", "error", 1),
                ("lb_conf", "error", 1),
                ("lb_vip_dump", "ok", 2)
            ]
        );
        // The timed-out call got no reply.
        assert_eq!(
            s.api_replies,
            vec![("lb_as_set_weight", "error", 1), ("lb_vip_dump", "ok", 2)]
        );
        assert_eq!(s.lbsync, vec![("vip", "applied", 1)]);
        assert_eq!(s.writes, vec![("set_weight", 1)]);
        assert_eq!(s.scoped_writes, vec![("vip", "set_weight", 1)]);
    }

    #[test]
    fn writes_take_the_scope_of_the_sync_that_reports_next() {
        let c = VppCounters::default();
        c.write("add_vip");
        c.write("add_as");
        c.write("add_as");
        c.lbsync("all", "applied");
        c.lbsync("vip", "noop");
        c.write("del_as");
        c.lbsync("vip", "error");
        assert_eq!(
            c.snapshot().scoped_writes,
            vec![
                ("all", "add_as", 2),
                ("all", "add_vip", 1),
                ("vip", "del_as", 1)
            ]
        );
    }
}
