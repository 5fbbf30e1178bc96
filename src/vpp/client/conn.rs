//! One live API connection: handshake, reader task, request/reply and dump routing,
//! timeouts, keepalive. A `Client` is cheap to clone; once closed it stays closed.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::error::{ApiErrorCode, VppError};
use super::table::{LbApiGeneration, MessageTable};
use crate::vpp::messages::memclnt::{
    ControlPing, ControlPingReply, MemclntKeepalive, MemclntKeepaliveReply, SOCKCLNT_CREATE_ID,
    SOCKCLNT_CREATE_REPLY_ID, SockclntCreate, SockclntCreateReply, SockclntDelete,
};
use crate::vpp::messages::{Dump, Request};
use crate::vpp::wire::{
    FixedString, FrameSplitter, Header, HeaderKind, Message, decode_message, encode_frame,
    encode_message, peek_context, peek_msg_id, read_frame,
};

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// VPP's API socket (`socksvr { socket-name }`), usually `/run/vpp/api.sock`.
    pub socket_path: PathBuf,
    /// Name shown in VPP's `show api clients` (at most 63 bytes).
    pub client_name: String,
    /// How long any request (and the handshake) may wait for its reply.
    pub request_timeout: Duration,
    /// Period of the liveness `control_ping`.
    pub keepalive_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            socket_path: PathBuf::from("/run/vpp/api.sock"),
            client_name: "maglev".to_string(),
            request_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
        }
    }
}

/// Context used for the handshake (vpp-papi uses 124, govpp 123; any non-zero works).
const HANDSHAKE_CONTEXT: u32 = 0x7b;

/// What a pending request waits for.
enum Pending {
    Reply(oneshot::Sender<Result<Vec<u8>, VppError>>),
    Dump {
        details_id: u16,
        items: Vec<Vec<u8>>,
        done: oneshot::Sender<Result<Vec<Vec<u8>>, VppError>>,
    },
}

/// Most bytes the writer task puts into one `write`: the frames queued while it wrote the
/// previous batch, in the order they were queued (whole calls, at least one).
const MAX_WRITE_BATCH: usize = 256 * 1024;

/// Frames waiting for the writer task, one entry per call (a dump and its ping together),
/// in the order the callers queued them.
#[derive(Default)]
struct Outbox {
    queue: Mutex<VecDeque<Queued>>,
    wake: Notify,
}

struct Queued {
    frames: Vec<u8>,
    /// Told when the frames are on the socket (or why they never will be).
    done: oneshot::Sender<Result<(), String>>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Shared {
    pending: HashMap<u32, Pending>,
    closed: Option<String>,
}

struct Inner {
    config: ClientConfig,
    table: MessageTable,
    generation: LbApiGeneration,
    client_index: u32,
    ping_id: u16,
    ping_reply_id: u16,
    next_context: AtomicU32,
    outbox: Arc<Outbox>,
    shared: Mutex<Shared>,
    closed_tx: watch::Sender<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shutdown_handle: socket2::Socket,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

/// A connected VPP API client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "client_index",
                &format_args!("{:#x}", self.inner.client_index),
            )
            .field("messages", &self.inner.table.len())
            .field("generation", &self.inner.generation)
            .finish()
    }
}

impl Client {
    /// Connects, registers with `sockclnt_create`, builds this connection's message
    /// table and starts the reader and keepalive tasks.
    pub async fn connect(config: ClientConfig) -> Result<Client, VppError> {
        let timeout = config.request_timeout;
        let path = config.socket_path.display().to_string();
        let stream = tokio::time::timeout(timeout, UnixStream::connect(&config.socket_path))
            .await
            .map_err(|_| VppError::Connect {
                path: path.clone(),
                reason: "timed out".to_string(),
            })?
            .map_err(|e| VppError::Connect {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        // A dup of the socket lets `close` shut it down synchronously, so VPP sees EOF
        // even while some task still holds the write half.
        let shutdown_handle =
            socket2::SockRef::from(&stream)
                .try_clone()
                .map_err(|e| VppError::Connect {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        let (mut reader, mut writer) = stream.into_split();

        let (client_index, table) = tokio::time::timeout(
            timeout,
            handshake(&mut reader, &mut writer, &config.client_name),
        )
        .await
        .map_err(|_| {
            VppError::Handshake(format!("no sockclnt_create_reply within {timeout:?}"))
        })??;

        let ping_id = require::<ControlPing>(&table)?;
        let ping_reply_id = require::<ControlPingReply>(&table)?;
        let generation = LbApiGeneration::detect(&table);
        let (closed_tx, _) = watch::channel(None);
        let outbox = Arc::new(Outbox::default());
        let inner = Arc::new(Inner {
            config,
            table,
            generation,
            client_index,
            ping_id,
            ping_reply_id,
            next_context: AtomicU32::new(1),
            outbox: outbox.clone(),
            shared: Mutex::new(Shared::default()),
            closed_tx,
            tasks: Mutex::new(Vec::new()),
            shutdown_handle,
        });
        let reader_task = tokio::spawn(read_loop(Arc::downgrade(&inner), reader));
        let writer_task = tokio::spawn(write_loop(Arc::downgrade(&inner), outbox, writer));
        let keepalive_task = tokio::spawn(keepalive_loop(Arc::downgrade(&inner)));
        if let Ok(mut tasks) = inner.tasks.lock() {
            tasks.push(reader_task);
            tasks.push(writer_task);
            tasks.push(keepalive_task);
        }
        debug!(
            client_index = format_args!("{client_index:#x}"),
            messages = inner.table.len(),
            ?generation,
            "connected to VPP"
        );
        Ok(Client { inner })
    }

    /// This connection's message table.
    pub fn table(&self) -> &MessageTable {
        &self.inner.table
    }

    /// The lb API generation detected from the message table.
    pub fn generation(&self) -> LbApiGeneration {
        self.inner.generation
    }

    /// The handle VPP assigned (used as `client_index`).
    pub fn client_index(&self) -> u32 {
        self.inner.client_index
    }

    /// Whether VPP knows message `M` with our CRC.
    pub fn supports<M: Message>(&self) -> bool {
        self.inner.table.contains::<M>()
    }

    /// `Some(reason)` once the connection is closed.
    pub fn closed_reason(&self) -> Option<String> {
        self.inner.shared.lock().ok().and_then(|s| s.closed.clone())
    }

    pub fn is_closed(&self) -> bool {
        self.closed_reason().is_some()
    }

    /// Resolves when the connection closes, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.inner.closed_tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "client dropped".to_string(),
        }
    }

    /// Sends `msg` and waits for its reply. A non-zero `retval` becomes [`VppError::Api`].
    pub async fn call<M: Request>(&self, msg: &M) -> Result<M::Reply, VppError> {
        let (header, reply) = self.call_raw(msg).await?;
        if <M::Reply as Message>::HEADER == HeaderKind::Reply && header.retval != 0 {
            return Err(VppError::Api {
                message: M::NAME,
                code: ApiErrorCode(header.retval),
            });
        }
        Ok(reply)
    }

    /// Sends `msg` and returns the reply with its header, whatever its retval. Each call is
    /// one DEBUG record (message, context, result, duration), as the Go tool logs them.
    pub async fn call_raw<M: Request>(&self, msg: &M) -> Result<(Header, M::Reply), VppError> {
        let context = self.next_context();
        let started = std::time::Instant::now();
        let r = self.call_raw_with(msg, context).await;
        let result = match &r {
            Ok((h, _)) if h.retval == 0 => "ok".to_string(),
            Ok((h, _)) => format!("retval {}", ApiErrorCode(h.retval)),
            Err(e) => e.to_string(),
        };
        debug!(target: "maglev::records::vpp_api", msg = M::NAME, context, result, duration = ?started.elapsed(), "VPP API call");
        r
    }

    async fn call_raw_with<M: Request>(
        &self,
        msg: &M,
        context: u32,
    ) -> Result<(Header, M::Reply), VppError> {
        let msg_id = self.id_of::<M>()?;
        let reply_id = self.id_of::<M::Reply>()?;
        let (tx, rx) = oneshot::channel();
        self.register(context, Pending::Reply(tx))?;
        let payload = encode_message(&self.request_header(msg_id, context), msg);
        self.send(&payload).await?;
        let reply = self.wait(context, rx, M::NAME).await?;
        let (header, body) = decode_message::<M::Reply>(&reply).map_err(|source| {
            self.close(format!("undecodable {}", <M::Reply as Message>::NAME));
            VppError::Decode {
                message: <M::Reply as Message>::NAME,
                source,
            }
        })?;
        if header.msg_id != reply_id {
            let got = self
                .inner
                .table
                .name(header.msg_id)
                .unwrap_or("unknown")
                .to_string();
            self.close(format!("{} answered by {got}", M::NAME));
            return Err(VppError::Disconnected(format!(
                "{} answered by {got}",
                M::NAME
            )));
        }
        Ok((header, body))
    }

    /// Sends a dump followed by a `control_ping` with the same context and collects
    /// the details until `control_ping_reply`.
    pub async fn dump<M: Dump>(&self, msg: &M) -> Result<Vec<M::Details>, VppError> {
        let context = self.next_context();
        let started = std::time::Instant::now();
        let r = self.dump_with(msg, context).await;
        let result = match &r {
            Ok(items) => format!("ok ({} details)", items.len()),
            Err(e) => e.to_string(),
        };
        debug!(target: "maglev::records::vpp_api", msg = M::NAME, context, result, duration = ?started.elapsed(), "VPP API call");
        r
    }

    async fn dump_with<M: Dump>(&self, msg: &M, context: u32) -> Result<Vec<M::Details>, VppError> {
        let msg_id = self.id_of::<M>()?;
        let details_id = self.id_of::<M::Details>()?;
        let (tx, rx) = oneshot::channel();
        self.register(
            context,
            Pending::Dump {
                details_id,
                items: Vec::new(),
                done: tx,
            },
        )?;
        let mut frames = encode_frame(
            &encode_message(&self.request_header(msg_id, context), msg),
            0,
            0,
        );
        let ping = encode_message(
            &self.request_header(self.inner.ping_id, context),
            &ControlPing {},
        );
        frames.extend(encode_frame(&ping, 0, 0));
        self.send_raw(frames).await?;
        let items = self.wait(context, rx, M::NAME).await?;
        items
            .iter()
            .map(|payload| {
                decode_message::<M::Details>(payload)
                    .map(|(_, d)| d)
                    .map_err(|source| VppError::Decode {
                        message: <M::Details as Message>::NAME,
                        source,
                    })
            })
            .collect()
    }

    /// Unregisters (`sockclnt_delete`) and closes. A missing reply is fine: VPP closes
    /// the socket after answering, and an EOF frees the registration anyway.
    pub async fn disconnect(&self) {
        if !self.is_closed() {
            let index = self.inner.client_index;
            let short = Duration::from_millis(100).min(self.inner.config.request_timeout);
            let _ = tokio::time::timeout(short, self.call_raw(&SockclntDelete { index })).await;
        }
        self.close("disconnected by client".to_string());
    }

    fn id_of<M: Message>(&self) -> Result<u16, VppError> {
        self.inner.table.id_of::<M>().ok_or_else(|| {
            let name_crc = M::name_crc();
            warn!(message = %name_crc, "VPP lacks this message (plugin not loaded or different API version); not sending");
            VppError::Unsupported { name_crc }
        })
    }

    fn next_context(&self) -> u32 {
        loop {
            let c = self.inner.next_context.fetch_add(1, Ordering::Relaxed);
            // Context 0 means "unsolicited" to other clients; never use it.
            if c != 0 {
                return c;
            }
        }
    }

    fn request_header(&self, msg_id: u16, context: u32) -> Header {
        Header {
            msg_id,
            client_index: self.inner.client_index,
            context,
            retval: 0,
        }
    }

    fn register(&self, context: u32, pending: Pending) -> Result<(), VppError> {
        let mut shared = self.lock_shared();
        if let Some(reason) = &shared.closed {
            return Err(VppError::Disconnected(reason.clone()));
        }
        shared.pending.insert(context, pending);
        Ok(())
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock_shared(&self.inner)
    }

    async fn send(&self, payload: &[u8]) -> Result<(), VppError> {
        self.send_raw(encode_frame(payload, 0, 0)).await
    }

    /// Queues `frames` for the writer task and waits until they are on the socket. Calls
    /// queued while the writer is busy go out together in one `write`, in queue order; one
    /// call's frames are never interleaved with another's.
    async fn send_raw(&self, frames: Vec<u8>) -> Result<(), VppError> {
        let (done, written) = oneshot::channel();
        self.inner.outbox.lock().push_back(Queued { frames, done });
        // `close` empties the outbox after stopping the writer; a call queued after that
        // must not wait for a writer that is gone.
        if let Some(reason) = self.closed_reason() {
            return Err(VppError::Disconnected(reason));
        }
        self.inner.outbox.wake.notify_one();
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(VppError::Disconnected(reason)),
            // The writer task is gone: the connection was closed.
            Err(_) => Err(VppError::Disconnected(
                self.closed_reason()
                    .unwrap_or_else(|| "writer stopped".to_string()),
            )),
        }
    }

    async fn wait<T>(
        &self,
        context: u32,
        rx: oneshot::Receiver<Result<T, VppError>>,
        message: &'static str,
    ) -> Result<T, VppError> {
        let after = self.inner.config.request_timeout;
        match tokio::time::timeout(after, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(VppError::Disconnected("reply channel dropped".to_string())),
            Err(_) => {
                self.lock_shared().pending.remove(&context);
                warn!(
                    message,
                    ?after,
                    "VPP did not answer; dropping the connection"
                );
                self.close(format!("{message} timed out after {after:?}"));
                Err(VppError::Timeout { message, after })
            }
        }
    }

    /// Marks the connection dead and fails every pending call.
    pub(crate) fn close(&self, reason: String) {
        close(&self.inner, reason);
    }
}

fn lock_shared(inner: &Inner) -> std::sync::MutexGuard<'_, Shared> {
    // A poisoned lock only means another task panicked mid-update; the map is still usable.
    inner
        .shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn close(inner: &Inner, reason: String) {
    let pending = {
        let mut shared = lock_shared(inner);
        if shared.closed.is_some() {
            return;
        }
        shared.closed = Some(reason.clone());
        std::mem::take(&mut shared.pending)
    };
    debug!(%reason, failed_calls = pending.len(), "VPP connection closed");
    for (_, p) in pending {
        let err = VppError::Disconnected(reason.clone());
        match p {
            Pending::Reply(tx) => {
                let _ = tx.send(Err(err));
            }
            Pending::Dump { done, .. } => {
                let _ = done.send(Err(err));
            }
        }
    }
    let _ = inner.shutdown_handle.shutdown(std::net::Shutdown::Both);
    inner.closed_tx.send_replace(Some(reason));
    if let Ok(mut tasks) = inner.tasks.lock() {
        for task in tasks.drain(..) {
            task.abort();
        }
    }
    // Frames the writer will never send: their callers get `Disconnected`.
    inner.outbox.lock().clear();
}

fn require<M: Message>(table: &MessageTable) -> Result<u16, VppError> {
    table
        .id_of::<M>()
        .ok_or_else(|| VppError::Handshake(format!("VPP does not announce {}", M::name_crc())))
}

async fn handshake(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    name: &str,
) -> Result<(u32, MessageTable), VppError> {
    let header = Header {
        msg_id: SOCKCLNT_CREATE_ID,
        context: HANDSHAKE_CONTEXT,
        ..Header::default()
    };
    let create = SockclntCreate {
        name: FixedString::new(name),
    };
    let io_err = |e: std::io::Error| VppError::Handshake(e.to_string());
    writer
        .write_all(&encode_frame(&encode_message(&header, &create), 0, 0))
        .await
        .map_err(io_err)?;
    loop {
        let payload = read_frame(reader)
            .await
            .map_err(|e| VppError::Handshake(e.to_string()))?
            .ok_or_else(|| VppError::Handshake("EOF before sockclnt_create_reply".to_string()))?;
        let msg_id = peek_msg_id(&payload).map_err(|e| VppError::Handshake(e.to_string()))?;
        if msg_id != SOCKCLNT_CREATE_REPLY_ID {
            debug!(msg_id, "ignoring message before sockclnt_create_reply");
            continue;
        }
        let (header, reply) =
            decode_message::<SockclntCreateReply>(&payload).map_err(|source| VppError::Decode {
                message: SockclntCreateReply::NAME,
                source,
            })?;
        if header.retval != 0 {
            return Err(VppError::Handshake(format!(
                "sockclnt_create response {}",
                header.retval
            )));
        }
        return Ok((
            reply.index,
            MessageTable::from_entries(&reply.message_table),
        ));
    }
}

/// Reads up to [`crate::vpp::wire::READ_CHUNK`] bytes per `recv` and dispatches every
/// complete frame in them; a partial frame waits for the next read.
async fn read_loop(weak: Weak<Inner>, mut reader: OwnedReadHalf) {
    let mut frames = FrameSplitter::new();
    loop {
        let read = reader.read_buf(frames.read_space()).await;
        let Some(inner) = weak.upgrade() else { return };
        match read {
            Ok(0) if frames.buffered() == 0 => {
                return close(&inner, "VPP closed the connection".to_string());
            }
            Ok(0) => {
                let partial = frames.buffered();
                return close(
                    &inner,
                    format!("read failed: EOF inside a frame ({partial} bytes of it)"),
                );
            }
            Ok(_) => {}
            Err(e) => return close(&inner, format!("read failed: {e}")),
        }
        loop {
            match frames.next_frame() {
                Ok(Some(payload)) => {
                    if let Err(reason) = dispatch(&inner, payload) {
                        return close(&inner, reason);
                    }
                }
                Ok(None) => break,
                Err(e) => return close(&inner, format!("read failed: {e}")),
            }
        }
    }
}

/// Writes the queued calls' frames: everything queued since the last write (up to
/// [`MAX_WRITE_BATCH`] bytes of whole calls) in one `write_all`, then tells those callers.
async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    weak: Weak<Inner>,
    outbox: Arc<Outbox>,
    mut writer: W,
) {
    let mut batch = Vec::new();
    let mut waiting = Vec::new();
    loop {
        {
            let mut queue = outbox.lock();
            while let Some(next) = queue.front() {
                if !batch.is_empty() && batch.len() + next.frames.len() > MAX_WRITE_BATCH {
                    break;
                }
                if let Some(q) = queue.pop_front() {
                    batch.extend_from_slice(&q.frames);
                    waiting.push(q.done);
                }
            }
        }
        if waiting.is_empty() {
            outbox.wake.notified().await;
            continue;
        }
        let result = writer.write_all(&batch).await;
        batch.clear();
        match result {
            Ok(()) => {
                for done in waiting.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                let reason = format!("write failed: {e}");
                for done in waiting.drain(..) {
                    let _ = done.send(Err(reason.clone()));
                }
                if let Some(inner) = weak.upgrade() {
                    close(&inner, reason);
                }
                return;
            }
        }
    }
}

/// Routes one received message. `Err` means the stream is garbage.
fn dispatch(inner: &Arc<Inner>, payload: Vec<u8>) -> Result<(), String> {
    let msg_id = peek_msg_id(&payload).map_err(|e| format!("garbage from VPP: {e}"))?;
    if Some(msg_id) == inner.table.id_of::<MemclntKeepalive>() {
        answer_keepalive(inner, &payload);
        return Ok(());
    }
    let context =
        peek_context(&payload, HeaderKind::Reply).map_err(|e| format!("garbage from VPP: {e}"))?;
    let mut shared = lock_shared(inner);
    let Some(pending) = shared.pending.get_mut(&context) else {
        debug!(msg_id, context, "dropping message without a waiting caller");
        return Ok(());
    };
    match pending {
        Pending::Reply(_) => {
            if let Some(Pending::Reply(tx)) = shared.pending.remove(&context) {
                let _ = tx.send(Ok(payload));
            }
        }
        Pending::Dump {
            details_id, items, ..
        } => {
            if msg_id == inner.ping_reply_id {
                if let Some(Pending::Dump { items, done, .. }) = shared.pending.remove(&context) {
                    let _ = done.send(Ok(items));
                }
            } else if msg_id == *details_id {
                items.push(payload);
            } else {
                debug!(msg_id, context, "unexpected message inside a dump; ignored");
            }
        }
    }
    Ok(())
}

/// VPP uses the keepalive's context as the client handle; echo it.
fn answer_keepalive(inner: &Arc<Inner>, payload: &[u8]) {
    let Ok((header, _)) = decode_message::<MemclntKeepalive>(payload) else {
        return;
    };
    let Some(reply_id) = inner.table.id_of::<MemclntKeepaliveReply>() else {
        return;
    };
    let reply = encode_message(
        &Header {
            msg_id: reply_id,
            context: header.context,
            ..Header::default()
        },
        &MemclntKeepaliveReply {},
    );
    let client = Client {
        inner: inner.clone(),
    };
    tokio::spawn(async move {
        let _ = client.send(&reply).await;
    });
}

async fn keepalive_loop(weak: Weak<Inner>) {
    let Some(period) = weak.upgrade().map(|i| i.config.keepalive_interval) else {
        return;
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticker.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let client = Client { inner };
        // A timeout closes the connection itself; nothing else to do here.
        if let Err(e) = client.call(&ControlPing {}).await {
            debug!(error = %e, "keepalive ping failed");
            if client.is_closed() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A socket that records each write call's bytes and accepts at most `per_call`.
    struct Recording {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        per_call: usize,
    }

    impl tokio::io::AsyncWrite for Recording {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.per_call);
            if let Ok(mut w) = self.writes.lock() {
                w.push(buf[..n].to_vec());
            }
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn queue(outbox: &Outbox, frames: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        let (done, rx) = oneshot::channel();
        outbox.lock().push_back(Queued { frames, done });
        rx
    }

    /// Frames of calls `0..n`, each `len` bytes long and tagged with its call number.
    fn calls(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut f = encode_frame(&vec![0u8; len - 16], 0, 0);
                f[..4].copy_from_slice(&u32::try_from(i).unwrap().to_be_bytes());
                f
            })
            .collect()
    }

    async fn run(frames: &[Vec<u8>], per_call: usize) -> Vec<Vec<u8>> {
        let outbox = Arc::new(Outbox::default());
        let done: Vec<_> = frames.iter().map(|f| queue(&outbox, f.clone())).collect();
        let writes = Arc::new(Mutex::new(Vec::new()));
        let writer = Recording {
            writes: writes.clone(),
            per_call,
        };
        let task = tokio::spawn(write_loop(Weak::new(), outbox.clone(), writer));
        for rx in done {
            assert_eq!(rx.await.unwrap(), Ok(()));
        }
        // A call queued after the writer went idle is written on its own.
        let late = queue(&outbox, b"late".to_vec());
        outbox.wake.notify_one();
        assert_eq!(late.await.unwrap(), Ok(()));
        task.abort();
        let mut w = writes.lock().unwrap().clone();
        assert_eq!(w.pop(), Some(b"late".to_vec()));
        w
    }

    #[tokio::test]
    async fn queued_calls_go_out_in_one_write_in_queue_order() {
        let frames = calls(16, 40);
        let writes = run(&frames, usize::MAX).await;
        assert_eq!(writes, vec![frames.concat()]);
    }

    #[tokio::test]
    async fn a_batch_stops_at_the_bound_on_a_call_boundary() {
        // 10 calls of 100 KiB: at most two whole calls per batch under the 256 KiB bound.
        let frames = calls(10, 100 * 1024);
        let writes = run(&frames, usize::MAX).await;
        let sizes: Vec<usize> = writes.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![200 * 1024; 5]);
        assert_eq!(writes.concat(), frames.concat());
        // A call larger than the bound still goes out whole, alone.
        let frames = calls(2, MAX_WRITE_BATCH + 1);
        let writes = run(&frames, usize::MAX).await;
        assert_eq!(writes, frames);
    }

    #[tokio::test]
    async fn short_writes_keep_the_byte_order() {
        let frames = calls(7, 33);
        let writes = run(&frames, 5).await;
        assert_eq!(writes.concat(), frames.concat());
    }
}
