//! A synthetic-segment builder for unit tests, laid out like VPP's (docs/vpp-wire.md §4.2).

use super::segment::{DIR_ENTRY_LEN, SUPPORTED_VERSION};

pub const BASE: u64 = 0x7f12_3400_0000;

/// Builds a segment in a byte vector: bump allocation of VPP vectors after the header.
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Self { buf: vec![0; 64] }
    }

    pub fn ptr(offset: usize) -> u64 {
        BASE + offset as u64
    }

    /// A VPP vector: 8-byte `vec_header_t` (len first), then the data; returns its pointer.
    pub fn vec(&mut self, len: usize, data: &[u8]) -> u64 {
        while !self.buf.len().is_multiple_of(8) {
            self.buf.push(0);
        }
        self.buf.extend_from_slice(&(len as u32).to_ne_bytes());
        self.buf.extend_from_slice(&[8, 8, 0, 0]);
        let at = self.buf.len();
        self.buf.extend_from_slice(data);
        Self::ptr(at)
    }

    pub fn u64s(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    pub fn simple(&mut self, threads: &[&[u64]]) -> u64 {
        let ptrs: Vec<u64> = threads
            .iter()
            .map(|t| self.vec(t.len(), &Self::u64s(t)))
            .collect();
        self.vec(ptrs.len(), &Self::u64s(&ptrs))
    }

    pub fn combined(&mut self, threads: &[&[(u64, u64)]]) -> u64 {
        let ptrs: Vec<u64> = threads
            .iter()
            .map(|t| {
                let flat: Vec<u64> = t.iter().flat_map(|(p, b)| [*p, *b]).collect();
                self.vec(t.len(), &Self::u64s(&flat))
            })
            .collect();
        self.vec(ptrs.len(), &Self::u64s(&ptrs))
    }

    pub fn names(&mut self, names: &[Option<&str>]) -> u64 {
        let ptrs: Vec<u64> = names
            .iter()
            .map(|n| match n {
                Some(s) => {
                    let mut bytes = s.as_bytes().to_vec();
                    bytes.push(0);
                    self.vec(bytes.len(), &bytes)
                }
                None => 0,
            })
            .collect();
        self.vec(ptrs.len(), &Self::u64s(&ptrs))
    }

    pub fn finish(mut self, entries: &[(u32, u64, &str)]) -> Vec<u8> {
        let mut dir = Vec::new();
        for (kind, value, name) in entries {
            let mut e = [0u8; DIR_ENTRY_LEN];
            e[..4].copy_from_slice(&kind.to_ne_bytes());
            e[8..16].copy_from_slice(&value.to_ne_bytes());
            e[16..16 + name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&e);
        }
        let dir_ptr = self.vec(entries.len(), &dir);
        self.buf.extend_from_slice(&[0; 64]);
        let header = [SUPPORTED_VERSION, BASE, 7, 0, dir_ptr];
        self.buf[..40].copy_from_slice(&Self::u64s(&header));
        self.buf
    }
}

pub fn link(index1: u32, index2: u32) -> u64 {
    let mut raw = [0u8; 8];
    raw[..4].copy_from_slice(&index1.to_ne_bytes());
    raw[4..].copy_from_slice(&index2.to_ne_bytes());
    u64::from_ne_bytes(raw)
}
