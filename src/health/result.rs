//! What one probe found, and the states a backend can be in.

use std::time::{Duration, SystemTime};

/// HAProxy-style probe result codes (also a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultCode {
    /// Layer 4 (connect, ICMP echo) succeeded.
    L4Ok,
    /// Layer 4 timed out.
    L4Tout,
    /// Layer 4 refused / unreachable / reset.
    L4Con,
    /// TLS handshake succeeded.
    L6Ok,
    /// TLS handshake timed out.
    L6Tout,
    /// TLS handshake failed (bad certificate, protocol error).
    L6Rsp,
    /// HTTP response as expected.
    L7Ok,
    /// No (complete) HTTP response in time.
    L7Tout,
    /// Malformed HTTP response, or body mismatch.
    L7Rsp,
    /// Unexpected HTTP status.
    L7Sts,
    /// Local socket error (no permission, bad source address, namespace).
    SockErr,
}

impl ResultCode {
    pub const ALL: [ResultCode; 11] = [
        ResultCode::L4Ok,
        ResultCode::L4Tout,
        ResultCode::L4Con,
        ResultCode::L6Ok,
        ResultCode::L6Tout,
        ResultCode::L6Rsp,
        ResultCode::L7Ok,
        ResultCode::L7Tout,
        ResultCode::L7Rsp,
        ResultCode::L7Sts,
        ResultCode::SockErr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::L4Ok => "L4OK",
            ResultCode::L4Tout => "L4TOUT",
            ResultCode::L4Con => "L4CON",
            ResultCode::L6Ok => "L6OK",
            ResultCode::L6Tout => "L6TOUT",
            ResultCode::L6Rsp => "L6RSP",
            ResultCode::L7Ok => "L7OK",
            ResultCode::L7Tout => "L7TOUT",
            ResultCode::L7Rsp => "L7RSP",
            ResultCode::L7Sts => "L7STS",
            ResultCode::SockErr => "SOCKERR",
        }
    }

    /// The code's position in [`ResultCode::ALL`] (which lists every code, so the
    /// fallback is never taken): counters indexed by code use it.
    pub fn index(self) -> usize {
        ResultCode::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    /// Whether this code counts as a pass for the health counter.
    pub fn is_ok(self) -> bool {
        matches!(self, ResultCode::L4Ok | ResultCode::L6Ok | ResultCode::L7Ok)
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub code: ResultCode,
    /// Human detail: "HTTP 503", "connection refused", "body mismatch".
    pub detail: String,
    /// When the probe finished.
    pub at: SystemTime,
    /// How long the probe took.
    pub duration: Duration,
}

impl ProbeResult {
    pub fn new(code: ResultCode, detail: impl Into<String>, duration: Duration) -> Self {
        ProbeResult {
            code,
            detail: detail.into(),
            at: SystemTime::now(),
            duration,
        }
    }

    /// Like `new`, with the finish time given by the caller (no clock read): for tests and
    /// for callers that already hold the time.
    pub fn new_at(
        code: ResultCode,
        detail: impl Into<String>,
        duration: Duration,
        at: SystemTime,
    ) -> Self {
        ProbeResult {
            code,
            detail: detail.into(),
            at,
            duration,
        }
    }

    pub fn ok(&self) -> bool {
        self.code.is_ok()
    }
}

/// The state of one backend (docs/design.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// New, resumed or enabled: not yet decided.
    Unknown,
    Up,
    Down,
    /// Operator: no probes.
    Paused,
    /// Operator: no probes, still in config, can be re-enabled.
    Disabled,
    /// Gone from the config on reload.
    Removed,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Unknown,
        State::Up,
        State::Down,
        State::Paused,
        State::Disabled,
        State::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
            State::Paused => "paused",
            State::Disabled => "disabled",
            State::Removed => "removed",
        }
    }

    /// Probes run only in these states.
    pub fn is_probing(self) -> bool {
        matches!(self, State::Unknown | State::Up | State::Down)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_indexes_its_place_in_all() {
        for (i, code) in ResultCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), i, "{code}");
        }
    }
}
