//! The scheduler: one driver task probes every backend (however many frontends use it)
//! from a deadline queue, at the interval its health asks for, feeding results into `health`, and publishing every
//! transition on the event bus. Operator actions and reloads go through [`Checker`], which
//! changes state and emits the same events. After each batch of mutations the checker
//! publishes an immutable [`HealthSnapshot`]; readers (gRPC, metrics, VPP) look at that
//! through [`Checker::snapshot`] / [`Checker::read`] and never take the state's lock.

mod backends;
mod counts;
mod deadlines;
pub mod dirty;
pub mod snapshot;
mod state;
pub mod stats;
mod task;
pub mod view;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

use crate::config::Config;
use crate::events::EventBus;
use crate::health::{ActionError, BackendHealth, ProbeResult, Transition};
use crate::probe::{ProbeSpec, Prober};

pub use backends::Backends;
pub use dirty::{Dirty, DirtyFrontends};
pub use snapshot::{BackendSnapshot, HealthSnapshot};
pub use state::{BackendEntry, CheckerState, OverrideKey};
pub use view::{FrontendView, frontend_view};

/// An operator action on one backend's health: `BackendHealth::pause` and its siblings.
pub type OperatorAction =
    fn(&mut BackendHealth, SystemTime) -> Result<Option<Transition>, ActionError>;

/// Runs one probe. The daemon uses [`Prober`]; unit tests script results.
pub trait Probe: Send + Sync + 'static {
    fn probe<'a>(
        &'a self,
        spec: &'a ProbeSpec,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

    /// The probe as a future that owns what it reads: the driver keeps it in its set of
    /// probes in flight as is. The default wraps [`Probe::probe`] (two allocations per
    /// probe); an implementation can box its own future once.
    fn probe_owned(
        self: Arc<Self>,
        spec: Arc<ProbeSpec>,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send>> {
        Box::pin(async move { self.probe(&spec).await })
    }

    /// A new config was applied: drop anything read from files the config names (the
    /// daemon's prober re-reads CA files on the next HTTPS probe).
    fn config_reloaded(&self) {}
}

impl Probe for Prober {
    fn probe<'a>(
        &'a self,
        spec: &'a ProbeSpec,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(Prober::probe(self, spec))
    }

    fn probe_owned(
        self: Arc<Self>,
        spec: Arc<ProbeSpec>,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send>> {
        // One allocation per probe: the prober's own future, boxed with the two `Arc`s.
        Box::pin(async move { Prober::probe(&self, &spec).await })
    }

    fn config_reloaded(&self) {
        self.clear_tls_cache();
    }
}

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckerError {
    #[error("unknown {kind} {name:?} (known: {known})")]
    NotFound {
        kind: &'static str,
        name: String,
        known: String,
    },
    #[error("{name}: {source}")]
    Action {
        name: String,
        #[source]
        source: ActionError,
    },
    #[error("{0}")]
    InvalidArgument(String),
}

/// The handle to the running checker. Cheap to clone.
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) state: RwLock<CheckerState>,
    /// The last published snapshot (what readers see).
    pub(crate) snapshot: watch::Sender<Arc<HealthSnapshot>>,
    pub(crate) bus: EventBus,
    /// Frontends whose VIP may need a sync (the reconciler's trigger, apart from the bus).
    pub(crate) dirty: Arc<DirtyFrontends>,
    pub(crate) probe: Arc<dyn Probe>,
    /// Where the probe driver runs (it publishes the snapshots of probe results).
    pub(crate) runtime: Handle,
    /// Tells the driver that the deadline queue changed from outside (start, reload,
    /// operator action).
    pub(crate) driver_wake: Notify,
    /// The driver task, aborted by `stop`.
    pub(crate) driver: Mutex<Option<AbortHandle>>,
    /// Origin of the grid probe start times are batched on (see `task::batched_deadline`).
    pub(crate) epoch: tokio::time::Instant,
}

impl Checker {
    /// Starts the probe driver, every backend's first probe spread over the first interval.
    /// Must be called inside a tokio runtime; the driver runs on it.
    pub fn start(config: Arc<Config>, probe: Arc<dyn Probe>, bus: EventBus) -> Checker {
        Self::start_on(Handle::current(), config, probe, bus)
    }

    /// Like [`Checker::start`], with the driver on `runtime`. The daemon gives the checker
    /// a current-thread runtime of its own: the driver and its probes then never hop
    /// between worker threads, which costs less CPU per check.
    pub fn start_on(
        runtime: Handle,
        config: Arc<Config>,
        probe: Arc<dyn Probe>,
        bus: EventBus,
    ) -> Checker {
        let mut state = CheckerState::new(config.clone(), SystemTime::now());
        let first = state.build_snapshot();
        let inner = Arc::new(Inner {
            state: RwLock::new(state),
            snapshot: watch::Sender::new(Arc::new(first)),
            bus,
            dirty: Arc::new(DirtyFrontends::default()),
            probe,
            runtime,
            driver_wake: Notify::new(),
            driver: Mutex::new(None),
            epoch: tokio::time::Instant::now(),
        });
        let driver = inner.runtime.spawn(task::drive(Arc::clone(&inner)));
        *inner.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(driver.abort_handle());
        let checker = Checker { inner };
        checker.with_state_mut(|st, inner| {
            st.queue.set_grid(inner.epoch, task::BATCH_TICK);
            st.recompute_frontends(true);
            st.changes.all = true;
            let names: Vec<String> = st.backends.keys().cloned().collect();
            let count = names.len();
            for (i, name) in names.into_iter().enumerate() {
                task::spawn(
                    inner,
                    st,
                    &name,
                    task::FirstProbe::Spread { index: i, count },
                );
            }
        });
        checker
    }

    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The frontends whose VPP state may have changed (for the reconciler only).
    pub fn dirty(&self) -> Arc<DirtyFrontends> {
        Arc::clone(&self.inner.dirty)
    }

    /// The last published snapshot: a pointer copy, no lock the probes take. Hold it as
    /// long as you like; later changes go into new snapshots.
    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        Arc::clone(&self.inner.snapshot.borrow())
    }

    /// A receiver that sees every publish (for readers that wait for changes).
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthSnapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// Runs `f` on the last published snapshot.
    pub fn read<R>(&self, f: impl FnOnce(&HealthSnapshot) -> R) -> R {
        f(&self.snapshot())
    }

    /// Changes the state under the write lock, then publishes the snapshot (and the
    /// events) of what changed before returning: the caller's next read sees its change.
    fn with_state_mut<R>(&self, f: impl FnOnce(&mut CheckerState, &Arc<Inner>) -> R) -> R {
        let mut guard = match self.inner.state.write() {
            Ok(g) => g,
            // A panic while holding the lock leaves data that is still consistent enough
            // to use: every mutation is a few field writes.
            Err(poisoned) => poisoned.into_inner(),
        };
        let r = f(&mut guard, &self.inner);
        guard.publish(&self.inner);
        r
    }

    /// The running config.
    pub fn config(&self) -> Arc<Config> {
        self.read(|st| st.config.clone())
    }

    // Test seams: the operator path goes through `act` with a reply built under the same
    // lock (server/service.rs); these shortcuts exist only for the checker's unit tests.
    #[cfg(test)]
    pub fn pause(&self, backend: &str) -> Result<(), CheckerError> {
        self.act(backend, BackendHealth::pause, |_, _| ())
    }

    #[cfg(test)]
    pub fn resume(&self, backend: &str) -> Result<(), CheckerError> {
        self.act(backend, BackendHealth::resume, |_, _| ())
    }

    #[cfg(test)]
    pub fn disable(&self, backend: &str) -> Result<(), CheckerError> {
        self.act(backend, BackendHealth::disable, |_, _| ())
    }

    #[cfg(test)]
    pub fn enable(&self, backend: &str) -> Result<(), CheckerError> {
        self.act(backend, BackendHealth::enable, |_, _| ())
    }

    /// Runs the operator `action` on `backend`, then `reply` on the config and the entry it
    /// left, under one write lock: the woken task cannot probe in between, so the reply shows the action's
    /// own result.
    pub fn act<R>(
        &self,
        backend: &str,
        action: OperatorAction,
        reply: impl FnOnce(&Config, &BackendSnapshot) -> R,
    ) -> Result<R, CheckerError> {
        self.with_state_mut(|st, inner| {
            let entry = st.backend_mut(backend)?;
            let transition = action(&mut entry.health, SystemTime::now()).map_err(|source| {
                CheckerError::Action {
                    name: backend.to_string(),
                    source,
                }
            })?;
            let name = Arc::clone(&entry.name);
            if let Some(id) = st.backends.id_of(&name) {
                st.changes.backend(id);
            }
            // Wake the driver: it stops probing when paused/disabled, probes at once when
            // resumed/enabled.
            task::wake(inner, st, &name);
            if let Some(t) = transition {
                st.publish_transition(backend, t);
            }
            let config = Arc::clone(&st.config);
            Ok(reply(
                &config,
                &BackendSnapshot::of(st.backend_mut(backend)?),
            ))
        })
    }

    /// Runtime weight of `backend` in `pool` of `frontend` (0..=100). Survives reloads of an
    /// unchanged backend; gone when the pool membership goes away.
    pub fn set_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u32,
    ) -> Result<(), CheckerError> {
        self.with_state_mut(|st, _| st.set_weight(frontend, pool, backend, weight))
    }

    /// Applies a new, already validated config: new backends start (spread), removed ones
    /// become `removed` and stop, a changed probe definition restarts that backend at
    /// `unknown`, everything else keeps counter, state, history and overrides.
    pub fn reload(&self, new: Arc<Config>) -> crate::config::ConfigDiff {
        self.inner.probe.config_reloaded();
        self.with_state_mut(|st, inner| st.apply_config(inner, new, SystemTime::now()))
    }

    /// Stops all probing (for shutdown).
    pub fn stop(&self) {
        let driver = self
            .inner
            .driver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(d) = driver {
            d.abort();
        }
    }

    /// The delay the backend's next probe was scheduled with (for tests and the API).
    pub fn next_delay(&self, backend: &str) -> Option<Duration> {
        self.read(|st| st.backends.get(backend).map(|e| e.stats.next_delay()))
    }
}

#[cfg(test)]
mod tests;
