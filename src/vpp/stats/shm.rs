//! Getting the segment (docs/vpp-wire.md §4.1): connect `SOCK_SEQPACKET` to `stats.sock`,
//! receive one fd by `SCM_RIGHTS`, `fstat` it and map it read-only. This is the only
//! file of the stats module with `unsafe`: `recvmsg` with its control buffer, `mmap` /
//! `munmap`, and [`Mapping::read`], the one function that loads from the mapping.

use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use super::memory::SegmentMemory;
use super::segment::SHARED_HEADER_LEN;

/// Largest segment we agree to map (VPP's default is 32 MiB; big setups use a few GiB).
pub const MAX_SEGMENT_SIZE: u64 = 64 << 30;

/// Why the segment could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("receiving the segment fd: {0}")]
    Receive(io::Error),
    #[error("the stats socket sent no file descriptor")]
    NoFd,
    #[error("cannot stat or map the segment: {0}")]
    Map(io::Error),
    #[error("segment size {0} is out of range")]
    BadSize(u64),
}

/// Connects to the stats socket and returns the segment's fd.
pub fn receive_segment_fd(path: &Path, timeout: Duration) -> Result<OwnedFd, ShmError> {
    let connect_err = |source| ShmError::Connect {
        path: path.display().to_string(),
        source,
    };
    let sock = Socket::new(Domain::UNIX, Type::SEQPACKET, None).map_err(connect_err)?;
    sock.set_read_timeout(Some(timeout)).map_err(connect_err)?;
    sock.set_write_timeout(Some(timeout)).map_err(connect_err)?;
    let addr = SockAddr::unix(path).map_err(connect_err)?;
    sock.connect(&addr).map_err(connect_err)?;
    recv_fd(&sock)
}

/// One `recvmsg` with room for a few fds; keeps the first, closes any extra.
fn recv_fd(sock: &Socket) -> Result<OwnedFd, ShmError> {
    let mut data = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is its documented empty state.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: msg points at live buffers (iov/data, control) of the sizes it states.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(ShmError::Receive(io::Error::last_os_error()));
    }
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer within msg_controllen, which the
    // kernel set to the bytes it wrote; fd payloads are read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let hdr = &*cmsg;
            if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
                let payload = (hdr.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for i in 0..payload / size_of::<libc::c_int>() {
                    let fd = ptr::read_unaligned(data.add(i));
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // Extra fds (never sent by VPP) are closed when `fds` drops.
    fds.into_iter().next().ok_or(ShmError::NoFd)
}

/// A read-only shared mapping of the whole segment; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and only accessed through `read`, which copies out
// with volatile loads; nothing hands out references into it.
unsafe impl Send for Mapping {}
// SAFETY: as above; concurrent readers only load.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `fd` (consumed and closed; the mapping outlives it).
    pub fn map(fd: OwnedFd) -> Result<Self, ShmError> {
        let file = File::from(fd);
        let size = file.metadata().map_err(ShmError::Map)?.len();
        if size < SHARED_HEADER_LEN as u64 || size > MAX_SEGMENT_SIZE {
            return Err(ShmError::BadSize(size));
        }
        let len = usize::try_from(size).map_err(|_| ShmError::BadSize(size))?;
        // SAFETY: a fresh mapping chosen by the kernel, of a size the file has.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(ShmError::Map(io::Error::last_os_error()));
        }
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ShmError::Map(io::Error::other(
            "mmap returned a null mapping",
        )))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the region mmap returned; no references into it exist.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

impl SegmentMemory for Mapping {
    fn size(&self) -> usize {
        self.len
    }

    /// The audited read: range-checked, then volatile loads (VPP writes concurrently,
    /// so the compiler must not assume the bytes are stable).
    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        let src = self.ptr.as_ptr();
        for (i, byte) in dst.iter_mut().enumerate() {
            // SAFETY: offset + i < offset + dst.len() <= self.len, inside the mapping.
            *byte = unsafe { ptr::read_volatile(src.add(offset + i)) };
        }
        true
    }

    /// Aligned counters are read with one 8-byte load, as VPP writes them.
    fn read_u64(&self, offset: usize) -> Option<u64> {
        let end = offset.checked_add(8)?;
        if end > self.len {
            return None;
        }
        let at = self.ptr.as_ptr().wrapping_add(offset);
        if at.align_offset(8) != 0 {
            let mut raw = [0u8; 8];
            return self.read(offset, &mut raw).then(|| u64::from_ne_bytes(raw));
        }
        // SAFETY: in range (checked above) and 8-byte aligned.
        Some(unsafe { ptr::read_volatile(at.cast::<u64>()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_a_file_and_reads_within_bounds_only() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..64u8).collect();
        file.write_all(&bytes).unwrap();
        let map = Mapping::map(OwnedFd::from(file)).unwrap();
        assert_eq!(map.size(), 64);
        assert_eq!(
            map.read_u64(8),
            Some(u64::from_ne_bytes([8, 9, 10, 11, 12, 13, 14, 15]))
        );
        assert_eq!(
            map.read_u64(3),
            Some(u64::from_ne_bytes([3, 4, 5, 6, 7, 8, 9, 10]))
        );
        assert_eq!(map.read_u64(57), None);
        assert_eq!(map.read_u32(usize::MAX), None);
        let mut buf = [0u8; 4];
        assert!(map.read(60, &mut buf));
        assert_eq!(buf, [60, 61, 62, 63]);
        assert!(!map.read(61, &mut buf));
    }

    #[test]
    fn refuses_files_smaller_than_the_header() {
        let file = tempfile::tempfile().unwrap();
        assert!(matches!(
            Mapping::map(OwnedFd::from(file)),
            Err(ShmError::BadSize(0))
        ));
    }

    #[test]
    fn connect_to_a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            receive_segment_fd(&dir.path().join("stats.sock"), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ShmError::Connect { .. }), "{err}");
    }
}
