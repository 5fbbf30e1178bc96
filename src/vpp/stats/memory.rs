//! Where segment bytes come from: a plain byte slice (tests, snapshots) or the live
//! shared mapping (`shm::Mapping`). Every read names an offset and a length and is
//! bounds-checked by the implementation; nothing hands out references into the memory.

/// Read access to the bytes of a stats segment.
pub trait SegmentMemory {
    /// Size of the segment in bytes.
    fn size(&self) -> usize;

    /// Copies `dst.len()` bytes starting at `offset`. Returns `false` (and leaves `dst`
    /// unspecified) if the range is not entirely inside the segment.
    fn read(&self, offset: usize, dst: &mut [u8]) -> bool;

    /// A native-endian `u64` at `offset`. The live mapping overrides this with a single
    /// aligned load, which is VPP's unit of consistency for counter values.
    fn read_u64(&self, offset: usize) -> Option<u64> {
        let mut raw = [0u8; 8];
        self.read(offset, &mut raw).then(|| u64::from_ne_bytes(raw))
    }

    /// A native-endian `u32` at `offset`.
    fn read_u32(&self, offset: usize) -> Option<u32> {
        let mut raw = [0u8; 4];
        self.read(offset, &mut raw).then(|| u32::from_ne_bytes(raw))
    }
}

impl SegmentMemory for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        let Some(src) = offset
            .checked_add(dst.len())
            .and_then(|end| self.get(offset..end))
        else {
            return false;
        };
        dst.copy_from_slice(src);
        true
    }
}

impl SegmentMemory for Vec<u8> {
    fn size(&self) -> usize {
        self.len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        self.as_slice().read(offset, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_bounds_checked() {
        let bytes: Vec<u8> = (0u8..16).collect();
        assert_eq!(bytes.read_u32(0), Some(u32::from_ne_bytes([0, 1, 2, 3])));
        assert_eq!(
            bytes.read_u64(8),
            Some(u64::from_ne_bytes([8, 9, 10, 11, 12, 13, 14, 15]))
        );
        assert_eq!(bytes.read_u64(9), None);
        assert_eq!(bytes.read_u32(usize::MAX - 1), None);
        let mut empty = [0u8; 0];
        assert!(bytes.read(16, &mut empty));
        assert!(!bytes.read(17, &mut empty));
    }
}
