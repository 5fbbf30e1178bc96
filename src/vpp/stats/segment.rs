//! Pure reader of VPP's stats segment layout (docs/vpp-wire.md §4.2–§4.4), over any
//! [`SegmentMemory`]. The segment is written by another process and may be corrupt or
//! hostile: every VPP pointer is translated through the header's `base` and checked
//! against the segment size, every vector length is capped, symlink chains are bounded,
//! and any violation is a [`SegmentError`], never a panic or an out-of-range read.

use std::collections::HashSet;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use super::memory::SegmentMemory;

/// The only layout version we read (VPP ≥ 20.09).
pub const SUPPORTED_VERSION: u64 = 2;
/// `vlib_stats_shared_header_t`: version, base, epoch, in_progress, directory_vector.
pub const SHARED_HEADER_LEN: usize = 40;
/// `vlib_stats_entry_t`: `u32 type`, 4 pad, 8-byte union, `char name[128]`.
pub const DIR_ENTRY_LEN: usize = 144;
pub const DIR_NAME_LEN: usize = 128;
const DIR_VALUE_OFFSET: usize = 8;
const DIR_NAME_OFFSET: usize = 16;
/// `vec_header_t` precedes vector data; the `u32` length sits at `data - 8`.
pub const VEC_HEADER_LEN: usize = 8;
/// Sanity cap on any vector length read from the segment (elements).
pub const MAX_VEC_LEN: usize = 1 << 24;
/// Sanity cap on the number of threads of a counter.
pub const MAX_THREADS: usize = 4096;
/// Longest symlink chain followed (VPP itself never links to a link).
pub const MAX_SYMLINK_HOPS: usize = 8;

/// Why the segment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("stats segment of {size} bytes is smaller than its {needed}-byte header")]
    TooSmall { size: usize, needed: usize },
    #[error("unsupported stats segment version {0} (need {SUPPORTED_VERSION})")]
    UnsupportedVersion(u64),
    #[error("null pointer for {what}")]
    NullPointer { what: &'static str },
    #[error("{what} pointer {ptr:#x} (+{len} bytes) lies outside the segment")]
    OutOfRange {
        what: &'static str,
        ptr: u64,
        len: u64,
    },
    #[error("{what} vector claims {len} elements (cap {MAX_VEC_LEN})")]
    VectorTooLong { what: &'static str, len: usize },
    #[error("{what} has {threads} threads (cap {MAX_THREADS})")]
    TooManyThreads { what: &'static str, threads: usize },
    #[error("directory index {index} out of range ({len} entries)")]
    NoSuchEntry { index: usize, len: usize },
    #[error("symlink {name:?} loops or chains more than {MAX_SYMLINK_HOPS} times")]
    SymlinkCycle { name: String },
    #[error("symlink {name:?} points at an entry of type {target:?}, not a counter")]
    BadSymlinkTarget { name: String, target: EntryType },
    #[error("entry {name:?} is {found:?}, expected {expected}")]
    WrongType {
        name: String,
        expected: &'static str,
        found: EntryType,
    },
    #[error("stats segment stayed {} for {attempts} attempts", if *.in_progress { "locked (in_progress)" } else { "in flux (epoch changing)" })]
    Unstable { attempts: u32, in_progress: bool },
}

/// `stat_directory_type_t` of VPP ≥ 22.06 (docs/vpp-wire.md §4.3). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    Illegal,
    Scalar,
    CounterVectorSimple,
    CounterVectorCombined,
    NameVector,
    Empty,
    Symlink,
    HistogramLog2,
    RingBuffer,
    Gauge,
    Unknown(u32),
}

impl From<u32> for EntryType {
    fn from(v: u32) -> Self {
        match v {
            0 => EntryType::Illegal,
            1 => EntryType::Scalar,
            2 => EntryType::CounterVectorSimple,
            3 => EntryType::CounterVectorCombined,
            4 => EntryType::NameVector,
            5 => EntryType::Empty,
            6 => EntryType::Symlink,
            7 => EntryType::HistogramLog2,
            8 => EntryType::RingBuffer,
            9 => EntryType::Gauge,
            other => EntryType::Unknown(other),
        }
    }
}

/// The shared header at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedHeader {
    pub version: u64,
    /// VPP's virtual address of the segment start: `offset = ptr - base`.
    pub base: u64,
    pub epoch: u64,
    pub in_progress: u64,
    pub directory: u64,
}

/// One directory entry, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub index: usize,
    pub kind: EntryType,
    /// The 8-byte union: scalar value, data pointer, or `index1 | index2 << 32`.
    pub value: u64,
    pub name: String,
}

impl DirEntry {
    /// Symlink target entry and element (`index1`, `index2`).
    pub fn symlink_target(&self) -> (usize, usize) {
        let raw = self.value.to_ne_bytes();
        let index1 = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let index2 = u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]);
        (index1 as usize, index2 as usize)
    }
}

/// `vlib_counter_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CombinedCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// A copied-out entry value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatValue {
    /// Scalar or gauge.
    Scalar(u64),
    /// `[thread][index]`.
    Simple(Vec<Vec<u64>>),
    /// `[thread][index]`.
    Combined(Vec<Vec<CombinedCounter>>),
    /// Names; `None` where VPP holds a NULL pointer.
    Names(Vec<Option<String>>),
    /// A symlink to one element of a simple counter: its value per thread.
    SimpleColumn(Vec<u64>),
    /// A symlink to one element of a combined counter: its value per thread.
    CombinedColumn(Vec<CombinedCounter>),
    /// A type this reader does not decode (histogram, ring buffer, unknown).
    Unsupported(EntryType),
}

/// A bounds-checked vector: offset of element 0 and element count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VecRef {
    pub offset: usize,
    pub len: usize,
}

/// A view of a segment: typed, checked reads at VPP addresses.
pub struct Segment<'m, M: SegmentMemory + ?Sized> {
    mem: &'m M,
}

impl<'m, M: SegmentMemory + ?Sized> Segment<'m, M> {
    pub fn new(mem: &'m M) -> Self {
        Self { mem }
    }

    fn u64_at(&self, offset: usize, what: &'static str) -> Result<u64, SegmentError> {
        self.mem.read_u64(offset).ok_or(SegmentError::OutOfRange {
            what,
            ptr: offset as u64,
            len: 8,
        })
    }

    fn u32_at(&self, offset: usize, what: &'static str) -> Result<u32, SegmentError> {
        self.mem.read_u32(offset).ok_or(SegmentError::OutOfRange {
            what,
            ptr: offset as u64,
            len: 4,
        })
    }

    /// The shared header, any version.
    pub fn header(&self) -> Result<SharedHeader, SegmentError> {
        if self.mem.size() < SHARED_HEADER_LEN {
            return Err(SegmentError::TooSmall {
                size: self.mem.size(),
                needed: SHARED_HEADER_LEN,
            });
        }
        let h = SharedHeader {
            version: self.u64_at(0, "header")?,
            base: self.u64_at(8, "header")?,
            epoch: self.u64_at(16, "header")?,
            in_progress: self.u64_at(24, "header")?,
            directory: self.u64_at(32, "header")?,
        };
        // Data read after this must not be reordered before the epoch load.
        fence(Ordering::Acquire);
        Ok(h)
    }

    /// The shared header, refusing versions other than [`SUPPORTED_VERSION`].
    pub fn checked_header(&self) -> Result<SharedHeader, SegmentError> {
        let h = self.header()?;
        if h.version != SUPPORTED_VERSION {
            return Err(SegmentError::UnsupportedVersion(h.version));
        }
        Ok(h)
    }

    /// Offset of `len` bytes at VPP address `ptr`, checked to lie inside the segment.
    pub fn translate(
        &self,
        h: &SharedHeader,
        ptr: u64,
        len: u64,
        what: &'static str,
    ) -> Result<usize, SegmentError> {
        if ptr == 0 {
            return Err(SegmentError::NullPointer { what });
        }
        let out = SegmentError::OutOfRange { what, ptr, len };
        let offset = ptr.checked_sub(h.base).ok_or(out.clone())?;
        let end = offset.checked_add(len).ok_or(out.clone())?;
        if end > self.mem.size() as u64 {
            return Err(out);
        }
        usize::try_from(offset).map_err(|_| out)
    }

    /// The VPP vector at `ptr` with elements of `elem_size` bytes, checked in full.
    pub fn vector(
        &self,
        h: &SharedHeader,
        ptr: u64,
        elem_size: usize,
        what: &'static str,
    ) -> Result<VecRef, SegmentError> {
        let offset = self.translate(h, ptr, 0, what)?;
        let len_at = offset
            .checked_sub(VEC_HEADER_LEN)
            .ok_or(SegmentError::OutOfRange {
                what,
                ptr,
                len: VEC_HEADER_LEN as u64,
            })?;
        let len = self.u32_at(len_at, what)? as usize;
        if len > MAX_VEC_LEN {
            return Err(SegmentError::VectorTooLong { what, len });
        }
        // len <= 2^24 and elem_size is small: no overflow in u64.
        self.translate(h, ptr, (len * elem_size) as u64, what)?;
        Ok(VecRef { offset, len })
    }

    /// The directory vector.
    pub fn directory(&self, h: &SharedHeader) -> Result<VecRef, SegmentError> {
        self.vector(h, h.directory, DIR_ENTRY_LEN, "directory")
    }

    /// Entry `index` of the directory.
    pub fn entry(&self, dir: VecRef, index: usize) -> Result<DirEntry, SegmentError> {
        if index >= dir.len {
            return Err(SegmentError::NoSuchEntry {
                index,
                len: dir.len,
            });
        }
        let at = dir.offset + index * DIR_ENTRY_LEN;
        let kind = EntryType::from(self.u32_at(at, "directory entry")?);
        let value = self.u64_at(at + DIR_VALUE_OFFSET, "directory entry")?;
        let mut raw = [0u8; DIR_NAME_LEN];
        if !self.mem.read(at + DIR_NAME_OFFSET, &mut raw) {
            return Err(SegmentError::OutOfRange {
                what: "directory entry",
                ptr: at as u64,
                len: DIR_ENTRY_LEN as u64,
            });
        }
        Ok(DirEntry {
            index,
            kind,
            value,
            name: c_string(&raw),
        })
    }

    /// Every directory entry.
    pub fn entries(&self, h: &SharedHeader) -> Result<Vec<DirEntry>, SegmentError> {
        let dir = self.directory(h)?;
        (0..dir.len).map(|i| self.entry(dir, i)).collect()
    }

    /// Per-thread data vectors of a counter (`ptr -> vec[threads] of ptr`). A NULL
    /// thread pointer is an empty thread.
    fn thread_vectors(
        &self,
        h: &SharedHeader,
        ptr: u64,
        elem_size: usize,
        what: &'static str,
    ) -> Result<Vec<VecRef>, SegmentError> {
        let threads = self.vector(h, ptr, 8, what)?;
        if threads.len > MAX_THREADS {
            return Err(SegmentError::TooManyThreads {
                what,
                threads: threads.len,
            });
        }
        (0..threads.len)
            .map(|t| {
                let p = self.u64_at(threads.offset + t * 8, what)?;
                if p == 0 {
                    Ok(VecRef { offset: 0, len: 0 })
                } else {
                    self.vector(h, p, elem_size, what)
                }
            })
            .collect()
    }

    fn combined_at(&self, v: VecRef, index: usize) -> Result<CombinedCounter, SegmentError> {
        let at = v.offset + index * 16;
        Ok(CombinedCounter {
            packets: self.u64_at(at, "combined counter")?,
            bytes: self.u64_at(at + 8, "combined counter")?,
        })
    }

    /// A whole simple counter, `[thread][index]`.
    pub fn simple(&self, h: &SharedHeader, ptr: u64) -> Result<Vec<Vec<u64>>, SegmentError> {
        self.thread_vectors(h, ptr, 8, "simple counter")?
            .into_iter()
            .map(|v| {
                (0..v.len)
                    .map(|i| self.u64_at(v.offset + i * 8, "simple counter"))
                    .collect()
            })
            .collect()
    }

    /// A whole combined counter, `[thread][index]`.
    pub fn combined(
        &self,
        h: &SharedHeader,
        ptr: u64,
    ) -> Result<Vec<Vec<CombinedCounter>>, SegmentError> {
        self.thread_vectors(h, ptr, 16, "combined counter")?
            .into_iter()
            .map(|v| (0..v.len).map(|i| self.combined_at(v, i)).collect())
            .collect()
    }

    /// Element `index` of a simple counter on each thread (0 where a thread's vector is
    /// shorter: VPP has not validated that index yet, so nothing was counted).
    pub fn simple_column(
        &self,
        h: &SharedHeader,
        ptr: u64,
        index: usize,
    ) -> Result<Vec<u64>, SegmentError> {
        self.thread_vectors(h, ptr, 8, "simple counter")?
            .into_iter()
            .map(|v| {
                if index < v.len {
                    self.u64_at(v.offset + index * 8, "simple counter")
                } else {
                    Ok(0)
                }
            })
            .collect()
    }

    /// Element `index` of a combined counter on each thread (zero where absent).
    pub fn combined_column(
        &self,
        h: &SharedHeader,
        ptr: u64,
        index: usize,
    ) -> Result<Vec<CombinedCounter>, SegmentError> {
        self.thread_vectors(h, ptr, 16, "combined counter")?
            .into_iter()
            .map(|v| {
                if index < v.len {
                    self.combined_at(v, index)
                } else {
                    Ok(CombinedCounter::default())
                }
            })
            .collect()
    }

    /// Sums over threads of several elements of a simple counter, reading the thread
    /// vector once.
    pub fn simple_sums(
        &self,
        h: &SharedHeader,
        ptr: u64,
        indexes: &[u32],
    ) -> Result<Vec<u64>, SegmentError> {
        let mut sums = vec![0u64; indexes.len()];
        for v in self.thread_vectors(h, ptr, 8, "simple counter")? {
            for (sum, &index) in sums.iter_mut().zip(indexes) {
                let index = index as usize;
                if index < v.len {
                    *sum = sum.wrapping_add(self.u64_at(v.offset + index * 8, "simple counter")?);
                }
            }
        }
        Ok(sums)
    }

    /// Sums over threads of several elements of a combined counter.
    pub fn combined_sums(
        &self,
        h: &SharedHeader,
        ptr: u64,
        indexes: &[u32],
    ) -> Result<Vec<CombinedCounter>, SegmentError> {
        let mut sums = vec![CombinedCounter::default(); indexes.len()];
        for v in self.thread_vectors(h, ptr, 16, "combined counter")? {
            for (sum, &index) in sums.iter_mut().zip(indexes) {
                let index = index as usize;
                if index < v.len {
                    let c = self.combined_at(v, index)?;
                    sum.packets = sum.packets.wrapping_add(c.packets);
                    sum.bytes = sum.bytes.wrapping_add(c.bytes);
                }
            }
        }
        Ok(sums)
    }

    /// A name vector: pointers to NUL-terminated `u8` vectors (the NUL is counted in
    /// the vector length), NULL for unused slots.
    pub fn names(&self, h: &SharedHeader, ptr: u64) -> Result<Vec<Option<String>>, SegmentError> {
        let names = self.vector(h, ptr, 8, "name vector")?;
        (0..names.len)
            .map(|i| {
                let p = self.u64_at(names.offset + i * 8, "name vector")?;
                if p == 0 {
                    return Ok(None);
                }
                let s = self.vector(h, p, 1, "name")?;
                let mut raw = vec![0u8; s.len];
                if !self.mem.read(s.offset, &mut raw) {
                    return Err(SegmentError::OutOfRange {
                        what: "name",
                        ptr: p,
                        len: s.len as u64,
                    });
                }
                Ok(Some(c_string(&raw)))
            })
            .collect()
    }

    /// The value of a directory entry, following symlinks (bounded, cycles detected).
    pub fn value(
        &self,
        h: &SharedHeader,
        dir: VecRef,
        entry: &DirEntry,
    ) -> Result<StatValue, SegmentError> {
        Ok(match entry.kind {
            EntryType::Scalar | EntryType::Gauge => StatValue::Scalar(entry.value),
            EntryType::CounterVectorSimple => StatValue::Simple(self.simple(h, entry.value)?),
            EntryType::CounterVectorCombined => StatValue::Combined(self.combined(h, entry.value)?),
            EntryType::NameVector => StatValue::Names(self.names(h, entry.value)?),
            EntryType::Symlink => {
                let (target, element) = self.resolve_symlink(dir, entry)?;
                match target.kind {
                    EntryType::CounterVectorSimple => {
                        StatValue::SimpleColumn(self.simple_column(h, target.value, element)?)
                    }
                    _ => {
                        StatValue::CombinedColumn(self.combined_column(h, target.value, element)?)
                    }
                }
            }
            other => StatValue::Unsupported(other),
        })
    }

    /// Follows a symlink to its counter entry and element.
    pub fn resolve_symlink(
        &self,
        dir: VecRef,
        link: &DirEntry,
    ) -> Result<(DirEntry, usize), SegmentError> {
        let mut seen = HashSet::from([link.index]);
        let mut current = link.clone();
        for _ in 0..MAX_SYMLINK_HOPS {
            let (index, element) = current.symlink_target();
            let target = self.entry(dir, index)?;
            match target.kind {
                EntryType::CounterVectorSimple | EntryType::CounterVectorCombined => {
                    return Ok((target, element));
                }
                EntryType::Symlink if seen.insert(target.index) => current = target,
                EntryType::Symlink => break,
                other => {
                    return Err(SegmentError::BadSymlinkTarget {
                        name: link.name.clone(),
                        target: other,
                    });
                }
            }
        }
        Err(SegmentError::SymlinkCycle {
            name: link.name.clone(),
        })
    }
}

/// Text up to the first NUL (lossy UTF-8: VPP names are ASCII).
fn c_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// How long to wait for VPP to finish a structural change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for RetryPolicy {
    /// About 100 ms in total, like govpp's deadline.
    fn default() -> Self {
        Self {
            attempts: 100,
            pause: Duration::from_millis(1),
        }
    }
}

/// Runs `read` under VPP's optimistic lock (docs/vpp-wire.md §4.4): wait while `in_progress`,
/// read, and retry if `in_progress` was set or `epoch` moved meanwhile. Errors seen
/// while the segment was changing are retried too (torn pointers look corrupt); errors
/// on a stable segment are returned as they are. A wrong version is final.
pub fn read_consistent<M, T, F>(
    mem: &M,
    policy: RetryPolicy,
    mut read: F,
) -> Result<T, SegmentError>
where
    M: SegmentMemory + ?Sized,
    F: FnMut(&Segment<'_, M>, &SharedHeader) -> Result<T, SegmentError>,
{
    let seg = Segment::new(mem);
    let mut in_progress = false;
    for attempt in 0..policy.attempts {
        if attempt > 0 && !policy.pause.is_zero() {
            std::thread::sleep(policy.pause);
        }
        let before = seg.checked_header()?;
        if before.in_progress != 0 {
            in_progress = true;
            continue;
        }
        let result = read(&seg, &before);
        fence(Ordering::Acquire);
        let after = seg.header()?;
        if after.in_progress == 0 && after.epoch == before.epoch {
            return result;
        }
        in_progress = after.in_progress != 0;
    }
    Err(SegmentError::Unstable {
        attempts: policy.attempts,
        in_progress,
    })
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
