//! Every error text shardis replies with, byte for byte as Redis 7.0.15
//! writes them (without the leading `-`): one table, for the keyspace, the
//! server and the libraries alike. A text is written here once and named
//! everywhere else; texts with a variable part are built by the functions at
//! the end.

use bytes::Bytes;

// ------------------------------------------------------------- data errors

/// A value of the wrong type for the command.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// An argument that must be an i64 is not one.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// INCR/INCRBY/DECR overflowed i64.
pub const INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";
/// DECRBY with `i64::MIN` (its negation overflows).
pub const DECR_OVERFLOW: &str = "ERR decrement would overflow";
/// An argument that must be a float is not one.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// INCRBYFLOAT produced NaN or an infinity.
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
/// Malformed options.
pub const SYNTAX: &str = "ERR syntax error";
/// RENAME of a missing key.
pub const NO_SUCH_KEY: &str = "ERR no such key";
/// A db number outside `0..databases`.
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
/// MOVE/COPY onto itself.
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// A string grown past 512 MB.
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/// SETRANGE with a negative offset.
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
/// EXPIRE with both NX and another condition.
pub const EXPIRE_NX_AND_OTHER: &str =
    "ERR NX and XX, GT or LT options at the same time are not compatible";
/// EXPIRE with both GT and LT.
pub const EXPIRE_GT_AND_LT: &str = "ERR GT and LT options at the same time are not compatible";
/// OBJECT IDLETIME under an LFU policy.
pub const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
/// OBJECT FREQ without an LFU policy.
pub const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// A blocking command's timeout is not a number (`strtold`).
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
/// A blocking command's timeout is below zero (or overflowed).
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
/// A count that must be >= 0 (LPOP/RPOP count, HRANDFIELD…).
pub const OUT_OF_RANGE_POSITIVE: &str = "ERR value is out of range, must be positive";
/// LSET past either end.
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
/// LPOS RANK 0.
pub const LPOS_RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
/// LPOS COUNT below zero (or not a number).
pub const LPOS_COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
/// LPOS MAXLEN below zero (or not a number).
pub const LPOS_MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
/// LMPOP/BLMPOP/ZMPOP numkeys below 1.
pub const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
/// LMPOP/ZMPOP COUNT below 1.
pub const COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";

/// HINCRBY on a field that does not hold an integer.
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
/// HINCRBYFLOAT on a field that does not hold a number.
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
/// HINCRBYFLOAT with an infinite increment.
pub const VALUE_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
/// HRANDFIELD count of i64::MIN (its negation overflows).
pub const HRANDFIELD_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// HRANDFIELD WITHVALUES with a count whose doubling would overflow.
pub const VALUE_OUT_OF_RANGE: &str = "ERR value is out of range";
/// A SCAN-family cursor that is not an unsigned integer.
pub const INVALID_CURSOR: &str = "ERR invalid cursor";

/// SINTERCARD/ZINTERCARD (and the Z* numkeys commands) with numkeys beyond
/// the arguments.
pub const NUMKEYS_TOO_MANY: &str = "ERR Number of keys can't be greater than number of args";
/// SINTERCARD/ZINTERCARD LIMIT below 0 (or not an integer).
pub const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

/// RESTORE onto an existing key without REPLACE.
pub const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
/// RESTORE with a negative TTL.
pub const RESTORE_BAD_TTL: &str = "ERR Invalid TTL value, must be >= 0";
/// RESTORE … IDLETIME with a negative value.
pub const RESTORE_BAD_IDLETIME: &str = "ERR Invalid IDLETIME value, must be >= 0";
/// RESTORE … FREQ outside 0..=255.
pub const RESTORE_BAD_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";

/// ZADD with both NX and XX.
pub const ZADD_NX_XX: &str = "ERR XX and NX options at the same time are not compatible";
/// ZADD with GT and LT, or either with NX.
pub const ZADD_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
/// ZADD INCR with several pairs.
pub const ZADD_INCR_PAIR: &str = "ERR INCR option supports a single increment-element pair";
/// ZADD INCR / ZINCRBY giving NaN (inf + -inf).
pub const ZADD_NAN: &str = "ERR resulting score is not a number (NaN)";
/// A score range end that is not a float.
pub const ZRANGE_NOT_FLOAT: &str = "ERR min or max is not a float";
/// A lex range end without `[`, `(`, or a lone `-`/`+`.
pub const ZRANGE_NOT_STRING: &str = "ERR min or max not valid string range item";
/// ZRANGE LIMIT without BYSCORE/BYLEX.
pub const ZRANGE_LIMIT_RANK: &str =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
/// ZRANGE BYLEX WITHSCORES.
pub const ZRANGE_WITHSCORES_LEX: &str =
    "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
/// ZUNIONSTORE… WEIGHTS with a non-float.
pub const WEIGHT_NOT_FLOAT: &str = "ERR weight value is not a float";

// ----------------------------------------------------------- server errors

/// Before AUTH when a password is set.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// AUTH with a wrong password.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// AUTH while no password is configured.
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// A write sent to a read-only replica.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
/// Writes refused by min-replicas-to-write.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
/// A command without the `loading` flag while a replica loads its master's RDB.
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
/// A command without the `stale` flag on a replica whose link is down, with
/// `replica-serve-stale-data no`.
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
/// Writes refused after a failed BGSAVE (`stop-writes-on-bgsave-error yes`).
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
/// MODULE LOAD/LOADEX/UNLOAD refused by `enable-module-command`.
pub const MODULE_NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
/// DEBUG refused by `enable-debug-command` (Redis's protected-command check).
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
/// Work could not reach a shard because the server is stopping.
pub const SHUTTING_DOWN: &str = "ERR server is shutting down";

/// Refusal sent to non-loopback clients in protected mode, then the connection closes.
pub const PROTECTED_MODE: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

// ---------------------------------------- texts moved from their modules

/// ACL SETUSER with a name holding a space or a NUL.
pub const BAD_USERNAME: &str = "ERR Usernames can't contain spaces or null characters";
/// A value that is not a HyperLogLog (the text starts with its own code).
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// A bit offset that is not an integer, negative, or past `proto-max-bulk-len`.
pub const BIT_OFFSET_NOT_INTEGER: &str = "ERR bit offset is not an integer or out of range";
/// SETBIT's value is not 0 or 1.
pub const BIT_NOT_INTEGER: &str = "ERR bit is not an integer or out of range";
/// BITFIELD type that is not `i1..i64` or `u1..u63`.
pub const BITFIELD_BAD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
/// A stream id that does not parse (`ms-seq`, `*`, `-`, `+`, `$`, `>` as allowed).
pub const INVALID_STREAM_ID: &str = "ERR Invalid stream ID specified as stream command argument";
/// The reply Redis 7.0 gives when RESTORE's payload footer does not verify.
pub const DUMP_PAYLOAD_INVALID: &str = "ERR DUMP payload version or checksum are wrong";
/// The reply Redis 7.0 gives when RESTORE's payload footer verifies but the value does not parse.
pub const BAD_DATA_FORMAT: &str = "ERR Bad data format";
/// MIGRATE … KEYS with a key argument that is not empty.
pub const MIGRATE_KEYS_OPTION: &str =
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
/// Redis's reply texts for BGREWRITEAOF.
pub const AOF_REWRITE_RUNNING: &str =
    "ERR Background append only file rewriting already in progress";
/// Redis's OOM refusal.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// MODULE LOAD of anything (shardis loads no modules), as Redis words a failed load.
pub const MODULE_LOAD_FAILED: &str =
    "ERR Error loading the extension. Please check the server logs.";
/// Redis's reply to other clients while an EVAL script is busy (`slowevalerr`).
pub const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The same while a function is busy (`slowscripterr`).
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
/// EVALSHA of a script the cache does not hold.
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
/// The error a client blocked across a role change gets (Redis 7.0's
/// `disconnectAllBlockedClients`); the connection is closed after it.
pub const UNBLOCKED_ROLE_CHANGE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
/// Redis 7.0's reply to XREADGROUP when its stream is deleted or replaced.
pub const UNBLOCKED_STREAM_GONE: &str = "UNBLOCKED the stream key no longer exists";
/// The error CLIENT UNBLOCK … ERROR sends the blocked client.
pub const UNBLOCKED_BY_CLIENT: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// A timeout in seconds or milliseconds that is not an integer (WAIT, CLIENT PAUSE, XREAD BLOCK).
pub const TIMEOUT_NOT_INTEGER: &str = "ERR timeout is not an integer or out of range";
/// FCALL or FUNCTION DUMP/DELETE naming a function no library has.
pub const FUNCTION_NOT_FOUND: &str = "ERR Function not found";
/// EVAL/FCALL with numkeys below zero.
pub const NUMKEYS_NEGATIVE: &str = "ERR Number of keys can't be negative";
/// EVAL/FCALL whose numkeys is not an integer.
pub const BAD_NUMKEYS: &str = "ERR Bad number of keys provided";
/// ACL DELUSER default.
pub const DEFAULT_USER_UNDELETABLE: &str = "ERR The 'default' user cannot be removed";
/// GEOPOS/GEODIST/GEOSEARCH on a member whose score is no geohash.
pub const ZSET_MEMBER_UNDECODABLE: &str = "ERR could not decode requested zset member";
/// GEOSEARCH/XAUTOCLAIM with COUNT 0 or below.
pub const COUNT_MUST_BE_POSITIVE: &str = "ERR COUNT must be > 0";
/// BGSAVE or SAVE while a snapshot is being written.
pub const BGSAVE_IN_PROGRESS: &str = "ERR Background save already in progress";
/// COMMAND GETKEYS/INFO/DOCS of a command Redis has not.
pub const INVALID_COMMAND: &str = "ERR Invalid command specified";
/// FAILOVER with no replica online.
pub const FAILOVER_NO_REPLICAS: &str = "ERR FAILOVER requires connected replicas.";
/// FUNCTION RESTORE of an empty payload, FUNCTION DUMP with none.
pub const NO_FUNCTIONS: &str = "ERR No functions registered";
/// redis.call/pcall and the redis.* helpers given what they cannot take.
pub const LUA_WRONG_ARGS: &str = "ERR wrong number or type of arguments";

// ------------------------------------------------- texts with a variable part

/// Redis replaces CR/LF in error texts built from user input with spaces.
fn sanitize(s: String) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
pub fn unknown_command(args: &[Bytes]) -> String {
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let s = String::from_utf8_lossy(&a[..a.len().min(room)]);
        list.push_str(&format!("'{s}' "));
    }
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]);
    sanitize(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

/// `ERR wrong number of arguments for 'get' command`.
pub fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// `ERR unknown subcommand or wrong number of arguments for 'x'. Try ACL HELP.`:
/// a handler's answer to arguments the table accepted but it does not
/// (Redis's addReplySubcommandSyntaxError).
pub fn subcommand_syntax(sub: &[u8], container: &str) -> String {
    let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
    sanitize(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        container.to_uppercase()
    ))
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub fn unknown_subcommand(sub: &[u8], container: &str) -> String {
    let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
    sanitize(format!(
        "ERR unknown subcommand '{sub}'. Try {} HELP.",
        container.to_uppercase()
    ))
}

/// `ERR invalid expire time in '<cmd>' command`.
pub fn invalid_expire(cmd: &str) -> String {
    format!("ERR invalid expire time in '{cmd}' command")
}

/// `ERR Unsupported option <opt>` (EXPIRE family).
pub fn unsupported_option(opt: &[u8]) -> String {
    format!("ERR Unsupported option {}", String::from_utf8_lossy(opt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text() {
        let args = vec![Bytes::from("foo"), Bytes::from("a"), Bytes::from("b\nc")];
        assert_eq!(
            unknown_command(&args),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b c' "
        );
        assert_eq!(
            unknown_command(&[Bytes::from("x")]),
            "ERR unknown command 'x', with args beginning with: "
        );
    }
}
