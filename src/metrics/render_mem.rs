//! Peak heap and time of one `/metrics` render at 10,000 backends, for
//! `docs/performance.md`. Not a target: it prints figures and asserts only that the
//! render produced every backend's samples. Run alone:
//! `cargo test --release --lib metrics::render_mem -- --ignored --nocapture`. The
//! "before" rows are the prometheus-client encoder kept in `oracle.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::checker::CheckerState;
use crate::health::{ProbeResult, ResultCode, State};
use crate::vpp::VppInfo;

/// Counts the bytes live on threads that turned tracking on (the test's own thread).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

fn tracking() -> bool {
    TRACK.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if tracking() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if tracking() {
            LIVE.fetch_sub(
                layout.size().min(LIVE.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if tracking() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                let shrink = (layout.size() - new_size).min(LIVE.load(Ordering::Relaxed));
                LIVE.fetch_sub(shrink, Ordering::Relaxed);
            }
        }
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const BACKENDS: usize = 10_000;

fn state() -> CheckerState {
    let mut toml = String::from(
        "[healthchecks.tcp]\ntype = \"tcp\"\nport = 80\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
    );
    for i in 0..BACKENDS {
        toml.push_str(&format!(
            "[backends.b{i:05}]\naddress = \"10.{}.{}.{}\"\nhealthcheck = \"tcp\"\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    let config = match crate::config::load_str(&toml, Path::new("t.toml")) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{e}"),
    };
    let mut st = CheckerState::new(config, SystemTime::UNIX_EPOCH);
    let names: Vec<String> = st.backends.keys().cloned().collect();
    for name in names {
        let Some(e) = st.backends.get_mut(&name) else {
            continue;
        };
        for code in [ResultCode::L4Ok, ResultCode::L4Ok, ResultCode::L4Con] {
            let r = ProbeResult::new(code, "", Duration::from_millis(2));
            e.stats.observe(&r);
            let _ = e.health.record(r);
        }
        e.transitions.count(State::Unknown, State::Up);
    }
    st
}

/// (peak bytes above the live bytes at the start, output length, mean time) of `f`.
fn measure(mut f: impl FnMut() -> String) -> (usize, usize, Duration) {
    let _ = f(); // warm: the first call sizes what later calls reuse
    TRACK.with(|t| t.set(true));
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let len = out.len();
    drop(out);
    TRACK.with(|t| t.set(false));
    let reps = 5u32;
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    (peak, len, start.elapsed() / reps)
}

/// One way of rendering, measured.
type Render<'a> = Box<dyn FnMut() -> String + 'a>;

#[test]
#[ignore = "a measurement: run alone with --ignored --nocapture"]
fn peak_heap_of_one_render_at_10000_backends() {
    use super::Format;
    use super::oracle::Reference;
    let st = state();
    let snap = st.full_snapshot();
    let vpp = VppInfo::default;
    let lean = super::Snapshot::of(&snap, vpp());
    let mut last = 0;
    let rows: [(&str, Render<'_>); 4] = [
        (
            "before, openmetrics",
            Box::new(|| Reference::of(&snap, vpp()).encode_text()),
        ),
        (
            "before, classic",
            Box::new(|| super::to_prometheus_text(&Reference::of(&snap, vpp()).encode_text())),
        ),
        (
            "after, openmetrics",
            Box::new(|| lean.encode(Format::OpenMetrics, 0)),
        ),
        (
            "after, classic (capacity from the last render)",
            Box::new(|| {
                let out = lean.encode(Format::Classic, last + last / 16);
                last = out.len();
                out
            }),
        ),
    ];
    // Streamed in pieces of `CHUNK` bytes, each dropped as soon as it is handed over (what
    // the server does once hyper has written it): the peak is a piece, not the text.
    let stream = || {
        let mut len = 0;
        lean.stream(Format::Classic, super::CHUNK, &mut |piece: String| {
            len += piece.len();
            true
        });
        len
    };
    let _ = stream();
    TRACK.with(|t| t.set(true));
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let streamed_len = stream();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    TRACK.with(|t| t.set(false));
    let start = Instant::now();
    for _ in 0..5 {
        std::hint::black_box(stream());
    }
    println!(
        "streamed, classic, {} KiB pieces: {streamed_len} bytes, peak heap {:.2} MiB, {:.1} ms a render",
        super::CHUNK / 1024,
        peak as f64 / 1_048_576.0,
        (start.elapsed() / 5).as_secs_f64() * 1e3
    );
    let mut outputs = Vec::new();
    for (what, mut f) in rows {
        let (peak, len, time) = measure(&mut f);
        println!(
            "{what}: {len} bytes, peak heap {:.2} MiB, {:.1} ms a render",
            peak as f64 / 1_048_576.0,
            time.as_secs_f64() * 1e3
        );
        outputs.push(f());
    }
    println!(
        "load: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    assert!(outputs[0].len() > BACKENDS * 100);
    assert_eq!(outputs[0], outputs[2]);
    assert_eq!(outputs[1], outputs[3]);
    assert_eq!(streamed_len, outputs[3].len());
}
