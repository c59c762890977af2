//! The command table: the one source of truth about every command.
//!
//! Where it sits: the server reads it to check arity (with Redis's exact error),
//! to find a command's keys (routing to shards), to decide what is a write
//! (read-only replicas, replication, `min-replicas-to-write`) and to answer
//! `COMMAND`; the ACL crate reads its categories and key specs. The keyspace
//! dispatches on [`CommandId`]. Nothing here executes anything.
//!
//! ```text
//!  redis-server 7.0.15 ──COMMAND, COMMAND DOCS──► gen/gen_table.py ──► generated.rs
//!                                                                     (meta::TABLE:
//!  implemented! { Get "get"; Config "config" ["get" …]; … }            every Redis
//!        │  name → row of meta::TABLE (checked at compile time)        command)
//!        ▼
//!  COMMANDS[CommandId] = Command { arity, flags, keys, meta, subcommands }
//! ```
//!
//! # Layout
//! - [`meta`]: the types of Redis's metadata (flags, ACL categories, key
//!   specs, tips, docs and argument trees), lookups in the full table, and
//!   Redis's key extraction (`COMMAND GETKEYS`, ACL key checks).
//! - `generated.rs`: the rows, made by `gen/gen_table.py` from a live
//!   redis-server 7.0.15 (never edited by hand; CI regenerates and diffs it).
//! - this file: which commands shardis implements ([`COMMANDS`]), their
//!   [`CommandId`]s and the derived routing facts.
//!
//! # Adding a command
//! Implement it (keyspace or server), then add one line to `implemented!`
//! below: `Name "name";`, or `Name "name" ["sub" …];` for a container with
//! the subcommands shardis implements; a multi-key command that runs as
//! per-shard pieces adds `split(Kind)` (see [`Split`]). Arity, flags
//! (`blocking` included), key positions, ACL categories and COMMAND
//! INFO/DOCS then come from Redis's own metadata; a name Redis 7.0.15 does
//! not have fails to compile. Commands and
//! subcommands not listed stay invisible: unknown to lookup and absent from
//! every COMMAND reply.
//!
//! It may depend on nothing of shardis's own: every other crate reads it. Sans-IO.

pub mod meta;
#[rustfmt::skip]
mod generated;

use hashbrown::HashMap;
use meta::{Begin, Find, Meta, TABLE};
use std::sync::OnceLock;

/// Command flags, as `COMMAND INFO` names them (plus shardis's own
/// [`flags::PUBSUB_CONTEXT`]).
pub mod flags {
    /// May modify the dataset.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads the dataset.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory: refused under `maxmemory` with noeviction.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/Sub.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed from scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a replica with stale data.
    pub const STALE: u32 = 1 << 8;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 9;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 10;
    /// Not allowed inside MULTI.
    pub const NO_MULTI: u32 = 1 << 11;
    /// Key positions depend on the arguments.
    pub const MOVABLEKEYS: u32 = 1 << 12;
    /// Allowed while in the RESP2 subscribed state. Not a Redis table flag:
    /// Redis hard-codes the list in processCommand; see [`crate::PUBSUB_CONTEXT`].
    pub const PUBSUB_CONTEXT: u32 = 1 << 13;
    /// A module command.
    pub const MODULE: u32 = 1 << 14;
    /// Not shown to MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 15;
    /// Not logged in SLOWLOG.
    pub const SKIP_SLOWLOG: u32 = 1 << 16;
    /// Cluster ASKING.
    pub const ASKING: u32 = 1 << 17;
    /// May run without any key.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 18;
    /// Refused during an async load.
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 20;

    /// `(flag, name)` pairs in the order `COMMAND INFO` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (MODULE, "module"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

use flags::*;

/// The commands a RESP2 client may send while subscribed. Redis hard-codes
/// this list in processCommand rather than flagging it in its table.
pub const PUBSUB_CONTEXT: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Where a command's keys are in its arguments (argv\[0\] is the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No keys.
    None,
    /// `first..=last` stepping by `step`; a negative `last` counts from the end
    /// (-1 is the last argument).
    Range {
        /// Index of the first key.
        first: i32,
        /// Index of the last key (negative: from the end).
        last: i32,
        /// Distance between keys.
        step: i32,
    },
    /// `[dest] numkeys key…`: `numkeys` is at `numkeys_at`; when `dest_at` is
    /// set that argument is a key too (ZUNIONSTORE, ZDIFFSTORE).
    NumKeys {
        /// Index of the numkeys argument.
        numkeys_at: usize,
        /// Index of a destination key, if any.
        dest_at: Option<usize>,
    },
    /// `… STREAMS key… id…` (XREAD, XREADGROUP).
    Streams,
    /// `OBJECT <sub> key`, `MEMORY USAGE key`: the key is argument 2 if present.
    Subcommand,
    /// No simpler rule fits (keys after a keyword such as STORE, specs only
    /// the command completes): every key Redis's specs can find.
    Specs,
}

/// One implemented command's table entry.
#[derive(Debug)]
pub struct Command {
    /// Lower-case name.
    pub name: &'static str,
    /// Identity for dispatch.
    pub id: CommandId,
    /// Redis arity: positive is exact, negative is a minimum.
    pub arity: i32,
    /// Bitwise OR of [`flags`].
    pub flags: u32,
    /// Key positions, for routing (derived from Redis's key specs).
    pub keys: KeySpec,
    /// Redis's metadata for it (COMMAND INFO, COMMAND DOCS, ACL).
    pub meta: &'static Meta,
    /// Index of [`Command::meta`] in [`meta::TABLE`].
    pub meta_index: usize,
    /// The subcommands shardis implements (lower case), for a container.
    pub subcommands: &'static [&'static str],
    /// How it runs when its keys span several shards.
    pub split: Split,
}

/// How a command whose keys span several shards runs (shardis's own column;
/// Redis has one keyspace). Split commands run as one sub-command per shard
/// with that shard's keys and their replies are merged; the others gather
/// their keys into one temporary keyspace and run there unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Gather, run unchanged, write back.
    No,
    /// Per shard; the replies' values go back in key order (MGET).
    Values,
    /// Per shard with each key's value; replies `OK` (MSET).
    Pairs,
    /// As [`Split::Pairs`] if no key exists anywhere, else nothing (MSETNX).
    PairsIfAbsent,
    /// Per shard; the integer replies are summed (DEL, EXISTS, …).
    Count,
}

impl Command {
    /// True if `n` arguments (including the name) satisfy the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        let n = n as i32;
        if self.arity >= 0 {
            n == self.arity
        } else {
            n >= -self.arity
        }
    }

    /// True if the command has `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// True if the command may modify the dataset.
    pub fn is_write(&self) -> bool {
        self.has(WRITE)
    }

    /// The first/last/step triple COMMAND INFO reports.
    pub fn legacy_key_range(&self) -> (i64, i64, i64) {
        let m = self.meta;
        (m.first_key as i64, m.last_key as i64, m.step as i64)
    }

    /// Indices of the keys in `args` (args\[0\] is the name). `Err` carries the
    /// error Redis gives when the key arguments are malformed (e.g. a bad numkeys);
    /// an `Ok` is always in bounds.
    pub fn key_indices(&self, args: &[&[u8]]) -> Result<Vec<usize>, KeyError> {
        let n = args.len();
        match self.keys {
            KeySpec::None => Ok(Vec::new()),
            KeySpec::Range { first, last, step } => {
                let first = first as usize;
                if first >= n {
                    return Ok(Vec::new());
                }
                let last = if last < 0 {
                    n as i32 + last
                } else {
                    last.min(n as i32 - 1)
                };
                let mut v = Vec::new();
                let mut i = first as i32;
                while i <= last {
                    v.push(i as usize);
                    i += step;
                }
                Ok(v)
            }
            KeySpec::NumKeys {
                numkeys_at,
                dest_at,
            } => {
                let raw = args.get(numkeys_at).ok_or(KeyError::Syntax)?;
                let numkeys = parse_i64(raw).ok_or(KeyError::NumKeysNotInteger)?;
                if numkeys <= 0 {
                    return Err(KeyError::NumKeysNotPositive);
                }
                let numkeys = numkeys as usize;
                if numkeys > n.saturating_sub(numkeys_at + 1) {
                    return Err(KeyError::NumKeysTooLarge);
                }
                let mut v: Vec<usize> = dest_at.into_iter().collect();
                v.extend(numkeys_at + 1..numkeys_at + 1 + numkeys);
                Ok(v)
            }
            KeySpec::Streams => {
                let pos = args
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(b"streams"))
                    .ok_or(KeyError::Syntax)?;
                let rest = n - pos - 1;
                if rest == 0 || !rest.is_multiple_of(2) {
                    return Err(KeyError::UnbalancedStreams);
                }
                Ok((pos + 1..pos + 1 + rest / 2).collect())
            }
            KeySpec::Subcommand => Ok(if n >= 3 { vec![2] } else { Vec::new() }),
            KeySpec::Specs => {
                // The command's own key function where its specs are
                // incomplete (SORT's STORE), else what the specs can find.
                let mut keys = meta::keys(self.meta, args);
                if keys.is_empty() {
                    keys = meta::keys_partial(self.meta, args);
                }
                let mut v: Vec<usize> = keys.into_iter().map(|(i, _)| i).collect();
                v.sort_unstable();
                v.dedup();
                Ok(v)
            }
        }
    }
}

/// Why key positions could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// `syntax error`.
    Syntax,
    /// numkeys is not an integer.
    NumKeysNotInteger,
    /// numkeys ≤ 0.
    NumKeysNotPositive,
    /// numkeys exceeds the remaining arguments.
    NumKeysTooLarge,
    /// XREAD's STREAMS list has an odd length.
    UnbalancedStreams,
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

macro_rules! implemented {
    ($( $id:ident $name:literal $([$($sub:literal)*])? $(split($split:ident))? ; )*) => {
        /// Every command shardis implements, one variant each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum CommandId { $($id,)* }

        /// The implemented commands, indexed by [`CommandId`].
        pub static COMMANDS: &[Command] = &[
            $(Command::new(CommandId::$id, $name, &[$($($sub),*)?])
                $(.with_split(Split::$split))?,)*
        ];
    };
}

implemented! {
    // connection
    Ping "ping";
    Echo "echo";
    Quit "quit";
    Hello "hello";
    Auth "auth";
    Select "select";
    Reset "reset";
    Readonly "readonly";
    Readwrite "readwrite";
    // Outside cluster mode Redis answers every cluster command with one error.
    Asking "asking";
    Cluster "cluster" ["addslots" "addslotsrange" "bumpepoch" "count-failure-reports" "countkeysinslot" "delslots" "delslotsrange" "failover" "flushslots" "forget" "getkeysinslot" "help" "info" "keyslot" "links" "meet" "myid" "nodes" "replicas" "replicate" "reset" "saveconfig" "set-config-epoch" "setslot" "shards" "slaves" "slots"];
    Client "client" ["id" "getname" "setname" "info" "list" "kill" "pause" "unpause" "no-evict" "unblock" "reply" "help" "tracking" "caching" "getredir" "trackinginfo"];
    CommandCmd "command" ["count" "docs" "getkeys" "getkeysandflags" "help" "info" "list"];
    // server
    Info "info";
    Config "config" ["get" "set" "resetstat" "rewrite" "help"];
    Dbsize "dbsize";
    Flushdb "flushdb";
    Flushall "flushall";
    Swapdb "swapdb";
    Time "time";
    Lolwut "lolwut";
    Debug "debug";
    Module "module" ["help" "list" "load" "loadex" "unload"];
    Slowlog "slowlog" ["get" "len" "reset" "help"];
    Latency "latency" ["latest" "history" "graph" "reset" "doctor" "histogram" "help"];
    Monitor "monitor";
    Shutdown "shutdown";
    Save "save";
    Bgsave "bgsave";
    Bgrewriteaof "bgrewriteaof";
    Lastsave "lastsave";
    Replicaof "replicaof";
    Slaveof "slaveof";
    Role "role";
    Replconf "replconf";
    Psync "psync";
    Sync "sync";
    Wait "wait";
    Acl "acl" ["cat" "deluser" "dryrun" "genpass" "getuser" "help" "list" "load" "log" "save" "setuser" "users" "whoami"];
    Failover "failover";
    // generic keyspace
    Del "del" split(Count);
    Unlink "unlink" split(Count);
    Exists "exists" split(Count);
    Type "type";
    Keys "keys";
    Scan "scan";
    Randomkey "randomkey";
    Rename "rename";
    Renamenx "renamenx";
    Copy "copy";
    Move "move";
    Touch "touch" split(Count);
    Expire "expire";
    Pexpire "pexpire";
    Expireat "expireat";
    Pexpireat "pexpireat";
    Ttl "ttl";
    Pttl "pttl";
    Expiretime "expiretime";
    Pexpiretime "pexpiretime";
    Persist "persist";
    Object "object" ["encoding" "freq" "help" "idletime" "refcount"];
    Memory "memory" ["doctor" "help" "malloc-stats" "purge" "stats" "usage"];
    Sort "sort";
    SortRo "sort_ro";
    Dump "dump";
    Restore "restore";
    RestoreAsking "restore-asking";
    Migrate "migrate";
    // strings
    Get "get";
    Set "set";
    Setnx "setnx";
    Setex "setex";
    Psetex "psetex";
    Getset "getset";
    Getdel "getdel";
    Getex "getex";
    Mget "mget" split(Values);
    Mset "mset" split(Pairs);
    Msetnx "msetnx" split(PairsIfAbsent);
    Incr "incr";
    Decr "decr";
    Incrby "incrby";
    Decrby "decrby";
    Incrbyfloat "incrbyfloat";
    Append "append";
    Strlen "strlen";
    Getrange "getrange";
    Setrange "setrange";
    Lcs "lcs";
    // bitmaps
    Setbit "setbit";
    Getbit "getbit";
    Bitcount "bitcount";
    Bitpos "bitpos";
    Bitop "bitop";
    Bitfield "bitfield";
    BitfieldRo "bitfield_ro";
    // hyperloglog
    Pfadd "pfadd";
    Pfcount "pfcount";
    Pfmerge "pfmerge";
    Pfdebug "pfdebug";
    Pfselftest "pfselftest";
    Substr "substr";
    // lists
    Lpush "lpush";
    Rpush "rpush";
    Lpushx "lpushx";
    Rpushx "rpushx";
    Lpop "lpop";
    Rpop "rpop";
    Llen "llen";
    Lrange "lrange";
    Lindex "lindex";
    Lset "lset";
    Lrem "lrem";
    Ltrim "ltrim";
    Linsert "linsert";
    Lpos "lpos";
    Lmove "lmove";
    Rpoplpush "rpoplpush";
    Lmpop "lmpop";
    Blpop "blpop";
    Brpop "brpop";
    Blmove "blmove";
    Brpoplpush "brpoplpush";
    Blmpop "blmpop";
    // hashes
    Hset "hset";
    Hsetnx "hsetnx";
    Hget "hget";
    Hmset "hmset";
    Hmget "hmget";
    Hdel "hdel";
    Hlen "hlen";
    Hstrlen "hstrlen";
    Hexists "hexists";
    Hkeys "hkeys";
    Hvals "hvals";
    Hgetall "hgetall";
    Hincrby "hincrby";
    Hincrbyfloat "hincrbyfloat";
    Hrandfield "hrandfield";
    Hscan "hscan";
    // sets
    Sadd "sadd";
    Srem "srem";
    Smembers "smembers";
    Sismember "sismember";
    Smismember "smismember";
    Scard "scard";
    Spop "spop";
    Srandmember "srandmember";
    Smove "smove";
    Sinter "sinter";
    Sintercard "sintercard";
    Sunion "sunion";
    Sdiff "sdiff";
    Sinterstore "sinterstore";
    Sunionstore "sunionstore";
    Sdiffstore "sdiffstore";
    Sscan "sscan";
    // sorted sets
    Zadd "zadd";
    Zincrby "zincrby";
    Zrem "zrem";
    Zcard "zcard";
    Zscore "zscore";
    Zmscore "zmscore";
    Zcount "zcount";
    Zlexcount "zlexcount";
    Zrange "zrange";
    Zrangestore "zrangestore";
    Zrangebyscore "zrangebyscore";
    Zrevrangebyscore "zrevrangebyscore";
    Zrangebylex "zrangebylex";
    Zrevrangebylex "zrevrangebylex";
    Zrevrange "zrevrange";
    Zrank "zrank";
    Zrevrank "zrevrank";
    Zpopmin "zpopmin";
    Zpopmax "zpopmax";
    Bzpopmin "bzpopmin";
    Bzpopmax "bzpopmax";
    Zmpop "zmpop";
    Bzmpop "bzmpop";
    Zremrangebyrank "zremrangebyrank";
    Zremrangebyscore "zremrangebyscore";
    Zremrangebylex "zremrangebylex";
    Zunion "zunion";
    Zinter "zinter";
    Zdiff "zdiff";
    Zintercard "zintercard";
    Zunionstore "zunionstore";
    Zinterstore "zinterstore";
    Zdiffstore "zdiffstore";
    Zrandmember "zrandmember";
    Zscan "zscan";
    // geo
    Geoadd "geoadd";
    Geodist "geodist";
    Geohash "geohash";
    Geopos "geopos";
    Georadius "georadius";
    GeoradiusRo "georadius_ro";
    Georadiusbymember "georadiusbymember";
    GeoradiusbymemberRo "georadiusbymember_ro";
    Geosearch "geosearch";
    Geosearchstore "geosearchstore";
    // streams
    Xadd "xadd";
    Xlen "xlen";
    Xrange "xrange";
    Xrevrange "xrevrange";
    Xdel "xdel";
    Xtrim "xtrim";
    Xsetid "xsetid";
    Xread "xread";
    Xreadgroup "xreadgroup";
    Xgroup "xgroup" ["create" "setid" "destroy" "createconsumer" "delconsumer" "help"];
    Xack "xack";
    Xpending "xpending";
    Xclaim "xclaim";
    Xautoclaim "xautoclaim";
    Xinfo "xinfo" ["consumers" "groups" "stream" "help"];
    // transactions
    Multi "multi";
    Exec "exec";
    Discard "discard";
    Watch "watch";
    Unwatch "unwatch";
    // scripting
    Eval "eval";
    EvalRo "eval_ro";
    Evalsha "evalsha";
    EvalshaRo "evalsha_ro";
    Script "script" ["load" "exists" "flush" "kill" "help"];
    Fcall "fcall";
    FcallRo "fcall_ro";
    Function "function" ["load" "delete" "flush" "list" "stats" "kill" "dump" "restore" "help"];
    // pub/sub
    Subscribe "subscribe";
    Unsubscribe "unsubscribe";
    Psubscribe "psubscribe";
    Punsubscribe "punsubscribe";
    Publish "publish";
    Ssubscribe "ssubscribe";
    Sunsubscribe "sunsubscribe";
    Spublish "spublish";
    Pubsub "pubsub" ["channels" "numsub" "numpat" "shardchannels" "shardnumsub" "help"];
}

impl Command {
    /// Builds the entry of `name` from Redis's row; a name or subcommand
    /// Redis 7.0.15 does not have stops the build.
    const fn new(
        id: CommandId,
        name: &'static str,
        subcommands: &'static [&'static str],
    ) -> Command {
        let Some(i) = meta::const_lookup(name.as_bytes()) else {
            panic!("not a Redis 7.0.15 command");
        };
        let m = &TABLE[i];
        // A container has no flags of its own in Redis (its subcommands do);
        // shardis's checks that only see the container (write? deny OOM?)
        // see what any implemented subcommand may do.
        let mut flags = m.flags;
        let mut s = 0;
        while s < subcommands.len() {
            match const_child(i, subcommands[s].as_bytes()) {
                Some(c) => flags |= TABLE[c].flags,
                None => panic!("not a Redis 7.0.15 subcommand"),
            }
            s += 1;
        }
        let mut p = 0;
        while p < PUBSUB_CONTEXT.len() {
            if meta::const_eq(PUBSUB_CONTEXT[p].as_bytes(), name.as_bytes()) {
                flags |= flags::PUBSUB_CONTEXT;
            }
            p += 1;
        }
        Command {
            name,
            id,
            arity: m.arity,
            flags,
            keys: routing_keys(m),
            meta: m,
            meta_index: i,
            subcommands,
            split: Split::No,
        }
    }

    /// Sets the [`Split`] column.
    const fn with_split(mut self, split: Split) -> Command {
        self.split = split;
        self
    }

    /// True if shardis implements the subcommand at `meta_index` of this
    /// container.
    pub fn implements_sub(&self, meta_index: usize) -> bool {
        let short = TABLE[meta_index].short_name();
        TABLE[meta_index].parent == Some(self.meta_index) && self.subcommands.contains(&short)
    }

    /// Redis's flags for this request: the subcommand's for a container
    /// (`CLIENT LIST` is admin, `CLIENT ID` is not), else the command's.
    pub fn flags_for<A: AsRef<[u8]>>(&self, args: &[A]) -> u32 {
        match args.get(1) {
            Some(sub) if self.meta.is_container() => match self.sub(sub.as_ref()) {
                Some(i) => TABLE[i].flags,
                None => self.flags,
            },
            _ => self.flags,
        }
    }

    /// The row of [`meta::TABLE`] a call is counted under (commandstats,
    /// latency histograms), as Redis counts under the subcommand
    /// (`config|get`); `None` for an unknown subcommand, which Redis counts
    /// nowhere.
    pub fn stat_index<A: AsRef<[u8]>>(&self, args: &[A]) -> Option<usize> {
        match args.get(1) {
            Some(sub) if self.meta.is_container() => self.sub(sub.as_ref()),
            _ => Some(self.meta_index),
        }
    }

    /// The implemented subcommand `sub` (any case): its index in [`meta::TABLE`].
    pub fn sub(&self, sub: &[u8]) -> Option<usize> {
        meta::lookup_sub(self.meta_index, sub).filter(|&i| self.implements_sub(i))
    }
}

/// The child of `parent` whose short name is `sub` (exact bytes), in const.
const fn const_child(parent: usize, sub: &[u8]) -> Option<usize> {
    let Some(kids) = TABLE[parent].subcommands else {
        return None;
    };
    let plen = TABLE[parent].name.len() + 1;
    let mut k = 0;
    while k < kids.len() {
        let full = TABLE[kids[k]].name.as_bytes();
        if full.len() > plen && meta::const_eq(full.split_at(plen).1, sub) {
            return Some(kids[k]);
        }
        k += 1;
    }
    None
}

/// Routing key positions from Redis's metadata: the legacy range for fixed
/// positions, the numkeys spec or STREAMS keyword for movable keys, "the
/// argument after the subcommand" for containers whose subcommands take a key,
/// and Redis's own spec walk for anything else.
const fn routing_keys(m: &Meta) -> KeySpec {
    if let Some(kids) = m.subcommands {
        let mut k = 0;
        while k < kids.len() {
            if !TABLE[kids[k]].key_specs.is_empty() {
                return KeySpec::Subcommand;
            }
            k += 1;
        }
        return KeySpec::None;
    }
    // Shard channels (SPUBLISH, SSUBSCRIBE) are `not_key` specs: Redis names
    // them so cluster clients find a channel's node, but they are not keys
    // and do not pick a shard here.
    let mut only_not_keys = true;
    let mut j = 0;
    while j < m.key_specs.len() {
        if m.key_specs[j].flags & meta::ks::NOT_KEY == 0 {
            only_not_keys = false;
        }
        j += 1;
    }
    if only_not_keys {
        return KeySpec::None;
    }
    if m.flags & MOVABLEKEYS == 0 && m.first_key != 0 {
        return KeySpec::Range {
            first: m.first_key,
            last: m.last_key,
            step: m.step,
        };
    }
    let mut dest = None;
    let mut j = 0;
    while j < m.key_specs.len() {
        match (m.key_specs[j].begin, m.key_specs[j].find) {
            (Begin::Index(b), Find::Keynum { keynumidx, .. }) => {
                return KeySpec::NumKeys {
                    numkeys_at: (b + keynumidx) as usize,
                    dest_at: dest,
                };
            }
            (Begin::Index(b), Find::Range { lastkey: 0, .. }) => dest = Some(b as usize),
            (Begin::Keyword { keyword, .. }, _)
                if meta::const_eq(keyword.as_bytes(), b"STREAMS") =>
            {
                return KeySpec::Streams;
            }
            _ => {}
        }
        j += 1;
    }
    KeySpec::Specs
}

fn index() -> &'static HashMap<&'static str, &'static Command> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Command>> = OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name, c)).collect())
}

/// Looks an implemented command up by name, case-insensitively, without
/// allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    index().get(lower).copied()
}

/// The entry for `id`.
pub fn get(id: CommandId) -> &'static Command {
    &COMMANDS[id as usize]
}

/// The implemented command or subcommand named `full` (`get`, `config|get`,
/// any case), as COMMAND INFO/DOCS look names up: its row in [`meta::TABLE`].
pub fn lookup_full(full: &[u8]) -> Option<usize> {
    let mut parts = full.splitn(2, |&b| b == b'|');
    let cmd = lookup(parts.next()?)?;
    match parts.next() {
        None => Some(cmd.meta_index),
        Some(sub) => cmd.sub(sub),
    }
}

/// Every visible row of [`meta::TABLE`]: the implemented commands and, after
/// each container, its implemented subcommands.
pub fn visible() -> impl Iterator<Item = usize> {
    COMMANDS.iter().flat_map(|c| {
        std::iter::once(c.meta_index).chain(
            meta::children(c.meta_index)
                .iter()
                .copied()
                .filter(move |&i| c.implements_sub(i)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").unwrap().id, CommandId::Get);
        assert!(lookup(b"nosuchcommand").is_none());
        assert_eq!(lookup(b"MoDuLe").unwrap().id, CommandId::Module);
        assert_eq!(get(CommandId::Zadd).name, "zadd");
        assert_eq!(
            TABLE[lookup_full(b"CONFIG|Get").unwrap()].name,
            "config|get"
        );
        assert!(lookup_full(b"config|nosuch").is_none());
        // Redis has it, shardis does not: invisible.
        assert!(lookup_full(b"script|debug").is_none());
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(
            mset.key_indices(&[b"mset", b"a", b"1", b"b", b"2"])
                .unwrap(),
            vec![1, 3]
        );
        let blpop = lookup(b"blpop").unwrap();
        assert_eq!(
            blpop.key_indices(&[b"blpop", b"a", b"b", b"0"]).unwrap(),
            vec![1, 2]
        );
        let zus = lookup(b"zunionstore").unwrap();
        assert_eq!(
            zus.key_indices(&[b"zunionstore", b"d", b"2", b"a", b"b"])
                .unwrap(),
            vec![1, 3, 4]
        );
        assert_eq!(
            zus.key_indices(&[b"zunionstore", b"d", b"3", b"a", b"b"]),
            Err(KeyError::NumKeysTooLarge)
        );
        let xread = lookup(b"xread").unwrap();
        assert_eq!(
            xread
                .key_indices(&[b"xread", b"STREAMS", b"a", b"b", b"0", b"0"])
                .unwrap(),
            vec![2, 3]
        );
        assert_eq!(lookup(b"object").unwrap().keys, KeySpec::Subcommand);
        assert_eq!(lookup(b"config").unwrap().keys, KeySpec::None);
        assert_eq!(zus.legacy_key_range(), (1, 1, 1));
        // Only commands whose keys no simpler rule describes route by specs.
        let by_specs: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.keys == KeySpec::Specs)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            by_specs,
            [
                "sort",
                "sort_ro",
                "migrate",
                "georadius",
                "georadiusbymember"
            ]
        );
        // SORT … STORE routes by its destination too (sortGetKeys).
        assert_eq!(
            lookup(b"sort")
                .unwrap()
                .key_indices(&[b"sort", b"k", b"BY", b"w_*", b"STORE", b"d"])
                .unwrap(),
            vec![1, 5]
        );
        // What a command such as GEORADIUS … STORE routes by.
        let geo = &TABLE[meta::lookup("georadius").unwrap()];
        assert_eq!(routing_keys(geo), KeySpec::Specs);
        let argv: &[&[u8]] = &[b"georadius", b"k", b"0", b"0", b"1", b"km", b"STORE", b"d"];
        assert_eq!(
            meta::keys_partial(geo, argv),
            vec![
                (1, meta::ks::RO | meta::ks::ACCESS),
                (7, meta::ks::OW | meta::ks::UPDATE)
            ]
        );
        let sort = &TABLE[meta::lookup("sort").unwrap()];
        assert_eq!(routing_keys(sort), KeySpec::Specs);
        assert_eq!(meta::keys_partial(sort, &[b"sort", b"k"]).len(), 1);
        assert!(lookup(b"get").unwrap().arity_ok(2));
        assert!(!lookup(b"get").unwrap().arity_ok(3));
        assert!(lookup(b"set").unwrap().arity_ok(5));
    }

    #[test]
    fn split_and_blocking_columns() {
        assert_eq!(get(CommandId::Mget).split, Split::Values);
        assert_eq!(get(CommandId::Msetnx).split, Split::PairsIfAbsent);
        assert_eq!(get(CommandId::Unlink).split, Split::Count);
        assert_eq!(get(CommandId::Rename).split, Split::No);
        let blocking: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.has(BLOCKING))
            .map(|c| c.name)
            .collect();
        assert_eq!(
            blocking,
            [
                "blpop",
                "brpop",
                "blmove",
                "brpoplpush",
                "blmpop",
                "bzpopmin",
                "bzpopmax",
                "bzmpop",
                "xread",
                "xreadgroup"
            ]
        );
    }

    #[test]
    fn ids_match_table_order() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.id as usize, i, "{}", c.name);
            assert_eq!(c.meta.name, c.name);
        }
    }

    #[test]
    fn visible_rows_are_implemented_commands_and_subcommands() {
        let names: Vec<&str> = visible().map(|i| TABLE[i].name).collect();
        assert!(names.contains(&"config|get"));
        assert!(names.contains(&"acl|cat"));
        assert!(!names.contains(&"script|debug"));
        let subs: usize = COMMANDS.iter().map(|c| c.subcommands.len()).sum();
        assert_eq!(names.len(), COMMANDS.len() + subs);
    }
}
