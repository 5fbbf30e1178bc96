//! Small socket I/O helpers shared by the raw-socket probes.

use std::io;
use std::mem::MaybeUninit;

use socket2::{SockAddr, Socket};

/// `recvfrom` into an initialised buffer.
pub fn recv_from(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and recv only writes
    // initialised bytes into the buffer, so it stays fully initialised.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    sock.recv_from(uninit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    #[test]
    fn receives_a_datagram_with_its_sender() {
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        a.bind(&lo.into()).unwrap();
        b.bind(&lo.into()).unwrap();
        b.send_to(b"hello", &a.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = recv_from(&a, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.as_socket(), b.local_addr().unwrap().as_socket());
    }
}
