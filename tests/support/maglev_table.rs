//! Maglev new-flow table population as VPP's lb plugin does it
//! (`lb_vip_update_new_flow_table`): per AS a pseudo-random permutation seeded with
//! `clib_xxhash` of the address in VPP's `ip46_address_t` layout, skip forced odd so it
//! cycles through the power-of-two table, entries filled round-robin in sorted order.
//! With weights (lb API 1.2.0) every AS contributes `weight` replicas, sorted by
//! (replica, address); replica `r` seeds with `xxhash(a0 ^ a1 ^ r)` (replica 0 = the
//! historic single-entry seed). Assumption: the master code's exact replica seed was not
//! available; the population, sort order and counting follow docs/vpp-wire.md §3.4.

use std::net::IpAddr;

const PRIME64_1: u64 = 11_400_714_785_074_694_791;
const PRIME64_2: u64 = 14_029_467_366_897_019_727;
const PRIME64_3: u64 = 1_609_587_929_392_839_161;
const PRIME64_4: u64 = 9_650_029_242_287_828_579;
const PRIME64_5: u64 = 2_870_177_450_012_600_261;

/// vppinfra's `clib_xxhash` of one u64.
pub fn clib_xxhash(key: u64) -> u64 {
    let mut k1 = key.wrapping_mul(PRIME64_2);
    k1 = k1.rotate_left(31);
    k1 = k1.wrapping_mul(PRIME64_1);
    let mut h64 = 0x9e37_79b9_7f4a_7c13u64
        .wrapping_add(PRIME64_5)
        .wrapping_add(8);
    h64 ^= k1;
    h64 = h64
        .rotate_left(27)
        .wrapping_mul(PRIME64_1)
        .wrapping_add(PRIME64_4);
    h64 ^= h64 >> 33;
    h64 = h64.wrapping_mul(PRIME64_2);
    h64 ^= h64 >> 29;
    h64 = h64.wrapping_mul(PRIME64_3);
    h64 ^= h64 >> 32;
    h64
}

/// The 16 bytes of VPP's `ip46_address_t` (IPv4 in the last four bytes).
pub fn ip46_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Number of new-flow table slots each AS gets. `ases[i] = (address, replicas)`;
/// `table_len` is a power of two. ASes with 0 replicas get nothing; if nobody has a
/// replica the table stays on the default AS and every count is 0.
///
/// The permutations are taken in (replica, address, index) order and each fills one slot
/// per round until the table is full, so only the first `table_len` of them in that order
/// ever fill a slot. They are generated in that order (replica 0 of every AS in address
/// order, then replica 1, ...) and the rest are never built: 64 ASes x weight 100 into
/// 1,024 slots builds 1,024 permutations, not 6,400 sorted ones. Same result as sorting
/// them all (`tests::reference`, property-tested).
pub fn bucket_counts(ases: &[(IpAddr, u32)], table_len: u32) -> Vec<u32> {
    let mut counts = vec![0u32; ases.len()];
    if table_len == 0 || !table_len.is_power_of_two() {
        return counts;
    }
    let mask = table_len - 1;
    // (address bytes, index) sort order, the tie-break of the replica-major order.
    let mut by_addr: Vec<([u8; 16], usize, u32)> = ases
        .iter()
        .enumerate()
        .filter(|(_, (_, replicas))| *replicas > 0)
        .map(|(i, (addr, replicas))| (ip46_bytes(*addr), i, *replicas))
        .collect();
    if by_addr.is_empty() {
        return counts;
    }
    by_addr.sort_unstable();
    let max_replicas = by_addr.iter().map(|e| e.2).max().unwrap_or(0);
    let mut perms: Vec<Perm> = Vec::with_capacity(table_len as usize);
    'build: for r in 0..max_replicas {
        for (bytes, i, replicas) in &by_addr {
            if r < *replicas {
                perms.push(Perm::new(bytes, r, *i, mask));
                if perms.len() == table_len as usize {
                    break 'build;
                }
            }
        }
    }
    fill(&mut perms, table_len, &mut counts);
    counts
}

/// One permutation: the AS it belongs to, its stride and its next slot.
struct Perm {
    as_idx: usize,
    skip: u32,
    last: u32,
}

impl Perm {
    fn new(bytes: &[u8; 16], replica: u32, as_idx: usize, mask: u32) -> Perm {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&bytes[..8]);
        hi.copy_from_slice(&bytes[8..]);
        // as_u64[] loads are native (little-endian on x86).
        let seed =
            clib_xxhash(u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi) ^ u64::from(replica));
        Perm {
            as_idx,
            skip: ((seed as u32) | 1) & mask,
            last: ((seed >> 32) as u32) & mask,
        }
    }
}

/// Fills the table round-robin over `perms` (in order) and counts each AS's slots.
fn fill(perms: &mut [Perm], table_len: u32, counts: &mut [u32]) {
    if perms.is_empty() {
        return;
    }
    let mask = table_len - 1;
    const EMPTY: usize = usize::MAX;
    let mut table: Vec<usize> = vec![EMPTY; table_len as usize];
    let mut done = 0u32;
    'fill: loop {
        for p in perms.iter_mut() {
            loop {
                let slot = p.last;
                p.last = (p.last + p.skip) & mask;
                if table[slot as usize] == EMPTY {
                    table[slot as usize] = p.as_idx;
                    break;
                }
            }
            done += 1;
            if done == table_len {
                break 'fill;
            }
        }
    }
    for slot in table {
        counts[slot] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The population as first written: every replica of every AS built and sorted.
    fn reference(ases: &[(IpAddr, u32)], table_len: u32) -> Vec<u32> {
        let mut counts = vec![0u32; ases.len()];
        if table_len == 0 || !table_len.is_power_of_two() {
            return counts;
        }
        let mask = table_len - 1;
        let mut order: Vec<(u32, [u8; 16], usize)> = Vec::new();
        for (i, (addr, replicas)) in ases.iter().enumerate() {
            for r in 0..*replicas {
                order.push((r, ip46_bytes(*addr), i));
            }
        }
        order.sort();
        let mut perms: Vec<Perm> = order
            .iter()
            .map(|(r, bytes, i)| Perm::new(bytes, *r, *i, mask))
            .collect();
        fill(&mut perms, table_len, &mut counts);
        counts
    }

    fn addr_strategy() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            // A narrow range, so duplicates (same address twice) happen too.
            (0u8..4, 0u8..40).prop_map(|(c, d)| IpAddr::from([10, 0, c, d])),
            any::<u128>().prop_map(|v| IpAddr::from(v.to_be_bytes())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn same_counts_as_sorting_every_replica(
            ases in prop::collection::vec((addr_strategy(), prop_oneof![Just(0u32), 1u32..4, 0u32..=255]), 0..40),
            log_len in 0u32..11,
        ) {
            let table_len = 1u32 << log_len;
            prop_assert_eq!(bucket_counts(&ases, table_len), reference(&ases, table_len));
        }
    }

    #[test]
    fn same_counts_at_bench_size() {
        // 64 ASes at weight 100 (and a few at other weights) into the default 1,024 slots.
        let mut ases: Vec<(IpAddr, u32)> = (0..64u8)
            .map(|i| (IpAddr::from([127, 20, 0, i + 1]), 100))
            .collect();
        ases[3].1 = 0;
        ases[7].1 = 1;
        ases[9].1 = 255;
        for len in [1024, 65536] {
            let got = bucket_counts(&ases, len);
            assert_eq!(got, reference(&ases, len));
            assert_eq!(got.iter().sum::<u32>(), len);
        }
    }

    #[test]
    fn bad_table_lengths_count_nothing() {
        let ases: Vec<(IpAddr, u32)> = vec![("10.0.0.1".parse().unwrap(), 10)];
        assert_eq!(bucket_counts(&ases, 0), vec![0]);
        assert_eq!(bucket_counts(&ases, 1000), vec![0]);
        assert_eq!(bucket_counts(&[], 1024), Vec::<u32>::new());
    }

    #[test]
    fn counts_cover_the_table() {
        let ases: Vec<(IpAddr, u32)> = vec![
            ("10.0.0.1".parse().unwrap(), 100),
            ("10.0.0.2".parse().unwrap(), 50),
            ("10.0.0.3".parse().unwrap(), 0),
        ];
        let counts = bucket_counts(&ases, 1024);
        assert_eq!(counts.iter().sum::<u32>(), 1024);
        assert_eq!(counts[2], 0);
        assert!(counts[0] > counts[1]);
    }
}
