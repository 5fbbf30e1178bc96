//! Raw sockets shared by many probes: one per (family, source address, namespace), opened
//! when a probe first needs it, read by one task that hands each message to the probe
//! waiting for it. A socket whose reader stopped is replaced on the next probe.
//!
//! The ICMP and tcp-syn checks differ only in how they open the socket and what they make
//! of a received message (the [`Demux`] they implement).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socket2::{SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use crate::health::result::ResultCode;

use super::errors::errno_text;
use super::rawio::{RecvBatch, send_batch};
use super::sockopt;
use super::{Outcome, ProbeSpec};

/// Which sockets exist: one per family, source address and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SocketKey {
    pub v6: bool,
    pub source: Option<IpAddr>,
    pub netns: Option<String>,
}

impl SocketKey {
    /// The socket a probe of `spec` goes through.
    pub fn of(spec: &ProbeSpec) -> SocketKey {
        SocketKey {
            v6: spec.addr.is_ipv6(),
            source: spec.source,
            netns: spec.netns.clone(),
        }
    }
}

/// A registered non-blocking socket and whether its reader gave up on it.
pub(super) struct RawSocket {
    fd: AsyncFd<Socket>,
    /// Set when the reader stopped; the pool then opens a new socket.
    closed: AtomicBool,
}

impl RawSocket {
    /// Binds `sock` to `source` (if any), makes it non-blocking and registers it with the
    /// runtime. Errors read `<label> <what>: <errno text>`.
    pub fn register(
        sock: Socket,
        source: Option<IpAddr>,
        label: &str,
    ) -> Result<RawSocket, Outcome> {
        let local = |what: &str, e: io::Error| {
            Outcome::new(
                ResultCode::SockErr,
                format!("{label} {what}: {}", errno_text(&e)),
            )
        };
        if let Some(src) = source {
            sock.bind(&SockAddr::from(SocketAddr::new(src, 0)))
                .map_err(|e| local(&format!("cannot bind source {src}"), e))?;
        }
        sock.set_nonblocking(true)
            .map_err(|e| local("set non-blocking", e))?;
        grow_receive_buffer(&sock);
        // SAFETY: the AsyncFd owns the socket, so the fd stays open and the same for its life.
        let fd = unsafe { AsyncFd::register(sock) }
            .map_err(|e| local("register", io::Error::from(e)))?;
        Ok(RawSocket {
            fd,
            closed: AtomicBool::new(false),
        })
    }

    /// Sends `packet` to `addr`. Port 0: raw IPv6 sockets reject any other value, ping
    /// sockets ignore it.
    pub async fn send_to(&self, packet: &[u8], addr: IpAddr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddr::new(addr, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send_to(packet, &to)) {
                Ok(res) => return res.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends what it can of `msgs` with one `sendmmsg`, waiting while the socket's
    /// buffer is full: Ok(n) for the first n sent, or the first message's error.
    pub async fn send_many(&self, msgs: &[(&[u8], &SockAddr)]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| send_batch(fd.get_ref(), msgs)) {
                Ok(res) => return res,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Sets the Don't Fragment bit on what an IPv4 socket sends (IP_PMTUDISC_PROBE: DF, yet
/// no path-MTU refusal; probes are far below any MTU). A datagram with DF set needs no
/// fragment ID, so the kernel writes 0 instead of drawing one from its shared ID table
/// (`__ip_select_ident`: ≈ 1.5 % of the daemon's CPU in a 10,000 × 1 s tcp-syn profile).
/// TCP's own sockets set DF the same way. Best effort: without it probes only cost more.
pub(super) fn dont_fragment(sock: &Socket) {
    let mode = libc::IP_PMTUDISC_PROBE;
    if let Err(e) = sockopt::set_int(sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, mode) {
        tracing::debug!(error = %e, "cannot set DF on a probe socket");
    }
}

/// Room for bursts of answers (a round of thousands of probes starting together) while
/// the reader task waits for its turn: SO_RCVBUFFORCE where permitted, else as much as
/// net.core.rmem_max allows. Best effort: the default still works, only less burst-proof.
fn grow_receive_buffer(sock: &Socket) {
    let bytes = 4 << 20;
    if sockopt::set_int(sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes).is_err() {
        let _ = sock.set_recv_buffer_size(4 << 20);
    }
}

/// A shared socket as the reader task sees it.
pub(super) trait Demux: Send + Sync + 'static {
    /// Names the socket in messages: "ICMP", "raw TCP".
    const LABEL: &'static str;

    fn raw(&self) -> &RawSocket;

    /// Hands one received message from `from` to the probe waiting for it.
    fn dispatch(&self, buf: &[u8], from: IpAddr);
}

/// The open sockets of one kind, and how many replies matched no probe.
pub(super) struct SocketPool<S> {
    sockets: tokio::sync::Mutex<HashMap<SocketKey, Open<S>>>,
    unmatched: Arc<AtomicU64>,
}

/// An open socket and the task reading it.
struct Open<S> {
    sock: Arc<S>,
    reader: JoinHandle<()>,
}

impl<S> Default for SocketPool<S> {
    fn default() -> Self {
        SocketPool {
            sockets: tokio::sync::Mutex::default(),
            unmatched: Arc::default(),
        }
    }
}

impl<S> Drop for SocketPool<S> {
    fn drop(&mut self) {
        for open in self.sockets.get_mut().values() {
            open.reader.abort();
        }
    }
}

impl<S: Demux> SocketPool<S> {
    /// Received replies that matched no outstanding probe (late, foreign or forged).
    pub fn unmatched_replies(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    /// The live socket of `key`, or a new one made by `open` (given the key and the
    /// unmatched-reply counter) with its reader task started.
    pub async fn socket_for<F, Fut>(&self, key: SocketKey, open: F) -> Result<Arc<S>, Outcome>
    where
        F: FnOnce(SocketKey, Arc<AtomicU64>) -> Fut,
        Fut: Future<Output = Result<S, Outcome>>,
    {
        let mut map = self.sockets.lock().await;
        if let Some(open) = map.get(&key)
            && !open.sock.raw().closed.load(Ordering::Relaxed)
        {
            return Ok(open.sock.clone());
        }
        let sock = Arc::new(open(key.clone(), self.unmatched.clone()).await?);
        let reader = tokio::spawn(read_loop(sock.clone()));
        let open = Open {
            sock: sock.clone(),
            reader,
        };
        if let Some(old) = map.insert(key, open) {
            old.reader.abort();
        }
        Ok(sock)
    }
}

/// Receives everything on the socket and dispatches it, until the pool aborts it or the
/// socket fails for good. One `recvmmsg` reads every queued message (up to a batch); a
/// short batch means the queue is empty, so no further call is made to learn that.
async fn read_loop<S: Demux>(sock: Arc<S>) {
    let label = S::LABEL;
    let fd = &sock.raw().fd;
    let mut batch = RecvBatch::new(READ_BATCH);
    let mut errors = 0u32;
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "{label} socket not readable; closing it");
                break;
            }
        };
        match batch.recv(fd.get_ref()) {
            Ok(n) => {
                errors = 0;
                for i in 0..n {
                    if let Some((buf, Some(from))) = batch.get(i) {
                        sock.dispatch(buf, from);
                    }
                }
                if n < batch.capacity() {
                    guard.clear_ready();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                errors += 1;
                if errors > 100 {
                    tracing::warn!(error = %e, "{label} socket keeps failing; closing it");
                    break;
                }
                tracing::debug!(error = %e, "{label} receive error");
                // ICMP errors queued on the socket can fail reads once; do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    sock.raw().closed.store(true, Ordering::Relaxed);
}

/// Messages read per `recvmmsg`.
const READ_BATCH: usize = 32;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use socket2::{Domain, Type};

    use super::*;

    /// A UDP socket standing in for a raw one: records what its reader dispatched.
    struct Recorder {
        raw: RawSocket,
        got: Mutex<Vec<(Vec<u8>, IpAddr)>>,
    }

    impl Demux for Recorder {
        const LABEL: &'static str = "test";

        fn raw(&self) -> &RawSocket {
            &self.raw
        }

        fn dispatch(&self, buf: &[u8], from: IpAddr) {
            self.got.lock().unwrap().push((buf.to_vec(), from));
        }
    }

    fn key(source: &str) -> SocketKey {
        SocketKey {
            v6: false,
            source: Some(source.parse().unwrap()),
            netns: None,
        }
    }

    /// Opens a recorder on the key's source and counts the opens.
    async fn open(key: SocketKey, opens: &AtomicUsize) -> Result<Recorder, Outcome> {
        opens.fetch_add(1, Ordering::Relaxed);
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        Ok(Recorder {
            raw: RawSocket::register(sock, key.source, Recorder::LABEL)?,
            got: Mutex::default(),
        })
    }

    async fn socket(
        pool: &SocketPool<Recorder>,
        k: SocketKey,
        opens: &AtomicUsize,
    ) -> Arc<Recorder> {
        pool.socket_for(k, |k, _| open(k, opens)).await.unwrap()
    }

    #[tokio::test]
    async fn one_socket_per_key_and_its_reader_dispatches() {
        let pool = SocketPool::default();
        let opens = AtomicUsize::new(0);
        let a = socket(&pool, key("127.0.0.1"), &opens).await;
        let again = socket(&pool, key("127.0.0.1"), &opens).await;
        assert!(Arc::ptr_eq(&a, &again));
        let other = socket(&pool, key("127.0.0.2"), &opens).await;
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(opens.load(Ordering::Relaxed), 2);

        let to = a.raw.fd.get_ref().local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
        sender.send_to(b"hello", to.as_socket().unwrap()).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(first) = a.got.lock().unwrap().first().cloned() {
                    return first;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the reader dispatched the datagram");
        assert_eq!(got, (b"hello".to_vec(), "127.0.0.3".parse().unwrap()));
        assert!(other.got.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_closed_socket_is_replaced() {
        let pool = SocketPool::default();
        let opens = AtomicUsize::new(0);
        let first = socket(&pool, key("127.0.0.1"), &opens).await;
        first.raw.closed.store(true, Ordering::Relaxed);
        let second = socket(&pool, key("127.0.0.1"), &opens).await;
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(opens.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_failed_open_is_returned_and_retried_next_time() {
        let pool: SocketPool<Recorder> = SocketPool::default();
        let opens = AtomicUsize::new(0);
        // 192.0.2.1 (TEST-NET) is no address of this host: binding to it fails.
        let err = pool
            .socket_for(key("192.0.2.1"), |k, _| open(k, &opens))
            .await
            .err()
            .expect("bind fails");
        assert_eq!(err.code, ResultCode::SockErr);
        assert!(
            err.detail
                .starts_with("test cannot bind source 192.0.2.1: "),
            "{}",
            err.detail
        );
        let _ = pool
            .socket_for(key("192.0.2.1"), |k, _| open(k, &opens))
            .await;
        assert_eq!(opens.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn the_pool_counts_unmatched_replies_for_its_sockets() {
        let pool: SocketPool<Recorder> = SocketPool::default();
        let counter = pool
            .socket_for(key("127.0.0.1"), |k, unmatched| async move {
                unmatched.fetch_add(3, Ordering::Relaxed);
                open(k, &AtomicUsize::new(0)).await
            })
            .await
            .map(|_| ());
        assert!(counter.is_ok());
        assert_eq!(pool.unmatched_replies(), 3);
    }
}
