//! Commands whose keys live on several shards, run atomically and isolated.
//!
//! The coordinator (the connection's executor) takes intent locks on every key,
//! shard by shard in ascending shard order, then runs the command, then releases
//! the locks. While a key is locked no other command touches it, so no reader
//! sees half of an MSET; because every transaction locks shards in the same order,
//! lock waits never form a cycle. [`acquire`], [`tx_effects`] and [`release`]
//! are that protocol; EXEC (`tx`), scripts (`script`) and [`with_every_shard`]
//! take their locks through them too.
//!
//! Commands that split naturally (MGET, MSET, DEL, EXISTS, …; the command
//! table's `split` column) run as per-shard sub-commands. Everything else (RENAME, SMOVE, SINTERSTORE, …) gathers owned
//! copies of its keys into a temporary keyspace, runs there unchanged, and writes
//! the resulting keys back to their owners.
//!
//! SORT whose BY or GET patterns read other keys ([`needs_all_shards`]) cannot
//! name its keys before it runs: they depend on the elements. It holds every
//! shard (`lock_all`, in ascending order, so it orders with the key locks
//! above), copies the source and destination, then every key the patterns
//! name, into the temporary keyspace and runs there. The cost: while it runs
//! no other command runs anywhere, and each pattern key is copied whole (a
//! `hash*->field` pattern copies the hash). With one shard, or patterns whose
//! hash tag pins them to the source key's shard, it runs in place.

use crate::shard::{Part, Pending, Shard, ShardGone};
use bytes::Bytes;
use shardis_base::ShardId;
use shardis_commands::{Command, CommandId, Split};
use shardis_keyspace::DbIndex;
use shardis_keyspace::{Effect, Entry, ExecContext, Keyspace};
use shardis_protocol::Reply;
use shardis_replication::{LogEntry, TxId};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// True for a command that must hold every shard (of `n`): a SORT whose
/// BY/GET patterns read keys that may live on other shards than its own
/// keys. Patterns whose hash tag pins them to the source key's shard (and
/// the destination's) do not.
pub fn needs_all_shards(cmd: &Command, args: &[Bytes], n: usize) -> bool {
    use shardis_keyspace::sort;
    let readonly = match cmd.id {
        CommandId::Sort => false,
        CommandId::SortRo => true,
        _ => return false,
    };
    if n == 1 || !sort::reads_other_keys(args, readonly) {
        return false;
    }
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let own = cmd.key_indices(&argv).unwrap_or_default();
    let shard = crate::route::shard_of(&args[1], n);
    let local = |k: &[u8]| crate::route::shard_of(k, n) == shard;
    let pinned =
        sort::pattern_tags(args, readonly).is_some_and(|tags| tags.into_iter().all(&local));
    !(pinned && own.iter().all(|&i| local(&args[i])))
}

/// Runs `cmd` whose key arguments (`key_idx`) span several shards, replying
/// in RESP3 shapes when `resp3` (the client's protocol), for `client` (its
/// writes are its own for NOLOOP tracking; 0: none).
pub async fn run(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: Vec<Bytes>,
    key_idx: Vec<usize>,
    resp3: bool,
    client: u64,
) -> Reply {
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for &i in &key_idx {
        by_shard
            .entry(crate::route::shard_of(&args[i], n))
            .or_default()
            .push(i);
    }
    // Writes are marked in every involved shard's log so the replication
    // stream can place the command once, consistently with each shard.
    let marked = cmd.is_write() && shard.logging();
    let global = needs_all_shards(cmd, &args, n);
    let want = if global {
        whole_shards(ShardId::all(n))
    } else {
        by_shard
            .iter()
            .map(|(&s, idxs)| {
                let mut keys: Vec<(DbIndex, Bytes)> =
                    idxs.iter().map(|&i| (db, args[i].clone())).collect();
                keys.sort();
                keys.dedup();
                (s, keys)
            })
            .collect()
    };
    if !global {
        if let Some(reply) =
            run_one_message(shard, db, cmd, &args, &by_shard, marked, &want, client).await
        {
            return reply;
        }
    }
    let tx = shard.shared.next_tx();
    let (held, all) = acquire(shard, tx, marked, global, want).await;
    let mut effects = Vec::new();
    let result = if all {
        dispatch(
            shard,
            db,
            cmd,
            &args,
            &by_shard,
            &mut effects,
            resp3,
            client,
        )
        .await
    } else {
        Err(ShardGone)
    };
    if marked {
        tx_effects(shard, tx, effects).await;
    } else if !effects.is_empty() {
        // Lazy-expiry deletions found by a read-only command.
        shard.log_effects_of(&mut effects, true);
    }
    release(shard, tx, marked, global, held).await;
    result.unwrap_or_else(|_| Reply::error(crate::errors::SHUTTING_DOWN))
}

/// A split command (MGET, MSET, DEL, …) whose keys are on this shard and
/// others, with one message per other shard, passed along a chain: this
/// shard takes its key locks without waiting and sends the next shard (in
/// ascending order) one job; that shard takes its own the same way and sends
/// the next, and so on; the last shard runs its part and releases, then each
/// shard back up the chain runs its part and releases, this one last.
/// Every shard runs its part while it and every shard before it in the chain
/// hold their locks, so no reader sees half the command (a reader of two of
/// its shards waits for the earlier one), and nobody waits while holding a
/// lock, so it cannot deadlock with the ordered path ([`acquire`]). Returns
/// None, having changed nothing, when a lock is taken or awaited on any
/// shard: the caller then takes the ordered path. Against the ordered path's
/// k+3 serial steps (lock each shard, run, hand the effects on, release),
/// each other shard gets one job and answers once.
///
/// For the replication stream it keeps the merger's rule (`merge.rs`): every
/// shard logs its `Acquire` before the chain goes on, so all of them come
/// before any `Release`; a shard whose successor refused logs an `Abort`.
#[allow(clippy::too_many_arguments)]
async fn run_one_message(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    marked: bool,
    want: &Locks,
    client: u64,
) -> Option<Reply> {
    let stride = split_stride(cmd.split)?;
    if by_shard.len() < 2 || !by_shard.contains_key(&shard.id) {
        return None;
    }
    let parts = want.len();
    let mut hops: Vec<Hop> = want
        .iter()
        .map(|(s, keys)| Hop {
            shard: *s,
            keys: keys.clone(),
            sub: sub_command(args, &by_shard[s], stride),
        })
        .collect();
    let local = hops.remove(hops.iter().position(|h| h.shard == shard.id)?);
    // The rest of the chain, to be taken from the end: ascending shard order.
    hops.reverse();
    let tx = shard.shared.next_tx();
    let chain = Chain {
        tx,
        parts,
        marked,
        db,
        cmd,
        client,
    };
    if !shard.store.try_lock(tx, &local.keys) {
        return None;
    }
    if marked {
        shard.log_marker(LogEntry::Acquire { tx, parts });
    }
    let next = hops.pop()?;
    let done = shard
        .call_async(next.shard, move |sh| chain.hop(sh, next, hops))
        .await;
    let mut ran = match done {
        Ok(Some(ran)) => ran,
        refused => {
            if marked {
                shard.log_marker(LogEntry::Abort { tx });
            }
            shard.store.unlock(tx, &local.keys);
            return match refused {
                Err(ShardGone) => Some(Reply::error(crate::errors::SHUTTING_DOWN)),
                Ok(_) => None,
            };
        }
    };
    let part = shard.run_part(db, cmd, &local.sub, client);
    ran.push((shard.id, local.sub, part));
    // Parts in shard order, as the ordered path gives them.
    ran.sort_by_key(|(s, _, _)| *s);
    let mut replies = Vec::with_capacity(ran.len());
    let mut parts = Vec::with_capacity(ran.len());
    for (_, sub, mut part) in ran {
        replies.push(std::mem::replace(&mut part.reply, Reply::Nil));
        parts.push((sub, part));
    }
    let mut effects = replicated(db, args, parts);
    if marked {
        tx_effects(shard, tx, effects).await;
        shard.log_marker(LogEntry::Release { tx });
    } else if !effects.is_empty() {
        // Lazy-expiry deletions found by a read-only command: one unit
        // when there are several, as Redis propagates one command's.
        shard.log_effects_of(&mut effects, true);
    }
    shard.store.unlock(tx, &local.keys);
    Some(combine(cmd.split, args.len(), by_shard, replies))
}

/// One shard's piece of a [`run_one_message`] chain.
struct Hop {
    shard: ShardId,
    /// Its keys, to lock.
    keys: Vec<(DbIndex, Bytes)>,
    /// Its part of the command.
    sub: Vec<Bytes>,
}

/// What every hop of a [`run_one_message`] chain shares.
#[derive(Clone, Copy)]
struct Chain {
    tx: TxId,
    parts: usize,
    marked: bool,
    db: DbIndex,
    cmd: &'static Command,
    client: u64,
}

/// The parts a chain ran: shard, sub-command, what came of it.
type Ran = Vec<(ShardId, Vec<Bytes>, Part)>;

impl Chain {
    /// `hop` on its shard `sh`: takes its locks if that needs no wait,
    /// passes the chain on to `rest`'s last hop, then runs its part and
    /// releases. None, with nothing changed here, when a lock here or
    /// further on was taken (or a shard is gone).
    fn hop(
        self,
        sh: Rc<Shard>,
        hop: Hop,
        mut rest: Vec<Hop>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Ran>>>> {
        Box::pin(async move {
            if !sh.store.try_lock(self.tx, &hop.keys) {
                return None;
            }
            if self.marked {
                sh.log_marker(LogEntry::Acquire {
                    tx: self.tx,
                    parts: self.parts,
                });
            }
            let mut ran = match rest.pop() {
                None => Vec::new(),
                Some(next) => {
                    let done = sh
                        .call_async(next.shard, move |s| self.hop(s, next, rest))
                        .await;
                    match done {
                        Ok(Some(ran)) => ran,
                        _ => {
                            if self.marked {
                                sh.log_marker(LogEntry::Abort { tx: self.tx });
                            }
                            sh.store.unlock(self.tx, &hop.keys);
                            return None;
                        }
                    }
                }
            };
            let part = sh.run_part(self.db, self.cmd, &hop.sub, self.client);
            if self.marked {
                sh.log_marker(LogEntry::Release { tx: self.tx });
            }
            sh.store.unlock(self.tx, &hop.keys);
            ran.push((hop.shard, hop.sub, part));
            Some(ran)
        })
    }
}

/// Hands the effects of the marked transaction `tx` to the replication
/// merger (on shard 0), which places them once, between the Acquire and
/// Release markers of the shards it held. It does not wait for the merger
/// to take them: the merger holds the transaction's `Release`s back until
/// they arrive. Nothing that reads the stream's end misses them either:
/// they travel to shard 0 on this shard's channel ahead of the shipment
/// that carries this shard's `Release`, and `repl::settle` (WAIT, FAILOVER)
/// waits for every shard's shipment.
pub async fn tx_effects(shard: &Rc<Shard>, tx: TxId, effects: Vec<Effect>) {
    if shard.id == crate::shard::HOME_SHARD {
        shard.repl().borrow_mut().merger.tx_effects(tx, effects);
        shard.write_log.signal.kick();
        return;
    }
    let _ = shard
        .send(
            crate::shard::HOME_SHARD,
            Box::new(move |s0| {
                s0.repl().borrow_mut().merger.tx_effects(tx, effects);
                s0.write_log.signal.kick();
            }),
        )
        .await;
}

/// What a coordinator locks or holds for one transaction, per shard: the
/// keys, as (db, key), sorted and without repeats; or, for a shard held
/// whole, nothing.
pub type Locks = Vec<(ShardId, Vec<(DbIndex, Bytes)>)>;

/// `shards`, each to be held whole.
pub fn whole_shards(shards: impl IntoIterator<Item = ShardId>) -> Locks {
    shards.into_iter().map(|s| (s, Vec::new())).collect()
}

/// Takes transaction `tx`'s locks shard by shard in the order of `want`
/// (ascending shard ids, as every coordinator takes them, so lock waits never
/// form a cycle): the keys listed, or every key of the shard when `whole`.
/// When `marked` each shard logs the Acquire marker of a `want.len()`-shard
/// transaction. Stops at a shard that is gone (shutting down). Returns what it
/// holds, which [`release`] must be given even then, and whether that is all.
pub async fn acquire(
    shard: &Rc<Shard>,
    tx: TxId,
    marked: bool,
    whole: bool,
    want: Locks,
) -> (Locks, bool) {
    let parts = want.len();
    let mut held = Vec::with_capacity(parts);
    for (s, keys) in want {
        let lock_keys = keys.clone();
        let locked = shard
            .call_async(s, move |sh| async move {
                if whole {
                    sh.store.lock_all(tx).await;
                } else {
                    sh.store.lock(tx, &lock_keys).await;
                }
                if marked {
                    sh.log_marker(LogEntry::Acquire { tx, parts });
                }
            })
            .await;
        if locked.is_err() {
            return (held, false);
        }
        held.push((s, keys));
    }
    (held, true)
}

/// Ends transaction `tx` on every shard in `held` (what [`acquire`] took),
/// even after a failure, so no key stays blocked: each logs the Release
/// marker when `marked` and drops its locks (the whole shard's when
/// `whole`); returns once all have.
pub async fn release(shard: &Rc<Shard>, tx: TxId, marked: bool, whole: bool, held: Locks) {
    let mut releases = Vec::new();
    for (s, keys) in held {
        let released = shard
            .post(s, move |sh| {
                if marked {
                    sh.log_marker(LogEntry::Release { tx });
                }
                if whole {
                    sh.store.unlock_all(tx)
                } else {
                    sh.store.unlock(tx, &keys)
                }
            })
            .await;
        if let Ok(p) = released {
            releases.push(p);
        }
    }
    for p in releases {
        let _ = p.wait().await;
    }
}

/// Runs `cmd` whose keys (`key_idx`) span several shards, with the caller
/// already holding the intent locks (EXEC); effects are appended to `fx`.
#[allow(clippy::too_many_arguments)]
pub async fn run_locked(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    key_idx: &[usize],
    fx: &mut Vec<Effect>,
    resp3: bool,
    client: u64,
) -> Result<Reply, ShardGone> {
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for &i in key_idx {
        by_shard
            .entry(crate::route::shard_of(&args[i], n))
            .or_default()
            .push(i);
    }
    dispatch(shard, db, cmd, args, &by_shard, fx, resp3, client).await
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    fx: &mut Vec<Effect>,
    resp3: bool,
    client: u64,
) -> Result<Reply, ShardGone> {
    if let Some(stride) = split_stride(cmd.split) {
        let replies = split(shard, db, cmd, args, by_shard, stride, fx, client).await?;
        return Ok(combine(cmd.split, args.len(), by_shard, replies));
    }
    match cmd.split {
        Split::PairsIfAbsent => msetnx(shard, db, args, by_shard, fx, client).await,
        Split::No
            if matches!(cmd.id, CommandId::Sort | CommandId::SortRo)
                && needs_all_shards(cmd, args, shard.shards()) =>
        {
            sort_everywhere(shard, db, cmd, args, fx, resp3, client).await
        }
        _ => gather(shard, db, cmd, args, by_shard, fx, resp3, client).await,
    }
}

/// How many arguments each key of a command that splits into per-shard
/// sub-commands brings (the key and its values); None for one that does not.
fn split_stride(split: Split) -> Option<usize> {
    match split {
        Split::Values | Split::Count => Some(1),
        Split::Pairs => Some(2),
        Split::PairsIfAbsent | Split::No => None,
    }
}

/// Shard `idxs`'s part of `args`: the command name, then each key with its
/// `stride - 1` values.
fn sub_command(args: &[Bytes], idxs: &[usize], stride: usize) -> Vec<Bytes> {
    let mut sub = Vec::with_capacity(1 + idxs.len() * stride);
    sub.push(args[0].clone());
    for &i in idxs {
        sub.extend_from_slice(&args[i..i + stride]);
    }
    sub
}

/// The reply of a split command from its parts' replies, in shard order:
/// MGET's values back in argument order, a count summed, or OK.
fn combine(
    split: Split,
    n_args: usize,
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    replies: Vec<Reply>,
) -> Reply {
    match split {
        Split::Values => {
            let mut values = vec![Reply::Nil; n_args - 1];
            for ((_, idxs), reply) in by_shard.iter().zip(replies) {
                if let Reply::Array(items) = reply {
                    for (&i, v) in idxs.iter().zip(items) {
                        values[i - 1] = v;
                    }
                }
            }
            Reply::Array(values)
        }
        Split::Count => Reply::Integer(
            replies
                .iter()
                .map(|r| if let Reply::Integer(n) = r { *n } else { 0 })
                .sum(),
        ),
        _ => Reply::OK,
    }
}

/// Runs `cmd` on each shard with that shard's keys (each key followed by
/// `stride - 1` values) for `client`; replies in shard order, effects
/// appended to `fx`.
#[allow(clippy::too_many_arguments)]
async fn split(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    stride: usize,
    fx: &mut Vec<Effect>,
    client: u64,
) -> Result<Vec<Reply>, ShardGone> {
    let mut pending: Vec<Pending<(Vec<Bytes>, Part)>> = Vec::new();
    for (&s, idxs) in by_shard {
        let sub = sub_command(args, idxs, stride);
        pending.push(
            shard
                .post(s, move |sh| {
                    let part = sh.run_part(db, cmd, &sub, client);
                    (sub, part)
                })
                .await?,
        );
    }
    let mut out = Vec::with_capacity(pending.len());
    let mut parts = Vec::with_capacity(pending.len());
    for p in pending {
        let (sub, mut part) = p.wait().await?;
        out.push(std::mem::replace(&mut part.reply, Reply::Nil));
        parts.push((sub, part));
    }
    fx.extend(replicated(db, args, parts));
    Ok(out)
}

/// What a split command replicates, as Redis propagates it: first the
/// lazy-expiry deletions its parts met, in the order of their keys in the
/// command (Redis meets them key by key), then, if any part wrote, the
/// command as the client sent it, once. So replicas and the AOF see
/// `MSET k1 v1 k2 v2`, not an MSET per shard. A part whose effects do not
/// fit that shape (its own write is not its piece of the command) makes the
/// parts' effects go out as they are, in shard order. Several effects are
/// one unit either way: the merger, or [`Shard::log_effects_of`], wraps them
/// in MULTI … EXEC.
fn replicated(db: DbIndex, args: &[Bytes], parts: Vec<(Vec<Bytes>, Part)>) -> Vec<Effect> {
    let key_position = |e: &Effect| {
        (e.db == db && e.args.len() == 2 && e.args[0].eq_ignore_ascii_case(b"del"))
            .then(|| args[1..].iter().position(|a| *a == e.args[1]))
            .flatten()
    };
    let mut expired: Vec<(usize, Effect)> = Vec::new();
    let mut wrote = false;
    let mut fits = true;
    for (sub, part) in &parts {
        let (own, met) = match part.effects.split_last() {
            Some((last, met)) if part.wrote => (Some(last), met),
            _ => (None, &part.effects[..]),
        };
        if let Some(own) = own {
            fits &= own.db == db && own.args == *sub;
            wrote = true;
        }
        for e in met {
            match key_position(e) {
                Some(i) => expired.push((i, e.clone())),
                None => fits = false,
            }
        }
    }
    if !fits {
        return parts.into_iter().flat_map(|(_, p)| p.effects).collect();
    }
    expired.sort_by_key(|(i, _)| *i);
    let mut out: Vec<Effect> = expired.into_iter().map(|(_, e)| e).collect();
    if wrote {
        out.push(Effect {
            db,
            args: args.to_vec(),
        });
    }
    out
}

async fn msetnx(
    shard: &Rc<Shard>,
    db: DbIndex,
    args: &[Bytes],
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    fx: &mut Vec<Effect>,
    client: u64,
) -> Result<Reply, ShardGone> {
    let exists = shardis_commands::get(CommandId::Exists);
    let mut keys_only: Vec<Bytes> = vec![Bytes::from_static(b"exists")];
    keys_only.extend(args.iter().skip(1).step_by(2).cloned());
    // Re-map key positions of `args` to positions in `keys_only` for EXISTS.
    let remapped: BTreeMap<ShardId, Vec<usize>> = by_shard
        .iter()
        .map(|(&s, idxs)| (s, idxs.iter().map(|&i| i.div_ceil(2)).collect()))
        .collect();
    let found = split(shard, db, exists, &keys_only, &remapped, 1, fx, client).await?;
    if found
        .iter()
        .any(|r| matches!(r, Reply::Integer(n) if *n > 0))
    {
        return Ok(Reply::Integer(0));
    }
    let mset = shardis_commands::get(CommandId::Mset);
    split(shard, db, mset, args, by_shard, 2, fx, client).await?;
    Ok(Reply::Integer(1))
}

/// The `(db, key)` pairs a command touches; COPY … DB n puts its destination in db n.
fn touched_keys(
    db: DbIndex,
    databases: usize,
    cmd: &'static Command,
    args: &[Bytes],
    idxs: &[usize],
) -> Vec<(DbIndex, usize)> {
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
                        dest_db = DbIndex(n);
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
type Gathered = (DbIndex, Bytes, Option<Entry>);

#[allow(clippy::too_many_arguments)]
async fn gather(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    by_shard: &BTreeMap<ShardId, Vec<usize>>,
    fx: &mut Vec<Effect>,
    resp3: bool,
    client: u64,
) -> Result<Reply, ShardGone> {
    let databases = shard.store.keyspace.borrow().databases();
    let mut tmp = Keyspace::new(databases);
    let mut owners: Vec<(ShardId, DbIndex, Bytes)> = Vec::new();
    let mut pending: Vec<Pending<(Vec<Gathered>, Vec<Effect>)>> = Vec::new();
    for (&s, idxs) in by_shard {
        let keys: Vec<(DbIndex, Bytes)> = touched_keys(db, databases, cmd, args, idxs)
            .into_iter()
            .map(|(d, i)| (d, args[i].clone()))
            .collect();
        for (d, k) in &keys {
            owners.push((s, *d, k.clone()));
        }
        pending.push(
            shard
                .post(s, move |sh| {
                    let mut fx = Vec::new();
                    let gathered = keys
                        .into_iter()
                        .map(|(d, k)| {
                            let e = sh.with_ctx_into(d, &mut fx, |ks, ctx| ks.clone_entry(ctx, &k));
                            (d, k, e)
                        })
                        .collect();
                    (gathered, fx)
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
        replica: shard.store.replica.get(),
        notify_flags: shard.shared.notify_flags.load(Ordering::Relaxed),
        resp3,
        ..Default::default()
    };
    let reply = tmp.execute(&mut ctx, cmd, args);
    if cmd.is_write() && !reply.is_error() {
        let mut writes: BTreeMap<ShardId, Vec<(DbIndex, Bytes, Option<Entry>)>> = BTreeMap::new();
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
                        let mut ks = sh.store.keyspace.borrow_mut();
                        for (d, k, e) in w {
                            // Written behind the keyspace's back: WATCH and
                            // blocked clients learn of it here.
                            sh.key_written(d, &k, client);
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
    if !ctx.events.is_empty() {
        // Produced on the temporary keyspace: published from here, after the
        // write-back, so a subscriber never hears of a change it cannot read.
        crate::pubsub::keyspace_events(shard, ctx.notify_flags, &mut ctx.events);
    }
    Ok(reply)
}

/// A key copied from its owner (None: absent).
type Fetched = (Bytes, Option<Entry>);

/// Copies `keys` (in `db`) from their owners into `tmp`; lazy-expiry effects
/// go to `fx`.
async fn fetch_into(
    shard: &Rc<Shard>,
    db: DbIndex,
    keys: Vec<Bytes>,
    tmp: &mut Keyspace,
    fx: &mut Vec<Effect>,
) -> Result<(), ShardGone> {
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<Bytes>> = BTreeMap::new();
    for k in keys {
        by_shard
            .entry(crate::route::shard_of(&k, n))
            .or_default()
            .push(k);
    }
    let mut pending: Vec<Pending<(Vec<Fetched>, Vec<Effect>)>> = Vec::new();
    for (s, keys) in by_shard {
        pending.push(
            shard
                .post(s, move |sh| {
                    let mut fx = Vec::new();
                    let entries = keys
                        .into_iter()
                        .map(|k| {
                            let e =
                                sh.with_ctx_into(db, &mut fx, |ks, ctx| ks.clone_entry(ctx, &k));
                            (k, e)
                        })
                        .collect();
                    (entries, fx)
                })
                .await?,
        );
    }
    let now = crate::shared::unix_ms();
    for p in pending {
        let (entries, effects) = p.wait().await?;
        fx.extend(effects);
        for (k, e) in entries {
            if let Some(e) = e {
                tmp.put_entry(db, k, e, now);
            }
        }
    }
    Ok(())
}

/// SORT with BY/GET patterns, every shard held by the caller: gathers the
/// source and destination, then the keys the patterns name, runs in a
/// temporary keyspace and writes the destination back.
async fn sort_everywhere(
    shard: &Rc<Shard>,
    db: DbIndex,
    cmd: &'static Command,
    args: &[Bytes],
    fx: &mut Vec<Effect>,
    resp3: bool,
    client: u64,
) -> Result<Reply, ShardGone> {
    let databases = shard.store.keyspace.borrow().databases();
    let mut tmp = Keyspace::new(databases);
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let own: Vec<Bytes> = cmd
        .key_indices(&argv)
        .unwrap_or_default()
        .into_iter()
        .map(|i| args[i].clone())
        .collect();
    fetch_into(shard, db, own.clone(), &mut tmp, fx).await?;
    let mut ctx = ExecContext {
        db,
        now_ms: crate::shared::unix_ms(),
        replica: shard.store.replica.get(),
        notify_flags: shard.shared.notify_flags.load(Ordering::Relaxed),
        resp3,
        ..Default::default()
    };
    let named = shardis_keyspace::sort::pattern_keys(&mut tmp, &mut ctx, args);
    let named: Vec<Bytes> = named.into_iter().filter(|k| !own.contains(k)).collect();
    fetch_into(shard, db, named, &mut tmp, fx).await?;
    ctx.effects.clear();
    let reply = tmp.execute(&mut ctx, cmd, args);
    if cmd.is_write() && !reply.is_error() && own.len() > 1 {
        // Only the destination changes; the source and the pattern keys are read.
        let dst = own[own.len() - 1].clone();
        let e = {
            let mut c = ExecContext {
                db,
                now_ms: ctx.now_ms,
                replica: true,
                ..Default::default()
            };
            tmp.clone_entry(&mut c, &dst)
        };
        let owner = crate::route::shard_of(&dst, shard.shards());
        shard
            .call(owner, move |sh| {
                sh.key_written(db, &dst, client);
                let mut ks = sh.store.keyspace.borrow_mut();
                match e {
                    Some(e) => ks.put_entry(db, dst, e, crate::shared::unix_ms()),
                    None => {
                        ks.remove(db, &dst);
                    }
                }
            })
            .await?;
        let c = shard.counters();
        crate::shared::ShardCounters::add(&c.dirty, ctx.stats.dirty);
        fx.append(&mut ctx.effects);
    }
    if !ctx.events.is_empty() {
        // Produced on the temporary keyspace: published from here, after the
        // write-back, so a subscriber never hears of a change it cannot read.
        crate::pubsub::keyspace_events(shard, ctx.notify_flags, &mut ctx.events);
    }
    Ok(reply)
}

/// Runs `f` on every shard while every shard is held for one transaction:
/// FLUSHALL, FLUSHDB and SWAPDB. No reader sees it half done (every other
/// command waits for the shards), and the replication stream places `effect`
/// once, after everything each shard logged before it and before anything
/// after (the same Acquire/Release markers as a multi-shard command).
/// A caller that already holds every shard (a global EXEC) passes `held`,
/// its transaction's effects, where `effect` then goes.
pub async fn with_every_shard<R, F>(
    shard: &Rc<Shard>,
    held: Option<&mut Vec<Effect>>,
    effect: Effect,
    f: F,
) -> Result<Vec<R>, ShardGone>
where
    R: Send + 'static,
    F: Fn(&Rc<Shard>) -> R + Send + Sync + Clone + 'static,
{
    if let Some(held) = held {
        let out = shard.broadcast(f).await;
        if out.is_ok() {
            held.push(effect);
        }
        return out;
    }
    let n = shard.shards();
    let tx = shard.shared.next_tx();
    let marked = shard.logging();
    let (taken, all) = acquire(shard, tx, marked, true, whole_shards(ShardId::all(n))).await;
    let out = if all {
        shard.broadcast(f).await
    } else {
        Err(ShardGone)
    };
    if marked {
        let effects = if out.is_ok() {
            vec![effect]
        } else {
            Vec::new()
        };
        tx_effects(shard, tx, effects).await;
    } else if out.is_ok() {
        shard.log_effects(std::iter::once(effect));
    }
    release(shard, tx, marked, true, taken).await;
    out
}
