//! One script run: which shards it holds, the commands it calls, the effects
//! it propagates, and the undo log that lets it restart holding more.
//!
//! A script runs synchronously on its connection's executor (Lua cannot wait;
//! a busy one only pauses between instructions, see `fiber`), holding whole shards (`Store::lock_all`): always its own shard and every shard
//! owning a declared key, taken in ascending order like every multi-shard lock.
//! A command on a held remote shard is a blocking round trip. Why that cannot
//! deadlock: an executor is only ever blocked by a script that holds its own
//! shard and calls only shards it holds; two blocked executors waiting on each
//! other would need two scripts holding the same shard.
//!
//! A command on a shard the run does not hold (an undeclared key, or DBSIZE,
//! FLUSHALL…) cannot wait for that shard mid-run (that could deadlock), so the
//! run stops: its writes so far are undone from the undo log (owned copies of
//! every key before its first write) and the script runs again holding every
//! shard. A script that only touches its declared keys never pays for this.

use crate::shard::{Admit, Job, Run, Shard, ShardGone};
use bytes::Bytes;
use hashbrown::HashSet;
use shardis_base::ShardId;
use shardis_commands::{flags, lookup, Command, CommandId};
use shardis_keyspace::DbIndex;
use shardis_keyspace::{Effect, Entry};
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::rc::Rc;

/// The shards a run holds: one bit each, in a word when there are at most
/// 64 (no allocation per run).
enum Held {
    Word(u64),
    Many(Vec<bool>),
}

impl Held {
    fn of(shards: usize, held: &[ShardId]) -> Held {
        if shards <= 64 {
            Held::Word(held.iter().fold(0, |m, &s| m | 1 << s.get()))
        } else {
            let mut v = vec![false; shards];
            for &s in held {
                v[s.get()] = true;
            }
            Held::Many(v)
        }
    }

    fn has(&self, shard: ShardId) -> bool {
        let shard = shard.get();
        match self {
            Held::Word(m) => m >> shard & 1 == 1,
            Held::Many(v) => v[shard],
        }
    }
}

/// A list of indices that is usually one long, held without allocating.
enum OneOrMany<T> {
    One([T; 1]),
    Many(Vec<T>),
}

impl<T> std::ops::Deref for OneOrMany<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            OneOrMany::One(a) => a,
            OneOrMany::Many(v) => v,
        }
    }
}

/// What one `redis.call` produced.
pub enum CallOutcome {
    /// The command ran (its reply may be an error reply).
    Reply(Reply),
    /// Refused before running: Redis's text, `-CODE msg` or a bare `msg` (ERR).
    Error(String),
}

/// The error a stopped run returns to every further call (never seen by the
/// client: the run is discarded and retried).
const RESTART: &str = "ERR shardis: script restarts holding every shard";

/// Replication flags (`redis.set_repl`): propagate to replicas.
const REPL_REPLICA: u8 = 2;

/// The state of the script running on this executor.
pub struct RunCtx {
    /// The executor running the script.
    pub shard: Rc<Shard>,
    /// The db the script's commands use (SELECT inside a script changes it).
    pub db: DbIndex,
    /// Shards held.
    held: Held,
    /// Every shard is held: nothing can force a restart.
    pub all: bool,
    /// Effects to propagate, in order.
    pub effects: Vec<Effect>,
    /// The effects a restart does not undo (lazy-expiry deletions found by
    /// reads and by the undo log): the next attempt propagates them.
    pub kept: Vec<Effect>,
    /// Entries as they were before the run first wrote them: (shard, db, key, entry).
    pub undo: Vec<(ShardId, DbIndex, Bytes, Option<Entry>)>,
    undo_seen: HashSet<(ShardId, DbIndex, Bytes)>,
    /// A write command ran.
    pub wrote: bool,
    /// The run needs a shard it does not hold: it restarts holding all.
    pub restart: bool,
    /// A shard is gone (shutdown).
    pub gone: bool,
    /// EVAL_RO/EVALSHA_RO or the `no-writes` flag.
    pub read_only: bool,
    /// A script without shebang (Redis checks write permission per call).
    pub legacy: bool,
    /// The `allow-oom` flag.
    pub allow_oom: bool,
    /// Over maxmemory when the script started.
    pub oom_at_start: bool,
    /// `redis.setresp(3)`.
    pub resp3: bool,
    /// `redis.set_repl` flags.
    pub repl: u8,
    /// The client is the master link (a script a master sent).
    pub master: bool,
    /// The calling client's ACL user (every `redis.call` is checked).
    pub user: Option<std::sync::Arc<shardis_acl::User>>,
    /// The calling client tracks keys: its reads remember them (as Redis
    /// remembers a script's read commands for its caller).
    pub track: Option<crate::tracking::Track>,
    /// The calling client's id (NOLOOP).
    pub client: u64,
    /// The end of the last call run on this executor (unix µs; the run's
    /// start before the first): the next local call starts from it, as a
    /// connection chains its pipelined commands (one clock read per call).
    pub clock_us: u64,
}

impl RunCtx {
    /// A context holding `held` of `shard.shards()` shards.
    pub fn new(shard: Rc<Shard>, db: DbIndex, held: &[ShardId]) -> RunCtx {
        let n = shard.shards();
        let held = Held::of(n, held);
        RunCtx {
            all: (0..n).all(|s| held.has(ShardId(s))),
            shard,
            db,
            held,
            effects: Vec::new(),
            kept: Vec::new(),
            undo: Vec::new(),
            undo_seen: HashSet::new(),
            wrote: false,
            restart: false,
            gone: false,
            read_only: false,
            legacy: true,
            allow_oom: false,
            oom_at_start: false,
            resp3: false,
            repl: 3,
            master: false,
            track: None,
            client: 0,
            user: None,
            clock_us: 0,
        }
    }
}

thread_local! {
    static RUN: RefCell<Option<RunCtx>> = const { RefCell::new(None) };
}

/// Installs the context of the run about to start.
pub fn begin(ctx: RunCtx) {
    RUN.with(|r| *r.borrow_mut() = Some(ctx));
}

/// Takes the context of the run that ended.
pub fn end() -> Option<RunCtx> {
    RUN.with(|r| r.borrow_mut().take())
}

/// True while a script runs on this executor.
pub fn running() -> bool {
    RUN.with(|r| r.borrow().is_some())
}

/// The script's `redis.setresp` choice.
pub fn resp3() -> bool {
    RUN.with(|r| r.borrow().as_ref().is_some_and(|c| c.resp3))
}

/// `redis.setresp`.
pub fn set_resp3(on: bool) {
    RUN.with(|r| {
        if let Some(c) = r.borrow_mut().as_mut() {
            c.resp3 = on;
        }
    })
}

/// `redis.set_repl`.
pub fn set_repl(flags: u8) {
    RUN.with(|r| {
        if let Some(c) = r.borrow_mut().as_mut() {
            c.repl = flags;
        }
    })
}

/// `redis.call`: runs one command for the script.
pub fn call(argv: Vec<Bytes>) -> CallOutcome {
    RUN.with(|r| match r.borrow_mut().as_mut() {
        Some(ctx) => ctx.call(argv),
        None => CallOutcome::Error("ERR no script is running".into()),
    })
}

/// `redis.acl_check_cmd`: may the caller run this command? `Err` is Redis's
/// text for an unknown command.
pub fn acl_check(argv: &[Bytes]) -> Result<bool, String> {
    let cmd = lookup(&argv[0])
        .ok_or_else(|| "Invalid command passed to redis.acl_check_cmd()".to_string())?;
    RUN.with(|r| {
        let r = r.borrow();
        let user = r.as_ref().and_then(|c| c.user.clone());
        match user {
            Some(u) => crate::acl::script_may_run(&u, cmd, argv)
                .ok_or_else(|| "Invalid command passed to redis.acl_check_cmd()".to_string()),
            // The master link runs with every right.
            None => Ok(true),
        }
    })
}

/// Runs `f` on shard `target` and waits for it, blocking this thread: the
/// script cannot yield. See the module doc for why this cannot deadlock.
pub fn blocking<R, F>(shard: &Rc<Shard>, target: ShardId, f: F) -> Result<R, ShardGone>
where
    R: Send + 'static,
    F: FnOnce(&Rc<Shard>) -> R + Send + Sync + 'static,
{
    if target == shard.id {
        return Ok(f(shard));
    }
    let (tx, rx) = glommio::channels::oneshot::shared();
    let mut job: Job = Box::new(move |s| {
        let _ = tx.send(f(s));
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match shard.try_send_job(target, job) {
            Ok(()) => break,
            Err(None) => return Err(ShardGone),
            Err(Some(j)) => {
                // The queue is full: the target drains it on its own core.
                if std::time::Instant::now() > deadline {
                    return Err(ShardGone);
                }
                job = j;
                std::thread::yield_now();
            }
        }
    }
    futures_lite::future::block_on(rx).map_err(|_| ShardGone)
}

fn parse_db(b: &[u8], databases: usize) -> Result<usize, String> {
    let n = shardis_protocol::decode::parse_int(b)
        .ok_or_else(|| format!("-{}", crate::errors::NOT_INTEGER))?;
    if n < 0 || n as usize >= databases || n > i32::MAX as i64 {
        return Err(format!("-{}", crate::errors::DB_OUT_OF_RANGE));
    }
    Ok(n as usize)
}

/// True for the scripting commands themselves (never callable from a script).
pub fn is_script_command(cmd: &Command) -> bool {
    matches!(
        cmd.id,
        CommandId::Eval
            | CommandId::EvalRo
            | CommandId::Evalsha
            | CommandId::EvalshaRo
            | CommandId::Script
            | CommandId::Fcall
            | CommandId::FcallRo
            | CommandId::Function
    )
}

impl RunCtx {
    fn call(&mut self, argv: Vec<Bytes>) -> CallOutcome {
        if self.restart || self.gone {
            return CallOutcome::Error(RESTART.into());
        }
        let Some(cmd) = lookup(&argv[0]) else {
            return CallOutcome::Error("Unknown Redis command called from script".into());
        };
        if !cmd.arity_ok(argv.len()) {
            return CallOutcome::Error(
                "Wrong number of args calling Redis command from script".into(),
            );
        }
        if cmd.has(flags::NOSCRIPT) || is_script_command(cmd) {
            return CallOutcome::Error("This Redis command is not allowed from script".into());
        }
        if let Some(user) = &self.user {
            if let Some(msg) = crate::acl::script_denial(user, cmd, &argv) {
                return CallOutcome::Error(msg.into());
            }
        }
        if cmd.is_write() {
            if self.read_only {
                return CallOutcome::Error(
                    "Write commands are not allowed from read-only scripts.".into(),
                );
            }
            if !self.wrote && !self.master {
                let sh = &self.shard;
                if sh.store.replica.get() && sh.shared.config().replica_read_only {
                    return CallOutcome::Error(format!("-{}", crate::errors::READONLY));
                }
                let min = sh
                    .shared
                    .min_replicas_to_write
                    .load(std::sync::atomic::Ordering::Relaxed);
                if min > 0
                    && !sh.store.replica.get()
                    && (sh
                        .shared
                        .good_replicas
                        .load(std::sync::atomic::Ordering::Relaxed) as u64)
                        < min
                {
                    return CallOutcome::Error(format!("-{}", crate::errors::NOREPLICAS));
                }
                if !self.allow_oom && self.oom_at_start && cmd.has(flags::DENYOOM) {
                    return CallOutcome::Error(
                        "-OOM command not allowed when used memory > 'maxmemory'.".into(),
                    );
                }
            }
        }
        if cmd.is_write() {
            // Redis marks the script dirty before the write runs.
            self.wrote = true;
            super::busy::wrote();
        }
        if self.shard.shared.obs.monitoring() {
            crate::obs::monitor::feed(&self.shard, cmd, self.db, "lua", &argv);
        }
        let reply = if cmd.id == CommandId::Migrate {
            self.migrate(&argv)
        } else if crate::route::keyless(cmd, &argv) {
            self.keyless(cmd, &argv)
        } else {
            self.keyed(cmd, argv)
        };
        match reply {
            Ok(r) => CallOutcome::Reply(r),
            Err(msg) => CallOutcome::Error(msg),
        }
    }

    /// Effects of a read or of the undo log: expiry deletions, which stay
    /// done even if the run restarts.
    fn push_kept(&mut self, fx: Vec<Effect>) {
        if !self.all {
            self.kept.extend(fx.iter().cloned());
        }
        self.push_effects(fx);
    }

    fn push_effects(&mut self, fx: Vec<Effect>) {
        if self.repl & REPL_REPLICA != 0 {
            self.effects.extend(fx);
        }
    }

    /// Stops the run: it needs a shard it does not hold.
    fn need_more(&mut self) -> Result<Reply, String> {
        self.restart = true;
        Err(RESTART.into())
    }

    fn gone(&mut self) -> String {
        self.gone = true;
        format!("-{}", crate::errors::SHUTTING_DOWN)
    }

    /// MIGRATE from a script. The keys it moves cannot be brought back by a
    /// restart's undo, so it first makes the run hold every shard (as Redis,
    /// whose whole server waits); the transfer then suspends the run on the
    /// script stack (`fiber::wait`) and the executor serves its other tasks.
    fn migrate(&mut self, argv: &[Bytes]) -> Result<Reply, String> {
        if !self.all {
            return self.need_more();
        }
        let shard = self.shard.clone();
        let (db, args, client) = (self.db, argv.to_vec(), self.client);
        let done = super::fiber::wait(async move {
            let mut fx = Vec::new();
            let r = crate::migrate::run_held(&shard, db, &args, &mut fx, client).await;
            (r, fx)
        });
        match done {
            Some((r, fx)) => {
                self.push_effects(fx);
                Ok(r)
            }
            // No script stack to suspend (out of memory for one).
            None => Err("This Redis command is not allowed from script".into()),
        }
    }

    fn keyless(&mut self, cmd: &'static Command, argv: &[Bytes]) -> Result<Reply, String> {
        let n = self.shard.shards();
        match cmd.id {
            CommandId::Ping => Ok(match argv.len() {
                1 => Reply::Simple("PONG"),
                _ => Reply::Bulk(argv[1].clone()),
            }),
            CommandId::Echo => Ok(Reply::Bulk(argv[1].clone())),
            CommandId::Time => {
                let us = crate::shared::unix_us();
                Ok(Reply::Array(vec![
                    Reply::bulk_string((us / 1_000_000).to_string()),
                    Reply::bulk_string((us % 1_000_000).to_string()),
                ]))
            }
            CommandId::Select => {
                let databases = self.shard.store.keyspace.borrow().databases();
                self.db = DbIndex(parse_db(&argv[1], databases)?);
                Ok(Reply::OK)
            }
            CommandId::Publish | CommandId::Spublish => {
                // Delivery visits every core: only a script holding every
                // shard may wait on all of them (see the module doc).
                if !self.all {
                    return self.need_more();
                }
                let mut total = 0;
                for s in 0..n {
                    let (channel, msg) = (argv[1].clone(), argv[2].clone());
                    let sharded = cmd.id == CommandId::Spublish;
                    total += blocking(&self.shard, ShardId(s), move |sh| {
                        crate::pubsub::deliver(sh, sharded, &channel, &msg)
                    })
                    .map_err(|_| self.gone())?;
                }
                self.push_effects(vec![Effect {
                    db: self.db,
                    args: argv.to_vec(),
                }]);
                Ok(Reply::Integer(total))
            }
            CommandId::Dbsize | CommandId::Keys | CommandId::Flushdb | CommandId::Flushall => {
                if !self.all {
                    return self.need_more();
                }
                let db = self.db;
                match cmd.id {
                    CommandId::Dbsize => {
                        let mut total = 0;
                        for s in 0..n {
                            total += blocking(&self.shard, ShardId(s), move |sh| {
                                sh.store.keyspace.borrow().dbsize(db)
                            })
                            .map_err(|_| self.gone())?;
                        }
                        Ok(Reply::Integer(total as i64))
                    }
                    CommandId::Keys => {
                        let mut out = Vec::new();
                        for s in 0..n {
                            let pattern = argv[1].clone();
                            let (keys, fx) = blocking(&self.shard, ShardId(s), move |sh| {
                                let mut fx = Vec::new();
                                let keys =
                                    sh.with_ctx_into(db, &mut fx, |ks, ctx| ks.keys(ctx, &pattern));
                                (keys, fx)
                            })
                            .map_err(|_| self.gone())?;
                            self.push_effects(fx);
                            out.extend(keys.into_iter().map(Reply::Bulk));
                        }
                        Ok(Reply::Array(out))
                    }
                    _ => {
                        let eq = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
                        if argv.len() > 2
                            || (argv.len() == 2 && !eq(&argv[1], "async") && !eq(&argv[1], "sync"))
                        {
                            return Ok(Reply::error(crate::errors::SYNTAX));
                        }
                        let all = cmd.id == CommandId::Flushall;
                        for s in 0..n {
                            blocking(&self.shard, ShardId(s), move |sh| {
                                sh.watch.borrow_mut().touch_db((!all).then_some(db));
                                crate::tracking::flushed(sh);
                                let mut ks = sh.store.keyspace.borrow_mut();
                                if all {
                                    ks.flush_all()
                                } else {
                                    ks.flush_db(db)
                                }
                            })
                            .map_err(|_| self.gone())?;
                        }
                        self.wrote = true;
                        super::busy::wrote();
                        self.push_effects(vec![Effect {
                            db,
                            args: argv.to_vec(),
                        }]);
                        self.shard
                            .counters()
                            .dirty
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Ok(Reply::OK)
                    }
                }
            }
            // Connection and server commands need the calling connection,
            // which a script does not have here.
            _ => Err("This Redis command is not allowed from script".into()),
        }
    }

    fn keyed(&mut self, cmd: &'static Command, argv: Vec<Bytes>) -> Result<Reply, String> {
        let n = self.shard.shards();
        // One key at argv[1] (GET, SET, INCR, …; arity is checked already):
        // the connection's routing shortcut, without building index lists.
        let one_key = matches!(
            cmd.keys,
            shardis_commands::KeySpec::Range {
                first: 1,
                last: 1,
                ..
            }
        ) && argv.len() > 1;
        let (keys, owners) = if one_key {
            (
                OneOrMany::One([1]),
                OneOrMany::One([crate::route::shard_of(&argv[1], n)]),
            )
        } else {
            let raw: Vec<&[u8]> = argv.iter().map(|a| a.as_ref()).collect();
            let keys = cmd.key_indices(&raw).unwrap_or_default();
            let mut owners: Vec<ShardId> = keys
                .iter()
                .map(|&i| crate::route::shard_of(&argv[i], n))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            if owners.is_empty() {
                // Malformed key arguments: the keyspace replies the command's error.
                owners.push(self.shard.id);
            }
            (OneOrMany::Many(keys), OneOrMany::Many(owners))
        };
        if owners.iter().any(|&s| !self.held.has(s)) {
            return self.need_more();
        }
        if cmd.is_write() && !self.all {
            self.save_undo(cmd, &argv, &keys)?;
        }
        let db = self.db;
        let resp3 = self.resp3;
        let track = self
            .track
            .filter(|_| cmd.flags_for(&argv) & shardis_commands::flags::READONLY != 0);
        let client = self.client;
        if let Some(t) = track.filter(|_| owners.len() > 1) {
            for &o in owners.iter() {
                let a = argv.clone();
                blocking(&self.shard, o, move |sh| {
                    crate::tracking::remember(sh, t, cmd, &a)
                })
                .map_err(|_| self.gone())?;
            }
        }
        let reply = if owners.len() == 1 {
            // Another core reads its own clock (the hop is not the call's time).
            let start = (owners[0] == self.shard.id && self.clock_us != 0).then_some(self.clock_us);
            let ((r, end), fx) = blocking(&self.shard, owners[0], move |sh| {
                if let Some(t) = track {
                    crate::tracking::remember(sh, t, cmd, &argv);
                }
                let start = start.unwrap_or_else(crate::shared::unix_us);
                let mut fx = Vec::new();
                let out = sh.run(
                    Run::new(db, cmd, &argv)
                        .resp3(resp3)
                        .at(start)
                        .admit(Admit::Decided)
                        .client(client)
                        .collect(&mut fx),
                );
                ((out.reply, out.end_us), fx)
            })
            .map_err(|_| self.gone())?;
            if start.is_some() {
                self.clock_us = end;
            }
            if cmd.is_write() {
                self.push_effects(fx);
            } else {
                self.push_kept(fx);
            }
            r
        } else {
            let mut fx = Vec::new();
            let shard = self.shard.clone();
            let r = futures_lite::future::block_on(crate::multi::run_locked(
                &shard,
                db,
                cmd,
                &argv,
                &keys,
                &mut fx,
                resp3,
                self.client,
            ))
            .map_err(|_| self.gone())?;
            if cmd.is_write() {
                self.push_effects(fx);
            } else {
                self.push_kept(fx);
            }
            r
        };
        if cmd.is_write() && !reply.is_error() {
            self.wrote = true;
            super::busy::wrote();
        }
        Ok(reply)
    }

    /// Keeps owned copies of the keys `cmd` may write, before it first writes them.
    fn save_undo(
        &mut self,
        cmd: &'static Command,
        argv: &[Bytes],
        keys: &[usize],
    ) -> Result<(), String> {
        let n = self.shard.shards();
        let databases = self.shard.store.keyspace.borrow().databases();
        let mut dbs = vec![self.db];
        // MOVE and COPY … DB n also write the key in another db.
        let extra = match cmd.id {
            CommandId::Move => argv.get(2),
            CommandId::Copy => argv
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"db"))
                .and_then(|i| argv.get(i + 1)),
            _ => None,
        };
        if let Some(d) = extra.and_then(|d| parse_db(d, databases).ok()) {
            dbs.push(DbIndex(d));
        }
        for &i in keys {
            let key = argv[i].clone();
            let s = crate::route::shard_of(&key, n);
            for &d in &dbs {
                if !self.undo_seen.insert((s, d, key.clone())) {
                    continue;
                }
                let k = key.clone();
                let (entry, fx) = blocking(&self.shard, s, move |sh| {
                    let mut fx = Vec::new();
                    let entry = sh.with_ctx_into(d, &mut fx, |ks, ctx| ks.clone_entry(ctx, &k));
                    (entry, fx)
                })
                .map_err(|_| self.gone())?;
                self.push_kept(fx);
                self.undo.push((s, d, key.clone(), entry));
            }
        }
        Ok(())
    }
}

/// Puts back every entry a stopped run wrote (the shards are still held).
pub async fn rollback(shard: &Rc<Shard>, undo: Vec<(ShardId, DbIndex, Bytes, Option<Entry>)>) {
    let mut by_shard: std::collections::BTreeMap<ShardId, Vec<(DbIndex, Bytes, Option<Entry>)>> =
        Default::default();
    for (s, d, k, e) in undo {
        by_shard.entry(s).or_default().push((d, k, e));
    }
    for (s, entries) in by_shard {
        let _ = shard
            .call(s, move |sh| {
                let now = crate::shared::unix_ms();
                let mut ks = sh.store.keyspace.borrow_mut();
                for (d, k, e) in entries {
                    ks.remove(d, &k);
                    if let Some(e) = e {
                        ks.put_entry(d, k.clone(), e, now);
                    }
                    drop(ks);
                    sh.key_written(d, &k, 0);
                    ks = sh.store.keyspace.borrow_mut();
                }
            })
            .await;
    }
}
