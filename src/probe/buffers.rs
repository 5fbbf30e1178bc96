//! Probe buffers reused across probes: a check borrows one, and it goes back (emptied) when
//! the check ends, also when the check is dropped on timeout.

use std::sync::Mutex;

/// Bytes a fresh buffer starts with: a check's request, then its response head, fits.
const INITIAL: usize = 1024;
/// Buffers that grew past this (a large head or body) are freed, not kept: the pool
/// holds at most `IDLE_MAX * KEEP_UP_TO` (1 MiB), usually `IDLE_MAX * INITIAL`.
const KEEP_UP_TO: usize = 4 * 1024;
/// Buffers kept idle at most: about the number of HTTP checks in flight at once (one
/// buffer each, two with a body match).
const IDLE_MAX: usize = 256;

#[derive(Default)]
pub struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer, reused if one is idle.
    pub fn take(&self) -> Pooled<'_> {
        let buf = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_else(|| Vec::with_capacity(INITIAL));
        Pooled { pool: self, buf }
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() > KEEP_UP_TO {
            return;
        }
        buf.clear();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_MAX
        {
            idle.push(buf);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

/// A borrowed buffer; returns to its pool on drop.
pub struct Pooled<'a> {
    pool: &'a BufferPool,
    pub buf: Vec<u8>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_big_ones_are_freed() {
        let pool = BufferPool::default();
        {
            let mut a = pool.take();
            a.buf.extend_from_slice(b"request");
            let _b = pool.take();
        }
        assert_eq!(pool.idle(), 2);
        let again = pool.take();
        assert!(again.buf.is_empty());
        assert!(again.buf.capacity() >= INITIAL);
        assert_eq!(pool.idle(), 1);
        {
            let mut big = pool.take();
            big.buf.reserve(KEEP_UP_TO + 1);
        }
        assert_eq!(pool.idle(), 0);
    }
}
