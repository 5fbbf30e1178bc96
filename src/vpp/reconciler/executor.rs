//! The lb calls a sync makes, behind a trait: [`VppExecutor`] sends them to VPP through
//! `lb_io`; tests use an in-memory fake. [`apply_to_mirror`] is the one place where the
//! outcome of writes goes into the mirror.

use std::future::Future;

use super::mirror::Mirror;
use crate::vpp::client::Client;
use crate::vpp::counters::VppCounters;
use crate::vpp::lb::{ActualState, LbConfValues, LbOp, WeightMode};
use crate::vpp::lb_io::{self, Applied, ReadStateError};

/// Reads VPP's lb state and sends lb writes.
pub trait LbExecutor {
    /// VPP's whole lb state (`known_conf`: the conf to assume where VPP cannot tell).
    fn read(
        &self,
        known_conf: Option<LbConfValues>,
    ) -> impl Future<Output = Result<ActualState, ReadStateError>> + Send;

    /// Sends `ops` (each VIP's in order); starts no further VIP once `stop()` says so.
    fn apply(
        &self,
        ops: &[LbOp],
        mode: WeightMode,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> impl Future<Output = Applied> + Send;
}

/// The VPP binary API.
pub struct VppExecutor<'a> {
    pub client: &'a Client,
    pub counters: &'a VppCounters,
}

impl LbExecutor for VppExecutor<'_> {
    fn read(
        &self,
        known_conf: Option<LbConfValues>,
    ) -> impl Future<Output = Result<ActualState, ReadStateError>> + Send {
        lb_io::read_actual(self.client, self.counters, known_conf)
    }

    fn apply(
        &self,
        ops: &[LbOp],
        mode: WeightMode,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> impl Future<Output = Applied> + Send {
        lb_io::apply_all_until(
            self.client,
            self.counters,
            ops,
            mode,
            lb_io::WRITE_WINDOW,
            stop,
        )
    }
}

/// Puts what VPP applied into the mirror; a failed write (VPP may or may not have applied
/// it) makes the mirror stale. Skipped ops (`None`) change nothing.
pub fn apply_to_mirror(mirror: &mut Mirror, ops: &[LbOp], results: &Applied, mode: WeightMode) {
    for (op, result) in ops.iter().zip(results) {
        match result {
            Some(Ok(_)) => mirror.wrote(op, mode),
            Some(Err(_)) => mirror.mark_stale(),
            None => {}
        }
    }
}

#[cfg(test)]
pub mod fake {
    //! VPP as a map: applies ops like the mirror does, fails the writes to chosen
    //! addresses (`fail`), acknowledges without applying those to others (`swallow`, as
    //! lb 1.1.0's handlers may), counts reads and writes.

    use std::collections::HashSet;
    use std::net::IpAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::vpp::client::VppError;

    #[derive(Default)]
    pub struct FakeVpp {
        pub state: Mutex<ActualState>,
        pub fail: Mutex<HashSet<IpAddr>>,
        pub swallow: Mutex<HashSet<IpAddr>>,
        pub reads: AtomicUsize,
        /// Writes received (failed and swallowed ones included).
        pub writes: AtomicUsize,
    }

    fn address(op: &LbOp) -> Option<IpAddr> {
        match op {
            LbOp::AddAs { address, .. }
            | LbOp::SetWeight { address, .. }
            | LbOp::DelAs { address, .. } => Some(*address),
            _ => None,
        }
    }

    impl LbExecutor for FakeVpp {
        async fn read(
            &self,
            _known_conf: Option<LbConfValues>,
        ) -> Result<ActualState, ReadStateError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let mut state = self.state.lock().map(|s| s.clone()).unwrap_or_default();
            // VPP does not tell which ASes were flushed.
            for a in state.vips.values_mut().flat_map(|v| v.ases.values_mut()) {
                a.flushed = false;
            }
            Ok(state)
        }

        async fn apply(
            &self,
            ops: &[LbOp],
            mode: WeightMode,
            stop: &(dyn Fn() -> bool + Send + Sync),
        ) -> Applied {
            let fail = self.fail.lock().map(|f| f.clone()).unwrap_or_default();
            let swallow = self.swallow.lock().map(|f| f.clone()).unwrap_or_default();
            let Ok(mut state) = self.state.lock() else {
                return ops.iter().map(|_| None).collect();
            };
            ops.iter()
                .map(|op| {
                    if stop() {
                        return None;
                    }
                    self.writes.fetch_add(1, Ordering::Relaxed);
                    if address(op).is_some_and(|a| swallow.contains(&a)) {
                        return Some(Ok("fake"));
                    }
                    if address(op).is_some_and(|a| fail.contains(&a)) {
                        return Some(Err(VppError::Timeout {
                            message: "lb_as_set_weight",
                            after: std::time::Duration::from_secs(1),
                        }));
                    }
                    state.apply(op, mode);
                    Some(Ok("fake"))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeVpp;
    use super::*;
    use crate::vpp::lb::{DesiredAs, DesiredState, DesiredVip, Scope, VipKey, diff};
    use crate::vpp::wire::{EncapType, Prefix};

    fn key(last: u8) -> VipKey {
        VipKey::new(Prefix::new([192, 0, 2, last].into(), 32), 6, 80)
    }

    fn desired(weights: &[(u8, u8)]) -> DesiredState {
        let mut d = DesiredState {
            conf: LbConfValues {
                ip4_src_address: [192, 0, 2, 254].into(),
                ip6_src_address: std::net::Ipv6Addr::UNSPECIFIED,
                sticky_buckets_per_core: 1024,
                flow_timeout: 40,
            },
            vips: Default::default(),
            problems: vec![],
        };
        for (vip, w) in weights {
            let ases = [(
                std::net::IpAddr::from([10, 0, 0, *vip]),
                DesiredAs {
                    backend: format!("b{vip}"),
                    weight: *w,
                    flush: *w == 0,
                },
            )]
            .into();
            d.vips.insert(
                key(*vip),
                DesiredVip {
                    frontend: format!("f{vip}"),
                    key: key(*vip),
                    encap: EncapType::GRE4,
                    src_ip_sticky: false,
                    ases,
                    has_unknown: false,
                },
            );
        }
        d
    }

    /// A full sync (read, diff, write), then per-VIP syncs against the mirror.
    #[tokio::test]
    async fn per_vip_syncs_read_nothing_and_a_failed_write_makes_the_mirror_stale() {
        let vpp = FakeVpp::default();
        let mode = WeightMode::Weighted;
        let never = || false;
        let want = desired(&[(1, 100), (2, 100)]);
        let read = vpp.read(None).await.unwrap_or_default();
        let mut mirror = Mirror::read(read, 1, None);
        let ops = diff(&want, mirror.state(), Scope::All, mode).ops;
        let results = vpp.apply(&ops, mode, &never).await;
        apply_to_mirror(&mut mirror, &ops, &results, mode);
        assert_eq!(vpp.reads.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(mirror.usable(1));
        assert!(diff(&want, mirror.state(), Scope::All, mode).is_empty());

        // One AS changes: one write, from the mirror alone.
        let want = desired(&[(1, 0), (2, 100)]);
        let ops = diff(&want, mirror.state(), Scope::Vip(key(1)), mode).ops;
        assert_eq!(ops.len(), 1);
        let results = vpp.apply(&ops, mode, &never).await;
        apply_to_mirror(&mut mirror, &ops, &results, mode);
        assert_eq!(vpp.reads.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(mirror.usable(1));
        assert_eq!(
            vpp.state.lock().map(|s| s.clone()).ok().as_ref(),
            Some(mirror.state())
        );

        // A write that fails: the mirror is no longer trusted.
        if let Ok(mut f) = vpp.fail.lock() {
            f.insert([10, 0, 0, 2].into());
        }
        let want = desired(&[(1, 0), (2, 0)]);
        let ops = diff(&want, mirror.state(), Scope::Vip(key(2)), mode).ops;
        let results = vpp.apply(&ops, mode, &never).await;
        apply_to_mirror(&mut mirror, &ops, &results, mode);
        assert!(!mirror.usable(1));
    }

    #[tokio::test]
    async fn a_stop_leaves_the_rest_untouched() {
        let vpp = FakeVpp::default();
        let mode = WeightMode::Weighted;
        let want = desired(&[(1, 100)]);
        let ops = diff(&want, &ActualState::default(), Scope::All, mode).ops;
        let stopped = || true;
        let results = vpp.apply(&ops, mode, &stopped).await;
        assert!(results.iter().all(Option::is_none));
        let mut mirror = Mirror::read(ActualState::default(), 1, None);
        apply_to_mirror(&mut mirror, &ops, &results, mode);
        assert!(mirror.usable(1));
        assert!(mirror.state().vips.is_empty());
    }
}
