//! Typed errors of the health core: a probe result that may not be recorded, and an operator
//! action that is not allowed in the backend's current state.

use super::result::State;

/// Why a probe result was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Results count only in `unknown`, `up` and `down`; a late result after a pause,
    /// disable or removal is dropped.
    #[error("backend is {state}; probe results are not recorded in this state")]
    NotProbing { state: State },
}

/// Why an operator action (or reload step) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("backend is disabled; enable it first")]
    Disabled,
    #[error("backend was removed from the config")]
    Removed,
    #[error("weight {weight} is out of range; expected 0..=100")]
    InvalidWeight { weight: u32 },
}
