//! The checker's state: one entry per backend, runtime weight overrides, and the last
//! published state of every frontend. All mutation happens under the checker's write lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::backends::Backends;
use super::counts::Counts;
use super::deadlines::Deadlines;
use super::snapshot::{Changes, HealthSnapshot, Publisher};
use super::stats::{SharedStats, TransitionCounts};
use super::task::{self, Due, FirstProbe};
use super::view::pool_inputs;
use super::{CheckerError, Inner};
use crate::config::{self, Config, ConfigDiff, HealthCheck};
use crate::events::{BackendEvent, Event, FrontendEvent};
use crate::health::{
    BackendHealth, FrontendState, IntervalPolicy, Transition, XorShift64, validate_weight,
};
use crate::probe::ProbeSpec;

/// (frontend, pool, backend) of a runtime weight override.
pub type OverrideKey = (String, String, String);

/// One backend as the checker runs it. What a snapshot of it copies is either small and
/// inline or shared by `Arc` (config, health check, history, transition counts), so a
/// probe result's snapshot costs one allocation, not a deep copy.
pub struct BackendEntry {
    /// The backend's name, shared with its worker and the change set (no copy per probe).
    pub(crate) name: Arc<str>,
    pub config: Arc<config::Backend>,
    /// One `Arc` per health check, shared by every backend that uses it.
    pub healthcheck: Arc<HealthCheck>,
    /// Shared with the worker: a probe takes a reference count, not a copy.
    pub spec: Arc<ProbeSpec>,
    pub policy: IntervalPolicy,
    pub health: BackendHealth,
    /// Probe counters, last probe timing and next delay: live, shared with the snapshots.
    pub stats: SharedStats,
    /// Transitions published so far, per (from, to): `maglev_backend_transitions_total`.
    pub transitions: TransitionCounts,
    /// Bumped when the backend's probing restarts: queue entries and results of an older
    /// generation are dropped.
    pub(crate) generation: u64,
    /// The jitter source of this generation (seeded from name and generation).
    pub(crate) jitter: XorShift64,
    /// `seq` of the live entry in the deadline queue (0: none queued).
    pub(crate) due: u64,
    /// A probe is running; `wake_pending`: probe again as soon as it is recorded.
    pub(crate) in_flight: bool,
    pub(crate) wake_pending: bool,
}

pub struct CheckerState {
    pub config: Arc<Config>,
    pub backends: Backends,
    pub overrides: BTreeMap<OverrideKey, u8>,
    /// Last published state per frontend.
    pub frontend_states: BTreeMap<String, FrontendState>,
    /// What decides each frontend's state, kept up to date per transition.
    counts: Counts,
    next_generation: u64,
    /// What changed since the last snapshot was published.
    pub(crate) changes: Changes,
    /// Builds the snapshots, sharing unchanged entries with the last one.
    publisher: Publisher,
    /// When each backend probes next (see `task::drive`); stale entries are skipped.
    pub(crate) queue: Deadlines,
    next_seq: u64,
    /// Events and dirty frontends of the current batch: sent only once the snapshot that
    /// shows them is published, so that whoever reacts to them reads the new state.
    outbox: Vec<Event>,
    dirty_out: Vec<String>,
}

impl CheckerState {
    pub(crate) fn new(config: Arc<Config>, now: SystemTime) -> Self {
        let mut st = CheckerState {
            config: config.clone(),
            backends: Backends::default(),
            overrides: BTreeMap::new(),
            frontend_states: BTreeMap::new(),
            counts: Counts::default(),
            next_generation: 1,
            changes: Changes {
                all: true,
                ..Changes::default()
            },
            publisher: Publisher::default(),
            queue: Deadlines::default(),
            next_seq: 1,
            outbox: Vec::new(),
            dirty_out: Vec::new(),
        };
        let hcs = shared_healthchecks(&config);
        // Collected from name order: the map is bulk-built with full nodes (inserting one
        // by one leaves them about half empty).
        let entries: Vec<(String, BackendEntry)> = config
            .backends
            .keys()
            .filter_map(|name| Some((name.clone(), st.new_entry(&config, &hcs, name, now)?)))
            .collect();
        st.backends = entries.into_iter().collect();
        st.recount_all();
        st
    }

    /// Rebuilds every frontend's counts (start, reload): O(config).
    fn recount_all(&mut self) {
        let config = Arc::clone(&self.config);
        let inputs = config
            .frontends
            .keys()
            .filter_map(|name| Some((name.as_str(), pool_inputs(self, name)?)));
        let counts = Counts::build(&config, inputs.collect::<Vec<_>>().into_iter());
        self.counts = counts;
    }

    /// A frontend's state from the counts (no walk over its pools).
    fn frontend_state(&self, name: &str) -> Option<FrontendState> {
        self.counts.state(name)
    }

    fn new_entry(
        &mut self,
        config: &Config,
        hcs: &BTreeMap<&str, Arc<HealthCheck>>,
        name: &str,
        now: SystemTime,
    ) -> Option<BackendEntry> {
        let backend = config.backends.get(name)?;
        let hc = hcs.get(backend.healthcheck.as_str())?;
        let generation = self.bump_generation();
        Some(BackendEntry {
            name: Arc::from(name),
            config: Arc::new(backend.clone()),
            healthcheck: Arc::clone(hc),
            spec: Arc::new(ProbeSpec::from_config(
                hc,
                backend.address,
                config.netns_of(hc),
            )),
            policy: policy_of(hc),
            health: BackendHealth::new(
                hc.rise,
                hc.fall,
                config.healthchecker.transition_history,
                backend.enabled,
                now,
            ),
            stats: SharedStats::with_next_delay(hc.interval),
            transitions: TransitionCounts::default(),
            generation,
            jitter: XorShift64::new(1),
            due: 0,
            in_flight: false,
            wake_pending: false,
        })
    }

    /// Queues the next probe of `name` at `when`; an entry queued before is skipped.
    pub(crate) fn schedule(&mut self, name: &str, when: Instant) {
        let Some(id) = self.backends.id_of(name) else {
            return;
        };
        let Some(generation) = self.backends.get(name).map(|e| e.generation) else {
            return;
        };
        self.schedule_slot(id, generation, when);
    }

    /// [`Self::schedule`] by slot id (the probe path: no name lookup).
    pub(crate) fn schedule_slot(&mut self, id: u32, generation: u64, when: Instant) {
        let seq = self.next_seq;
        let Some(e) = self.backends.live_mut(id, generation) else {
            return;
        };
        self.next_seq += 1;
        e.due = seq;
        self.queue.push(Due {
            when,
            seq,
            slot: id,
            generation,
        });
    }

    fn mark_dirty(&mut self, frontends: impl IntoIterator<Item = String>) {
        self.dirty_out.extend(frontends);
    }

    /// Whether anything was marked, queued or dirtied since the last publish.
    pub(crate) fn has_news(&self) -> bool {
        !self.changes.is_empty() || !self.outbox.is_empty() || !self.dirty_out.is_empty()
    }

    /// Publishes the snapshot of what changed since the last one, then sends the batch's
    /// events and dirty marks. Called with the write lock held, so publishes are ordered.
    pub(crate) fn publish(&mut self, inner: &Inner) {
        let snapshot = self.build_snapshot();
        inner.snapshot.send_replace(Arc::new(snapshot));
        for event in self.outbox.drain(..) {
            inner.bus.publish(event);
        }
        if !self.dirty_out.is_empty() {
            inner.dirty.mark(self.dirty_out.iter().map(String::as_str));
            self.dirty_out.clear();
        }
    }

    /// The next snapshot, of the changes since the last one (the start publishes the
    /// first before there is anyone to send it to).
    pub(crate) fn build_snapshot(&mut self) -> HealthSnapshot {
        let mut changes = std::mem::take(&mut self.changes);
        // A backend marked twice in the batch (a result and its transition) is rebuilt once.
        changes.backends.sort_unstable();
        changes.backends.dedup();
        let mut publisher = std::mem::take(&mut self.publisher);
        let snapshot = publisher.next(self, &changes);
        self.publisher = publisher;
        // Emptied, not dropped: the sets keep their capacity for the next batch.
        changes.clear();
        self.changes = changes;
        snapshot
    }

    /// A snapshot built from scratch (for tests that set the state up by hand).
    #[cfg(test)]
    pub(crate) fn full_snapshot(&self) -> HealthSnapshot {
        let changes = Changes {
            all: true,
            ..Changes::default()
        };
        Publisher::default().next(self, &changes)
    }

    pub(crate) fn bump_generation(&mut self) -> u64 {
        let g = self.next_generation;
        self.next_generation += 1;
        g
    }

    pub(crate) fn backend_mut(&mut self, name: &str) -> Result<&mut BackendEntry, CheckerError> {
        // The config's backends are the entries' names (every backend of a validated config
        // has one); naming them keeps this a single lookup.
        match self.backends.get_mut(name) {
            Some(entry) => Ok(entry),
            None => Err(not_found("backend", name, self.config.backends.keys())),
        }
    }

    /// Publishes a backend transition (once per referencing frontend), logs it, and
    /// re-evaluates those frontends.
    pub(crate) fn publish_transition(&mut self, backend: &str, t: Transition) {
        let frontends = self.counts.frontends_of(backend).to_vec();
        self.publish_transition_to(backend, t, &frontends);
    }

    fn publish_transition_to(&mut self, backend: &str, t: Transition, frontends: &[String]) {
        self.counts.transition(backend, t.from, t.to);
        self.changes.frontends.extend(frontends.iter().cloned());
        let Some(id) = self.backends.id_of(backend) else {
            return;
        };
        let address = match self.backends.get_mut(backend) {
            Some(e) => {
                e.transitions.count(t.from, t.to);
                e.config.address
            }
            None => return,
        };
        self.changes.backend(id);
        let (code, detail) = t
            .result
            .as_ref()
            .map(|r| (r.code.as_str(), r.detail.as_str()))
            .unwrap_or(("", ""));
        tracing::info!(
            backend,
            address = %address,
            frontends = %frontends.join(","),
            from = t.from.as_str(),
            to = t.to.as_str(),
            reason = t.reason.as_str(),
            code,
            detail,
            "backend {backend} {} -> {}",
            t.from,
            t.to
        );
        if frontends.is_empty() {
            self.outbox.push(Event::Backend(BackendEvent {
                backend: backend.to_string(),
                frontend: None,
                address,
                transition: t,
            }));
        } else {
            for f in frontends {
                self.outbox.push(Event::Backend(BackendEvent {
                    backend: backend.to_string(),
                    frontend: Some(f.clone()),
                    address,
                    transition: t.clone(),
                }));
            }
            self.mark_dirty(frontends.iter().cloned());
            self.recompute_some(frontends, t.at);
        }
    }

    fn recompute_some(&mut self, frontends: &[String], at: SystemTime) {
        for name in frontends {
            let Some(new) = self.frontend_state(name) else {
                continue;
            };
            let old = self.frontend_states.insert(name.clone(), new);
            if let Some(old) = old
                && old != new
            {
                tracing::info!(frontend = %name, from = old.as_str(), to = new.as_str(),
                    "frontend {name} {old} -> {new}");
                self.mark_dirty([name.clone()]);
                self.outbox.push(Event::Frontend(FrontendEvent {
                    frontend: name.clone(),
                    from: old,
                    to: new,
                    at,
                }));
            }
        }
    }

    /// Re-evaluates every frontend; `initial` records states without publishing.
    pub(crate) fn recompute_frontends(&mut self, initial: bool) {
        let names: Vec<String> = self.config.frontends.keys().cloned().collect();
        let frontends = &self.config.frontends;
        self.frontend_states
            .retain(|k, _| frontends.contains_key(k));
        if initial {
            for name in &names {
                if let Some(state) = self.frontend_state(name) {
                    self.frontend_states.insert(name.clone(), state);
                }
            }
        } else {
            self.recompute_some(&names, SystemTime::now());
        }
    }

    pub(crate) fn set_weight(
        &mut self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u32,
    ) -> Result<(), CheckerError> {
        let f = self
            .config
            .frontends
            .get(frontend)
            .ok_or_else(|| not_found("frontend", frontend, self.config.frontends.keys()))?;
        let p = f
            .pools
            .iter()
            .find(|p| p.name == pool)
            .ok_or_else(|| not_found("pool", pool, f.pools.iter().map(|p| &p.name)))?;
        if !p.backends.iter().any(|m| m.backend == backend) {
            return Err(not_found(
                "backend in pool",
                backend,
                p.backends.iter().map(|m| &m.backend),
            ));
        }
        let weight =
            validate_weight(weight).map_err(|e| CheckerError::InvalidArgument(e.to_string()))?;
        let key = (frontend.to_string(), pool.to_string(), backend.to_string());
        let old = self.overrides.insert(key, weight);
        self.changes.frontends.insert(frontend.to_string());
        self.changes.overrides = true;
        if let Some(inputs) = pool_inputs(self, frontend) {
            self.counts.recount(frontend, &inputs);
        }
        tracing::info!(frontend, pool, backend, weight, previous = ?old,
            "weight of {backend} in {frontend}/{pool} set to {weight}");
        let at = SystemTime::now();
        self.mark_dirty([frontend.to_string()]);
        let before = self.frontend_states.get(frontend).copied();
        self.recompute_some(&[frontend.to_string()], at);
        // Watchers see a frontend event for every weight change, also one that leaves the
        // frontend state as it was.
        let after = self.frontend_states.get(frontend).copied();
        if before == after
            && let Some(state) = after
        {
            self.outbox.push(Event::Frontend(FrontendEvent {
                frontend: frontend.to_string(),
                from: state,
                to: state,
                at,
            }));
        }
        Ok(())
    }

    /// Reload (see `Checker::reload`).
    pub(crate) fn apply_config(
        &mut self,
        inner: &Arc<Inner>,
        new: Arc<Config>,
        now: SystemTime,
    ) -> ConfigDiff {
        let old = self.config.clone();
        let diff = config::diff(&old, &new);

        // Removed backends: publish `removed` to the frontends that referenced them.
        for name in &diff.backends_removed {
            let old_frontends: Vec<String> = old
                .frontends_of(name)
                .into_iter()
                .map(str::to_string)
                .collect();
            if let Some(entry) = self.backends.get_mut(name) {
                // Its queue entry and any result in flight find no entry and are dropped.
                if let Some(t) = entry.health.remove(now) {
                    self.publish_transition_to(name, t, &old_frontends);
                }
            }
            self.backends.remove(name);
        }

        self.config = new.clone();
        // Before any state changes below: those then update the counts one by one.
        self.recount_all();
        let history = new.healthchecker.transition_history;
        let hcs = shared_healthchecks(&new);

        // Backends in both: restart where the probe changed, else keep everything.
        let mut restarted = Vec::new();
        let mut woken = Vec::new();
        for (name, backend) in &new.backends {
            let Some(hc) = hcs.get(backend.healthcheck.as_str()) else {
                continue;
            };
            let generation = if diff.backends_restart.contains(name) {
                Some(self.bump_generation())
            } else {
                None
            };
            let Some(entry) = self.backends.get_mut(name) else {
                continue;
            };
            entry.health.set_history_capacity(history);
            let enabled_before = entry.config.enabled;
            if *entry.config != *backend {
                entry.config = Arc::new(backend.clone());
            }
            entry.healthcheck = Arc::clone(hc);
            entry.spec = Arc::new(ProbeSpec::from_config(
                hc,
                backend.address,
                new.netns_of(hc),
            ));
            entry.policy = policy_of(hc);
            let mut transitions = Vec::new();
            if let Some(g) = generation {
                entry.generation = g;
                if let Ok(Some(t)) = entry.health.reload(hc.rise, hc.fall, now) {
                    transitions.push(t);
                }
                restarted.push(name.clone());
            }
            // The config's `enabled` is the operator's intent when it changes.
            if enabled_before != backend.enabled {
                let r = if backend.enabled {
                    entry.health.enable(now)
                } else {
                    entry.health.disable(now)
                };
                if let Ok(Some(t)) = r {
                    transitions.push(t);
                }
                woken.push(name.clone());
            }
            for t in transitions {
                self.publish_transition(name, t);
            }
        }
        for name in woken {
            task::wake(inner, self, &name);
        }
        for name in restarted {
            task::spawn(inner, self, &name, FirstProbe::Now);
        }

        // New backends start spread over their first interval.
        let count = diff.backends_added.len();
        for (i, name) in diff.backends_added.iter().enumerate() {
            if let Some(entry) = self.new_entry(&new, &hcs, name, now) {
                self.backends.insert(name.clone(), entry);
                task::spawn(inner, self, name, FirstProbe::Spread { index: i, count });
            }
        }

        // Overrides live as long as their pool membership.
        self.overrides.retain(|(f, p, b), _| {
            new.frontends.get(f).is_some_and(|fe| {
                fe.pools
                    .iter()
                    .any(|pool| pool.name == *p && pool.backends.iter().any(|m| m.backend == *b))
            })
        });
        for f in &diff.frontends_added {
            if let Some(state) = self.frontend_state(f) {
                self.frontend_states.insert(f.clone(), state);
            }
        }
        // Overrides were pruned and backends added: count again from the settled state.
        self.recount_all();
        self.recompute_frontends(false);
        self.changes.all = true;
        tracing::info!(
            added = diff.backends_added.len(),
            removed = diff.backends_removed.len(),
            restarted = diff.backends_restart.len(),
            frontends_changed = diff.frontends_changed.len(),
            "config reloaded"
        );
        diff
    }
}

/// One `Arc` per health check of `config`, for its backends to share.
fn shared_healthchecks(config: &Config) -> BTreeMap<&str, Arc<HealthCheck>> {
    config
        .healthchecks
        .iter()
        .map(|(name, hc)| (name.as_str(), Arc::new(hc.clone())))
        .collect()
}

pub(crate) fn policy_of(hc: &HealthCheck) -> IntervalPolicy {
    IntervalPolicy::new(hc.interval, hc.fast_interval, hc.down_interval)
}

pub(crate) fn not_found<'a>(
    kind: &'static str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> CheckerError {
    let known: Vec<&str> = known.map(String::as_str).collect();
    CheckerError::NotFound {
        kind,
        name: name.to_string(),
        known: if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        },
    }
}
