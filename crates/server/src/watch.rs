//! WATCH's per-shard key versions: a write bumps a key's version only if
//! someone watches it, so the hot path costs one `is_empty()` when nothing
//! is watched. The table is state only; `tx.rs` (above) watches and checks,
//! and the shard's publish step touches.
//!
//! It may use the library crates, nothing of the server.

use bytes::Bytes;
use hashbrown::HashMap;
use shardis_base::DbIndex;
use shardis_commands::CommandId;
use shardis_keyspace::Effect;

/// Per-shard versions of watched keys (empty when nothing is watched).
#[derive(Debug, Default)]
pub struct WatchTable {
    keys: HashMap<(DbIndex, Bytes), (u32, u64)>,
}

impl WatchTable {
    /// True if no key on this shard is watched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a watcher of `key` in `db`; returns the key's version now.
    pub fn watch(&mut self, db: DbIndex, key: Bytes) -> u64 {
        let e = self.keys.entry((db, key)).or_insert((0, 0));
        e.0 += 1;
        e.1
    }

    /// Drops one watcher of `key` in `db` (the entry goes with the last).
    pub fn unwatch(&mut self, db: DbIndex, key: Bytes) {
        let k = (db, key);
        if let Some(e) = self.keys.get_mut(&k) {
            e.0 -= 1;
            if e.0 == 0 {
                self.keys.remove(&k);
            }
        }
    }

    /// The version of a watched `key` (`u64::MAX` if nobody watches it).
    pub fn version(&self, db: DbIndex, key: &Bytes) -> u64 {
        self.keys
            .get(&(db, key.clone()))
            .map(|e| e.1)
            .unwrap_or(u64::MAX)
    }

    /// Marks `key` in `db` modified.
    pub fn touch(&mut self, db: DbIndex, key: &Bytes) {
        if let Some(e) = self.keys.get_mut(&(db, key.clone())) {
            e.1 += 1;
        }
    }

    /// Marks every watched key of `db` (every db for None) modified: FLUSHDB,
    /// FLUSHALL and SWAPDB touch whole databases.
    pub fn touch_db(&mut self, db: Option<DbIndex>) {
        for ((d, _), e) in self.keys.iter_mut() {
            if db.is_none_or(|x| x == *d) {
                e.1 += 1;
            }
        }
    }

    /// Marks the keys a propagated effect writes modified.
    pub fn touch_effect(&mut self, e: &Effect) {
        let Some(cmd) = e.args.first().and_then(|n| shardis_commands::lookup(n)) else {
            return;
        };
        match cmd.id {
            CommandId::Flushall => self.touch_db(None),
            CommandId::Flushdb => self.touch_db(Some(e.db)),
            CommandId::Swapdb => {
                for a in &e.args[1..] {
                    if let Some(d) = std::str::from_utf8(a).ok().and_then(|s| s.parse().ok()) {
                        self.touch_db(Some(DbIndex(d)));
                    }
                }
            }
            _ => {
                let argv: Vec<&[u8]> = e.args.iter().map(|a| a.as_ref()).collect();
                for i in cmd.key_indices(&argv).unwrap_or_default() {
                    self.touch(e.db, &e.args[i]);
                }
            }
        }
    }
}
