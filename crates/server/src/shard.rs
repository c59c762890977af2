//! One executor's shard: its keyspace, its intent locks and its link to the
//! other shards.
//!
//! ```text
//!  conn task ──execute()──► Shard (this core) ──keyspace──► Keyspace
//!      │                        ▲
//!      └──call(target, job)─────┼──── mesh (owned Job closures) ───► Shard (other core)
//!                               └──── oneshot::shared reply ◄───────┘
//! ```
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

use crate::shared::{unix_ms, unix_us, ShardCounters, Shared};
use bytes::Bytes;
use glommio::channels::channel_mesh::Senders;
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_commands::Command;
use shardis_keyspace::DbIndex;
use shardis_keyspace::{Effect, ExecContext, Keyspace};
use shardis_protocol::Reply;
use shardis_replication::{LogEntry, TxId};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
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

    /// Effects appended to `effects` instead of the write log.
    pub fn collect(mut self, effects: &'a mut Vec<Effect>) -> Run<'a> {
        self.collect = Some(effects);
        self
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

/// Per-command counters for INFO commandstats.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommandStat {
    /// Calls.
    pub calls: u64,
    /// Total microseconds.
    pub usec: u64,
    /// Calls that replied with an error.
    pub failed: u64,
    /// Calls refused before running (arity, auth, …).
    pub rejected: u64,
}

/// The shard state owned by one executor.
pub struct Shard {
    /// This shard's id (its mesh peer id).
    pub id: ShardId,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// This shard's keys.
    pub keyspace: RefCell<Keyspace>,
    /// The dataset a `repl-diskless-load swapdb` full sync is loading aside,
    /// swapped in when the whole payload has loaded.
    pub staged: RefCell<Option<Keyspace>>,
    locks: RefCell<HashMap<(DbIndex, Bytes), TxId>>,
    lock_waiters: RefCell<Vec<Waker>>,
    senders: Senders<Job>,
    /// Per-command stats, indexed by `CommandId`.
    pub cmdstats: RefCell<Vec<CommandStat>>,
    ctx: RefCell<ExecContext>,
    /// True while this server is a replica (keys are not expired here).
    pub replica: Cell<bool>,
    /// Entries waiting for the replication role (None: replication is off).
    pub write_log: RefCell<Option<Vec<LogEntry>>>,
    /// A transaction that holds the whole shard (snapshot barrier).
    global_lock: Cell<Option<TxId>>,
    /// Wakes the replication pump when this shard logs a write.
    pub pump_signal: crate::repl::PumpSignal,
    /// The replication role's state (used on shard 0 only).
    pub repl: RefCell<crate::repl::ReplState>,
    /// Clients connected to this executor.
    pub clients: RefCell<HashMap<u64, Rc<RefCell<crate::client::ClientInfo>>>>,
    /// Versions of watched keys (WATCH).
    pub watch: RefCell<crate::tx::WatchTable>,
    /// Pub/Sub subscribers connected to this executor.
    pub pubsub: RefCell<crate::pubsub::Registry>,
    /// Clients blocked on this shard's keys, and this executor's blocked clients.
    pub blocking: RefCell<crate::blocking::BlockTable>,
    /// The `Shared::eviction_version` this keyspace's eviction settings reflect.
    pub eviction_version: Cell<u64>,
    /// Slowlog ring, latency events and histograms, errorstats, monitors.
    pub obs: RefCell<crate::obs::ShardObs>,
    /// Keyspace notifications on their way to the other executors.
    pub events_out: crate::pubsub::EventOutbox,
    /// Client-side caching: tracked keys of this shard, BCAST prefixes, this
    /// executor's tracking clients.
    pub tracking: RefCell<crate::tracking::Table>,
    /// Every connection's message queue on this executor, by client id.
    pub mailboxes: RefCell<HashMap<u64, Rc<crate::pubsub::Mailbox>>>,
    /// The client whose command runs now (0: none), for NOLOOP.
    pub current_client: Cell<u64>,
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
        let (databases, eviction) = {
            let c = shared.config();
            (c.databases, crate::memory::eviction_config(&c))
        };
        let mut keyspace = Keyspace::new(databases);
        keyspace.set_eviction_config(eviction);
        Shard {
            id,
            keyspace: RefCell::new(keyspace),
            staged: RefCell::new(None),
            locks: RefCell::new(HashMap::new()),
            lock_waiters: RefCell::new(Vec::new()),
            senders,
            cmdstats: RefCell::new(vec![CommandStat::default(); shardis_commands::meta::COUNT]),
            ctx: RefCell::new(ExecContext::default()),
            replica: Cell::new(false),
            write_log: RefCell::new(None),
            global_lock: Cell::new(None),
            pump_signal: Default::default(),
            repl: RefCell::new(crate::repl::ReplState::new(shared.shards)),
            clients: RefCell::new(HashMap::new()),
            watch: RefCell::new(Default::default()),
            pubsub: RefCell::new(Default::default()),
            blocking: RefCell::new(Default::default()),
            eviction_version: Cell::new(
                shared
                    .eviction_version
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            obs: RefCell::new(Default::default()),
            events_out: Default::default(),
            tracking: Default::default(),
            mailboxes: RefCell::new(HashMap::new()),
            current_client: Cell::new(0),
            me,
            shared,
            aof_waiters: RefCell::new(Vec::new()),
        }
    }

    /// This shard's `Rc`, while it lives.
    pub fn me(&self) -> Option<Rc<Shard>> {
        self.me.upgrade()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.shards
    }

    /// This shard's counters.
    pub fn counters(&self) -> &ShardCounters {
        &self.shared.stats[self.id.get()]
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
            collect,
        } = run;
        let start_us = start_us.unwrap_or_else(unix_us);
        if admit != Admit::Decided {
            if let Some(oom) = self.oom_check(cmd, false) {
                if admit == Admit::Client {
                    self.record_rejected(cmd.stat_index(args));
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
        let discard = collect.is_none() && !self.effects_wanted();
        let (reply, dirty) = self.run_ctx_at(
            db,
            wrap,
            resp3,
            start_us / 1000,
            discard,
            collect,
            |ks, ctx| ks.execute(ctx, cmd, args),
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

    /// One part of a multi-shard command, admitted already: returns its reply
    /// and effects, which the caller replicates with the other parts.
    pub fn run_part(&self, db: DbIndex, cmd: &'static Command, args: &[Bytes]) -> Part {
        let mut effects = Vec::new();
        let out = self.run(
            Run::new(db, cmd, args)
                .admit(Admit::Decided)
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
        let mut ks = self.keyspace.borrow_mut();
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
        self.run_ctx_at(db, false, false, unix_ms(), false, None, f)
            .0
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
        self.run_ctx_at(db, false, false, unix_ms(), false, Some(effects), f)
            .0
    }

    /// Whether anything consumes a run's effects: the write log (replicas,
    /// AOF), WATCH, a blocked client or a tracking client. When nothing
    /// does, a plain command run skips building them (no argument copies,
    /// no allocation per write).
    fn effects_wanted(&self) -> bool {
        self.write_log.borrow().is_some()
            || !self.watch.borrow().is_empty()
            || crate::blocking::has_waiters(self)
            || self.tracking.borrow().watching()
    }

    /// Runs `f` with a fresh context for `db` at a wall-clock time the caller
    /// has read (ms), then publishes the run (see [`Shard::publish`]).
    /// `wrap`: the effects are one command's (see [`Shard::log_effects_of`]);
    /// `resp3`: replies shaped for a RESP3 client; `discard`: build no
    /// effects (see [`Shard::effects_wanted`]); `collect`: where the effects
    /// go instead of the write log.
    #[allow(clippy::too_many_arguments)]
    fn run_ctx_at<R>(
        &self,
        db: DbIndex,
        wrap: bool,
        resp3: bool,
        now_ms: u64,
        discard: bool,
        collect: Option<&mut Vec<Effect>>,
        f: impl FnOnce(&mut Keyspace, &mut ExecContext) -> R,
    ) -> (R, u64) {
        self.refresh_eviction_config();
        let mut ctx = self.ctx.borrow_mut();
        ctx.db = db;
        ctx.now_ms = now_ms;
        ctx.discard_effects = discard;
        ctx.replica = self.replica.get();
        ctx.resp3 = resp3;
        ctx.notify_flags = self
            .shared
            .notify_flags
            .load(std::sync::atomic::Ordering::Relaxed);
        let r = f(&mut self.keyspace.borrow_mut(), &mut ctx);
        let dirty = self.publish(&mut ctx, wrap, collect);
        (r, dirty)
    }

    /// Hands a run's results to what consumes them on this executor: the
    /// counters, WATCH versions, blocked and tracking clients, the write log
    /// (or `collect`), and keyspace events.
    /// Returns the run's `dirty` count.
    fn publish(&self, ctx: &mut ExecContext, wrap: bool, collect: Option<&mut Vec<Effect>>) -> u64 {
        let c = self.counters();
        let s = std::mem::take(&mut ctx.stats);
        ShardCounters::add(&c.keyspace_hits, s.keyspace_hits);
        ShardCounters::add(&c.keyspace_misses, s.keyspace_misses);
        ShardCounters::add(&c.expired_keys, s.expired_keys);
        ShardCounters::add(&c.evicted_keys, s.evicted_keys);
        ShardCounters::add(&c.dirty, s.dirty);
        if !ctx.effects.is_empty() {
            {
                let mut w = self.watch.borrow_mut();
                if !w.is_empty() {
                    for e in &ctx.effects {
                        w.touch_effect(e);
                    }
                }
            }
            crate::blocking::effects_written(self, &ctx.effects);
            crate::tracking::effects_written(self, &ctx.effects);
            match collect {
                Some(out) => out.append(&mut ctx.effects),
                None => self.log_effects_of(&mut ctx.effects, wrap),
            }
        }
        crate::blocking::keys_ready(self, &mut ctx.ready_keys);
        if !ctx.events.is_empty() {
            crate::pubsub::keyspace_events(self, ctx.notify_flags, &mut ctx.events);
        }
        s.dirty
    }

    /// A key written outside [`Shard::execute`] (multi-shard write-back):
    /// bumps its WATCH version and serves clients blocked on it again (whether
    /// it now exists or not: a deleted stream ends an XREADGROUP on it).
    pub fn key_written(&self, db: DbIndex, key: &Bytes, _exists: bool) {
        self.watch.borrow_mut().touch(db, key);
        crate::tracking::key_written(self, key);
        crate::blocking::keys_ready(self, &mut vec![(db, key.clone())]);
    }

    /// Appends effects to the write log if replication consumes it.
    pub fn log_effects(&self, effects: impl Iterator<Item = Effect>) {
        if let Some(log) = self.write_log.borrow_mut().as_mut() {
            let mut n = 0;
            for e in effects {
                shardis_replication::log_effect(log, &e);
                n += 1;
            }
            if n > 0 {
                ShardCounters::add_release(&self.counters().logged, n);
                crate::repl::nudge(self);
            }
        }
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
        if let Some(log) = self.write_log.borrow_mut().as_mut() {
            log.push(entry);
            ShardCounters::add_release(&self.counters().logged, 1);
            crate::repl::nudge(self);
        }
    }

    /// Takes what the write log holds (nothing when logging is off).
    pub fn take_log(&self) -> Vec<LogEntry> {
        self.write_log
            .borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// True if replication consumes this shard's writes.
    pub fn logging(&self) -> bool {
        self.write_log.borrow().is_some()
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
        if let Some(i) = stat {
            let mut stats = self.cmdstats.borrow_mut();
            let s = &mut stats[i];
            s.calls += 1;
            s.usec += usec;
            if reply.is_error() {
                s.failed += 1;
            }
        }
        crate::obs::record_command(self, cmd, stat, usec);
        usec
    }

    /// Counts a call refused before it ran (arity, authentication, …).
    pub fn record_rejected(&self, stat: Option<usize>) {
        if let Some(i) = stat {
            self.cmdstats.borrow_mut()[i].rejected += 1;
        }
    }

    // ---------------------------------------------------------------- locks

    /// True if any of `keys` (in `db`) is held by a multi-shard transaction.
    pub fn any_locked<'a>(&self, db: DbIndex, mut keys: impl Iterator<Item = &'a Bytes>) -> bool {
        if self.global_lock.get().is_some() {
            return true;
        }
        let locks = self.locks.borrow();
        !locks.is_empty() && keys.any(|k| locks.contains_key(&(db, k.clone())))
    }

    /// True if no locks are held at all (the fast path).
    pub fn unlocked(&self) -> bool {
        self.global_lock.get().is_none() && self.locks.borrow().is_empty()
    }

    /// Takes the whole shard for `tx` (a snapshot barrier): waits until no key
    /// lock is held, then blocks every command and every other lock until
    /// [`Shard::unlock_all`].
    pub async fn lock_all(&self, tx: TxId) {
        std::future::poll_fn(|cx| {
            if self.global_lock.get().is_some() || !self.locks.borrow().is_empty() {
                self.lock_waiters.borrow_mut().push(cx.waker().clone());
                return Poll::Pending;
            }
            self.global_lock.set(Some(tx));
            Poll::Ready(())
        })
        .await
    }

    /// [`Shard::lock_all`] at once, for a caller that knows the shard is
    /// unlocked: it saw [`Shard::unlocked`] and nothing has run on this
    /// executor since (a script's first synchronous stretch).
    pub fn lock_all_now(&self, tx: TxId) {
        debug_assert!(self.unlocked());
        self.global_lock.set(Some(tx));
    }

    /// Releases [`Shard::lock_all`].
    pub fn unlock_all(&self, tx: TxId) {
        if self.global_lock.get() == Some(tx) {
            self.global_lock.set(None);
        }
        for w in std::mem::take(&mut *self.lock_waiters.borrow_mut()) {
            w.wake();
        }
    }

    /// Waits until none of `keys` is locked.
    pub async fn wait_unlocked(&self, db: DbIndex, keys: &[Bytes]) {
        std::future::poll_fn(|cx| {
            if self.any_locked(db, keys.iter()) {
                self.lock_waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }

    /// Takes intent locks on `keys` for transaction `tx`, waiting while any is held
    /// by another transaction. All keys are taken at once, so a shard never holds
    /// part of a transaction's keys.
    pub async fn lock(&self, tx: TxId, keys: &[(DbIndex, Bytes)]) {
        std::future::poll_fn(|cx| {
            let mut locks = self.locks.borrow_mut();
            if self.global_lock.get().is_some()
                || keys.iter().any(|k| locks.get(k).is_some_and(|&t| t != tx))
            {
                self.lock_waiters.borrow_mut().push(cx.waker().clone());
                return Poll::Pending;
            }
            for k in keys {
                locks.insert(k.clone(), tx);
            }
            Poll::Ready(())
        })
        .await
    }

    /// Takes `tx`'s intent locks on `keys` only if that needs no wait: no key
    /// is held, the shard is not held whole, and nobody waits for a lock here
    /// (so a waiting transaction is never overtaken for long). Nothing is
    /// taken when it returns false.
    pub fn try_lock(&self, tx: TxId, keys: &[(DbIndex, Bytes)]) -> bool {
        let mut locks = self.locks.borrow_mut();
        if self.global_lock.get().is_some()
            || !self.lock_waiters.borrow().is_empty()
            || keys.iter().any(|k| locks.contains_key(k))
        {
            return false;
        }
        for k in keys {
            locks.insert(k.clone(), tx);
        }
        true
    }

    /// Releases `tx`'s locks on `keys` and wakes every waiter to re-check.
    pub fn unlock(&self, tx: TxId, keys: &[(DbIndex, Bytes)]) {
        {
            let mut locks = self.locks.borrow_mut();
            for k in keys {
                if locks.get(k) == Some(&tx) {
                    locks.remove(k);
                }
            }
        }
        for w in std::mem::take(&mut *self.lock_waiters.borrow_mut()) {
            w.wake();
        }
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
            if s.unlocked() {
                let mut out = BatchReplies::with_capacity(reqs.len());
                let mut clock = unix_us();
                for q in reqs {
                    if let Some(t) = q.track {
                        crate::tracking::remember(s, t, q.cmd, &q.args);
                    }
                    s.current_client.set(q.client);
                    let out_q = s.run(Run::new(q.db, q.cmd, &q.args).resp3(q.resp3).at(clock));
                    let (r, usec) = (out_q.reply, out_q.usec);
                    clock = out_q.end_us;
                    s.current_client.set(0);
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
            if !self.unlocked() {
                let keys = request_keys(&req);
                self.wait_unlocked(req.db, &keys).await;
            }
            if let Some(t) = req.track {
                crate::tracking::remember(&self, t, req.cmd, &req.args);
            }
            self.current_client.set(req.client);
            let Outcome { reply: r, usec, .. } =
                self.run(Run::new(req.db, req.cmd, &req.args).resp3(req.resp3));
            self.current_client.set(0);
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
