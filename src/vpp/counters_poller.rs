//! Per-VIP counters from VPP's stats segment (docs/design.md §7, issue 7).
//!
//! Every `interval` (`--stats-interval`, 5 s by default) one pass:
//! the VIP pool indexes come from `show lb vips verbose` (one `cli_inband`, not the
//! reconciler's whole state read), each VIP's
//! `/net/route/to` index from `ip_route_lookup` (VIPs sharing a prefix share one FIB
//! entry, so their route counters are the same), then one [`StatsPoller::poll`]. The
//! result, named after the frontends, is published as an immutable [`LbCountersView`]
//! (an `Arc` swapped through a `watch` channel) holding the pass before it too, so that
//! a one-shot `show vpp lb counters` can show rates.
//!
//! The API socket and the stats socket are one unit:
//! - The API connection drops or reconnects (new epoch): the stats mapping is dropped,
//!   the published counters are cleared, and the next pass maps the segment afresh.
//! - A stats read fails, or the segment says VPP restarted, while the API looks
//!   connected: the counters are cleared (or their previous pass dropped) and VPP is
//!   pinged on the API. No answer, or another `vpe_pid`, means the API connection is
//!   stale: it is closed, so the supervisor reconnects it, and the stats follow. An
//!   answer from the same VPP means only the stats side is broken (wrong path, stats
//!   socket not enabled): the next pass retries the stats alone, with a warning on the
//!   first failure of a streak, so a stats problem never flaps a healthy API connection.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{info, warn};

use super::client::{Client, ConnState, Connection, VppError};
use super::counters::VppCounters;
use super::lb::{VipKey, desired_now};
use super::lb_io::{self, ReadStateError};
use super::messages::ip::STATS_INDEX_INVALID;
use super::stats::{LbCounterSnapshot, NO_ROUTE, PollOutcome, StatsPoller, VipCounters};
use super::wire::Prefix;
use crate::checker::Checker;

/// How often the counters are read unless `--stats-interval` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest `--stats-interval`: each pass costs VPP API calls.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// The longest `--stats-interval`: rates over longer spans say little.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// The FIB table of the VIP routes (the lb plugin adds them to the default VRF).
const VIP_TABLE: u32 = 0;

/// A `--stats-interval` that is not a duration from [`MIN_INTERVAL`] to [`MAX_INTERVAL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error(transparent)]
    Syntax(#[from] crate::config::duration::DurationError),
    #[error("{0:?} is outside 50ms..10m")]
    OutOfRange(Duration),
}

/// Parses `--stats-interval` ("5s", "200ms", "1m").
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let interval = crate::config::duration::parse_duration(text)?;
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        Ok(interval)
    } else {
        Err(IntervalError::OutOfRange(interval))
    }
}

/// One VIP's counters, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipCountersView {
    pub key: VipKey,
    /// The frontend of this VIP; `None` for a VIP maglev does not manage.
    pub frontend: Option<String>,
    pub pool_index: u32,
    /// `None` when the VIP's prefix has no FIB entry (route counters are then 0).
    pub route_stats_index: Option<u32>,
    pub counters: VipCounters,
}

/// One pass: when, VPP's uptime, and every VIP (in key order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersSample {
    pub at: SystemTime,
    pub uptime: Option<Duration>,
    pub vips: Vec<VipCountersView>,
}

/// What `GetVPPLBCounters` and `/metrics` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbCountersView {
    pub current: CountersSample,
    /// The pass before, from the same VPP run and mapping (for rates).
    pub previous: Option<CountersSample>,
}

/// Why there are no counters to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountersUnavailable {
    #[error("{}", super::VppDisabled)]
    VppDisabled,
    #[error("VPP stats are off (--vpp-stats-addr is empty)")]
    StatsDisabled,
    #[error("no counters yet (the first stats pass runs once VPP is connected)")]
    NotYet,
    #[error("no counters: {0}")]
    Failed(String),
}

/// What the poller publishes.
#[derive(Debug, Clone, Default)]
pub enum Published {
    /// Before the first pass, or after a disconnect.
    #[default]
    Pending,
    Ready(Arc<LbCountersView>),
    /// The last pass failed.
    Failed(String),
}

impl Published {
    pub fn view(&self) -> Result<Arc<LbCountersView>, CountersUnavailable> {
        match self {
            Published::Pending => Err(CountersUnavailable::NotYet),
            Published::Ready(v) => Ok(v.clone()),
            Published::Failed(e) => Err(CountersUnavailable::Failed(e.clone())),
        }
    }
}

/// A VIP to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipTarget {
    pub key: VipKey,
    pub pool_index: u32,
    pub frontend: Option<String>,
}

/// The VIPs of `pool_indexes` (from `show lb vips verbose`), named after the frontends
/// of `frontends` (VIP key -> frontend), in key order.
pub fn targets(
    pool_indexes: &BTreeMap<VipKey, u32>,
    frontends: &BTreeMap<VipKey, String>,
) -> Vec<VipTarget> {
    pool_indexes
        .iter()
        .map(|(key, index)| VipTarget {
            key: *key,
            pool_index: *index,
            frontend: frontends.get(key).cloned(),
        })
        .collect()
}

/// Names one stats read: `snapshot.vips[i]` belongs to `targets[i]` (the poll is made
/// in target order), checked by pool index.
pub fn sample(
    targets: &[VipTarget],
    routes: &[u32],
    snapshot: &LbCounterSnapshot,
) -> CountersSample {
    let vips = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let counters = snapshot
                .vips
                .get(i)
                .filter(|c| c.vip_index == t.pool_index)
                .or_else(|| snapshot.vips.iter().find(|c| c.vip_index == t.pool_index))
                .copied()
                .unwrap_or(VipCounters {
                    vip_index: t.pool_index,
                    ..VipCounters::default()
                });
            VipCountersView {
                key: t.key,
                frontend: t.frontend.clone(),
                pool_index: t.pool_index,
                route_stats_index: routes.get(i).copied().filter(|r| *r != NO_ROUTE),
                counters,
            }
        })
        .collect();
    CountersSample {
        at: snapshot.at,
        uptime: snapshot.uptime,
        vips,
    }
}

/// The view after a successful poll: the last pass is kept as `previous` unless the
/// segment was mapped anew or VPP restarted (its counters started again from zero).
pub fn next_view(
    last: Option<&LbCountersView>,
    outcome: &PollOutcome,
    current: CountersSample,
) -> LbCountersView {
    let continuous = !outcome.reconnected && !outcome.vpp_restarted;
    LbCountersView {
        current,
        previous: last.filter(|_| continuous).map(|l| l.current.clone()),
    }
}

/// After a stats failure (or a restart seen in the segment): `Some(reason)` when the
/// API connection must be closed and rebuilt, judged by a ping of it.
pub fn stale_api(expected_pid: u32, ping: &Result<u32, VppError>) -> Option<String> {
    match ping {
        Ok(pid) if *pid == expected_pid => None,
        Ok(pid) => Some(format!(
            "VPP restarted (pid {expected_pid} -> {pid}) under the API connection"
        )),
        Err(e) => Some(format!("VPP does not answer on the API: {e}")),
    }
}

/// What the poller task works on.
pub(crate) struct Inputs {
    pub conn: Arc<Connection>,
    pub checker: Checker,
    pub counters: Arc<VppCounters>,
    pub stats_path: PathBuf,
    pub interval: Duration,
    pub publish: watch::Sender<Published>,
}

/// Why one pass produced no counters.
enum PassError {
    /// The API connection went away mid-pass: the state change handles it.
    Disconnected,
    /// Reading the lb state or the routes failed on a live connection.
    Api(String),
    /// The stats segment could not be read.
    Stats(String),
}

pub(crate) struct CountersPoller {
    inputs: Inputs,
    poller: StatsPoller,
    last: Option<Arc<LbCountersView>>,
    /// The error of the current failure streak (warned once).
    failing: Option<String>,
    /// `ip_route_lookup` is missing from this VPP (warned once per connection).
    no_route_lookup: bool,
    routes: RouteCache,
}

/// The `ip_route_lookup` answers found for the VIPs of the last pass. A VIP's FIB entry
/// lives as long as the VIP, so they hold while the VIPs (keys and pool indexes) stay
/// the same; a reconnect or a failed pass drops them.
#[derive(Default)]
struct RouteCache {
    vips: Vec<(VipKey, u32)>,
    by_prefix: BTreeMap<Prefix, u32>,
}

impl CountersPoller {
    pub(crate) async fn run(inputs: Inputs) {
        let poller = StatsPoller::new(inputs.stats_path.clone());
        let mut me = CountersPoller {
            inputs,
            poller,
            last: None,
            failing: None,
            no_route_lookup: false,
            routes: RouteCache::default(),
        };
        me.main().await;
    }

    async fn main(&mut self) {
        let mut conn_rx = self.inputs.conn.state();
        let mut tick = tokio::time::interval(self.inputs.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut epoch = None;
        loop {
            let state = conn_rx.borrow_and_update().clone();
            match state {
                ConnState::Connected {
                    epoch: e, vpe_pid, ..
                } => {
                    if epoch.is_some_and(|old| old != e) {
                        info!("VPP API reconnected: the stats segment is mapped again");
                        self.reset();
                    }
                    epoch = Some(e);
                    if let Some(client) = self.inputs.conn.client() {
                        self.pass(&client, vpe_pid).await;
                    }
                }
                ConnState::Disconnected => {
                    if epoch.take().is_some() {
                        info!("VPP API disconnected: stats segment unmapped, counters cleared");
                        self.reset();
                    }
                }
            }
            tokio::select! {
                _ = tick.tick() => {}
                changed = conn_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Drops the mapping and the published counters.
    fn reset(&mut self) {
        self.poller.disconnect();
        self.last = None;
        self.failing = None;
        self.no_route_lookup = false;
        self.routes = RouteCache::default();
        self.inputs.publish.send_replace(Published::Pending);
    }

    async fn pass(&mut self, client: &Client, vpe_pid: u32) {
        let (error, stats_side) = match self.read(client).await {
            Ok((view, outcome)) => {
                if self.failing.take().is_some() {
                    info!("VPP counters readable again");
                }
                let view = Arc::new(view);
                self.last = Some(view.clone());
                self.inputs.publish.send_replace(Published::Ready(view));
                if outcome.vpp_restarted || outcome.restart_reason.is_some() {
                    info!(
                        reason = ?outcome.restart_reason,
                        "the stats segment belongs to a new VPP: checking the API connection"
                    );
                    self.check_api(client, vpe_pid).await;
                }
                return;
            }
            Err(PassError::Disconnected) => return,
            Err(PassError::Api(e)) => (e, false),
            Err(PassError::Stats(e)) => (
                format!("stats segment {}: {e}", self.poller.path().display()),
                true,
            ),
        };
        // Once per streak (and whenever the reason changes): no log flood every pass.
        if self.failing.as_deref() != Some(error.as_str()) {
            warn!(%error, "VPP counters unavailable, retrying every pass");
        }
        self.failing = Some(error.clone());
        self.last = None;
        self.routes = RouteCache::default();
        self.inputs.publish.send_replace(Published::Failed(error));
        if stats_side {
            self.check_api(client, vpe_pid).await;
        }
    }

    /// Closes the API connection if it no longer reaches the VPP it was opened to (the
    /// supervisor reconnects it; the new epoch remaps the stats).
    async fn check_api(&self, client: &Client, vpe_pid: u32) {
        let ping = client.control_ping().await;
        self.inputs.counters.api("control_ping", &ping);
        if let Some(reason) = stale_api(vpe_pid, &ping) {
            warn!(%reason, "closing the VPP API connection: API and stats reconnect together");
            client.close(reason);
        }
    }

    async fn read(&mut self, client: &Client) -> Result<(LbCountersView, PollOutcome), PassError> {
        let pool_indexes = lb_io::read_pool_indexes(client, &self.inputs.counters)
            .await
            .map_err(|e| match e {
                ReadStateError::Vpp(VppError::Disconnected(_)) => PassError::Disconnected,
                e => PassError::Api(e.to_string()),
            })?;
        let frontends: BTreeMap<VipKey, String> = self
            .inputs
            .checker
            .read(desired_now)
            .vips
            .into_iter()
            .map(|(k, v)| (k, v.frontend))
            .collect();
        let targets = targets(&pool_indexes, &frontends);
        let routes = self.routes(client, &targets).await?;
        let indexes: Vec<u32> = targets.iter().map(|t| t.pool_index).collect();
        let outcome = self
            .poller
            .poll(&indexes, &routes)
            .await
            .map_err(|e| PassError::Stats(e.to_string()))?;
        let current = sample(&targets, &routes, &outcome.snapshot);
        let view = next_view(self.last.as_deref(), &outcome, current);
        Ok((view, outcome))
    }

    /// The `/net/route/to` index of each target's prefix ([`NO_ROUTE`] if none), looked
    /// up only for prefixes not found before (see [`RouteCache`]).
    async fn routes(
        &mut self,
        client: &Client,
        targets: &[VipTarget],
    ) -> Result<Vec<u32>, PassError> {
        let vips: Vec<(VipKey, u32)> = targets.iter().map(|t| (t.key, t.pool_index)).collect();
        if self.routes.vips != vips {
            self.routes = RouteCache {
                vips,
                by_prefix: BTreeMap::new(),
            };
        }
        // Prefixes without a route are asked again next pass, once per pass.
        let mut missing = BTreeSet::new();
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            if self.no_route_lookup || missing.contains(&t.key.prefix) {
                out.push(NO_ROUTE);
                continue;
            }
            if let Some(r) = self.routes.by_prefix.get(&t.key.prefix) {
                out.push(*r);
                continue;
            }
            let found = client.ip_route_lookup(VIP_TABLE, t.key.prefix).await;
            self.inputs.counters.api("ip_route_lookup", &found);
            let index = match found {
                Ok(Some(route)) if route.stats_index != STATS_INDEX_INVALID => {
                    self.routes
                        .by_prefix
                        .insert(t.key.prefix, route.stats_index);
                    route.stats_index
                }
                Ok(_) => {
                    missing.insert(t.key.prefix);
                    NO_ROUTE
                }
                Err(VppError::Unsupported { .. }) => {
                    warn!("VPP has no ip_route_lookup: VIP route counters stay 0");
                    self.no_route_lookup = true;
                    NO_ROUTE
                }
                Err(VppError::Disconnected(_)) => return Err(PassError::Disconnected),
                Err(e) => return Err(PassError::Api(format!("ip_route_lookup: {e}"))),
            };
            out.push(index);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::wire::Prefix;

    fn key(addr: &str, port: u16) -> VipKey {
        VipKey::new(Prefix::new(addr.parse().unwrap(), 32), 6, port)
    }

    fn snapshot(at: u64, vips: &[(u32, u64)]) -> LbCounterSnapshot {
        LbCounterSnapshot {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            vips: vips
                .iter()
                .map(|(i, next)| VipCounters {
                    vip_index: *i,
                    next: *next,
                    first: next / 10,
                    route_packets: *next,
                    ..VipCounters::default()
                })
                .collect(),
            boottime: Some(1),
            uptime: Some(Duration::from_secs(at - 1)),
            heartbeat: None,
        }
    }

    fn outcome(reconnected: bool, vpp_restarted: bool) -> PollOutcome {
        PollOutcome {
            snapshot: snapshot(10, &[]),
            reconnected,
            vpp_restarted,
            restart_reason: None,
        }
    }

    #[test]
    fn interval_flag_values() {
        assert_eq!(parse_interval("5s"), Ok(DEFAULT_INTERVAL));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("10m"), Ok(MAX_INTERVAL));
        // Nonsense and extremes are refused, not replaced by the default.
        assert!(matches!(
            parse_interval("fast"),
            Err(IntervalError::Syntax(_))
        ));
        assert!(matches!(
            parse_interval("250"),
            Err(IntervalError::Syntax(_))
        ));
        assert_eq!(
            parse_interval("0"),
            Err(IntervalError::OutOfRange(Duration::ZERO))
        );
        assert_eq!(
            parse_interval("49ms"),
            Err(IntervalError::OutOfRange(Duration::from_millis(49)))
        );
        assert!(matches!(
            parse_interval("11m"),
            Err(IntervalError::OutOfRange(_))
        ));
    }

    #[test]
    fn targets_are_in_key_order_and_name_frontends() {
        let (a, b, c) = (
            key("192.0.2.1", 80),
            key("192.0.2.1", 443),
            key("192.0.2.9", 80),
        );
        let indexes = BTreeMap::from([(c, 1), (a, 2)]);
        let frontends = BTreeMap::from([(a, "web".to_string()), (b, "tls".to_string())]);
        let t = targets(&indexes, &frontends);
        assert_eq!(
            t,
            vec![
                VipTarget {
                    key: a,
                    pool_index: 2,
                    frontend: Some("web".into())
                },
                VipTarget {
                    key: c,
                    pool_index: 1,
                    frontend: None
                },
            ]
        );
    }

    #[test]
    fn sample_pairs_counters_by_pool_index_and_hides_no_route() {
        let t = vec![
            VipTarget {
                key: key("192.0.2.1", 80),
                pool_index: 2,
                frontend: Some("web".into()),
            },
            VipTarget {
                key: key("192.0.2.9", 80),
                pool_index: 1,
                frontend: None,
            },
        ];
        // Out of order on purpose: pairing is checked by index, not position alone.
        let s = sample(&t, &[7, NO_ROUTE], &snapshot(20, &[(1, 50), (2, 500)]));
        assert_eq!(s.at, SystemTime::UNIX_EPOCH + Duration::from_secs(20));
        assert_eq!(s.uptime, Some(Duration::from_secs(19)));
        assert_eq!(s.vips[0].frontend.as_deref(), Some("web"));
        assert_eq!(s.vips[0].counters.next, 500);
        assert_eq!(s.vips[0].counters.first, 50);
        assert_eq!(s.vips[0].route_stats_index, Some(7));
        assert_eq!(s.vips[1].counters.next, 50);
        assert_eq!(s.vips[1].route_stats_index, None);

        // A VIP missing from the read gets zeros under its own index.
        let s = sample(&t, &[], &snapshot(20, &[(2, 5)]));
        assert_eq!(s.vips[1].counters.vip_index, 1);
        assert_eq!(s.vips[1].counters.next, 0);
    }

    #[test]
    fn previous_kept_only_across_a_continuous_mapping() {
        let first = next_view(
            None,
            &outcome(true, false),
            sample(&[], &[], &snapshot(5, &[])),
        );
        assert_eq!(first.previous, None);
        let second = next_view(
            Some(&first),
            &outcome(false, false),
            sample(&[], &[], &snapshot(10, &[])),
        );
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        // Only one level is kept.
        let third = next_view(
            Some(&second),
            &outcome(false, false),
            sample(&[], &[], &snapshot(15, &[])),
        );
        assert_eq!(third.previous.as_ref(), Some(&second.current));
        for o in [outcome(true, false), outcome(false, true)] {
            let v = next_view(Some(&third), &o, sample(&[], &[], &snapshot(20, &[])));
            assert_eq!(v.previous, None);
        }
    }

    #[test]
    fn api_is_stale_when_the_ping_fails_or_the_pid_changed() {
        assert_eq!(stale_api(42, &Ok(42)), None);
        let moved = stale_api(42, &Ok(43)).unwrap_or_default();
        assert!(moved.contains("42 -> 43"), "{moved}");
        let dead = stale_api(42, &Err(VppError::Disconnected("eof".into())));
        assert!(dead.is_some_and(|r| r.contains("does not answer")));
    }

    #[test]
    fn published_states_map_to_reasons() {
        assert_eq!(
            Published::Pending.view().err(),
            Some(CountersUnavailable::NotYet)
        );
        assert_eq!(
            Published::Failed("x".into()).view().err(),
            Some(CountersUnavailable::Failed("x".into()))
        );
        let v = Arc::new(next_view(
            None,
            &outcome(true, false),
            sample(&[], &[], &snapshot(5, &[])),
        ));
        assert!(matches!(Published::Ready(v.clone()).view(), Ok(got) if got == v));
    }
}
