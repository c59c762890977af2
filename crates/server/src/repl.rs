//! The replication role, master side. It lives on shard 0.
//!
//! ```text
//!  shard logs ──pump (woken by writes)──► Merger ──► bytes ──► Backlog
//!                                                       └──► each replica's queue ──► writer task ──► socket
//!  full sync: barrier on every shard → snapshot_begin → RDB chunks ──► replica's rdb queue
//! ```
//!
//! The pump sleeps until there is something to merge ([`PumpSignal`]): shard 0
//! wakes it directly; every other shard's [`shipper`] sends its whole log over
//! the mesh once per scheduling round in which it logged, so a burst of writes
//! costs one message per round, not one per write, and the pump never waits on
//! another shard. A slow timer still runs it for PINGs and timeouts.
//!
//! A replica socket is handed over to shard 0 after PSYNC/SYNC (its fd moves),
//! where a writer task drains the replica's queues and a reader task takes
//! `REPLCONF ACK`s. Every replica shares the same `Bytes` chunks: the stream is
//! encoded once, whatever the fan-out. A replica that falls behind beyond
//! `client-output-buffer-limit replica` is disconnected; it never stalls a shard.

use crate::shard::Shard;
use crate::shared::unix_ms;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_keyspace::DbIndex;
use shardis_protocol::{DecodeLimits, RequestDecoder};
use shardis_rdb::{HeaderAux, RdbWriter, ReplAux, WriterOptions};
use shardis_replication::{
    decide, policy, Backlog, LogEntry, Merger, OutputLimit, PsyncDecision, ReplId, ReplIds, TxId,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Where a replica connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Waiting for the snapshot to start.
    WaitBgsave,
    /// Receiving the RDB.
    SendBulk,
    /// Streaming.
    Online,
}

impl ReplicaState {
    fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// RDB bytes of a running diskless full sync kept for replicas that ask
/// while it runs: up to this much, a late replica joins the running sync
/// (it gets what was produced so far, then the rest with the others)
/// instead of waiting for it to end and a second snapshot after it.
const JOIN_LIMIT: usize = 64 << 20;

/// A diskless full sync in progress, which replicas can still join.
pub struct RunningSync {
    replid: ReplId,
    offset: i64,
    mark: String,
    /// Every replica receiving this sync, joiners included.
    group: RefCell<Vec<Rc<Replica>>>,
    /// The payload so far (after `$EOF:`), while under [`JOIN_LIMIT`].
    produced: RefCell<Option<Vec<Bytes>>>,
    produced_len: Cell<usize>,
}

impl RunningSync {
    /// Sends a chunk to every member and keeps it for joiners.
    fn push(&self, chunk: Bytes) -> bool {
        let mut produced = self.produced.borrow_mut();
        if let Some(p) = produced.as_mut() {
            let len = self.produced_len.get() + chunk.len();
            self.produced_len.set(len);
            if len > JOIN_LIMIT {
                *produced = None;
            } else {
                p.push(chunk.clone());
            }
        }
        let group = self.group.borrow();
        for r in group.iter() {
            r.push_rdb(chunk.clone());
        }
        group.iter().any(|r| !r.closed.get())
    }

    /// Adds `rep` to the sync if it is still joinable: it gets
    /// `+FULLRESYNC` with the sync's offset, the payload so far, and the
    /// stream since the offset, copied from a member (which holds all of it
    /// until its transfer ends).
    fn join(&self, rep: &Rc<Replica>) -> bool {
        if !rep.capa_eof || rep.pre_psync {
            return false;
        }
        let produced = self.produced.borrow();
        let Some(chunks) = produced.as_ref() else {
            return false;
        };
        let mut group = self.group.borrow_mut();
        let Some(donor) = group
            .iter()
            .find(|m| !m.closed.get() && m.stream_started.get())
            .cloned()
        else {
            return false;
        };
        rep.push_rdb(Bytes::from(format!(
            "+FULLRESYNC {} {}\r\n",
            self.replid, self.offset
        )));
        rep.push_rdb(Bytes::from(format!("$EOF:{}\r\n", self.mark)));
        for c in chunks {
            rep.push_rdb(c.clone());
        }
        rep.rdb_allowance.set(self.produced_len.get());
        *rep.stream.borrow_mut() = donor.stream.borrow().clone();
        rep.stream_bytes.set(donor.stream_bytes.get());
        rep.stream_started.set(true);
        rep.state.set(ReplicaState::SendBulk);
        group.push(rep.clone());
        true
    }
}

/// One attached replica.
pub struct Replica {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// REPLCONF listening-port.
    pub listening_port: u16,
    /// REPLCONF ip-address (replica-announce-ip), else the peer ip.
    pub ip: String,
    /// Understands `$EOF:` transfers.
    pub capa_eof: bool,
    /// Understands `+CONTINUE <id>`.
    pub capa_psync2: bool,
    /// Came with the old SYNC: the RDB payload comes without `+FULLRESYNC`.
    pre_psync: bool,
    /// REPLCONF rdb-only 1: the connection ends after the RDB.
    rdb_only: bool,
    state: Cell<ReplicaState>,
    rdb: RefCell<VecDeque<Bytes>>,
    /// RDB bytes it may have queued beyond the usual 4 MB before the
    /// producer waits: the catch-up a replica got when it joined a running sync.
    rdb_allowance: Cell<usize>,
    rdb_done: Cell<bool>,
    stream: RefCell<VecDeque<Bytes>>,
    stream_bytes: Cell<usize>,
    stream_started: Cell<bool>,
    wait_first_ack: Cell<bool>,
    ack_offset: Cell<i64>,
    last_ack: Cell<Instant>,
    soft_since: Cell<Option<Instant>>,
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    /// The reading task's, woken on close so the socket is let go at once.
    reader_waker: RefCell<Option<Waker>>,
}

impl Replica {
    /// Offset the replica acknowledged last.
    pub fn acked_offset(&self) -> i64 {
        self.ack_offset.get()
    }

    /// `ip:port` as Redis names replicas in logs.
    pub fn name(&self) -> String {
        format!("{}:{}", self.ip, self.listening_port)
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.set(true);
        self.wake();
        if let Some(w) = self.reader_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn push_rdb(&self, b: Bytes) {
        self.rdb.borrow_mut().push_back(b);
        self.wake();
    }

    fn rdb_queued(&self) -> usize {
        self.rdb.borrow().iter().map(|b| b.len()).sum()
    }
}

/// Replicas waiting for a snapshot marker, and who wants its offset.
type PendingSync = (
    Vec<Rc<Replica>>,
    Option<glommio::channels::oneshot::Sender<i64>>,
);

/// Sub-replicas waiting for a snapshot taken by the master link.
/// The link answers with the offset and the db its stream has selected.
pub type PendingSnapshot = (
    Vec<Rc<Replica>>,
    glommio::channels::oneshot::Sender<(i64, DbIndex)>,
);

/// Sets each replica's CLIENT LIST `omem` to what is queued for it (the RDB
/// not yet written and the stream behind it), as Redis shows a replica's
/// output buffer. Runs where the replicas live (shard 0), before a listing.
pub fn refresh_link_buffers(s0: &Shard) {
    let repl = s0.repl().borrow();
    let links = s0.obs.borrow().links.clone();
    for r in &repl.replicas {
        if let Some(l) = links.iter().find(|l| l.borrow().id == r.id) {
            l.borrow_mut().omem = r.stream_bytes.get() + r.rdb_queued();
        }
    }
}

/// Marks sub-replicas as receiving the stream from now on.
pub fn start_streams(group: &[Rc<Replica>]) {
    for r in group {
        r.stream_started.set(true);
    }
}

/// Identity and link state when this server is a replica.
#[derive(Debug, Clone)]
pub struct MasterInfo {
    /// MASTER host.
    pub host: String,
    /// MASTER port.
    pub port: u16,
    /// Where the link stands (ROLE, INFO, the handshake timeout).
    pub phase: shardis_replication::LinkPhase,
    /// Last byte received from the master.
    pub last_io: Instant,
    /// When an established link went down (None while up, and before the first
    /// link of a master turned replica: INFO shows -1, as Redis).
    pub down_since: Option<Instant>,
    /// Bytes of the stream read (slave_read_repl_offset).
    pub read_offset: i64,
    /// Bumped to stop the current link task.
    pub generation: u64,
    /// The link socket while streaming (CLIENT KILL TYPE master shuts it down).
    pub link_fd: Option<i32>,
}

/// The replication role's state.
pub struct ReplState {
    /// replid, replid2, second_repl_offset.
    pub ids: ReplIds,
    /// The backlog, once a replica ever attached (or as a replica).
    pub backlog: Option<Backlog>,
    /// master_repl_offset when there is no backlog yet.
    pub offset: i64,
    /// Merges the shard logs.
    pub merger: Merger,
    /// Attached replicas.
    pub replicas: Vec<Rc<Replica>>,
    /// Set when this server replicates from a master.
    pub master: Option<MasterInfo>,
    last_ping: Instant,
    /// Full syncs waiting for their snapshot marker to be reached.
    markers: HashMap<TxId, PendingSync>,
    /// WAIT callers: (target offset, numreplicas, waker).
    waiters: Vec<Waker>,
    /// Counters for INFO stats.
    pub sync_full: u64,
    /// Partial resyncs accepted.
    pub sync_partial_ok: u64,
    /// Partial resyncs refused.
    pub sync_partial_err: u64,
    /// Pump iterations (WAIT uses it to know its writes were merged).
    pub pumps: u64,
    /// Shipments of the other shards' logs not yet taken by the pump.
    inbox: Vec<Shipment>,
    /// Per shard: its `logged` counter as of its last merged shipment.
    shipped: Vec<u64>,
    /// Per shard: the newest ship request its merged shipments answer.
    answered: Vec<u64>,
    /// Ship requests made by [`settle`].
    ship_requests: u64,
    /// As a replica: our id and offset describe data we hold (a cached master),
    /// so PSYNC can ask to continue.
    pub cached: bool,
    /// As a replica: the db the master's stream has selected, as the link last
    /// applied it (Redis keeps it in the cached master client). A continued
    /// stream carries no new SELECT, so the next link starts here.
    pub link_db: DbIndex,
    /// The next PSYNC carries FAILOVER (we are handing our role to the target).
    pub failover_psync: bool,
    /// As a replica: a full sync of a sub-replica waits for the link to take the
    /// snapshot between two rounds; the link answers with the offset.
    pub snapshot_request: Option<PendingSnapshot>,
    /// `master_failover_state` for INFO.
    pub failover_state: &'static str,
    /// Since when no replica is attached (`repl-backlog-ttl` counts from it).
    no_replicas_since: Option<Instant>,
    /// Replicas waiting for a full sync to start: they share one snapshot.
    pending_full: Vec<Rc<Replica>>,
    /// The diskless full sync being produced, while replicas may still join it.
    running_sync: Option<Rc<RunningSync>>,
    /// A task is counting down `repl-diskless-sync-delay` for `pending_full`.
    full_sync_scheduled: bool,
    /// The master link is applying a round of its master's stream.
    pub link_round_active: bool,
    /// The snapshot barrier of a running AOF rewrite: the AOF switches to a
    /// new incremental file where the merger passes it.
    pub aof_marker: Option<TxId>,
    /// As a replica: an AOF rewrite waits for the link to take its snapshot
    /// (and switch the AOF's incremental file) between two rounds.
    pub aof_snapshot_request: Option<glommio::channels::oneshot::Sender<()>>,
}

impl ReplState {
    /// `repl-backlog-ttl`: a master that has had no replica for `ttl` seconds
    /// frees its backlog and starts a new history (Redis's replicationCron); a
    /// replica keeps its backlog for PSYNC2. 0 never frees it.
    fn expire_backlog(&mut self, ttl: u64, is_replica: bool, now: Instant) {
        let verdict = policy::backlog_ttl(
            self.replicas.len(),
            &mut self.no_replicas_since,
            ttl,
            is_replica,
            self.backlog.is_some(),
            now,
        );
        if verdict == policy::BacklogVerdict::Free {
            self.offset = self.master_offset();
            self.backlog = None;
            // A new id and no id2: nobody may continue the freed history.
            self.ids = ReplIds::new(crate::shared::random_repl_id());
            crate::log!(
                Notice,
                "Replication backlog freed after {} seconds without connected replicas.",
                ttl
            );
        }
    }

    /// Creates the backlog at the current offset with a new history, as Redis
    /// does when the first replica (since start or since the backlog was
    /// freed) asks for a full sync.
    fn ensure_backlog(&mut self, size: usize) {
        if self.backlog.is_some() {
            return;
        }
        self.ids = ReplIds::new(crate::shared::random_repl_id());
        self.backlog = Some(Backlog::new(size, self.offset));
        crate::log!(
            Notice,
            "Replication backlog created, my new replication IDs are '{}' and '{}'",
            self.ids.replid,
            self.ids.replid2
        );
    }

    /// Fresh state: a new replication id, no backlog.
    pub fn new(shards: usize) -> ReplState {
        ReplState {
            no_replicas_since: None,
            ids: ReplIds::new(crate::shared::random_repl_id()),
            backlog: None,
            offset: 0,
            merger: Merger::new(shards),
            replicas: Vec::new(),
            master: None,
            last_ping: Instant::now(),
            markers: HashMap::new(),
            waiters: Vec::new(),
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            pumps: 0,
            inbox: Vec::new(),
            shipped: Vec::new(),
            answered: Vec::new(),
            ship_requests: 0,
            cached: false,
            link_db: DbIndex(0),
            failover_psync: false,
            snapshot_request: None,
            failover_state: "no-failover",
            pending_full: Vec::new(),
            running_sync: None,
            full_sync_scheduled: false,
            link_round_active: false,
            aof_marker: None,
            aof_snapshot_request: None,
        }
    }

    /// As a replica: true while the master link streams (past the sync).
    pub fn link_up(&self) -> bool {
        self.master.as_ref().is_some_and(|m| m.phase.is_up())
    }

    /// `master_repl_offset`.
    pub fn master_offset(&self) -> i64 {
        self.backlog
            .as_ref()
            .map(|b| b.master_offset())
            .unwrap_or(self.offset)
    }

    /// Replica output buffers beyond the backlog's size: what maxmemory does
    /// not count (Redis 7.0's `freeMemoryGetNotCountedMemory`). The replicas'
    /// queued stream chunks are shared with the backlog, so the largest queue
    /// stands for the shared buffer.
    pub fn replica_buffers_beyond_backlog(&self) -> u64 {
        let queued = self
            .replicas
            .iter()
            .map(|r| r.stream_bytes.get() + r.rdb.borrow().iter().map(|b| b.len()).sum::<usize>())
            .max()
            .unwrap_or(0) as u64;
        let backlog = self.backlog.as_ref().map_or(0, |b| b.size() as u64);
        queued.saturating_sub(backlog)
    }

    /// Appends stream bytes to the backlog and every started replica queue.
    pub fn append(&mut self, chunk: Bytes, limit: OutputLimit, now: Instant) {
        if chunk.is_empty() {
            return;
        }
        match self.backlog.as_mut() {
            Some(b) => b.append(chunk.clone()),
            None => self.offset += chunk.len() as i64,
        }
        for r in &self.replicas {
            if !r.stream_started.get() || r.closed.get() {
                continue;
            }
            r.stream.borrow_mut().push_back(chunk.clone());
            let queued = r.stream_bytes.get() + chunk.len();
            r.stream_bytes.set(queued);
            let mut since = r.soft_since.get();
            let over = limit.exceeded(queued as u64, &mut since, now);
            r.soft_since.set(since);
            if over {
                crate::log!(
                    Warning,
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    r.id,
                    r.addr
                );
                r.close();
                continue;
            }
            r.wake();
        }
    }

    /// CLIENT KILL on replication links: drops the link to our master (it
    /// reconnects and resyncs partially) and/or the replicas with these
    /// client ids. Returns how many were dropped.
    pub fn kill_links(&mut self, master: bool, replica_ids: &[u64]) -> usize {
        let mut n = 0;
        if master {
            if let Some(fd) = self.master.as_ref().and_then(|m| m.link_fd) {
                #[allow(unsafe_code)]
                // SAFETY: shutdown(2) on the link's socket; the link task still owns and closes it.
                unsafe {
                    libc::shutdown(fd, libc::SHUT_RDWR);
                }
                n += 1;
            }
        }
        for r in &self.replicas {
            if r.closed.get() || !replica_ids.contains(&r.id) {
                continue;
            }
            r.close();
            n += 1;
        }
        n
    }

    /// Drops every attached replica (they reconnect and PSYNC again).
    pub fn disconnect_replicas(&mut self) {
        for r in self.replicas.drain(..) {
            r.close();
        }
    }

    fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    /// The replica at `ip:port`, if attached.
    pub fn find_replica(&self, ip: &str, port: u16) -> Option<Rc<Replica>> {
        self.replicas
            .iter()
            .find(|r| {
                !r.closed.get() && r.listening_port == port && (r.ip == ip || ip_matches(&r.ip, ip))
            })
            .cloned()
    }

    /// The online replica with the highest acknowledged offset.
    pub fn best_replica(&self) -> Option<Rc<Replica>> {
        self.replicas
            .iter()
            .filter(|r| !r.closed.get() && r.state.get() == ReplicaState::Online)
            .max_by_key(|r| r.ack_offset.get())
            .cloned()
    }

    /// Replicas whose acknowledged offset is at least `offset`.
    pub fn acked(&self, offset: i64) -> usize {
        self.replicas
            .iter()
            .filter(|r| {
                !r.closed.get()
                    && r.state.get() == ReplicaState::Online
                    && r.ack_offset.get() >= offset
            })
            .count()
    }

    /// Online replicas with lag ≤ `max_lag` seconds (min-replicas-to-write).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        let now = Instant::now();
        self.replicas
            .iter()
            .filter(|r| {
                !r.closed.get()
                    && r.state.get() == ReplicaState::Online
                    && policy::replica_good(r.last_ack.get(), max_lag, now)
            })
            .count()
    }

    /// The `# Replication` INFO section.
    /// `min_good` is `min_slaves_good_slaves`, shown while `min-replicas-to-write` is on.
    pub fn info(
        &self,
        replica_cfg: (u64, bool, bool),
        backlog_size: u64,
        min_good: Option<usize>,
    ) -> String {
        use std::fmt::Write;
        let mut out = String::from("# Replication\r\n");
        match &self.master {
            None => out.push_str("role:master\r\n"),
            Some(m) => {
                let (priority, read_only, announced) = replica_cfg;
                let _ = write!(
                    out,
                    "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                    m.host,
                    m.port,
                    if m.phase.is_up() { "up" } else { "down" },
                    if m.phase.is_up() { m.last_io.elapsed().as_secs() as i64 } else { -1 },
                    m.phase.is_syncing() as u8,
                    m.read_offset,
                    self.master_offset(),
                );
                if !m.phase.is_up() {
                    let _ = write!(
                        out,
                        "master_link_down_since_seconds:{}\r\n",
                        m.down_since.map_or(-1, |t| t.elapsed().as_secs() as i64)
                    );
                }
                let _ = write!(
                    out,
                    "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                    priority, read_only as u8, announced as u8
                );
            }
        }
        let online: Vec<&Rc<Replica>> = self.replicas.iter().filter(|r| !r.closed.get()).collect();
        let _ = write!(out, "connected_slaves:{}\r\n", online.len());
        if let Some(good) = min_good {
            let _ = write!(out, "min_slaves_good_slaves:{good}\r\n");
        }
        for (i, r) in online.iter().enumerate() {
            let _ = write!(
                out,
                "slave{}:ip={},port={},state={},offset={},lag={}\r\n",
                i,
                r.ip,
                r.listening_port,
                r.state.get().name(),
                r.ack_offset.get().max(0),
                r.last_ack.get().elapsed().as_secs()
            );
        }
        let (active, size, first, histlen) = match &self.backlog {
            Some(b) => (
                1,
                b.size() as u64,
                b.first_byte_offset(),
                b.histlen() as i64,
            ),
            None => (0, backlog_size, 0, 0),
        };
        let _ = write!(
            out,
            "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
            self.failover_state,
            self.ids.replid,
            self.ids.replid2,
            self.master_offset(),
            self.ids.second_offset,
            active,
            size,
            if active == 1 { first } else { 0 },
            histlen
        );
        out
    }

    /// ROLE's reply for a master.
    pub fn role_master(&self) -> shardis_protocol::Reply {
        use shardis_protocol::Reply;
        Reply::Array(vec![
            Reply::bulk(b"master"),
            Reply::Integer(self.master_offset()),
            Reply::Array(
                self.replicas
                    .iter()
                    .filter(|r| !r.closed.get() && r.state.get() == ReplicaState::Online)
                    .map(|r| {
                        Reply::Array(vec![
                            Reply::bulk(r.ip.as_bytes()),
                            Reply::bulk_string(r.listening_port.to_string()),
                            Reply::bulk_string(r.ack_offset.get().max(0).to_string()),
                        ])
                    })
                    .collect(),
            ),
        ])
    }
}

fn ip_matches(a: &str, b: &str) -> bool {
    let loopback = |s: &str| s == "localhost" || s.starts_with("127.") || s == "::1";
    loopback(a) && loopback(b)
}

/// A shard's write log on its way to the pump.
pub struct Shipment {
    shard: usize,
    entries: Vec<LogEntry>,
    /// The shard's `logged` counter when the entries were taken.
    logged: u64,
    /// The newest ship request the shard had seen by then.
    answers: u64,
    /// The shard's log epoch ([`crate::writelog::PumpSignal::new_log_epoch`]).
    epoch: u64,
}

/// Every shard but 0 runs one: when the shard logs something (or shard 0
/// asks), it lets the round's other connections run, then ships the whole log
/// to shard 0 in one mesh message. Shipments from one shard travel in order on
/// one channel, so the pump never waits for a shard: a write's way to the
/// AOF and the replicas is one hop, not a nudge plus a round trip.
pub async fn shipper(shard: Rc<Shard>) {
    let id = shard.id;
    loop {
        shard.write_log.signal.kicked().await;
        futures_lite::future::yield_now().await;
        let answers = shard.write_log.signal.requested.get();
        let epoch = shard.write_log.signal.epoch.get();
        let entries = shard.write_log.take();
        let logged = shard
            .counters()
            .logged
            .load(std::sync::atomic::Ordering::Acquire);
        let job: crate::shard::Job = Box::new(move |s0| {
            s0.repl().borrow_mut().inbox.push(Shipment {
                shard: id.get(),
                entries,
                logged,
                answers,
                epoch,
            });
            s0.write_log.signal.kick();
        });
        if shard.send_job(crate::shard::HOME_SHARD, job).await.is_err() {
            return;
        }
    }
}

/// Runs on shard 0: asks every shard to ship its log, waits until the pump
/// has merged those shipments, then for two more pump cycles, after which
/// every write logged before the call is in the stream (and, with the AOF
/// on, handed to it).
pub async fn settle(s0: &Rc<Shard>) {
    let want = {
        let mut repl = s0.repl().borrow_mut();
        repl.ship_requests += 1;
        repl.ship_requests
    };
    let n = s0.shards();
    for s in 1..n {
        let asked = s0
            .post(ShardId(s), move |sh| {
                let p = &sh.write_log.signal;
                p.requested.set(p.requested.get().max(want));
                p.kick();
            })
            .await;
        if asked.is_err() {
            return; // shutting down: that shard is gone
        }
    }
    let answered = |s0: &Shard| {
        let repl = s0.repl().borrow();
        (1..n).all(|s| repl.answered.get(s).is_some_and(|&a| a >= want))
    };
    while !answered(s0) && s0.logging() {
        s0.write_log.signal.kick();
        glommio::timer::sleep(Duration::from_micros(200)).await;
    }
    let start = s0.repl().borrow().pumps;
    while s0.repl().borrow().pumps < start + 2 && s0.logging() {
        s0.write_log.signal.kick();
        glommio::timer::sleep(Duration::from_micros(200)).await;
    }
}

/// Limits for `client-output-buffer-limit replica`.
pub fn replica_limits(shard: &Shard) -> OutputLimit {
    let c = shard.shared.config();
    let l = &c.client_output_buffer_limit.replica;
    OutputLimit {
        hard: l.hard,
        soft: l.soft,
        soft_seconds: l.soft_seconds,
    }
}

/// How often the pump runs with no writes (PINGs, timeouts, min-replicas).
const PUMP_IDLE_PERIOD: Duration = Duration::from_millis(100);

/// The replication role's work on shard 0, each time a shard logged something
/// (see [`PumpSignal`]) and every [`PUMP_IDLE_PERIOD`]: collect the shard logs,
/// merge, and feed the backlog and the replicas; PING replicas; check timeouts.
pub async fn pump(shard: Rc<Shard>) {
    let n = shard.shards();
    loop {
        shard.write_log.signal.wait(PUMP_IDLE_PERIOD).await;
        // Runs through shutdown until the final save is done: the AOF gets
        // every write logged before the exit.
        if shard
            .shared
            .exiting
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        crate::aof::tick(&shard);
        // Not logging (a replica, or logging being turned on): shipments wait.
        if !shard.logging() {
            continue;
        }
        let arrived = std::mem::take(&mut shard.repl().borrow_mut().inbox);
        let local = shard.write_log.take();
        let mut logs: Vec<(usize, Vec<LogEntry>)> = Vec::with_capacity(1 + arrived.len());
        logs.push((0, local));
        // Per shard: entries it had logged when its last shipment left.
        let logged: Vec<u64> = {
            let mut repl = shard.repl().borrow_mut();
            repl.shipped.resize(n, 0);
            repl.answered.resize(n, 0);
            repl.shipped[0] = shard
                .counters()
                .logged
                .load(std::sync::atomic::Ordering::Acquire);
            let epoch = shard.write_log.signal.epoch.get();
            for sh in arrived {
                repl.answered[sh.shard] = repl.answered[sh.shard].max(sh.answers);
                if sh.epoch > epoch {
                    // Logged after a role change this shard has not made yet.
                    repl.inbox.push(sh);
                    continue;
                }
                if sh.epoch < epoch {
                    continue; // logged before a role change: never streamed
                }
                repl.shipped[sh.shard] = sh.logged;
                logs.push((sh.shard, sh.entries));
            }
            repl.shipped.clone()
        };
        let limits = replica_limits(&shard);
        let now = Instant::now();
        let period = shard.shared.config().repl_ping_replica_period.max(1);
        let timeout = shard.shared.config().repl_timeout.max(1);
        let (aof_pieces, covered, had) = {
            let mut repl = shard.repl().borrow_mut();
            for (s, entries) in logs {
                if !entries.is_empty() {
                    repl.merger.push(s, entries);
                }
            }
            if !repl.replicas.is_empty() && policy::ping_due(repl.last_ping, period, now) {
                repl.merger.emit_raw(&[b"PING"]);
                repl.last_ping = Instant::now();
            }
            let drained = repl.merger.drain();
            let aof_on = shard.shared.aof.lock().is_ok_and(|a| a.open.is_some());
            let mut aof_pieces = Vec::new();
            let mut aof_prev = 0;
            let mut prev = 0;
            for &(tx, pos) in &drained.markers {
                let chunk = drained.bytes.slice(prev..pos);
                repl.append(chunk, limits, now);
                prev = pos;
                if repl.aof_marker == Some(tx) {
                    repl.aof_marker = None;
                    if aof_on {
                        aof_pieces.push((drained.without_raw(aof_prev..pos), true));
                        aof_prev = pos;
                    }
                }
                let offset = repl.master_offset();
                if let Some((group, tx_offset)) = repl.markers.remove(&tx) {
                    for r in &group {
                        r.stream_started.set(true);
                    }
                    if let Some(sender) = tx_offset {
                        let _ = sender.send(offset);
                    }
                }
            }
            let rest = drained.bytes.slice(prev..);
            let had = !rest.is_empty();
            repl.append(rest, limits, now);
            if aof_on {
                let end = drained.bytes.len();
                aof_pieces.push((drained.without_raw(aof_prev..end), false));
            }
            let covered: Vec<u64> = (0..n)
                .map(|s| logged[s].saturating_sub(repl.merger.queued_on(s) as u64))
                .collect();
            // Replicas that stopped acknowledging are dropped after repl-timeout.
            for r in &repl.replicas {
                if r.state.get() == ReplicaState::Online
                    && !r.closed.get()
                    && policy::replica_timed_out(r.last_ack.get(), timeout, now)
                {
                    crate::log!(
                        Warning,
                        "Disconnecting timedout replica (streaming sync): {}",
                        r.name()
                    );
                    r.close();
                }
            }
            repl.replicas.retain(|r| !r.closed.get());
            let backlog_ttl = shard.shared.config().repl_backlog_ttl;
            repl.expire_backlog(backlog_ttl, shard.store.replica.get(), now);
            shard.shared.not_counted_memory.store(
                repl.replica_buffers_beyond_backlog(),
                std::sync::atomic::Ordering::Relaxed,
            );
            repl.pumps += 1;
            (aof_pieces, covered, had)
        };
        crate::aof::feed(
            &shard,
            crate::aof::Cycle {
                pieces: aof_pieces,
                covered,
            },
        )
        .await;
        refresh_good_replicas(&shard);
        let mut repl = shard.repl().borrow_mut();
        if had {
            repl.wake_waiters();
        }
    }
}

/// Recounts the replicas that satisfy `min-replicas-max-lag` (shard 0).
/// Called on every pump cycle and at once when a replica comes online,
/// acknowledges, or goes away, and on CONFIG SET, as Redis refreshes its
/// good-replicas count, so a write never sees a stale count.
pub fn refresh_good_replicas(shard: &Shard) {
    let max_lag = shard.shared.config().min_replicas_max_lag;
    let good = shard.repl().borrow().good_replicas(max_lag);
    shard
        .shared
        .good_replicas
        .store(good, std::sync::atomic::Ordering::Relaxed);
}

/// What a client connection hands over when it becomes a replica.
pub struct Handoff {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// REPLCONF listening-port.
    pub listening_port: u16,
    /// REPLCONF ip-address.
    pub ip: Option<String>,
    /// capa eof.
    pub capa_eof: bool,
    /// capa psync2.
    pub capa_psync2: bool,
    /// REPLCONF rdb-only 1.
    pub rdb_only: bool,
    /// REPLCONF rdb-filter-only functions.
    pub rdb_functions_only: bool,
    /// `Some((replid, offset))` for PSYNC, None for SYNC.
    pub psync: Option<(String, i64)>,
    /// Bytes read after the PSYNC command.
    pub leftover: BytesMut,
}

/// CLIENT LIST's view of a replica's connection (flags `S`).
fn replica_info(stream: &TcpStream, h: &Handoff) -> crate::client::ClientInfo {
    let mut info = crate::client::ClientInfo::master_link(std::os::fd::AsRawFd::as_raw_fd(stream));
    info.id = h.id;
    info.flags = "S".into();
    info.last_cmd = "psync".into();
    info.user = "default".into();
    info
}

/// Runs on shard 0 with the replica's socket: answers PSYNC/SYNC and streams.
pub async fn serve_replica(shard: Rc<Shard>, stream: TcpStream, h: Handoff) {
    let ip = h.ip.clone().unwrap_or_else(|| h.addr.ip().to_string());
    let rep = Rc::new(Replica {
        id: h.id,
        addr: h.addr,
        listening_port: if h.listening_port == 0 {
            h.addr.port()
        } else {
            h.listening_port
        },
        ip,
        capa_eof: h.capa_eof,
        capa_psync2: h.capa_psync2,
        pre_psync: h.psync.is_none(),
        rdb_only: h.rdb_only,
        state: Cell::new(ReplicaState::WaitBgsave),
        rdb: RefCell::new(VecDeque::new()),
        rdb_allowance: Cell::new(0),
        rdb_done: Cell::new(false),
        stream: RefCell::new(VecDeque::new()),
        stream_bytes: Cell::new(0),
        stream_started: Cell::new(false),
        wait_first_ack: Cell::new(false),
        ack_offset: Cell::new(0),
        last_ack: Cell::new(Instant::now()),
        soft_since: Cell::new(None),
        closed: Cell::new(false),
        waker: RefCell::new(None),
        reader_waker: RefCell::new(None),
    });
    crate::log!(Notice, "Replica {} asks for synchronization", rep.name());
    if h.rdb_only && h.rdb_functions_only {
        // An RDB of the function libraries only, no keys.
        functions_only_rdb(&shard, stream, h.psync.is_some()).await;
        crate::log!(Notice, "Connection with replica {} lost.", rep.name());
        return;
    }
    let _listed =
        crate::obs::LinkGuard::new(&shard, Rc::new(RefCell::new(replica_info(&stream, &h))));
    let (reader, writer) = futures_lite::io::split(stream);
    let decision = {
        let repl = shard.repl().borrow();
        match &h.psync {
            // An rdb-only replica always wants the whole RDB.
            Some(_) if h.rdb_only => PsyncDecision::FullResync { reason: None },
            Some((id, off)) => decide(&repl.ids, repl.backlog.as_ref(), id, *off, &rep.name()),
            None => PsyncDecision::FullResync { reason: None },
        }
    };
    match decision {
        PsyncDecision::Continue {
            offset,
            backlog_len,
        } => {
            let mut repl = shard.repl().borrow_mut();
            repl.sync_partial_ok += 1;
            let line = if rep.capa_psync2 {
                format!("+CONTINUE {}\r\n", repl.ids.replid)
            } else {
                "+CONTINUE\r\n".to_string()
            };
            rep.push_rdb(Bytes::from(line));
            if let Some(chunks) = repl.backlog.as_ref().and_then(|b| b.read_from(offset)) {
                for c in chunks {
                    rep.stream_bytes.set(rep.stream_bytes.get() + c.len());
                    rep.stream.borrow_mut().push_back(c);
                }
            }
            rep.rdb_done.set(true);
            rep.stream_started.set(true);
            rep.state.set(ReplicaState::Online);
            rep.ack_offset.set(offset - 1);
            repl.replicas.push(rep.clone());
            crate::log!(
                Notice,
                "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
                rep.name(),
                backlog_len,
                offset
            );
            drop(repl);
            refresh_good_replicas(&shard);
        }
        PsyncDecision::FullResync { reason } => {
            let joined = {
                let mut repl = shard.repl().borrow_mut();
                if let Some(r) = reason {
                    for line in r.lines() {
                        crate::log!(Notice, "{}", line);
                    }
                    if h.psync.as_ref().is_some_and(|(id, _)| id != "?") {
                        repl.sync_partial_err += 1;
                    }
                }
                repl.sync_full += 1;
                repl.replicas.push(rep.clone());
                // A diskless sync still young enough takes it in at once.
                let joined = repl
                    .running_sync
                    .as_ref()
                    .is_some_and(|sync| sync.join(&rep));
                if !joined {
                    repl.pending_full.push(rep.clone());
                }
                joined
            };
            if joined {
                crate::log!(
                    Notice,
                    "Replica {} joins the diskless RDB transfer in progress",
                    rep.name()
                );
            } else {
                // Spawned with no borrow held: spawn_local runs the task at once.
                let schedule =
                    !std::mem::replace(&mut shard.repl().borrow_mut().full_sync_scheduled, true);
                if schedule {
                    let s = shard.clone();
                    glommio::spawn_local(async move { start_full_sync(s).await }).detach();
                }
            }
        }
    }
    let s = shard.clone();
    let r = rep.clone();
    let leftover = h.leftover;
    glommio::spawn_local(async move { replica_reader(s, r, reader, leftover).await }).detach();
    replica_writer(shard, rep, writer).await;
}

/// Answers `redis-cli --functions-rdb` (rdb-only, functions filter): an RDB
/// of the function libraries without keys, then the link closes.
async fn functions_only_rdb(shard: &Rc<Shard>, mut stream: TcpStream, psync: bool) {
    let (compression, checksum) = {
        let c = shard.shared.config();
        (c.rdbcompression, c.rdbchecksum)
    };
    let mut w = RdbWriter::new(WriterOptions {
        compression,
        checksum,
    });
    let mut rdb = BytesMut::new();
    w.header(
        &mut rdb,
        &HeaderAux {
            ctime: (unix_ms() / 1000) as i64,
            used_mem: crate::alloc::used_memory(),
            repl: None,
            aof_base: false,
        },
    );
    for code in crate::script::functions::library_codes() {
        w.function(&mut rdb, &code);
    }
    w.finish(&mut rdb);
    let mut out = Vec::with_capacity(rdb.len() + 80);
    if psync {
        let (replid, offset) = {
            let r = shard.repl().borrow();
            (r.ids.replid.clone(), r.master_offset())
        };
        out.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
    out.extend_from_slice(&rdb);
    let _ = stream.write_all(&out).await;
    let _ = stream.close().await;
}

async fn replica_writer(
    shard: Rc<Shard>,
    rep: Rc<Replica>,
    mut w: futures_lite::io::WriteHalf<TcpStream>,
) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let more = std::future::poll_fn(|cx| {
            if rep.closed.get() {
                return Poll::Ready(false);
            }
            {
                let mut rdb = rep.rdb.borrow_mut();
                if !rdb.is_empty() {
                    batch.extend(rdb.drain(..));
                    return Poll::Ready(true);
                }
            }
            if rep.rdb_done.get() && rep.rdb_only {
                // Everything it asked for is written: Redis closes the link here.
                return Poll::Ready(false);
            }
            if rep.rdb_done.get() && rep.stream_started.get() && !rep.wait_first_ack.get() {
                let mut q = rep.stream.borrow_mut();
                if !q.is_empty() {
                    let n: usize = q.iter().map(|b| b.len()).sum();
                    rep.stream_bytes
                        .set(rep.stream_bytes.get().saturating_sub(n));
                    batch.extend(q.drain(..));
                    return Poll::Ready(true);
                }
            }
            *rep.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if !more {
            break;
        }
        // A replica closed meanwhile (over its output buffer limit, timed
        // out, killed) is dropped at once, as Redis frees it, even if its
        // socket no longer drains: the pending write is abandoned.
        let write = async {
            for b in batch.drain(..) {
                w.write_all(&b).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let closed = std::future::poll_fn(|cx| {
            if rep.closed.get() {
                return Poll::Ready(());
            }
            *rep.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        let written = futures_lite::future::or(async { Some(write.await) }, async {
            closed.await;
            None
        })
        .await;
        match written {
            Some(Ok(())) => {}
            Some(Err(_)) => {
                rep.close();
                break;
            }
            None => break,
        }
        batch.clear();
        let _ = shard.counters();
    }
    let _ = w.close().await;
    shard
        .repl()
        .borrow_mut()
        .replicas
        .retain(|r| !Rc::ptr_eq(r, &rep));
    refresh_good_replicas(&shard);
    crate::log!(Notice, "Connection with replica {} lost.", rep.name());
}

async fn replica_reader(
    shard: Rc<Shard>,
    rep: Rc<Replica>,
    mut r: futures_lite::io::ReadHalf<TcpStream>,
    leftover: BytesMut,
) {
    let mut buf = leftover;
    let mut decoder = RequestDecoder::new(true);
    let limits = DecodeLimits::default();
    loop {
        loop {
            match decoder.decode(&mut buf, &limits) {
                Ok(Some(args)) => {
                    if args.len() >= 3
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) = std::str::from_utf8(&args[2])
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                        {
                            if off > rep.ack_offset.get() {
                                rep.ack_offset.set(off);
                            }
                            rep.last_ack.set(Instant::now());
                            crate::obs::touch_link(&shard, rep.id);
                            if rep.wait_first_ack.get() {
                                rep.wait_first_ack.set(false);
                                rep.wake();
                            }
                            shard.repl().borrow_mut().wake_waiters();
                            refresh_good_replicas(&shard);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    rep.close();
                    return;
                }
            }
        }
        if rep.closed.get() {
            return;
        }
        let len = buf.len();
        buf.resize(len + 4096, 0);
        // Closed by the writer's side (limits, timeout, kill): stop reading,
        // so both halves of the socket are dropped and the link is gone.
        let closed = std::future::poll_fn(|cx| {
            if rep.closed.get() {
                return Poll::Ready(());
            }
            *rep.reader_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        let read = futures_lite::future::or(async { Some(r.read(&mut buf[len..]).await) }, async {
            closed.await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | Some(Err(_)) => {
                rep.close();
                return;
            }
            Some(Ok(n)) => buf.truncate(len + n),
            None => return,
        }
    }
}

/// Takes every shard at once, so a snapshot (and the stream offset that goes
/// with it) is one point in time across shards. Returns the snapshot's stream
/// offset, once known.
async fn snapshot_barrier(shard: &Rc<Shard>, group: &[Rc<Replica>]) -> Option<i64> {
    crate::persist::claim(shard).await;
    barrier(shard, group).await
}

/// [`snapshot_barrier`] for a caller that already holds the snapshot slot.
async fn barrier(shard: &Rc<Shard>, group: &[Rc<Replica>]) -> Option<i64> {
    // A replica's stream is its master's, forwarded: it logs nothing of its own.
    // The link applies commands in rounds, so the snapshot is taken by the link
    // between two rounds, where data and offset agree.
    if shard.repl().borrow().master.is_some() {
        if shard.repl().borrow().link_up() {
            let (tx, rx) = glommio::channels::oneshot::oneshot();
            shard.repl().borrow_mut().snapshot_request = Some((group.to_vec(), tx));
            return rx.await.ok().map(|(offset, _)| offset);
        }
        crate::persist::begin_snapshot(shard).await;
        for r in group {
            r.stream_started.set(true);
        }
        return Some(shard.repl().borrow().master_offset());
    }
    let n = shard.shards();
    let tx = shard.shared.next_tx();
    let first = !shard.logging();
    let offset_rx = if first {
        let size = shard.shared.config().repl_backlog_size as usize;
        shard.repl().borrow_mut().ensure_backlog(size);
        None
    } else {
        let (tx_s, rx) = glommio::channels::oneshot::oneshot();
        let size = shard.shared.config().repl_backlog_size as usize;
        let mut repl = shard.repl().borrow_mut();
        // Freed by repl-backlog-ttl while the shards kept logging.
        repl.ensure_backlog(size);
        repl.merger.marker(tx);
        repl.markers.insert(tx, (group.to_vec(), Some(tx_s)));
        Some(rx)
    };
    for s in 0..n {
        let r = shard
            .call_async(ShardId(s), move |sh| async move {
                sh.store.lock_all(tx).await;
                // Replicas may have been attached while we waited.
                if first {
                    let mut log = sh.write_log.entries.borrow_mut();
                    if log.is_none() {
                        *log = Some(Vec::new());
                    }
                } else {
                    sh.log_marker(LogEntry::Acquire { tx, parts: n });
                }
            })
            .await;
        if r.is_err() {
            return None;
        }
    }
    let now = unix_ms();
    for s in 0..n {
        let _ = shard
            .call(ShardId(s), move |sh| {
                let _ = sh.store.keyspace.borrow_mut().snapshot_begin(now);
            })
            .await;
    }
    // With logging just turned on, the stream so far is exactly what the
    // snapshot holds: read its offset now, while every shard is still held
    // (once the first one is released its writes may be merged at once).
    // The group's stream starts at that same point.
    let first_offset = offset_rx.is_none().then(|| {
        for r in group {
            r.stream_started.set(true);
        }
        shard.repl().borrow().master_offset()
    });
    for s in 0..n {
        let _ = shard
            .call(ShardId(s), move |sh| {
                if !first {
                    sh.log_marker(LogEntry::Release { tx });
                }
                sh.store.unlock_all(tx);
            })
            .await;
    }
    match offset_rx {
        None => first_offset,
        Some(rx) => rx.await.ok(),
    }
}

/// Takes the snapshot for SAVE, BGSAVE or a shutdown save (the caller holds
/// the snapshot slot) and returns the replication info the file carries, as
/// Redis's `rdbPopulateSaveInfo`: a master's id and offset while it keeps a
/// backlog; a replica's while it holds its master's history, with the db
/// its master's stream has selected; none for a master without replicas.
pub async fn save_snapshot(shard: &Rc<Shard>) -> Option<ReplAux> {
    // Replication state, the merger and the link live on executor 0.
    shard
        .call_async(crate::shard::HOME_SHARD, |sh| async move {
            save_snapshot_here(&sh).await
        })
        .await
        .ok()
        .flatten()
}

async fn save_snapshot_here(shard: &Rc<Shard>) -> Option<ReplAux> {
    let aux = |shard: &Rc<Shard>, offset: i64, db: DbIndex| ReplAux {
        stream_db: db.get() as i64,
        repl_id: shard.repl().borrow().ids.replid.to_string(),
        repl_offset: offset,
    };
    if shard.repl().borrow().master.is_some() {
        if shard.repl().borrow().link_up() {
            // Taken by the link between two rounds, where data and offset agree.
            let (tx, rx) = glommio::channels::oneshot::oneshot();
            shard.repl().borrow_mut().snapshot_request = Some((Vec::new(), tx));
            let mut rx = std::pin::pin!(rx);
            loop {
                let tick = async {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                    None
                };
                match futures_lite::future::or(async { Some((&mut rx).await) }, tick).await {
                    Some(Ok((offset, db))) => return Some(aux(shard, offset, db)),
                    Some(Err(_)) => break,
                    None => {
                        // The link went away before it took the request: take
                        // the snapshot here instead.
                        let gone = !shard.repl().borrow().link_up();
                        let mut repl = shard.repl().borrow_mut();
                        if gone && repl.snapshot_request.is_some() {
                            repl.snapshot_request = None;
                            break;
                        }
                    }
                }
            }
        }
        crate::persist::begin_snapshot(shard).await;
        let repl = shard.repl().borrow();
        let (cached, offset, db) = (repl.cached, repl.master_offset(), repl.link_db);
        drop(repl);
        return cached.then(|| aux(shard, offset, db));
    }
    if !shard.logging() {
        crate::persist::begin_snapshot(shard).await;
        return None;
    }
    // The merged stream has no selected db after a snapshot marker.
    let offset = barrier(shard, &[]).await?;
    Some(aux(shard, offset, DbIndex(0)))
}

/// After the dump file loaded at start-up: takes up the replication history
/// it records, as Redis 7.0's `loadDataFromDisk` does. A replica continues
/// as a cached master of that id and offset (its first PSYNC can be
/// partial); a master keeps the id as `master_replid2`, valid up to the
/// offset, and goes on from that offset with a backlog, so its replicas can
/// continue too.
pub async fn restore_saved_history(shard: &Rc<Shard>, aux: &shardis_rdb::AuxInfo) {
    let (Some(id), Some(offset), Some(db)) = (&aux.repl_id, aux.repl_offset, aux.repl_stream_db)
    else {
        return;
    };
    // Older servers wrote -1 for what they did not know (Redis checks the same).
    if id.len() != 40 || offset < 0 || db < 0 {
        return;
    }
    let size = shard.shared.config().repl_backlog_size as usize;
    if shard.shared.config().replicaof.is_some() {
        let mut repl = shard.repl().borrow_mut();
        repl.ids = ReplIds::new(ReplId::from_text(id.clone()));
        repl.offset = offset;
        repl.backlog = Some(Backlog::new(size, offset));
        repl.cached = true;
        repl.link_db = DbIndex(db as usize);
        crate::log!(
            Notice,
            "Using the replication history of the dump file ({}:{}): the first synchronization may be partial.",
            id,
            offset
        );
        return;
    }
    {
        let mut repl = shard.repl().borrow_mut();
        repl.offset = offset;
        repl.ids = ReplIds::new(crate::shared::random_repl_id());
        repl.ids.replid2 = ReplId::from_text(id.clone());
        repl.ids.second_offset = offset + 1;
        repl.backlog = Some(Backlog::new(size, offset));
        crate::log!(
            Notice,
            "Replication backlog created from the dump file's history: my new replication IDs are '{}' and '{}' (valid up to offset {})",
            repl.ids.replid,
            repl.ids.replid2,
            repl.ids.second_offset
        );
    }
    // Writes from now on are in the backlog, so a continuing replica gets them.
    let _ = shard
        .broadcast(|s| {
            let mut log = s.write_log.entries.borrow_mut();
            if log.is_none() {
                *log = Some(Vec::new());
            }
        })
        .await;
}

/// Bytes of entries a shard serializes per snapshot step. Small, because the
/// executor serves its connections only between steps: at 8 KiB a step is
/// about a hundred microseconds.
const SNAPSHOT_CHUNK: usize = 8 * 1024;

/// Produces a full RDB of the current snapshot, calling `sink` with each chunk;
/// `sink` returns false to abort. Awaits `ready()` between chunks (backpressure).
/// `step` is [`SAVE_STEP`] or [`SYNC_STEP`].
pub async fn produce_rdb<F, R>(
    shard: &Rc<Shard>,
    repl: Option<ReplAux>,
    step: usize,
    sink: F,
    ready: R,
) -> bool
where
    F: FnMut(Bytes) -> bool,
    R: FnMut() -> bool,
{
    produce_rdb_with(shard, repl, false, step, sink, ready).await
}

/// [`produce_rdb`], with `aof_base` for the base file of an AOF (`aof-base:1`).
pub async fn produce_rdb_with<F, R>(
    shard: &Rc<Shard>,
    repl: Option<ReplAux>,
    aof_base: bool,
    step: usize,
    mut sink: F,
    ready: R,
) -> bool
where
    F: FnMut(Bytes) -> bool,
    R: FnMut() -> bool,
{
    let (compression, checksum) = {
        let c = shard.shared.config();
        (c.rdbcompression, c.rdbchecksum)
    };
    let mut w = RdbWriter::new(WriterOptions {
        compression,
        checksum,
    });
    let mut out = BytesMut::with_capacity(64 * 1024);
    w.header(
        &mut out,
        &HeaderAux {
            ctime: (unix_ms() / 1000) as i64,
            used_mem: crate::alloc::used_memory(),
            repl,
            aof_base,
        },
    );
    // Function libraries, read after the snapshot barrier: a FUNCTION LOAD
    // racing it is at worst sent twice (the replica refuses the repeat).
    for code in crate::script::functions::library_codes() {
        w.function(&mut out, &code);
    }
    if !sink(out.split().freeze()) {
        abort_snapshots(shard).await;
        return false;
    }
    if !forward_encoded_snapshot(shard, compression, step, &mut w, &mut sink, ready).await {
        return false;
    }
    w.finish(&mut out);
    sink(out.split().freeze())
}

/// RDB bytes a shard encodes per snapshot step of a save (SAVE, BGSAVE, an
/// AOF rewrite), on its own executor; its connections wait meanwhile (a few
/// hundred microseconds).
pub const SAVE_STEP: usize = 64 * 1024;

/// The same for a full sync, where replicas wait for the snapshot. The size
/// sets the snapshot's share of a busy core: a full sync of 1M keys under a
/// SET -P 16 load took 4.0-4.4 s with 64 KiB steps, 2.2-2.5 s with 256 KiB,
/// and no less with 512 KiB; a client's GET latency during the sync did not
/// change measurably (the load dominates it). Saves keep the small step:
/// with 256 KiB a BGSAVE under writes peaked ~9 MiB higher in RSS.
pub const SYNC_STEP: usize = 256 * 1024;

/// Encodes the next step of this shard's running snapshot as RDB: a
/// `SELECTDB` before each run of one db's keys, then the entries. No checksum:
/// the side that assembles the file counts it ([`RdbWriter::account`]).
/// `None` once the shard has produced everything.
fn encode_snapshot_step(sh: &Shard, compression: bool, step: usize) -> Option<Bytes> {
    collect_freed_pieces();
    let entries = sh.store.keyspace.borrow_mut().snapshot_next(step)?;
    let mut w = RdbWriter::new(WriterOptions {
        compression,
        checksum: false,
    });
    let mut out = BytesMut::with_capacity(step + step / 8);
    let mut db = None;
    for e in &entries {
        if db != Some(e.db) {
            w.select_db(&mut out, e.db, 0, 0);
            db = Some(e.db);
        }
        w.entry(&mut out, &e.key, &e.value, e.expire_at_ms);
    }
    Some(out.freeze())
}

/// Before each snapshot step, lets mimalloc take back what other threads
/// freed of this executor's blocks: each step's piece is freed by the
/// executor that writes it out, and until the owner collects, those pages
/// stay resident while it allocates new ones. Measured on a BGSAVE of 600k
/// keys under writes: median peak RSS 2.3 MiB lower, no slower.
fn collect_freed_pieces() {
    // SAFETY: collects this thread's own heap; no pointers are held across.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// Every shard encodes its part of the running snapshot on its own core, all
/// at once; this executor only counts the checksum and hands each finished
/// piece to `sink`, in whatever order the pieces arrive (each starts with its
/// own `SELECTDB`). One piece per shard is in flight, plus a few queued, so
/// memory stays bounded; `ready()` holds the pieces back while the consumers
/// are behind. Returns false (with every snapshot dropped) when `sink` does.
async fn forward_encoded_snapshot<F, R>(
    shard: &Rc<Shard>,
    compression: bool,
    step: usize,
    w: &mut RdbWriter,
    sink: &mut F,
    mut ready: R,
) -> bool
where
    F: FnMut(Bytes) -> bool,
    R: FnMut() -> bool,
{
    let n = shard.shards();
    let (tx, rx) = glommio::channels::local_channel::new_bounded::<Bytes>(n);
    let tx = Rc::new(tx);
    let producers: Vec<_> = (0..n)
        .map(|s| {
            let (sh, tx) = (shard.clone(), tx.clone());
            glommio::spawn_local(async move {
                loop {
                    let step = sh
                        .call(ShardId(s), move |x| {
                            encode_snapshot_step(x, compression, step)
                        })
                        .await;
                    let Ok(Some(piece)) = step else { break };
                    if tx.send(piece).await.is_err() {
                        break;
                    }
                    if s == sh.id.get() {
                        // This executor's own part runs inline: leave the
                        // task queue so its sockets are polled (see
                        // `walk_snapshot`).
                        glommio::timer::sleep(Duration::from_micros(20)).await;
                    }
                }
            })
        })
        .collect();
    // The channel closes when the last producer is done.
    drop(tx);
    let mut ok = true;
    loop {
        while !ready() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let Some(piece) = rx.recv().await else { break };
        w.account(&piece);
        if !sink(piece) {
            ok = false;
            break;
        }
    }
    // Closing the channel stops every producer at its next piece; they must be
    // gone before the snapshots are dropped (a late step would otherwise take
    // from the next snapshot).
    drop(rx);
    for p in producers {
        p.await;
    }
    if !ok {
        abort_snapshots(shard).await;
    }
    ok
}

/// Hands the running snapshot's entries to `each`, shard by shard, in chunks
/// of about [`SNAPSHOT_CHUNK`] bytes, awaiting `ready()` before each chunk
/// (backpressure). `each` returns false to abort: the snapshots are dropped
/// and this returns false.
pub async fn walk_snapshot<R, E>(shard: &Rc<Shard>, mut ready: R, mut each: E) -> bool
where
    R: FnMut() -> bool,
    E: FnMut(Vec<shardis_rdb::RdbEntry>) -> bool,
{
    for s in 0..shard.shards() {
        loop {
            while !ready() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            let chunk = shard
                .call(ShardId(s), |sh| {
                    sh.store.keyspace.borrow_mut().snapshot_next(SNAPSHOT_CHUNK)
                })
                .await;
            let Ok(Some(entries)) = chunk else { break };
            if !each(entries) {
                abort_snapshots(shard).await;
                return false;
            }
            // Let this executor's connections run between chunks. A yield is
            // not enough: glommio polls for I/O only when its task queue runs
            // dry or its 100 ms preempt timer fires, so a task that keeps
            // yielding starves every socket. A short sleep leaves the queue.
            glommio::timer::sleep(Duration::from_micros(20)).await;
        }
    }
    true
}

async fn abort_snapshots(shard: &Rc<Shard>) {
    let _ = shard
        .broadcast(|sh| {
            let mut ks = sh.store.keyspace.borrow_mut();
            if ks.snapshot_active() {
                ks.snapshot_abort();
            }
        })
        .await;
}

/// Starts one full sync for every replica waiting for one, as Redis's
/// replicationCron does: at once for disk-based sync; for diskless sync after
/// `repl-diskless-sync-delay` seconds counted from the first waiting replica,
/// or as soon as `repl-diskless-sync-max-replicas` (if not 0) are waiting.
/// Replicas that arrive meanwhile join the same snapshot.
async fn start_full_sync(shard: Rc<Shard>) {
    let since = Instant::now();
    let mut keepalive = Instant::now();
    loop {
        let (diskless, delay, max) = {
            let c = shard.shared.config();
            (
                c.repl_diskless_sync,
                Duration::from_secs(c.repl_diskless_sync_delay),
                c.repl_diskless_sync_max_replicas,
            )
        };
        let waiting = {
            let mut repl = shard.repl().borrow_mut();
            repl.pending_full.retain(|r| !r.closed.get());
            repl.pending_full.len()
        };
        if waiting == 0 {
            shard.repl().borrow_mut().full_sync_scheduled = false;
            return;
        }
        let elapsed = since.elapsed();
        if !diskless || (max > 0 && waiting as u64 >= max) || elapsed >= delay {
            break;
        }
        // A newline a second keeps waiting replicas' repl-timeout from
        // firing before +FULLRESYNC (Redis's replicationCron does the same).
        if keepalive.elapsed() >= Duration::from_secs(1) {
            keepalive = Instant::now();
            for r in shard.repl().borrow().pending_full.iter() {
                r.push_rdb(Bytes::from_static(b"\n"));
            }
        }
        glommio::timer::sleep((delay - elapsed).min(Duration::from_millis(10))).await;
    }
    let group = {
        let mut repl = shard.repl().borrow_mut();
        repl.full_sync_scheduled = false;
        std::mem::take(&mut repl.pending_full)
    };
    full_sync(shard, group).await;
}

/// Full resynchronization of `group`: snapshot barrier, +FULLRESYNC, the RDB
/// (diskless `$EOF:` or sized `$<len>`), then the stream from the snapshot offset.
async fn full_sync(shard: Rc<Shard>, group: Vec<Rc<Replica>>) {
    let diskless = shard.shared.config().repl_diskless_sync;
    let group: Vec<Rc<Replica>> = group.into_iter().filter(|r| !r.closed.get()).collect();
    if group.is_empty() {
        return;
    }
    let diskless = diskless && group.iter().all(|r| r.capa_eof);
    crate::log!(
        Notice,
        "Starting BGSAVE for SYNC with target: {}",
        if diskless { "replicas sockets" } else { "disk" }
    );
    let Some(offset) = snapshot_barrier(&shard, &group).await else {
        crate::persist::release(&shard);
        return;
    };
    let replid = shard.repl().borrow().ids.replid.clone();
    for r in &group {
        // SYNC (pre-PSYNC) replicas get the payload alone, as Redis sends it.
        if !r.pre_psync {
            r.push_rdb(Bytes::from(format!("+FULLRESYNC {replid} {offset}\r\n")));
        }
        r.state.set(ReplicaState::SendBulk);
    }
    crate::log!(
        Notice,
        "Background {} started by pid {}",
        if diskless { "RDB transfer" } else { "saving" },
        std::process::id()
    );
    let aux = Some(ReplAux {
        stream_db: -1,
        repl_id: replid.to_string(),
        repl_offset: offset,
    });
    let (ok, group) = if diskless {
        let mark = crate::shared::random_hex40();
        for r in &group {
            r.push_rdb(Bytes::from(format!("$EOF:{mark}\r\n")));
        }
        let sync = Rc::new(RunningSync {
            replid: shard.repl().borrow().ids.replid.clone(),
            offset,
            mark: mark.clone(),
            group: RefCell::new(group.clone()),
            produced: RefCell::new(Some(Vec::new())),
            produced_len: Cell::new(0),
        });
        shard.repl().borrow_mut().running_sync = Some(sync.clone());
        let s2 = sync.clone();
        let ok = produce_rdb(
            &shard,
            aux,
            SYNC_STEP,
            |chunk| sync.push(chunk),
            || {
                s2.group
                    .borrow()
                    .iter()
                    .all(|r| r.closed.get() || r.rdb_queued() < (4 << 20) + r.rdb_allowance.get())
            },
        )
        .await;
        // No one joins from here on: the payload is complete.
        shard.repl().borrow_mut().running_sync = None;
        let group = sync.group.borrow().clone();
        for r in &group {
            r.push_rdb(Bytes::from(mark.clone()));
            r.wait_first_ack.set(true);
        }
        (ok, group)
    } else {
        let mut chunks = Vec::new();
        let ok = produce_rdb(
            &shard,
            aux,
            SYNC_STEP,
            |c| {
                chunks.push(c);
                true
            },
            || true,
        )
        .await;
        let len: usize = chunks.iter().map(|c| c.len()).sum();
        crate::log!(Notice, "DB saved on disk");
        for r in &group {
            r.push_rdb(Bytes::from(format!("${len}\r\n")));
            for c in &chunks {
                r.push_rdb(c.clone());
            }
        }
        (ok, group)
    };
    crate::persist::release(&shard);
    if ok {
        crate::log!(
            Notice,
            "Background {} terminated with success",
            if diskless { "RDB transfer" } else { "saving" }
        );
    }
    for r in &group {
        if r.closed.get() {
            continue;
        }
        r.rdb_done.set(true);
        r.last_ack.set(Instant::now());
        r.state.set(ReplicaState::Online);
        refresh_good_replicas(&shard);
        r.wake();
        crate::log!(
            Notice,
            "Synchronization with replica {} succeeded",
            r.name()
        );
    }
}

/// Shutdown (shard 0): true when every replica acknowledged the whole stream
/// (Redis's `isReadyToShutdown`).
pub fn replicas_caught_up(shard: &Shard) -> bool {
    let repl = shard.repl().borrow();
    let offset = repl.master_offset();
    repl.replicas
        .iter()
        .all(|r| r.closed.get() || r.ack_offset.get() == offset)
}

/// Shutdown (shard 0): asks every replica for its offset now.
pub fn ask_acks(shard: &Shard) {
    shard
        .repl()
        .borrow_mut()
        .merger
        .emit_raw(&[b"REPLCONF", b"GETACK", b"*"]);
    shard.write_log.signal.kick();
}

/// Shutdown (shard 0): Redis's `finishShutdown` lines about the replicas.
pub fn log_replicas_at_shutdown(shard: &Shard) {
    let repl = shard.repl().borrow();
    let offset = repl.master_offset();
    let replicas: Vec<&Rc<Replica>> = repl.replicas.iter().filter(|r| !r.closed.get()).collect();
    let mut lagging = 0;
    for r in &replicas {
        if r.ack_offset.get() == offset {
            continue;
        }
        lagging += 1;
        let online = r.state.get() == ReplicaState::Online;
        let lag = if online {
            r.last_ack.get().elapsed().as_secs()
        } else {
            0
        };
        crate::log!(
            Warning,
            "Lagging replica {} reported offset {} behind master, lag={}, state={}.",
            r.name(),
            offset - r.ack_offset.get().max(0),
            lag,
            r.state.get().name()
        );
    }
    if !replicas.is_empty() {
        crate::log!(
            Notice,
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
}

/// Waits until `numreplicas` replicas acknowledged `offset`, or `timeout`.
/// `None` when this server turned into a replica meanwhile: the caller is
/// unblocked with an error, as Redis unblocks WAIT on a role change.
pub async fn wait_for_acks(
    shard: &Rc<Shard>,
    offset: i64,
    numreplicas: usize,
    timeout: Option<Duration>,
    unblocked: &std::sync::atomic::AtomicU8,
) -> Option<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    {
        let mut repl = shard.repl().borrow_mut();
        if repl.acked(offset) < numreplicas {
            repl.merger.emit_raw(&[b"REPLCONF", b"GETACK", b"*"]);
            shard.write_log.signal.kick();
        }
    }
    loop {
        if shard.store.replica.get() {
            return None;
        }
        let n = shard.repl().borrow().acked(offset);
        // CLIENT UNBLOCK ends the wait as its timeout would.
        if n >= numreplicas
            || deadline.is_some_and(|d| Instant::now() >= d)
            || unblocked.load(std::sync::atomic::Ordering::Acquire) != 0
        {
            return Some(n);
        }
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
}

/// Moves a client that sent PSYNC/SYNC to the replication role on shard 0.
/// The socket's fd crosses cores; everything else is owned data.
pub async fn hand_over(
    conn: crate::conn::Conn,
    psync: Option<(String, i64)>,
    rc: crate::conn::ReplConf,
) {
    use std::os::fd::FromRawFd;
    let (id, addr) = {
        let info = conn.info.borrow();
        (info.id, info.addr)
    };
    let shard = conn.shard.clone();
    let leftover = conn.rbuf;
    let fd = conn.stream.into_raw_fd();
    let h = Handoff {
        id,
        addr,
        listening_port: rc.listening_port,
        ip: rc.ip,
        capa_eof: rc.capa_eof,
        capa_psync2: rc.capa_psync2,
        rdb_only: rc.rdb_only,
        rdb_functions_only: rc.rdb_functions_only,
        psync,
        leftover,
    };
    let _ = shard
        .call(crate::shard::HOME_SHARD, move |s0| {
            #[allow(unsafe_code)]
            // SAFETY: the fd came from into_raw_fd above; nothing else owns it now.
            let stream = unsafe { TcpStream::from_raw_fd(fd) };
            let s0 = s0.clone();
            glommio::spawn_local(async move { serve_replica(s0, stream, h).await }).detach();
        })
        .await;
}
