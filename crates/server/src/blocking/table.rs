//! The blocking state of one shard: clients blocked on the keys it owns,
//! keys made ready for them, and this executor's blocked clients. State
//! only, below the shard: the shard's publish step marks keys ready here,
//! and the module above (`blocking`) serves them.
//!
//! It may use the library crates, nothing of the server.

use bytes::Bytes;
use hashbrown::HashMap;
use shardis_base::{DbIndex, ShardId};
use shardis_commands::Command;
use shardis_keyspace::Effect;
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::task::Waker;

pub(super) const WAITING: u8 = 0;
pub(super) const BUSY: u8 = 1;
pub(super) const DONE: u8 = 2;

/// A blocked client as its keys' owner shards see it.
pub struct Waiter {
    pub(super) client: u64,
    pub(super) executor: ShardId,
    pub(super) state: AtomicU8,
    pub(super) db: DbIndex,
    pub(super) cmd: &'static Command,
    pub(super) args: Vec<Bytes>,
    /// The client speaks RESP3 (XREAD's reply is a map then).
    pub(super) resp3: bool,
}

/// A blocked client on its own executor: where its reply lands.
pub(super) struct Local {
    pub(super) reply: RefCell<Option<Reply>>,
    pub(super) waker: RefCell<Option<Waker>>,
    /// The same waiter the owner shards hold (claimed to force an unblock).
    pub(super) waiter: Arc<Waiter>,
    /// Close the connection after the reply (a forced unblock, as Redis does).
    pub(super) close: std::cell::Cell<bool>,
}

/// One shard's blocking state: waiters per key it owns, and the clients of
/// this executor that are blocked (on any shard's keys).
#[derive(Default)]
pub struct BlockTable {
    pub(super) waiters: HashMap<(DbIndex, Bytes), VecDeque<Arc<Waiter>>>,
    pub(super) ready: Vec<(DbIndex, Bytes)>,
    /// The serving task (started with the first waiter), parked while idle.
    pub(super) server: Option<Option<Waker>>,
    pub(super) local: HashMap<u64, Rc<Local>>,
    /// Clients of this executor in WAIT: set to [`super::UNBLOCK_TIMEOUT`] or
    /// [`super::UNBLOCK_ERROR`] by CLIENT UNBLOCK.
    pub(super) waits: HashMap<u64, Arc<AtomicU8>>,
}

impl BlockTable {
    /// Clients of this executor blocked right now.
    pub fn blocked_here(&self) -> usize {
        self.local.len() + self.waits.len()
    }

    /// True while a client is blocked on a key of this shard.
    pub fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }

    /// After a command: keys that received elements and that clients wait
    /// on are queued for serving (by a local task, after the current
    /// command). Returns the serving task's waker if it has work: wake it
    /// once the table's borrow ends.
    #[must_use]
    pub fn keys_ready(&mut self, ready: &mut Vec<(DbIndex, Bytes)>) -> Option<Waker> {
        if ready.is_empty() {
            return None;
        }
        if self.waiters.is_empty() {
            ready.clear();
            return None;
        }
        for k in ready.drain(..) {
            // A key already queued is served once (a write's effects may have
            // queued it just before).
            if self.waiters.contains_key(&k) && !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
        self.schedule()
    }

    /// Keys written by a command (its effects) that clients wait on are
    /// served again: a stream deleted or overwritten ends an XREADGROUP, as
    /// Redis's `signalDeletedKeyAsReady` does. Costs one emptiness check
    /// when nobody is blocked on this shard. Returns the waker as
    /// [`BlockTable::keys_ready`] does.
    #[must_use]
    pub fn effects_written(&mut self, effects: &[Effect]) -> Option<Waker> {
        if self.waiters.is_empty() {
            return None;
        }
        for e in effects {
            let Some(name) = e.args.first() else { continue };
            let Some(cmd) = shardis_commands::lookup(name) else {
                continue;
            };
            let argv: Vec<&[u8]> = e.args.iter().map(|a| a.as_ref()).collect();
            for i in cmd.key_indices(&argv).unwrap_or_default() {
                let k = (e.db, e.args[i].clone());
                if self.waiters.contains_key(&k) && !self.ready.contains(&k) {
                    self.ready.push(k);
                }
            }
        }
        self.schedule()
    }

    /// FLUSHALL/FLUSHDB/SWAPDB (and a full sync's flush) on this shard: every
    /// waited-on key of `dbs` (all when `None`) is served again. Returns the
    /// waker as [`BlockTable::keys_ready`] does.
    #[must_use]
    pub fn dbs_changed(&mut self, dbs: Option<&[DbIndex]>) -> Option<Waker> {
        let keys: Vec<(DbIndex, Bytes)> = self
            .waiters
            .keys()
            .filter(|(db, _)| dbs.is_none_or(|d| d.contains(db)))
            .cloned()
            .collect();
        for k in keys {
            if !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
        self.schedule()
    }

    /// The serving task's waker if there is work for it.
    pub(super) fn schedule(&mut self) -> Option<Waker> {
        if self.ready.is_empty() {
            return None;
        }
        self.server.as_mut().and_then(Option::take)
    }
}
