//! maxmemory support inside one shard: the per-key access clock and Redis's
//! sampled eviction (src/evict.c).
//!
//! Every key carries one `u32` access word, with the semantics of Redis's
//! 24-bit `robj.lru` field:
//! - under an LRU policy (and `noeviction`, `*-random`, `volatile-ttl`) it is
//!   the LRU clock of the last access: Unix seconds modulo 2^24;
//! - under an LFU policy it is `(minutes << 8) | counter`: the last decrement
//!   time in minutes modulo 2^16 and a logarithmic access counter (new keys
//!   start at [`LFU_INIT_VAL`]; the counter decays by one per
//!   `lfu-decay-time` minutes, as in Redis).
//!
//! Switching policies at runtime does not convert the words (nor does Redis);
//! the values adjust as keys are accessed.
//!
//! Eviction keeps, per shard, a pool of the best [`EVPOOL_SIZE`] candidates
//! seen so far. Each call samples `maxmemory-samples` keys per db (from all keys,
//! or only those with a TTL for `volatile-*`), merges them into the pool ordered
//! by idleness, and evicts the best one that still exists. The server decides
//! whether memory is over the limit; this module only picks and deletes keys.

use crate::db::{segment_of, Keyspace};
use crate::DbIndex;
use crate::{Effect, ExecContext};
use bytes::Bytes;
use rand::Rng;

/// Largest LRU clock value (Redis's `LRU_CLOCK_MAX`): the clock wraps every 194 days.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// A new key's LFU counter (Redis's `LFU_INIT_VAL`), so new keys are not
/// evicted before they had a chance to be accessed.
pub const LFU_INIT_VAL: u32 = 5;
/// Candidates kept between eviction calls (Redis's `EVPOOL_SIZE`).
const EVPOOL_SIZE: usize = 16;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Never evict: writes that need memory fail with OOM.
    #[default]
    NoEviction,
    /// Approximated LRU over all keys.
    AllKeysLru,
    /// Approximated LFU over all keys.
    AllKeysLfu,
    /// A random key.
    AllKeysRandom,
    /// Approximated LRU over keys with a TTL.
    VolatileLru,
    /// Approximated LFU over keys with a TTL.
    VolatileLfu,
    /// A random key with a TTL.
    VolatileRandom,
    /// The key with the nearest expiry (sampled).
    VolatileTtl,
}

impl Policy {
    /// Parses a `maxmemory-policy` value (case-insensitive, as CONFIG SET is).
    pub fn parse(name: &str) -> Option<Policy> {
        Some(match name.to_ascii_lowercase().as_str() {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    /// True for the LFU policies (the access word holds a counter).
    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// True for the policies that only evict keys with a TTL.
    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

/// The eviction settings a shard needs (`maxmemory-*`, `lfu-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionConfig {
    /// `maxmemory-policy`.
    pub policy: Policy,
    /// `maxmemory-samples`: keys sampled per db per eviction.
    pub samples: usize,
    /// `lfu-log-factor`: how many hits it takes to saturate the counter.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`: minutes per counter decrement (0: never decay).
    pub lfu_decay_time: u32,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            policy: Policy::NoEviction,
            samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

/// One eviction candidate: higher `idle` is evicted first.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    idle: u64,
    db: DbIndex,
    key: Bytes,
}

/// The LRU clock at `now_ms` (Redis's `LRU_CLOCK()`, 1 s resolution).
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & LRU_CLOCK_MAX as u64) as u32
}

/// Milliseconds since the access recorded in an LRU word
/// (Redis's `estimateObjectIdleTime`, wrap-around included).
pub fn idle_ms(lru: u32, now_ms: u64) -> u64 {
    let clock = lru_clock(now_ms);
    let lru = lru & LRU_CLOCK_MAX;
    if clock >= lru {
        (clock - lru) as u64 * 1000
    } else {
        (clock as u64 + (LRU_CLOCK_MAX - lru) as u64) * 1000
    }
}

/// Minutes modulo 2^16 (Redis's `LFUGetTimeInMinutes`).
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The LFU counter after decay (Redis's `LFUDecrAndReturn`); does not store it.
pub fn lfu_counter(word: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = word >> 8;
    let counter = word & 0xFF;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Probabilistic counter increment (Redis's `LFULogIncr`).
fn lfu_log_incr(counter: u32, factor: u32, rng: &mut impl Rng) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if rng.gen::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

impl EvictionConfig {
    /// The access word of a key created at `now_ms`.
    pub(crate) fn new_word(&self, now_ms: u64) -> u32 {
        if self.policy.lfu() {
            (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now_ms)
        }
    }

    /// Records an access (Redis's `lookupKey` without `LOOKUP_NOTOUCH`).
    pub(crate) fn touch(&self, word: &mut u32, now_ms: u64, rng: &mut impl Rng) {
        *word = if self.policy.lfu() {
            let c = lfu_counter(*word, now_ms, self.lfu_decay_time);
            let c = lfu_log_incr(c, self.lfu_log_factor, rng);
            (lfu_minutes(now_ms) << 8) | c
        } else {
            lru_clock(now_ms)
        };
    }

    /// The access word RESTORE … IDLETIME/FREQ sets (Redis's `objectSetLRUOrLFU`);
    /// `None` when the option does not apply to the current policy.
    pub(crate) fn restored_word(
        &self,
        idle_s: Option<i64>,
        freq: Option<i64>,
        now_ms: u64,
    ) -> Option<u32> {
        if self.policy.lfu() {
            freq.map(|f| (lfu_minutes(now_ms) << 8) | f.clamp(0, 255) as u32)
        } else {
            let idle = idle_s?;
            let clock = lru_clock(now_ms) as i64;
            let abs = clock - idle;
            // An underflowing clock gets a value half-way in the future, as Redis does.
            Some(if abs < 0 {
                ((clock + LRU_CLOCK_MAX as i64 / 2) % LRU_CLOCK_MAX as i64) as u32
            } else {
                abs as u32
            })
        }
    }
}

impl Keyspace {
    /// Applies new eviction settings (CONFIG SET). A policy change empties the
    /// candidate pool, whose scores were computed the old way.
    pub fn set_eviction_config(&mut self, config: EvictionConfig) {
        if config.policy != self.eviction.policy {
            self.evict_pool.clear();
        }
        self.eviction = config;
    }

    /// The current eviction settings.
    pub fn eviction_config(&self) -> EvictionConfig {
        self.eviction
    }

    /// How many keys the policy may evict here: every key, the keys with a
    /// TTL (`volatile-*`), or none (`noeviction`).
    pub fn evictable_keys(&self) -> usize {
        match self.eviction.policy {
            Policy::NoEviction => 0,
            p if p.volatile() => self.dbs.iter().map(|d| d.ttl.len()).sum(),
            _ => self.dbs.iter().map(|d| d.len()).sum(),
        }
    }

    /// Evicts one key chosen by the policy: deletes it, appends `DEL key` to
    /// the effects (replicas see evictions as deletes) and counts it in
    /// `evicted_keys`. Returns false when the policy finds nothing to evict
    /// (`noeviction`, no keys, or no keys with a TTL for `volatile-*`).
    /// Replicas never evict (`replica-ignore-maxmemory yes`): the caller checks.
    pub fn evict_one(&mut self, ctx: &mut ExecContext) -> bool {
        let policy = self.eviction.policy;
        let victim = match policy {
            Policy::NoEviction => None,
            Policy::AllKeysRandom | Policy::VolatileRandom => self.random_victim(policy.volatile()),
            _ => self.pool_victim(ctx.now_ms),
        };
        let Some((db, key)) = victim else {
            return false;
        };
        // Unconditional removal: an expired key is still memory to free.
        if !self.remove(db, &key) {
            return false;
        }
        ctx.stats.evicted_keys += 1;
        ctx.stats.dirty += 1;
        ctx.notify_db(crate::notify::EVICTED, "evicted", db, &key);
        ctx.effects.push(Effect {
            db,
            args: vec![Bytes::from_static(b"DEL"), key],
        });
        true
    }

    /// A random key (with a TTL if `volatile`), visiting dbs round-robin.
    fn random_victim(&mut self, volatile: bool) -> Option<(DbIndex, Bytes)> {
        let ndb = self.dbs.len();
        for _ in 0..ndb {
            self.evict_next_db = (self.evict_next_db + 1) % ndb;
            let db = DbIndex(self.evict_next_db);
            let key = if volatile {
                let keys = &self.dbs[db.get()].ttl.keys;
                (!keys.is_empty()).then(|| keys[self.rng.gen_range(0..keys.len())].0.to_bytes())
            } else {
                self.sample_key(db)
            };
            if let Some(k) = key {
                return Some((db, k));
            }
        }
        None
    }

    /// The best candidate of the pool after sampling every db (Redis's
    /// `evictionPoolPopulate` + pick from the end, skipping ghosts).
    fn pool_victim(&mut self, now_ms: u64) -> Option<(DbIndex, Bytes)> {
        loop {
            let mut total = 0;
            for db in 0..self.dbs.len() {
                total += self.populate_pool(DbIndex(db), now_ms);
            }
            if total == 0 {
                return None;
            }
            // Best is last; a pooled key may have been deleted since it was
            // sampled (a ghost): drop it and try the next.
            while let Some(c) = self.evict_pool.pop() {
                if self.contains_raw(c.db, &c.key) {
                    return Some((c.db, c.key));
                }
            }
        }
    }

    /// Samples `maxmemory-samples` keys of `db` into the pool; returns the number
    /// of keys the db could have offered (0: nothing to sample).
    fn populate_pool(&mut self, db: DbIndex, now_ms: u64) -> usize {
        let cfg = self.eviction;
        let volatile = cfg.policy.volatile();
        let available = if volatile {
            self.dbs[db.get()].ttl.len()
        } else {
            self.dbs[db.get()].len()
        };
        if available == 0 {
            return 0;
        }
        for _ in 0..cfg.samples.max(1) {
            let picked = if volatile {
                let keys = &self.dbs[db.get()].ttl.keys;
                let (k, h) = &keys[self.rng.gen_range(0..keys.len())];
                Some((k.to_bytes(), *h))
            } else {
                self.sample_key(db).map(|k| {
                    let h = self.hash(&k);
                    (k, h)
                })
            };
            let Some((key, hash)) = picked else { break };
            let Some(slot) =
                self.dbs[db.get()].segments[segment_of(hash)].find(hash, |s| s.key[..] == key[..])
            else {
                continue;
            };
            let idle = match cfg.policy {
                Policy::VolatileTtl => u64::MAX - slot.expire_at,
                p if p.lfu() => 255 - lfu_counter(slot.lru, now_ms, cfg.lfu_decay_time) as u64,
                _ => idle_ms(slot.lru, now_ms),
            };
            pool_insert(&mut self.evict_pool, Candidate { idle, db, key });
        }
        available
    }

    /// True if `key` is stored in `db`, expired or not, without side effects.
    fn contains_raw(&self, db: DbIndex, key: &[u8]) -> bool {
        let hash = self.hash(key);
        self.dbs[db.get()]
            .segments
            .get(segment_of(hash))
            .is_some_and(|t| t.find(hash, |s| s.key[..] == *key).is_some())
    }
}

/// Inserts a candidate into the pool, kept ascending by idleness and at most
/// [`EVPOOL_SIZE`] long: a full pool drops its least idle entry, and a
/// candidate less idle than everything in a full pool is not taken.
fn pool_insert(pool: &mut Vec<Candidate>, c: Candidate) {
    if pool.iter().any(|p| p.db == c.db && p.key == c.key) {
        return;
    }
    let at = pool.partition_point(|p| p.idle < c.idle);
    if pool.len() >= EVPOOL_SIZE {
        if at == 0 {
            return;
        }
        pool.remove(0);
        pool.insert(at - 1, c);
    } else {
        pool.insert(at, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::Value;

    fn with_policy(t: &mut T, policy: Policy) {
        t.ks.set_eviction_config(EvictionConfig {
            policy,
            ..Default::default()
        });
    }

    #[test]
    fn lru_clock_and_idle_wrap() {
        assert_eq!(idle_ms(lru_clock(10_000), 15_000), 5_000);
        // The clock wrapped between the access and now.
        let before = LRU_CLOCK_MAX - 2;
        let now_ms = 3 * 1000; // clock 3
        assert_eq!(idle_ms(before, now_ms), 5_000);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let cfg = EvictionConfig {
            policy: Policy::AllKeysLfu,
            ..Default::default()
        };
        let mut rng = rand::thread_rng();
        let now = 1_000_000_000_000;
        let mut w = cfg.new_word(now);
        assert_eq!(lfu_counter(w, now, 1), LFU_INIT_VAL);
        for _ in 0..100 {
            cfg.touch(&mut w, now, &mut rng);
        }
        let c = lfu_counter(w, now, 1);
        // With factor 10, 100 hits reach about 10 (Redis's table: 100 hits → 8..11).
        assert!((7..=14).contains(&c), "{c}");
        // One decrement per minute.
        assert_eq!(lfu_counter(w, now + 3 * 60_000, 1), c - 3);
        assert_eq!(lfu_counter(w, now + 3 * 60_000, 0), c);
        assert_eq!(lfu_counter(w, now + 1000 * 60_000, 1), 0);
    }

    #[test]
    fn pool_keeps_the_most_idle() {
        let mut pool = Vec::new();
        for i in 0..40u64 {
            pool_insert(
                &mut pool,
                Candidate {
                    idle: (i * 7) % 40,
                    db: DbIndex(0),
                    key: Bytes::from(format!("k{i}")),
                },
            );
        }
        assert_eq!(pool.len(), EVPOOL_SIZE);
        let idles: Vec<u64> = pool.iter().map(|c| c.idle).collect();
        assert_eq!(idles, (24..40).collect::<Vec<_>>());
    }

    #[test]
    fn noeviction_and_volatile_without_ttls_evict_nothing() {
        let mut t = T::new();
        t.run("SET a 1");
        assert!(!t.ks.evict_one(&mut t.ctx));
        with_policy(&mut t, Policy::VolatileLru);
        assert!(!t.ks.evict_one(&mut t.ctx));
        with_policy(&mut t, Policy::AllKeysRandom);
        assert!(t.ks.evict_one(&mut t.ctx));
        assert_eq!(t.effects(), vec!["SET a 1", "DEL a"]);
        assert_eq!(t.ctx.stats.evicted_keys, 1);
        assert!(!t.ks.evict_one(&mut t.ctx));
    }

    #[test]
    fn volatile_policies_only_take_keys_with_a_ttl() {
        for policy in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ] {
            let mut t = T::new();
            with_policy(&mut t, policy);
            for i in 0..50 {
                t.run(&format!("SET p{i} v"));
                t.run(&format!("SET v{i} v EX {}", 100 + i));
            }
            while t.ks.evict_one(&mut t.ctx) {}
            assert_eq!(t.ks.dbsize(DbIndex(0)), 50, "{policy:?}");
            assert_eq!(t.ctx.stats.evicted_keys, 50);
            assert!(t.run("EXISTS p0 p49") == int(2));
        }
    }

    #[test]
    fn volatile_ttl_takes_the_nearest_expiry_first() {
        let mut t = T::new();
        with_policy(&mut t, Policy::VolatileTtl);
        for i in 0..10 {
            t.run(&format!("SET k{i} v EX {}", 1000 - i));
        }
        // Sampling draws with replacement, so the nearest key is only certain
        // to be seen with many draws: 640 draws of 10 keys miss one with
        // probability 0.9^640 < 1e-29 (64 draws missed it 0.1% of the time).
        t.ks.set_eviction_config(EvictionConfig {
            policy: Policy::VolatileTtl,
            samples: 640,
            ..Default::default()
        });
        assert!(t.ks.evict_one(&mut t.ctx));
        assert_eq!(t.run("EXISTS k9"), int(0));
        assert!(t.ks.evict_one(&mut t.ctx));
        assert_eq!(t.run("EXISTS k8"), int(0));
    }

    #[test]
    fn allkeys_lru_spares_recently_used_keys() {
        let mut t = T::new();
        with_policy(&mut t, Policy::AllKeysLru);
        for i in 0..100 {
            t.ks.insert_new(
                &mut t.ctx,
                DbIndex(0),
                format!("cold{i}").as_bytes(),
                Value::string(b"v"),
                None,
            );
        }
        t.advance(10_000);
        for i in 0..10 {
            t.run(&format!("SET hot{i} v"));
        }
        for _ in 0..80 {
            assert!(t.ks.evict_one(&mut t.ctx));
        }
        for i in 0..10 {
            assert_eq!(t.run(&format!("EXISTS hot{i}")), int(1));
        }
    }

    #[test]
    fn allkeys_lfu_spares_frequently_used_keys() {
        let mut t = T::new();
        with_policy(&mut t, Policy::AllKeysLfu);
        for i in 0..100 {
            t.run(&format!("SET k{i} v"));
        }
        for _ in 0..200 {
            for i in 0..5 {
                t.run(&format!("GET k{i}"));
            }
        }
        for _ in 0..80 {
            assert!(t.ks.evict_one(&mut t.ctx));
        }
        for i in 0..5 {
            assert_eq!(t.run(&format!("EXISTS k{i}")), int(1));
        }
    }

    #[test]
    fn object_idletime_and_freq_follow_the_policy() {
        let mut t = T::new();
        t.run("SET k v");
        t.advance(3_000);
        assert_eq!(t.run("OBJECT IDLETIME k"), int(3));
        assert!(
            matches!(t.run("OBJECT FREQ k"), Reply::Error(e) if e.starts_with("ERR An LFU maxmemory policy is not selected"))
        );
        with_policy(&mut t, Policy::VolatileLfu);
        t.run("SET fresh v");
        assert_eq!(t.run("OBJECT FREQ fresh"), int(5));
        assert!(
            matches!(t.run("OBJECT IDLETIME fresh"), Reply::Error(e) if e.starts_with("ERR An LFU maxmemory policy is selected, idle time not tracked"))
        );
    }

    use shardis_protocol::Reply;
}
