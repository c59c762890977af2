//! One executor's shard: its [`Store`] (keyspace, key locks, command
//! statistics), what consumes the store's runs on this executor (WATCH
//! versions, blocked and tracking clients, keyspace events, the write log),
//! and its link to the other shards.
//!
//! ```text
//!  conn task ──run()──► Shard ──execute()──► Store ──► Keyspace
//!      │                  │  ◄──publish(ctx)──┘   (effects, ready keys, events)
//!      │                  └──► WATCH, blocking, tracking, pub/sub, write log
//!      └──call(target, job)───► mesh (owned Job closures) ───► Shard (other core)
//!                               ◄─── oneshot::shared reply ◄───────┘
//! ```
//!
//! The store never calls up: a run hands what it left to the `publish`
//! step this layer passes in.
//!
//! Every cross-core message is a [`Job`]: an owned closure that runs on the
//! target shard and sends its own result back over a shared oneshot. Replies
//! never travel on the mesh, so requests and replies cannot deadlock each other,
//! and the receiving loop never blocks (work that must wait, e.g. for a key lock,
//! is spawned as a local task).
//!
//! Multi-shard commands take intent locks on their keys, shard by shard in
//! ascending shard order (so lock waits can never form a cycle), run, then
//! release. A single-shard command whose key is locked waits for the release;
//! when no locks are held (the common case) the check is one `is_empty()`.

use crate::blocking::BlockTable;
use crate::shared::{unix_ms, unix_us, ShardCounters, Shared};
use crate::store::{Exec, Store};
use crate::writelog::WriteLog;
use bytes::Bytes;
use glommio::channels::channel_mesh::Senders;
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_commands::Command;
use shardis_keyspace::DbIndex;
use shardis_keyspace::{Effect, ExecContext, Keyspace};
use shardis_protocol::Reply;
use shardis_replication::LogEntry;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

/// The shard whose executor holds the server-wide roles: replication (the
/// merged write stream, the backlog, the replicas' writers), the AOF,
/// snapshots and save points, shutdown.
pub const HOME_SHARD: ShardId = ShardId(0);

/// Work sent to another shard: runs there, with that shard's state.
pub type Job = Box<dyn FnOnce(&Rc<Shard>) + Send + Sync>;

/// The target shard is gone (the process is shutting down).
#[derive(Debug, Clone, Copy)]
pub struct ShardGone;

/// One command addressed to a shard.
pub struct Request {
    /// Selected database.
    pub db: DbIndex,
    /// Table entry.
    pub cmd: &'static Command,
    /// Arguments including the name.
    pub args: Vec<Bytes>,
    /// The client speaks RESP3 (some replies change shape).
    pub resp3: bool,
    /// A client's own write on a writable replica (not the master's): keys
    /// it gives a TTL are expired by this replica itself.
    pub replica_write: bool,
    /// The sending client's id (NOLOOP).
    pub client: u64,
    /// A tracking client reads: remember its keys here first.
    pub track: Option<crate::tracking::Track>,
}

/// How a command run is admitted and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A client's command: Redis's maxmemory step first (over the limit this
    /// shard evicts, and refuses a `denyoom` command it cannot make room
    /// for), then counted in commandstats.
    Client,
    /// Admission was decided before (EXEC, a script, a multi-shard command
    /// that checked once): no maxmemory step; counted.
    Decided,
    /// A blocking command's try or re-try when its key is ready: the
    /// maxmemory step, but not counted, because the connection counts the
    /// command once, as Redis counts a blocked command once however often it
    /// was retried.
    Retry,
}

/// One command for [`Shard::run`].
pub struct Run<'a> {
    /// Selected database.
    pub db: DbIndex,
    /// Table entry.
    pub cmd: &'static Command,
    /// Arguments including the name.
    pub args: &'a [Bytes],
    /// Replies shaped for RESP3 (the client's protocol).
    pub resp3: bool,
    /// Wall-clock start (unix µs): the command's time for expiry and the
    /// start of its duration (Redis's `call()` times with ustime()). In a
    /// run of commands with nothing in between, the previous one's end:
    /// chaining halves the clock reads of a pipelined batch (two reads per
    /// command were 6% of the samples at GET -P 16). `None`: the clock is
    /// read when the run starts.
    pub start_us: Option<u64>,
    /// How it is admitted and counted.
    pub admit: Admit,
    /// The client whose command this is (0: none), so a tracking client
    /// with NOLOOP is not told of its own writes.
    pub client: u64,
    /// Where its effects go instead of the write log: a transaction, a
    /// multi-shard command or a script collects them, and the merger
    /// replicates them as one unit. `None`: the write log.
    pub collect: Option<&'a mut Vec<Effect>>,
}

impl<'a> Run<'a> {
    /// A client's command starting when it runs, replies in RESP2, effects
    /// logged.
    pub fn new(db: DbIndex, cmd: &'static Command, args: &'a [Bytes]) -> Run<'a> {
        Run {
            db,
            cmd,
            args,
            resp3: false,
            start_us: None,
            admit: Admit::Client,
            client: 0,
            collect: None,
        }
    }

    /// Starting at `start_us` (see [`Run::start_us`]).
    pub fn at(mut self, start_us: u64) -> Run<'a> {
        self.start_us = Some(start_us);
        self
    }

    /// Replies shaped for RESP3 when `resp3`.
    pub fn resp3(mut self, resp3: bool) -> Run<'a> {
        self.resp3 = resp3;
        self
    }

    /// Admitted as `admit`.
    pub fn admit(mut self, admit: Admit) -> Run<'a> {
        self.admit = admit;
        self
    }

    /// On behalf of client `id` (see [`Run::client`]).
    pub fn client(mut self, id: u64) -> Run<'a> {
        self.client = id;
        self
    }

    /// Effects appended to `effects` instead of the write log.
    pub fn collect(mut self, effects: &'a mut Vec<Effect>) -> Run<'a> {
        self.collect = Some(effects);
        self
    }
}

/// Wakes a task a table handed back (after the table's borrow ended).
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// What came of a [`Run`].
pub struct Outcome {
    /// The reply.
    pub reply: Reply,
    /// How long it ran (µs), for the slowlog.
    pub usec: u64,
    /// When it ended (unix µs), the next command's start in a chain.
    pub end_us: u64,
    /// The changes the command made itself (Redis's `server.dirty`): a key
    /// it deleted because its TTL had passed is not one.
    pub dirty: u64,
}

/// What came of one part of a multi-shard command ([`Shard::run_part`]).
pub struct Part {
    /// The part's reply.
    pub reply: Reply,
    /// Its effects: lazy-expiry deletions it met, then its own write, if any.
    pub effects: Vec<Effect>,
    /// Whether it changed the dataset itself (so its last effect is its own).
    pub wrote: bool,
}

/// The shard state owned by one executor.
pub struct Shard {
    /// This shard's id (its mesh peer id).
    pub id: ShardId,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// Its data: keyspace, key locks, command statistics.
    pub store: Store,
    senders: Senders<Job>,
    /// Entries waiting for the replication role, and its wake-up.
    pub write_log: WriteLog,
    /// The replication role's state: on the home shard only.
    repl: Option<RefCell<crate::repl::ReplState>>,
    /// Clients connected to this executor.
    pub clients: RefCell<HashMap<u64, Rc<RefCell<crate::client::ClientInfo>>>>,
    /// Versions of watched keys (WATCH).
    pub watch: RefCell<crate::watch::WatchTable>,
    /// Pub/Sub subscribers connected to this executor.
    pub pubsub: RefCell<crate::pubsub::Registry>,
    /// Clients blocked on this shard's keys, and this executor's blocked clients.
    pub blocking: RefCell<BlockTable>,
    /// Slowlog ring, latency events and histograms, errorstats, monitors.
    pub obs: RefCell<crate::obs::ShardObs>,
    /// Keyspace notifications on their way to the other executors.
    pub events_out: crate::pubsub::EventOutbox,
    /// Client-side caching: tracked keys of this shard, BCAST prefixes, this
    /// executor's tracking clients.
    pub tracking: RefCell<crate::tracking::Table>,
    /// Every connection's message queue on this executor, by client id.
    pub mailboxes: RefCell<HashMap<u64, Rc<crate::pubsub::Mailbox>>>,
    /// This shard's own `Rc` (for tasks it spawns from `&self` paths).
    me: std::rc::Weak<Shard>,
    /// Connections waiting for the AOF to hold their writes (`aof::wait_durable`).
    pub aof_waiters: RefCell<Vec<Waker>>,
}

impl Shard {
    /// Creates shard `id` around its mesh senders.
    pub fn new(
        id: ShardId,
        shared: Arc<Shared>,
        senders: Senders<Job>,
        me: std::rc::Weak<Shard>,
    ) -> Shard {
        Shard {
            id,
            store: Store::new(id, shared.clone()),
            senders,
            write_log: WriteLog::default(),
            repl: (id == HOME_SHARD)
                .then(|| RefCell::new(crate::repl::ReplState::new(shared.shards))),
            clients: RefCell::new(HashMap::new()),
            watch: RefCell::new(Default::default()),
            pubsub: RefCell::new(Default::default()),
            blocking: RefCell::new(Default::default()),
            obs: RefCell::new(Default::default()),
            events_out: Default::default(),
            tracking: Default::default(),
            mailboxes: RefCell::new(HashMap::new()),
            me,
            shared,
            aof_waiters: RefCell::new(Vec::new()),
        }
    }

    /// This shard's `Rc`, while it lives.
    pub fn me(&self) -> Option<Rc<Shard>> {
        self.me.upgrade()
    }

    /// The replication role's state. Only the home shard holds it: every
    /// other shard reaches it with a call to [`HOME_SHARD`], so calling this
    /// anywhere else is a bug in the caller.
    pub fn repl(&self) -> &RefCell<crate::repl::ReplState> {
        self.repl
            .as_ref()
            .expect("replication state is reached on the home shard")
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.shards
    }

    /// This shard's counters.
    pub fn counters(&self) -> &ShardCounters {
        self.store.counters()
    }

    /// Runs one command on this shard's keyspace (its keys are local and
    /// unlocked) and returns what came of it. Every way of running a command
    /// ends here; [`Run`] says how (see [`Admit`]), and whether its effects go
    /// to the write log or back to the caller ([`Run::collect`]).
    pub fn run(&self, run: Run<'_>) -> Outcome {
        let Run {
            db,
            cmd,
            args,
            resp3,
            start_us,
            admit,
            client,
            collect,
        } = run;
        let start_us = start_us.unwrap_or_else(unix_us);
        if admit != Admit::Decided {
            if let Some(oom) = self.oom_check(cmd, false) {
                if admit == Admit::Client {
                    self.store.record_rejected(cmd.stat_index(args));
                }
                return Outcome {
                    reply: oom,
                    usec: 0,
                    end_us: start_us,
                    dirty: 0,
                };
            }
        }
        // Redis's propagatePendingCommands: a command's several effects go out
        // as one MULTI … EXEC, except for commands that touch arbitrary keys.
        let wrap = !matches!(
            cmd.id,
            shardis_commands::CommandId::Scan
                | shardis_commands::CommandId::Randomkey
                | shardis_commands::CommandId::Keys
        );
        let exec = Exec {
            db,
            resp3,
            now_ms: start_us / 1000,
            discard: collect.is_none() && !self.effects_wanted(),
        };
        let (reply, dirty) = self.store.execute(
            exec,
            |ks, ctx| ks.execute(ctx, cmd, args),
            |ctx| self.publish(ctx, wrap, collect, client),
        );
        let end_us = unix_us();
        let usec = end_us.saturating_sub(start_us);
        let usec = if admit == Admit::Retry {
            usec
        } else {
            self.record_usec(cmd, cmd.stat_index(args), &reply, usec)
        };
        Outcome {
            reply,
            usec,
            end_us,
            dirty,
        }
    }

    /// One part of a multi-shard command run for `client` (0: none),
    /// admitted already: returns its reply and effects, which the caller
    /// replicates with the other parts.
    pub fn run_part(
        &self,
        db: DbIndex,
        cmd: &'static Command,
        args: &[Bytes],
        client: u64,
    ) -> Part {
        let mut effects = Vec::new();
        let out = self.run(
            Run::new(db, cmd, args)
                .admit(Admit::Decided)
                .client(client)
                .collect(&mut effects),
        );
        Part {
            reply: out.reply,
            effects,
            wrote: out.dirty > 0,
        }
    }

    /// After a client's write on a writable replica: remembers the keys it
    /// left with a TTL (see `Keyspace::remember_replica_expire`).
    pub fn remember_replica_expires(&self, db: DbIndex, cmd: &'static Command, args: &[Bytes]) {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        let mut ks = self.store.keyspace.borrow_mut();
        for i in cmd.key_indices(&argv).unwrap_or_default() {
            ks.remember_replica_expire(db, &args[i]);
        }
    }

    /// Runs `f` on the keyspace with a fresh context for `db`, then publishes the
    /// context's effects and counters.
    pub fn with_ctx<R>(
        &self,
        db: DbIndex,
        f: impl FnOnce(&mut Keyspace, &mut ExecContext) -> R,
    ) -> R {
        self.execute_at(db, None, f)
    }

    /// [`Shard::with_ctx`], handing the effects to `effects` instead of the
    /// write log (a part of a multi-shard command or script, whose effects
    /// replicate as one unit).
    pub fn with_ctx_into<R>(
        &self,
        db: DbIndex,
        effects: &mut Vec<Effect>,
        f: impl FnOnce(&mut Keyspace, &mut ExecContext) -> R,
    ) -> R {
        self.execute_at(db, Some(effects), f)
    }

    /// Whether anything consumes a run's effects: the write log (replicas,
    /// AOF), WATCH, a blocked client or a tracking client. When nothing
    /// does, a plain command run skips building them (no argument copies,
    /// no allocation per write).
    fn effects_wanted(&self) -> bool {
        self.write_log.on()
            || !self.watch.borrow().is_empty()
            || self.blocking.borrow().has_waiters()
            || self.tracking.borrow().watching()
    }

    /// Runs `f` on the keyspace now, in `db`, and publishes what it left
    /// (see [`Shard::publish`]), with its effects going to `collect` or, as
    /// separate commands, to the write log.
    fn execute_at<R>(
        &self,
        db: DbIndex,
        collect: Option<&mut Vec<Effect>>,
        f: impl FnOnce(&mut Keyspace, &mut ExecContext) -> R,
    ) -> R {
        let exec = Exec {
            db,
            resp3: false,
            now_ms: unix_ms(),
            discard: false,
        };
        self.store
            .execute(exec, f, |ctx| {
                self.publish(ctx, false, collect, 0);
            })
            .0
    }

    /// Hands what a run left in its context to what consumes it on this
    /// executor: WATCH versions, blocked and tracking clients, the write log
    /// (or `collect`), and keyspace events. `wrap`: the effects are one
    /// command's (see [`Shard::log_effects_of`]); `writer`: the client
    /// whose command it was (0: none; see [`Run::client`]).
    fn publish(
        &self,
        ctx: &mut ExecContext,
        wrap: bool,
        collect: Option<&mut Vec<Effect>>,
        writer: u64,
    ) {
        if !ctx.expired.is_empty() {
            // Deleted for no client, before the command's own writes: a
            // NOLOOP client is told even when its own command met them.
            for key in ctx.expired.drain(..) {
                crate::tracking::key_written(self, &key, 0);
            }
        }
        if !ctx.effects.is_empty() {
            {
                let mut w = self.watch.borrow_mut();
                if !w.is_empty() {
                    for e in &ctx.effects {
                        w.touch_effect(e);
                    }
                }
            }
            let waker = self.blocking.borrow_mut().effects_written(&ctx.effects);
            wake(waker);
            crate::tracking::effects_written(self, &ctx.effects, writer);
            match collect {
                Some(out) => out.append(&mut ctx.effects),
                None => self.log_effects_of(&mut ctx.effects, wrap),
            }
        }
        let waker = self.blocking.borrow_mut().keys_ready(&mut ctx.ready_keys);
        wake(waker);
        if !ctx.events.is_empty() {
            crate::pubsub::keyspace_events(self, ctx.notify_flags, &mut ctx.events);
        }
    }

    /// A key written outside a run (multi-shard write-back) by `writer`'s
    /// command (0: none): bumps its WATCH version, invalidates it for
    /// tracking clients (but `writer` if it has NOLOOP) and serves clients
    /// blocked on it again (whether it now exists or not: a deleted stream
    /// ends an XREADGROUP on it).
    pub fn key_written(&self, db: DbIndex, key: &Bytes, writer: u64) {
        self.watch.borrow_mut().touch(db, key);
        crate::tracking::key_written(self, key, writer);
        let waker = self
            .blocking
            .borrow_mut()
            .keys_ready(&mut vec![(db, key.clone())]);
        wake(waker);
    }

    /// Appends effects to the write log if replication consumes it.
    pub fn log_effects(&self, effects: impl Iterator<Item = Effect>) {
        self.write_log.effects(self.counters(), effects);
    }

    /// Logs the effects of one run: with `wrap` (one client command) several
    /// effects (lazy-expiry DELs before a write, SPOP's SREMs, XREADGROUP's
    /// XCLAIMs…) are surrounded by MULTI … EXEC as Redis 7.0's
    /// `propagatePendingCommands` does: MULTI in the first effect's db (so a
    /// SELECT goes before it), EXEC in the last one's. (A transaction or a
    /// multi-shard command collects its effects instead, and the merger
    /// wraps them as a whole.)
    /// The expire cycle and eviction never wrap (Redis's `propagate_no_multi`).
    pub fn log_effects_of(&self, effects: &mut Vec<Effect>, wrap: bool) {
        if !wrap || effects.len() < 2 || !self.logging() {
            self.log_effects(effects.drain(..));
            return;
        }
        let word = |db: DbIndex, w: &'static [u8]| Effect {
            db,
            args: vec![Bytes::from_static(w)],
        };
        let multi = word(effects[0].db, b"MULTI");
        let exec = word(effects[effects.len() - 1].db, b"EXEC");
        self.log_effects(
            std::iter::once(multi)
                .chain(effects.drain(..))
                .chain(std::iter::once(exec)),
        );
    }

    /// Appends a transaction marker to the write log, if replication is on.
    pub fn log_marker(&self, entry: LogEntry) {
        self.write_log.marker(self.counters(), entry);
    }

    /// True if replication consumes this shard's writes.
    pub fn logging(&self) -> bool {
        self.write_log.on()
    }

    /// Records one call in commandstats, the latency histogram and the
    /// latency monitor, under `stat` ([`Command::stat_index`]: the subcommand
    /// for a container); returns its duration in microseconds.
    pub fn record(
        &self,
        cmd: &'static Command,
        stat: Option<usize>,
        reply: &Reply,
        start: Instant,
    ) -> u64 {
        self.record_usec(cmd, stat, reply, start.elapsed().as_micros() as u64)
    }

    /// [`Shard::record`] with the time already measured (µs).
    pub fn record_usec(
        &self,
        cmd: &'static Command,
        stat: Option<usize>,
        reply: &Reply,
        usec: u64,
    ) -> u64 {
        self.store.count_call(stat, reply, usec);
        crate::obs::record_command(self, cmd, stat, usec);
        usec
    }

    // ---------------------------------------------------------------- mesh

    /// Runs `f` on shard `target` and returns its result. Local work runs inline.
    pub async fn call<R, F>(self: &Rc<Self>, target: ShardId, f: F) -> Result<R, ShardGone>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<Shard>) -> R + Send + Sync + 'static,
    {
        if target == self.id {
            return Ok(f(self));
        }
        let (tx, rx) = glommio::channels::oneshot::shared();
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.counters()
            .cross_shard_batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)?;
        rx.await.map_err(|_| ShardGone)
    }

    /// Like [`Shard::call`], for work that must await on the target (locks).
    pub async fn call_async<R, F, Fut>(
        self: &Rc<Self>,
        target: ShardId,
        f: F,
    ) -> Result<R, ShardGone>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
    {
        if target == self.id {
            return Ok(f(self.clone()).await);
        }
        let (tx, rx) = glommio::channels::oneshot::shared();
        let job: Job = Box::new(move |s| {
            let fut = f(s.clone());
            glommio::spawn_local(async move {
                let _ = tx.send(fut.await);
            })
            .detach();
        });
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)?;
        rx.await.map_err(|_| ShardGone)
    }

    /// Runs `f` on every shard (concurrently) and returns the results by shard id.
    pub async fn broadcast<R, F>(self: &Rc<Self>, f: F) -> Result<Vec<R>, ShardGone>
    where
        R: Send + 'static,
        F: Fn(&Rc<Shard>) -> R + Send + Sync + Clone + 'static,
    {
        let mut pending = Vec::with_capacity(self.shards());
        for t in 0..self.shards() {
            let f = f.clone();
            pending.push(self.post(ShardId(t), move |s| f(s)).await?);
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.wait().await?);
        }
        Ok(out)
    }

    /// Posts a pipeline's requests for shard `target` as one message; await the
    /// returned receiver for the replies in order. Posting every shard's batch
    /// before awaiting any lets the shards work in parallel. On the target the
    /// batch runs inline when no key locks are held, which is the common case.
    pub async fn post_batch(
        self: &Rc<Self>,
        target: ShardId,
        reqs: Vec<Request>,
    ) -> Result<Pending<BatchReplies>, ShardGone> {
        let (tx, rx) = glommio::channels::oneshot::shared();
        let home = self.id;
        let job: Job = Box::new(move |s| {
            if s.store.unlocked() {
                let mut out = BatchReplies::with_capacity(reqs.len());
                let mut clock = unix_us();
                for q in reqs {
                    if let Some(t) = q.track {
                        crate::tracking::remember(s, t, q.cmd, &q.args);
                    }
                    let out_q = s.run(
                        Run::new(q.db, q.cmd, &q.args)
                            .resp3(q.resp3)
                            .at(clock)
                            .client(q.client),
                    );
                    let (r, usec) = (out_q.reply, out_q.usec);
                    clock = out_q.end_us;
                    if q.replica_write {
                        s.remember_replica_expires(q.db, q.cmd, &q.args);
                    }
                    out.push(s, q, r, usec);
                }
                if s.shared
                    .notify_flags
                    .load(std::sync::atomic::Ordering::Relaxed)
                    == 0
                {
                    let _ = tx.send(out);
                    return;
                }
                // Keyspace events of this batch went to `home` on this
                // shard's queue to it; the replies follow on the same queue,
                // so `home`'s subscribers see them before the client can
                // write again (see `pubsub::keyspace_events`).
                let reply: Job = Box::new(move |_| {
                    let _ = tx.send(out);
                });
                if let Err(Some(reply)) = s.try_send_job(home, reply) {
                    // A full queue: the replies go straight back, unordered.
                    reply(s);
                }
            } else {
                let s = s.clone();
                glommio::spawn_local(async move {
                    let _ = tx.send(s.run_batch(reqs).await);
                })
                .detach();
            }
        });
        self.counters()
            .cross_shard_batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)?;
        Ok(Pending::Remote(rx))
    }

    /// Sends `job` to run on `target` (another shard) without waiting for it to run.
    pub async fn send(&self, target: ShardId, job: Job) -> Result<(), ShardGone> {
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)
    }

    /// Sends `job` to `target`, waiting for room in its queue. Jobs from one
    /// shard to another run in the order they were sent.
    pub async fn send_job(&self, target: ShardId, job: Job) -> Result<(), ShardGone> {
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)
    }

    /// Sends `job` to `target` if its queue has room (false otherwise).
    pub fn try_send(&self, target: ShardId, job: Job) -> bool {
        self.senders.try_send_to(target.get(), job).is_ok()
    }

    /// Sends `job` to `target` if its queue has room; hands it back if the
    /// queue is full, `Err(None)` if the target is gone.
    pub fn try_send_job(&self, target: ShardId, job: Job) -> Result<(), Option<Job>> {
        use glommio::{GlommioError, ResourceType};
        match self.senders.try_send_to(target.get(), job) {
            Ok(()) => Ok(()),
            Err(GlommioError::WouldBlock(ResourceType::Channel(j))) => Err(Some(j)),
            Err(_) => Err(None),
        }
    }

    /// Posts `f` to run on `target` without waiting for it; await the result later.
    pub async fn post<R, F>(self: &Rc<Self>, target: ShardId, f: F) -> Result<Pending<R>, ShardGone>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<Shard>) -> R + Send + Sync + 'static,
    {
        if target == self.id {
            return Ok(Pending::Ready(f(self)));
        }
        let (tx, rx) = glommio::channels::oneshot::shared();
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.senders
            .send_to(target.get(), job)
            .await
            .map_err(|_| ShardGone)?;
        Ok(Pending::Remote(rx))
    }

    /// Executes a batch of requests sent by another shard's connection, in order.
    /// Runs inline unless a key is locked; then the rest of the batch waits its turn.
    pub async fn run_batch(self: Rc<Self>, reqs: Vec<Request>) -> BatchReplies {
        let mut out = BatchReplies::with_capacity(reqs.len());
        for req in reqs {
            if !self.store.unlocked() {
                let keys = request_keys(&req);
                self.store.wait_unlocked(req.db, &keys).await;
            }
            if let Some(t) = req.track {
                crate::tracking::remember(&self, t, req.cmd, &req.args);
            }
            let Outcome { reply: r, usec, .. } = self.run(
                Run::new(req.db, req.cmd, &req.args)
                    .resp3(req.resp3)
                    .client(req.client),
            );
            if req.replica_write {
                self.remember_replica_expires(req.db, req.cmd, &req.args);
            }
            out.push(&self, req, r, usec);
        }
        out
    }
}

/// A batch's replies in order, plus the calls slow enough for the slowlog
/// (logged by the sending connection, which knows the client).
pub struct BatchReplies {
    /// One reply per request, in order.
    pub replies: Vec<Reply>,
    /// Slow calls (usually none: this stays unallocated).
    pub slow: Vec<SlowCall>,
}

/// A call that crossed `slowlog-log-slower-than`.
pub struct SlowCall {
    /// The command.
    pub cmd: &'static Command,
    /// Its arguments.
    pub args: Vec<Bytes>,
    /// Execution time, µs.
    pub usec: u64,
}

impl BatchReplies {
    fn with_capacity(n: usize) -> BatchReplies {
        BatchReplies {
            replies: Vec::with_capacity(n),
            slow: Vec::new(),
        }
    }

    fn push(&mut self, shard: &Shard, req: Request, reply: Reply, usec: u64) {
        if shard.shared.obs.is_slow(usec) {
            self.slow.push(SlowCall {
                cmd: req.cmd,
                args: req.args,
                usec,
            });
        }
        self.replies.push(reply);
    }
}

/// A result of work posted to a shard: already there when the shard was this
/// executor's own (no channel), else still being computed on the other one.
pub enum Pending<R> {
    /// Computed in place.
    Ready(R),
    /// On its way back from another shard.
    Remote(glommio::channels::oneshot::SharedReceiver<R>),
}

impl<R: Send> Pending<R> {
    /// Waits for the result.
    pub async fn wait(self) -> Result<R, ShardGone> {
        match self {
            Pending::Ready(r) => Ok(r),
            Pending::Remote(rx) => rx.await.map_err(|_| ShardGone),
        }
    }
}

/// The key arguments of a request (owned, for lock checks).
pub fn request_keys(req: &Request) -> Vec<Bytes> {
    let argv: Vec<&[u8]> = req.args.iter().map(|a| a.as_ref()).collect();
    req.cmd
        .key_indices(&argv)
        .unwrap_or_default()
        .into_iter()
        .map(|i| req.args[i].clone())
        .collect()
}
