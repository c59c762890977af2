//! One shard's keyspace: the databases it owns and every command that runs on
//! them, with no I/O.
//!
//! Where it sits: each executor in the server owns one [`Keyspace`] (`!Sync`, never
//! shared). The server routes a command to the shard that owns its keys and calls
//! [`Keyspace::execute`] there; the reply goes back to the client and the
//! command's *effect* (what Redis would propagate, see [`Effect`]) is appended to
//! [`ExecContext::effects`] for the shard's write log. Commands whose keys live on
//! several shards are run by the server on a temporary keyspace assembled from
//! owned copies of the entries ([`Keyspace::clone_entry`], [`Keyspace::put_entry`]),
//! so every command here can assume all its keys are local.
//!
//! Time comes in as `now_ms` (Unix milliseconds), so tests control the clock.
//!
//! # Layout
//! - [`db`]: one logical database: a fixed array of hash-table segments (stable
//!   SCAN cursors, room for per-segment snapshots), the TTL index, lookups with
//!   lazy expiry, SCAN/KEYS/RANDOMKEY.
//! - [`value`]: the [`Value`] enum and the string representations.
//! - [`compact`]: the inline-when-short byte string keys and strings are
//!   stored as.
//! - [`string`]: the string commands (GET, SET, INCR…).
//! - [`bitops`]: the bitmap commands on strings (SETBIT, BITCOUNT, BITOP,
//!   BITFIELD…).
//! - [`hash`]: the hash commands (small hashes keep insertion order).
//! - [`lcs`]: LCS, the longest common subsequence of two strings.
//! - [`hll`]: HyperLogLog (PFADD, PFCOUNT, PFMERGE…) in Redis's exact
//!   sparse and dense string layouts.
//! - [`list`]: the list commands, blocking ones included (tried once here).
//! - [`set`]: the set commands (`intset` or `hashtable`).
//! - [`zset`]: the sorted-set commands, blocking ones included (tried once);
//!   `zskiplist` is their order-statistic skiplist.
//! - [`stream`]: the stream type and its entry commands (XADD, XRANGE, XREAD…);
//!   [`stream_group`]: consumer groups (XGROUP, XREADGROUP, XACK, XCLAIM, XINFO…).
//! - [`geo`]: the GEO commands (geohash-scored sorted sets, Redis's search).
//! - [`members`]: the member dict and SSCAN/ZSCAN walk sets and sorted sets share.
//! - [`generic`]: type-independent key commands (DEL, RENAME, COPY, OBJECT…).
//! - [`sort`]: SORT and SORT_RO (BY/GET patterns read this keyspace only).
//! - [`expire`]: EXPIRE/TTL/PERSIST and the active expire cycle.
//! - [`evict`]: the per-key access clock (LRU/LFU) and maxmemory eviction.
//! - [`glob`]: Redis's glob matcher.
//! - [`notify`]: keyspace notification classes and the events commands record.
//! - [`rdbconv`]: values to and from the RDB crate's plain form.
//! - [`digest`]: DEBUG DIGEST / DIGEST-VALUE, as Redis computes them.
//! - [`snapshot`]: fork-free point-in-time snapshots, produced in chunks.
//! - [`errors`]: every error text, once.
//! - `longdouble`: x87 80-bit arithmetic for INCRBYFLOAT, which Redis does in
//!   `long double`.
//!
//! It may depend on `shardis-base`, `shardis-commands`, `shardis-protocol` (replies) and
//! `shardis-rdb` (DUMP/RESTORE and snapshots), and no library crate depends on it: only the
//! server does. Sans-IO: time comes in with each call (`ExecContext::now_ms`).

pub mod bitops;
pub mod compact;
pub mod db;
pub mod digest;
pub mod errors;
pub mod evict;
pub mod expire;
pub mod generic;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod intset;
pub mod lcs;
pub mod list;
mod longdouble;
pub mod members;
pub mod notify;
pub mod pack;
pub mod quicklist;
pub mod rdbconv;
pub mod set;
pub mod snapshot;
pub mod sort;
pub mod stream;
pub mod stream_group;
pub mod stream_log;
pub mod string;
pub mod usage;
pub mod value;
pub mod zset;
mod zskiplist;

use bytes::Bytes;
use shardis_commands::{Command, CommandId};
use shardis_protocol::Reply;

pub use compact::CompactBytes;
pub use db::Keyspace;
pub use snapshot::SnapshotBusy;
pub use value::{StrValue, Value};

/// Per-call state the server passes in and reads back.
#[derive(Debug, Default)]
pub struct ExecContext {
    /// Selected db.
    pub db: DbIndex,
    /// Unix time in milliseconds.
    pub now_ms: u64,
    /// Replicas never expire keys themselves: expired keys are hidden on read,
    /// never deleted (and writes from the master see them as live).
    pub replica: bool,
    /// Set by [`Keyspace::execute`] for a replica's write (its master's
    /// stream): such a write sees keys the replica's clock thinks expired as
    /// live (Redis's expireIfNeeded) and is not held to the limits a client's
    /// command is (bit offsets, XADD/XTRIM's LIMIT).
    pub obey_master: bool,
    /// What to propagate, appended by writes.
    pub effects: Vec<Effect>,
    /// Nobody consumes this run's effects (no replica, AOF, WATCH, blocked
    /// client or tracking client): writes skip building them. Expiry and
    /// eviction DELs are still recorded; they are rare.
    pub discard_effects: bool,
    /// Counters for INFO.
    pub stats: ExecStats,
    /// `(db, key)` of every key that received elements (list pushes), for
    /// the server to wake clients blocked on them.
    pub ready_keys: Vec<(DbIndex, Bytes)>,
    /// The client speaks RESP3 (HELLO 3): a few replies change shape beyond
    /// what [`Reply`]'s encoding does (HRANDFIELD … WITHVALUES nests pairs).
    pub resp3: bool,
    /// `notify-keyspace-events` as [`notify::effective`] gives it (0: off).
    pub notify_flags: u32,
    /// Keyspace events recorded by the run, in order (only while
    /// `notify_flags` is non-zero).
    pub events: Vec<notify::Event>,
    /// Keys a command's lookups deleted because their TTL had passed (lazy
    /// expiry), while effects are built. They changed for no client, as in
    /// Redis's expireIfNeeded: a tracking client with NOLOOP hears of them
    /// even when its own command met them.
    pub expired: Vec<Bytes>,
}

/// Counters a command run adds to (Redis's `server.stat_*` and `server.dirty`).
#[derive(Debug, Default, Clone)]
pub struct ExecStats {
    /// Read lookups that found a key.
    pub keyspace_hits: u64,
    /// Read lookups that found nothing.
    pub keyspace_misses: u64,
    /// Keys deleted because their TTL passed.
    pub expired_keys: u64,
    /// Keys deleted by maxmemory eviction.
    pub evicted_keys: u64,
    /// Changes to the dataset (Redis's `server.dirty`).
    pub dirty: u64,
}

pub use shardis_base::{glob, DbIndex, Effect};

/// An owned copy of a key's value and expiry, for moving entries between shards.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix ms, if any.
    pub expire_at_ms: Option<u64>,
}

impl ExecContext {
    /// Appends an effect in the selected db.
    pub(crate) fn propagate(&mut self, args: Vec<Bytes>) {
        if !self.discard_effects {
            self.effects.push(Effect { db: self.db, args });
        }
    }

    /// Propagates the command exactly as it was sent.
    pub(crate) fn propagate_as_sent(&mut self, args: &[Bytes]) {
        if !self.discard_effects {
            self.effects.push(Effect {
                db: self.db,
                args: args.to_vec(),
            });
        }
    }
}

impl Keyspace {
    /// Runs a command whose keys all live in this keyspace. `args[0]` is the
    /// command name. The caller already checked arity and that the command exists.
    pub fn execute(
        &mut self,
        ctx: &mut ExecContext,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Reply {
        // A replica applies only its master's writes; those must see keys the
        // replica's clock thinks are expired as live (Redis's expireIfNeeded).
        ctx.obey_master = ctx.replica && cmd.is_write();
        let reply = self.dispatch(ctx, cmd, args);
        // A context may outlive the command (a transaction's): what follows
        // it is not the master's write.
        ctx.obey_master = false;
        reply
    }

    fn dispatch(&mut self, ctx: &mut ExecContext, cmd: &'static Command, args: &[Bytes]) -> Reply {
        use CommandId as C;
        match cmd.id {
            // strings
            C::Get => string::get(self, ctx, args),
            C::Set => string::set(self, ctx, args),
            C::Setnx => string::setnx(self, ctx, args),
            C::Setex => string::setex(self, ctx, args, false),
            C::Psetex => string::setex(self, ctx, args, true),
            C::Getset => string::getset(self, ctx, args),
            C::Getdel => string::getdel(self, ctx, args),
            C::Getex => string::getex(self, ctx, args),
            C::Mget => string::mget(self, ctx, args),
            C::Mset => string::mset(self, ctx, args, false),
            C::Msetnx => string::mset(self, ctx, args, true),
            C::Incr => string::incr_by(self, ctx, args, Some(1)),
            C::Decr => string::incr_by(self, ctx, args, Some(-1)),
            C::Incrby | C::Decrby => string::incr_by(self, ctx, args, None),
            C::Incrbyfloat => string::incrbyfloat(self, ctx, args),
            C::Append => string::append(self, ctx, args),
            C::Strlen => string::strlen(self, ctx, args),
            C::Getrange | C::Substr => string::getrange(self, ctx, args),
            C::Setrange => string::setrange(self, ctx, args),
            C::Lcs => lcs::lcs(self, ctx, args),
            // bitmaps
            C::Setbit => bitops::setbit(self, ctx, args),
            C::Getbit => bitops::getbit(self, ctx, args),
            C::Bitcount => bitops::bitcount(self, ctx, args),
            C::Bitpos => bitops::bitpos(self, ctx, args),
            C::Bitop => bitops::bitop(self, ctx, args),
            C::Bitfield => bitops::bitfield(self, ctx, args, false),
            C::BitfieldRo => bitops::bitfield(self, ctx, args, true),
            // hyperloglog
            C::Pfadd => hll::pfadd(self, ctx, args),
            C::Pfcount => hll::pfcount(self, ctx, args),
            C::Pfmerge => hll::pfmerge(self, ctx, args),
            C::Pfdebug => hll::pfdebug(self, ctx, args),
            // lists
            C::Lpush => list::push(self, ctx, args, true, false),
            C::Rpush => list::push(self, ctx, args, false, false),
            C::Lpushx => list::push(self, ctx, args, true, true),
            C::Rpushx => list::push(self, ctx, args, false, true),
            C::Lpop => list::pop(self, ctx, args, true),
            C::Rpop => list::pop(self, ctx, args, false),
            C::Llen => list::llen(self, ctx, args),
            C::Lrange => list::lrange(self, ctx, args),
            C::Lindex => list::lindex(self, ctx, args),
            C::Lset => list::lset(self, ctx, args),
            C::Lrem => list::lrem(self, ctx, args),
            C::Ltrim => list::ltrim(self, ctx, args),
            C::Linsert => list::linsert(self, ctx, args),
            C::Lpos => list::lpos(self, ctx, args),
            C::Lmove => list::lmove(self, ctx, args),
            C::Rpoplpush => list::rpoplpush(self, ctx, args),
            C::Lmpop => list::mpop(self, ctx, args, 1),
            C::Blpop => list::bpop(self, ctx, args, true),
            C::Brpop => list::bpop(self, ctx, args, false),
            C::Blmove => list::blmove(self, ctx, args),
            C::Brpoplpush => list::brpoplpush(self, ctx, args),
            C::Blmpop => list::mpop(self, ctx, args, 2),
            // hashes
            C::Hset => hash::hset(self, ctx, args, false),
            C::Hmset => hash::hset(self, ctx, args, true),
            C::Hsetnx => hash::hsetnx(self, ctx, args),
            C::Hget => hash::hget(self, ctx, args),
            C::Hmget => hash::hmget(self, ctx, args),
            C::Hdel => hash::hdel(self, ctx, args),
            C::Hlen => hash::hlen(self, ctx, args),
            C::Hstrlen => hash::hstrlen(self, ctx, args),
            C::Hexists => hash::hexists(self, ctx, args),
            C::Hkeys => hash::getall(self, ctx, args, hash::GetAll::Keys),
            C::Hvals => hash::getall(self, ctx, args, hash::GetAll::Values),
            C::Hgetall => hash::getall(self, ctx, args, hash::GetAll::Both),
            C::Hincrby => hash::hincrby(self, ctx, args),
            C::Hincrbyfloat => hash::hincrbyfloat(self, ctx, args),
            C::Hrandfield => hash::hrandfield(self, ctx, args),
            C::Hscan => hash::hscan(self, ctx, args),
            // sets
            C::Sadd => set::sadd(self, ctx, args),
            C::Srem => set::srem(self, ctx, args),
            C::Smembers => set::smembers(self, ctx, args),
            C::Sismember => set::sismember(self, ctx, args),
            C::Smismember => set::smismember(self, ctx, args),
            C::Scard => set::scard(self, ctx, args),
            C::Spop => set::spop(self, ctx, args),
            C::Srandmember => set::srandmember(self, ctx, args),
            C::Smove => set::smove(self, ctx, args),
            C::Sinter => set::sinter(self, ctx, args, false),
            C::Sinterstore => set::sinter(self, ctx, args, true),
            C::Sintercard => set::sintercard(self, ctx, args),
            C::Sunion => set::sunion_diff(self, ctx, args, false, false),
            C::Sunionstore => set::sunion_diff(self, ctx, args, false, true),
            C::Sdiff => set::sunion_diff(self, ctx, args, true, false),
            C::Sdiffstore => set::sunion_diff(self, ctx, args, true, true),
            C::Sscan => set::sscan(self, ctx, args),
            // sorted sets
            C::Zadd => zset::zadd(self, ctx, args, false),
            C::Zincrby => zset::zadd(self, ctx, args, true),
            C::Zrem => zset::zrem(self, ctx, args),
            C::Zcard => zset::zcard(self, ctx, args),
            C::Zscore => zset::zscore(self, ctx, args),
            C::Zmscore => zset::zmscore(self, ctx, args),
            C::Zcount => zset::zcount(self, ctx, args),
            C::Zlexcount => zset::zlexcount(self, ctx, args),
            C::Zrank => zset::zrank(self, ctx, args, false),
            C::Zrevrank => zset::zrank(self, ctx, args, true),
            C::Zrange => zset::zrange(self, ctx, args, false, None, None),
            C::Zrangestore => zset::zrange(self, ctx, args, true, None, None),
            C::Zrevrange => zset::zrange(
                self,
                ctx,
                args,
                false,
                Some(zset::RangeBy::Rank),
                Some(true),
            ),
            C::Zrangebyscore => zset::zrange(
                self,
                ctx,
                args,
                false,
                Some(zset::RangeBy::Score),
                Some(false),
            ),
            C::Zrevrangebyscore => zset::zrange(
                self,
                ctx,
                args,
                false,
                Some(zset::RangeBy::Score),
                Some(true),
            ),
            C::Zrangebylex => zset::zrange(
                self,
                ctx,
                args,
                false,
                Some(zset::RangeBy::Lex),
                Some(false),
            ),
            C::Zrevrangebylex => {
                zset::zrange(self, ctx, args, false, Some(zset::RangeBy::Lex), Some(true))
            }
            C::Zremrangebyrank => zset::zremrange(self, ctx, args, zset::RangeBy::Rank),
            C::Zremrangebyscore => zset::zremrange(self, ctx, args, zset::RangeBy::Score),
            C::Zremrangebylex => zset::zremrange(self, ctx, args, zset::RangeBy::Lex),
            C::Zpopmin => zset::zpop(self, ctx, args, false),
            C::Zpopmax => zset::zpop(self, ctx, args, true),
            C::Bzpopmin => zset::bzpop(self, ctx, args, false),
            C::Bzpopmax => zset::bzpop(self, ctx, args, true),
            C::Zmpop => zset::zmpop(self, ctx, args),
            C::Bzmpop => zset::bzmpop(self, ctx, args),
            C::Zunion => zset::zsetop_read(self, ctx, args, 0),
            C::Zinter => zset::zsetop_read(self, ctx, args, 1),
            C::Zdiff => zset::zsetop_read(self, ctx, args, 2),
            C::Zunionstore => zset::zsetop_store(self, ctx, args, 0),
            C::Zinterstore => zset::zsetop_store(self, ctx, args, 1),
            C::Zdiffstore => zset::zsetop_store(self, ctx, args, 2),
            C::Zintercard => zset::zintercard(self, ctx, args),
            C::Zrandmember => zset::zrandmember(self, ctx, args),
            C::Zscan => zset::zscan(self, ctx, args),
            // geo
            C::Geoadd => geo::geoadd(self, ctx, args),
            C::Geodist => geo::geodist(self, ctx, args),
            C::Geohash => geo::geohash(self, ctx, args),
            C::Geopos => geo::geopos(self, ctx, args),
            C::Georadius => geo::search_command(self, ctx, args, geo::Search::Radius { ro: false }),
            C::GeoradiusRo => {
                geo::search_command(self, ctx, args, geo::Search::Radius { ro: true })
            }
            C::Georadiusbymember => {
                geo::search_command(self, ctx, args, geo::Search::ByMember { ro: false })
            }
            C::GeoradiusbymemberRo => {
                geo::search_command(self, ctx, args, geo::Search::ByMember { ro: true })
            }
            C::Geosearch => geo::search_command(self, ctx, args, geo::Search::Search),
            C::Geosearchstore => geo::search_command(self, ctx, args, geo::Search::SearchStore),
            // streams
            C::Xadd => stream::xadd(self, ctx, args),
            C::Xlen => stream::xlen(self, ctx, args),
            C::Xrange => stream::xrange(self, ctx, args, false),
            C::Xrevrange => stream::xrange(self, ctx, args, true),
            C::Xdel => stream::xdel(self, ctx, args),
            C::Xtrim => stream::xtrim(self, ctx, args),
            C::Xsetid => stream::xsetid(self, ctx, args),
            C::Xread => stream::xread(self, ctx, args, false),
            C::Xreadgroup => stream::xread(self, ctx, args, true),
            C::Xgroup => stream_group::xgroup(self, ctx, args),
            C::Xack => stream_group::xack(self, ctx, args),
            C::Xpending => stream_group::xpending(self, ctx, args),
            C::Xclaim => stream_group::xclaim(self, ctx, args),
            C::Xautoclaim => stream_group::xautoclaim(self, ctx, args),
            C::Xinfo => stream_group::xinfo(self, ctx, args),
            // generic
            C::Del | C::Unlink => generic::del(self, ctx, args),
            C::Exists => generic::exists(self, ctx, args),
            C::Type => generic::type_(self, ctx, args),
            C::Touch => generic::touch(self, ctx, args),
            C::Rename => generic::rename(self, ctx, args, false),
            C::Renamenx => generic::rename(self, ctx, args, true),
            C::Copy => generic::copy(self, ctx, args),
            C::Move => generic::move_(self, ctx, args),
            C::Object => generic::object(self, ctx, args),
            C::Memory => generic::memory_usage(self, ctx, args),
            C::Dump => generic::dump(self, ctx, args),
            C::Sort => sort::sort(self, ctx, args, false),
            C::SortRo => sort::sort(self, ctx, args, true),
            // Outside cluster mode RESTORE-ASKING is RESTORE.
            C::Restore | C::RestoreAsking => generic::restore(self, ctx, args),
            C::Debug => digest::debug(self, ctx, args),
            // expiry
            C::Expire | C::Pexpire | C::Expireat | C::Pexpireat => {
                expire::expire(self, ctx, cmd, args)
            }
            C::Ttl | C::Pttl | C::Expiretime | C::Pexpiretime => expire::ttl(self, ctx, cmd, args),
            C::Persist => expire::persist(self, ctx, args),
            _ => Reply::Error(format!("ERR '{}' is not a keyspace command", cmd.name)),
        }
    }
}

/// Parses an i64 argument the way Redis's `getLongLongFromObject` does.
pub(crate) fn parse_i64(b: &[u8]) -> Result<i64, Reply> {
    shardis_protocol::decode::parse_int(b).ok_or_else(|| errors::err(errors::NOT_INTEGER))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the command tests: run a command line, compare replies.
    use super::*;

    /// A keyspace plus a context at a fixed clock.
    pub struct T {
        pub ks: Keyspace,
        pub ctx: ExecContext,
    }

    impl T {
        pub fn new() -> T {
            T {
                ks: Keyspace::new(16),
                ctx: ExecContext {
                    now_ms: 1_000_000_000_000,
                    ..Default::default()
                },
            }
        }

        /// Runs a whitespace-separated command line.
        pub fn run(&mut self, line: &str) -> Reply {
            let args: Vec<Bytes> = line
                .split_whitespace()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect();
            self.run_args(args)
        }

        pub fn run_args(&mut self, args: Vec<Bytes>) -> Reply {
            let cmd = shardis_commands::lookup(&args[0]).expect("known command");
            assert!(cmd.arity_ok(args.len()), "arity of {}", cmd.name);
            self.ks.execute(&mut self.ctx, cmd, &args)
        }

        /// Takes the effects recorded so far, as strings.
        pub fn effects(&mut self) -> Vec<String> {
            self.ctx
                .effects
                .drain(..)
                .map(|e| {
                    e.args
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        }

        pub fn advance(&mut self, ms: u64) {
            self.ctx.now_ms += ms;
        }
    }

    pub fn bulk(s: &str) -> Reply {
        Reply::bulk(s.as_bytes())
    }

    pub fn int(n: i64) -> Reply {
        Reply::Integer(n)
    }

    pub fn err(s: &str) -> Reply {
        Reply::Error(s.to_owned())
    }
}
