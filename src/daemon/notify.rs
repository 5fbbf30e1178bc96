//! systemd readiness protocol (sd_notify) without libsystemd: one datagram per state
//! change to `$NOTIFY_SOCKET`. Outside systemd every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. "READY=1") to systemd if we run under it. Errors are returned so the
/// caller can log them once; they never stop the daemon.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        // Abstract namespace socket (Linux): systemd uses these in containers.
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))?;
    }
    Ok(true)
}

/// [`notify`], with a failure logged (never fatal).
pub fn log_notify(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(error = %e, "sd_notify {state} failed");
    }
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`, for this pid), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_socket() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path)?;
        // Only this test touches NOTIFY_SOCKET; set/remove are unsafe in edition 2024
        // because other threads may read the environment concurrently.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        let sent = notify("READY=1");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        assert!(sent?);
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"READY=1");
        Ok(())
    }
}
