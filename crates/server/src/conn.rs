//! One client connection: read, decode, route, reply.
//!
//! A connection works in rounds: it decodes every complete request in its read
//! buffer, runs those whose keys live on this core inline, gathers the rest into
//! one batch per owning shard, posts all batches at once, and writes every reply
//! in request order. A command that is not a plain single-shard command (a
//! multi-shard MSET, FLUSHALL, CONFIG …) is a barrier: the batches queued before
//! it are flushed and awaited first, so a pipeline observes its own writes.

use crate::client::ClientInfo;
use crate::errors;
use crate::net::Socket;
use crate::shard::{BatchReplies, Pending, Request, Run, Shard};
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWriteExt};
use shardis_base::ShardId;
use shardis_commands::{flags, lookup, Command, KeySpec};
use shardis_keyspace::DbIndex;
use shardis_protocol::{DecodeLimits, Protocol, Reply, RequestDecoder};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Most requests decoded per round, so one client cannot starve others.
const MAX_ROUND: usize = 1024;
/// Read granularity.
const READ_CHUNK: usize = 16 * 1024;

/// Where a request goes.
pub enum Route {
    /// Answered without running (errors found before dispatch).
    Reply(Reply),
    /// All keys on shard `.0`.
    Keyed(ShardId, &'static Command),
    /// Keys on several shards, at these argument positions.
    MultiShard(&'static Command, Vec<usize>),
    /// Connection or server command, run by the connection.
    Special(&'static Command),
}

/// Per-connection state.
pub struct Conn {
    /// This executor's shard.
    pub shard: Rc<Shard>,
    /// The socket.
    pub stream: Socket,
    /// CLIENT LIST's view of this connection.
    pub info: Rc<RefCell<ClientInfo>>,
    /// Request decoder state.
    pub decoder: RequestDecoder,
    /// Bytes read, not yet decoded.
    pub rbuf: BytesMut,
    /// Where ordinary reads land before being appended to `rbuf`.
    scratch: Box<[u8]>,
    /// Replies not yet written.
    pub wbuf: BytesMut,
    /// Selected db.
    pub db: DbIndex,
    /// Negotiated protocol.
    pub proto: Protocol,
    /// Passed AUTH (or the default user needs no password).
    pub authenticated: bool,
    /// The ACL user this connection runs as (cached; see `acl::refresh`).
    pub user: std::sync::Arc<shardis_acl::User>,
    /// The ACL epoch `user` was read at.
    pub acl_epoch: u64,
    /// Close once the current replies are written.
    pub close_after_reply: bool,
    slots: Vec<Option<Reply>>,
    /// Slots of this round whose reply CLIENT REPLY OFF/SKIP drops (ascending).
    silenced: Vec<usize>,
    /// CLIENT REPLY OFF is in force.
    pub(crate) reply_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is dropped.
    pub(crate) skip_next: bool,
    batches: Vec<Vec<Request>>,
    batch_slots: Vec<Vec<usize>>,
    /// This connection applies our master's stream (writes allowed, replies dropped).
    pub master_link: bool,
    /// REPLCONF state sent by a replica before PSYNC.
    pub replconf: ReplConf,
    /// Set by PSYNC/SYNC: the socket moves to the replication role.
    pub handoff: Option<(Option<(String, i64)>, ReplConf)>,
    /// MULTI/WATCH state.
    pub tx: crate::tx::TxState,
    /// Pub/Sub subscriptions and the message queue.
    pub subs: crate::pubsub::Subs,
    /// CLIENT NO-EVICT on (flag `e`; shardis never evicts clients).
    pub no_evict: bool,
    /// This round holds a write counted in `Shared::writes_in_flight`.
    pub(crate) write_in_flight: bool,
    /// Some while a global EXEC of this connection holds every shard: what
    /// its server commands replicate (FLUSHALL, PUBLISH, FUNCTION LOAD…)
    /// collects here, to take its place in the transaction, and
    /// FLUSHALL/FLUSHDB/SWAPDB do not take the shards again.
    pub(crate) held: Option<Vec<shardis_keyspace::Effect>>,
    /// How long the current blocking command's first try ran (µs), for commandstats.
    pub(crate) blocking_usec: u64,
    /// When the command being run started (unix µs): a script's start for
    /// `busy-reply-threshold`, and the start of its first call's duration.
    pub(crate) cmd_start_us: u64,
    /// CLIENT TRACKING is on (its state is in the executor's tracking table).
    pub tracking: bool,
}

/// What a replica told us with REPLCONF before PSYNC.
#[derive(Debug, Clone, Default)]
pub struct ReplConf {
    /// listening-port.
    pub listening_port: u16,
    /// ip-address.
    pub ip: Option<String>,
    /// capa eof.
    pub capa_eof: bool,
    /// capa psync2.
    pub capa_psync2: bool,
    /// rdb-only 1: the RDB and nothing after it (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// rdb-filter-only functions: the RDB holds functions only (`redis-cli --functions-rdb`).
    pub rdb_functions_only: bool,
}

/// Serves one accepted connection until it closes.
pub async fn serve(shard: Rc<Shard>, stream: glommio::net::TcpStream) {
    let shared = shard.shared.clone();
    let stream = match Socket::from_glommio(stream) {
        Ok(s) => s,
        Err(e) => {
            crate::log!(
                Warning,
                "Error registering fd event for the new client: {}",
                e
            );
            return;
        }
    };
    let counters = shard.counters();
    counters
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let addr = stream
        .peer_addr()
        .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
    let laddr = stream
        .local_addr()
        .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
    let _ = stream.set_nodelay(true);
    crate::limits::apply_keepalive(stream.as_raw_fd(), shared.config().tcp_keepalive);
    let clients = shared.connected_clients.fetch_add(1, Ordering::Relaxed) + 1;
    let protected = shared.config().protected_mode;
    let users = shared.acl.snapshot();
    let default_nopass = users.default_user().nopass();
    let mut stream = stream;
    if clients as u64 > shared.maxclients.load(Ordering::Relaxed) {
        counters
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    if protected && default_nopass && !addr.ip().is_loopback() {
        let _ = stream.write_all(errors::PROTECTED_MODE.as_bytes()).await;
        shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let now = Instant::now();
    let info = Rc::new(RefCell::new(ClientInfo {
        id,
        addr,
        laddr,
        fd: stream.as_raw_fd(),
        name: String::new(),
        created: now,
        last_interaction: now,
        db: DbIndex(0),
        resp: 2,
        last_cmd: String::new(),
        flags: "N".into(),
        qbuf: 0,
        omem: 0,
        killed: false,
        sub: 0,
        psub: 0,
        ssub: 0,
        multi: -1,
        user: "default".into(),
        redir: -1,
        tracking: None,
    }));
    shard.clients.borrow_mut().insert(id, info.clone());
    let authenticated = crate::acl::default_authenticates(&users);
    let mut conn = Conn::new(shard.clone(), stream, info, authenticated);
    shard
        .mailboxes
        .borrow_mut()
        .insert(id, conn.subs.mailbox.clone());
    conn.run().await;
    shard.mailboxes.borrow_mut().remove(&id);
    crate::tracking::disable(&mut conn).await;
    crate::pubsub::reset(&mut conn);
    crate::obs::monitor::remove(&shard, id);
    crate::tx::reset(&mut conn).await;
    shard.clients.borrow_mut().remove(&id);
    shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
    if let Some((psync, rc)) = conn.handoff.take() {
        crate::repl::hand_over(conn, psync, rc).await;
    }
}

impl Conn {
    /// A connection around an accepted (or, for the master link, connected) socket.
    pub fn new(
        shard: Rc<Shard>,
        stream: Socket,
        info: Rc<RefCell<ClientInfo>>,
        authenticated: bool,
    ) -> Conn {
        let nshards = shard.shards();
        let acl_epoch = shard.shared.acl.epoch();
        let user = shard.shared.acl.snapshot().default_user().clone();
        Conn {
            user,
            acl_epoch,
            shard,
            stream,
            info,
            decoder: RequestDecoder::new(authenticated),
            rbuf: BytesMut::new(),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            db: DbIndex(0),
            proto: Protocol::Resp2,
            authenticated,
            close_after_reply: false,
            slots: Vec::new(),
            silenced: Vec::new(),
            reply_off: false,
            skip_next: false,
            batches: (0..nshards).map(|_| Vec::new()).collect(),
            batch_slots: (0..nshards).map(|_| Vec::new()).collect(),
            master_link: false,
            replconf: ReplConf::default(),
            handoff: None,
            tx: Default::default(),
            subs: Default::default(),
            no_evict: false,
            write_in_flight: false,
            held: None,
            blocking_usec: 0,
            cmd_start_us: 0,
            tracking: false,
        }
    }

    async fn run(&mut self) {
        let mut reqs: Vec<Vec<Bytes>> = Vec::new();
        loop {
            let limits = DecodeLimits {
                max_bulk_len: self.shard.shared.proto_max_bulk_len.load(Ordering::Relaxed),
            };
            let mut protocol_error = None;
            while reqs.len() < MAX_ROUND {
                match self.decoder.decode(&mut self.rbuf, &limits) {
                    Ok(Some(args)) => reqs.push(args),
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
            }
            let more_ready = reqs.len() == MAX_ROUND;
            let ran = !reqs.is_empty();
            if ran {
                self.process(&mut reqs).await;
                // Replies leave once the AOF holds the writes they may show.
                if self.shard.shared.aof_on.load(Ordering::Relaxed) && !self.master_link {
                    crate::aof::wait_durable(&self.shard).await;
                }
            }
            if let Some(e) = protocol_error {
                crate::log!(
                    Verbose,
                    "Protocol error ({}) from client: id={} addr={}",
                    e.message().trim_start_matches("ERR Protocol error: "),
                    self.info.borrow().id,
                    self.info.borrow().addr
                );
                self.reply(Reply::Error(e.message()));
                self.close_after_reply = true;
            }
            // Replies leave after every connection woken in this round has
            // read and run its requests, as Redis writes in beforeSleep: a send
            // wakes the client's thread, and interleaving one read and one send
            // per connection woke it once per reply (25% of the samples at SET
            // -P 16 were that wake-up, docs/benchmarks.md). The yield also
            // keeps a client whose data is always ready (its reads never wait)
            // from holding the executor, replies or not.
            if ran || !self.wbuf.is_empty() {
                futures_lite::future::yield_now().await;
            }
            self.subs.mailbox.drain_into(self.proto, &mut self.wbuf);
            if !self.wbuf.is_empty() {
                let n = self.wbuf.len() as u64;
                if self.output_limit_reached() {
                    return;
                }
                self.subs.mailbox.in_flight.set(self.wbuf.len());
                let written = self.stream.write_all(&self.wbuf).await;
                self.subs.mailbox.in_flight.set(0);
                if written.is_err() || self.subs.mailbox.closing.get() {
                    return;
                }
                self.info.borrow_mut().last_interaction = Instant::now();
                crate::shared::ShardCounters::add(&self.shard.counters().net_output_bytes, n);
                self.wbuf.clear();
            }
            if self.close_after_reply
                || self.handoff.is_some()
                || self.info.borrow().killed
                || self.shard.shared.shutting_down()
            {
                return;
            }
            if more_ready {
                continue;
            }
            let limit = self.shard.shared.query_buffer_limit.load(Ordering::Relaxed);
            if self.rbuf.len() as u64 >= limit {
                crate::log!(
                    Warning,
                    "Closing client that reached max query buffer length: id={} addr={} qbuf={} (qbuf initial bytes: {:?})",
                    self.info.borrow().id,
                    self.info.borrow().addr,
                    self.rbuf.len(),
                    String::from_utf8_lossy(&self.rbuf[..self.rbuf.len().min(64)])
                );
                return;
            }
            let len = self.rbuf.len();
            let want = match self.decoder.pending_bulk() {
                Some(bulk) if bulk + 2 > len => (bulk + 2 - len).clamp(READ_CHUNK, 1 << 20),
                _ => READ_CHUNK,
            };
            // Ordinary reads land in a scratch buffer zeroed once per connection:
            // zeroing 16 KB of `rbuf` before every read was the top user-space
            // cost at -P 1 (docs/benchmarks.md). Big bulks read straight into
            // `rbuf`, where the zeroing is amortised over a large read.
            let direct = want > READ_CHUNK;
            if direct {
                self.rbuf.resize(len + want, 0);
            }
            // Wait for the socket, or for a Pub/Sub message to write.
            let mailbox = self.subs.mailbox.clone();
            let stream = &mut self.stream;
            let buf = if direct {
                &mut self.rbuf[len..]
            } else {
                &mut self.scratch[..]
            };
            let read = std::future::poll_fn(|cx| {
                if !mailbox.is_empty() {
                    return std::task::Poll::Ready(None);
                }
                mailbox.set_waker(cx.waker());
                std::pin::Pin::new(&mut *stream)
                    .poll_read(cx, buf)
                    .map(Some)
            })
            .await;
            let n = match read {
                None => {
                    self.rbuf.truncate(len);
                    continue;
                }
                Some(Ok(0)) | Some(Err(_)) => return,
                Some(Ok(n)) => n,
            };
            if direct {
                self.rbuf.truncate(len + n);
            } else {
                self.rbuf.extend_from_slice(&self.scratch[..n]);
            }
            crate::shared::ShardCounters::add(&self.shard.counters().net_input_bytes, n as u64);
            let mut info = self.info.borrow_mut();
            info.qbuf = self.rbuf.len();
            info.last_interaction = Instant::now();
        }
    }

    /// `client-output-buffer-limit` for this client's class, checked before
    /// its pending replies are written; logs and says to close when broken.
    fn output_limit_reached(&self) -> bool {
        if self.master_link {
            return false;
        }
        let pubsub = self.subs.active();
        let limit = self.shard.shared.output_limits.get(pubsub);
        let pending = self.wbuf.len() + self.subs.mailbox.pending_bytes();
        let over = self.subs.mailbox.closing.get()
            || self.subs.mailbox.limit.exceeded(pending as u64, limit);
        if over {
            crate::limits::log_output_limit(&self.info.borrow().line());
        }
        over
    }

    /// Lifts the decoder's pre-authentication size caps.
    pub fn set_authenticated(&mut self) {
        self.decoder.set_authenticated(true);
    }

    /// Encodes a reply into the write buffer.
    pub fn reply(&mut self, reply: Reply) {
        if let Reply::Error(msg) = &reply {
            self.count_error(msg);
        }
        // Our master (or the AOF being loaded) gets no replies: they are
        // counted, not encoded (Redis's prepareClientToWrite refuses them).
        if self.master_link {
            return;
        }
        reply.encode(self.proto, &mut self.wbuf);
    }

    /// Runs one round of decoded requests and queues their replies in order.
    pub async fn process(&mut self, reqs: &mut Vec<Vec<Bytes>>) {
        let me = self.shard.id;
        self.slots.clear();
        let count = reqs.len() as u64;
        crate::shared::ShardCounters::add(&self.shard.counters().commands_processed, count);
        let mut last: Option<&'static Command> = None;
        // One relaxed load per round: nothing is formatted when nobody monitors.
        let monitoring = self.shard.shared.obs.monitoring();
        self.silenced.clear();
        // (slot, skipped) of the previous request: whether its reply is dropped
        // is known once it ran (CLIENT REPLY OFF silences its own reply).
        let mut prev: Option<(usize, bool)> = None;
        // The end of the last command run here, while nothing has awaited
        // since: the next local command starts from it (one clock read each).
        let mut clock: Option<u64> = None;
        for args in reqs.drain(..) {
            let mut start = clock.take();
            // CLIENT CACHING lasts one command: its name, kept only while tracking.
            let tracked_name = self.tracking.then(|| args[0].clone());
            if let Some((slot, skipped)) = prev.take() {
                if self.reply_off || skipped {
                    self.silenced.push(slot);
                }
            }
            if self.close_after_reply || self.handoff.is_some() {
                break;
            }
            prev = Some((self.slots.len(), std::mem::take(&mut self.skip_next)));
            // A script ran past busy-reply-threshold (on any core: one on this
            // core pauses to let us answer).
            if crate::script::busy::active() {
                if self.master_link {
                    // As Redis: our master's stream is held, not refused.
                    crate::script::busy::wait_idle().await;
                    start = None;
                } else if let Some(r) = crate::script::busy::reject(&args) {
                    self.slots.push(Some(r));
                    continue;
                }
            }
            let route = self.route(&args);
            let route = self.memory_gate(route);
            if let Route::Reply(Reply::Error(_)) = &route {
                // Refused before running: commandstats' rejected_calls.
                if let Some(cmd) = lookup(&args[0]) {
                    self.shard.store.record_rejected(cmd.stat_index(&args));
                }
            }
            if self.tx.in_multi() || self.subs.active() {
                if let Some(r) = crate::tx::gate(self, &route, &args) {
                    self.slots.push(Some(r));
                    continue;
                }
            }
            // CLIENT PAUSE and FAILOVER hold the command until the pause ends;
            // then it is decided again (a FAILOVER may have made us a replica).
            let route = if crate::limits::wait_if_paused(self, &route).await {
                start = None;
                let route = self.route(&args);
                self.memory_gate(route)
            } else {
                route
            };
            let route = match route {
                Route::Keyed(_, cmd) | Route::MultiShard(cmd, _)
                    if crate::blocking::handles(cmd) && !self.master_link =>
                {
                    // A blocking command is a barrier: later requests wait
                    // until it is answered, as in Redis.
                    last = Some(cmd);
                    self.flush_batches().await;
                    if monitoring {
                        self.feed_monitors(cmd, &args);
                    }
                    // Counted once, with its first try's time (the wait is not
                    // execution), as Redis counts a blocked command.
                    let stat = cmd.stat_index(&args);
                    self.blocking_usec = 0;
                    let r = crate::blocking::run(self, cmd, args, route).await;
                    self.shard.record_usec(cmd, stat, &r, self.blocking_usec);
                    self.slots.push(Some(r));
                    continue;
                }
                other => other,
            };
            let resp3 = self.proto == Protocol::Resp3;
            let reply = match route {
                Route::Reply(r) => Some(r),
                Route::Keyed(shard, cmd) => {
                    last = Some(cmd);
                    if monitoring {
                        self.feed_monitors(cmd, &args);
                    }
                    // A client's write on a writable replica (rare: one flag test).
                    let replica_write =
                        !self.master_link && self.shard.store.replica.get() && cmd.is_write();
                    if shard == me {
                        let args = if !self.shard.store.unlocked() {
                            start = None;
                            self.flush_batches().await;
                            let req = Request {
                                db: self.db,
                                cmd,
                                args,
                                resp3,
                                replica_write,
                                client: 0,
                                track: None,
                            };
                            let keys = crate::shard::request_keys(&req);
                            self.shard.store.wait_unlocked(self.db, &keys).await;
                            req.args
                        } else {
                            args
                        };
                        if let Some(t) = crate::tracking::tracks(self, cmd, &args) {
                            crate::tracking::remember(&self.shard, t, cmd, &args);
                        }
                        let start = start.unwrap_or_else(crate::shared::unix_us);
                        let (r, end) = self.run_inline(resp3, cmd, &args, start);
                        clock = Some(end);
                        if replica_write {
                            self.shard.remember_replica_expires(self.db, cmd, &args);
                        }
                        Some(r)
                    } else {
                        self.batch_slots[shard.get()].push(self.slots.len());
                        let track = crate::tracking::tracks(self, cmd, &args);
                        self.batches[shard.get()].push(Request {
                            db: self.db,
                            cmd,
                            args,
                            resp3,
                            replica_write,
                            client: self.info.borrow().id,
                            track,
                        });
                        None
                    }
                }
                Route::MultiShard(cmd, keys) => {
                    last = Some(cmd);
                    self.flush_batches().await;
                    if monitoring {
                        self.feed_monitors(cmd, &args);
                    }
                    let slow_args = self.shard.shared.obs.slowlog_on().then(|| args.clone());
                    let stat = cmd.stat_index(&args);
                    let start = Instant::now();
                    let resp3 = self.proto == Protocol::Resp3;
                    if let Some(t) = crate::tracking::tracks(self, cmd, &args) {
                        crate::tracking::remember_everywhere(&self.shard, t, cmd, &args).await;
                    }
                    let client = self.info.borrow().id;
                    let r = crate::multi::run(&self.shard, self.db, cmd, args, keys, resp3, client)
                        .await;
                    let usec = self.shard.record(cmd, stat, &r, start);
                    if let Some(a) = slow_args {
                        self.log_if_slow(cmd, &a, usec);
                    }
                    Some(r)
                }
                Route::Special(cmd) => {
                    // Named before it runs, so CLIENT LIST/INFO show themselves.
                    last = None;
                    self.info.borrow_mut().set_cmd(cmd, &args);
                    if self.batches.iter().any(|b| !b.is_empty()) {
                        // Waited for: the duration starts after the flush.
                        self.flush_batches().await;
                        start = None;
                    }
                    if monitoring && cmd.id == shardis_commands::CommandId::Exec {
                        self.feed_queued();
                    }
                    // A script shows before the commands it runs (`[0 lua]` lines).
                    let script = crate::script::run::is_script_command(cmd);
                    if monitoring && script {
                        self.feed_monitors(cmd, &args);
                    }
                    let start = start.unwrap_or_else(crate::shared::unix_us);
                    self.cmd_start_us = start;
                    let r = crate::admin::special(self, cmd, &args).await;
                    let end = crate::shared::unix_us();
                    clock = Some(end);
                    let usec = self.shard.record_usec(
                        cmd,
                        cmd.stat_index(&args),
                        &r,
                        end.saturating_sub(start),
                    );
                    self.log_if_slow(cmd, &args, usec);
                    if monitoring && !script {
                        self.feed_monitors(cmd, &args);
                    }
                    Some(r)
                }
            };
            self.slots.push(reply);
            if let Some(cmd) = tracked_name.as_deref().and_then(lookup) {
                crate::tracking::command_done(self, cmd);
            }
        }
        if let Some((slot, skipped)) = prev.take() {
            if self.reply_off || skipped {
                self.silenced.push(slot);
            }
        }
        self.flush_batches().await;
        crate::limits::end_writes(self);
        if monitoring {
            crate::obs::monitor::flush(&self.shard).await;
        }
        let mut silenced = 0;
        for i in 0..self.slots.len() {
            if self.silenced.get(silenced) == Some(&i) {
                silenced += 1;
                self.slots[i] = None;
                continue;
            }
            if let Some(r) = self.slots[i].take() {
                self.reply(r);
            }
        }
        let mut info = self.info.borrow_mut();
        if let Some(cmd) = last {
            if info.last_cmd != cmd.name {
                info.last_cmd = cmd.name.to_string();
            }
        }
        info.db = self.db;
    }

    /// Posts every queued batch, then waits for all of them.
    pub(crate) async fn flush_batches(&mut self) {
        if self.batches.iter().all(|b| b.is_empty()) {
            return;
        }
        let mut pending: Vec<(usize, Pending<BatchReplies>)> = Vec::new();
        for shard in 0..self.batches.len() {
            if self.batches[shard].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.batches[shard]);
            match self.shard.post_batch(ShardId(shard), batch).await {
                Ok(p) => pending.push((shard, p)),
                Err(_) => self.fail_batch(ShardId(shard)),
            }
        }
        for (shard, p) in pending {
            match p.wait().await {
                Ok(batch) => {
                    for (slot, r) in self.batch_slots[shard].drain(..).zip(batch.replies) {
                        self.slots[slot] = Some(r);
                    }
                    for c in batch.slow {
                        self.log_if_slow(c.cmd, &c.args, c.usec);
                    }
                }
                Err(_) => self.fail_batch(ShardId(shard)),
            }
        }
    }

    /// Runs a command on this core's shard, logging it if slow.
    /// Starts at `start_us` (see [`crate::shard::Run::start_us`]); returns
    /// the reply and the end time.
    fn run_inline(
        &self,
        resp3: bool,
        cmd: &'static Command,
        args: &[Bytes],
        start_us: u64,
    ) -> (Reply, u64) {
        let out = self.shard.run(
            Run::new(self.db, cmd, args)
                .resp3(resp3)
                .at(start_us)
                .client(self.info.borrow().id),
        );
        self.log_if_slow(cmd, args, out.usec);
        (out.reply, out.end_us)
    }

    /// Replicates what a server command did (not a keyspace command: those
    /// log their effects where they run): into the transaction while a
    /// global EXEC holds every shard, else to this executor's write log.
    pub fn propagate(&mut self, effect: shardis_keyspace::Effect) {
        match self.held.as_mut() {
            Some(held) => held.push(effect),
            None => self.shard.log_effects(std::iter::once(effect)),
        }
    }

    /// Counts an error reply in `total_error_replies` and INFO errorstats.
    pub fn count_error(&self, msg: &str) {
        crate::shared::ShardCounters::add(&self.shard.counters().total_error_replies, 1);
        self.shard.obs.borrow_mut().errors.count(msg);
    }

    /// Adds a call to this executor's slowlog ring if it took long enough.
    pub fn log_if_slow(&self, cmd: &'static Command, args: &[Bytes], usec: u64) {
        if self.shard.shared.obs.is_slow(usec) {
            crate::obs::log_slow(&self.shard, cmd, args, usec, &self.info.borrow());
        }
    }

    /// Queues a MONITOR line for a command this connection runs.
    fn feed_monitors(&self, cmd: &'static Command, args: &[Bytes]) {
        let addr = self.info.borrow().addr.to_string();
        crate::obs::monitor::feed(&self.shard, cmd, self.db, &addr, args);
    }

    /// MONITOR shows a transaction's commands as EXEC runs them.
    fn feed_queued(&self) {
        if self.tx.dirty {
            return;
        }
        if let Some(q) = &self.tx.queued {
            for (cmd, args) in q {
                self.feed_monitors(cmd, args);
            }
        }
    }

    fn fail_batch(&mut self, shard: ShardId) {
        for slot in self.batch_slots[shard.get()].drain(..) {
            self.slots[slot] = Some(Reply::error(errors::SHUTTING_DOWN));
        }
        self.close_after_reply = true;
    }

    /// Redis's maxmemory step for what the owning shard does not check
    /// itself (see `memory`): commands queued in MULTI, EXEC, multi-shard and
    /// server commands evict on this connection's shard and may get OOM.
    fn memory_gate(&self, route: Route) -> Route {
        if self.master_link || self.shard.shared.maxmemory.load(Ordering::Relaxed) == 0 {
            return route;
        }
        let in_multi = self.tx.in_multi();
        let cmd = match &route {
            Route::Reply(_) => return route,
            // The owning shard checks when it runs the command, except for
            // blocking commands, which the connection runs itself.
            Route::Keyed(_, c) if !in_multi && !crate::blocking::handles(c) => return route,
            Route::Keyed(_, c) | Route::MultiShard(c, _) | Route::Special(c) => *c,
        };
        let exec_denyoom = self
            .tx
            .queued
            .as_ref()
            .is_some_and(|q| q.iter().any(|(c, _)| c.has(flags::DENYOOM)));
        match self.shard.oom_check_exec(cmd, in_multi, exec_denyoom) {
            Some(oom) => Route::Reply(oom),
            None => route,
        }
    }

    /// Redis's loading gate: while a replica loads its master's RDB only
    /// `loading` commands run (EXEC only if everything it queued is). While
    /// it loads aside and serves the old data (`async_loading`), only the
    /// `no-async-loading` commands are refused (REPLICAOF, FAILOVER, …),
    /// EXEC too if it queued one.
    fn denied_loading(&self, cmd: &'static Command, cmd_flags: u32) -> bool {
        let shared = &self.shard.shared;
        if shared.loading.load(Ordering::Relaxed) {
            return !self.resp2_subscribed_refuses(cmd)
                && self.lacks_flag(cmd, cmd_flags, flags::LOADING);
        }
        shared.async_loading.load(Ordering::Relaxed)
            && !self.resp2_subscribed_refuses(cmd)
            && (cmd_flags & flags::NO_ASYNC_LOADING != 0
                || (cmd.id == shardis_commands::CommandId::Exec
                    && self.tx.queued.as_ref().is_some_and(|q| {
                        q.iter()
                            .any(|(c, a)| c.flags_for(a) & flags::NO_ASYNC_LOADING != 0)
                    })))
    }

    /// In the RESP2 subscribed state Redis answers its context error before the
    /// stale and loading gates.
    fn resp2_subscribed_refuses(&self, cmd: &'static Command) -> bool {
        self.subs.active() && self.proto == Protocol::Resp2 && !cmd.has(flags::PUBSUB_CONTEXT)
    }

    /// `cmd` (whose flags, its subcommand's for a container, are
    /// `cmd_flags`) lacks `flag`; for EXEC, some queued command does.
    fn lacks_flag(&self, cmd: &'static Command, cmd_flags: u32, flag: u32) -> bool {
        if cmd.id == shardis_commands::CommandId::Exec {
            return self
                .tx
                .queued
                .as_ref()
                .is_some_and(|q| q.iter().any(|(c, a)| c.flags_for(a) & flag == 0));
        }
        cmd_flags & flag == 0
    }

    /// Redis's stale-data gate: on a replica whose link is down, with
    /// `replica-serve-stale-data no`, only `stale` commands run (EXEC only if
    /// everything it queued is). Two relaxed loads when the server serves.
    fn denied_stale(&self, cmd: &'static Command, cmd_flags: u32) -> bool {
        let shared = &self.shard.shared;
        if !shared.master_link_down.load(Ordering::Relaxed)
            || shared.serve_stale_data.load(Ordering::Relaxed)
        {
            return false;
        }
        !self.resp2_subscribed_refuses(cmd) && self.lacks_flag(cmd, cmd_flags, flags::STALE)
    }

    /// `enable-debug-command`: `yes`, or `local` and a loopback client (Redis's
    /// `allowProtectedAction`). Read from the config only for DEBUG itself.
    /// Redis's allowProtectedAction for `enable-<what>-command`.
    fn protected_allowed(&self, what: &str) -> bool {
        let setting = self
            .shard
            .shared
            .config()
            .value_of(&format!("enable-{what}-command"))
            .unwrap_or_default();
        match setting.as_str() {
            "yes" => true,
            "local" => self.info.borrow().addr.ip().is_loopback(),
            _ => false,
        }
    }

    /// Redis's processCommand refusals for a client's command, in its order:
    /// authentication, ACL, a write on a read-only replica, a write after a
    /// failed save or AOF write, too few good replicas, a stale or loading
    /// replica.
    fn refusal(&mut self, cmd: &'static Command, args: &[Bytes]) -> Option<Reply> {
        crate::acl::refresh(self);
        if !self.authenticated && !cmd.has(flags::NO_AUTH) {
            return Some(Reply::error(errors::NOAUTH));
        }
        if let Err(r) = crate::acl::check(self, cmd, args) {
            return Some(r);
        }
        // Inside MULTI SORT is queued and EXEC replies this error in its array.
        if !self.tx.in_multi() {
            if let Some(r) = crate::acl::sort_patterns(self, cmd, args) {
                return Some(r);
            }
        }
        // A container's subcommand's own flags decide (FUNCTION LIST reads,
        // FUNCTION LOAD writes), as Redis checks the subcommand's.
        let cmd_flags = cmd.flags_for(args);
        let write = cmd_flags & flags::WRITE != 0;
        if write && self.shard.store.replica.get() && self.shard.shared.config().replica_read_only {
            return Some(Reply::error(errors::READONLY));
        }
        // Redis's writeCommandsDeniedByDiskError: after a failed BGSAVE (with
        // stop-writes-on-bgsave-error and save points) or a failed AOF write,
        // writes (and PING) are refused until a save or write succeeds again.
        if write || cmd.id == shardis_commands::CommandId::Ping {
            if self.shard.shared.bgsave_failed.load(Ordering::Relaxed) {
                let config = self.shard.shared.config();
                if !config.save.is_empty()
                    && config.value_of("stop-writes-on-bgsave-error").as_deref() == Some("yes")
                {
                    return Some(Reply::error(errors::MISCONF_RDB));
                }
            }
            if self.shard.shared.aof_write_failed.load(Ordering::Relaxed) {
                if let Some(e) = crate::aof::write_error(&self.shard) {
                    return Some(Reply::Error(e));
                }
            }
        }
        if write {
            let min = self
                .shard
                .shared
                .min_replicas_to_write
                .load(Ordering::Relaxed);
            if min > 0
                && !self.shard.store.replica.get()
                && (self.shard.shared.good_replicas.load(Ordering::Relaxed) as u64) < min
            {
                return Some(Reply::error(errors::NOREPLICAS));
            }
        }
        if self.denied_stale(cmd, cmd_flags) {
            return Some(Reply::error(errors::MASTERDOWN));
        }
        if self.denied_loading(cmd, cmd_flags) {
            return Some(Reply::error(errors::LOADING));
        }
        None
    }

    /// Decides where a request runs, answering the errors Redis checks before
    /// running a command (unknown command, arity, authentication).
    fn route(&mut self, args: &[Bytes]) -> Route {
        let Some(cmd) = lookup(&args[0]) else {
            return Route::Reply(Reply::Error(errors::unknown_command(args)));
        };
        if !cmd.arity_ok(args.len()) {
            return Route::Reply(Reply::Error(errors::wrong_arity(cmd.name)));
        }
        // As Redis's processCommand: a container's subcommand must exist (among
        // those shardis implements) and meet its own arity. (COMMAND alone is
        // a command of its own.)
        if cmd.meta.is_container() && args.len() > 1 {
            match cmd.sub(&args[1]) {
                None => {
                    return Route::Reply(Reply::Error(errors::unknown_subcommand(
                        &args[1], cmd.name,
                    )))
                }
                Some(i) => {
                    let sub = &shardis_commands::meta::TABLE[i];
                    if !sub.arity_ok(args.len()) {
                        return Route::Reply(Reply::Error(errors::wrong_arity(sub.name)));
                    }
                }
            }
        }
        if cmd.id == shardis_commands::CommandId::Debug && !self.protected_allowed("debug") {
            return Route::Reply(Reply::error(errors::DEBUG_NOT_ALLOWED));
        }
        if cmd.id == shardis_commands::CommandId::Module
            && crate::module::is_protected(&args[1])
            && !self.protected_allowed("module")
        {
            return Route::Reply(Reply::error(errors::MODULE_NOT_ALLOWED));
        }
        // Our master's stream and the AOF being loaded are obeyed as they
        // come: Redis refuses commands only from ordinary clients.
        if !self.master_link {
            if let Some(refused) = self.refusal(cmd, args) {
                return Route::Reply(refused);
            }
        }
        let n = self.shard.shards();
        // MIGRATE talks to another server: the connection runs it, holding
        // its keys (see `migrate`).
        if cmd.id == shardis_commands::CommandId::Watch
            || cmd.id == shardis_commands::CommandId::Migrate
            || crate::script::run::is_script_command(cmd)
            || crate::route::keyless(cmd, args)
        {
            return Route::Special(cmd);
        }
        if crate::multi::needs_all_shards(cmd, args, n) {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            return Route::MultiShard(cmd, cmd.key_indices(&argv).unwrap_or_default());
        }
        match cmd.keys {
            KeySpec::None => Route::Special(cmd),
            KeySpec::Range {
                first: 1, last: 1, ..
            } => Route::Keyed(crate::route::shard_of(&args[1], n), cmd),
            _ => {
                let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
                // Malformed key arguments: the keyspace produces the command's own error.
                let keys = cmd.key_indices(&argv).unwrap_or_default();
                let Some(&first) = keys.first() else {
                    return Route::Keyed(self.shard.id, cmd);
                };
                let owner = crate::route::shard_of(&args[first], n);
                if keys
                    .iter()
                    .all(|&i| crate::route::shard_of(&args[i], n) == owner)
                {
                    Route::Keyed(owner, cmd)
                } else {
                    Route::MultiShard(cmd, keys)
                }
            }
        }
    }
}
