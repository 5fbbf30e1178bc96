//! Reader tests on synthetic segments laid out like VPP's (docs/vpp-wire.md §4.2).

use std::cell::{Cell, RefCell};

use proptest::prelude::*;

use super::*;

use crate::vpp::stats::test_segment::{BASE, Builder, link};

/// scalar, simple (2 threads), combined (2 threads), names, two symlinks.
fn good_segment() -> Vec<u8> {
    let mut b = Builder::new();
    let simple = b.simple(&[&[1, 2, 3], &[10, 20, 30]]);
    let combined = b.combined(&[&[(1, 100), (2, 200)], &[(5, 500), (6, 600)]]);
    let names = b.names(&[Some("local0"), None, Some("eth0")]);
    b.finish(&[
        (1, 1_700_000_000, "/sys/boottime"),
        (2, simple, "first session packet"),
        (3, combined, "/net/route/to"),
        (4, names, "/if/names"),
        (6, link(2, 1), "/interfaces/eth0/route"),
        (6, link(1, 2), "/vip/2/first"),
        (5, 0, ""),
    ])
}

fn read_all(mem: &[u8]) -> Result<Vec<(String, StatValue)>, SegmentError> {
    let seg = Segment::new(mem);
    let h = seg.checked_header()?;
    let dir = seg.directory(&h)?;
    seg.entries(&h)?
        .into_iter()
        .map(|e| Ok((e.name.clone(), seg.value(&h, dir, &e)?)))
        .collect()
}

fn set_u64(buf: &mut [u8], offset: usize, v: u64) {
    buf[offset..offset + 8].copy_from_slice(&v.to_ne_bytes());
}

fn offset_of(ptr: u64) -> usize {
    (ptr - BASE) as usize
}

fn entry_value(buf: &[u8], index: usize) -> u64 {
    let seg = Segment::new(buf);
    let h = seg.header().unwrap();
    let dir = seg.directory(&h).unwrap();
    seg.entry(dir, index).unwrap().value
}

#[test]
fn good_segment_reads_every_entry_type() {
    let buf = good_segment();
    let all = read_all(&buf).unwrap();
    let c = |packets, bytes| CombinedCounter { packets, bytes };
    assert_eq!(
        all,
        vec![
            ("/sys/boottime".into(), StatValue::Scalar(1_700_000_000)),
            (
                "first session packet".into(),
                StatValue::Simple(vec![vec![1, 2, 3], vec![10, 20, 30]])
            ),
            (
                "/net/route/to".into(),
                StatValue::Combined(vec![vec![c(1, 100), c(2, 200)], vec![c(5, 500), c(6, 600)]])
            ),
            (
                "/if/names".into(),
                StatValue::Names(vec![Some("local0".into()), None, Some("eth0".into())])
            ),
            (
                "/interfaces/eth0/route".into(),
                StatValue::CombinedColumn(vec![c(2, 200), c(6, 600)])
            ),
            ("/vip/2/first".into(), StatValue::SimpleColumn(vec![3, 30])),
            ("".into(), StatValue::Unsupported(EntryType::Empty)),
        ]
    );
}

#[test]
fn sums_over_threads_and_missing_indexes_count_zero() {
    let buf = good_segment();
    let seg = Segment::new(buf.as_slice());
    let h = seg.checked_header().unwrap();
    let simple = entry_value(&buf, 1);
    let combined = entry_value(&buf, 2);
    assert_eq!(
        seg.simple_sums(&h, simple, &[0, 2, 3, u32::MAX]).unwrap(),
        vec![11, 33, 0, 0]
    );
    assert_eq!(
        seg.combined_sums(&h, combined, &[1, 9]).unwrap(),
        vec![
            CombinedCounter {
                packets: 8,
                bytes: 800
            },
            CombinedCounter::default()
        ]
    );
    assert_eq!(seg.simple_column(&h, simple, 7).unwrap(), vec![0, 0]);
}

#[test]
fn truncated_segments_are_errors_never_panics() {
    let buf = good_segment();
    assert_eq!(
        read_all(&buf[..20]),
        Err(SegmentError::TooSmall {
            size: 20,
            needed: SHARED_HEADER_LEN
        })
    );
    // The last 64 bytes are slack; every shorter cut loses data that is referenced.
    for cut in SHARED_HEADER_LEN..buf.len() - 64 {
        assert!(read_all(&buf[..cut]).is_err(), "cut at {cut} read fine");
    }
    assert!(read_all(&buf[..buf.len() - 64]).is_ok());
}

#[test]
fn pointers_outside_the_segment_are_rejected() {
    let good = good_segment();
    for bad_ptr in [BASE - 8, BASE + good.len() as u64 + 8, u64::MAX - 3, 1] {
        let mut buf = good.clone();
        set_u64(&mut buf, 32, bad_ptr);
        assert!(
            matches!(read_all(&buf), Err(SegmentError::OutOfRange { .. })),
            "directory at {bad_ptr:#x}"
        );
    }
    let mut buf = good.clone();
    set_u64(&mut buf, 32, 0);
    assert_eq!(
        read_all(&buf),
        Err(SegmentError::NullPointer { what: "directory" })
    );
    // A thread pointer of the simple counter pointing past the end.
    let mut buf = good.clone();
    let threads = offset_of(entry_value(&good, 1));
    set_u64(&mut buf, threads + 8, BASE + (1 << 40));
    assert!(matches!(
        read_all(&buf),
        Err(SegmentError::OutOfRange {
            what: "simple counter",
            ..
        })
    ));
    // A name pointing just before the segment's start: its length would be at base - 8.
    let mut buf = good.clone();
    let names = offset_of(entry_value(&good, 3));
    set_u64(&mut buf, names, BASE + 4);
    assert!(matches!(
        read_all(&buf),
        Err(SegmentError::OutOfRange { what: "name", .. })
    ));
}

#[test]
fn absurd_vector_lengths_are_rejected() {
    let good = good_segment();
    let dir_len_at = offset_of(Segment::new(good.as_slice()).header().unwrap().directory) - 8;
    let mut buf = good.clone();
    buf[dir_len_at..dir_len_at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(
        read_all(&buf),
        Err(SegmentError::VectorTooLong {
            what: "directory",
            len: u32::MAX as usize
        })
    );
    // Under the cap but longer than the segment.
    let mut buf = good.clone();
    buf[dir_len_at..dir_len_at + 4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(matches!(
        read_all(&buf),
        Err(SegmentError::OutOfRange {
            what: "directory",
            ..
        })
    ));
    // A counter claiming more threads than any VPP runs.
    let mut b = Builder::new();
    let threads = b.vec(MAX_THREADS + 1, &vec![0u8; (MAX_THREADS + 1) * 8]);
    let buf = b.finish(&[(2, threads, "wide")]);
    assert!(matches!(
        read_all(&buf),
        Err(SegmentError::TooManyThreads { .. })
    ));
}

#[test]
fn symlink_cycles_and_bad_targets_are_detected() {
    let mut b = Builder::new();
    let simple = b.simple(&[&[1]]);
    let buf = b.finish(&[
        (6, link(1, 0), "a"),
        (6, link(0, 0), "b"),
        (6, link(2, 0), "self"),
        (6, link(4, 0), "to-scalar"),
        (1, 5, "scalar"),
        (6, link(99, 0), "dangling"),
        (6, link(7, 0), "via-link"),
        (2, simple, "counter"),
    ]);
    let seg = Segment::new(buf.as_slice());
    let h = seg.checked_header().unwrap();
    let dir = seg.directory(&h).unwrap();
    let value = |i| seg.value(&h, dir, &seg.entry(dir, i).unwrap());
    assert_eq!(
        value(0),
        Err(SegmentError::SymlinkCycle { name: "a".into() })
    );
    assert_eq!(
        value(2),
        Err(SegmentError::SymlinkCycle {
            name: "self".into()
        })
    );
    assert_eq!(
        value(3),
        Err(SegmentError::BadSymlinkTarget {
            name: "to-scalar".into(),
            target: EntryType::Scalar
        })
    );
    assert_eq!(
        value(5),
        Err(SegmentError::NoSuchEntry { index: 99, len: 8 })
    );
    assert_eq!(value(6), Ok(StatValue::SimpleColumn(vec![1])));
}

#[test]
fn wrong_version_is_refused_and_not_retried() {
    let mut buf = good_segment();
    set_u64(&mut buf, 0, 1);
    assert_eq!(read_all(&buf), Err(SegmentError::UnsupportedVersion(1)));
    let mut calls = 0;
    let r = read_consistent(buf.as_slice(), RetryPolicy::default(), |_, _| {
        calls += 1;
        Ok(())
    });
    assert_eq!(r, Err(SegmentError::UnsupportedVersion(1)));
    assert_eq!(calls, 0);
}

/// Edits a segment's bytes.
type Change = Box<dyn Fn(&mut Vec<u8>)>;

/// Memory that applies a change (like VPP finishing a restructure) at its n-th read.
struct Changing {
    bytes: RefCell<Vec<u8>>,
    reads: Cell<usize>,
    at_read: usize,
    change: Change,
}

impl SegmentMemory for Changing {
    fn size(&self) -> usize {
        self.bytes.borrow().len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        let n = self.reads.get() + 1;
        self.reads.set(n);
        if n == self.at_read {
            (self.change)(&mut self.bytes.borrow_mut());
        }
        self.bytes.borrow().as_slice().read(offset, dst)
    }
}

const NO_PAUSE: RetryPolicy = RetryPolicy {
    attempts: 5,
    pause: Duration::ZERO,
};

fn boottime(seg: &Segment<'_, Changing>, h: &SharedHeader) -> Result<u64, SegmentError> {
    let dir = seg.directory(h)?;
    Ok(seg.entry(dir, 0)?.value)
}

#[test]
fn epoch_change_during_a_read_is_retried() {
    let good = good_segment();
    let dir_ptr = Segment::new(good.as_slice()).header().unwrap().directory;
    let value_at = offset_of(dir_ptr) + 8;
    // The 7th read happens inside the first attempt (5 header words, the directory
    // length, then the entry): VPP changes the value and bumps the epoch there.
    let mem = Changing {
        bytes: RefCell::new(good),
        reads: Cell::new(0),
        at_read: 7,
        change: Box::new(move |b| {
            set_u64(b, value_at, 42);
            set_u64(b, 16, 8);
        }),
    };
    let mut calls = 0;
    let r = read_consistent(&mem, NO_PAUSE, |seg, h| {
        calls += 1;
        boottime(seg, h)
    });
    assert_eq!(r, Ok(42));
    assert_eq!(calls, 2);
}

#[test]
fn errors_from_a_torn_read_are_retried_errors_on_a_stable_segment_are_not() {
    let good = good_segment();
    let real_dir = Segment::new(good.as_slice()).header().unwrap().directory;
    let mut torn = good.clone();
    set_u64(&mut torn, 32, 0xdead_beef);
    // Read 6 is the first read after the first attempt's header (the directory pointer
    // was garbage, so the attempt failed without reading): VPP completes the change.
    let mem = Changing {
        bytes: RefCell::new(torn.clone()),
        reads: Cell::new(0),
        at_read: 6,
        change: Box::new(move |b| {
            set_u64(b, 32, real_dir);
            set_u64(b, 16, 8);
        }),
    };
    let mut calls = 0;
    let r = read_consistent(&mem, NO_PAUSE, |seg, h| {
        calls += 1;
        boottime(seg, h)
    });
    assert_eq!(r, Ok(1_700_000_000));
    assert_eq!(calls, 2);

    let mut calls = 0;
    let r = read_consistent(torn.as_slice(), NO_PAUSE, |seg, h| {
        calls += 1;
        seg.directory(h).map(|_| ())
    });
    assert!(matches!(r, Err(SegmentError::OutOfRange { .. })));
    assert_eq!(calls, 1);
}

#[test]
fn in_progress_waits_then_gives_up() {
    let mut buf = good_segment();
    set_u64(&mut buf, 24, 1);
    let mut calls = 0;
    let r = read_consistent(buf.as_slice(), NO_PAUSE, |_, _| {
        calls += 1;
        Ok(())
    });
    assert_eq!(
        r,
        Err(SegmentError::Unstable {
            attempts: 5,
            in_progress: true
        })
    );
    assert_eq!(calls, 0, "never read while in_progress");

    // Cleared (with an epoch bump) after the second header read: the read succeeds.
    let mem = Changing {
        bytes: RefCell::new(buf),
        reads: Cell::new(0),
        at_read: 7,
        change: Box::new(|b| {
            set_u64(b, 24, 0);
            set_u64(b, 16, 8);
        }),
    };
    let r = read_consistent(&mem, NO_PAUSE, boottime);
    assert_eq!(r, Ok(1_700_000_000));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Arbitrary corruption of a good segment yields values or errors, never a panic.
    #[test]
    fn corrupted_segments_never_panic(
        flips in proptest::collection::vec((0usize..2048, any::<u8>()), 1..8),
    ) {
        let mut buf = good_segment();
        let len = buf.len();
        for (at, byte) in flips {
            buf[at % len] = byte;
        }
        let _ = read_all(&buf);
        let seg = Segment::new(buf.as_slice());
        if let Ok(h) = seg.header() {
            let _ = seg.simple_sums(&h, entry_value_or_zero(&buf, 1), &[0, 1, 2, u32::MAX]);
        }
    }
}

fn entry_value_or_zero(buf: &[u8], index: usize) -> u64 {
    let seg = Segment::new(buf);
    seg.header()
        .and_then(|h| seg.directory(&h))
        .and_then(|dir| seg.entry(dir, index))
        .map(|e| e.value)
        .unwrap_or(0)
}
