//! Turning OS errors into probe result codes and short human details.

use std::io;

use crate::health::result::ResultCode;

use super::Outcome;

/// The OS's text for an error without the "(os error N)" suffix std appends.
pub fn errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

/// How a failed TCP connect is reported.
pub fn connect_failure(e: &io::Error) -> Outcome {
    let (code, detail) = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => (ResultCode::L4Con, "connection refused".to_string()),
        Some(libc::ECONNRESET) => (ResultCode::L4Con, "connection reset".to_string()),
        Some(libc::EHOSTUNREACH) => (ResultCode::L4Con, "host unreachable".to_string()),
        Some(libc::ENETUNREACH) => (ResultCode::L4Con, "network unreachable".to_string()),
        Some(libc::ETIMEDOUT) => (ResultCode::L4Tout, "connect timed out".to_string()),
        // Local trouble: bad source address, no ports, no permission.
        Some(
            libc::EADDRNOTAVAIL
            | libc::EADDRINUSE
            | libc::EACCES
            | libc::EPERM
            | libc::EAFNOSUPPORT
            | libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS,
        ) => (ResultCode::SockErr, format!("connect: {}", errno_text(e))),
        _ => (ResultCode::L4Con, format!("connect: {}", errno_text(e))),
    };
    Outcome::new(code, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(errno_text(&e), "Operation not permitted");
        let custom = io::Error::other("plain (text)");
        assert_eq!(errno_text(&custom), "plain (text)");
    }

    #[test]
    fn connect_errors_map_to_codes() {
        let refused = connect_failure(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(refused.code, ResultCode::L4Con);
        assert_eq!(refused.detail, "connection refused");
        let unreach = connect_failure(&io::Error::from_raw_os_error(libc::EHOSTUNREACH));
        assert_eq!(unreach.code, ResultCode::L4Con);
        let tout = connect_failure(&io::Error::from_raw_os_error(libc::ETIMEDOUT));
        assert_eq!(tout.code, ResultCode::L4Tout);
        let local = connect_failure(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        assert_eq!(local.code, ResultCode::SockErr);
        assert!(local.detail.contains("Cannot assign requested address"));
    }
}
