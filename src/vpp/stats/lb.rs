//! The lb plugin's counters in the stats segment (docs/vpp-wire.md §4.6), read in one pass:
//! the four per-VIP simple counters (indexed by VIP pool index, summed over threads),
//! `/net/route/to` (combined, indexed by the VIP route's FIB stats index) and the
//! `/sys` scalars that identify a VPP instance.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::memory::SegmentMemory;
use super::segment::{DirEntry, EntryType, Segment, SegmentError, SharedHeader, VecRef};

/// lb's per-VIP counter names: literal, no leading `/`, with spaces.
pub const COUNTER_NEXT: &str = "packet from existing sessions";
pub const COUNTER_FIRST: &str = "first session packet";
pub const COUNTER_UNTRACKED: &str = "untracked packet";
pub const COUNTER_NO_SERVER: &str = "no server configured";
/// Combined counters per FIB load-balance object, indexed by a route's `stats_index`.
pub const ROUTE_TO: &str = "/net/route/to";
/// Unix time (seconds) VPP started: changes when VPP restarts.
pub const BOOTTIME: &str = "/sys/boottime";
/// Bumped by VPP's stats collector every update interval (10 s by default).
pub const HEARTBEAT: &str = "/sys/heartbeat";
/// Route stats index meaning "no route counters for this VIP".
pub const NO_ROUTE: u32 = u32::MAX;

/// Counters of one VIP, summed over VPP threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VipCounters {
    /// VPP's VIP pool index (as in `show lb vips verbose`).
    pub vip_index: u32,
    /// "packet from existing sessions".
    pub next: u64,
    /// "first session packet".
    pub first: u64,
    /// "untracked packet".
    pub untracked: u64,
    /// "no server configured".
    pub no_server: u64,
    /// `/net/route/to` packets of the VIP's FIB entry (0 without a route index).
    pub route_packets: u64,
    /// `/net/route/to` bytes of the VIP's FIB entry.
    pub route_bytes: u64,
}

/// One read of the lb counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbCounterSnapshot {
    /// When the segment was read.
    pub at: SystemTime,
    /// One entry per requested VIP index, in request order.
    pub vips: Vec<VipCounters>,
    /// `/sys/boottime` (Unix seconds), if VPP publishes it.
    pub boottime: Option<u64>,
    /// `at - boottime` (VPP has no uptime counter of its own).
    pub uptime: Option<Duration>,
    /// `/sys/heartbeat`, if present.
    pub heartbeat: Option<u64>,
}

/// What one consistent pass over the segment yields (the snapshot without its clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbReading {
    pub vips: Vec<VipCounters>,
    pub boottime: Option<u64>,
    pub heartbeat: Option<u64>,
}

impl LbReading {
    /// Stamps the reading with the time it was taken.
    pub fn at(self, at: SystemTime) -> LbCounterSnapshot {
        let uptime = self.boottime.and_then(|b| {
            let booted = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(b))?;
            at.duration_since(booted).ok()
        });
        LbCounterSnapshot {
            at,
            vips: self.vips,
            boottime: self.boottime,
            uptime,
            heartbeat: self.heartbeat,
        }
    }
}

/// Name → directory index, valid while the segment's epoch does not change.
#[derive(Debug, Default)]
pub struct DirectoryCache {
    epoch: Option<u64>,
    index: HashMap<String, usize>,
}

impl DirectoryCache {
    fn rebuild<M: SegmentMemory + ?Sized>(
        &mut self,
        seg: &Segment<'_, M>,
        h: &SharedHeader,
        dir: VecRef,
    ) -> Result<(), SegmentError> {
        self.epoch = None;
        let mut index = HashMap::with_capacity(dir.len);
        for i in 0..dir.len {
            let e = seg.entry(dir, i)?;
            if !matches!(e.kind, EntryType::Empty | EntryType::Illegal) {
                index.entry(e.name).or_insert(i);
            }
        }
        self.index = index;
        self.epoch = Some(h.epoch);
        Ok(())
    }

    /// The live entry called `name`, if any.
    pub fn lookup<M: SegmentMemory + ?Sized>(
        &mut self,
        seg: &Segment<'_, M>,
        h: &SharedHeader,
        name: &str,
    ) -> Result<Option<DirEntry>, SegmentError> {
        let dir = seg.directory(h)?;
        if self.epoch != Some(h.epoch) {
            self.rebuild(seg, h, dir)?;
        }
        if let Some(&i) = self.index.get(name) {
            let e = seg.entry(dir, i)?;
            if e.name == name && !matches!(e.kind, EntryType::Empty) {
                return Ok(Some(e));
            }
            // Moved without an epoch change (never done by VPP): rebuild once.
            self.rebuild(seg, h, dir)?;
        } else {
            return Ok(None);
        }
        self.index.get(name).map(|&i| seg.entry(dir, i)).transpose()
    }
}

fn expect_kind(
    e: &DirEntry,
    kinds: &[EntryType],
    expected: &'static str,
) -> Result<(), SegmentError> {
    if kinds.contains(&e.kind) {
        Ok(())
    } else {
        Err(SegmentError::WrongType {
            name: e.name.clone(),
            expected,
            found: e.kind,
        })
    }
}

fn simple_sums<M: SegmentMemory + ?Sized>(
    seg: &Segment<'_, M>,
    h: &SharedHeader,
    cache: &mut DirectoryCache,
    name: &str,
    indexes: &[u32],
) -> Result<Vec<u64>, SegmentError> {
    match cache.lookup(seg, h, name)? {
        // lb creates its counters on the first VIP add: none yet means nothing counted.
        None => Ok(vec![0; indexes.len()]),
        Some(e) => {
            expect_kind(&e, &[EntryType::CounterVectorSimple], "a simple counter")?;
            seg.simple_sums(h, e.value, indexes)
        }
    }
}

fn scalar<M: SegmentMemory + ?Sized>(
    seg: &Segment<'_, M>,
    h: &SharedHeader,
    cache: &mut DirectoryCache,
    name: &str,
) -> Result<Option<u64>, SegmentError> {
    match cache.lookup(seg, h, name)? {
        None => Ok(None),
        Some(e) => {
            expect_kind(&e, &[EntryType::Scalar, EntryType::Gauge], "a scalar")?;
            Ok(Some(e.value))
        }
    }
}

/// Reads everything for `vip_indexes` in one pass (to be run under `read_consistent`).
/// `route_stat_indexes[i]` belongs to `vip_indexes[i]`; a missing element or
/// [`NO_ROUTE`] gives zero route counters.
pub fn read_lb<M: SegmentMemory + ?Sized>(
    seg: &Segment<'_, M>,
    h: &SharedHeader,
    cache: &mut DirectoryCache,
    vip_indexes: &[u32],
    route_stat_indexes: &[u32],
) -> Result<LbReading, SegmentError> {
    let next = simple_sums(seg, h, cache, COUNTER_NEXT, vip_indexes)?;
    let first = simple_sums(seg, h, cache, COUNTER_FIRST, vip_indexes)?;
    let untracked = simple_sums(seg, h, cache, COUNTER_UNTRACKED, vip_indexes)?;
    let no_server = simple_sums(seg, h, cache, COUNTER_NO_SERVER, vip_indexes)?;
    let routes: Vec<u32> = (0..vip_indexes.len())
        .map(|i| route_stat_indexes.get(i).copied().unwrap_or(NO_ROUTE))
        .collect();
    let route = match cache.lookup(seg, h, ROUTE_TO)? {
        None => vec![Default::default(); routes.len()],
        Some(e) => {
            expect_kind(
                &e,
                &[EntryType::CounterVectorCombined],
                "a combined counter",
            )?;
            seg.combined_sums(h, e.value, &routes)?
        }
    };
    let vips = vip_indexes
        .iter()
        .enumerate()
        .map(|(i, &vip_index)| VipCounters {
            vip_index,
            next: next[i],
            first: first[i],
            untracked: untracked[i],
            no_server: no_server[i],
            route_packets: route[i].packets,
            route_bytes: route[i].bytes,
        })
        .collect();
    Ok(LbReading {
        vips,
        boottime: scalar(seg, h, cache, BOOTTIME)?,
        heartbeat: scalar(seg, h, cache, HEARTBEAT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::stats::segment::{RetryPolicy, read_consistent};
    use crate::vpp::stats::test_segment::Builder;

    /// Two threads; VIP 0 is lb's placeholder, VIPs 1 and 2 exist; routes 5 and 6.
    fn lb_segment() -> Vec<u8> {
        let mut b = Builder::new();
        let next = b.simple(&[&[0, 10, 20], &[0, 1, 2]]);
        let first = b.simple(&[&[0, 3, 4], &[0, 5, 6]]);
        let untracked = b.simple(&[&[0, 0, 7], &[0, 0, 0]]);
        let no_server = b.simple(&[&[0, 9], &[0, 1]]);
        let mut route = vec![(0, 0); 7];
        route[5] = (100, 10_000);
        route[6] = (200, 20_000);
        let mut route2 = vec![(0, 0); 7];
        route2[5] = (1, 100);
        let route_to = b.combined(&[&route, &route2]);
        b.finish(&[
            (1, 1_700_000_000, BOOTTIME),
            (1, 77, HEARTBEAT),
            (5, 0, ""),
            (2, next, COUNTER_NEXT),
            (2, first, COUNTER_FIRST),
            (2, untracked, COUNTER_UNTRACKED),
            (2, no_server, COUNTER_NO_SERVER),
            (3, route_to, ROUTE_TO),
        ])
    }

    fn read(
        buf: &[u8],
        cache: &mut DirectoryCache,
        vips: &[u32],
        routes: &[u32],
    ) -> Result<LbReading, SegmentError> {
        read_consistent(buf, RetryPolicy::default(), |seg, h| {
            read_lb(seg, h, cache, vips, routes)
        })
    }

    #[test]
    fn one_pass_sums_threads_per_vip_and_route() {
        let buf = lb_segment();
        let mut cache = DirectoryCache::default();
        let r = read(&buf, &mut cache, &[1, 2, 9], &[5, 6]).unwrap();
        assert_eq!(r.boottime, Some(1_700_000_000));
        assert_eq!(r.heartbeat, Some(77));
        assert_eq!(
            r.vips,
            vec![
                VipCounters {
                    vip_index: 1,
                    next: 11,
                    first: 8,
                    untracked: 0,
                    no_server: 10,
                    route_packets: 101,
                    route_bytes: 10_100,
                },
                VipCounters {
                    vip_index: 2,
                    next: 22,
                    first: 10,
                    untracked: 7,
                    no_server: 0,
                    route_packets: 200,
                    route_bytes: 20_000,
                },
                // Unknown VIP index, and no route index given: zeros, not an error.
                VipCounters {
                    vip_index: 9,
                    ..VipCounters::default()
                },
            ]
        );
    }

    #[test]
    fn missing_counters_read_as_zero_and_wrong_types_are_errors() {
        let buf = Builder::new().finish(&[(1, 5, BOOTTIME)]);
        let mut cache = DirectoryCache::default();
        let r = read(&buf, &mut cache, &[1], &[NO_ROUTE]).unwrap();
        assert_eq!(
            r.vips,
            vec![VipCounters {
                vip_index: 1,
                ..Default::default()
            }]
        );
        assert_eq!((r.boottime, r.heartbeat), (Some(5), None));

        let buf = Builder::new().finish(&[(1, 5, COUNTER_NEXT)]);
        let mut cache = DirectoryCache::default();
        assert_eq!(
            read(&buf, &mut cache, &[1], &[]),
            Err(SegmentError::WrongType {
                name: COUNTER_NEXT.into(),
                expected: "a simple counter",
                found: EntryType::Scalar,
            })
        );
    }

    #[test]
    fn directory_cache_follows_the_epoch() {
        let buf = lb_segment();
        let mut cache = DirectoryCache::default();
        read(&buf, &mut cache, &[1], &[]).unwrap();
        assert_eq!(cache.epoch, Some(7));
        assert_eq!(cache.index.get(COUNTER_NEXT), Some(&3));
        assert!(!cache.index.contains_key(""), "empty slots are not indexed");

        // Same names at other indexes in a new epoch (a rebuilt directory).
        let mut b = Builder::new();
        let next = b.simple(&[&[0, 42]]);
        let mut moved = b.finish(&[(2, next, COUNTER_NEXT), (1, 9, BOOTTIME)]);
        moved[16..24].copy_from_slice(&8u64.to_ne_bytes());
        let r = read(&moved, &mut cache, &[1], &[]).unwrap();
        assert_eq!((r.vips[0].next, r.boottime), (42, Some(9)));
        assert_eq!(cache.epoch, Some(8));

        // Same epoch but moved entries (never done by VPP): detected by name, rebuilt.
        let mut b = Builder::new();
        let next = b.simple(&[&[0, 43]]);
        let mut swapped = b.finish(&[(1, 10, BOOTTIME), (2, next, COUNTER_NEXT)]);
        swapped[16..24].copy_from_slice(&8u64.to_ne_bytes());
        let r = read(&swapped, &mut cache, &[1], &[]).unwrap();
        assert_eq!((r.vips[0].next, r.boottime), (43, Some(10)));
    }

    #[test]
    fn uptime_is_time_since_boot() {
        let reading = LbReading {
            vips: Vec::new(),
            boottime: Some(1_000),
            heartbeat: None,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_090);
        let snap = reading.clone().at(at);
        assert_eq!(snap.uptime, Some(Duration::from_secs(90)));
        // A boot time in the future (clock skew) gives no uptime rather than nonsense.
        let early = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(reading.at(early).uptime, None);
    }
}
