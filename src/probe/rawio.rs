//! Small socket I/O helpers shared by the raw-socket probes.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// Buffers for reading many datagrams with one `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<[u8; Self::MTU]>,
    names: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovecs` and `hdrs` only ever point into the batch's own
// buffers, and are rebuilt before every call.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Bytes kept of each datagram (answers of checks are far smaller).
    pub const MTU: usize = 2048;

    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        // SAFETY: all-zero is a valid value of these plain C structs.
        let (name, iov, hdr) = unsafe { std::mem::zeroed() };
        RecvBatch {
            bufs: vec![[0u8; Self::MTU]; size],
            names: vec![name; size],
            iovecs: vec![iov; size],
            hdrs: vec![hdr; size],
        }
    }

    /// How many datagrams one call can return.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Reads what is queued on `sock` (up to the capacity) without blocking; Ok(n) means
    /// datagrams 0..n are available through [`RecvBatch::get`]; WouldBlock when none.
    pub fn recv(&mut self, sock: &Socket) -> io::Result<usize> {
        let storage_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for i in 0..self.hdrs.len() {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: Self::MTU,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.names[i]).cast();
            h.msg_namelen = storage_len;
            h.msg_iov = &raw mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the sizes given, owned by self.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its sender's address.
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<IpAddr>)> {
        let hdr = self.hdrs.get(i)?;
        let len = (hdr.msg_len as usize).min(Self::MTU);
        Some((&self.bufs[i][..len], ip_of(&self.names[i])))
    }
}

/// Messages sent per `sendmmsg` at most.
pub const SEND_BATCH: usize = 256;

/// Sends each `(datagram, destination)` with one `sendmmsg` (up to [`SEND_BATCH`] of them)
/// without blocking. Ok(n): the first n went out (n ≥ 1 when `msgs` is not empty); an
/// error is the first message's (the kernel drops the error of a later one, which the
/// next call, starting there, meets again).
pub fn send_batch(sock: &Socket, msgs: &[(&[u8], &SockAddr)]) -> io::Result<usize> {
    let msgs = &msgs[..msgs.len().min(SEND_BATCH)];
    if msgs.is_empty() {
        return Ok(0);
    }
    let mut iovecs: Vec<libc::iovec> = msgs
        .iter()
        .map(|(buf, _)| libc::iovec {
            iov_base: buf.as_ptr().cast_mut().cast(),
            iov_len: buf.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = msgs
        .iter()
        .zip(iovecs.iter_mut())
        .map(|((_, to), iov)| {
            // SAFETY: all-zero is a valid value of this plain C struct.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = to.as_ptr().cast_mut().cast();
            h.msg_hdr.msg_namelen = to.len();
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: every header points at a live buffer, iovec and address of the sizes given,
    // all borrowed for the call; the kernel only reads them (and writes msg_len).
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// The IP address in a sockaddr the kernel filled.
fn ip_of(name: &libc::sockaddr_storage) -> Option<IpAddr> {
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it can hold.
            let sin =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(u32::from_be(sin.sin_addr.s_addr).into()))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(sin6.sin6_addr.s6_addr.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    #[test]
    fn a_batch_reads_every_queued_datagram_with_its_sender() {
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        a.bind(&lo.into()).unwrap();
        b.bind(&lo.into()).unwrap();
        let mut batch = RecvBatch::new(2);
        assert_eq!(
            batch.recv(&a).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for msg in [&b"one"[..], b"two", b"three"] {
            b.send_to(msg, &a.local_addr().unwrap()).unwrap();
        }
        let from = b.local_addr().unwrap().as_socket().map(|s| s.ip());
        assert_eq!(batch.recv(&a).unwrap(), 2);
        assert_eq!(batch.get(0), Some((&b"one"[..], from)));
        assert_eq!(batch.get(1), Some((&b"two"[..], from)));
        assert_eq!(batch.recv(&a).unwrap(), 1);
        assert_eq!(batch.get(0), Some((&b"three"[..], from)));
        assert_eq!(batch.get(2), None);
    }

    #[test]
    fn a_batch_sends_every_datagram_to_its_own_destination() {
        let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let from = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        for s in [&a, &b] {
            s.bind(&lo.into()).unwrap();
        }
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(send_batch(&from, &[]).unwrap(), 0);
        let sent = send_batch(
            &from,
            &[(b"one", &to_a), (b"two", &to_b), (b"three", &to_a)],
        );
        assert_eq!(sent.unwrap(), 3);
        let mut batch = RecvBatch::new(4);
        assert_eq!(batch.recv(&a).unwrap(), 2);
        assert_eq!(batch.get(0).map(|m| m.0), Some(&b"one"[..]));
        assert_eq!(batch.get(1).map(|m| m.0), Some(&b"three"[..]));
        assert_eq!(batch.recv(&b).unwrap(), 1);
        assert_eq!(batch.get(0).map(|m| m.0), Some(&b"two"[..]));
    }

    #[test]
    fn a_failing_first_message_is_an_error() {
        let from = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        // Port 0 is no destination: EINVAL for the first message.
        let nowhere: SockAddr = "127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into();
        assert!(send_batch(&from, &[(b"x", &nowhere)]).is_err());
    }
}
