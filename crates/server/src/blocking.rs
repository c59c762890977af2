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

use crate::conn::{Conn, Route};
use crate::shard::Shard;
use bytes::Bytes;
use futures_lite::AsyncRead;
use hashbrown::HashMap;
use shardis_commands::{Command, CommandId};
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

const WAITING: u8 = 0;
const BUSY: u8 = 1;
const DONE: u8 = 2;

/// A blocked client as its keys' owner shards see it.
pub struct Waiter {
    client: u64,
    executor: usize,
    state: AtomicU8,
    db: usize,
    cmd: &'static Command,
    args: Vec<Bytes>,
    /// The client speaks RESP3 (XREAD's reply is a map then).
    resp3: bool,
}

/// A blocked client on its own executor: where its reply lands.
#[derive(Default)]
struct Local {
    reply: RefCell<Option<Reply>>,
    waker: RefCell<Option<Waker>>,
}

/// One shard's blocking state: waiters per key it owns, and the clients of
/// this executor that are blocked (on any shard's keys).
#[derive(Default)]
pub struct BlockTable {
    waiters: HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>,
    ready: Vec<(usize, Bytes)>,
    /// The serving task (started with the first waiter), parked while idle.
    server: Option<Option<Waker>>,
    local: HashMap<u64, Rc<Local>>,
}

impl BlockTable {
    /// Clients of this executor blocked right now.
    pub fn blocked_here(&self) -> usize {
        self.local.len()
    }
}

/// INFO clients `blocked_clients`: blocked clients over every core.
pub async fn blocked_clients(shard: &Rc<Shard>) -> usize {
    shard
        .broadcast(|s| s.blocking.borrow().blocked_here())
        .await
        .map(|v| v.iter().sum())
        .unwrap_or(0)
}

/// Called by the shard after a command: keys that received elements wake
/// their waiters (served by a local task, after the current command).
pub fn keys_ready(shard: &Shard, ready: &mut Vec<(usize, Bytes)>) {
    if ready.is_empty() {
        return;
    }
    let waker = {
        let mut t = shard.blocking.borrow_mut();
        if t.waiters.is_empty() {
            ready.clear();
            return;
        }
        for k in ready.drain(..) {
            if t.waiters.contains_key(&k) {
                t.ready.push(k);
            }
        }
        schedule(&mut t)
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// The serving task's waker if there is work for it (wake it after the
/// table's borrow ends).
fn schedule(t: &mut BlockTable) -> Option<Waker> {
    if t.ready.is_empty() {
        return None;
    }
    t.server.as_mut().and_then(Option::take)
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

/// XREAD's RESP3 reply is a map of key → entries; a multi-shard run (which
/// does not know the client's protocol) gives RESP2's `[key, entries]` pairs.
fn stream_map(cmd: &Command, reply: Reply) -> Reply {
    if !matches!(cmd.id, CommandId::Xread | CommandId::Xreadgroup) {
        return reply;
    }
    match reply {
        Reply::Array(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|p| match p {
                    Reply::Array(mut kv) if kv.len() == 2 => {
                        let v = kv.pop().expect("two");
                        (kv.pop().expect("two"), v)
                    }
                    other => (other, Reply::Nil),
                })
                .collect(),
        ),
        other => other,
    }
}

/// Rewrites XREAD's `$` ids to each stream's last id, asked of its owner.
async fn resolve_dollars(shard: &Rc<Shard>, db: usize, args: &mut [Bytes], at: usize, n: usize) {
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

async fn serve_key(shard: &Rc<Shard>, db: usize, key: Bytes) {
    let n = shard.shards();
    loop {
        if !shard.unlocked() {
            shard.wait_unlocked(db, std::slice::from_ref(&key)).await;
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
                        schedule(&mut t)
                    };
                    if let Some(w) = w {
                        w.wake();
                    }
                })
                .detach();
                return;
            }
        }
        let argv: Vec<&[u8]> = front.args.iter().map(|a| a.as_ref()).collect();
        let keys = front.cmd.key_indices(&argv).unwrap_or_default();
        let cross = matches!(front.cmd.id, CommandId::Blmove | CommandId::Brpoplpush)
            && keys
                .iter()
                .any(|&i| crate::route::shard_of(&front.args[i], n) != shard.id);
        let reply = if cross {
            crate::multi::run(shard, front.db, front.cmd, front.args.clone(), keys).await
        } else {
            let args = narrowed(&front, &key);
            shard.execute_as(front.resp3, front.db, front.cmd, &args)
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
        let gone = matches!(&reply, Reply::Error(e) if e.starts_with("NOGROUP"));
        if matches!(reply, Reply::NilArray) || (reply.is_error() && !gone) {
            // Nothing left (or the key changed type): the client keeps its
            // place at the front, as Redis keeps it blocked.
            front.state.store(WAITING, Ordering::Release);
            return;
        }
        front.state.store(DONE, Ordering::Release);
        if let Some(q) = shard
            .blocking
            .borrow_mut()
            .waiters
            .get_mut(&(db, key.clone()))
        {
            q.retain(|w| !Arc::ptr_eq(w, &front));
        }
        let client = front.client;
        let _ = shard
            .post(front.executor, move |sh| deliver(sh, client, reply))
            .await;
    }
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

/// True for the commands served here (XREAD/XREADGROUP block only with BLOCK).
pub fn handles(cmd: &Command) -> bool {
    matches!(
        cmd.id,
        CommandId::Blpop
            | CommandId::Brpop
            | CommandId::Blmove
            | CommandId::Brpoplpush
            | CommandId::Blmpop
            | CommandId::Bzpopmin
            | CommandId::Bzpopmax
            | CommandId::Bzmpop
            | CommandId::Xread
            | CommandId::Xreadgroup
    )
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
            let r = shard
                .call(s, move |sh| sh.execute_as(resp3, db, cmd, &a))
                .await
                .unwrap_or_else(|_| Reply::error(crate::errors::SHUTTING_DOWN));
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            (r, cmd.key_indices(&argv).unwrap_or_default())
        }
        Route::MultiShard(_, keys) => {
            let r = crate::multi::run(&shard, db, cmd, args.clone(), keys.clone()).await;
            (if resp3 { stream_map(cmd, r) } else { r }, keys)
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
    let id = conn.info.borrow().id;
    let local = Rc::new(Local::default());
    shard.blocking.borrow_mut().local.insert(id, local.clone());
    let waiter = Arc::new(Waiter {
        client: id,
        executor: shard.id,
        state: AtomicU8::new(WAITING),
        db,
        cmd,
        args: args.clone(),
        resp3,
    });
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
    let mut by_shard: std::collections::BTreeMap<usize, Vec<Bytes>> = Default::default();
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
                    schedule(&mut t)
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
