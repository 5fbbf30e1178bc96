//! The health core (docs/design.md §5). Pure: no I/O, no tokio, no clocks read except where a
//! caller passes the time in. Everything here is deterministic and unit-tested.
//!
//! - `counter`: the HAProxy rise/fall counter.
//! - `backend`: one backend's state machine, with its transition ring.
//! - `interval`: the delay before the next probe, jitter, first-probe spread.
//! - `weight`: effective AS weights per frontend, active pool, frontend state.

pub mod backend;
pub mod counter;
pub mod error;
pub mod interval;
pub mod result;
pub mod transition;
pub mod weight;

pub use backend::BackendHealth;
pub use counter::HealthCounter;
pub use error::{ActionError, RecordError};
pub use interval::{FixedJitter, IntervalPolicy, Jitter, XorShift64, first_probe_offset, jittered};
pub use result::{ProbeResult, ResultCode, State};
pub use transition::{Transition, TransitionReason};
pub use weight::{
    AsAction, BackendInput, BackendWeight, FrontendState, FrontendWeights, PoolInput, PoolWeights,
    active_pool, as_action, frontend_weights, validate_weight,
};
