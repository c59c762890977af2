//! One executor's data: its keyspace, the intent locks on its keys, its
//! command statistics, and how a command runs on them.
//!
//! This is the bottom of the server's layers. It may use the process-wide
//! [`Shared`] state and the library crates (keyspace, commands, protocol,
//! base, replication's [`TxId`]), and nothing else of the server. A run
//! hands its results (effects, keys made ready, keyspace events) to a
//! `publish` step its caller passes in: that is how WATCH, blocking,
//! tracking, pub/sub and the write log ([`crate::shard`], above) consume
//! them without this layer naming them.

use crate::shared::{ShardCounters, Shared};
use bytes::Bytes;
use hashbrown::HashMap;
use shardis_base::{DbIndex, ShardId};
use shardis_config::Config;
use shardis_keyspace::evict::{EvictionConfig, Policy};
use shardis_keyspace::{ExecContext, Keyspace};
use shardis_protocol::Reply;
use shardis_replication::TxId;
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};

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

/// How one run's context is set up ([`Store::execute`]).
#[derive(Debug, Clone, Copy)]
pub struct Exec {
    /// Selected database.
    pub db: DbIndex,
    /// Replies shaped for RESP3.
    pub resp3: bool,
    /// The command's wall-clock time (unix ms), for expiry.
    pub now_ms: u64,
    /// Build no effects: nothing consumes them.
    pub discard: bool,
}

/// The data owned by one executor.
pub struct Store {
    /// The shard this is (its mesh peer id).
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
    /// A transaction that holds the whole shard (snapshot barrier).
    global_lock: Cell<Option<TxId>>,
    /// Per-command stats, indexed by `CommandId`.
    pub cmdstats: RefCell<Vec<CommandStat>>,
    ctx: RefCell<ExecContext>,
    /// True while this server is a replica (keys are not expired here).
    pub replica: Cell<bool>,
    /// The `Shared::eviction_version` this keyspace's eviction settings reflect.
    pub eviction_version: Cell<u64>,
}

impl Store {
    /// Shard `id`'s empty store, with the configured databases and eviction.
    pub fn new(id: ShardId, shared: Arc<Shared>) -> Store {
        let (databases, eviction) = {
            let c = shared.config();
            (c.databases, eviction_config(&c))
        };
        let mut keyspace = Keyspace::new(databases);
        keyspace.set_eviction_config(eviction);
        Store {
            id,
            keyspace: RefCell::new(keyspace),
            staged: RefCell::new(None),
            locks: RefCell::new(HashMap::new()),
            lock_waiters: RefCell::new(Vec::new()),
            global_lock: Cell::new(None),
            cmdstats: RefCell::new(vec![CommandStat::default(); shardis_commands::meta::COUNT]),
            ctx: RefCell::new(ExecContext::default()),
            replica: Cell::new(false),
            eviction_version: Cell::new(shared.eviction_version.load(Ordering::Relaxed)),
            shared,
        }
    }

    /// This shard's counters.
    pub fn counters(&self) -> &ShardCounters {
        &self.shared.stats[self.id.get()]
    }

    /// Runs `f` on the keyspace with a fresh context set up as `exec` says,
    /// adds the run's counters to this shard's, then hands the context to
    /// `publish` for what the run left in it (effects, keys made ready,
    /// keyspace events). Returns `f`'s result and the run's `dirty` count
    /// (Redis's `server.dirty`).
    pub fn execute<R>(
        &self,
        exec: Exec,
        f: impl FnOnce(&mut Keyspace, &mut ExecContext) -> R,
        publish: impl FnOnce(&mut ExecContext),
    ) -> (R, u64) {
        self.refresh_eviction_config();
        let mut ctx = self.ctx.borrow_mut();
        ctx.db = exec.db;
        ctx.now_ms = exec.now_ms;
        ctx.discard_effects = exec.discard;
        ctx.replica = self.replica.get();
        ctx.resp3 = exec.resp3;
        ctx.notify_flags = self.shared.notify_flags.load(Ordering::Relaxed);
        let r = f(&mut self.keyspace.borrow_mut(), &mut ctx);
        let c = self.counters();
        let s = std::mem::take(&mut ctx.stats);
        ShardCounters::add(&c.keyspace_hits, s.keyspace_hits);
        ShardCounters::add(&c.keyspace_misses, s.keyspace_misses);
        ShardCounters::add(&c.expired_keys, s.expired_keys);
        ShardCounters::add(&c.evicted_keys, s.evicted_keys);
        ShardCounters::add(&c.dirty, s.dirty);
        publish(&mut ctx);
        (r, s.dirty)
    }

    /// Re-reads the eviction settings into the keyspace after a CONFIG SET
    /// (one relaxed load when nothing changed).
    pub fn refresh_eviction_config(&self) {
        let v = self.shared.eviction_version.load(Ordering::Relaxed);
        if v == self.eviction_version.get() {
            return;
        }
        self.eviction_version.set(v);
        let cfg = eviction_config(&self.shared.config());
        self.keyspace.borrow_mut().set_eviction_config(cfg);
    }

    /// Publishes how many keys this shard's policy may evict.
    pub fn publish_evictable(&self) -> u64 {
        let n = self.keyspace.borrow().evictable_keys() as u64;
        self.counters().evictable_keys.store(n, Ordering::Relaxed);
        n
    }

    // ---------------------------------------------------------------- stats

    /// Counts one call in commandstats under `stat`
    /// ([`shardis_commands::Command::stat_index`]).
    pub fn count_call(&self, stat: Option<usize>, reply: &Reply, usec: u64) {
        if let Some(i) = stat {
            let mut stats = self.cmdstats.borrow_mut();
            let s = &mut stats[i];
            s.calls += 1;
            s.usec += usec;
            if reply.is_error() {
                s.failed += 1;
            }
        }
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
    /// [`Store::unlock_all`].
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

    /// [`Store::lock_all`] at once, for a caller that knows the shard is
    /// unlocked: it saw [`Store::unlocked`] and nothing has run on this
    /// executor since (a script's first synchronous stretch).
    pub fn lock_all_now(&self, tx: TxId) {
        debug_assert!(self.unlocked());
        self.global_lock.set(Some(tx));
    }

    /// Releases [`Store::lock_all`].
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
}

/// The eviction settings of a config.
pub fn eviction_config(c: &Config) -> EvictionConfig {
    EvictionConfig {
        policy: Policy::parse(&c.maxmemory_policy).unwrap_or_default(),
        samples: c.maxmemory_samples.clamp(1, 1 << 16) as usize,
        lfu_log_factor: c.lfu_log_factor,
        lfu_decay_time: c.lfu_decay_time,
    }
}
