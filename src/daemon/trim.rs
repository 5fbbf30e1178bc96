//! Gives the allocator's free pages back to the kernel now and then (issue 14, memory).
//! glibc only returns memory at the top of an arena on its own; the free chunks in the
//! middle of its two arenas (probes in flight, snapshot chunks and `/metrics` pieces come
//! and go) stay resident until `malloc_trim` releases their whole pages.

use std::time::Duration;

/// How often the free pages are returned. Measured in docs/performance.md ("Memory after
/// 10 minutes"): one call costs well under a millisecond with 10,000 backends, so this is
/// far below 1 % of a core.
pub const PERIOD: Duration = Duration::from_secs(10);

/// Returns the allocator's free pages to the kernel every `period`, until aborted.
pub fn spawn(period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            let released = release_free_pages();
            let took = started.elapsed();
            tracing::trace!(released, micros = took.as_micros() as u64, "malloc_trim");
        }
    })
}

/// glibc's `malloc_trim(0)`: true if it gave memory back. A no-op elsewhere.
pub fn release_free_pages() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes the arenas' locks itself; no pointer is passed.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
