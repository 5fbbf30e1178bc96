//! A VPP stats segment double (docs/vpp-wire.md §4): a memfd laid out exactly like VPP's segment
//! (shared header v2, 144-byte directory entries, VPP vectors with their 8-byte header,
//! fake VPP base address), served over a `SOCK_SEQPACKET` socket that sends the fd with
//! `SCM_RIGHTS` to each client and closes, as VPP does.
//!
//! Writes follow VPP's rules: counter values are updated in place (no epoch change);
//! structural changes (new entries, longer counter vectors) take the lock: `in_progress
//! = 1`, change, `epoch += 1`, `in_progress = 0`. Independent of the crate's reader and
//! of `vpp_double.rs`; start it beside a `VppDouble`.

use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use socket2::{Domain, SockAddr, Socket, Type};

/// lb's per-VIP simple counter names (docs/vpp-wire.md §4.6).
pub const LB_NEXT: &str = "packet from existing sessions";
pub const LB_FIRST: &str = "first session packet";
pub const LB_UNTRACKED: &str = "untracked packet";
pub const LB_NO_SERVER: &str = "no server configured";
pub const ROUTE_TO: &str = "/net/route/to";
pub const BOOTTIME: &str = "/sys/boottime";
pub const HEARTBEAT: &str = "/sys/heartbeat";

const SEGMENT_SIZE: u64 = 4 << 20;
const HEAP_START: u64 = 64;
const ENTRY_LEN: usize = 144;
const NAME_LEN: usize = 128;

const SCALAR: u32 = 1;
const SIMPLE: u32 = 2;
const COMBINED: u32 = 3;
const NAME_VECTOR: u32 = 4;
const EMPTY: u32 = 5;
const SYMLINK: u32 = 6;

/// One of lb's four per-VIP counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipCounter {
    Next,
    First,
    Untracked,
    NoServer,
}

impl VipCounter {
    pub fn name(self) -> &'static str {
        match self {
            VipCounter::Next => LB_NEXT,
            VipCounter::First => LB_FIRST,
            VipCounter::Untracked => LB_UNTRACKED,
            VipCounter::NoServer => LB_NO_SERVER,
        }
    }
}

enum Model {
    Scalar,
    /// Values per thread, and the data pointer of each thread's vector.
    Simple {
        values: Vec<Vec<u64>>,
        ptrs: Vec<u64>,
    },
    Combined {
        values: Vec<Vec<(u64, u64)>>,
        ptrs: Vec<u64>,
    },
    Names,
    Symlink,
    Empty,
}

struct Entry {
    name: String,
    kind: u32,
    value: u64,
    model: Model,
}

/// One VPP "instance": its memfd, fake base address, bump heap and directory.
struct Segment {
    file: File,
    base: u64,
    next_free: u64,
    epoch: u64,
    dir_ptr: u64,
    entries: Vec<Entry>,
    boottime: u64,
}

impl Segment {
    fn create(boottime: u64) -> io::Result<Self> {
        // SAFETY: memfd_create with a NUL-terminated name; the fd is owned right away.
        let fd = unsafe { libc::memfd_create(c"maglev-stats-double".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by memfd_create and is not owned elsewhere.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(SEGMENT_SIZE)?;
        // A page-aligned fake VPP address, different for every instance.
        let base = 0x7f00_0000_0000 + u64::from(rand::random::<u16>()) * 0x10_0000;
        let mut seg = Self {
            file,
            base,
            next_free: HEAP_START,
            epoch: 0,
            dir_ptr: 0,
            entries: Vec::new(),
            boottime,
        };
        seg.write_u64(0, 2)?; // version
        seg.write_u64(8, base)?;
        seg.publish_directory()?;
        Ok(seg)
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    fn write_u64(&self, offset: u64, v: u64) -> io::Result<()> {
        self.write_at(offset, &v.to_ne_bytes())
    }

    fn offset(&self, ptr: u64) -> u64 {
        ptr - self.base
    }

    /// Allocates a VPP vector of `len` elements of `elem` bytes; returns its data pointer.
    fn alloc_vec(&mut self, len: usize, elem: usize) -> io::Result<u64> {
        let header = (self.next_free + 7) & !7;
        let data = header + 8;
        let end = data + (len * elem) as u64;
        if end + 64 > SEGMENT_SIZE {
            return Err(io::Error::other("stats double segment full"));
        }
        let mut vec_header = [0u8; 8];
        vec_header[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        vec_header[4] = 8; // hdr_size
        vec_header[5] = 8; // align
        self.write_at(header, &vec_header)?;
        self.next_free = end;
        Ok(self.base + data)
    }

    fn write_u64_vec(&mut self, values: &[u64]) -> io::Result<u64> {
        let ptr = self.alloc_vec(values.len(), 8)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.write_at(self.offset(ptr), &bytes)?;
        Ok(ptr)
    }

    fn set_in_progress(&self, on: bool) -> io::Result<()> {
        self.write_u64(24, u64::from(on))
    }

    fn bump_epoch(&mut self) -> io::Result<()> {
        self.epoch += 1;
        self.write_u64(16, self.epoch)
    }

    /// Runs a structural change under VPP's lock protocol.
    fn locked(&mut self, change: impl FnOnce(&mut Self) -> io::Result<()>) -> io::Result<()> {
        self.set_in_progress(true)?;
        change(self)?;
        self.bump_epoch()?;
        self.set_in_progress(false)
    }

    fn entry_bytes(e: &Entry) -> [u8; ENTRY_LEN] {
        let mut raw = [0u8; ENTRY_LEN];
        raw[..4].copy_from_slice(&e.kind.to_ne_bytes());
        raw[8..16].copy_from_slice(&e.value.to_ne_bytes());
        let name = e.name.as_bytes();
        let n = name.len().min(NAME_LEN - 1);
        raw[16..16 + n].copy_from_slice(&name[..n]);
        raw
    }

    /// Writes a fresh directory vector and points the header at it.
    fn publish_directory(&mut self) -> io::Result<()> {
        let ptr = self.alloc_vec(self.entries.len(), ENTRY_LEN)?;
        let bytes: Vec<u8> = self.entries.iter().flat_map(Self::entry_bytes).collect();
        self.write_at(self.offset(ptr), &bytes)?;
        self.dir_ptr = ptr;
        self.write_u64(32, ptr)
    }

    fn rewrite_entry(&self, index: usize) -> io::Result<()> {
        let at = self.offset(self.dir_ptr) + (index * ENTRY_LEN) as u64;
        self.write_at(at, &Self::entry_bytes(&self.entries[index]))
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.name == name && e.kind != EMPTY)
    }

    fn add_entry(&mut self, entry: Entry) -> io::Result<usize> {
        self.locked(|s| {
            s.entries.push(entry);
            s.publish_directory()
        })?;
        Ok(self.entries.len() - 1)
    }

    fn set_scalar(&mut self, name: &str, v: u64) -> io::Result<()> {
        match self.find(name) {
            Some(i) => {
                self.entries[i].value = v;
                self.rewrite_entry(i)
            }
            None => self
                .add_entry(Entry {
                    name: name.to_string(),
                    kind: SCALAR,
                    value: v,
                    model: Model::Scalar,
                })
                .map(|_| ()),
        }
    }

    /// (Re)writes the per-thread vectors of a counter entry: new vectors + new thread
    /// vector, swapped into the entry under the lock.
    fn republish_counter(&mut self, i: usize) -> io::Result<()> {
        self.locked(|s| {
            let (ptrs, value) = match &s.entries[i].model {
                Model::Simple { values, .. } => {
                    let values = values.clone();
                    let mut ptrs = Vec::new();
                    for t in &values {
                        ptrs.push(s.write_u64_vec(t)?);
                    }
                    let thread_vec = s.write_u64_vec(&ptrs)?;
                    (ptrs, thread_vec)
                }
                Model::Combined { values, .. } => {
                    let values = values.clone();
                    let mut ptrs = Vec::new();
                    for t in &values {
                        let flat: Vec<u64> = t.iter().flat_map(|(p, b)| [*p, *b]).collect();
                        let ptr = s.alloc_vec(t.len(), 16)?;
                        let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_ne_bytes()).collect();
                        s.write_at(s.offset(ptr), &bytes)?;
                        ptrs.push(ptr);
                    }
                    let thread_vec = s.write_u64_vec(&ptrs)?;
                    (ptrs, thread_vec)
                }
                _ => return Err(io::Error::other("not a counter")),
            };
            match &mut s.entries[i].model {
                Model::Simple { ptrs: p, .. } | Model::Combined { ptrs: p, .. } => *p = ptrs,
                _ => {}
            }
            s.entries[i].value = value;
            s.rewrite_entry(i)
        })
    }

    fn counter_index(&mut self, name: &str, kind: u32, threads: usize) -> io::Result<usize> {
        if let Some(i) = self.find(name) {
            return Ok(i);
        }
        let model = if kind == SIMPLE {
            Model::Simple {
                values: vec![Vec::new(); threads],
                ptrs: Vec::new(),
            }
        } else {
            Model::Combined {
                values: vec![Vec::new(); threads],
                ptrs: Vec::new(),
            }
        };
        let i = self.add_entry(Entry {
            name: name.to_string(),
            kind,
            value: 0,
            model,
        })?;
        self.republish_counter(i)?;
        Ok(i)
    }

    /// Makes `index` valid on every thread (VPP's `vlib_validate_*_counter`).
    fn validate(&mut self, i: usize, index: usize) -> io::Result<()> {
        let grow = match &mut self.entries[i].model {
            Model::Simple { values, .. } => {
                let grow = values.iter().any(|t| t.len() <= index);
                for t in values.iter_mut().filter(|t| t.len() <= index) {
                    t.resize(index + 1, 0);
                }
                grow
            }
            Model::Combined { values, .. } => {
                let grow = values.iter().any(|t| t.len() <= index);
                for t in values.iter_mut().filter(|t| t.len() <= index) {
                    t.resize(index + 1, (0, 0));
                }
                grow
            }
            _ => false,
        };
        if grow {
            self.republish_counter(i)?;
        }
        Ok(())
    }

    /// Adds to a simple counter in place (validating the index first).
    fn add_simple(
        &mut self,
        name: &str,
        threads: usize,
        thread: usize,
        index: usize,
        delta: u64,
    ) -> io::Result<()> {
        let i = self.counter_index(name, SIMPLE, threads)?;
        self.validate(i, index)?;
        let (value, ptr) = match &mut self.entries[i].model {
            Model::Simple { values, ptrs } => {
                let v = &mut values[thread][index];
                *v = v.wrapping_add(delta);
                (*v, ptrs[thread])
            }
            _ => return Err(io::Error::other("not a simple counter")),
        };
        self.write_u64(self.offset(ptr) + (index * 8) as u64, value)
    }

    fn add_combined(
        &mut self,
        name: &str,
        threads: usize,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> io::Result<()> {
        let i = self.counter_index(name, COMBINED, threads)?;
        self.validate(i, index)?;
        let ((p, b), ptr) = match &mut self.entries[i].model {
            Model::Combined { values, ptrs } => {
                let v = &mut values[thread][index];
                v.0 = v.0.wrapping_add(packets);
                v.1 = v.1.wrapping_add(bytes);
                (*v, ptrs[thread])
            }
            _ => return Err(io::Error::other("not a combined counter")),
        };
        let at = self.offset(ptr) + (index * 16) as u64;
        self.write_u64(at, p)?;
        self.write_u64(at + 8, b)
    }

    fn set_names(&mut self, name: &str, names: &[Option<&str>]) -> io::Result<()> {
        let mut ptrs = Vec::new();
        for n in names {
            ptrs.push(match n {
                Some(s) => {
                    let mut bytes = s.as_bytes().to_vec();
                    bytes.push(0);
                    let ptr = self.alloc_vec(bytes.len(), 1)?;
                    self.write_at(self.offset(ptr), &bytes)?;
                    ptr
                }
                None => 0,
            });
        }
        let vec = self.write_u64_vec(&ptrs)?;
        match self.find(name) {
            Some(i) => self.locked(|s| {
                s.entries[i].value = vec;
                s.rewrite_entry(i)
            }),
            None => self
                .add_entry(Entry {
                    name: name.to_string(),
                    kind: NAME_VECTOR,
                    value: vec,
                    model: Model::Names,
                })
                .map(|_| ()),
        }
    }

    fn add_symlink(&mut self, name: &str, target: &str, element: u32) -> io::Result<()> {
        let target = self
            .find(target)
            .ok_or_else(|| io::Error::other("no such symlink target"))?;
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&(target as u32).to_ne_bytes());
        raw[4..].copy_from_slice(&element.to_ne_bytes());
        self.add_entry(Entry {
            name: name.to_string(),
            kind: SYMLINK,
            value: u64::from_ne_bytes(raw),
            model: Model::Symlink,
        })
        .map(|_| ())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let i = self
            .find(name)
            .ok_or_else(|| io::Error::other("no such entry"))?;
        self.locked(|s| {
            s.entries[i].kind = EMPTY;
            s.entries[i].value = 0;
            s.entries[i].model = Model::Empty;
            s.entries[i].name.clear();
            s.rewrite_entry(i)
        })
    }
}

struct State {
    segment: Segment,
    listener: Option<Socket>,
    threads: usize,
    served: usize,
}

/// The stats segment double. Dropping it stops serving and removes the socket.
pub struct StatsDouble {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn bind(path: &Path) -> io::Result<Socket> {
    let _ = std::fs::remove_file(path);
    let sock = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
    sock.bind(&SockAddr::unix(path)?)?;
    sock.listen(16)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Sends `fd` with `SCM_RIGHTS` and a zero-length payload, as VPP does.
fn send_fd(conn: &Socket, fd: &File) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is its empty state. The control buffer is
    // 64 bytes and 8-aligned, enough for CMSG_SPACE(sizeof(int)); the CMSG_* macros stay
    // within msg_controllen.
    unsafe {
        let mut msg: libc::msghdr = zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
        if libc::sendmsg(conn.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn serve(state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let accepted = st.listener.as_ref().map(|l| l.accept());
            if let Some(Ok((conn, _))) = accepted {
                if send_fd(&conn, &st.segment.file).is_ok() {
                    st.served += 1;
                }
                // VPP closes the connection right after sending the fd.
                continue;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl StatsDouble {
    /// Serves a fresh segment at `dir/stats.sock` with 2 VPP threads.
    pub fn start(dir: &Path) -> io::Result<Self> {
        Self::with_threads(dir, 2)
    }

    pub fn with_threads(dir: &Path, threads: usize) -> io::Result<Self> {
        let path = dir.join("stats.sock");
        let mut segment = Segment::create(now_unix())?;
        let boottime = segment.boottime;
        segment.set_scalar(BOOTTIME, boottime)?;
        segment.set_scalar(HEARTBEAT, 1)?;
        let state = Arc::new(Mutex::new(State {
            segment,
            listener: Some(bind(&path)?),
            threads,
            served: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || serve(state, stop))
        };
        Ok(Self {
            path,
            state,
            stop,
            server: Some(server),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// `/sys/boottime` of the current instance.
    pub fn boottime(&self) -> u64 {
        self.state().segment.boottime
    }

    pub fn epoch(&self) -> u64 {
        self.state().segment.epoch
    }

    /// How many clients were sent the fd.
    pub fn served(&self) -> usize {
        self.state().served
    }

    pub fn set_scalar(&self, name: &str, v: u64) -> io::Result<()> {
        self.state().segment.set_scalar(name, v)
    }

    /// Adds `delta` to a simple counter (created and validated as VPP does).
    pub fn add_simple(
        &self,
        name: &str,
        thread: usize,
        index: usize,
        delta: u64,
    ) -> io::Result<()> {
        let mut st = self.state();
        let threads = st.threads;
        st.segment.add_simple(name, threads, thread, index, delta)
    }

    pub fn add_combined(
        &self,
        name: &str,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> io::Result<()> {
        let mut st = self.state();
        let threads = st.threads;
        st.segment
            .add_combined(name, threads, thread, index, packets, bytes)
    }

    pub fn set_names(&self, name: &str, names: &[Option<&str>]) -> io::Result<()> {
        self.state().segment.set_names(name, names)
    }

    pub fn add_symlink(&self, name: &str, target: &str, element: u32) -> io::Result<()> {
        self.state().segment.add_symlink(name, target, element)
    }

    /// Deletes an entry (its slot becomes EMPTY, like VPP).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        self.state().segment.remove(name)
    }

    /// What the lb plugin does on VIP add: validates all four counters for the index.
    pub fn add_vip(&self, vip_index: usize) -> io::Result<()> {
        for c in [
            VipCounter::Next,
            VipCounter::First,
            VipCounter::Untracked,
            VipCounter::NoServer,
        ] {
            self.add_simple(c.name(), 0, vip_index, 0)?;
        }
        Ok(())
    }

    pub fn count_vip(
        &self,
        vip_index: usize,
        thread: usize,
        counter: VipCounter,
        packets: u64,
    ) -> io::Result<()> {
        self.add_simple(counter.name(), thread, vip_index, packets)
    }

    /// `flows` new flows of `packets_per_flow` packets of `packet_len` bytes to a VIP on
    /// one thread: the first packet of each flow is "first session packet", the rest
    /// "packet from existing sessions"; all of them pass the VIP's FIB entry.
    pub fn send_flows(
        &self,
        vip_index: usize,
        route_index: usize,
        thread: usize,
        flows: u64,
        packets_per_flow: u64,
        packet_len: u64,
    ) -> io::Result<()> {
        let packets = flows * packets_per_flow;
        self.count_vip(vip_index, thread, VipCounter::First, flows)?;
        self.count_vip(
            vip_index,
            thread,
            VipCounter::Next,
            packets.saturating_sub(flows),
        )?;
        self.add_combined(ROUTE_TO, thread, route_index, packets, packets * packet_len)
    }

    /// Adds to `/net/route/to[route_index]` on `thread`.
    pub fn count_route(
        &self,
        route_index: usize,
        thread: usize,
        packets: u64,
        bytes: u64,
    ) -> io::Result<()> {
        self.add_combined(ROUTE_TO, thread, route_index, packets, bytes)
    }

    /// An epoch change without a structural change.
    pub fn bump_epoch(&self) -> io::Result<()> {
        self.state().segment.bump_epoch()
    }

    /// Holds (or releases) VPP's `in_progress` flag.
    pub fn set_in_progress(&self, on: bool) -> io::Result<()> {
        self.state().segment.set_in_progress(on)
    }

    /// VPP restarts: the socket is removed and re-created (new inode), a new empty
    /// segment with a new base and a later `/sys/boottime` is served.
    pub fn restart(&self) -> io::Result<()> {
        let mut st = self.state();
        st.listener = None;
        let boottime = now_unix().max(st.segment.boottime + 1);
        let mut segment = Segment::create(boottime)?;
        segment.set_scalar(BOOTTIME, boottime)?;
        segment.set_scalar(HEARTBEAT, 1)?;
        st.segment = segment;
        st.listener = Some(bind(&self.path)?);
        Ok(())
    }

    /// VPP exits: the socket file is unlinked, nobody answers.
    pub fn stop(&self) {
        self.state().listener = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for StatsDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
