//! Commands whose keys live on several shards, run atomically and isolated.
//!
//! The coordinator (the connection's executor) takes intent locks on every key,
//! shard by shard in ascending shard order, then runs the command, then releases
//! the locks. While a key is locked no other command touches it, so no reader
//! sees half of an MSET; because every transaction locks shards in the same order,
//! lock waits never form a cycle.
//!
//! Commands that split naturally (MGET, MSET, DEL, EXISTS, …) run as per-shard
//! sub-commands. Everything else (RENAME, SMOVE, SINTERSTORE, …) gathers owned
//! copies of its keys into a temporary keyspace, runs there unchanged, and writes
//! the resulting keys back to their owners.

use crate::shard::{Pending, Shard, ShardGone};
use bytes::Bytes;
use shardis_commands::{Command, CommandId};
use shardis_keyspace::{Effect, Entry, ExecContext, Keyspace};
use shardis_protocol::Reply;
use shardis_replication::LogEntry;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Runs `cmd` whose key arguments (`key_idx`) span several shards.
pub async fn run(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: Vec<Bytes>,
    key_idx: Vec<usize>,
) -> Reply {
    let n = shard.shards();
    let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &key_idx {
        by_shard
            .entry(crate::route::shard_of(&args[i], n))
            .or_default()
            .push(i);
    }
    let tx = shard
        .shared
        .next_tx_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Writes are marked in every involved shard's log so the replication
    // stream can place the command once, consistently with each shard.
    let marked = cmd.is_write() && shard.logging();
    let parts = by_shard.len();
    let mut held: Vec<(usize, Vec<(usize, Bytes)>)> = Vec::new();
    let mut result = Ok(Reply::Nil);
    for (&s, idxs) in &by_shard {
        let mut keys: Vec<(usize, Bytes)> = idxs.iter().map(|&i| (db, args[i].clone())).collect();
        keys.sort();
        keys.dedup();
        let lock_keys = keys.clone();
        let locked = shard
            .call_async(s, move |sh| async move {
                sh.lock(tx, &lock_keys).await;
                if marked {
                    sh.log_marker(LogEntry::Acquire { tx, parts });
                }
            })
            .await;
        if locked.is_err() {
            result = Err(ShardGone);
            break;
        }
        held.push((s, keys));
    }
    let mut effects = Vec::new();
    if result.is_ok() {
        result = dispatch(shard, db, cmd, &args, &by_shard, &mut effects).await;
    }
    if marked {
        let _ = shard
            .call(0, move |s0| {
                s0.repl.borrow_mut().merger.tx_effects(tx, effects);
                s0.pump_signal.kick();
            })
            .await;
    } else if !effects.is_empty() {
        // Lazy-expiry deletions found by a read-only command.
        shard.log_effects(effects.into_iter());
    }
    // Release every lock, even after a failure, so no key stays blocked.
    let mut releases = Vec::new();
    for (s, keys) in held {
        let released = shard
            .post(s, move |sh| {
                if marked {
                    sh.log_marker(LogEntry::Release { tx });
                }
                sh.unlock(tx, &keys)
            })
            .await;
        if let Ok(p) = released {
            releases.push(p);
        }
    }
    for p in releases {
        let _ = p.wait().await;
    }
    result.unwrap_or_else(|_| Reply::error(crate::errors::SHUTTING_DOWN))
}

/// Runs `cmd` whose keys (`key_idx`) span several shards, with the caller
/// already holding the intent locks (EXEC); effects are appended to `fx`.
pub async fn run_locked(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    key_idx: &[usize],
    fx: &mut Vec<Effect>,
) -> Result<Reply, ShardGone> {
    let n = shard.shards();
    let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in key_idx {
        by_shard
            .entry(crate::route::shard_of(&args[i], n))
            .or_default()
            .push(i);
    }
    dispatch(shard, db, cmd, args, &by_shard, fx).await
}

async fn dispatch(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    fx: &mut Vec<Effect>,
) -> Result<Reply, ShardGone> {
    match cmd.id {
        CommandId::Mget => mget(shard, db, cmd, args, by_shard, fx).await,
        CommandId::Mset => split(shard, db, cmd, args, by_shard, 2, fx)
            .await
            .map(|_| Reply::OK),
        CommandId::Del | CommandId::Unlink | CommandId::Exists | CommandId::Touch => {
            split(shard, db, cmd, args, by_shard, 1, fx)
                .await
                .map(|rs| {
                    Reply::Integer(
                        rs.iter()
                            .map(|r| if let Reply::Integer(n) = r { *n } else { 0 })
                            .sum(),
                    )
                })
        }
        CommandId::Msetnx => msetnx(shard, db, args, by_shard, fx).await,
        _ => gather(shard, db, cmd, args, by_shard, fx).await,
    }
}

/// Runs `cmd` on each shard with that shard's keys (each key followed by
/// `stride - 1` values); replies in shard order, effects appended to `fx`.
async fn split(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    stride: usize,
    fx: &mut Vec<Effect>,
) -> Result<Vec<Reply>, ShardGone> {
    let mut pending: Vec<Pending<(Reply, Vec<Effect>)>> = Vec::new();
    for (&s, idxs) in by_shard {
        let mut sub = Vec::with_capacity(1 + idxs.len() * stride);
        sub.push(args[0].clone());
        for &i in idxs {
            sub.extend_from_slice(&args[i..i + stride]);
        }
        pending.push(
            shard
                .post(s, move |sh| sh.captured(|| sh.execute(db, cmd, &sub)))
                .await?,
        );
    }
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let (reply, effects) = p.wait().await?;
        fx.extend(effects);
        out.push(reply);
    }
    Ok(out)
}

async fn mget(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    fx: &mut Vec<Effect>,
) -> Result<Reply, ShardGone> {
    let replies = split(shard, db, cmd, args, by_shard, 1, fx).await?;
    let mut values = vec![Reply::Nil; args.len() - 1];
    for ((_, idxs), reply) in by_shard.iter().zip(replies) {
        if let Reply::Array(items) = reply {
            for (&i, v) in idxs.iter().zip(items) {
                values[i - 1] = v;
            }
        }
    }
    Ok(Reply::Array(values))
}

async fn msetnx(
    shard: &Rc<Shard>,
    db: usize,
    args: &[Bytes],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    fx: &mut Vec<Effect>,
) -> Result<Reply, ShardGone> {
    let exists = shardis_commands::get(CommandId::Exists);
    let mut keys_only: Vec<Bytes> = vec![Bytes::from_static(b"exists")];
    keys_only.extend(args.iter().skip(1).step_by(2).cloned());
    // Re-map key positions of `args` to positions in `keys_only` for EXISTS.
    let remapped: BTreeMap<usize, Vec<usize>> = by_shard
        .iter()
        .map(|(&s, idxs)| (s, idxs.iter().map(|&i| i.div_ceil(2)).collect()))
        .collect();
    let found = split(shard, db, exists, &keys_only, &remapped, 1, fx).await?;
    if found
        .iter()
        .any(|r| matches!(r, Reply::Integer(n) if *n > 0))
    {
        return Ok(Reply::Integer(0));
    }
    let mset = shardis_commands::get(CommandId::Mset);
    split(shard, db, mset, args, by_shard, 2, fx).await?;
    Ok(Reply::Integer(1))
}

/// The `(db, key)` pairs a command touches; COPY … DB n puts its destination in db n.
fn touched_keys(
    db: usize,
    databases: usize,
    cmd: &'static Command,
    args: &[Bytes],
    idxs: &[usize],
) -> Vec<(usize, usize)> {
    let mut dest_db = db;
    if cmd.id == CommandId::Copy {
        let mut i = 3;
        while i + 1 < args.len() {
            if args[i].eq_ignore_ascii_case(b"db") {
                if let Some(n) = std::str::from_utf8(&args[i + 1])
                    .ok()
                    .and_then(|s| s.parse().ok())
                {
                    // An invalid index is left to the command, which replies the error.
                    if n < databases {
                        dest_db = n;
                    }
                }
            }
            i += 1;
        }
    }
    idxs.iter()
        .map(|&i| {
            (
                if cmd.id == CommandId::Copy && i == 2 {
                    dest_db
                } else {
                    db
                },
                i,
            )
        })
        .collect()
}

/// One gathered key: its db, name and entry (None if absent).
type Gathered = (usize, Bytes, Option<Entry>);

async fn gather(
    shard: &Rc<Shard>,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    fx: &mut Vec<Effect>,
) -> Result<Reply, ShardGone> {
    let databases = shard.keyspace.borrow().databases();
    let mut tmp = Keyspace::new(databases);
    let mut owners: Vec<(usize, usize, Bytes)> = Vec::new();
    let mut pending: Vec<Pending<(Vec<Gathered>, Vec<Effect>)>> = Vec::new();
    for (&s, idxs) in by_shard {
        let keys: Vec<(usize, Bytes)> = touched_keys(db, databases, cmd, args, idxs)
            .into_iter()
            .map(|(d, i)| (d, args[i].clone()))
            .collect();
        for (d, k) in &keys {
            owners.push((s, *d, k.clone()));
        }
        pending.push(
            shard
                .post(s, move |sh| {
                    sh.captured(|| {
                        keys.into_iter()
                            .map(|(d, k)| {
                                let e = sh.with_ctx(d, |ks, ctx| ks.clone_entry(ctx, &k));
                                (d, k, e)
                            })
                            .collect()
                    })
                })
                .await?,
        );
    }
    for p in pending {
        let (gathered, effects) = p.wait().await?;
        fx.extend(effects);
        for (d, k, e) in gathered {
            if let Some(e) = e {
                tmp.put_entry(d, k, e, crate::shared::unix_ms());
            }
        }
    }
    let mut ctx = ExecContext {
        db,
        now_ms: crate::shared::unix_ms(),
        replica: shard.replica.get(),
        ..Default::default()
    };
    let reply = tmp.execute(&mut ctx, cmd, args);
    if cmd.is_write() && !reply.is_error() {
        let mut writes: BTreeMap<usize, Vec<(usize, Bytes, Option<Entry>)>> = BTreeMap::new();
        let mut seen = hashbrown::HashSet::new();
        for (s, d, k) in owners {
            if !seen.insert((d, k.clone())) {
                continue;
            }
            let e = {
                let mut c = ExecContext {
                    db: d,
                    now_ms: ctx.now_ms,
                    replica: true,
                    ..Default::default()
                };
                tmp.clone_entry(&mut c, &k)
            };
            writes.entry(s).or_default().push((d, k, e));
        }
        let mut acks = Vec::new();
        for (s, w) in writes {
            acks.push(
                shard
                    .post(s, move |sh| {
                        let mut ks = sh.keyspace.borrow_mut();
                        for (d, k, e) in w {
                            // Written behind the keyspace's back: WATCH and
                            // blocked clients learn of it here.
                            sh.key_written(d, &k, e.is_some());
                            match e {
                                Some(e) => ks.put_entry(d, k, e, crate::shared::unix_ms()),
                                None => {
                                    ks.remove(d, &k);
                                }
                            }
                        }
                    })
                    .await?,
            );
        }
        for a in acks {
            a.wait().await?;
        }
        let c = shard.counters();
        crate::shared::ShardCounters::add(&c.dirty, ctx.stats.dirty);
        fx.append(&mut ctx.effects);
    }
    Ok(reply)
}
