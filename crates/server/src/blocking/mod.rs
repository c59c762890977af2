//! Blocking list and sorted-set pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP) and stream reads (XREAD/XREADGROUP … BLOCK)
//! across cores.
//!
//! ```text
//!  conn (core E) ──try once──► owner shard(s): NilArray = nothing to pop
//!       │ register Waiter (Arc) in each key's FIFO on its owner shard
//!       ▼
//!  LPUSH on core S ──ready_keys──► S serves waiters of that key in FIFO order:
//!       claim (CAS) → run the pop on S → reply job to core E → next waiter,
//!       until a pop finds nothing (the waiter stays at the front)
//! ```
//!
//! The keyspace never blocks: it replies NilArray when nothing is available.
//! Serving happens on the key's owner, in a local task spawned after the push
//! (so never inside another command or a transaction's locks), one waiter per
//! available element, in the order clients blocked (Redis's fairness). A client
//! blocked on keys of several shards holds one [`Waiter`] registered on each;
//! its atomic state makes sure only one shard serves it, and a timeout or a
//! disconnect claims it so no shard serves it afterwards.
//!
//! Streams fit the same scheme: XADD reports its key as ready, and serving
//! re-runs the read, which replies NilArray while nothing new is there (a
//! read serves every waiter that has something, not one per element). XREAD's
//! `$` is resolved to the stream's last id before the first try, so a later
//! run still means "after what was there when the client blocked".
//!
//! A client is also answered when its command can never succeed, as Redis
//! 7.0 answers it: every write's effects (and FLUSHALL/FLUSHDB/SWAPDB) mark
//! the waited-on keys they touch as ready, and serving finds an XREADGROUP
//! whose stream is gone (`UNBLOCKED …`) or whose group was destroyed
//! (`NOGROUP …`), or a BLMOVE whose source has an element but whose
//! destination has the wrong type (WRONGTYPE). CLIENT UNBLOCK claims a
//! waiter like a timeout does, on the executor of its connection.

mod table;

pub use table::{BlockTable, Waiter};
use table::{Local, BUSY, DONE, WAITING};

use crate::conn::{Conn, Route};
use crate::shard::{Admit, Run, Shard};
use bytes::Bytes;
use futures_lite::AsyncRead;
use shardis_base::ShardId;
use shardis_commands::{Command, CommandId};
use shardis_keyspace::DbIndex;
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// Answers every client blocked on this executor with `err` and closes each
/// after its reply. A client being served at this instant (claimed by a
/// shard) gets that reply instead: its pop happened before the change.
pub fn unblock_all_here(shard: &Shard, err: &'static str) -> usize {
    let locals: Vec<Rc<Local>> = shard.blocking.borrow().local.values().cloned().collect();
    let mut n = 0;
    for l in locals {
        if l.waiter
            .state
            .compare_exchange(WAITING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            *l.reply.borrow_mut() = Some(Reply::error(err));
            l.close.set(true);
            if let Some(w) = l.waker.borrow_mut().take() {
                w.wake();
            }
            n += 1;
        }
    }
    n
}

/// INFO clients `blocked_clients`: blocked clients over every core, plus the
/// clients a CLIENT PAUSE or FAILOVER holds (Redis blocks those too).
pub async fn blocked_clients(shard: &Rc<Shard>) -> usize {
    let paused = shard
        .shared
        .paused_clients
        .load(std::sync::atomic::Ordering::Relaxed);
    shard
        .broadcast(|s| s.blocking.borrow().blocked_here())
        .await
        .map(|v| v.iter().sum::<usize>())
        .unwrap_or(0)
        + paused
}

/// Starts this shard's serving task if it is not running yet.
fn ensure_server(shard: &Rc<Shard>) {
    let start = {
        let mut t = shard.blocking.borrow_mut();
        t.server.is_none().then(|| t.server = Some(None)).is_some()
    };
    if start {
        glommio::spawn_local(serve(shard.clone())).detach();
    }
}

/// The command a waiter runs on the owner of `key`: multi-key forms are
/// narrowed to that one key (the reply has the same shape).
fn narrowed(w: &Waiter, key: &Bytes) -> Vec<Bytes> {
    let zero = Bytes::from_static(b"0");
    match w.cmd.id {
        CommandId::Blpop | CommandId::Brpop | CommandId::Bzpopmin | CommandId::Bzpopmax => {
            vec![w.args[0].clone(), key.clone(), zero]
        }
        CommandId::Blmpop | CommandId::Bzmpop => {
            let numkeys: usize = std::str::from_utf8(&w.args[2])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut a = vec![
                w.args[0].clone(),
                zero,
                Bytes::from_static(b"1"),
                key.clone(),
            ];
            a.extend_from_slice(&w.args[(3 + numkeys).min(w.args.len())..]);
            a
        }
        CommandId::Xread | CommandId::Xreadgroup => match stream_block(w.cmd, &w.args) {
            // `… STREAMS key id` for this key alone.
            Some((_, at, n)) => match (0..n).find(|&k| w.args[at + k] == *key) {
                Some(k) => {
                    let mut a = w.args[..at].to_vec();
                    a.push(key.clone());
                    a.push(w.args[at + n + k].clone());
                    a
                }
                None => w.args.clone(),
            },
            None => w.args.clone(),
        },
        _ => w.args.clone(),
    }
}

/// XREAD/XREADGROUP's (BLOCK timeout, first key index, key count), if it
/// has a well-formed BLOCK.
fn stream_block(cmd: &Command, args: &[Bytes]) -> Option<(u64, usize, usize)> {
    let group = match cmd.id {
        CommandId::Xread => false,
        CommandId::Xreadgroup => true,
        _ => return None,
    };
    shardis_keyspace::stream::block_spec(args, group)
}

/// Rewrites XREAD's `$` ids to each stream's last id, asked of its owner.
async fn resolve_dollars(shard: &Rc<Shard>, db: DbIndex, args: &mut [Bytes], at: usize, n: usize) {
    for k in 0..n {
        if &args[at + n + k][..] != b"$" {
            continue;
        }
        let key = args[at + k].clone();
        let owner = crate::route::shard_of(&key, shard.shards());
        if let Ok(id) = shard
            .call(owner, move |sh| {
                sh.with_ctx(db, |ks, ctx| {
                    shardis_keyspace::stream::dollar_id(ks, ctx, &key)
                })
            })
            .await
        {
            args[at + n + k] = id;
        }
    }
}

async fn serve(shard: Rc<Shard>) {
    loop {
        let ready = std::future::poll_fn(|cx| {
            let mut t = shard.blocking.borrow_mut();
            if t.ready.is_empty() {
                t.server = Some(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(std::mem::take(&mut t.ready))
            }
        })
        .await;
        for (db, key) in ready {
            serve_key(&shard, db, key).await;
        }
    }
}

async fn serve_key(shard: &Rc<Shard>, db: DbIndex, key: Bytes) {
    let n = shard.shards();
    loop {
        if !shard.store.unlocked() {
            shard
                .store
                .wait_unlocked(db, std::slice::from_ref(&key))
                .await;
        }
        let front = {
            let mut t = shard.blocking.borrow_mut();
            let k = (db, key.clone());
            let Some(q) = t.waiters.get_mut(&k) else {
                return;
            };
            // Waiters served elsewhere or timed out are dropped lazily.
            while q
                .front()
                .is_some_and(|w| w.state.load(Ordering::Acquire) == DONE)
            {
                q.pop_front();
            }
            match q.front() {
                Some(w) => w.clone(),
                None => {
                    t.waiters.remove(&k);
                    return;
                }
            }
        };
        match front
            .state
            .compare_exchange(WAITING, BUSY, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            Err(DONE) => continue,
            Err(_) => {
                // Being served by another shard right now: look again shortly.
                let s = shard.clone();
                glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    let w = {
                        let mut t = s.blocking.borrow_mut();
                        t.ready.push((db, key));
                        t.schedule()
                    };
                    if let Some(w) = w {
                        w.wake();
                    }
                })
                .detach();
                return;
            }
        }
        // What `key` holds now: a deleted or overwritten stream ends an
        // XREADGROUP, and BLMOVE's WRONGTYPE is final only if its source is
        // a list (then the destination is what is wrong).
        let kind = shard.with_ctx(db, |ks, ctx| match ks.peek(ctx, db, &key) {
            None => Kind::Missing,
            Some(shardis_keyspace::Value::List(_)) => Kind::List,
            Some(shardis_keyspace::Value::Stream(_)) => Kind::Stream,
            Some(_) => Kind::Other,
        });
        if front.cmd.id == CommandId::Xreadgroup && kind != Kind::Stream {
            finish(
                shard,
                db,
                &key,
                &front,
                Reply::error(crate::errors::UNBLOCKED_STREAM_GONE),
            )
            .await;
            continue;
        }
        let argv: Vec<&[u8]> = front.args.iter().map(|a| a.as_ref()).collect();
        let keys = front.cmd.key_indices(&argv).unwrap_or_default();
        let cross = matches!(front.cmd.id, CommandId::Blmove | CommandId::Brpoplpush)
            && keys
                .iter()
                .any(|&i| crate::route::shard_of(&front.args[i], n) != shard.id);
        let reply = if cross {
            crate::multi::run(
                shard,
                front.db,
                front.cmd,
                front.args.clone(),
                keys,
                front.resp3,
                front.client,
            )
            .await
        } else {
            let args = narrowed(&front, &key);
            shard
                .run(
                    Run::new(front.db, front.cmd, &args)
                        .resp3(front.resp3)
                        .admit(Admit::Retry),
                )
                .reply
        };
        // XREADGROUP whose group was destroyed: Redis unblocks it with this.
        let reply = match reply {
            Reply::Error(e)
                if front.cmd.id == CommandId::Xreadgroup && e.starts_with("NOGROUP") =>
            {
                Reply::error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                )
            }
            r => r,
        };
        let final_error = match &reply {
            Reply::Error(e) if e.starts_with("NOGROUP") => true,
            Reply::Error(e) if e.starts_with("WRONGTYPE") => {
                matches!(front.cmd.id, CommandId::Blmove | CommandId::Brpoplpush)
                    && kind == Kind::List
            }
            _ => false,
        };
        if matches!(reply, Reply::NilArray) || (reply.is_error() && !final_error) {
            // Nothing left (or the key changed type): the client keeps its
            // place at the front, as Redis keeps it blocked.
            front.state.store(WAITING, Ordering::Release);
            return;
        }
        finish(shard, db, &key, &front, reply).await;
    }
}

/// What a waited-on key holds when its waiters are served.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Missing,
    List,
    Stream,
    Other,
}

/// Ends a claimed (BUSY) waiter with `reply`: drops it from `key`'s queue and
/// sends the reply to its executor.
async fn finish(shard: &Rc<Shard>, db: DbIndex, key: &Bytes, front: &Arc<Waiter>, reply: Reply) {
    front.state.store(DONE, Ordering::Release);
    if let Some(q) = shard
        .blocking
        .borrow_mut()
        .waiters
        .get_mut(&(db, key.clone()))
    {
        q.retain(|w| !Arc::ptr_eq(w, front));
    }
    let client = front.client;
    let _ = shard
        .post(front.executor, move |sh| deliver(sh, client, reply))
        .await;
}

/// FLUSHALL/FLUSHDB/SWAPDB (and a full sync's flush) on this shard: every
/// waited-on key of `dbs` (all when `None`) is served again.
pub fn dbs_changed(shard: &Shard, dbs: Option<&[DbIndex]>) {
    let waker = shard.blocking.borrow_mut().dbs_changed(dbs);
    if let Some(w) = waker {
        w.wake();
    }
}

/// CLIENT UNBLOCK … TIMEOUT on a client in WAIT.
pub const UNBLOCK_TIMEOUT: u8 = 1;
/// CLIENT UNBLOCK … ERROR on a client in WAIT.
pub const UNBLOCK_ERROR: u8 = 2;

/// Registers client `id` (of this executor) as blocked in WAIT; the flag
/// tells the wait loop it was unblocked, and how.
pub fn wait_started(shard: &Shard, id: u64) -> Arc<AtomicU8> {
    let flag = Arc::new(AtomicU8::new(0));
    shard.blocking.borrow_mut().waits.insert(id, flag.clone());
    flag
}

/// Client `id`'s WAIT is over.
pub fn wait_ended(shard: &Shard, id: u64) {
    shard.blocking.borrow_mut().waits.remove(&id);
}

/// CLIENT UNBLOCK on this executor: answers blocked client `id` as its
/// timeout would (`error` false) or with Redis's UNBLOCKED error. False if
/// `id` is not blocked here (or is being served right now).
pub fn unblock_client(shard: &Shard, id: u64, error: bool) -> bool {
    if let Some(flag) = shard.blocking.borrow().waits.get(&id) {
        let how = if error {
            UNBLOCK_ERROR
        } else {
            UNBLOCK_TIMEOUT
        };
        return flag
            .compare_exchange(0, how, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
    }
    let Some(l) = shard.blocking.borrow().local.get(&id).cloned() else {
        return false;
    };
    if l.waiter
        .state
        .compare_exchange(WAITING, DONE, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    *l.reply.borrow_mut() = Some(if error {
        Reply::error(crate::errors::UNBLOCKED_BY_CLIENT)
    } else {
        Reply::NilArray
    });
    if let Some(w) = l.waker.borrow_mut().take() {
        w.wake();
    }
    true
}

fn deliver(shard: &Rc<Shard>, client: u64, reply: Reply) {
    let local = shard.blocking.borrow().local.get(&client).cloned();
    if let Some(l) = local {
        *l.reply.borrow_mut() = Some(reply);
        let w = l.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// True for the commands served here: those Redis flags `blocking` (XREAD and
/// XREADGROUP block only with BLOCK).
pub fn handles(cmd: &Command) -> bool {
    cmd.has(shardis_commands::flags::BLOCKING)
}

/// Index of the timeout argument.
fn timeout_index(cmd: &Command, args: &[Bytes]) -> usize {
    match cmd.id {
        CommandId::Blmpop | CommandId::Bzmpop => 1,
        _ => args.len() - 1,
    }
}

/// Runs a blocking command for a connection: tries once on the owner(s) and,
/// if nothing was there, waits for a push, the timeout or a disconnect.
pub async fn run(
    conn: &mut Conn,
    cmd: &'static Command,
    mut args: Vec<Bytes>,
    route: Route,
) -> Reply {
    let shard = conn.shard.clone();
    let db = conn.db;
    let resp3 = conn.proto == shardis_protocol::Protocol::Resp3;
    let stream = stream_block(cmd, &args);
    if let (CommandId::Xread, Some((_, at, n))) = (cmd.id, stream) {
        if !conn.master_link {
            resolve_dollars(&shard, db, &mut args, at, n).await;
        }
    }
    let (reply, key_idx) = match route {
        Route::Keyed(s, _) => {
            let a = args.clone();
            let (r, usec) = shard
                .call(s, move |sh| {
                    let out = sh.run(Run::new(db, cmd, &a).resp3(resp3).admit(Admit::Retry));
                    (out.reply, out.usec)
                })
                .await
                .unwrap_or_else(|_| (Reply::error(crate::errors::SHUTTING_DOWN), 0));
            conn.blocking_usec = usec;
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            (r, cmd.key_indices(&argv).unwrap_or_default())
        }
        Route::MultiShard(_, keys) => {
            let start = std::time::Instant::now();
            let client = conn.info.borrow().id;
            let r =
                crate::multi::run(&shard, db, cmd, args.clone(), keys.clone(), resp3, client).await;
            conn.blocking_usec = start.elapsed().as_micros() as u64;
            (r, keys)
        }
        _ => return Reply::error("ERR not a blocking route"),
    };
    if !matches!(reply, Reply::NilArray) || conn.master_link || key_idx.is_empty() {
        return reply;
    }
    let ms = match stream {
        Some((ms, _, _)) => ms,
        // XREAD/XREADGROUP without BLOCK do not block.
        None if matches!(cmd.id, CommandId::Xread | CommandId::Xreadgroup) => return reply,
        None => match shardis_keyspace::list::parse_timeout(&args[timeout_index(cmd, &args)]) {
            Ok(ms) => ms,
            Err(_) => return reply,
        },
    };
    // Blocked, this client holds no write a pause must wait for.
    crate::limits::end_writes(conn);
    let id = conn.info.borrow().id;
    let waiter = Arc::new(Waiter {
        client: id,
        executor: shard.id,
        state: AtomicU8::new(WAITING),
        db,
        cmd,
        args: args.clone(),
        resp3,
    });
    let local = Rc::new(Local {
        reply: RefCell::new(None),
        waker: RefCell::new(None),
        waiter: waiter.clone(),
        close: std::cell::Cell::new(false),
    });
    shard.blocking.borrow_mut().local.insert(id, local.clone());
    // Source keys only: BLMOVE/BRPOPLPUSH wait on their source.
    let wait_keys: Vec<Bytes> = match cmd.id {
        CommandId::Blmove | CommandId::Brpoplpush => vec![args[1].clone()],
        _ => {
            let mut v: Vec<Bytes> = key_idx.iter().map(|&i| args[i].clone()).collect();
            let mut seen = hashbrown::HashSet::new();
            v.retain(|k| seen.insert(k.clone()));
            v
        }
    };
    let n = shard.shards();
    let mut by_shard: std::collections::BTreeMap<ShardId, Vec<Bytes>> = Default::default();
    for k in &wait_keys {
        by_shard
            .entry(crate::route::shard_of(k, n))
            .or_default()
            .push(k.clone());
    }
    for (s, keys) in &by_shard {
        let w = waiter.clone();
        let keys = keys.clone();
        // Registering also re-checks the keys: a push between the first try
        // and the registration would otherwise be missed.
        let _ = shard
            .post(*s, move |sh| {
                let waker = {
                    let mut t = sh.blocking.borrow_mut();
                    for k in keys {
                        let k = (db, k);
                        t.waiters.entry(k.clone()).or_default().push_back(w.clone());
                        t.ready.push(k);
                    }
                    t.schedule()
                };
                ensure_server(sh);
                if let Some(w) = waker {
                    w.wake();
                }
            })
            .await;
    }
    {
        let mut info = conn.info.borrow_mut();
        info.flags = "b".into();
        // CLIENT LIST shows the blocked command (`cmd=blpop`), as Redis does.
        info.set_cmd(cmd, &args);
    }
    let deadline = (ms > 0).then(|| std::time::Instant::now() + Duration::from_millis(ms));
    let mut timer =
        deadline.map(|d| Box::pin(glommio::timer::Timer::new(d - std::time::Instant::now())));
    let mut closed = false;
    let out = loop {
        enum Ev {
            Reply(Reply),
            Timeout,
            Closed,
        }
        let ev = std::future::poll_fn(|cx| {
            if let Some(r) = local.reply.borrow_mut().take() {
                return Poll::Ready(Ev::Reply(r));
            }
            *local.waker.borrow_mut() = Some(cx.waker().clone());
            if let Some(t) = timer.as_mut() {
                if std::future::Future::poll(t.as_mut(), cx).is_ready() {
                    return Poll::Ready(Ev::Timeout);
                }
            }
            if !closed {
                // Keep reading so a disconnect is noticed; pipelined requests
                // wait in the buffer until this command is answered.
                let len = conn.rbuf.len();
                conn.rbuf.resize(len + 4096, 0);
                let r = Pin::new(&mut conn.stream).poll_read(cx, &mut conn.rbuf[len..]);
                match r {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        conn.rbuf.truncate(len);
                        return Poll::Ready(Ev::Closed);
                    }
                    Poll::Ready(Ok(k)) => {
                        conn.rbuf.truncate(len + k);
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending => conn.rbuf.truncate(len),
                }
            }
            Poll::Pending
        })
        .await;
        match ev {
            Ev::Reply(r) => break r,
            Ev::Timeout | Ev::Closed => {
                if matches!(ev, Ev::Closed) {
                    closed = true;
                    conn.close_after_reply = true;
                }
                match waiter.state.compare_exchange(
                    WAITING,
                    DONE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break Reply::NilArray,
                    // Served: its reply is on the way. Busy on a shard: look
                    // again shortly (it may give up and leave it waiting).
                    Err(DONE) => timer = None,
                    Err(_) => {
                        timer = Some(Box::pin(glommio::timer::Timer::new(Duration::from_millis(
                            1,
                        ))))
                    }
                }
            }
        }
    };
    shard.blocking.borrow_mut().local.remove(&id);
    if local.close.get() {
        conn.close_after_reply = true;
    }
    crate::tx::refresh_flags(conn);
    for (s, keys) in by_shard {
        let _ = shard
            .post(s, move |sh| {
                let mut t = sh.blocking.borrow_mut();
                for k in keys {
                    let k = (db, k);
                    if let Some(q) = t.waiters.get_mut(&k) {
                        q.retain(|w| w.client != id);
                        if q.is_empty() {
                            t.waiters.remove(&k);
                        }
                    }
                }
            })
            .await;
    }
    out
}
