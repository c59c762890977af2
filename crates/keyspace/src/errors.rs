//! Every error text the keyspace replies with, byte for byte as Redis 7.0.15
//! writes them (without the leading `-`).

use shardis_protocol::Reply;

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

/// The reply for one of the constant texts above.
pub fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

/// `ERR invalid expire time in '<cmd>' command`.
pub fn invalid_expire(cmd: &str) -> Reply {
    Reply::Error(format!("ERR invalid expire time in '{cmd}' command"))
}

/// `ERR Unsupported option <opt>` (EXPIRE family).
pub fn unsupported_option(opt: &[u8]) -> Reply {
    Reply::Error(format!(
        "ERR Unsupported option {}",
        String::from_utf8_lossy(opt)
    ))
}

/// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// `ERR wrong number of arguments for '<cmd>' command` (for subcommands,
/// `object|encoding`, whose arity the caller does not check).
pub fn wrong_arity(name: &str) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}
