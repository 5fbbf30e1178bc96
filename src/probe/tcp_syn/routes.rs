//! The cache of source addresses the kernel picks towards each backend (pure).
//!
//! Every tcp-syn probe without a configured source looks its backend up here, and each
//! backend is probed only once per interval, so the lookup is a cache miss as often as
//! not: with 10,000 backends the old `HashMap<IpAddr, (IpAddr, Instant)>` (64-byte
//! buckets, SipHash) spent ≈ 2 % of the daemon's CPU on the miss alone. Entries here are
//! 12 bytes for IPv4 (address, source, second stamp) and hashed with one multiply: the
//! keys are backend addresses from the operator's configuration, not outside input.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Known sources, per family, stamped with the second they were looked up.
#[derive(Debug)]
pub struct Known {
    epoch: Instant,
    v4: HashMap<u32, (u32, u32), BuildHasherDefault<AddrHasher>>,
    v6: HashMap<u128, (u128, u32), BuildHasherDefault<AddrHasher>>,
}

impl Known {
    /// How long a looked-up source is trusted (routes and addresses change rarely; at
    /// 10 s the lookups of 10,000 backends still cost ≈ 3.6 % of the daemon's CPU).
    pub const TTL: Duration = Duration::from_secs(30);
    /// Entries kept at most per family; past this that family's cache starts over.
    pub const MAX: usize = 1 << 17;

    pub fn new(epoch: Instant) -> Self {
        Known {
            epoch,
            v4: HashMap::default(),
            v6: HashMap::default(),
        }
    }

    /// Seconds since the epoch (saturating: u32 seconds last 136 years).
    fn stamp(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    fn fresh(&self, at: u32, now: Instant) -> bool {
        u64::from(self.stamp(now).saturating_sub(at)) < Self::TTL.as_secs()
    }

    /// The source looked up towards `addr` less than [`Known::TTL`] before `now`.
    pub fn get(&self, addr: IpAddr, now: Instant) -> Option<IpAddr> {
        match addr {
            IpAddr::V4(a) => {
                let (src, at) = *self.v4.get(&u32::from(a))?;
                self.fresh(at, now).then(|| IpAddr::V4(src.into()))
            }
            IpAddr::V6(a) => {
                let (src, at) = *self.v6.get(&u128::from(a))?;
                self.fresh(at, now).then(|| IpAddr::V6(src.into()))
            }
        }
    }

    /// Remembers `src` towards `addr` as of `now`. A source of the other family (which
    /// the kernel never picks) is not kept.
    pub fn insert(&mut self, addr: IpAddr, src: IpAddr, now: Instant) {
        let at = self.stamp(now);
        match (addr, src) {
            (IpAddr::V4(a), IpAddr::V4(s)) => {
                if self.v4.len() >= Self::MAX {
                    self.v4.clear();
                }
                self.v4.insert(a.into(), (s.into(), at));
            }
            (IpAddr::V6(a), IpAddr::V6(s)) => {
                if self.v6.len() >= Self::MAX {
                    self.v6.clear();
                }
                self.v6.insert(a.into(), (s.into(), at));
            }
            _ => {}
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// One multiply per word (the Fx hash of rustc): the top bits, which pick the bucket's
/// tag, and the low bits, which pick the group, both depend on every bit of the key.
#[derive(Default)]
pub struct AddrHasher(u64);

impl AddrHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits that index the table.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u128(&mut self, n: u128) {
        // Truncations on purpose: the two halves.
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_is_kept_per_address_and_family_until_its_ttl() {
        let t0 = Instant::now();
        let mut k = Known::new(t0);
        k.insert(ip("192.0.2.1"), ip("10.0.0.1"), t0);
        k.insert(ip("2001:db8::1"), ip("2001:db8::ff"), t0);
        assert_eq!(k.get(ip("192.0.2.1"), t0), Some(ip("10.0.0.1")));
        assert_eq!(k.get(ip("2001:db8::1"), t0), Some(ip("2001:db8::ff")));
        assert_eq!(k.get(ip("192.0.2.2"), t0), None);
        // The v4 address's bits as a v6 key are another backend.
        assert_eq!(k.get(ip("::c000:201"), t0), None);
        let almost = t0 + Known::TTL - Duration::from_secs(1);
        assert_eq!(k.get(ip("192.0.2.1"), almost), Some(ip("10.0.0.1")));
        assert_eq!(k.get(ip("192.0.2.1"), t0 + Known::TTL), None);
        assert_eq!(k.get(ip("2001:db8::1"), t0 + Known::TTL), None);
        // Looked up again: fresh again.
        k.insert(ip("192.0.2.1"), ip("10.0.0.2"), t0 + Known::TTL);
        assert_eq!(
            k.get(ip("192.0.2.1"), t0 + Known::TTL),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn a_source_of_the_other_family_is_not_kept() {
        let t0 = Instant::now();
        let mut k = Known::new(t0);
        k.insert(ip("192.0.2.1"), ip("2001:db8::1"), t0);
        assert_eq!(k.get(ip("192.0.2.1"), t0), None);
        assert_eq!(k.len(), 0);
    }

    #[test]
    fn a_full_family_starts_over_and_the_other_stays() {
        let t0 = Instant::now();
        let mut k = Known::new(t0);
        k.insert(ip("2001:db8::1"), ip("2001:db8::ff"), t0);
        for i in 0..Known::MAX as u32 {
            k.insert(IpAddr::V4(i.into()), ip("10.0.0.1"), t0);
        }
        assert_eq!(k.len(), Known::MAX + 1);
        k.insert(ip("192.0.2.1"), ip("10.0.0.1"), t0);
        assert_eq!(k.len(), 2);
        assert_eq!(k.get(ip("192.0.2.1"), t0), Some(ip("10.0.0.1")));
        assert_eq!(k.get(ip("2001:db8::1"), t0), Some(ip("2001:db8::ff")));
    }

    #[test]
    fn the_hash_spreads_neighbouring_addresses_over_the_low_bits() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<AddrHasher>::default();
        // 1,024 consecutive addresses into 1,024 buckets: a good spread leaves few empty.
        let mut used = vec![false; 1024];
        for i in 0..1024u32 {
            let h = b.hash_one(0x7f0a_0000u32 + i);
            used[(h & 1023) as usize] = true;
        }
        let filled = used.iter().filter(|u| **u).count();
        assert!(filled > 550, "only {filled} of 1024 buckets used");
    }
}
