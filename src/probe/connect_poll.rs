//! Waiting for many connecting sockets with one epoll set of our own.
//!
//! tokio registers every socket it is given (an `epoll_ctl` ADD, a `ScheduledIo` and, on
//! drop, an `epoll_ctl` DEL); a connect check only needs one writable event. Here a
//! connecting socket joins one epoll set for one event (`EPOLLOUT | EPOLLONESHOT`) and
//! leaves it when it is closed (the kernel drops a closed file from every epoll set): one
//! `epoll_ctl` per check. The set's own fd is registered with tokio once; one task drains
//! it and wakes the probes whose sockets are ready.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::unix::AsyncFd;

/// Events read per `epoll_wait`.
const BATCH: usize = 256;

/// Creates its epoll set on first use (inside the runtime that probes), and again if the
/// task draining it stopped (its runtime was shut down).
#[derive(Default)]
pub struct ConnectPoller {
    current: Mutex<Option<Arc<Driver>>>,
}

impl ConnectPoller {
    /// Waits until `fd` (a socket with a connect in progress) is writable or failed. The
    /// caller then asks the socket how the connect ended; `again` re-arms a socket that
    /// waited here before (its one-shot entry stays in the set until it is closed). Must
    /// run inside a tokio runtime.
    pub async fn ready(&self, fd: RawFd, again: bool) -> io::Result<()> {
        let driver = self.driver()?;
        let slot = Slot::new(&driver);
        driver.arm(fd, slot.key, again)?;
        std::future::poll_fn(|cx| slot.poll(cx)).await;
        Ok(())
    }

    fn driver(&self) -> io::Result<Arc<Driver>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = current.as_ref()
            && !d.stopped.load(Ordering::Relaxed)
        {
            return Ok(d.clone());
        }
        let d = Arc::new(Driver::new()?);
        tokio::spawn(drain(Running(d.clone())));
        *current = Some(d.clone());
        Ok(d)
    }
}

struct Driver {
    epoll: AsyncFd<OwnedFd>,
    waiters: Mutex<Waiters>,
    /// Set when the draining task ended; the poller then makes a new set.
    stopped: AtomicBool,
}

impl Driver {
    fn new() -> io::Result<Driver> {
        // SAFETY: plain system call; the fd is checked and owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns the fd, so it stays open and the same for its life.
        let epoll = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Driver {
            epoll,
            waiters: Mutex::default(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Adds `fd` to the set (or re-arms it) for one writable (or error) event carrying
    /// `key`.
    fn arm(&self, fd: RawFd, key: u64, again: bool) -> io::Result<()> {
        let op = if again {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLOUT | libc::EPOLLONESHOT) as u32,
            u64: key,
        };
        // SAFETY: both fds are open; `ev` is a valid event for the call's duration.
        let rc = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The draining task's hold on its driver: marks the driver stopped when the task is
/// dropped, even if it never ran (a runtime shut down right after the spawn).
struct Running(Arc<Driver>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

/// Reads the set's events and wakes their probes, until the runtime goes away.
async fn drain(running: Running) {
    let driver = &running.0;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
    let mut wake = Vec::with_capacity(BATCH);
    loop {
        let Ok(mut guard) = driver.epoll.readable().await else {
            return;
        };
        loop {
            // SAFETY: `events` holds BATCH writable entries; timeout 0 never blocks.
            let n = unsafe {
                libc::epoll_wait(
                    driver.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    BATCH as libc::c_int,
                    0,
                )
            };
            let Ok(n) = usize::try_from(n) else {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::warn!(error = %io::Error::last_os_error(), "connect poller failed");
                return;
            };
            driver
                .waiters()
                .complete(events[..n].iter().map(|e| e.u64), &mut wake);
            for w in wake.drain(..) {
                w.wake();
            }
            if n < BATCH {
                guard.clear_ready();
                break;
            }
        }
    }
}

/// One probe's place in the driver's table; freed when the probe ends or is dropped.
struct Slot<'a> {
    driver: &'a Arc<Driver>,
    key: u64,
}

impl<'a> Slot<'a> {
    fn new(driver: &'a Arc<Driver>) -> Self {
        let key = driver.waiters().insert();
        Slot { driver, key }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.driver.waiters().poll(self.key, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.driver.waiters().remove(self.key);
    }
}

/// Probes waiting on the set (pure): a slab indexed by the low half of a key, whose high
/// half is a generation so that a late event of a reused slot is ignored.
#[derive(Default)]
struct Waiters {
    slots: Vec<Entry>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Entry {
    generation: u32,
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Free,
    Waiting(Option<Waker>),
    Ready,
}

impl Waiters {
    fn insert(&mut self) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Entry::default());
                // A slot per probe in flight: never near u32::MAX.
                (self.slots.len() - 1) as u32
            }
        };
        let e = &mut self.slots[index as usize];
        e.generation = e.generation.wrapping_add(1);
        e.state = State::Waiting(None);
        (u64::from(e.generation) << 32) | u64::from(index)
    }

    fn entry(&mut self, key: u64) -> Option<&mut Entry> {
        let e = self.slots.get_mut((key & 0xffff_ffff) as usize)?;
        (u64::from(e.generation) == key >> 32 && !matches!(e.state, State::Free)).then_some(e)
    }

    /// True once the slot's event came; else remembers `waker`.
    fn poll(&mut self, key: u64, waker: &Waker) -> bool {
        let Some(e) = self.entry(key) else {
            return true;
        };
        match &mut e.state {
            State::Ready | State::Free => true,
            State::Waiting(w) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *w = Some(waker.clone());
                }
                false
            }
        }
    }

    /// Marks the slots of `keys` ready and collects their wakers into `wake`.
    fn complete(&mut self, keys: impl Iterator<Item = u64>, wake: &mut Vec<Waker>) {
        for key in keys {
            if let Some(e) = self.entry(key)
                && let State::Waiting(w) = std::mem::replace(&mut e.state, State::Ready)
            {
                wake.extend(w);
            }
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(e) = self.entry(key) {
            e.state = State::Free;
            self.free.push((key & 0xffff_ffff) as u32);
        }
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waiters_complete_once_and_ignore_stale_keys() {
        let mut w = Waiters::default();
        let waker = Waker::noop();
        let a = w.insert();
        let b = w.insert();
        assert!(!w.poll(a, waker));
        let mut wake = Vec::new();
        w.complete([a].into_iter(), &mut wake);
        assert_eq!(wake.len(), 1);
        assert!(w.poll(a, waker));
        assert!(!w.poll(b, waker));
        w.remove(a);
        // The slot is reused under a new generation: the old key's late event is ignored.
        let c = w.insert();
        assert_eq!(c & 0xffff_ffff, a & 0xffff_ffff);
        assert_ne!(c, a);
        w.complete([a].into_iter(), &mut wake);
        assert_eq!(wake.len(), 1);
        assert!(!w.poll(c, waker));
        w.remove(b);
        w.remove(c);
        w.remove(c);
        assert_eq!(w.in_use(), 0);
    }

    #[tokio::test]
    async fn a_writable_socket_is_reported_and_its_slot_freed() {
        let poller = ConnectPoller::default();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ready = |again| poller.ready(a.as_raw_fd(), again);
        tokio::time::timeout(Duration::from_secs(10), ready(false))
            .await
            .expect("writable in time")
            .unwrap();
        let d = poller.driver().unwrap();
        assert_eq!(d.waiters().in_use(), 0);
        // Its one-shot entry stays in the set: adding it again fails, re-arming works.
        let added = ready(false).await;
        assert_eq!(
            added.err().and_then(|e| e.raw_os_error()),
            Some(libc::EEXIST)
        );
        tokio::time::timeout(Duration::from_secs(10), ready(true))
            .await
            .expect("writable again in time")
            .unwrap();
        assert_eq!(d.waiters().in_use(), 0);
    }

    #[tokio::test]
    async fn a_dropped_wait_frees_its_slot() {
        let poller = ConnectPoller::default();
        // A full socket pair: the writer's end is not writable until the reader reads.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        while std::io::Write::write(&mut &a, &[0u8; 4096]).is_ok() {}
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            poller.ready(a.as_raw_fd(), false),
        )
        .await;
        assert!(waited.is_err(), "not writable yet");
        assert_eq!(poller.driver().unwrap().waiters().in_use(), 0);
        drop(b);
    }

    /// A poller outlives the runtime that first used it (tests, reloads): the next runtime
    /// gets a new epoll set and task, also when the old task never ran.
    #[test]
    fn a_new_runtime_gets_a_new_set() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let poller = ConnectPoller::default();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let first = runtime().block_on(async {
            poller.ready(a.as_raw_fd(), false).await.unwrap();
            poller.driver().unwrap()
        });
        // Spawned but never polled before its runtime went away.
        let never_ran = runtime().block_on(async {
            let d = poller.driver().unwrap();
            assert!(!Arc::ptr_eq(&d, &first), "the first set's task is gone");
            d
        });
        assert!(first.stopped.load(Ordering::Relaxed));
        assert!(never_ran.stopped.load(Ordering::Relaxed));
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), poller.ready(c.as_raw_fd(), false))
                .await
                .expect("writable in time")
                .unwrap();
        });
    }
}
