//! MULTI/EXEC/DISCARD/WATCH/UNWATCH across shards.
//!
//! While a connection is in MULTI its commands are checked (unknown command,
//! arity, …) and queued. EXEC takes intent locks on every key of every queued
//! command and every watched key, shard by shard in ascending order (as
//! `multi.rs` does, so it cannot deadlock), checks the WATCH versions under the
//! locks, runs the commands in order and releases. Writes are marked
//! `Acquire/Release` in each involved shard's log and their effects go to the
//! merger under one transaction id, so replicas see one MULTI … EXEC.
//!
//! WATCH uses per-shard version counters that exist only for watched keys
//! ([`crate::watch::WatchTable`]): a write bumps a key's version only if someone watches it,
//! so the hot path costs one `is_empty()` when nothing is watched.

use crate::conn::{Conn, Route};
use crate::errors;
use crate::shard::{Admit, Run, Shard, ShardGone};
use bytes::Bytes;
use shardis_base::ShardId;
use shardis_commands::{flags, Command, CommandId, KeySpec};
use shardis_keyspace::DbIndex;
use shardis_keyspace::{Effect, ExecContext};
use shardis_protocol::Reply;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One watched key: where it lives and what it looked like at WATCH.
#[derive(Debug, Clone)]
pub struct Watched {
    shard: ShardId,
    db: DbIndex,
    key: Bytes,
    version: u64,
    existed: bool,
}

/// A connection's transaction state.
#[derive(Debug, Default)]
pub struct TxState {
    /// Commands queued since MULTI (None: not in MULTI).
    pub queued: Option<Vec<(&'static Command, Vec<Bytes>)>>,
    /// A command was refused while queueing: EXEC aborts.
    pub dirty: bool,
    /// Keys watched since WATCH.
    pub watched: Vec<Watched>,
}

impl TxState {
    /// True between MULTI and EXEC/DISCARD.
    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }
}

/// Commands that run at once even inside MULTI (Redis's processCommand list).
fn runs_in_multi(cmd: &Command) -> bool {
    matches!(
        cmd.id,
        CommandId::Exec
            | CommandId::Discard
            | CommandId::Multi
            | CommandId::Watch
            | CommandId::Quit
            | CommandId::Reset
    )
}

/// Applies MULTI queueing and the RESP2 subscribed-state restriction to a
/// routed request. Returns the reply if the request is answered here.
pub fn gate(conn: &mut Conn, route: &Route, args: &[Bytes]) -> Option<Reply> {
    let cmd = match route {
        Route::Reply(r) => {
            if r.is_error() && conn.tx.in_multi() {
                conn.tx.dirty = true;
            }
            return None;
        }
        Route::Keyed(_, c) | Route::MultiShard(c, _) | Route::Special(c) => *c,
    };
    if conn.subs.active()
        && conn.proto == shardis_protocol::Protocol::Resp2
        && !cmd.has(flags::PUBSUB_CONTEXT)
    {
        if conn.tx.in_multi() {
            conn.tx.dirty = true;
        }
        // Redis names the subcommand (`pubsub|shardchannels`), its fullname.
        let name = cmd
            .stat_index(args)
            .map_or(cmd.name, |i| shardis_commands::meta::TABLE[i].name);
        return Some(Reply::Error(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )));
    }
    let queued = conn.tx.queued.as_mut()?;
    if runs_in_multi(cmd) {
        return None;
    }
    if cmd.has(flags::NO_MULTI) {
        conn.tx.dirty = true;
        return Some(Reply::error("ERR Command not allowed inside a transaction"));
    }
    queued.push((cmd, args.to_vec()));
    conn.info.borrow_mut().multi = queued.len() as i64;
    Some(Reply::Simple("QUEUED"))
}

/// Recomputes CLIENT LIST's flags from the connection's state.
pub fn refresh_flags(conn: &Conn) {
    if conn.master_link {
        return;
    }
    let mut f = String::new();
    if conn.info.borrow().flags.starts_with('O') {
        f.push('O'); // MONITOR
    }
    if conn.subs.active() {
        f.push('P');
    }
    if conn.tx.in_multi() {
        f.push('x');
    }
    if let Some((broken, bcast)) = conn.info.borrow().tracking {
        f.push('t');
        if broken {
            f.push('R');
        }
        if bcast {
            f.push('B');
        }
    }
    if conn.no_evict {
        f.push('e');
    }
    if f.is_empty() {
        f.push('N');
    }
    let mut info = conn.info.borrow_mut();
    info.multi = conn.tx.queued.as_ref().map_or(-1, |q| q.len() as i64);
    info.flags = f;
}

/// MULTI.
pub fn multi(conn: &mut Conn) -> Reply {
    if conn.tx.in_multi() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    conn.tx.queued = Some(Vec::new());
    conn.tx.dirty = false;
    refresh_flags(conn);
    Reply::OK
}

/// DISCARD.
pub async fn discard(conn: &mut Conn) -> Reply {
    if !conn.tx.in_multi() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    conn.tx.queued = None;
    conn.tx.dirty = false;
    unwatch_all(conn).await;
    refresh_flags(conn);
    Reply::OK
}

/// RESET and disconnect: leave MULTI and forget watched keys.
pub async fn reset(conn: &mut Conn) {
    conn.tx.queued = None;
    conn.tx.dirty = false;
    unwatch_all(conn).await;
    refresh_flags(conn);
}

/// WATCH key [key …].
pub async fn watch(conn: &mut Conn, args: &[Bytes]) -> Reply {
    if conn.tx.in_multi() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let n = conn.shard.shards();
    let db = conn.db;
    let mut by_shard: BTreeMap<ShardId, Vec<Bytes>> = BTreeMap::new();
    for k in &args[1..] {
        let s = crate::route::shard_of(k, n);
        let seen = conn.tx.watched.iter().any(|w| w.db == db && w.key == k)
            || by_shard.get(&s).is_some_and(|v| v.contains(k));
        if !seen {
            by_shard.entry(s).or_default().push(k.clone());
        }
    }
    for (s, keys) in by_shard {
        let r = conn
            .shard
            .call(s, move |sh| {
                let ctx = ExecContext {
                    db,
                    now_ms: crate::shared::unix_ms(),
                    replica: sh.store.replica.get(),
                    ..Default::default()
                };
                let ks = sh.store.keyspace.borrow();
                let mut w = sh.watch.borrow_mut();
                keys.into_iter()
                    .map(|k| {
                        let existed = ks.peek(&ctx, db, &k).is_some();
                        let version = w.watch(db, k.clone());
                        (k, version, existed)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let Ok(list) = r else {
            return Reply::error(errors::SHUTTING_DOWN);
        };
        for (key, version, existed) in list {
            conn.tx.watched.push(Watched {
                shard: s,
                db,
                key,
                version,
                existed,
            });
        }
    }
    Reply::OK
}

/// UNWATCH.
pub async fn unwatch(conn: &mut Conn) -> Reply {
    unwatch_all(conn).await;
    Reply::OK
}

async fn unwatch_all(conn: &mut Conn) {
    let watched = std::mem::take(&mut conn.tx.watched);
    release_watches(&conn.shard, watched).await;
}

async fn release_watches(shard: &Rc<Shard>, watched: Vec<Watched>) {
    let mut by_shard: BTreeMap<ShardId, Vec<(DbIndex, Bytes)>> = BTreeMap::new();
    for w in watched {
        by_shard.entry(w.shard).or_default().push((w.db, w.key));
    }
    for (s, keys) in by_shard {
        let _ = shard
            .post(s, move |sh| {
                let mut t = sh.watch.borrow_mut();
                for (d, k) in keys {
                    t.unwatch(d, k);
                }
            })
            .await;
    }
}

/// One queued command with the db it runs in and its key positions.
struct Planned {
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: DbIndex,
    keys: Vec<usize>,
}

/// EXEC.
pub async fn exec(conn: &mut Conn) -> Reply {
    let Some(queued) = conn.tx.queued.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let dirty = std::mem::take(&mut conn.tx.dirty);
    let watched = std::mem::take(&mut conn.tx.watched);
    refresh_flags(conn);
    let shard = conn.shard.clone();
    if dirty {
        release_watches(&shard, watched).await;
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let n = shard.shards();
    let databases = shard.store.keyspace.borrow().databases();
    let mut db = conn.db;
    let mut plan = Vec::with_capacity(queued.len());
    let mut locks: BTreeMap<ShardId, Vec<(DbIndex, Bytes)>> = BTreeMap::new();
    for (cmd, args) in queued {
        let keys = if matches!(cmd.keys, KeySpec::None) {
            Vec::new()
        } else {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            cmd.key_indices(&argv).unwrap_or_default()
        };
        for &i in &keys {
            locks
                .entry(crate::route::shard_of(&args[i], n))
                .or_default()
                .push((db, args[i].clone()));
        }
        let cmd_db = db;
        if cmd.id == CommandId::Select {
            if let Some(d) = std::str::from_utf8(&args[1])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&d| d < databases)
            {
                db = DbIndex(d);
            }
        }
        plan.push(Planned {
            cmd,
            args,
            db: cmd_db,
            keys,
        });
    }
    for w in &watched {
        locks
            .entry(w.shard)
            .or_default()
            .push((w.db, w.key.clone()));
    }
    for keys in locks.values_mut() {
        keys.sort();
        keys.dedup();
    }
    // A SORT whose patterns read keys anywhere, or a script (it may touch
    // any key), makes the whole transaction hold every shard instead of its
    // keys (see `multi` and `script`).
    let global = plan.iter().any(|p| {
        crate::multi::needs_all_shards(p.cmd, &p.args, n)
            || crate::script::run::is_script_command(p.cmd)
            || matches!(
                p.cmd.id,
                CommandId::Flushall | CommandId::Flushdb | CommandId::Swapdb
            )
    });
    if global {
        locks = ShardId::all(n).map(|s| (s, Vec::new())).collect();
    }
    let tx = shard.shared.next_tx();
    let marked = plan.iter().any(|p| p.cmd.is_write() || global) && shard.logging();
    let (held, all) =
        crate::multi::acquire(&shard, tx, marked, global, locks.into_iter().collect()).await;
    let mut effects: Vec<Effect> = Vec::new();
    let reply = if !all {
        Reply::error(errors::SHUTTING_DOWN)
    } else if !watch_intact(&shard, &watched).await {
        Reply::NilArray
    } else {
        let mut replies = Vec::with_capacity(plan.len());
        conn.held = global.then(Vec::new);
        for p in plan {
            let r = match crate::acl::exec_check(conn, p.cmd, &p.args) {
                Some(denied) => denied,
                None => match crate::acl::sort_patterns(conn, p.cmd, &p.args) {
                    Some(e) => {
                        if let Reply::Error(m) = &e {
                            conn.count_error(m);
                        }
                        e
                    }
                    None => run_one(conn, p, &mut effects).await,
                },
            };
            replies.push(r);
        }
        conn.held = None;
        Reply::Array(replies)
    };
    if marked {
        crate::multi::tx_effects(&shard, tx, effects).await;
    } else if !effects.is_empty() {
        // No write ran, but reads reclaimed expired keys: their DELs go out
        // as one unit, as Redis wraps what one EXEC propagates.
        shard.log_effects_of(&mut effects, true);
    }
    crate::multi::release(&shard, tx, marked, global, held).await;
    release_watches(&shard, watched).await;
    reply
}

/// True if no watched key changed since WATCH (checked under the locks).
async fn watch_intact(shard: &Rc<Shard>, watched: &[Watched]) -> bool {
    let mut by_shard: BTreeMap<ShardId, Vec<Watched>> = BTreeMap::new();
    for w in watched {
        by_shard.entry(w.shard).or_default().push(w.clone());
    }
    for (s, ws) in by_shard {
        let ok = shard
            .call(s, move |sh| {
                let t = sh.watch.borrow();
                let ks = sh.store.keyspace.borrow();
                ws.iter().all(|w| {
                    let ctx = ExecContext {
                        db: w.db,
                        now_ms: crate::shared::unix_ms(),
                        replica: sh.store.replica.get(),
                        ..Default::default()
                    };
                    // A key that existed at WATCH and has logically expired since
                    // counts as modified even before its deletion (Redis 7.0).
                    t.version(w.db, &w.key) == w.version
                        && (!w.existed || ks.peek(&ctx, w.db, &w.key).is_some())
                })
            })
            .await;
        if !matches!(ok, Ok(true)) {
            return false;
        }
    }
    true
}

/// Runs one queued command with the transaction's locks held.
async fn run_one(conn: &mut Conn, p: Planned, effects: &mut Vec<Effect>) -> Reply {
    let shard = conn.shard.clone();
    let n = shard.shards();
    let resp3 = conn.proto == shardis_protocol::Protocol::Resp3;
    let Planned {
        cmd,
        args,
        db,
        keys,
    } = p;
    // SLOWLOG logs each command of a transaction (EXEC itself is skipped).
    let slow_args = shard.shared.obs.slowlog_on().then(|| args.clone());
    let started = std::time::Instant::now();
    let reply = if cmd.id == CommandId::Ssubscribe {
        // EXEC runs its commands as a client that may not block (Redis's
        // CLIENT_DENY_BLOCKING), and SSUBSCRIBE, unlike SUBSCRIBE, has no
        // exception for MULTI.
        Reply::error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    } else if crate::script::run::is_script_command(cmd)
        && !matches!(cmd.id, CommandId::Script | CommandId::Function)
    {
        // EXEC holds every shard (see `exec`).
        let start = std::time::Instant::now();
        let r = crate::script::eval_held(conn, cmd, &args, effects).await;
        shard.record(cmd, cmd.stat_index(&args), &r, start);
        r
    } else if cmd.id == CommandId::Migrate {
        // EXEC holds its keys; the transfer runs from here, as Redis runs
        // it blocking inside EXEC.
        let start = std::time::Instant::now();
        let client = conn.info.borrow().id;
        let r = crate::migrate::run_held(&shard, db, &args, effects, client).await;
        shard.record(cmd, cmd.stat_index(&args), &r, start);
        r
    } else if crate::route::keyless(cmd, &args) {
        let start = std::time::Instant::now();
        // Holding every shard, nothing else runs: what the command
        // replicates (FLUSHALL's effect) belongs in the transaction, in its
        // place (see `Conn::propagate`).
        let r = Box::pin(crate::admin::special(conn, cmd, &args)).await;
        if let Some(held) = conn.held.as_mut() {
            effects.append(held);
        }
        shard.record(cmd, cmd.stat_index(&args), &r, start);
        r
    } else {
        let owners: Vec<ShardId> = keys
            .iter()
            .map(|&i| crate::route::shard_of(&args[i], n))
            .collect();
        let first = owners.first().copied().unwrap_or(shard.id);
        let everywhere = crate::multi::needs_all_shards(cmd, &args, n);
        let track = crate::tracking::tracks(conn, cmd, &args);
        let client = conn.info.borrow().id;
        if let Some(t) = track.filter(|_| everywhere || owners.iter().any(|&o| o != first)) {
            crate::tracking::remember_everywhere(&shard, t, cmd, &args).await;
        }
        let result: Result<Reply, ShardGone> = if !everywhere && owners.iter().all(|&o| o == first)
        {
            shard
                .call(first, move |sh| {
                    if let Some(t) = track {
                        crate::tracking::remember(sh, t, cmd, &args);
                    }
                    // The client's protocol shapes a few replies (WITHSCORES pairs).
                    let mut fx = Vec::new();
                    let out = sh.run(
                        Run::new(db, cmd, &args)
                            .resp3(resp3)
                            .admit(Admit::Decided)
                            .client(client)
                            .collect(&mut fx),
                    );
                    (out.reply, fx)
                })
                .await
                .map(|(r, fx)| {
                    effects.extend(fx);
                    r
                })
        } else {
            crate::multi::run_locked(&shard, db, cmd, &args, &keys, effects, resp3, client).await
        };
        result.unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
    };
    if let Some(a) = slow_args {
        conn.log_if_slow(cmd, &a, started.elapsed().as_micros() as u64);
    }
    if let Reply::Error(msg) = &reply {
        // Redis counts each error inside EXEC's reply (errorstats, total_error_replies).
        conn.count_error(msg);
    }
    // Inside MULTI blocking commands never block: they reply as on timeout,
    // which for BLMOVE/BRPOPLPUSH is the null bulk string (Redis 7.0).
    if matches!(reply, Reply::NilArray)
        && matches!(cmd.id, CommandId::Blmove | CommandId::Brpoplpush)
    {
        return Reply::Nil;
    }
    reply
}
