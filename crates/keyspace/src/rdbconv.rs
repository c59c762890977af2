//! Conversion between keyspace [`Value`]s and the RDB crate's plain
//! [`RdbValue`]s, used by snapshots (SAVE, BGSAVE, full sync), loading, DUMP
//! and RESTORE.
//!
//! Saving forgets the in-memory encoding; loading picks the encoding Redis
//! 7.0 would pick for a freshly loaded object (for example a canonical integer
//! string becomes `int`). Each type family adds its arm to both functions.

use crate::value::{StrValue, Value};
use bytes::Bytes;
use shardis_rdb::RdbValue;

/// The plain RDB form of a value.
pub fn to_rdb(value: &Value) -> RdbValue {
    match value {
        Value::String(s) => RdbValue::String(s.to_bytes()),
        Value::List(l) => RdbValue::List(l.iter().map(Bytes::copy_from_slice).collect()),
        Value::Hash(h) => RdbValue::Hash(
            h.iter()
                .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                .collect(),
        ),
        Value::Set(s) => RdbValue::Set(s.iter().collect()),
        Value::ZSet(z) => RdbValue::ZSet(z.iter().collect()),
        Value::Stream(s) => RdbValue::Stream(Box::new(s.to_rdb())),
    }
}

/// A keyspace value from its RDB form, encoded as Redis would encode it after
/// loading. `Err` names what the keyspace cannot hold (a type it does not
/// implement, or content Redis would refuse).
pub fn from_rdb(v: RdbValue) -> Result<Value, String> {
    match v {
        // rdbLoadObject → tryObjectEncoding: canonical integers become `int`,
        // everything else keeps its bytes (embstr/raw by length).
        RdbValue::String(b) => Ok(Value::String(
            match shardis_protocol::decode::parse_int(&b) {
                Some(n) => StrValue::Int(n),
                None => StrValue::Str(crate::CompactBytes::new(&b)),
            },
        )),
        // Redis refuses empty lists in an RDB (rdbLoadObject: empty keys).
        RdbValue::List(items) if items.is_empty() => Err("empty list".into()),
        RdbValue::List(items) => Ok(Value::List(Box::new(crate::list::List::from_items(
            items.iter().map(|i| &i[..]),
        )))),
        RdbValue::Hash(pairs) if pairs.is_empty() => Err("empty hash".into()),
        // Loading converts as inserting would (rdbLoadObject checks the
        // same two limits), so a small hash stays `listpack`.
        RdbValue::Hash(pairs) => Ok(Value::Hash(Box::new(crate::hash::Hash::from_pairs(pairs)))),
        RdbValue::Set(items) if items.is_empty() => Err("empty set".into()),
        // rdbLoadObject starts small sets as intsets and converts on the
        // first non-integer, as adding would; an intset payload stays one.
        RdbValue::Set(items) => Ok(Value::Set(Box::new(crate::set::SetValue::from_members(
            items.iter().map(|m| &m[..]),
        )))),
        RdbValue::ZSet(pairs) if pairs.is_empty() => Err("empty zset".into()),
        // Loading picks listpack or skiplist by the same two limits.
        RdbValue::ZSet(pairs) => Ok(Value::ZSet(Box::new(crate::zset::ZSetValue::from_pairs(
            pairs,
        )))),
        // Streams may be empty (XDEL keeps the key); groups come along.
        RdbValue::Stream(s) => Ok(Value::Stream(Box::new(crate::stream::Stream::from_rdb(
            *s,
        )?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbIndex;
    use bytes::Bytes;

    #[test]
    fn strings_round_trip_with_load_encodings() {
        for (raw, enc) in [
            ("123", "int"),
            ("-9223372036854775808", "int"),
            ("0123", "embstr"),
            ("-0", "embstr"),
            ("", "embstr"),
        ] {
            let v = from_rdb(RdbValue::String(Bytes::from(raw))).unwrap();
            assert_eq!(v.encoding(), enc, "{raw:?}");
            assert_eq!(to_rdb(&v), RdbValue::String(Bytes::from(raw)));
        }
        let long = "x".repeat(45);
        let v = from_rdb(RdbValue::String(Bytes::from(long.clone()))).unwrap();
        assert_eq!(v.encoding(), "raw");
        let mut raw = StrValue::from_slice(b"ab");
        raw.make_raw().push(b'c');
        assert_eq!(
            to_rdb(&Value::String(raw)),
            RdbValue::String(Bytes::from("abc"))
        );
    }

    #[test]
    fn streams_round_trip_with_groups() {
        let mut t = crate::testutil::T::new();
        t.run("XADD s 1-1 a 1 b 2");
        t.run("XADD s 2-0 c 3");
        t.run("XDEL s 1-1");
        t.run("XGROUP CREATE s g 0");
        t.run("XREADGROUP GROUP g alice STREAMS s >");
        let v = t.ks.peek(&t.ctx, DbIndex(0), b"s").unwrap().clone();
        let rdb = to_rdb(&v);
        assert_eq!(to_rdb(&from_rdb(rdb.clone()).unwrap()), rdb);
        let empty = RdbValue::Stream(Box::default());
        assert_eq!(from_rdb(empty).unwrap().type_name(), "stream");
    }
}
