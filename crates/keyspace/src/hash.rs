//! The hash commands: HSET and friends, counters, HRANDFIELD, HSCAN.
//!
//! A hash starts as a small vector of pairs in insertion order (Redis's
//! `listpack`: HGETALL on a small hash answers in that order) and becomes a
//! hash map (`hashtable`) once it holds more than `hash-max-listpack-entries`
//! fields or a field or value longer than `hash-max-listpack-value` bytes is
//! stored ([`pack::limits`]). Like Redis it never converts back.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::longdouble::LongDouble;
use crate::notify as ev;
use crate::pack::{self, Pack};
use crate::value::Value;
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use hashbrown::HashMap;
use rand::Rng;
use shardis_protocol::Reply;
use std::hash::BuildHasher;

/// HSCAN's default COUNT.
const SCAN_DEFAULT_COUNT: usize = 10;

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    /// Small: fields and values alternating in one [`Pack`], in insertion
    /// order (`listpack`).
    Listpack(Pack),
    /// Large: a hash map (`hashtable`); iteration order is unspecified.
    Table(Box<HashMap<Bytes, Bytes>>),
}

impl Default for Hash {
    fn default() -> Hash {
        Hash::Listpack(Pack::new())
    }
}

impl Hash {
    /// A hash from pairs, encoded as Redis would after inserting them one by
    /// one (a repeated field keeps its last value).
    pub fn from_pairs(pairs: Vec<(Bytes, Bytes)>) -> Hash {
        let l = pack::limits();
        let mut h = if pairs.len() > l.hash_entries
            || pairs
                .iter()
                .any(|(f, v)| f.len() > l.hash_value || v.len() > l.hash_value)
        {
            Hash::Table(Box::new(HashMap::with_capacity(pairs.len())))
        } else {
            Hash::default()
        };
        for (f, v) in pairs {
            h.set(&f, &v);
        }
        h
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(p) => p.len() / 2,
            Hash::Table(m) => m.len(),
        }
    }

    /// True when there are no fields (never stored: empty hashes are deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `field` is in a pack.
    fn find(p: &Pack, field: &[u8]) -> Option<pack::Pos> {
        let mut at = p.first();
        while at < p.end() {
            if p.get(at) == field {
                return Some(at);
            }
            at = p.next(p.next(at));
        }
        None
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(p) => Hash::find(p, field).map(|at| p.get(p.next(at))),
            Hash::Table(m) => m.get(field).map(|v| &v[..]),
        }
    }

    /// Sets `field` to `value`; true if the field is new. Converts to a
    /// table first when either is too long, and after when there are too
    /// many fields (Redis's hashTypeTryConversion / hashTypeSet).
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let l = pack::limits();
        if field.len() > l.hash_value || value.len() > l.hash_value {
            self.make_table();
        }
        match self {
            Hash::Listpack(p) => {
                if let Some(at) = Hash::find(p, field) {
                    let v = p.next(at);
                    if p.get(v) != value {
                        p.replace(v, value);
                    }
                    return false;
                }
                p.push_back(&[field, value]);
                if p.len() / 2 > l.hash_entries {
                    self.make_table();
                }
                true
            }
            Hash::Table(m) => m
                .insert(Bytes::copy_from_slice(field), Bytes::copy_from_slice(value))
                .is_none(),
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(p) => match Hash::find(p, field) {
                Some(at) => {
                    p.remove(at, 2);
                    true
                }
                None => false,
            },
            Hash::Table(m) => m.remove(field).is_some(),
        }
    }

    /// Every pair (insertion order while small).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Listpack(p) => {
                let mut it = p.iter();
                Box::new(std::iter::from_fn(move || Some((it.next()?, it.next()?))))
            }
            Hash::Table(m) => Box::new(m.iter().map(|(f, v)| (&f[..], &v[..]))),
        }
    }

    fn make_table(&mut self) {
        if let Hash::Listpack(p) = self {
            let mut m = HashMap::with_capacity(p.len() / 2);
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                m.insert(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
            }
            *self = Hash::Table(Box::new(m));
        }
    }
}

fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// The hash at `key`: `Ok(None)` if missing, WRONGTYPE if not a hash.
fn hash_mut<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut Hash>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, mode) {
        None => Ok(None),
        Some(f) => match &mut f.slot.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// The hash at `key` for a write, created empty if missing (Redis's
/// `hashTypeLookupWriteOrCreate`). The caller must leave it non-empty.
fn hash_or_create<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
) -> Result<&'a mut Hash, Reply> {
    if hash_mut(ks, ctx, key, Lookup::Write)?.is_none() {
        let db = ctx.db;
        ks.insert_new(ctx, db, key, Value::Hash(Box::default()), None);
    }
    Ok(hash_mut(ks, ctx, key, Lookup::Write)?.expect("just created"))
}

/// HSET key field value [field value ...] / HMSET (replies OK).
pub fn hset(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], hmset: bool) -> Reply {
    if args.len() % 2 == 1 {
        return Reply::Error(errors::wrong_arity(if hmset { "hmset" } else { "hset" }));
    }
    let h = match hash_or_create(ks, ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let created = args[2..].chunks(2).filter(|p| h.set(&p[0], &p[1])).count();
    ctx.stats.dirty += ((args.len() - 2) / 2) as u64;
    ctx.notify(ev::HASH, "hset", &args[1]);
    ctx.propagate_as_sent(args);
    if hmset {
        Reply::OK
    } else {
        Reply::Integer(created as i64)
    }
}

/// HSETNX key field value
pub fn hsetnx(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match hash_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(Some(h)) if h.get(&args[2]).is_some() => return Reply::Integer(0),
        Ok(_) => {}
    }
    let h = match hash_or_create(ks, ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    h.set(&args[2], &args[3]);
    ctx.stats.dirty += 1;
    ctx.notify(ev::HASH, "hset", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

/// Runs `f` on the hash at `key` for a read command; `missing` if absent.
fn read(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    missing: Reply,
    f: impl FnOnce(&Hash) -> Reply,
) -> Reply {
    match hash_mut(ks, ctx, key, Lookup::Read) {
        Err(e) => e,
        Ok(None) => missing,
        Ok(Some(h)) => f(h),
    }
}

fn bulk_or_nil(v: Option<&[u8]>) -> Reply {
    v.map_or(Reply::Nil, |v| Reply::Bulk(owned(v)))
}

/// HGET key field
pub fn hget(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    read(ks, ctx, &args[1], Reply::Nil, |h| {
        bulk_or_nil(h.get(&args[2]))
    })
}

/// HMGET key field [field ...]
pub fn hmget(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let fields = &args[2..];
    let missing = Reply::Array(vec![Reply::Nil; fields.len()]);
    read(ks, ctx, &args[1], missing, |h| {
        Reply::Array(fields.iter().map(|f| bulk_or_nil(h.get(f))).collect())
    })
}

/// HDEL key field [field ...]
pub fn hdel(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let h = match hash_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(h)) => h,
    };
    let mut deleted = 0;
    for f in &args[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                // Redis stops at the field that empties the hash.
                break;
            }
        }
    }
    let empty = h.is_empty();
    if empty {
        ks.remove(ctx.db, key);
    }
    if deleted > 0 {
        ctx.notify(ev::HASH, "hdel", key);
        if empty {
            ctx.notify(ev::GENERIC, "del", key);
        }
        ctx.stats.dirty += deleted;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(deleted as i64)
}

/// HLEN key
pub fn hlen(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    read(ks, ctx, &args[1], Reply::Integer(0), |h| {
        Reply::Integer(h.len() as i64)
    })
}

/// HSTRLEN key field
pub fn hstrlen(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    read(ks, ctx, &args[1], Reply::Integer(0), |h| {
        Reply::Integer(h.get(&args[2]).map_or(0, |v| v.len() as i64))
    })
}

/// HEXISTS key field
pub fn hexists(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    read(ks, ctx, &args[1], Reply::Integer(0), |h| {
        Reply::Integer(h.get(&args[2]).is_some() as i64)
    })
}

/// What HKEYS/HVALS/HGETALL return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetAll {
    /// HKEYS
    Keys,
    /// HVALS
    Values,
    /// HGETALL (a map in RESP3)
    Both,
}

/// HKEYS / HVALS / HGETALL key
pub fn getall(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], what: GetAll) -> Reply {
    let missing = if what == GetAll::Both {
        Reply::Map(Vec::new())
    } else {
        Reply::Array(Vec::new())
    };
    read(ks, ctx, &args[1], missing, |h| {
        let pairs = h.iter();
        match what {
            GetAll::Keys => Reply::Array(pairs.map(|(f, _)| Reply::Bulk(owned(f))).collect()),
            GetAll::Values => Reply::Array(pairs.map(|(_, v)| Reply::Bulk(owned(v))).collect()),
            GetAll::Both => Reply::Map(
                pairs
                    .map(|(f, v)| (Reply::Bulk(owned(f)), Reply::Bulk(owned(v))))
                    .collect(),
            ),
        }
    })
}

/// HINCRBY key field increment
pub fn hincrby(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let incr = match parse_i64(&args[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let h = match hash_or_create(ks, ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let current = match h.get(&args[2]) {
        None => 0,
        Some(v) => match shardis_protocol::decode::parse_int(v) {
            Some(n) => n,
            None => return err(errors::HASH_NOT_INTEGER),
        },
    };
    let Some(sum) = current.checked_add(incr) else {
        return err(errors::INCR_OVERFLOW);
    };
    h.set(&args[2], sum.to_string().as_bytes());
    ctx.stats.dirty += 1;
    ctx.notify(ev::HASH, "hincrby", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(sum)
}

/// HINCRBYFLOAT key field increment (in x87 long double, propagated as
/// `HSET key field <result>`).
pub fn hincrbyfloat(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let Some(incr) = LongDouble::parse(&args[3]) else {
        return err(errors::NOT_FLOAT);
    };
    if incr.is_nan_or_inf() {
        return err(errors::VALUE_NAN_OR_INF);
    }
    let h = match hash_or_create(ks, ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let current = match h.get(&args[2]) {
        None => LongDouble::from_i64(0),
        Some(v) => match LongDouble::parse(v) {
            Some(c) => c,
            None => return err(errors::HASH_NOT_FLOAT),
        },
    };
    let sum = current.add(incr);
    if sum.is_nan_or_inf() {
        return err(errors::NAN_OR_INF);
    }
    let text = Bytes::from(sum.to_human());
    h.set(&args[2], &text);
    ctx.stats.dirty += 1;
    ctx.notify(ev::HASH, "hincrbyfloat", &args[1]);
    ctx.propagate(vec![
        Bytes::from_static(b"HSET"),
        args[1].clone(),
        args[2].clone(),
        text.clone(),
    ]);
    Reply::Bulk(text)
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(raw) = args.get(2) else {
        let n = match hash_mut(ks, ctx, key, Lookup::Read) {
            Err(e) => return e,
            Ok(None) => return Reply::Nil,
            Ok(Some(h)) => h.len(),
        };
        let i = ks.rng.gen_range(0..n);
        // A second lookup that counts no hit (the key was just found).
        let h = hash_mut(ks, ctx, key, Lookup::Write)
            .ok()
            .flatten()
            .expect("found above");
        return Reply::Bulk(owned(h.iter().nth(i).expect("i < len").0));
    };
    let count = match parse_i64(raw) {
        Ok(i64::MIN) => return err(errors::HRANDFIELD_RANGE),
        Ok(n) => n,
        Err(e) => return e,
    };
    let withvalues = match args.get(3) {
        _ if args.len() > 4 => return err(errors::SYNTAX),
        Some(a) if a.eq_ignore_ascii_case(b"withvalues") => true,
        Some(_) => return err(errors::SYNTAX),
        None => false,
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return err(errors::VALUE_OUT_OF_RANGE);
    }
    // Bytes clones are reference counts: the pairs are not copied.
    let pairs: Vec<(Bytes, Bytes)> = match hash_mut(ks, ctx, key, Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(h)) => h.iter().map(|(f, v)| (owned(f), owned(v))).collect(),
    };
    let n = pairs.len();
    let rng = &mut ks.rng;
    let picked: Vec<&(Bytes, Bytes)> = if count < 0 || count == 1 {
        // Repeats allowed (and a single pick needs no uniqueness).
        (0..count.unsigned_abs())
            .map(|_| &pairs[rng.gen_range(0..n)])
            .collect()
    } else if count as u64 >= n as u64 {
        pairs.iter().collect()
    } else {
        // A partial Fisher-Yates shuffle: `count` distinct fields.
        let count = count as usize;
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = rng.gen_range(i..n);
            idx.swap(i, j);
        }
        idx[..count].iter().map(|&i| &pairs[i]).collect()
    };
    let mut out = Vec::with_capacity(picked.len() * if withvalues { 2 } else { 1 });
    for (f, v) in picked {
        let (f, v) = (Reply::Bulk(f.clone()), Reply::Bulk(v.clone()));
        match (withvalues, ctx.resp3) {
            (false, _) => out.push(f),
            // RESP3 nests each pair, as Redis 7.0 does.
            (true, true) => out.push(Reply::Array(vec![f, v])),
            (true, false) => out.extend([f, v]),
        }
    }
    Reply::Array(out)
}

/// The order HSCAN walks a table in: field hashes, never 0 (the cursor that
/// means both "start" and "done").
fn scan_key(m: &HashMap<Bytes, Bytes>, field: &[u8]) -> u64 {
    m.hasher().hash_one(field) | 1
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A small hash is returned whole with cursor 0, as Redis does. A table is
/// walked in order of field hash: the cursor is the lowest hash not yet
/// returned, so every field present for the whole scan is returned exactly
/// once whatever inserts, deletes and resizes happen in between.
pub fn hscan(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let cursor = match crate::members::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut count = SCAN_DEFAULT_COUNT;
    let mut pattern: Option<&[u8]> = None;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if more && args[j].eq_ignore_ascii_case(b"count") {
            match parse_i64(&args[j + 1]) {
                Ok(c) if c >= 1 => count = c as usize,
                Ok(_) => return err(errors::SYNTAX),
                Err(e) => return e,
            }
        } else if more && args[j].eq_ignore_ascii_case(b"match") {
            pattern = Some(&args[j + 1]);
        } else {
            return err(errors::SYNTAX);
        }
        j += 2;
    }
    let h = match hash_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(Vec::new())]),
        Ok(Some(h)) => h,
    };
    // Like Redis, a lone `*` skips matching.
    let pattern = pattern.filter(|p| *p != b"*");
    type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;
    let (next, pairs): (u64, Pairs) = match h {
        Hash::Listpack(_) => (0, h.iter().collect()),
        Hash::Table(m) => {
            let mut cand: Vec<(u64, &Bytes, &Bytes)> = m
                .iter()
                .map(|(f, v)| (scan_key(m, f), f, v))
                .filter(|(k, _, _)| *k >= cursor)
                .collect();
            let mut next = 0;
            if cand.len() > count {
                cand.select_nth_unstable_by_key(count - 1, |c| c.0);
                let last = cand[count - 1].0;
                // Fields sharing the last hash go together: a cursor cannot
                // split them.
                let before = cand.len();
                cand.retain(|c| c.0 <= last);
                if cand.len() < before {
                    next = last + 1;
                }
            }
            (
                next,
                cand.into_iter().map(|(_, f, v)| (&f[..], &v[..])).collect(),
            )
        }
    };
    let mut items = Vec::with_capacity(pairs.len() * 2);
    for (f, v) in pairs {
        if pattern.is_none_or(|p| crate::glob::glob_match(p, f, false)) {
            items.push(Reply::Bulk(owned(f)));
            items.push(Reply::Bulk(owned(v)));
        }
    }
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    const LISTPACK_MAX_ENTRIES: usize = 512;
    use crate::members::parse_cursor;
    use crate::testutil::*;
    use bytes::Bytes;
    use shardis_protocol::Reply;
    use std::collections::{HashMap, HashSet};

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn arr(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    fn map(items: &[(&str, &str)]) -> Reply {
        Reply::Map(items.iter().map(|(f, v)| (bulk(f), bulk(v))).collect())
    }

    /// The bulk strings of a flat array reply.
    fn strings(r: &Reply) -> Vec<String> {
        let Reply::Array(items) = r else {
            panic!("not an array: {r:?}")
        };
        items
            .iter()
            .map(|i| match i {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn set_get_and_insertion_order() {
        let mut t = T::new();
        assert_eq!(t.run("HSET h b 1 a 2"), int(2));
        assert_eq!(t.run("HSET h b 3 c 4"), int(1));
        assert_eq!(t.run("HMSET h d 5"), Reply::OK);
        assert_eq!(
            t.run("HGETALL h"),
            map(&[("b", "3"), ("a", "2"), ("c", "4"), ("d", "5")])
        );
        assert_eq!(t.run("HKEYS h"), arr(&["b", "a", "c", "d"]));
        assert_eq!(t.run("HVALS h"), arr(&["3", "2", "4", "5"]));
        assert_eq!(t.run("HGET h a"), bulk("2"));
        assert_eq!(t.run("HGET h zz"), Reply::Nil);
        assert_eq!(t.run("HGET nokey a"), Reply::Nil);
        assert_eq!(
            t.run("HMGET h a zz b"),
            Reply::Array(vec![bulk("2"), Reply::Nil, bulk("3")])
        );
        assert_eq!(
            t.run("HMGET nokey a b"),
            Reply::Array(vec![Reply::Nil, Reply::Nil])
        );
        assert_eq!(t.run("HLEN h"), int(4));
        assert_eq!(t.run("HLEN nokey"), int(0));
        assert_eq!(t.run("HSTRLEN h a"), int(1));
        assert_eq!(t.run("HSTRLEN h zz"), int(0));
        assert_eq!(t.run("HEXISTS h a"), int(1));
        assert_eq!(t.run("HEXISTS h zz"), int(0));
        assert_eq!(t.run("HGETALL nokey"), map(&[]));
        assert_eq!(t.run("HKEYS nokey"), arr(&[]));
        assert_eq!(t.run("TYPE h"), Reply::Simple("hash"));
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("listpack"));
        assert_eq!(
            t.run("HSET h a 1 b"),
            err("ERR wrong number of arguments for 'hset' command")
        );
        assert_eq!(
            t.run("HMSET h a 1 b"),
            err("ERR wrong number of arguments for 'hmset' command")
        );
        assert_eq!(
            t.effects(),
            vec!["HSET h b 1 a 2", "HSET h b 3 c 4", "HMSET h d 5"]
        );
        assert_eq!(t.ctx.stats.dirty, 5);
        assert!(t.ctx.ready_keys.is_empty(), "hashes wake nobody");
    }

    #[test]
    fn hsetnx_and_hdel() {
        let mut t = T::new();
        assert_eq!(t.run("HSETNX h a 1"), int(1));
        assert_eq!(t.run("HSETNX h a 2"), int(0));
        assert_eq!(t.run("HGET h a"), bulk("1"));
        t.run("HSET h b 2 c 3");
        assert_eq!(t.run("HDEL h zz"), int(0));
        assert_eq!(t.run("HDEL nokey a"), int(0));
        assert_eq!(t.run("HDEL h a zz b"), int(2));
        assert_eq!(t.run("HGETALL h"), map(&[("c", "3")]));
        assert_eq!(t.run("HDEL h c c"), int(1));
        assert_eq!(t.run("EXISTS h"), int(0), "an emptied hash is deleted");
        assert_eq!(
            t.effects(),
            vec![
                "HSETNX h a 1",
                "HSET h b 2 c 3",
                "HDEL h a zz b",
                "HDEL h c c"
            ]
        );
    }

    #[test]
    fn wrongtype_both_ways() {
        let mut t = T::new();
        t.run("SET s v");
        for cmd in [
            "HSET s a 1",
            "HMSET s a 1",
            "HSETNX s a 1",
            "HGET s a",
            "HMGET s a",
            "HDEL s a",
            "HLEN s",
            "HSTRLEN s a",
            "HEXISTS s a",
            "HKEYS s",
            "HVALS s",
            "HGETALL s",
            "HINCRBY s a 1",
            "HINCRBYFLOAT s a 1",
            "HRANDFIELD s",
            "HRANDFIELD s 2",
            "HSCAN s 0",
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        t.run("HSET h a 1");
        for cmd in ["GET h", "INCR h", "LPUSH h x", "LLEN h", "STRLEN h"] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd}");
        }
    }

    #[test]
    fn counters() {
        let mut t = T::new();
        assert_eq!(t.run("HINCRBY h n 5"), int(5));
        assert_eq!(t.run("HINCRBY h n -7"), int(-2));
        assert_eq!(
            t.run("HINCRBY h n x"),
            err("ERR value is not an integer or out of range")
        );
        t.run("HSET h s abc big 9223372036854775807 f 1e10");
        assert_eq!(
            t.run("HINCRBY h s 1"),
            err("ERR hash value is not an integer")
        );
        assert_eq!(
            t.run("HINCRBY h big 1"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            t.run("HINCRBYFLOAT h s 1"),
            err("ERR hash value is not a float")
        );
        assert_eq!(
            t.run("HINCRBYFLOAT h x abc"),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            t.run("HINCRBYFLOAT h x inf"),
            err("ERR value is NaN or Infinity")
        );
        assert_eq!(t.run("HINCRBYFLOAT h n 1.5e3"), bulk("1498"));
        assert_eq!(t.run("HINCRBYFLOAT h f 1"), bulk("10000000001"));
        assert_eq!(t.run("HINCRBYFLOAT h g 1.10"), bulk("1.1"));
        assert_eq!(t.run("HINCRBYFLOAT h g 0x10"), bulk("17.1"));
        assert_eq!(t.run("HINCRBYFLOAT h g 0.1"), bulk("17.2"));
        t.run("HSET h m 6e4931");
        assert_eq!(
            t.run("HINCRBYFLOAT h m 6e4931"),
            err("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(t.run("HINCRBYFLOAT nokey a 2"), bulk("2"));
        assert_eq!(
            t.effects(),
            vec![
                "HINCRBY h n 5",
                "HINCRBY h n -7",
                "HSET h s abc big 9223372036854775807 f 1e10",
                "HSET h n 1498",
                "HSET h f 10000000001",
                "HSET h g 1.1",
                "HSET h g 17.1",
                "HSET h g 17.2",
                "HSET h m 6e4931",
                "HSET nokey a 2",
            ]
        );
    }

    #[test]
    fn encodings_convert_one_way() {
        let mut t = T::new();
        let long = "x".repeat(65);
        let at_limit = "x".repeat(64);
        t.run(&format!("HSET h a {at_limit}"));
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("listpack"));
        t.run(&format!("HSET h a {long}"));
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("hashtable"));
        t.run("HSET h a 1");
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("hashtable"), "never back");
        // A long field name converts too, also through HINCRBY.
        t.run("HSET g a 1");
        t.run(&format!("HINCRBY g {long} 1"));
        assert_eq!(t.run("OBJECT ENCODING g"), bulk("hashtable"));
        // HSETNX on an existing field stores nothing and converts nothing.
        t.run("HSET k a 1");
        assert_eq!(t.run(&format!("HSETNX k a {long}")), int(0));
        assert_eq!(t.run("OBJECT ENCODING k"), bulk("listpack"));
        for i in 0..LISTPACK_MAX_ENTRIES {
            t.run(&format!("HSET n f{i} {i}"));
        }
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("listpack"));
        t.run("HSET n one-more 1");
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("hashtable"));
        assert_eq!(t.run("HLEN n"), int(LISTPACK_MAX_ENTRIES as i64 + 1));
        t.run("HDEL n one-more f0 f1");
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("hashtable"));
        assert_eq!(t.run("HGET n f5"), bulk("5"));
        // COPY and RENAME keep the encoding and the content.
        assert_eq!(t.run("COPY n n2"), int(1));
        assert_eq!(t.run("OBJECT ENCODING n2"), bulk("hashtable"));
        assert_eq!(t.run("HLEN n2"), int(LISTPACK_MAX_ENTRIES as i64 - 2));
    }

    #[test]
    fn hrandfield_counts_and_shapes() {
        let mut t = T::new();
        assert_eq!(t.run("HRANDFIELD nokey"), Reply::Nil);
        assert_eq!(t.run("HRANDFIELD nokey 3"), arr(&[]));
        t.run("HSET h a 1 b 2 c 3");
        t.effects();
        let fields: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        for _ in 0..20 {
            let Reply::Bulk(f) = t.run("HRANDFIELD h") else {
                panic!("bulk expected")
            };
            assert!(fields.contains(&*String::from_utf8_lossy(&f)));
        }
        assert_eq!(t.run("HRANDFIELD h 0"), arr(&[]));
        let all = strings(&t.run("HRANDFIELD h 10"));
        assert_eq!(all, vec!["a", "b", "c"], "count >= size: the whole hash");
        for _ in 0..20 {
            let two = strings(&t.run("HRANDFIELD h 2"));
            assert_eq!(two.len(), 2);
            assert_ne!(two[0], two[1], "positive counts are distinct");
            let rep = strings(&t.run("HRANDFIELD h -7"));
            assert_eq!(rep.len(), 7, "negative counts repeat");
            assert!(rep.iter().all(|f| fields.contains(f)));
        }
        let flat = strings(&t.run("HRANDFIELD h -4 WITHVALUES"));
        assert_eq!(flat.len(), 8);
        let values: HashMap<&str, &str> = [("a", "1"), ("b", "2"), ("c", "3")].into();
        for p in flat.chunks(2) {
            assert_eq!(values[&*p[0]], p[1]);
        }
        t.ctx.resp3 = true;
        let Reply::Array(nested) = t.run("HRANDFIELD h 2 withvalues") else {
            panic!("array expected")
        };
        assert_eq!(nested.len(), 2, "RESP3: one array per pair");
        for p in &nested {
            let p = strings(p);
            assert_eq!(values[&*p[0]], p[1]);
        }
        t.ctx.resp3 = false;
        assert_eq!(
            t.run("HRANDFIELD h -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(
            t.run("HRANDFIELD h 4611686018427387904 WITHVALUES"),
            err("ERR value is out of range")
        );
        assert_eq!(
            t.run("HRANDFIELD h x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("HRANDFIELD h 1 WITHVALUE"), err("ERR syntax error"));
        assert_eq!(
            t.run("HRANDFIELD h 1 WITHVALUES x"),
            err("ERR syntax error")
        );
        assert_eq!(t.run("HRANDFIELD nokey 1 x"), err("ERR syntax error"));
        assert!(t.effects().is_empty());
    }

    #[test]
    fn hrandfield_on_a_table() {
        let mut t = T::new();
        for i in 0..600 {
            t.run(&format!("HSET h f{i} v{i}"));
        }
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("hashtable"));
        for _ in 0..10 {
            let five = strings(&t.run("HRANDFIELD h 5 WITHVALUES"));
            let fields: HashSet<&String> = five.iter().step_by(2).collect();
            assert_eq!(fields.len(), 5, "distinct");
            for p in five.chunks(2) {
                assert_eq!(format!("v{}", &p[0][1..]), p[1]);
            }
            let Reply::Bulk(f) = t.run("HRANDFIELD h") else {
                panic!("bulk expected")
            };
            assert_eq!(
                t.run(&format!("HEXISTS h {}", String::from_utf8_lossy(&f))),
                int(1)
            );
        }
        assert_eq!(strings(&t.run("HRANDFIELD h -1000")).len(), 1000);
        assert_eq!(strings(&t.run("HRANDFIELD h 1000")).len(), 600);
    }

    #[test]
    fn hscan_small_and_errors() {
        let mut t = T::new();
        t.run("HSET h a1 1 b 2 a2 3");
        assert_eq!(
            t.run("HSCAN h 0 COUNT 1"),
            Reply::Array(vec![bulk("0"), arr(&["a1", "1", "b", "2", "a2", "3"])]),
            "a small hash comes whole"
        );
        assert_eq!(
            t.run("HSCAN h 0 MATCH a*"),
            Reply::Array(vec![bulk("0"), arr(&["a1", "1", "a2", "3"])])
        );
        assert_eq!(
            t.run("HSCAN nokey 0"),
            Reply::Array(vec![bulk("0"), arr(&[])])
        );
        assert_eq!(t.run("HSCAN h x"), err("ERR invalid cursor"));
        assert_eq!(t.run("HSCAN nokey x"), err("ERR invalid cursor"));
        assert_eq!(t.run("HSCAN h 0 COUNT 0"), err("ERR syntax error"));
        assert_eq!(
            t.run("HSCAN h 0 COUNT x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("HSCAN h 0 TYPE string"), err("ERR syntax error"));
        assert_eq!(t.run("HSCAN h 0 MATCH"), err("ERR syntax error"));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"-").is_err());
        assert_eq!(parse_cursor(b"+7"), Ok(7));
    }

    #[test]
    fn hscan_table_returns_every_stable_field_once() {
        let mut t = T::new();
        for i in 0..600 {
            t.run(&format!("HSET h f{i} {i}"));
        }
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("hashtable"));
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cursor = String::from("0");
        let mut calls = 0;
        loop {
            let r = t.run(&format!("HSCAN h {cursor} COUNT 7"));
            let Reply::Array(parts) = r else { panic!() };
            let next = strings(&Reply::Array(vec![parts[0].clone()]))[0].clone();
            let items = strings(&parts[1]);
            assert!(items.len() <= 2 * 7 + 2, "about COUNT per call");
            for p in items.chunks(2) {
                *seen.entry(p[0].clone()).or_default() += 1;
            }
            // Churn between calls: other fields come and go.
            t.run(&format!("HSET h tmp{calls} x"));
            t.run(&format!("HDEL h tmp{}", calls / 2));
            calls += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert!(calls > 50, "a table is walked in steps");
        for i in 0..600 {
            assert_eq!(seen.get(&format!("f{i}")), Some(&1), "f{i}");
        }
    }

    #[test]
    fn rdb_round_trip_keeps_encoding() {
        use crate::rdbconv::{from_rdb, to_rdb};
        let mut t = T::new();
        t.run("HSET h b 1 a 2");
        let e = t.ks.clone_entry(&mut t.ctx, b"h").unwrap();
        let back = from_rdb(to_rdb(&e.value)).unwrap();
        assert_eq!(back, e.value);
        assert_eq!(back.encoding(), "listpack");
        let big: Vec<(Bytes, Bytes)> = (0..600)
            .map(|i| (Bytes::from(format!("f{i}")), Bytes::from("v")))
            .collect();
        let v = from_rdb(shardis_rdb::RdbValue::Hash(big)).unwrap();
        assert_eq!(v.encoding(), "hashtable");
        assert!(from_rdb(shardis_rdb::RdbValue::Hash(vec![])).is_err());
    }
}
