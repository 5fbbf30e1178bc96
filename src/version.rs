//! Build identity baked in by build.rs.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("MAGLEV_GIT_COMMIT");
pub const BUILD_DATE: &str = env!("MAGLEV_BUILD_DATE");

/// The long version line: `0.1.0 (commit abc123, built 2026-11-29T07:00:00Z)`.
pub fn long() -> String {
    format!("{VERSION} (commit {GIT_COMMIT}, built {BUILD_DATE})")
}

/// The User-Agent of HTTP probes.
pub fn user_agent() -> String {
    format!("maglev/{VERSION}")
}
