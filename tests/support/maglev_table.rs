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
pub fn bucket_counts(ases: &[(IpAddr, u32)], table_len: u32) -> Vec<u32> {
    let mut counts = vec![0u32; ases.len()];
    if table_len == 0 || !table_len.is_power_of_two() {
        return counts;
    }
    let mask = table_len - 1;
    struct Perm {
        as_idx: usize,
        skip: u32,
        last: u32,
    }
    let mut order: Vec<(u32, [u8; 16], usize)> = Vec::new();
    for (i, (addr, replicas)) in ases.iter().enumerate() {
        for r in 0..*replicas {
            order.push((r, ip46_bytes(*addr), i));
        }
    }
    if order.is_empty() {
        return counts;
    }
    order.sort();
    let mut perms: Vec<Perm> = order
        .iter()
        .map(|(r, bytes, i)| {
            let mut lo = [0u8; 8];
            let mut hi = [0u8; 8];
            lo.copy_from_slice(&bytes[..8]);
            hi.copy_from_slice(&bytes[8..]);
            // as_u64[] loads are native (little-endian on x86).
            let seed = clib_xxhash(u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi) ^ u64::from(*r));
            Perm {
                as_idx: *i,
                skip: ((seed as u32) | 1) & mask,
                last: ((seed >> 32) as u32) & mask,
            }
        })
        .collect();
    let mut table: Vec<Option<usize>> = vec![None; table_len as usize];
    let mut done = 0u32;
    'fill: loop {
        for p in perms.iter_mut() {
            loop {
                let slot = p.last;
                p.last = (p.last + p.skip) & mask;
                if table[slot as usize].is_none() {
                    table[slot as usize] = Some(p.as_idx);
                    break;
                }
            }
            done += 1;
            if done == table_len {
                break 'fill;
            }
        }
    }
    for slot in table.into_iter().flatten() {
        counts[slot] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

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
