//! A network namespace made by a test, removed when the value drops. Needs root (CI runs as
//! root); `create` prints why it skips otherwise. As root the tests must run: a namespace
//! that cannot be set up then fails the test instead of skipping it.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

/// A namespace that exists for the life of the value.
pub struct TestNs {
    pub name: String,
}

impl TestNs {
    /// Creates `maglev-test-<pid>-<tag>` with lo up; `None` (after saying so) when not root.
    pub fn create(tag: &str) -> Option<TestNs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to create network namespaces");
            return None;
        }
        let name = format!("maglev-test-{}-{tag}", std::process::id());
        // CI runs as root with every capability: there a namespace that cannot be made is a
        // failure. Elsewhere (a root without CAP_SYS_ADMIN, e.g. in a container) it is a skip.
        let required = std::env::var_os("CI").is_some();
        if !run(&["ip", "netns", "add", &name]) {
            assert!(!required, "`ip netns add {name}` failed in CI as root");
            eprintln!("skipped: `ip netns add` failed (no CAP_SYS_ADMIN or no iproute2?)");
            return None;
        }
        let ns = TestNs { name };
        assert!(
            run(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]),
            "cannot bring lo up in {}",
            ns.name
        );
        Some(ns)
    }

    /// Sets `setting` (`key=value`) inside the namespace; panics when it cannot (root can).
    pub fn sysctl(&self, setting: &str) {
        assert!(
            run(&[
                "ip", "netns", "exec", &self.name, "sysctl", "-q", "-w", setting,
            ]),
            "sysctl -w {setting} failed in {}",
            self.name
        );
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> JoinHandle<io::Result<T>> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = File::open(path)?;
            // SAFETY: plain syscall on an fd we keep open for the call.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        run(&["ip", "netns", "del", &self.name]);
    }
}

pub fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
