//! A program in a pseudo-terminal, its output fed into a terminal emulator (`vt100`) so a
//! test reads the screen a user would see; keys are the bytes a terminal sends. The same
//! approach as the ctl shell tests, for full-screen programs.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A fresh pty pair (master, slave), both close-on-exec, sized `rows` x `cols`.
pub fn open_pty(rows: u16, cols: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into our locals; name and termios may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened for us and are owned by nothing else.
    let pair = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&pair.0, &pair.1] {
        // SAFETY: fcntl on a descriptor we own; other tests spawn children concurrently.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(pair)
}

/// Feeds the program's output to the emulator; answers "where is the cursor?" (`ESC[6n`)
/// the way a terminal does, from the emulator's own cursor. A query split across two reads
/// is held back until it is whole, so the answer reflects the output before it.
fn pump(master: Arc<File>, parser: Arc<Mutex<vt100::Parser>>) {
    const QUERY: &[u8] = b"\x1b[6n";
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match (&*master).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO once the program and every copy of the slave are gone.
            Err(_) => return,
        };
        pending.extend_from_slice(&buf[..n]);
        let Ok(mut parser) = parser.lock() else {
            return;
        };
        while let Some(at) = pending.windows(QUERY.len()).position(|w| w == QUERY) {
            let end = at + QUERY.len();
            parser.process(&pending[..end]);
            let (row, col) = parser.screen().cursor_position();
            let _ = write!(&*master, "\x1b[{};{}R", row + 1, col + 1);
            pending.drain(..end);
        }
        // Hold back a possible start of a query split across reads.
        let keep = (1..QUERY.len())
            .rev()
            .find(|&k| pending.ends_with(&QUERY[..k]))
            .unwrap_or(0);
        let ready = pending.len() - keep;
        parser.process(&pending[..ready]);
        pending.drain(..ready);
    }
}

/// A program running in a pty; killed on drop.
pub struct Pty {
    child: Child,
    master: Arc<File>,
    parser: Arc<Mutex<vt100::Parser>>,
    reader: Option<JoinHandle<()>>,
}

impl Pty {
    /// Starts `cmd` on a `rows` x `cols` terminal. `None` (after printing why) when no pty
    /// can be had here.
    pub fn start(mut cmd: Command, rows: u16, cols: u16) -> Option<Pty> {
        let (master, slave) = match open_pty(rows, cols) {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("skipping: cannot open a pseudo-terminal: {e}");
                return None;
            }
        };
        let (stdin, stdout) = match (slave.try_clone(), slave.try_clone()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("skipping: cannot duplicate the pty: {e}");
                return None;
            }
        };
        cmd.env("TERM", "xterm-256color")
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a session of its own
        // with the pty as controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn the program");
        drop(cmd);
        let master = Arc::new(File::from(master));
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a non-zero size");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(cols), 0)));
        let reader = {
            let (m, p) = (Arc::clone(&master), Arc::clone(&parser));
            std::thread::spawn(move || pump(m, p))
        };
        Some(Pty {
            child,
            master,
            parser,
            reader: Some(reader),
        })
    }

    pub fn send(&self, keys: &str) {
        (&*self.master)
            .write_all(keys.as_bytes())
            .and_then(|()| (&*self.master).flush())
            .expect("write to the pty");
    }

    /// The screen as text.
    pub fn text(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    /// Runs `f` on the emulator's screen.
    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        let parser = self.parser.lock().expect("emulator lock");
        f(parser.screen())
    }

    /// Waits up to `limit` until `ok` holds for the screen text; returns that text.
    pub fn wait(&self, what: &str, limit: Duration, mut ok: impl FnMut(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if ok(&text) {
                return text;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the program to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the program did not exit; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the terminal is back in cooked mode (line editing and echo on).
    pub fn cooked(&self) -> bool {
        // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr on a descriptor we own, writing into `t`.
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        rc == 0 && t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
