//! The databases of one shard and the key-level primitives every command
//! family builds on: lookups with lazy expiry, inserts, deletes, the TTL index,
//! SCAN, KEYS and RANDOMKEY.
//!
//! Each db is a fixed array of [`SEGMENTS`] small hash tables, selected by
//! middle bits of the key's hash. A key never changes segment, whatever the
//! segments' sizes do, so a SCAN cursor is simply "the next segment": every key
//! present for the whole scan is returned, through any growth or shrinking.
//! (The same fixed partition is what a fork-free snapshot walks.) The segment
//! array is allocated on a db's first insert, so empty dbs cost nothing.

use crate::DbIndex;
use crate::{notify, CompactBytes, Effect, Entry, ExecContext, Value};
use bytes::Bytes;
use hashbrown::hash_table::OccupiedEntry;
use hashbrown::{DefaultHashBuilder, HashTable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hash::BuildHasher;

/// log2 of the number of segments per db.
const SEGMENT_BITS: u32 = 12;
/// Segments per db.
pub const SEGMENTS: usize = 1 << SEGMENT_BITS;
/// Keys Redis samples per active-expire loop.
const EXPIRE_SAMPLE: usize = 20;
/// Redis repeats a db's expire loop while more than this percentage of the
/// sample was expired.
const ACCEPTABLE_STALE_PERCENT: usize = 10;

/// The segment a hash belongs to. Bits 40..52: hashbrown uses the top 7 bits
/// for its control bytes and the low bits for bucket positions, so neither
/// loses entropy inside a segment.
pub(crate) fn segment_of(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SEGMENTS - 1)
}

/// One segment: a hash table of pointers to boxed slots, as Redis's dict
/// holds pointers to its entries. Every segment of a db grows at the same
/// time (the keys spread evenly), so the tables spend much of their life
/// near half full; an 8-byte pointer per bucket keeps that slack, and the
/// copying on growth, small, and each slot is one exact-size allocation.
pub(crate) type Segment = HashTable<Box<Slot>>;

/// One key in a db.
#[derive(Debug)]
pub struct Slot {
    /// The key (an owned copy, inline when short; never a slice of a
    /// network buffer).
    pub key: CompactBytes,
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix ms; 0 for none.
    pub(crate) expire_at: u64,
    /// Last access: Redis's 24-bit `lru` word, an LRU clock or, under an LFU
    /// policy, minutes and a logarithmic counter (see [`crate::evict`]).
    pub(crate) lru: u32,
    /// The snapshot epoch in which the key was created or last captured; a
    /// running snapshot skips keys stamped with its own epoch (see
    /// [`crate::snapshot`]). Fits in padding: the slot does not grow.
    pub(crate) snap_epoch: u32,
}

impl Slot {
    /// The expiry, if any.
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }
}

/// The keys of one db that have a TTL, for sampling by the active expire
/// cycle: a dense vector (random picks) plus a position index (O(1) removal).
#[derive(Debug, Default)]
pub(crate) struct TtlIndex {
    pub(crate) keys: Vec<(CompactBytes, u64)>,
    pos: HashTable<u32>,
}

impl TtlIndex {
    fn insert(&mut self, hash: u64, key: CompactBytes) {
        let i = self.keys.len() as u32;
        self.keys.push((key, hash));
        let keys = &self.keys;
        self.pos.insert_unique(hash, i, |&j| keys[j as usize].1);
    }

    fn remove(&mut self, hash: u64, key: &[u8]) {
        let keys = &self.keys;
        let Ok(e) = self.pos.find_entry(hash, |&j| keys[j as usize].0 == *key) else {
            return;
        };
        let (i, _) = e.remove();
        let (i, last) = (i as usize, self.keys.len() - 1);
        self.keys.swap_remove(i);
        if i != last {
            let moved = self.keys[i].1;
            if let Some(p) = self.pos.find_mut(moved, |&j| j as usize == last) {
                *p = i as u32;
            }
        }
    }

    /// Number of keys with a TTL.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// One logical database.
#[derive(Debug, Default)]
pub struct Db {
    pub(crate) segments: Vec<Segment>,
    len: usize,
    pub(crate) ttl: TtlIndex,
    /// Running estimate of the average TTL (INFO keyspace), as Redis keeps it.
    avg_ttl: u64,
}

impl Db {
    /// Number of keys, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the db holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.segments.iter().flat_map(|t| t.iter().map(|s| &**s))
    }
}

/// How a lookup treats the key, after Redis's `lookupKey` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `lookupKeyRead`: counts a hit or miss, updates the access time.
    Read,
    /// `LOOKUP_NOTOUCH` reads (TYPE, EXISTS, TTL): counts, no touch.
    ReadNoTouch,
    /// OBJECT's `LOOKUP_NOTOUCH|LOOKUP_NONOTIFY`: counts, no touch, and a
    /// miss is no `keymiss` event.
    ReadNoTouchNoNotify,
    /// `lookupKeyWrite`: no hit/miss stats, updates the access time.
    Write,
}

/// What to do with a key whose TTL has passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expired {
    Delete,
    Hide,
    Keep,
}

/// A live key found by [`Keyspace::find_entry`], which can still be removed.
pub struct FoundEntry<'a> {
    entry: OccupiedEntry<'a, Box<Slot>>,
    ttl: &'a mut TtlIndex,
    len: &'a mut usize,
    hash: u64,
}

impl<'a> FoundEntry<'a> {
    /// The key's slot.
    pub fn slot(&self) -> &Slot {
        self.entry.get()
    }

    /// Removes the key and returns its slot.
    pub fn remove(self) -> Slot {
        let (slot, _) = self.entry.remove();
        *self.len -= 1;
        if slot.expire_at != 0 {
            self.ttl.remove(self.hash, &slot.key);
        }
        *slot
    }

    /// Keeps the key and gives mutable access to it.
    pub fn into_found(self) -> Found<'a> {
        Found {
            slot: self.entry.into_mut(),
            ttl: self.ttl,
            hash: self.hash,
        }
    }
}

/// A live key, mutable, with its TTL bookkeeping.
pub struct Found<'a> {
    /// The key's slot.
    pub slot: &'a mut Slot,
    ttl: &'a mut TtlIndex,
    hash: u64,
}

impl Found<'_> {
    /// Sets (`Some`) or clears (`None`) the key's absolute expiry.
    pub fn set_expire(&mut self, at: Option<u64>) {
        // 0 means "none"; an expiry at the epoch is as expired as 1 ms after it.
        let at = at.map_or(0, |t| t.max(1));
        match (self.slot.expire_at != 0, at != 0) {
            (false, true) => self.ttl.insert(self.hash, self.slot.key.clone()),
            (true, false) => self.ttl.remove(self.hash, &self.slot.key),
            _ => {}
        }
        self.slot.expire_at = at;
    }

    /// The value, mutably.
    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.slot.value
    }
}

/// One shard: its databases and the command entry points.
pub struct Keyspace {
    pub(crate) dbs: Vec<Db>,
    hasher: DefaultHashBuilder,
    pub(crate) rng: StdRng,
    /// Where the next active expire cycle starts.
    expire_next_db: usize,
    /// The point-in-time snapshot in progress, if any (see [`crate::snapshot`]).
    pub(crate) snap: Option<Box<crate::snapshot::Snapshot>>,
    /// The latest snapshot's epoch, stamped on every new key.
    pub(crate) snap_epoch: u32,
    /// maxmemory settings: how accesses are recorded, what eviction picks.
    pub(crate) eviction: crate::evict::EvictionConfig,
    /// Eviction candidates kept between calls (Redis's eviction pool).
    pub(crate) evict_pool: Vec<crate::evict::Candidate>,
    /// Where the next random eviction looks first.
    pub(crate) evict_next_db: usize,
    /// Keys that clients of a writable replica gave a TTL (Redis's
    /// `slaveKeysWithExpire`): the only keys a replica expires itself.
    replica_expires: hashbrown::HashSet<(DbIndex, Bytes)>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("dbs", &self.dbs.len())
            .field("keys", &self.dbs.iter().map(|d| d.len).sum::<usize>())
            .finish()
    }
}

fn del_effect(db: DbIndex, key: Bytes) -> Effect {
    Effect {
        db,
        args: vec![Bytes::from_static(b"DEL"), key],
    }
}

impl Keyspace {
    /// A keyspace with `databases` empty dbs.
    pub fn new(databases: usize) -> Keyspace {
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            hasher: DefaultHashBuilder::default(),
            rng: StdRng::from_entropy(),
            expire_next_db: 0,
            snap: None,
            snap_epoch: 0,
            eviction: Default::default(),
            evict_pool: Vec::new(),
            evict_next_db: 0,
            replica_expires: hashbrown::HashSet::new(),
        }
    }

    /// Number of dbs.
    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// Keys in `db`, including expired ones not yet reclaimed (as Redis counts).
    pub fn dbsize(&self, db: DbIndex) -> usize {
        self.dbs[db.get()].len
    }

    /// Empties `db`.
    pub fn flush_db(&mut self, db: DbIndex) {
        let old = std::mem::take(&mut self.dbs[db.get()]);
        // A running snapshot takes over the old table instead of copying it.
        self.snapshot_on_flush(db, old);
    }

    /// Empties every db.
    pub fn flush_all(&mut self) {
        for db in 0..self.dbs.len() {
            self.flush_db(DbIndex(db));
        }
        self.replica_expires.clear();
    }

    /// Exchanges every db (and the hasher their tables were built with) with
    /// `other`'s: a replica's `repl-diskless-load swapdb` installs the dataset
    /// it loaded aside. What was chosen from the old data (eviction
    /// candidates, keys a writable replica expires itself) is dropped; a
    /// snapshot in progress must have been aborted.
    pub fn swap_data(&mut self, other: &mut Keyspace) {
        debug_assert!(self.snap.is_none() && other.snap.is_none());
        std::mem::swap(&mut self.dbs, &mut other.dbs);
        std::mem::swap(&mut self.hasher, &mut other.hasher);
        self.evict_pool.clear();
        self.replica_expires.clear();
        self.expire_next_db = 0;
    }

    /// Exchanges the contents of dbs `a` and `b`.
    pub fn swap_db(&mut self, a: DbIndex, b: DbIndex) {
        let (a, b) = (a.get(), b.get());
        self.dbs.swap(a, b);
        self.snapshot_on_swap(a, b);
    }

    /// Per db: (keys, keys with an expiry, estimated average TTL in ms).
    pub fn keyspace_info(&self) -> Vec<(usize, usize, u64)> {
        self.dbs
            .iter()
            .map(|d| (d.len, d.ttl.len(), d.avg_ttl))
            .collect()
    }

    /// Hash of a key, used both for the segment and inside it.
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn expired_policy(&self, ctx: &ExecContext) -> Expired {
        if !ctx.replica {
            Expired::Delete
        } else if ctx.obey_master {
            Expired::Keep
        } else {
            Expired::Hide
        }
    }

    /// Looks `key` up in `db`. A key whose TTL passed counts as missing: on a
    /// primary it is deleted (effect `DEL key`, `expired_keys` += 1), on a
    /// replica only hidden.
    pub fn find_entry(
        &mut self,
        ctx: &mut ExecContext,
        db: DbIndex,
        key: &[u8],
        mode: Lookup,
    ) -> Option<FoundEntry<'_>> {
        let hash = self.hash(key);
        // The caller may change or delete the key: a running snapshot keeps
        // its old value first.
        self.snapshot_touch(db, hash, key);
        let policy = self.expired_policy(ctx);
        let d = &mut self.dbs[db.get()];
        let found = d
            .segments
            .get_mut(segment_of(hash))
            .and_then(|t| t.find_entry(hash, |s| s.key[..] == *key).ok());
        let count = mode != Lookup::Write;
        let notify_miss = count && mode != Lookup::ReadNoTouchNoNotify;
        let Some(mut entry) = found else {
            if count {
                ctx.stats.keyspace_misses += 1;
            }
            if notify_miss {
                ctx.notify_db(notify::KEY_MISS, "keymiss", db, key);
            }
            return None;
        };
        let exp = entry.get().expire_at;
        if exp != 0 && exp <= ctx.now_ms && policy != Expired::Keep {
            if policy == Expired::Delete {
                let (slot, _) = entry.remove();
                d.len -= 1;
                d.ttl.remove(hash, &slot.key);
                ctx.stats.expired_keys += 1;
                let gone = slot.key.to_bytes();
                if !ctx.discard_effects {
                    ctx.expired.push(gone.clone());
                }
                ctx.effects.push(del_effect(db, gone));
                ctx.notify_db(notify::EXPIRED, "expired", db, &slot.key);
            }
            if count {
                ctx.stats.keyspace_misses += 1;
            }
            if notify_miss {
                ctx.notify_db(notify::KEY_MISS, "keymiss", db, key);
            }
            return None;
        }
        if count {
            ctx.stats.keyspace_hits += 1;
        }
        if !matches!(mode, Lookup::ReadNoTouch | Lookup::ReadNoTouchNoNotify) {
            self.eviction
                .touch(&mut entry.get_mut().lru, ctx.now_ms, &mut self.rng);
        }
        Some(FoundEntry {
            entry,
            ttl: &mut d.ttl,
            len: &mut d.len,
            hash,
        })
    }

    /// [`Keyspace::find_entry`] for callers that keep the key.
    pub fn find(
        &mut self,
        ctx: &mut ExecContext,
        db: DbIndex,
        key: &[u8],
        mode: Lookup,
    ) -> Option<Found<'_>> {
        self.find_entry(ctx, db, key, mode)
            .map(FoundEntry::into_found)
    }

    /// A live key's value, with no side effects (no expiry, stats or access
    /// time): for multi-key commands that first looked each key up with
    /// [`Keyspace::find`] and then read several values at once.
    pub fn peek(&self, ctx: &ExecContext, db: DbIndex, key: &[u8]) -> Option<&Value> {
        let hash = self.hash(key);
        let slot = self.dbs[db.get()]
            .segments
            .get(segment_of(hash))?
            .find(hash, |s| s.key[..] == *key)?;
        let expired = slot.expire_at != 0 && slot.expire_at <= ctx.now_ms;
        (!expired || ctx.obey_master).then_some(&slot.value)
    }

    /// The key's slot as stored, expired or not, with no side effects (Redis's
    /// bare `dictFind`, as MEMORY USAGE uses).
    pub fn slot_raw(&self, db: DbIndex, key: &[u8]) -> Option<&Slot> {
        let hash = self.hash(key);
        self.dbs[db.get()]
            .segments
            .get(segment_of(hash))?
            .find(hash, |s| s.key[..] == *key)
            .map(|b| &**b)
    }

    /// Adds a key known to be absent (call after a failed lookup). Copies `key`.
    /// Records Redis's `new` event (`dbAdd`).
    pub fn insert_new(
        &mut self,
        ctx: &mut ExecContext,
        db: DbIndex,
        key: &[u8],
        value: Value,
        expire_at: Option<u64>,
    ) {
        let hash = self.hash(key);
        self.insert_hashed(db, hash, key, value, expire_at, ctx.now_ms);
        ctx.notify_db(notify::NEW, "new", db, key);
    }

    /// Inserts `key` after the caller deleted it (`existed`) or found it
    /// absent: Redis's `setKey`, whose `new` event is only for a key that did
    /// not exist.
    pub fn insert_replacing(
        &mut self,
        ctx: &mut ExecContext,
        db: DbIndex,
        key: &[u8],
        value: Value,
        expire_at: Option<u64>,
        existed: bool,
    ) {
        if existed {
            let hash = self.hash(key);
            self.insert_hashed(db, hash, key, value, expire_at, ctx.now_ms);
        } else {
            self.insert_new(ctx, db, key, value, expire_at);
        }
    }

    fn insert_hashed(
        &mut self,
        db: DbIndex,
        hash: u64,
        key: &[u8],
        value: Value,
        expire_at: Option<u64>,
        now_ms: u64,
    ) {
        let snap_epoch = self.snap_epoch;
        let lru = self.eviction.new_word(now_ms);
        let hasher = &self.hasher;
        // An owned copy: never a slice pinning the caller's network buffer.
        let key = CompactBytes::new(key);
        let d = &mut self.dbs[db.get()];
        if d.segments.is_empty() {
            d.segments.resize_with(SEGMENTS, HashTable::new);
        }
        let expire_at = expire_at.map_or(0, |t| t.max(1));
        if expire_at != 0 {
            d.ttl.insert(hash, key.clone());
        }
        d.segments[segment_of(hash)].insert_unique(
            hash,
            Box::new(Slot {
                key,
                value,
                expire_at,
                lru,
                // New since any running snapshot began: not part of it.
                snap_epoch,
            }),
            |s| hasher.hash_one(&s.key[..]),
        );
        d.len += 1;
    }

    /// Deletes a live key (expired ones are reclaimed as by any lookup and
    /// count as missing). Returns whether a live key was deleted.
    pub fn delete(&mut self, ctx: &mut ExecContext, db: DbIndex, key: &[u8]) -> bool {
        match self.find_entry(ctx, db, key, Lookup::Write) {
            Some(e) => {
                e.remove();
                true
            }
            None => false,
        }
    }

    /// Removes `key` from `db` whatever its state (even logically expired);
    /// true if it was there.
    pub fn remove(&mut self, db: DbIndex, key: &[u8]) -> bool {
        let hash = self.hash(key);
        self.snapshot_touch(db, hash, key);
        let d = &mut self.dbs[db.get()];
        let Some(t) = d.segments.get_mut(segment_of(hash)) else {
            return false;
        };
        match t.find_entry(hash, |s| s.key[..] == *key) {
            Ok(e) => {
                let (slot, _) = e.remove();
                d.len -= 1;
                if slot.expire_at != 0 {
                    d.ttl.remove(hash, &slot.key);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// An owned copy of a live key's value and expiry in `ctx.db`.
    pub fn clone_entry(&mut self, ctx: &mut ExecContext, key: &[u8]) -> Option<Entry> {
        let db = ctx.db;
        self.find_entry(ctx, db, key, Lookup::Write).map(|e| Entry {
            value: e.slot().value.clone(),
            expire_at_ms: e.slot().expire_at(),
        })
    }

    /// Stores `entry` under `key` in `db`, replacing whatever was there, as
    /// accessed at `now_ms` (Unix ms).
    pub fn put_entry(&mut self, db: DbIndex, key: Bytes, entry: Entry, now_ms: u64) {
        self.remove(db, &key);
        let hash = self.hash(&key);
        self.insert_hashed(db, hash, &key, entry.value, entry.expire_at_ms, now_ms);
    }

    /// Every live key in `ctx.db` matching `pattern`. Expired keys are skipped
    /// (and reclaimed, on a primary).
    pub fn keys(&mut self, ctx: &mut ExecContext, pattern: &[u8]) -> Vec<Bytes> {
        let db = ctx.db;
        let all = pattern == b"*";
        let now = ctx.now_ms;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for s in self.dbs[db.get()].iter() {
            if !all && !crate::glob::glob_match(pattern, &s.key, false) {
                continue;
            }
            if s.expire_at != 0 && s.expire_at <= now {
                expired.push(s.key.clone());
            } else {
                out.push(s.key.to_bytes());
            }
        }
        self.reclaim(ctx, db, &expired);
        out
    }

    /// Runs the lazy-expiry lookup on keys seen expired during a walk.
    fn reclaim(&mut self, ctx: &mut ExecContext, db: DbIndex, keys: &[CompactBytes]) {
        if self.expired_policy(ctx) == Expired::Delete {
            for k in keys {
                self.find_entry(ctx, db, k, Lookup::Write);
            }
        }
    }

    /// One SCAN step over `ctx.db`: `(next_cursor, keys)`, cursor 0 = done.
    /// The cursor is the next segment to visit, so it stays below
    /// [`SEGMENTS`] (far below 2^48), and whole segments are returned at once:
    /// a key present for the whole scan is returned at least once.
    pub fn scan(
        &mut self,
        ctx: &mut ExecContext,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        type_name: Option<&[u8]>,
    ) -> (u64, Vec<Bytes>) {
        let db = ctx.db;
        let now = ctx.now_ms;
        let d = &self.dbs[db.get()];
        if d.len == 0 || cursor >= SEGMENTS as u64 {
            return (0, Vec::new());
        }
        let count = count.max(1);
        let mut seg = cursor as usize;
        let mut visited = 0;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        // Like Redis, a lone `*` skips matching (it would not match an empty key).
        let pattern = pattern.filter(|p| *p != b"*");
        while seg < SEGMENTS && visited < count {
            for s in d.segments[seg].iter() {
                visited += 1;
                if let Some(p) = pattern {
                    if !crate::glob::glob_match(p, &s.key, false) {
                        continue;
                    }
                }
                if let Some(t) = type_name {
                    if !t.eq_ignore_ascii_case(s.value.type_name().as_bytes()) {
                        continue;
                    }
                }
                if s.expire_at != 0 && s.expire_at <= now {
                    expired.push(s.key.clone());
                } else {
                    out.push(s.key.to_bytes());
                }
            }
            seg += 1;
        }
        self.reclaim(ctx, db, &expired);
        let next = if seg >= SEGMENTS { 0 } else { seg as u64 };
        (next, out)
    }

    /// A random live key of `ctx.db`, or `None` if it is empty.
    pub fn random_key(&mut self, ctx: &mut ExecContext) -> Option<Bytes> {
        let db = ctx.db;
        // Redis gives up avoiding expired keys after 100 tries on a replica,
        // where it cannot delete them (all keys may be expired).
        for attempt in 0.. {
            let key = self.sample_key(db)?;
            let slot_expired = {
                let hash = self.hash(&key);
                self.dbs[db.get()].segments[segment_of(hash)]
                    .find(hash, |s| s.key[..] == key[..])
                    .is_some_and(|s| s.expire_at != 0 && s.expire_at <= ctx.now_ms)
            };
            if !slot_expired {
                return Some(key);
            }
            match self.expired_policy(ctx) {
                Expired::Delete => {
                    self.find_entry(ctx, db, &key, Lookup::Write);
                }
                _ if attempt >= 100 => return Some(key),
                _ => {}
            }
        }
        None
    }

    /// A random key of `db`, expired or not.
    pub(crate) fn sample_key(&mut self, db: DbIndex) -> Option<Bytes> {
        let d = &self.dbs[db.get()];
        if d.len == 0 {
            return None;
        }
        let start = self.rng.gen_range(0..SEGMENTS);
        let seg = (0..SEGMENTS)
            .map(|i| &d.segments[(start + i) % SEGMENTS])
            .find(|t| !t.is_empty())?;
        let n = self.rng.gen_range(0..seg.len());
        seg.iter().nth(n).map(|s| s.key.to_bytes())
    }

    /// The raw expiry of `key` (even if logically expired), if it has one.
    fn raw_expire_at(&self, db: DbIndex, key: &[u8]) -> Option<u64> {
        let hash = self.hash(key);
        let slot = self.dbs[db.get()]
            .segments
            .get(segment_of(hash))?
            .find(hash, |s| s.key[..] == *key)?;
        (slot.expire_at != 0).then_some(slot.expire_at)
    }

    /// On a writable replica: a client (not the master) just wrote `key`;
    /// if it now has a TTL, this replica must expire it itself, since no
    /// master will ever send its `DEL`.
    pub fn remember_replica_expire(&mut self, db: DbIndex, key: &[u8]) {
        if self.raw_expire_at(db, key).is_some() {
            self.replica_expires
                .insert((db, Bytes::copy_from_slice(key)));
        }
    }

    /// Redis's `expireSlaveKeys`: deletes the remembered keys whose TTL has
    /// passed (effect `DEL`, which a replica does not propagate) and forgets
    /// the ones that are gone or lost their TTL. Returns how many expired.
    pub fn expire_replica_keys(&mut self, ctx: &mut ExecContext) -> usize {
        if self.replica_expires.is_empty() {
            return 0;
        }
        let mut expired = Vec::new();
        let mut forget = Vec::new();
        for (db, key) in &self.replica_expires {
            match self.raw_expire_at(*db, key) {
                Some(at) if at <= ctx.now_ms => expired.push((*db, key.clone())),
                Some(_) => {}
                None => forget.push((*db, key.clone())),
            }
        }
        for k in &forget {
            self.replica_expires.remove(k);
        }
        for (db, key) in &expired {
            self.replica_expires.remove(&(*db, key.clone()));
            if self.remove(*db, key) {
                ctx.stats.expired_keys += 1;
                ctx.effects.push(del_effect(*db, key.clone()));
                ctx.notify_db(notify::EXPIRED, "expired", *db, key);
            }
        }
        expired.len()
    }

    /// Redis's active expire cycle: samples keys with a TTL in each db and
    /// deletes the expired ones (effect `DEL`), at most `budget` of them.
    /// Returns how many were deleted. Replicas never expire keys themselves.
    pub fn active_expire(&mut self, ctx: &mut ExecContext, budget: usize) -> usize {
        if ctx.replica {
            return 0;
        }
        let mut deleted = 0;
        let ndb = self.dbs.len();
        let start = self.expire_next_db;
        for i in 0..ndb {
            if deleted >= budget {
                break;
            }
            let next = (start + i) % ndb;
            self.expire_next_db = (next + 1) % ndb;
            let db = DbIndex(next);
            loop {
                let d = &self.dbs[db.get()];
                let n = d.ttl.len();
                if n == 0 || deleted >= budget {
                    break;
                }
                let sample = n.min(EXPIRE_SAMPLE);
                let mut victims = Vec::new();
                let mut ttl_sum = 0u64;
                let mut ttl_n = 0u64;
                for _ in 0..sample {
                    let (key, hash) = &d.ttl.keys[self.rng.gen_range(0..n)];
                    let at = d.segments[segment_of(*hash)]
                        .find(*hash, |s| s.key == *key)
                        .map_or(0, |s| s.expire_at);
                    if at != 0 && at <= ctx.now_ms {
                        if !victims.contains(key) {
                            victims.push(key.clone());
                        }
                    } else if at != 0 {
                        ttl_sum += at - ctx.now_ms;
                        ttl_n += 1;
                    }
                }
                if let Some(avg) = ttl_sum.checked_div(ttl_n) {
                    // Redis's smoothing: 2% of the new sample's average.
                    let d = &mut self.dbs[db.get()];
                    d.avg_ttl = if d.avg_ttl == 0 {
                        avg
                    } else {
                        d.avg_ttl / 50 * 49 + avg / 50
                    };
                }
                let expired = victims.len();
                for key in victims.into_iter().take(budget - deleted) {
                    if self.remove(db, &key) {
                        ctx.stats.expired_keys += 1;
                        ctx.effects.push(del_effect(db, key.to_bytes()));
                        ctx.notify_db(notify::EXPIRED, "expired", db, &key);
                        deleted += 1;
                    }
                }
                if expired * 100 <= sample * ACCEPTABLE_STALE_PERCENT {
                    break;
                }
            }
            if self.dbs[db.get()].ttl.len() == 0 {
                self.dbs[db.get()].avg_ttl = 0;
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn set(t: &mut T, k: &str) {
        t.ks.insert_new(
            &mut t.ctx,
            DbIndex(0),
            k.as_bytes(),
            Value::string(b"v"),
            None,
        );
    }

    #[test]
    fn lazy_expiry_deletes_and_propagates() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        t.ks.insert_new(
            &mut t.ctx,
            DbIndex(0),
            b"k",
            Value::string(b"v"),
            Some(now + 10),
        );
        assert_eq!(t.ks.dbs[0].ttl.len(), 1);
        assert!(t
            .ks
            .find(&mut t.ctx, DbIndex(0), b"k", Lookup::Read)
            .is_some());
        t.advance(10);
        assert_eq!(t.ks.dbsize(DbIndex(0)), 1, "not reclaimed until touched");
        assert!(t
            .ks
            .find(&mut t.ctx, DbIndex(0), b"k", Lookup::Read)
            .is_none());
        assert_eq!(t.ks.dbsize(DbIndex(0)), 0);
        assert_eq!(t.ks.dbs[0].ttl.len(), 0);
        assert_eq!(t.effects(), vec!["DEL k"]);
        assert_eq!(t.ctx.stats.expired_keys, 1);
        assert_eq!(t.ctx.stats.keyspace_hits, 1);
        assert_eq!(t.ctx.stats.keyspace_misses, 1);
    }

    #[test]
    fn replicas_hide_but_keep_expired_keys() {
        let mut t = T::new();
        t.ctx.replica = true;
        let now = t.ctx.now_ms;
        t.ks.insert_new(&mut t.ctx, DbIndex(0), b"k", Value::string(b"v"), Some(now));
        assert!(t
            .ks
            .find(&mut t.ctx, DbIndex(0), b"k", Lookup::Read)
            .is_none());
        assert_eq!(t.ks.dbsize(DbIndex(0)), 1);
        assert!(t.effects().is_empty());
        assert_eq!(t.ks.active_expire(&mut t.ctx, 100), 0);
        assert_eq!(t.ks.keys(&mut t.ctx, b"*"), Vec::<Bytes>::new());
        assert_eq!(t.ks.random_key(&mut t.ctx), Some(Bytes::from_static(b"k")));
        assert_eq!(t.ks.dbsize(DbIndex(0)), 1);
    }

    #[test]
    fn ttl_index_survives_swap_removes() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        for i in 0..100 {
            let k = format!("k{i}");
            t.ks.insert_new(
                &mut t.ctx,
                DbIndex(0),
                k.as_bytes(),
                Value::string(b"v"),
                Some(now + 1000 + i),
            );
        }
        for i in (0..100).step_by(3) {
            assert!(t.ks.remove(DbIndex(0), format!("k{i}").as_bytes()));
        }
        let d = &t.ks.dbs[0];
        assert_eq!(d.ttl.len(), 66);
        for (i, (k, h)) in d.ttl.keys.iter().enumerate() {
            let p = d
                .ttl
                .pos
                .find(*h, |&j| d.ttl.keys[j as usize].0 == *k)
                .unwrap();
            assert_eq!(*p as usize, i);
        }
    }

    #[test]
    fn active_expire_respects_budget_and_propagates() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        for i in 0..200 {
            let k = format!("k{i}");
            t.ks.insert_new(
                &mut t.ctx,
                DbIndex(3),
                k.as_bytes(),
                Value::string(b"v"),
                Some(now + 5),
            );
        }
        for i in 0..50 {
            let k = format!("p{i}");
            t.ks.insert_new(
                &mut t.ctx,
                DbIndex(3),
                k.as_bytes(),
                Value::string(b"v"),
                None,
            );
        }
        t.advance(5);
        assert_eq!(t.ks.active_expire(&mut t.ctx, 30), 30);
        assert_eq!(t.ctx.effects.len(), 30);
        assert!(t
            .ctx
            .effects
            .iter()
            .all(|e| e.db == DbIndex(3) && e.args[0] == "DEL"));
        let mut total = 30;
        while total < 200 {
            let n = t.ks.active_expire(&mut t.ctx, 1000);
            assert!(n > 0);
            total += n;
        }
        assert_eq!(t.ks.dbsize(DbIndex(3)), 50);
        assert_eq!(t.ctx.stats.expired_keys, 200);
        assert_eq!(t.ks.keyspace_info()[3], (50, 0, 0));
    }

    #[test]
    fn keys_and_random_key() {
        let mut t = T::new();
        for k in ["foo", "bar", "baz"] {
            set(&mut t, k);
        }
        let mut k = t.ks.keys(&mut t.ctx, b"ba*");
        k.sort();
        assert_eq!(k, vec!["bar", "baz"]);
        assert_eq!(t.ks.keys(&mut t.ctx, b"*").len(), 3);
        let r = t.ks.random_key(&mut t.ctx).unwrap();
        assert!(["foo", "bar", "baz"].contains(&&r[..].escape_ascii().to_string()[..]));
        t.ctx.db = DbIndex(1);
        assert_eq!(t.ks.random_key(&mut t.ctx), None);
    }

    #[test]
    fn random_key_skips_and_reclaims_expired() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        t.ks.insert_new(
            &mut t.ctx,
            DbIndex(0),
            b"dead",
            Value::string(b"v"),
            Some(now),
        );
        set(&mut t, "live");
        // Never returned. (How often "dead" is sampled, and so reclaimed,
        // depends on where the per-process hash seed puts the two keys: a
        // count of draws cannot promise it, see the next lines.)
        for _ in 0..20 {
            assert_eq!(t.ks.random_key(&mut t.ctx).unwrap(), "live");
        }
        // Alone, an expired key is sampled, deleted, and nothing is returned.
        t.ctx.db = DbIndex(1);
        t.ks.insert_new(
            &mut t.ctx,
            DbIndex(1),
            b"dead",
            Value::string(b"v"),
            Some(now),
        );
        assert_eq!(t.ks.random_key(&mut t.ctx), None);
        assert_eq!(t.ks.dbsize(DbIndex(1)), 0);
    }

    #[test]
    fn scan_small_db_in_one_call_and_filters() {
        let mut t = T::new();
        for k in ["a1", "a2", "b1"] {
            set(&mut t, k);
        }
        let (c, mut keys) = t.ks.scan(&mut t.ctx, 0, 10, None, None);
        keys.sort();
        assert_eq!(
            (c, keys),
            (
                0,
                vec![Bytes::from("a1"), Bytes::from("a2"), Bytes::from("b1")]
            )
        );
        let (_, keys) = t.ks.scan(&mut t.ctx, 0, 1000, Some(b"a*"), None);
        assert_eq!(keys.len(), 2);
        let (_, keys) = t.ks.scan(&mut t.ctx, 0, 1000, None, Some(b"STRING"));
        assert_eq!(keys.len(), 3);
        let (_, keys) = t.ks.scan(&mut t.ctx, 0, 1000, None, Some(b"list"));
        assert!(keys.is_empty());
        assert_eq!(t.ks.scan(&mut t.ctx, 99_999, 10, None, None), (0, vec![]));
    }

    #[test]
    fn swap_and_flush() {
        let mut t = T::new();
        set(&mut t, "a");
        t.ks.swap_db(DbIndex(0), DbIndex(5));
        assert_eq!((t.ks.dbsize(DbIndex(0)), t.ks.dbsize(DbIndex(5))), (0, 1));
        t.ks.flush_db(DbIndex(5));
        assert_eq!(t.ks.dbsize(DbIndex(5)), 0);
        set(&mut t, "a");
        t.ks.flush_all();
        assert_eq!(t.ks.dbsize(DbIndex(0)), 0);
    }

    #[test]
    fn entries_round_trip() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        t.ks.insert_new(
            &mut t.ctx,
            DbIndex(0),
            b"k",
            Value::string(b"v"),
            Some(now + 100),
        );
        let e = t.ks.clone_entry(&mut t.ctx, b"k").unwrap();
        assert_eq!(e.expire_at_ms, Some(now + 100));
        let mut other = Keyspace::new(16);
        other.put_entry(DbIndex(2), Bytes::from_static(b"k"), e.clone(), now);
        other.put_entry(DbIndex(2), Bytes::from_static(b"k"), e, now);
        assert_eq!(other.dbsize(DbIndex(2)), 1);
        assert_eq!(other.dbs[2].ttl.len(), 1);
        assert!(t.ks.clone_entry(&mut t.ctx, b"missing").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Redis's SCAN contract: every key present for the whole scan is
        /// returned, while other keys come and go and the tables resize.
        #[test]
        fn scan_returns_every_stable_key(
            stable in 0usize..3000,
            churn in proptest::collection::vec((0usize..5000, any::<bool>()), 0..400),
            count in 1usize..200,
        ) {
            let mut t = T::new();
            for i in 0..stable {
                set(&mut t, &format!("s{i}"));
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            let mut ops = churn.into_iter();
            loop {
                let (next, keys) = t.ks.scan(&mut t.ctx, cursor, count, None, None);
                seen.extend(keys);
                // Grow or shrink the db between steps (by up to 50 keys).
                for (n, add) in ops.by_ref().take(50) {
                    let k = format!("c{n}");
                    if add {
                        if t.ks.find(&mut t.ctx, DbIndex(0), k.as_bytes(), Lookup::Write).is_none() {
                            set(&mut t, &k);
                        }
                    } else {
                        t.ks.remove(DbIndex(0), k.as_bytes());
                    }
                }
                if next == 0 {
                    break;
                }
                prop_assert!(next < 1 << 48);
                cursor = next;
            }
            for i in 0..stable {
                let k = format!("s{i}");
                prop_assert!(seen.contains(k.as_bytes()), "missing {}", k);
            }
        }
    }
}
