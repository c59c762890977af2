//! The values keys hold. One variant per Redis type; each type's commands live
//! in their own module (`string`, and later `list`, `hash`, `set`, `zset`).

use crate::compact::CompactBytes;
use bytes::Bytes;

/// Redis's embstr limit: strings up to this length report `embstr`.
const EMBSTR_MAX: usize = 44;
/// Redis shares the integer objects 0..10000 (OBJECT REFCOUNT shows `INT_MAX`).
const SHARED_INTEGERS: i64 = 10000;

/// A stored value: 24 bytes, because every key's slot holds one inline.
/// Strings, the common case, live in it; the collections are boxed (their
/// own headers are 32 to 152 bytes, paid only by keys of that type).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(StrValue),
    /// A list, head first (see [`crate::list`]).
    List(Box<crate::list::List>),
    /// A hash (see [`crate::hash`]).
    Hash(Box<crate::hash::Hash>),
    /// A set (see [`crate::set`]).
    Set(Box<crate::set::SetValue>),
    /// A sorted set (see [`crate::zset`]).
    ZSet(Box<crate::zset::ZSetValue>),
    /// A stream (see [`crate::stream`]).
    Stream(Box<crate::stream::Stream>),
}

/// A string value in one of the representations Redis distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    /// A canonical decimal i64 (Redis's `int` encoding).
    Int(i64),
    /// Bytes as SET stores them (inline up to 22 bytes); never looks like a
    /// canonical integer (those become [`StrValue::Int`]). `embstr` up to 44
    /// bytes, else `raw`.
    Str(CompactBytes),
    /// A string that grows in place (APPEND, SETRANGE): always `raw`. Boxed
    /// to keep the enum at 24 bytes; such strings are rare and long.
    Raw(Box<Vec<u8>>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::String(s) => s.encoding(),
            // Redis 7.0 keeps every list in a quicklist (listpack lists are 7.2).
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// A string value from bytes, encoded as SET would (`int` when canonical).
    pub fn string(b: &[u8]) -> Value {
        Value::String(StrValue::from_slice(b))
    }

    /// What OBJECT REFCOUNT reports.
    pub(crate) fn refcount(&self) -> i64 {
        match self {
            Value::String(StrValue::Int(n)) if (0..SHARED_INTEGERS).contains(n) => i32::MAX as i64,
            _ => 1,
        }
    }

    /// The string, if this is one.
    #[allow(unreachable_patterns)] // the other types arrive with their families
    pub(crate) fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string, mutably, if this is one.
    #[allow(unreachable_patterns)]
    pub(crate) fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl StrValue {
    /// Copies `b` (never keeps a slice of the caller's buffer), as an `int`
    /// when it is a canonical i64.
    pub fn from_slice(b: &[u8]) -> StrValue {
        match shardis_protocol::decode::parse_int(b) {
            Some(n) => StrValue::Int(n),
            None => StrValue::Str(CompactBytes::new(b)),
        }
    }

    /// OBJECT ENCODING's name for this representation.
    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            StrValue::Str(_) | StrValue::Raw(_) => "raw",
        }
    }

    /// Length in bytes (of the decimal form for integers).
    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => int_len(*n),
            StrValue::Str(b) => b.len(),
            StrValue::Raw(v) => v.len(),
        }
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as an owned `Bytes` copy (for a reply or an effect).
    pub fn to_bytes(&self) -> Bytes {
        self.with_bytes(Bytes::copy_from_slice)
    }

    /// Calls `f` with the bytes, formatting integers on the stack.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => {
                let mut buf = [0u8; 20];
                f(fmt_i64(*n, &mut buf))
            }
            StrValue::Str(b) => f(b),
            StrValue::Raw(v) => f(v),
        }
    }

    /// The value as an integer if it is a valid one (Redis's string2ll).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            StrValue::Str(b) => shardis_protocol::decode::parse_int(b),
            StrValue::Raw(v) => shardis_protocol::decode::parse_int(v),
        }
    }

    /// Turns the value into a growable buffer (APPEND, SETRANGE) and returns it.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            let v = self.with_bytes(|b| b.to_vec());
            *self = StrValue::Raw(Box::new(v));
        }
        match self {
            StrValue::Raw(v) => v,
            _ => unreachable!("just converted"),
        }
    }
}

/// Decimal digits of `n` in `buf`, without allocating.
pub(crate) fn fmt_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

fn int_len(n: i64) -> usize {
    let mut buf = [0u8; 20];
    fmt_i64(n, &mut buf).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(Value::string(b"123").encoding(), "int");
        assert_eq!(Value::string(b"-0").encoding(), "embstr");
        assert_eq!(Value::string(b"0123").encoding(), "embstr");
        assert_eq!(Value::string(&[b'x'; 44]).encoding(), "embstr");
        assert_eq!(Value::string(&[b'x'; 45]).encoding(), "raw");
        assert_eq!(Value::string(b"9223372036854775808").encoding(), "embstr");
        let mut s = StrValue::from_slice(b"12");
        s.make_raw().push(b'3');
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.as_i64(), Some(123));
    }

    #[test]
    fn values_are_24_bytes() {
        assert_eq!(std::mem::size_of::<StrValue>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn int_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(fmt_i64(i64::MIN, &mut buf), b"-9223372036854775808");
        assert_eq!(StrValue::Int(-45).len(), 3);
        assert_eq!(StrValue::Int(0).to_bytes(), Bytes::from_static(b"0"));
        assert_eq!(Value::string(b"5").refcount(), i32::MAX as i64);
        assert_eq!(Value::string(b"10000").refcount(), 1);
    }
}
