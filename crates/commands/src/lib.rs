//! The command table: the one source of truth about every command.
//!
//! Where it sits: the server reads it to check arity (with Redis's exact error),
//! to find a command's keys (routing to shards), to decide what is a write
//! (read-only replicas, replication, `min-replicas-to-write`) and to answer
//! `COMMAND`. The keyspace dispatches on [`CommandId`]. Nothing here executes
//! anything.

use hashbrown::HashMap;
use std::sync::OnceLock;

/// Command flags, as `COMMAND INFO` names them.
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
    /// Not queued by MULTI (runs at once).
    pub const NO_MULTI: u32 = 1 << 11;
    /// Key positions depend on the arguments.
    pub const MOVABLEKEYS: u32 = 1 << 12;
    /// Allowed while in the RESP2 subscribed state.
    pub const PUBSUB_CONTEXT: u32 = 1 << 13;

    /// `(flag, name)` pairs in the order `COMMAND INFO` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

use flags::*;

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
}

/// One command's table entry.
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
    /// Key positions.
    pub keys: KeySpec,
    /// The COMMAND DOCS group (`string`, `generic`, …).
    pub group: &'static str,
    /// One-line summary for COMMAND DOCS (redis-cli hints).
    pub summary: &'static str,
    /// The argument synopsis, as redis-cli shows it in hints.
    pub syntax: &'static str,
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
        match self.keys {
            KeySpec::Range { first, last, step } => (first as i64, last as i64, step as i64),
            _ => (0, 0, 0),
        }
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

macro_rules! commands {
    ($( $id:ident $name:literal $arity:literal [$($flag:ident)|*] $keys:expr, $group:literal, $syntax:literal, $summary:literal; )*) => {
        /// Every command shardis knows, one variant each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum CommandId { $($id,)* }

        /// The table, in declaration order.
        pub static COMMANDS: &[Command] = &[
            $(Command {
                name: $name,
                id: CommandId::$id,
                arity: $arity,
                flags: 0 $(| $flag)*,
                keys: $keys,
                group: $group,
                summary: $summary,
                syntax: $syntax,
            },)*
        ];
    };
}

const NONE: KeySpec = KeySpec::None;
const K1: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
};
const K12: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
};
const KALL: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
};
const KPAIRS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 2,
};
const KBLOCK: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
};
const NK1: KeySpec = KeySpec::NumKeys {
    numkeys_at: 1,
    dest_at: None,
};
const NK2: KeySpec = KeySpec::NumKeys {
    numkeys_at: 2,
    dest_at: None,
};
const NKD: KeySpec = KeySpec::NumKeys {
    numkeys_at: 2,
    dest_at: Some(1),
};

commands! {
    // connection
    Ping "ping" -1 [FAST | STALE | LOADING | PUBSUB_CONTEXT] NONE, "connection", "[message]", "Ping the server";
    Echo "echo" 2 [FAST | STALE | LOADING] NONE, "connection", "message", "Echo the given string";
    Quit "quit" -1 [FAST | STALE | LOADING | NO_AUTH | NOSCRIPT | PUBSUB_CONTEXT] NONE, "connection", "", "Close the connection";
    Hello "hello" -1 [FAST | STALE | LOADING | NO_AUTH | NOSCRIPT] NONE, "connection", "[protover [AUTH username password] [SETNAME clientname]]", "Handshake with Redis";
    Auth "auth" -2 [FAST | STALE | LOADING | NO_AUTH | NOSCRIPT] NONE, "connection", "[username] password", "Authenticate to the server";
    Select "select" 2 [FAST | STALE | LOADING] NONE, "connection", "index", "Change the selected database for the current connection";
    Reset "reset" 1 [FAST | STALE | LOADING | NO_AUTH | NOSCRIPT | PUBSUB_CONTEXT] NONE, "connection", "", "Reset the connection";
    Client "client" -2 [STALE | LOADING | NOSCRIPT] NONE, "connection", "subcommand [arg ...]", "A container for client connection commands";
    CommandCmd "command" -1 [STALE | LOADING] NONE, "server", "[subcommand [arg ...]]", "Get array of Redis command details";
    // server
    Info "info" -1 [STALE | LOADING] NONE, "server", "[section [section ...]]", "Get information and statistics about the server";
    Config "config" -2 [ADMIN | NOSCRIPT | LOADING | STALE] NONE, "server", "subcommand [arg ...]", "A container for server configuration commands";
    Dbsize "dbsize" 1 [READONLY | FAST] NONE, "server", "", "Return the number of keys in the selected database";
    Flushdb "flushdb" -1 [WRITE] NONE, "server", "[ASYNC|SYNC]", "Remove all keys from the current database";
    Flushall "flushall" -1 [WRITE] NONE, "server", "[ASYNC|SYNC]", "Remove all keys from all databases";
    Swapdb "swapdb" 3 [WRITE | FAST] NONE, "server", "index1 index2", "Swaps two Redis databases";
    Time "time" 1 [LOADING | STALE | FAST] NONE, "server", "", "Return the current server time";
    Debug "debug" -2 [ADMIN | NOSCRIPT | LOADING | STALE] NONE, "server", "subcommand [arg ...]", "A container for debugging commands";
    Slowlog "slowlog" -2 [ADMIN | LOADING | STALE] NONE, "server", "subcommand [arg ...]", "A container for slow log commands";
    Latency "latency" -2 [ADMIN | NOSCRIPT | LOADING | STALE] NONE, "server", "subcommand [arg ...]", "A container for latency diagnostics commands";
    Monitor "monitor" 1 [ADMIN | NOSCRIPT | LOADING | STALE] NONE, "server", "", "Listen for all requests received by the server in real time";
    Shutdown "shutdown" -1 [ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI] NONE, "server", "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]", "Synchronously save the dataset to disk and then shut down the server";
    Save "save" 1 [ADMIN | NOSCRIPT | NO_MULTI] NONE, "server", "", "Synchronously save the dataset to disk";
    Bgsave "bgsave" -1 [ADMIN | NOSCRIPT] NONE, "server", "[SCHEDULE]", "Asynchronously save the dataset to disk";
    Lastsave "lastsave" 1 [LOADING | STALE | FAST] NONE, "server", "", "Get the UNIX time stamp of the last successful save to disk";
    Replicaof "replicaof" 3 [ADMIN | NOSCRIPT | STALE | NO_MULTI] NONE, "server", "host port", "Make the server a replica of another instance, or promote it as master";
    Slaveof "slaveof" 3 [ADMIN | NOSCRIPT | STALE | NO_MULTI] NONE, "server", "host port", "Make the server a replica of another instance, or promote it as master";
    Role "role" 1 [NOSCRIPT | LOADING | STALE | FAST] NONE, "server", "", "Return the role of the instance in the context of replication";
    Replconf "replconf" -1 [ADMIN | NOSCRIPT | LOADING | STALE] NONE, "server", "", "An internal command for configuring the replication stream";
    Psync "psync" -3 [ADMIN | NOSCRIPT | NO_MULTI] NONE, "server", "replicationid offset", "Internal command used for replication";
    Sync "sync" 1 [ADMIN | NOSCRIPT | NO_MULTI] NONE, "server", "", "Internal command used for replication";
    Wait "wait" 3 [NOSCRIPT] NONE, "generic", "numreplicas timeout", "Wait for the synchronous replication of all the write commands sent in the context of the current connection";
    Acl "acl" -2 [] NONE, "server", "subcommand [arg ...]", "A container for Access List Control commands";
    Failover "failover" -1 [ADMIN | NOSCRIPT | STALE] NONE, "server", "[TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]", "Start a coordinated failover between this server and one of its replicas.";
    // generic keyspace
    Del "del" -2 [WRITE] KALL, "generic", "key [key ...]", "Delete a key";
    Unlink "unlink" -2 [WRITE | FAST] KALL, "generic", "key [key ...]", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.";
    Exists "exists" -2 [READONLY | FAST] KALL, "generic", "key [key ...]", "Determine if a key exists";
    Type "type" 2 [READONLY | FAST] K1, "generic", "key", "Determine the type stored at key";
    Keys "keys" 2 [READONLY] NONE, "generic", "pattern", "Find all keys matching the given pattern";
    Scan "scan" -2 [READONLY] NONE, "generic", "cursor [MATCH pattern] [COUNT count] [TYPE type]", "Incrementally iterate the keys space";
    Randomkey "randomkey" 1 [READONLY] NONE, "generic", "", "Return a random key from the keyspace";
    Rename "rename" 3 [WRITE] K12, "generic", "key newkey", "Rename a key";
    Renamenx "renamenx" 3 [WRITE | FAST] K12, "generic", "key newkey", "Rename a key, only if the new key does not exist";
    Copy "copy" -3 [WRITE | DENYOOM] K12, "generic", "source destination [DB destination-db] [REPLACE]", "Copy a key";
    Move "move" 3 [WRITE | FAST] K1, "generic", "key db", "Move a key to another database";
    Touch "touch" -2 [READONLY | FAST] KALL, "generic", "key [key ...]", "Alters the last access time of a key(s). Returns the number of existing keys specified.";
    Expire "expire" -3 [WRITE | FAST] K1, "generic", "key seconds [NX|XX|GT|LT]", "Set a key's time to live in seconds";
    Pexpire "pexpire" -3 [WRITE | FAST] K1, "generic", "key milliseconds [NX|XX|GT|LT]", "Set a key's time to live in milliseconds";
    Expireat "expireat" -3 [WRITE | FAST] K1, "generic", "key unix-time-seconds [NX|XX|GT|LT]", "Set the expiration for a key as a UNIX timestamp";
    Pexpireat "pexpireat" -3 [WRITE | FAST] K1, "generic", "key unix-time-milliseconds [NX|XX|GT|LT]", "Set the expiration for a key as a UNIX timestamp specified in milliseconds";
    Ttl "ttl" 2 [READONLY | FAST] K1, "generic", "key", "Get the time to live for a key in seconds";
    Pttl "pttl" 2 [READONLY | FAST] K1, "generic", "key", "Get the time to live for a key in milliseconds";
    Expiretime "expiretime" 2 [READONLY | FAST] K1, "generic", "key", "Get the expiration Unix timestamp for a key";
    Pexpiretime "pexpiretime" 2 [READONLY | FAST] K1, "generic", "key", "Get the expiration Unix timestamp for a key in milliseconds";
    Persist "persist" 2 [WRITE | FAST] K1, "generic", "key", "Remove the expiration from a key";
    Object "object" -2 [READONLY] KeySpec::Subcommand, "generic", "subcommand [arg ...]", "A container for object introspection commands";
    Dump "dump" 2 [READONLY] K1, "generic", "key", "Return a serialized version of the value stored at the specified key.";
    Restore "restore" -4 [WRITE | DENYOOM] K1, "generic", "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]", "Create a key using the provided serialized value, previously obtained using DUMP.";
    // strings
    Get "get" 2 [READONLY | FAST] K1, "string", "key", "Get the value of a key";
    Set "set" -3 [WRITE | DENYOOM] K1, "string", "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]", "Set the string value of a key";
    Setnx "setnx" 3 [WRITE | DENYOOM | FAST] K1, "string", "key value", "Set the value of a key, only if the key does not exist";
    Setex "setex" 4 [WRITE | DENYOOM] K1, "string", "key seconds value", "Set the value and expiration of a key";
    Psetex "psetex" 4 [WRITE | DENYOOM] K1, "string", "key milliseconds value", "Set the value and expiration in milliseconds of a key";
    Getset "getset" 3 [WRITE | DENYOOM | FAST] K1, "string", "key value", "Set the string value of a key and return its old value";
    Getdel "getdel" 2 [WRITE | FAST] K1, "string", "key", "Get the value of a key and delete the key";
    Getex "getex" -2 [WRITE | FAST] K1, "string", "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]", "Get the value of a key and optionally set its expiration";
    Mget "mget" -2 [READONLY | FAST] KALL, "string", "key [key ...]", "Get the values of all the given keys";
    Mset "mset" -3 [WRITE | DENYOOM] KPAIRS, "string", "key value [key value ...]", "Set multiple keys to multiple values";
    Msetnx "msetnx" -3 [WRITE | DENYOOM] KPAIRS, "string", "key value [key value ...]", "Set multiple keys to multiple values, only if none of the keys exist";
    Incr "incr" 2 [WRITE | DENYOOM | FAST] K1, "string", "key", "Increment the integer value of a key by one";
    Decr "decr" 2 [WRITE | DENYOOM | FAST] K1, "string", "key", "Decrement the integer value of a key by one";
    Incrby "incrby" 3 [WRITE | DENYOOM | FAST] K1, "string", "key increment", "Increment the integer value of a key by the given amount";
    Decrby "decrby" 3 [WRITE | DENYOOM | FAST] K1, "string", "key decrement", "Decrement the integer value of a key by the given number";
    Incrbyfloat "incrbyfloat" 3 [WRITE | DENYOOM | FAST] K1, "string", "key increment", "Increment the float value of a key by the given amount";
    Append "append" 3 [WRITE | DENYOOM | FAST] K1, "string", "key value", "Append a value to a key";
    Strlen "strlen" 2 [READONLY | FAST] K1, "string", "key", "Get the length of the value stored in a key";
    Getrange "getrange" 4 [READONLY] K1, "string", "key start end", "Get a substring of the string stored at a key";
    Setrange "setrange" 4 [WRITE | DENYOOM] K1, "string", "key offset value", "Overwrite part of a string at key starting at the specified offset";
    Substr "substr" 4 [READONLY] K1, "string", "key start end", "Get a substring of the string stored at a key";
    // lists
    Lpush "lpush" -3 [WRITE | DENYOOM | FAST] K1, "list", "key element [element ...]", "Prepend one or multiple elements to a list";
    Rpush "rpush" -3 [WRITE | DENYOOM | FAST] K1, "list", "key element [element ...]", "Append one or multiple elements to a list";
    Lpushx "lpushx" -3 [WRITE | DENYOOM | FAST] K1, "list", "key element [element ...]", "Prepend an element to a list, only if the list exists";
    Rpushx "rpushx" -3 [WRITE | DENYOOM | FAST] K1, "list", "key element [element ...]", "Append an element to a list, only if the list exists";
    Lpop "lpop" -2 [WRITE | FAST] K1, "list", "key [count]", "Remove and get the first elements in a list";
    Rpop "rpop" -2 [WRITE | FAST] K1, "list", "key [count]", "Remove and get the last elements in a list";
    Llen "llen" 2 [READONLY | FAST] K1, "list", "key", "Get the length of a list";
    Lrange "lrange" 4 [READONLY] K1, "list", "key start stop", "Get a range of elements from a list";
    Lindex "lindex" 3 [READONLY] K1, "list", "key index", "Get an element from a list by its index";
    Lset "lset" 4 [WRITE | DENYOOM] K1, "list", "key index element", "Set the value of an element in a list by its index";
    Lrem "lrem" 4 [WRITE] K1, "list", "key count element", "Remove elements from a list";
    Ltrim "ltrim" 4 [WRITE] K1, "list", "key start stop", "Trim a list to the specified range";
    Linsert "linsert" 5 [WRITE | DENYOOM] K1, "list", "key BEFORE|AFTER pivot element", "Insert an element before or after another element in a list";
    Lpos "lpos" -3 [READONLY] K1, "list", "key element [RANK rank] [COUNT num-matches] [MAXLEN len]", "Return the index of matching elements on a list";
    Lmove "lmove" 5 [WRITE | DENYOOM] K12, "list", "source destination LEFT|RIGHT LEFT|RIGHT", "Pop an element from a list, push it to another list and return it";
    Rpoplpush "rpoplpush" 3 [WRITE | DENYOOM] K12, "list", "source destination", "Remove the last element in a list, prepend it to another list and return it";
    Lmpop "lmpop" -4 [WRITE | MOVABLEKEYS] NK1, "list", "numkeys key [key ...] LEFT|RIGHT [COUNT count]", "Pop elements from a list";
    Blpop "blpop" -3 [WRITE | NOSCRIPT | BLOCKING] KBLOCK, "list", "key [key ...] timeout", "Remove and get the first element in a list, or block until one is available";
    Brpop "brpop" -3 [WRITE | NOSCRIPT | BLOCKING] KBLOCK, "list", "key [key ...] timeout", "Remove and get the last element in a list, or block until one is available";
    Blmove "blmove" 6 [WRITE | DENYOOM | NOSCRIPT | BLOCKING] K12, "list", "source destination LEFT|RIGHT LEFT|RIGHT timeout", "Pop an element from a list, push it to another list and return it; or block until one is available";
    Brpoplpush "brpoplpush" 4 [WRITE | DENYOOM | NOSCRIPT | BLOCKING] K12, "list", "source destination timeout", "Pop an element from a list, push it to another list and return it; or block until one is available";
    Blmpop "blmpop" -5 [WRITE | BLOCKING | MOVABLEKEYS] NK2, "list", "timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]", "Pop elements from a list, or block until one is available";
    // hashes
    Hset "hset" -4 [WRITE | DENYOOM | FAST] K1, "hash", "key field value [field value ...]", "Set the string value of a hash field";
    Hsetnx "hsetnx" 4 [WRITE | DENYOOM | FAST] K1, "hash", "key field value", "Set the value of a hash field, only if the field does not exist";
    Hget "hget" 3 [READONLY | FAST] K1, "hash", "key field", "Get the value of a hash field";
    Hmset "hmset" -4 [WRITE | DENYOOM | FAST] K1, "hash", "key field value [field value ...]", "Set multiple hash fields to multiple values";
    Hmget "hmget" -3 [READONLY | FAST] K1, "hash", "key field [field ...]", "Get the values of all the given hash fields";
    Hdel "hdel" -3 [WRITE | FAST] K1, "hash", "key field [field ...]", "Delete one or more hash fields";
    Hlen "hlen" 2 [READONLY | FAST] K1, "hash", "key", "Get the number of fields in a hash";
    Hstrlen "hstrlen" 3 [READONLY | FAST] K1, "hash", "key field", "Get the length of the value of a hash field";
    Hexists "hexists" 3 [READONLY | FAST] K1, "hash", "key field", "Determine if a hash field exists";
    Hkeys "hkeys" 2 [READONLY] K1, "hash", "key", "Get all the fields in a hash";
    Hvals "hvals" 2 [READONLY] K1, "hash", "key", "Get all the values in a hash";
    Hgetall "hgetall" 2 [READONLY] K1, "hash", "key", "Get all the fields and values in a hash";
    Hincrby "hincrby" 4 [WRITE | DENYOOM | FAST] K1, "hash", "key field increment", "Increment the integer value of a hash field by the given number";
    Hincrbyfloat "hincrbyfloat" 4 [WRITE | DENYOOM | FAST] K1, "hash", "key field increment", "Increment the float value of a hash field by the given amount";
    Hrandfield "hrandfield" -2 [READONLY] K1, "hash", "key [count [WITHVALUES]]", "Get one or multiple random fields from a hash";
    Hscan "hscan" -3 [READONLY] K1, "hash", "key cursor [MATCH pattern] [COUNT count]", "Incrementally iterate hash fields and associated values";
    // sets
    Sadd "sadd" -3 [WRITE | DENYOOM | FAST] K1, "set", "key member [member ...]", "Add one or more members to a set";
    Srem "srem" -3 [WRITE | FAST] K1, "set", "key member [member ...]", "Remove one or more members from a set";
    Smembers "smembers" 2 [READONLY] K1, "set", "key", "Get all the members in a set";
    Sismember "sismember" 3 [READONLY | FAST] K1, "set", "key member", "Determine if a given value is a member of a set";
    Smismember "smismember" -3 [READONLY | FAST] K1, "set", "key member [member ...]", "Returns the membership associated with the given elements for a set";
    Scard "scard" 2 [READONLY | FAST] K1, "set", "key", "Get the number of members in a set";
    Spop "spop" -2 [WRITE | FAST] K1, "set", "key [count]", "Remove and return one or multiple random members from a set";
    Srandmember "srandmember" -2 [READONLY] K1, "set", "key [count]", "Get one or multiple random members from a set";
    Smove "smove" 4 [WRITE | FAST] K12, "set", "source destination member", "Move a member from one set to another";
    Sinter "sinter" -2 [READONLY] KALL, "set", "key [key ...]", "Intersect multiple sets";
    Sintercard "sintercard" -3 [READONLY | MOVABLEKEYS] NK1, "set", "numkeys key [key ...] [LIMIT limit]", "Intersect multiple sets and return the cardinality of the result";
    Sunion "sunion" -2 [READONLY] KALL, "set", "key [key ...]", "Add multiple sets";
    Sdiff "sdiff" -2 [READONLY] KALL, "set", "key [key ...]", "Subtract multiple sets";
    Sinterstore "sinterstore" -3 [WRITE | DENYOOM] KALL, "set", "destination key [key ...]", "Intersect multiple sets and store the resulting set in a key";
    Sunionstore "sunionstore" -3 [WRITE | DENYOOM] KALL, "set", "destination key [key ...]", "Add multiple sets and store the resulting set in a key";
    Sdiffstore "sdiffstore" -3 [WRITE | DENYOOM] KALL, "set", "destination key [key ...]", "Subtract multiple sets and store the resulting set in a key";
    Sscan "sscan" -3 [READONLY] K1, "set", "key cursor [MATCH pattern] [COUNT count]", "Incrementally iterate Set elements";
    // sorted sets
    Zadd "zadd" -4 [WRITE | DENYOOM | FAST] K1, "sorted-set", "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]", "Add one or more members to a sorted set, or update its score if it already exists";
    Zincrby "zincrby" 4 [WRITE | DENYOOM | FAST] K1, "sorted-set", "key increment member", "Increment the score of a member in a sorted set";
    Zrem "zrem" -3 [WRITE | FAST] K1, "sorted-set", "key member [member ...]", "Remove one or more members from a sorted set";
    Zcard "zcard" 2 [READONLY | FAST] K1, "sorted-set", "key", "Get the number of members in a sorted set";
    Zscore "zscore" 3 [READONLY | FAST] K1, "sorted-set", "key member", "Get the score associated with the given member in a sorted set";
    Zmscore "zmscore" -3 [READONLY | FAST] K1, "sorted-set", "key member [member ...]", "Get the score associated with the given members in a sorted set";
    Zcount "zcount" 4 [READONLY | FAST] K1, "sorted-set", "key min max", "Count the members in a sorted set with scores within the given values";
    Zlexcount "zlexcount" 4 [READONLY | FAST] K1, "sorted-set", "key min max", "Count the number of members in a sorted set between a given lexicographical range";
    Zrange "zrange" -4 [READONLY] K1, "sorted-set", "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]", "Return a range of members in a sorted set";
    Zrangestore "zrangestore" -5 [WRITE | DENYOOM] K12, "sorted-set", "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]", "Store a range of members from sorted set into another key";
    Zrangebyscore "zrangebyscore" -4 [READONLY] K1, "sorted-set", "key min max [WITHSCORES] [LIMIT offset count]", "Return a range of members in a sorted set, by score";
    Zrevrangebyscore "zrevrangebyscore" -4 [READONLY] K1, "sorted-set", "key max min [WITHSCORES] [LIMIT offset count]", "Return a range of members in a sorted set, by score, with scores ordered from high to low";
    Zrangebylex "zrangebylex" -4 [READONLY] K1, "sorted-set", "key min max [LIMIT offset count]", "Return a range of members in a sorted set, by lexicographical range";
    Zrevrangebylex "zrevrangebylex" -4 [READONLY] K1, "sorted-set", "key max min [LIMIT offset count]", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.";
    Zrevrange "zrevrange" -4 [READONLY] K1, "sorted-set", "key start stop [WITHSCORES]", "Return a range of members in a sorted set, by index, with scores ordered from high to low";
    Zrank "zrank" 3 [READONLY | FAST] K1, "sorted-set", "key member", "Determine the index of a member in a sorted set";
    Zrevrank "zrevrank" 3 [READONLY | FAST] K1, "sorted-set", "key member", "Determine the index of a member in a sorted set, with scores ordered from high to low";
    Zpopmin "zpopmin" -2 [WRITE | FAST] K1, "sorted-set", "key [count]", "Remove and return members with the lowest scores in a sorted set";
    Zpopmax "zpopmax" -2 [WRITE | FAST] K1, "sorted-set", "key [count]", "Remove and return members with the highest scores in a sorted set";
    Bzpopmin "bzpopmin" -3 [WRITE | NOSCRIPT | FAST | BLOCKING] KBLOCK, "sorted-set", "key [key ...] timeout", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available";
    Bzpopmax "bzpopmax" -3 [WRITE | NOSCRIPT | FAST | BLOCKING] KBLOCK, "sorted-set", "key [key ...] timeout", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available";
    Zmpop "zmpop" -4 [WRITE | MOVABLEKEYS] NK1, "sorted-set", "numkeys key [key ...] MIN|MAX [COUNT count]", "Remove and return members with scores in a sorted set";
    Bzmpop "bzmpop" -5 [WRITE | BLOCKING | MOVABLEKEYS] NK2, "sorted-set", "timeout numkeys key [key ...] MIN|MAX [COUNT count]", "Remove and return members with scores in a sorted set or block until one is available";
    Zremrangebyrank "zremrangebyrank" 4 [WRITE] K1, "sorted-set", "key start stop", "Remove all members in a sorted set within the given indexes";
    Zremrangebyscore "zremrangebyscore" 4 [WRITE] K1, "sorted-set", "key min max", "Remove all members in a sorted set within the given scores";
    Zremrangebylex "zremrangebylex" 4 [WRITE] K1, "sorted-set", "key min max", "Remove all members in a sorted set between the given lexicographical range";
    Zunion "zunion" -3 [READONLY | MOVABLEKEYS] NK1, "sorted-set", "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", "Add multiple sorted sets";
    Zinter "zinter" -3 [READONLY | MOVABLEKEYS] NK1, "sorted-set", "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", "Intersect multiple sorted sets";
    Zdiff "zdiff" -3 [READONLY | MOVABLEKEYS] NK1, "sorted-set", "numkeys key [key ...] [WITHSCORES]", "Subtract multiple sorted sets";
    Zintercard "zintercard" -3 [READONLY | MOVABLEKEYS] NK1, "sorted-set", "numkeys key [key ...] [LIMIT limit]", "Intersect multiple sorted sets and return the cardinality of the result";
    Zunionstore "zunionstore" -4 [WRITE | DENYOOM | MOVABLEKEYS] NKD, "sorted-set", "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]", "Add multiple sorted sets and store the resulting sorted set in a new key";
    Zinterstore "zinterstore" -4 [WRITE | DENYOOM | MOVABLEKEYS] NKD, "sorted-set", "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]", "Intersect multiple sorted sets and store the resulting sorted set in a new key";
    Zdiffstore "zdiffstore" -4 [WRITE | DENYOOM | MOVABLEKEYS] NKD, "sorted-set", "destination numkeys key [key ...]", "Subtract multiple sorted sets and store the resulting sorted set in a new key";
    Zrandmember "zrandmember" -2 [READONLY] K1, "sorted-set", "key [count [WITHSCORES]]", "Get one or multiple random elements from a sorted set";
    Zscan "zscan" -3 [READONLY] K1, "sorted-set", "key cursor [MATCH pattern] [COUNT count]", "Incrementally iterate sorted sets elements and associated scores";
    // streams
    Xadd "xadd" -5 [WRITE | DENYOOM | FAST] K1, "stream", "key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]", "Appends a new entry to a stream";
    Xlen "xlen" 2 [READONLY | FAST] K1, "stream", "key", "Return the number of entries in a stream";
    Xrange "xrange" -4 [READONLY] K1, "stream", "key start end [COUNT count]", "Return a range of elements in a stream, with IDs matching the specified IDs interval";
    Xrevrange "xrevrange" -4 [READONLY] K1, "stream", "key end start [COUNT count]", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE";
    Xdel "xdel" -3 [WRITE | FAST] K1, "stream", "key id [id ...]", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.";
    Xtrim "xtrim" -4 [WRITE] K1, "stream", "key MAXLEN|MINID [=|~] threshold [LIMIT count]", "Trims the stream to (approximately if '~' is passed) a certain size";
    Xsetid "xsetid" -3 [WRITE | DENYOOM | FAST] K1, "stream", "key last-id [ENTRIESADDED entries_added] [MAXDELETEDID max_deleted_entry_id]", "An internal command for replicating stream values";
    Xread "xread" -4 [READONLY | BLOCKING | MOVABLEKEYS] KeySpec::Streams, "stream", "[COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.";
    Xreadgroup "xreadgroup" -7 [WRITE | BLOCKING | MOVABLEKEYS] KeySpec::Streams, "stream", "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.";
    Xgroup "xgroup" -2 [WRITE | DENYOOM] KeySpec::Subcommand, "stream", "subcommand [arg ...]", "A container for consumer groups commands";
    Xack "xack" -4 [WRITE | FAST] K1, "stream", "key group id [id ...]", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.";
    Xpending "xpending" -3 [READONLY] K1, "stream", "key group [[IDLE min-idle-time] start end count [consumer]]", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.";
    Xclaim "xclaim" -6 [WRITE | FAST] K1, "stream", "key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.";
    Xautoclaim "xautoclaim" -6 [WRITE | FAST] K1, "stream", "key group consumer min-idle-time start [COUNT count] [JUSTID]", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.";
    Xinfo "xinfo" -2 [READONLY] KeySpec::Subcommand, "stream", "subcommand [arg ...]", "A container for stream introspection commands";
    // transactions
    Multi "multi" 1 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] NONE, "transactions", "", "Mark the start of a transaction block";
    Exec "exec" 1 [NOSCRIPT | LOADING | STALE] NONE, "transactions", "", "Execute all commands issued after MULTI";
    Discard "discard" 1 [NOSCRIPT | LOADING | STALE | FAST] NONE, "transactions", "", "Discard all commands issued after MULTI";
    Watch "watch" -2 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] KALL, "transactions", "key [key ...]", "Watch the given keys to determine execution of the MULTI/EXEC block";
    Unwatch "unwatch" 1 [NOSCRIPT | LOADING | STALE | FAST] NONE, "transactions", "", "Forget about all watched keys";
    // pub/sub
    Subscribe "subscribe" -2 [PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT] NONE, "pubsub", "channel [channel ...]", "Listen for messages published to the given channels";
    Unsubscribe "unsubscribe" -1 [PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT] NONE, "pubsub", "[channel [channel ...]]", "Stop listening for messages posted to the given channels";
    Psubscribe "psubscribe" -2 [PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT] NONE, "pubsub", "pattern [pattern ...]", "Listen for messages published to channels matching the given patterns";
    Punsubscribe "punsubscribe" -1 [PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT] NONE, "pubsub", "[pattern [pattern ...]]", "Stop listening for messages posted to channels matching the given patterns";
    Publish "publish" 3 [PUBSUB | LOADING | STALE | FAST] NONE, "pubsub", "channel message", "Post a message to a channel";
    Pubsub "pubsub" -2 [PUBSUB | LOADING | STALE] NONE, "pubsub", "subcommand [arg ...]", "A container for Pub/Sub commands";
}

fn index() -> &'static HashMap<&'static str, &'static Command> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Command>> = OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name, c)).collect())
}

/// Looks a command up by name, case-insensitively, without allocating.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").unwrap().id, CommandId::Get);
        assert!(lookup(b"nosuchcommand").is_none());
        assert_eq!(get(CommandId::Zadd).name, "zadd");
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
        assert!(lookup(b"get").unwrap().arity_ok(2));
        assert!(!lookup(b"get").unwrap().arity_ok(3));
        assert!(lookup(b"set").unwrap().arity_ok(5));
    }

    #[test]
    fn ids_match_table_order() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.id as usize, i, "{}", c.name);
        }
    }
}
