//! [`StatsClient`]: one mapped segment of one VPP instance, with typed reads and VPP
//! restart detection; [`StatsPoller`]: the async shell that keeps a client connected
//! across VPP restarts and reads the lb counters.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::lb::{BOOTTIME, DirectoryCache, LbCounterSnapshot, read_lb};
use super::segment::{EntryType, RetryPolicy, SegmentError, StatValue, read_consistent};
use super::shm::{Mapping, ShmError, receive_segment_fd};

/// How long connecting and receiving the fd may take (vpp-papi uses 1 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why stats could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error("stats segment: {0}")]
    Segment(#[from] SegmentError),
    #[error("stats reader task failed: {0}")]
    Task(String),
}

/// Evidence that the VPP behind a mapping is gone or was replaced. (The old mapping
/// itself stays readable but frozen, so its `/sys/boottime` never changes; a new boot
/// time only shows in a new mapping: see [`PollOutcome::vpp_restarted`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// The socket file no longer exists (VPP unlinks it on exit).
    SocketGone,
    /// The socket file is a different file than at connect (a new VPP created it).
    SocketReplaced,
}

/// Identity of the socket file: device, inode and change time to the nanosecond (a
/// re-created socket often gets the freed inode number back).
type SocketIdentity = (u64, u64, i64, i64);

fn socket_identity(path: &Path) -> Option<SocketIdentity> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

struct Inner {
    path: PathBuf,
    mapping: Mapping,
    socket: Option<SocketIdentity>,
    boottime: Option<u64>,
    cache: Mutex<DirectoryCache>,
    policy: RetryPolicy,
}

/// A mapped stats segment. Cheap to clone (shared mapping, unmapped with the last clone).
/// Reads are synchronous and short, but may wait up to ~100 ms while VPP restructures
/// the segment: from async code, call them in `spawn_blocking` (as [`StatsPoller`] does).
#[derive(Clone)]
pub struct StatsClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StatsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsClient")
            .field("path", &self.inner.path)
            .field("size", &self.segment_size())
            .field("boottime", &self.inner.boottime)
            .finish()
    }
}

impl StatsClient {
    /// Connects to `path` (VPP's `stats.sock`), receives and maps the segment, and checks
    /// its version.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, StatsError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::connect_blocking(&path))
            .await
            .map_err(|e| StatsError::Task(e.to_string()))?
    }

    /// [`connect`](Self::connect) for synchronous callers.
    pub fn connect_blocking(path: &Path) -> Result<Self, StatsError> {
        // Identity first: a restart between this and the connect only costs a reconnect.
        let socket = socket_identity(path);
        let fd = receive_segment_fd(path, CONNECT_TIMEOUT)?;
        let mapping = Mapping::map(fd)?;
        let policy = RetryPolicy::default();
        let mut cache = DirectoryCache::default();
        let boottime = read_consistent(&mapping, policy, |seg, h| boottime_of(&mut cache, seg, h))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                mapping,
                socket,
                boottime,
                cache: Mutex::new(cache),
                policy,
            }),
        })
    }

    /// Maps a new segment from the same path, replacing this one (the old mapping goes
    /// away with its last clone).
    pub async fn reconnect(&mut self) -> Result<(), StatsError> {
        *self = Self::connect(&self.inner.path).await?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn segment_size(&self) -> usize {
        use super::memory::SegmentMemory;
        self.inner.mapping.size()
    }

    /// `/sys/boottime` when this client connected.
    pub fn boottime_at_connect(&self) -> Option<u64> {
        self.inner.boottime
    }

    fn with_cache<T>(
        &self,
        read: impl FnMut(
            &mut DirectoryCache,
            &super::segment::Segment<'_, Mapping>,
            &super::segment::SharedHeader,
        ) -> Result<T, SegmentError>,
    ) -> Result<T, StatsError> {
        let mut read = read;
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(read_consistent(
            &self.inner.mapping,
            self.inner.policy,
            |seg, h| read(&mut cache, seg, h),
        )?)
    }

    /// The lb per-VIP counters and `/net/route/to` for each VIP, in one consistent pass.
    /// `route_stat_indexes[i]` (from `ip_route_lookup`) belongs to `vip_indexes[i]`; a
    /// missing element or [`super::lb::NO_ROUTE`] gives zero route counters.
    pub fn read_lb_counters(
        &self,
        vip_indexes: &[u32],
        route_stat_indexes: &[u32],
    ) -> Result<LbCounterSnapshot, StatsError> {
        let reading = self
            .with_cache(|cache, seg, h| read_lb(seg, h, cache, vip_indexes, route_stat_indexes))?;
        Ok(reading.at(SystemTime::now()))
    }

    /// Current `/sys/boottime`.
    pub fn boottime(&self) -> Result<Option<u64>, StatsError> {
        self.with_cache(boottime_of)
    }

    /// One entry's value by name (symlinks resolved), `None` if absent.
    pub fn read_entry(&self, name: &str) -> Result<Option<StatValue>, StatsError> {
        self.with_cache(|cache, seg, h| {
            let Some(e) = cache.lookup(seg, h, name)? else {
                return Ok(None);
            };
            let dir = seg.directory(h)?;
            seg.value(h, dir, &e).map(Some)
        })
    }

    /// Every live entry with its value, in directory order.
    pub fn dump(&self) -> Result<Vec<(String, EntryType, StatValue)>, StatsError> {
        self.with_cache(|_, seg, h| {
            let dir = seg.directory(h)?;
            let mut out = Vec::new();
            for e in seg.entries(h)? {
                if matches!(e.kind, EntryType::Empty | EntryType::Illegal) {
                    continue;
                }
                let value = seg.value(h, dir, &e)?;
                out.push((e.name, e.kind, value));
            }
            Ok(out)
        })
    }

    /// Whether the VPP that sent this segment is gone or was replaced, judged by the
    /// socket file (no segment read).
    pub fn restart_detected(&self) -> Option<RestartReason> {
        match (self.inner.socket, socket_identity(&self.inner.path)) {
            (_, None) => Some(RestartReason::SocketGone),
            (Some(before), Some(now)) if before != now => Some(RestartReason::SocketReplaced),
            _ => None,
        }
    }
}

fn boottime_of(
    cache: &mut DirectoryCache,
    seg: &super::segment::Segment<'_, Mapping>,
    h: &super::segment::SharedHeader,
) -> Result<Option<u64>, SegmentError> {
    Ok(cache
        .lookup(seg, h, BOOTTIME)?
        .filter(|e| matches!(e.kind, EntryType::Scalar | EntryType::Gauge))
        .map(|e| e.value))
}

/// Result of one [`StatsPoller::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    pub snapshot: LbCounterSnapshot,
    /// A new segment was mapped for this poll (first poll, or after a restart/error).
    pub reconnected: bool,
    /// `/sys/boottime` differs from the previous poll's: VPP restarted in between and
    /// every VPP-side counter started again from zero.
    pub vpp_restarted: bool,
    /// Why the previous mapping was dropped, if it was.
    pub restart_reason: Option<RestartReason>,
}

/// Keeps a [`StatsClient`] mapped across VPP restarts and reads the lb counters.
#[derive(Debug)]
pub struct StatsPoller {
    path: PathBuf,
    client: Option<StatsClient>,
    last_boottime: Option<u64>,
}

impl StatsPoller {
    /// No connection is made until the first [`poll`](Self::poll).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            client: None,
            last_boottime: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current client, if connected.
    pub fn client(&self) -> Option<&StatsClient> {
        self.client.as_ref()
    }

    /// Drops the mapping; the next poll reconnects.
    pub fn disconnect(&mut self) {
        self.client = None;
    }

    /// Connects if needed, drops a mapping whose VPP is gone, and reads the counters.
    /// On any error the mapping is dropped so that the next poll starts afresh.
    pub async fn poll(
        &mut self,
        vip_indexes: &[u32],
        route_stat_indexes: &[u32],
    ) -> Result<PollOutcome, StatsError> {
        let mut restart_reason = None;
        if let Some(client) = self.client.take() {
            match client.restart_detected() {
                None => self.client = Some(client),
                Some(r) => restart_reason = Some(r),
            }
        }
        let reconnected = self.client.is_none();
        let client = match self.client.take() {
            Some(c) => c,
            None => StatsClient::connect(&self.path).await?,
        };
        let c = client.clone();
        let (vips, routes) = (vip_indexes.to_vec(), route_stat_indexes.to_vec());
        let snapshot = blocking(move || c.read_lb_counters(&vips, &routes)).await?;
        self.client = Some(client);
        let vpp_restarted = matches!(
            (self.last_boottime, snapshot.boottime),
            (Some(before), Some(now)) if before != now
        );
        if snapshot.boottime.is_some() {
            self.last_boottime = snapshot.boottime;
        }
        Ok(PollOutcome {
            snapshot,
            reconnected,
            vpp_restarted,
            restart_reason,
        })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StatsError> + Send + 'static,
) -> Result<T, StatsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StatsError::Task(e.to_string()))?
}
