//! Integer socket options socket2 does not offer (DF mode, forced buffer size, bind
//! without a port), set in one place.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// `setsockopt(sock, level, name, &value)` for an `int` option.
pub fn set_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd and a c_int option value of the size given, borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use socket2::{Domain, Type};

    use super::*;

    #[test]
    fn sets_an_option_and_reports_a_refused_one() {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        set_int(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 * 1024).unwrap();
        // The kernel doubles what it is given (bookkeeping room).
        assert!(sock.recv_buffer_size().unwrap() >= 64 * 1024);
        assert!(set_int(&sock, libc::SOL_SOCKET, -1, 1).is_err());
    }
}
