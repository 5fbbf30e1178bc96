//! An in-process VPP test double speaking VPP's exact socket protocol (docs/vpp-wire.md §1) and
//! the lb plugin's semantics (§3.4, API 1.2.0; or 1.1.0 with its quirks, §3.5).
//!
//! - Frames: 16-byte header with garbage in the 8+4 ignored bytes of every reply.
//! - Message ids: memclnt's fixed ones, every other id random per start/restart.
//! - A request with a wrong `client_index`, an unknown id, or a truncated body gets no reply.
//! - Knobs: close after N messages, reply delay, one corrupt frame, restart empty.
//! - Inspection: VIPs/ASes with weights, flags and buckets; request counts by name.
//! - FIB: every VIP prefix gets a route in table 0 (shared by the VIPs of one prefix, as
//!   the lb plugin does) with its own `/net/route/to` stats index, answered by
//!   `ip_route_lookup`; feed that index to the stats double for route counters.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev::vpp::messages::ip::{IpRoute, IpRouteLookup, IpRouteLookupReply};
use maglev::vpp::messages::lb::*;
use maglev::vpp::messages::memclnt::*;
use maglev::vpp::messages::vpe::*;
use maglev::vpp::wire::schema::MessageDef;
use maglev::vpp::wire::{
    EncapType, FixedString, Header, IpDscp, IpProto, LbVip, Message, MessageTableEntry, Prefix,
    SrvType, VlaString, decode_message, encode_frame, encode_message, peek_msg_id, read_frame,
};
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::maglev_table::bucket_counts;

/// Which lb API the double offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMode {
    /// master / 26.10: lb 1.2.0, fixed handlers, weights.
    V1_2,
    /// 23.02–26.06: lb 1.1.0 with the handler bugs of docs/vpp-wire.md §3.5.
    V1_1,
}

/// An AS as the double holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsView {
    pub address: IpAddr,
    pub weight: u8,
    /// `LB_AS_FLAGS_USED`: false once deleted, until [`VppDouble::gc`].
    pub used: bool,
    pub num_buckets: u32,
}

/// A VIP as the double holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipView {
    pub index: u32,
    pub prefix: Prefix,
    pub protocol: u8,
    pub port: u16,
    pub encap: EncapType,
    pub src_ip_sticky: bool,
    pub table_len: u32,
    pub used: bool,
    pub ases: Vec<AsView>,
}

/// One lb write as the double received it (after the handler's own reading of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// When it arrived.
    pub at: std::time::Instant,
    /// Message name (`lb_as_set_weight`, ...) or `cli_inband: <command>`.
    pub msg: String,
    /// The VIP prefix as sent (before any 1.1.0 reinterpretation).
    pub prefix: Option<Prefix>,
    pub port: u16,
    pub address: Option<IpAddr>,
    pub weight: Option<u8>,
    pub is_del: bool,
    pub is_flush: bool,
    pub retval: i32,
}

#[derive(Default)]
struct Knobs {
    close_after: Option<usize>,
    /// `close_after` is cleared by the first connection it closes.
    close_once: bool,
    delay: Duration,
    corrupt_next: bool,
    absurd_length_next: bool,
}

#[derive(Debug, Clone, Copy)]
struct Conf {
    ip4: Ipv4Addr,
    ip6: Ipv6Addr,
    buckets: u32,
    timeout: u32,
}

impl Default for Conf {
    fn default() -> Self {
        Self {
            ip4: Ipv4Addr::BROADCAST,
            ip6: Ipv6Addr::from(u128::MAX),
            buckets: 1024,
            timeout: 40,
        }
    }
}

struct State {
    mode: ApiMode,
    pid: u32,
    ids: HashMap<String, u16>,
    names: HashMap<u16, &'static str>,
    next_registration: u32,
    conf: Conf,
    /// Pool; slot 0 is VPP's hidden placeholder VIP.
    vips: Vec<Option<VipView>>,
    /// VIPs whose ASes changed since their `num_buckets` were last computed; see [`settle`].
    stale: std::collections::HashSet<usize>,
    /// Table-0 routes of the VIP prefixes: prefix -> `/net/route/to` index.
    routes: HashMap<Prefix, u32>,
    next_route: u32,
    requests: HashMap<String, u64>,
    writes: Vec<WriteRecord>,
    keepalive_replies: u64,
    fatal: u64,
    knobs: Knobs,
    epoch: u64,
    outbound: Vec<mpsc::UnboundedSender<Vec<u8>>>,
}

/// The running double. Dropping it stops the listener and every connection.
pub struct VppDouble {
    _dir: tempfile::TempDir,
    path: PathBuf,
    state: Arc<Mutex<State>>,
    /// Connections accepted and messages received over the double's whole life
    /// (not reset by `restart_empty`).
    totals: Arc<Totals>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    listener: JoinHandle<()>,
}

impl Drop for VppDouble {
    fn drop(&mut self) {
        self.listener.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// Lifetime counters of a double.
#[derive(Default)]
struct Totals {
    accepted: std::sync::atomic::AtomicUsize,
    messages: std::sync::atomic::AtomicUsize,
    knob_closes: std::sync::atomic::AtomicUsize,
}

fn messages_for(mode: ApiMode) -> Vec<MessageDef> {
    let weighted_only = [
        "lb_conf_get",
        "lb_conf_get_reply",
        "lb_add_del_as_v2",
        "lb_add_del_as_v2_reply",
        "lb_as_set_weight",
        "lb_as_set_weight_reply",
        "lb_as_v2_dump",
        "lb_as_v2_details",
    ];
    maglev::vpp::messages::all_messages()
        .into_iter()
        .filter(|m| mode == ApiMode::V1_2 || !weighted_only.contains(&m.name))
        .collect()
}

/// memclnt's ids are fixed by declaration order; everything else is per process.
fn fixed_id(name: &str) -> Option<u16> {
    Some(match name {
        "sockclnt_create" => 15,
        "sockclnt_create_reply" => 16,
        "sockclnt_delete" => 17,
        "sockclnt_delete_reply" => 18,
        "memclnt_keepalive" => 21,
        "memclnt_keepalive_reply" => 22,
        "control_ping" => 23,
        "control_ping_reply" => 24,
        _ => return None,
    })
}

fn random_table(mode: ApiMode) -> (HashMap<String, u16>, HashMap<u16, &'static str>) {
    let mut rng = rand::rng();
    let mut free: Vec<u16> = (100..4000).collect();
    free.shuffle(&mut rng);
    let mut ids = HashMap::new();
    let mut names = HashMap::new();
    for def in messages_for(mode) {
        let id = fixed_id(def.name).unwrap_or_else(|| free.pop().unwrap_or(0));
        ids.insert(format!("{}_{}", def.name, def.crc), id);
        names.insert(id, def.name);
    }
    // Unrelated plugins' messages, as a real table has ~2000 of them.
    for i in 0..50 {
        let id = free.pop().unwrap_or(0);
        ids.insert(format!("filler_plugin_msg_{i}_0badc0de"), id);
    }
    (ids, names)
}

impl State {
    fn new(mode: ApiMode) -> Self {
        let (ids, names) = random_table(mode);
        Self {
            mode,
            pid: rand::rng().random_range(1000..4_000_000),
            ids,
            names,
            next_registration: 0,
            conf: Conf::default(),
            vips: vec![None],
            stale: std::collections::HashSet::new(),
            routes: HashMap::new(),
            // Like VPP, route stats indexes are unrelated to VIP pool indexes.
            next_route: 11,
            requests: HashMap::new(),
            writes: Vec::new(),
            keepalive_replies: 0,
            fatal: 0,
            knobs: Knobs::default(),
            epoch: 0,
            outbound: Vec::new(),
        }
    }

    fn id<M: Message>(&self) -> u16 {
        self.ids.get(&M::name_crc()).copied().unwrap_or(0)
    }

    fn reply<M: Message>(&self, context: u32, retval: i32, msg: &M) -> Vec<u8> {
        let header = Header {
            msg_id: self.id::<M>(),
            client_index: 0,
            context,
            retval,
        };
        encode_message(&header, msg)
    }
}

impl VppDouble {
    /// Starts a double on a fresh socket in a temp dir.
    pub async fn start(mode: ApiMode) -> VppDouble {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).expect("bind double socket");
        let state = Arc::new(Mutex::new(State::new(mode)));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let totals = Arc::new(Totals::default());
        let listener = {
            let state = state.clone();
            let conns = conns.clone();
            let totals = totals.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    totals
                        .accepted
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let epoch = {
                        let mut s = state.lock().unwrap();
                        s.outbound.push(tx);
                        s.epoch
                    };
                    let task =
                        tokio::spawn(serve(state.clone(), totals.clone(), stream, rx, epoch));
                    conns.lock().unwrap().push(task);
                }
            })
        };
        VppDouble {
            _dir: dir,
            path,
            state,
            totals,
            conns,
            listener,
        }
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    // ---- knobs ----

    /// Connections close, without answering, on receiving their (n+1)th message
    /// (the handshake counts as one).
    pub fn close_after(&self, n: Option<usize>) {
        self.state.lock().unwrap().knobs.close_after = n;
    }

    /// Like `close_after(Some(n))`, but only the first connection that reaches it is
    /// closed; the knob then clears itself (a reconnect gets a normal VPP).
    pub fn close_once_after(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.knobs.close_after = Some(n);
        s.knobs.close_once = true;
    }

    /// Delay every reply by `d`.
    pub fn set_reply_delay(&self, d: Duration) {
        self.state.lock().unwrap().knobs.delay = d;
    }

    /// The next reply is replaced by a frame whose body is garbage (an unknown id with a
    /// truncated context).
    pub fn corrupt_next_reply(&self) {
        self.state.lock().unwrap().knobs.corrupt_next = true;
    }

    /// The next reply is replaced by a header announcing an absurd (4 GiB) length.
    pub fn absurd_length_next_reply(&self) {
        self.state.lock().unwrap().knobs.absurd_length_next = true;
    }

    /// Simulates a VPP restart: every connection dropped, new pid, new random ids, no lb state.
    pub fn restart_empty(&self) {
        {
            let mut s = self.state.lock().unwrap();
            let mode = s.mode;
            let epoch = s.epoch + 1;
            *s = State::new(mode);
            s.epoch = epoch;
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Sends `memclnt_keepalive` to every connected client.
    pub fn send_keepalive(&self, context: u32) {
        let s = self.state.lock().unwrap();
        let header = Header {
            msg_id: s.id::<MemclntKeepalive>(),
            client_index: 0,
            context,
            retval: 0,
        };
        let payload = encode_message(&header, &MemclntKeepalive {});
        for tx in &s.outbound {
            let _ = tx.send(payload.clone());
        }
    }

    /// Simulates the lb garbage collector: removed ASes and VIPs disappear.
    pub fn gc(&self) {
        let mut s = self.state.lock().unwrap();
        for slot in s.vips.iter_mut().skip(1) {
            if let Some(v) = slot {
                v.ases.retain(|a| a.used);
                if !v.used {
                    *slot = None;
                }
            }
        }
    }

    // ---- inspection ----

    /// Connections accepted since the double started (restarts included).
    pub fn connections_accepted(&self) -> usize {
        self.totals
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Messages received (handshakes included) since the double started.
    pub fn messages_received(&self) -> usize {
        self.totals
            .messages
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections closed by the `close_after` knob so far.
    pub fn knob_closes(&self) -> usize {
        self.totals
            .knob_closes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn pid(&self) -> u32 {
        self.state.lock().unwrap().pid
    }

    /// The id this run of the double gave to `name_crc`.
    pub fn msg_id(&self, name_crc: &str) -> Option<u16> {
        self.state.lock().unwrap().ids.get(name_crc).copied()
    }

    /// Every VIP in the pool (removed ones included, with `used == false`).
    pub fn vips(&self) -> Vec<VipView> {
        let mut s = self.state.lock().unwrap();
        settle(&mut s);
        s.vips.iter().flatten().cloned().collect()
    }

    /// The VIP with this key, if any (used or not).
    pub fn vip(&self, prefix: Prefix, port: u16) -> Option<VipView> {
        let p = prefix.normalized();
        self.vips()
            .into_iter()
            .find(|v| v.prefix == p && v.port == port && v.used)
    }

    /// The `/net/route/to` index of the table-0 route of `prefix`, if it has one.
    pub fn route_stats_index(&self, prefix: Prefix) -> Option<u32> {
        self.state
            .lock()
            .unwrap()
            .routes
            .get(&prefix.normalized())
            .copied()
    }

    /// Removes the route of `prefix` (as if someone deleted it behind lb's back).
    pub fn remove_route(&self, prefix: Prefix) {
        self.state
            .lock()
            .unwrap()
            .routes
            .remove(&prefix.normalized());
    }

    /// How many requests named `name` (no CRC) arrived since the last start/restart.
    pub fn requests(&self, name: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .requests
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Every lb write (and `lb …` CLI command) since the last start/restart, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.state.lock().unwrap().writes.clone()
    }

    pub fn keepalive_replies(&self) -> u64 {
        self.state.lock().unwrap().keepalive_replies
    }

    /// Requests that would have crashed a real VPP (e.g. a 0 new-flow table length).
    pub fn fatal_requests(&self) -> u64 {
        self.state.lock().unwrap().fatal
    }
}

enum Outcome {
    Reply(Vec<Vec<u8>>),
    Close(Vec<Vec<u8>>),
}

async fn serve(
    state: Arc<Mutex<State>>,
    totals: Arc<Totals>,
    stream: UnixStream,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
    epoch: u64,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut handle: Option<u32> = None;
    let mut received = 0usize;
    loop {
        let payload = tokio::select! {
            frame = read_frame(&mut rd) => match frame {
                Ok(Some(p)) => p,
                _ => return,
            },
            Some(push) = outbound.recv() => {
                if write_reply(&state, &mut wr, push).await.is_err() {
                    return;
                }
                continue;
            }
        };
        received += 1;
        totals
            .messages
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (outcome, delay) = {
            let mut s = state.lock().unwrap();
            if s.epoch != epoch {
                return;
            }
            if s.knobs.close_after.is_some_and(|n| received > n) {
                if std::mem::take(&mut s.knobs.close_once) {
                    s.knobs.close_after = None;
                }
                totals
                    .knob_closes
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            (handle_message(&mut s, &payload, &mut handle), s.knobs.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (replies, close) = match outcome {
            Outcome::Reply(r) => (r, false),
            Outcome::Close(r) => (r, true),
        };
        for r in replies {
            if write_reply(&state, &mut wr, r).await.is_err() {
                return;
            }
        }
        if close {
            return;
        }
    }
}

/// Writes a reply frame with garbage in the ignored header fields, applying fault knobs.
async fn write_reply(
    state: &Arc<Mutex<State>>,
    wr: &mut tokio::net::unix::OwnedWriteHalf,
    payload: Vec<u8>,
) -> std::io::Result<()> {
    let (corrupt, absurd) = {
        let mut s = state.lock().unwrap();
        let c = std::mem::take(&mut s.knobs.corrupt_next);
        let a = std::mem::take(&mut s.knobs.absurd_length_next);
        (c, a)
    };
    let (q, gc): (u64, u32) = {
        let mut rng = rand::rng();
        (rng.random(), rng.random())
    };
    let frame = if absurd {
        let mut h = vec![0u8; 16];
        h[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        h.extend_from_slice(&payload);
        h
    } else if corrupt {
        encode_frame(&[0xff, 0xff, 0x01], q, gc)
    } else {
        encode_frame(&payload, q, gc)
    };
    // VPP writes in <= 4 KiB chunks; so do we.
    for chunk in frame.chunks(4096) {
        wr.write_all(chunk).await?;
    }
    wr.flush().await
}

fn handle_message(s: &mut State, payload: &[u8], handle: &mut Option<u32>) -> Outcome {
    let none = Outcome::Reply(Vec::new());
    let Ok(msg_id) = peek_msg_id(payload) else {
        return none;
    };
    if msg_id == 15 {
        let Ok((h, _)) = decode_message::<SockclntCreate>(payload) else {
            return none;
        };
        let index = 0x8000_0000 | s.next_registration;
        s.next_registration += 1;
        *handle = Some(index);
        let mut table: Vec<MessageTableEntry> = s
            .ids
            .iter()
            .map(|(name, id)| MessageTableEntry {
                index: *id,
                name: FixedString::new(name.clone()),
            })
            .collect();
        table.shuffle(&mut rand::rng());
        let reply = encode_message(
            &Header {
                msg_id: 16,
                client_index: 0,
                context: h.context,
                retval: 0,
            },
            &SockclntCreateReply::new(index, table),
        );
        return Outcome::Reply(vec![reply]);
    }
    let Some(name) = s.names.get(&msg_id).copied() else {
        // "no handler for msg id": nothing sent.
        return none;
    };
    if name == "memclnt_keepalive_reply" {
        s.keepalive_replies += 1;
        return none;
    }
    // Every handler resolves client_index first and returns silently on failure.
    let Ok((h, _)) = decode_message::<ControlPing>(payload) else {
        return none;
    };
    if Some(h.client_index) != *handle {
        return none;
    }
    *s.requests.entry(name.to_string()).or_default() += 1;
    let ctx = h.context;
    macro_rules! req {
        ($t:ty) => {
            match decode_message::<$t>(payload) {
                Ok((_, m)) => m,
                // "Truncated message": dropped.
                Err(_) => return none,
            }
        };
    }
    let one = |r: Vec<u8>| Outcome::Reply(vec![r]);
    match name {
        "control_ping" => one(s.reply(
            ctx,
            0,
            &ControlPingReply {
                client_index: h.client_index,
                vpe_pid: s.pid,
            },
        )),
        "sockclnt_delete" => {
            let m = req!(SockclntDelete);
            let response = if Some(m.index) == *handle { 1 } else { -1 };
            Outcome::Close(vec![s.reply(ctx, response, &SockclntDeleteReply {})])
        }
        "show_version" => one(s.reply(
            ctx,
            0,
            &ShowVersionReply {
                program: FixedString::new("vpe"),
                version: FixedString::new(match s.mode {
                    ApiMode::V1_2 => "26.10-rc0~42-gdouble",
                    ApiMode::V1_1 => "26.06-release",
                }),
                build_date: FixedString::new("2026-08-01T00:00:00"),
                build_directory: FixedString::new("/w/workspace/vpp"),
            },
        )),
        "cli_inband" => {
            let m = req!(CliInband);
            let (retval, text) = cli(s, m.cmd.as_str());
            one(s.reply(
                ctx,
                retval,
                &CliInbandReply {
                    reply: VlaString::new(text),
                },
            ))
        }
        "lb_conf" => {
            let m = req!(LbConf);
            let rv = lb_conf(s, &m);
            let rec = WriteRecord::new("lb_conf", None, 0, None, None, false, false);
            recorded(s, ctx, rec.with_retval(rv), &LbConfReply {})
        }
        "lb_conf_get" => one(s.reply(
            ctx,
            0,
            &LbConfGetReply {
                ip4_src_address: s.conf.ip4,
                ip6_src_address: s.conf.ip6,
                sticky_buckets_per_core: s.conf.buckets,
                flow_timeout: s.conf.timeout,
            },
        )),
        "lb_add_del_vip" => {
            let m = req!(LbAddDelVip);
            let args = VipArgs {
                pfx: m.pfx,
                protocol: m.protocol,
                port: m.port,
                encap: m.encap,
                dscp: m.dscp,
                table_len: m.new_flows_table_length,
                src_ip_sticky: false,
                is_del: m.is_del,
                from_cli: false,
            };
            vip_write(s, ctx, "lb_add_del_vip", args, &LbAddDelVipReply {})
        }
        "lb_add_del_vip_v2" => {
            let m = req!(LbAddDelVipV2);
            let args = VipArgs {
                pfx: m.pfx,
                protocol: m.protocol,
                port: m.port,
                encap: m.encap,
                dscp: m.dscp,
                table_len: m.new_flows_table_length,
                src_ip_sticky: m.src_ip_sticky,
                is_del: m.is_del,
                from_cli: false,
            };
            vip_write(s, ctx, "lb_add_del_vip_v2", args, &LbAddDelVipV2Reply {})
        }
        "lb_add_del_as" => {
            let m = req!(LbAddDelAs);
            let rv = add_del_as(s, m.pfx, m.protocol, m.port, m.as_address, 100, m.is_del);
            let rec = WriteRecord::new(
                "lb_add_del_as",
                Some(m.pfx),
                m.port,
                Some(m.as_address),
                None,
                m.is_del,
                m.is_flush,
            );
            recorded(s, ctx, rec.with_retval(rv), &LbAddDelAsReply {})
        }
        "lb_add_del_as_v2" => {
            let m = req!(LbAddDelAsV2);
            let rv = add_del_as(
                s,
                m.pfx,
                m.protocol,
                m.port,
                m.as_address,
                m.weight,
                m.is_del,
            );
            let rec = WriteRecord::new(
                "lb_add_del_as_v2",
                Some(m.pfx),
                m.port,
                Some(m.as_address),
                Some(m.weight),
                m.is_del,
                m.is_flush,
            );
            recorded(s, ctx, rec.with_retval(rv), &LbAddDelAsV2Reply {})
        }
        "lb_as_set_weight" => {
            let m = req!(LbAsSetWeight);
            let rv = set_weight(s, m.pfx, m.protocol, m.port, m.as_address, m.weight);
            let rec = WriteRecord::new(
                "lb_as_set_weight",
                Some(m.pfx),
                m.port,
                Some(m.as_address),
                Some(m.weight),
                false,
                m.is_flush,
            );
            recorded(s, ctx, rec.with_retval(rv), &LbAsSetWeightReply {})
        }
        "lb_flush_vip" => {
            let _ = req!(LbFlushVip);
            one(s.reply(ctx, 0, &LbFlushVipReply {}))
        }
        "lb_add_del_intf_nat4" => {
            let _ = req!(LbAddDelIntfNat4);
            one(s.reply(ctx, 0, &LbAddDelIntfNat4Reply {}))
        }
        "lb_add_del_intf_nat6" => {
            let _ = req!(LbAddDelIntfNat6);
            one(s.reply(ctx, 0, &LbAddDelIntfNat6Reply {}))
        }
        "lb_vip_dump" => {
            let _ = req!(LbVipDump);
            let details = vip_details(s);
            Outcome::Reply(details.iter().map(|d| s.reply(ctx, 0, d)).collect())
        }
        "lb_as_dump" => {
            let m = req!(LbAsDump);
            settle(s);
            let out = as_details(s, m.pfx, m.port)
                .into_iter()
                .map(|(vip, a)| {
                    s.reply(
                        ctx,
                        0,
                        &LbAsDetails {
                            vip,
                            app_srv: a.address,
                            flags: u8::from(a.used),
                            in_use_since: 0,
                        },
                    )
                })
                .collect();
            Outcome::Reply(out)
        }
        "lb_as_v2_dump" => {
            let m = req!(LbAsV2Dump);
            settle(s);
            let out = as_details(s, m.pfx, m.port)
                .into_iter()
                .map(|(vip, a)| {
                    s.reply(
                        ctx,
                        0,
                        &LbAsV2Details {
                            vip,
                            app_srv: a.address,
                            flags: u8::from(a.used),
                            in_use_since: 0,
                            weight: a.weight,
                            num_buckets: a.num_buckets,
                        },
                    )
                })
                .collect();
            Outcome::Reply(out)
        }
        "ip_route_lookup" => {
            let m = req!(IpRouteLookup);
            let pfx = m.prefix.0.normalized();
            // Exact match only, like maglev asks; a missing entry is NO_SUCH_ENTRY with a
            // zeroed route.
            let found = (m.table_id == 0 && m.exact == 1)
                .then(|| s.routes.get(&pfx).copied())
                .flatten();
            let (retval, stats_index) = match found {
                Some(i) => (0, i),
                None => (E_NO_SUCH_ENTRY, 0),
            };
            one(s.reply(
                ctx,
                retval,
                &IpRouteLookupReply {
                    route: IpRoute {
                        table_id: m.table_id,
                        stats_index,
                        prefix: m.prefix,
                        n_paths: 0,
                        paths: Vec::new(),
                    },
                },
            ))
        }
        // Anything else we registered but do not model: no handler, no reply.
        _ => none,
    }
}

/// Logs a write and answers it with the write's retval.
fn recorded<R: Message>(s: &mut State, ctx: u32, rec: WriteRecord, reply: &R) -> Outcome {
    let rv = rec.retval;
    s.writes.push(rec);
    Outcome::Reply(vec![s.reply(ctx, rv, reply)])
}

/// lb_add_del_vip(_v2): applies `args`, logs the write and answers; a request that
/// would have crashed VPP drops the connection instead.
fn vip_write<R: Message>(s: &mut State, ctx: u32, msg: &str, args: VipArgs, reply: &R) -> Outcome {
    let rec = WriteRecord::new(
        msg,
        Some(args.pfx),
        args.port,
        None,
        None,
        args.is_del,
        false,
    );
    match add_del_vip(s, args) {
        Some(rv) => recorded(s, ctx, rec.with_retval(rv), reply),
        None => Outcome::Close(Vec::new()),
    }
}

const E_NO_SUCH_ENTRY: i32 = -6;
const E_INVALID_MEMORY_SIZE: i32 = -70;
const E_INVALID_ARGUMENT: i32 = -73;
const E_VALUE_EXIST: i32 = -81;
const E_INVALID_ADDRESS_FAMILY: i32 = -97;

fn lb_conf(s: &mut State, m: &LbConf) -> i32 {
    if m.sticky_buckets_per_core != KEEP_CURRENT && !m.sticky_buckets_per_core.is_power_of_two() {
        return E_INVALID_MEMORY_SIZE;
    }
    s.conf.ip4 = m.ip4_src_address;
    s.conf.ip6 = m.ip6_src_address;
    if m.sticky_buckets_per_core != KEEP_CURRENT {
        s.conf.buckets = m.sticky_buckets_per_core;
    }
    if m.flow_timeout != KEEP_CURRENT {
        s.conf.timeout = m.flow_timeout;
    }
    0
}

/// How the handler reads an incoming prefix. 1.1.0 wants IPv4 with `len + 96`; an
/// IPv4 address with a smaller length is taken as the IPv6 prefix `::/len`.
fn incoming_prefix(mode: ApiMode, p: Prefix) -> Prefix {
    match (mode, p.addr) {
        (ApiMode::V1_1, IpAddr::V4(_)) if p.len >= 96 => {
            Prefix::new(p.addr, p.len - 96).normalized()
        }
        (ApiMode::V1_1, IpAddr::V4(_)) => {
            Prefix::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), p.len).normalized()
        }
        _ => p.normalized(),
    }
}

/// 1.1.0 compares the network-order encap with host constants: only 0 survives.
fn incoming_encap(mode: ApiMode, e: EncapType) -> EncapType {
    match mode {
        ApiMode::V1_2 => e,
        ApiMode::V1_1 => EncapType(e.0.swap_bytes()),
    }
}

impl WriteRecord {
    fn new(
        msg: &str,
        prefix: Option<Prefix>,
        port: u16,
        address: Option<IpAddr>,
        weight: Option<u8>,
        is_del: bool,
        is_flush: bool,
    ) -> Self {
        WriteRecord {
            at: std::time::Instant::now(),
            msg: msg.to_string(),
            prefix,
            port,
            address,
            weight,
            is_del,
            is_flush,
            retval: 0,
        }
    }

    fn with_retval(mut self, retval: i32) -> Self {
        self.retval = retval;
        self
    }
}

struct VipArgs {
    /// `from_cli`: prefix and encap as the CLI parsed them (no API quirks).
    from_cli: bool,
    pfx: Prefix,
    protocol: u8,
    port: u16,
    encap: EncapType,
    dscp: u8,
    table_len: u32,
    src_ip_sticky: bool,
    is_del: bool,
}

fn find_vip(s: &State, pfx: Prefix, protocol: u8, port: u16) -> Option<usize> {
    let protocol = if port == 0 { PROTOCOL_ANY } else { protocol };
    s.vips.iter().position(|v| {
        v.as_ref()
            .is_some_and(|v| v.used && v.prefix == pfx && v.port == port && v.protocol == protocol)
    })
}

/// `None` = the request would have crashed VPP: the connection drops.
fn add_del_vip(s: &mut State, a: VipArgs) -> Option<i32> {
    let pfx = if a.from_cli {
        a.pfx.normalized()
    } else {
        incoming_prefix(s.mode, a.pfx)
    };
    let protocol = if a.port == 0 {
        PROTOCOL_ANY
    } else {
        a.protocol
    };
    if a.is_del {
        let Some(i) = find_vip(s, pfx, protocol, a.port) else {
            return Some(E_NO_SUCH_ENTRY);
        };
        if let Some(v) = s.vips[i].as_mut() {
            v.used = false;
            for a in &mut v.ases {
                a.used = false;
            }
            s.stale.insert(i);
        }
        let shared = s.vips.iter().flatten().any(|v| v.used && v.prefix == pfx);
        if !shared {
            s.routes.remove(&pfx);
        }
        return Some(0);
    }
    if a.table_len == 0 {
        // is_pow2(0) holds in vppinfra: VPP tries to allocate 4 G entries and dies.
        s.fatal += 1;
        return None;
    }
    if !a.table_len.is_power_of_two() {
        return Some(E_INVALID_MEMORY_SIZE);
    }
    let encap = if a.from_cli {
        a.encap
    } else {
        incoming_encap(s.mode, a.encap)
    };
    let encap = match pfx.addr {
        IpAddr::V4(_) => match encap {
            EncapType::GRE4 | EncapType::GRE6 | EncapType::L3DSR | EncapType::NAT4 => encap,
            _ => return Some(E_INVALID_ADDRESS_FAMILY),
        },
        IpAddr::V6(_) => match encap {
            EncapType::GRE4 | EncapType::GRE6 | EncapType::NAT6 => encap,
            // Internal type stays 0 = ip6-gre6.
            _ => EncapType::GRE6,
        },
    };
    if encap == EncapType::L3DSR && a.dscp >= 64 {
        return Some(E_VALUE_EXIST);
    }
    for v in s
        .vips
        .iter()
        .flatten()
        .filter(|v| v.used && v.prefix == pfx)
    {
        if v.port == a.port && v.protocol == protocol {
            return Some(E_VALUE_EXIST);
        }
        if (v.port == 0) != (a.port == 0) {
            return Some(E_VALUE_EXIST);
        }
        if v.port != 0 && v.encap != encap {
            return Some(E_INVALID_ARGUMENT);
        }
    }
    let view = VipView {
        index: 0,
        prefix: pfx,
        protocol,
        port: a.port,
        encap,
        src_ip_sticky: a.src_ip_sticky,
        table_len: a.table_len,
        used: true,
        ases: Vec::new(),
    };
    let slot = match s.vips.iter().skip(1).position(Option::is_none) {
        Some(i) => i + 1,
        None => {
            s.vips.push(None);
            s.vips.len() - 1
        }
    };
    s.vips[slot] = Some(VipView {
        index: slot as u32,
        ..view
    });
    if !s.routes.contains_key(&pfx) {
        let index = s.next_route;
        s.next_route += 1;
        s.routes.insert(pfx, index);
    }
    Some(0)
}

/// Families the encap tunnels over; VPP's `ip46_address_is_ip4` treats ::/96 as IPv4.
fn as_family_ok(encap: EncapType, addr: IpAddr) -> bool {
    let is_ip4 = match addr {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => u128::from(v6) >> 32 == 0,
    };
    match encap {
        EncapType::GRE4 | EncapType::L3DSR | EncapType::NAT4 => is_ip4,
        _ => !is_ip4,
    }
}

fn add_del_as(
    s: &mut State,
    pfx: Prefix,
    protocol: u8,
    port: u16,
    addr: IpAddr,
    weight: u8,
    is_del: bool,
) -> i32 {
    let pfx = incoming_prefix(s.mode, pfx);
    let Some(i) = find_vip(s, pfx, protocol, port) else {
        return E_NO_SUCH_ENTRY;
    };
    let Some(v) = s.vips[i].as_mut() else {
        return E_NO_SUCH_ENTRY;
    };
    let existing = v.ases.iter().position(|a| a.address == addr);
    if is_del {
        match existing {
            Some(j) if v.ases[j].used => v.ases[j].used = false,
            _ => return E_NO_SUCH_ENTRY,
        }
    } else {
        if !as_family_ok(v.encap, addr) {
            return E_INVALID_ADDRESS_FAMILY;
        }
        match existing {
            Some(j) if v.ases[j].used => return E_VALUE_EXIST,
            Some(j) => {
                v.ases[j].used = true;
                v.ases[j].weight = weight;
            }
            None => v.ases.push(AsView {
                address: addr,
                weight,
                used: true,
                num_buckets: 0,
            }),
        }
    }
    s.stale.insert(i);
    0
}

fn set_weight(
    s: &mut State,
    pfx: Prefix,
    protocol: u8,
    port: u16,
    addr: IpAddr,
    weight: u8,
) -> i32 {
    let pfx = incoming_prefix(s.mode, pfx);
    let Some(i) = find_vip(s, pfx, protocol, port) else {
        return E_NO_SUCH_ENTRY;
    };
    let Some(v) = s.vips[i].as_mut() else {
        return E_NO_SUCH_ENTRY;
    };
    match v.ases.iter_mut().find(|a| a.address == addr && a.used) {
        Some(a) => a.weight = weight,
        None => return E_NO_SUCH_ENTRY,
    }
    s.stale.insert(i);
    0
}

/// Brings `num_buckets` up to date in every VIP changed since the last call. The double
/// computes them when something reads them (dumps, `show lb vips verbose`, inspection),
/// not on every AS write as VPP does: the values read are the same, and a full sync of
/// 64,000 ASes does not spend its time in 64,000 table rebuilds of the test process.
fn settle(s: &mut State) {
    let mode = s.mode;
    for i in std::mem::take(&mut s.stale) {
        if let Some(Some(v)) = s.vips.get_mut(i) {
            recompute(mode, v);
        }
    }
}

/// Recomputes every AS's share of the new-flow table.
fn recompute(mode: ApiMode, v: &mut VipView) {
    let input: Vec<(IpAddr, u32)> = v
        .ases
        .iter()
        .map(|a| {
            let replicas = match (a.used, mode) {
                (false, _) => 0,
                // 1.1.0: one permutation per AS, no weights.
                (true, ApiMode::V1_1) => 1,
                (true, ApiMode::V1_2) => u32::from(a.weight),
            };
            (a.address, replicas)
        })
        .collect();
    let counts = bucket_counts(&input, v.table_len);
    for (a, n) in v.ases.iter_mut().zip(counts) {
        a.num_buckets = n;
    }
}

/// Internal `lb_vip_type` (what 1.1.0 dumps in `encap`).
fn vip_type(v: &VipView) -> u32 {
    match (v.prefix.addr.is_ipv4(), v.encap) {
        (false, EncapType::GRE6) => 0,
        (false, EncapType::GRE4) => 1,
        (true, EncapType::GRE6) => 2,
        (true, EncapType::GRE4) => 3,
        (true, EncapType::L3DSR) => 4,
        (true, EncapType::NAT4) => 5,
        (false, EncapType::NAT6) => 6,
        _ => 0,
    }
}

fn vip_type_name(v: &VipView) -> &'static str {
    [
        "ip6-gre6",
        "ip6-gre4",
        "ip4-gre6",
        "ip4-gre4",
        "ip4-l3dsr",
        "ip4-nat4",
        "ip6-nat6",
    ][vip_type(v) as usize]
}

fn vip_key(mode: ApiMode, v: &VipView) -> LbVip {
    match mode {
        ApiMode::V1_2 => LbVip {
            pfx: v.prefix,
            protocol: IpProto(v.protocol),
            port: v.port,
        },
        // Low byte of htonl(protocol), internal ip46 length.
        ApiMode::V1_1 => LbVip {
            pfx: match v.prefix.addr {
                IpAddr::V4(_) => Prefix::new(v.prefix.addr, v.prefix.len + 96),
                IpAddr::V6(_) => v.prefix,
            },
            protocol: IpProto((u32::from(v.protocol).swap_bytes() & 0xff) as u8),
            port: v.port,
        },
    }
}

fn vip_details(s: &State) -> Vec<LbVipDetails> {
    s.vips
        .iter()
        .flatten()
        // master hides removed VIPs, 26.06 lists them.
        .filter(|v| v.used || s.mode == ApiMode::V1_1)
        .map(|v| LbVipDetails {
            vip: vip_key(s.mode, v),
            encap: match s.mode {
                ApiMode::V1_2 => v.encap,
                ApiMode::V1_1 => EncapType(vip_type(v)),
            },
            dscp: IpDscp(0),
            srv_type: SrvType::CLUSTERIP,
            target_port: 0,
            flow_table_length: match s.mode {
                ApiMode::V1_2 => v.table_len as u16,
                ApiMode::V1_1 => (v.table_len.swap_bytes() & 0xffff) as u16,
            },
        })
        .collect()
}

/// AS dump filter: an all-zero prefix means everything; an IPv4 filter never matches
/// (the handler compares against the internal ip46 layout).
fn as_details(s: &State, filter: Prefix, port: u16) -> Vec<(LbVip, AsView)> {
    let all = match filter.addr {
        IpAddr::V4(a) => a.is_unspecified(),
        IpAddr::V6(a) => a.is_unspecified(),
    };
    let mut out = Vec::new();
    for v in s.vips.iter().flatten() {
        if !all {
            let matches =
                filter.addr.is_ipv6() && filter.normalized() == v.prefix && port == v.port;
            if !matches {
                continue;
            }
        }
        for a in &v.ases {
            out.push((vip_key(s.mode, v), a.clone()));
        }
    }
    out
}

fn cli(s: &mut State, cmd: &str) -> (i32, String) {
    let cmd = cmd.trim();
    if let Some(args) = cmd.strip_prefix("lb vip ") {
        let (rv, text) = cli_lb_vip(s, args);
        let rec = WriteRecord::new(
            &format!("cli_inband: {cmd}"),
            None,
            0,
            None,
            None,
            args.contains(" del"),
            false,
        );
        s.writes.push(rec.with_retval(rv));
        return (rv, text);
    }
    if cmd == "show version" {
        let v = match s.mode {
            ApiMode::V1_2 => "26.10-rc0~42-gdouble",
            ApiMode::V1_1 => "26.06-release",
        };
        return (
            0,
            format!("vpp v{v} built by double on localhost at 2026-08-01T00:00:00\n"),
        );
    }
    if cmd == "show lb vips verbose" {
        settle(s);
        return (0, show_lb_vips_verbose(s));
    }
    (-1, format!("unknown input `{cmd}'\n"))
}

/// `lb vip <prefix> [protocol (tcp|udp) port <n>] [encap (gre4|gre6|l3dsr|nat4|nat6)]
/// [new_len <n>] [src_ip_sticky] [del]` (docs/vpp-wire.md §3.6). The CLI reads prefix and encap
/// correctly in every version.
fn cli_lb_vip(s: &mut State, args: &str) -> (i32, String) {
    let fail = |what: &str| (-1, format!("lb vip: {what} `{args}'\n"));
    let mut words = args.split_whitespace();
    let Some(pfx) = words.next().and_then(|p| {
        let (a, l) = p.split_once('/')?;
        Some(Prefix::new(a.parse().ok()?, l.parse().ok()?))
    }) else {
        return fail("invalid prefix");
    };
    let mut a = VipArgs {
        from_cli: true,
        pfx,
        protocol: PROTOCOL_ANY,
        port: 0,
        encap: EncapType::GRE4,
        dscp: 0,
        table_len: 1024,
        src_ip_sticky: false,
        is_del: false,
    };
    while let Some(w) = words.next() {
        let mut value = || words.next().unwrap_or("");
        match w {
            "protocol" => {
                a.protocol = match value() {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => return fail("bad protocol"),
                }
            }
            "port" => match value().parse() {
                Ok(p) => a.port = p,
                Err(_) => return fail("bad port"),
            },
            "encap" => {
                a.encap = match value() {
                    "gre4" => EncapType::GRE4,
                    "gre6" => EncapType::GRE6,
                    "l3dsr" => EncapType::L3DSR,
                    "nat4" => EncapType::NAT4,
                    "nat6" => EncapType::NAT6,
                    _ => return fail("bad encap"),
                }
            }
            "new_len" => match value().parse() {
                Ok(n) => a.table_len = n,
                Err(_) => return fail("bad new_len"),
            },
            "src_ip_sticky" => a.src_ip_sticky = true,
            "del" => a.is_del = true,
            _ => return fail("parse error"),
        }
    }
    match add_del_vip(s, a) {
        Some(0) => (0, String::new()),
        Some(rv) => (rv, format!("lb_vip_add error {rv}\n")),
        None => (-1, "out of memory\n".to_string()),
    }
}

fn show_lb_vips_verbose(s: &State) -> String {
    let eol = match s.mode {
        ApiMode::V1_2 => "\n",
        ApiMode::V1_1 => "\r\n",
    };
    let mut out = String::new();
    for v in s.vips.iter().flatten() {
        if !v.used && s.mode == ApiMode::V1_2 {
            continue;
        }
        out.push_str(&format!("{} [{}] {}", vip_type_name(v), v.index, v.prefix));
        if v.src_ip_sticky {
            out.push_str(" src_ip_sticky");
        }
        if !v.used {
            out.push_str(" removed");
        }
        out.push_str(eol);
        out.push_str(&format!("  new_size:{}{eol}", v.table_len));
        if v.port != 0 {
            out.push_str(&format!("  protocol:{} port:{}{eol}", v.protocol, v.port));
        }
        out.push_str(&format!("  counters:{eol}"));
        for c in [
            "packet from existing sessions",
            "first session packet",
            "untracked packet",
            "no server configured",
        ] {
            out.push_str(&format!("    {c}: 0{eol}"));
        }
        out.push_str(&format!("  #as:{}{eol}", v.ases.len()));
        for (i, a) in v.ases.iter().enumerate() {
            let state = if a.used { "used" } else { "removed" };
            let dpo = i + 1;
            match s.mode {
                ApiMode::V1_2 => out.push_str(&format!(
                    "    {} weight:{} buckets:{} flows:0 dpo:{dpo} {state}{eol}",
                    a.address, a.weight, a.num_buckets
                )),
                ApiMode::V1_1 => out.push_str(&format!(
                    "    {} {} buckets   0 flows  dpo:{dpo} {state}{eol}",
                    a.address, a.num_buckets
                )),
            }
        }
    }
    out
}
