//! A recorded change of a backend's state, and why it happened.

use std::time::SystemTime;

use super::result::{ProbeResult, State};

/// What caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionReason {
    /// A probe result moved the counter across the up/down line (or decided `unknown`).
    Probe,
    Pause,
    Resume,
    Disable,
    Enable,
    /// The backend left the config on reload.
    Remove,
    /// A reload changed the backend's health check: its health starts over.
    Reload,
}

impl TransitionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionReason::Probe => "probe",
            TransitionReason::Pause => "pause",
            TransitionReason::Resume => "resume",
            TransitionReason::Disable => "disable",
            TransitionReason::Enable => "enable",
            TransitionReason::Remove => "remove",
            TransitionReason::Reload => "reload",
        }
    }
}

impl std::fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change of a backend. `from != to` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at: SystemTime,
    /// The probe result that caused it; `None` for operator actions and reloads.
    pub result: Option<ProbeResult>,
    pub reason: TransitionReason,
}
