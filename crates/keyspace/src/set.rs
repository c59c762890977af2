//! Sets: the [`SetValue`] type and the S* commands.
//!
//! Encodings follow Redis 7.0: `intset` (sorted integers) while every
//! member is a canonical integer and there are at most
//! `set-max-intset-entries`, else `hashtable`; a set never goes back to
//! `intset`. Iterating an intset yields ascending integers, as Redis's
//! replies do. A small `hashtable` set is kept in one [`Pack`] (as Redis 7.2
//! does) until it outgrows [`PACK_MAX_ENTRIES`], then in a [`Dict`].

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::intset::IntSet;
use crate::members::{self, Dict};
use crate::notify as ev;
use crate::pack::{self, Pack};
use crate::value::{fmt_i64, Value};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use rand::Rng;
use shardis_protocol::decode::parse_int;
use shardis_protocol::Reply;

/// SPOP with a count rebuilds the set from the members that stay when they
/// are fewer than count / this (Redis's `SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;
/// Redis answers SRANDMEMBER with any count up to `LONG_MAX` by building the
/// reply until memory runs out; shardis refuses counts above this.
const MAX_RANDOM_COUNT: u64 = i32::MAX as u64;

/// Most members a string set keeps packed, and their longest length:
/// Redis 7.2's `set-max-listpack-entries` and `-value` defaults. Redis 7.0
/// has no such form, so a packed set still reports `hashtable`.
const PACK_MAX_ENTRIES: usize = 128;
const PACK_MAX_VALUE: usize = 64;

/// A set value.
#[derive(Debug, Clone)]
pub enum SetValue {
    /// `intset`: sorted distinct integers, 2, 4 or 8 bytes each.
    Ints(IntSet),
    /// A small set of strings in one [`Pack`], insertion order (reported
    /// as `hashtable`, see [`PACK_MAX_ENTRIES`]).
    Pack(Pack),
    /// `hashtable`.
    Hash(Box<Dict<()>>),
}

impl PartialEq for SetValue {
    fn eq(&self, other: &SetValue) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl Default for SetValue {
    fn default() -> SetValue {
        SetValue::Ints(IntSet::default())
    }
}

/// Where `m` is in a pack.
fn find_in(p: &Pack, m: &[u8]) -> Option<pack::Pos> {
    let mut it = p.iter();
    loop {
        let at = it.pos();
        if it.next()? == m {
            return Some(at);
        }
    }
}

impl SetValue {
    /// An empty `intset` (Redis's `createIntsetObject`).
    pub fn new() -> SetValue {
        SetValue::default()
    }

    /// An empty set encoded for its first member (Redis's `setTypeCreate`).
    pub fn for_member(first: &[u8]) -> SetValue {
        if parse_int(first).is_some() {
            SetValue::new()
        } else {
            SetValue::Pack(Pack::new())
        }
    }

    /// A set of `members`, starting as an intset (converted as needed).
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> SetValue {
        let mut s = SetValue::new();
        for m in members {
            s.add(m);
        }
        s
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Ints(_) => "intset",
            SetValue::Pack(_) | SetValue::Hash(_) => "hashtable",
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            SetValue::Ints(v) => v.len(),
            SetValue::Pack(p) => p.len(),
            SetValue::Hash(d) => d.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(v) => parse_int(m).is_some_and(|n| v.contains(n)),
            SetValue::Pack(p) => find_in(p, m).is_some(),
            SetValue::Hash(d) => d.contains(m),
        }
    }

    /// Converts an intset to a pack (or straight to a dict when it would
    /// not fit one).
    fn make_strings(&mut self, adding: &[u8]) {
        if let SetValue::Ints(v) = self {
            if v.len() < PACK_MAX_ENTRIES && adding.len() <= PACK_MAX_VALUE {
                let texts: Vec<Bytes> = v.iter().map(int_bytes).collect();
                *self = SetValue::Pack(Pack::from_items(texts.iter().map(|t| &t[..])));
            } else {
                self.make_hash();
            }
        }
    }

    fn make_hash(&mut self) -> &mut Dict<()> {
        match self {
            SetValue::Ints(v) => {
                let mut d = Dict::with_capacity(v.len() + 1);
                for n in v.iter() {
                    d.insert_unique(int_bytes(n), ());
                }
                *self = SetValue::Hash(Box::new(d));
            }
            SetValue::Pack(p) => {
                let mut d = Dict::with_capacity(p.len() + 1);
                for m in p.iter() {
                    d.insert_unique(Bytes::copy_from_slice(m), ());
                }
                *self = SetValue::Hash(Box::new(d));
            }
            SetValue::Hash(_) => {}
        }
        match self {
            SetValue::Hash(d) => d,
            _ => unreachable!("just converted"),
        }
    }

    /// Adds `m` (copied); true if it was new.
    pub fn add(&mut self, m: &[u8]) -> bool {
        if let SetValue::Ints(v) = self {
            match parse_int(m) {
                Some(n) => {
                    if v.contains(n) {
                        return false;
                    }
                    if v.len() < pack::limits().set_intset_entries {
                        v.insert(n);
                        return true;
                    }
                    self.make_hash();
                }
                None => self.make_strings(m),
            }
        }
        if let SetValue::Pack(p) = self {
            if find_in(p, m).is_some() {
                return false;
            }
            if p.len() < PACK_MAX_ENTRIES && m.len() <= PACK_MAX_VALUE {
                p.push_back(&[m]);
                return true;
            }
        }
        self.make_hash().insert(m, ())
    }

    /// Removes `m`; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(v) => match parse_int(m).map(|n| v.search(n)) {
                Some(Ok(i)) => {
                    self.remove_at(i);
                    true
                }
                _ => false,
            },
            SetValue::Pack(p) => match find_in(p, m) {
                Some(at) => {
                    p.remove(at, 1);
                    true
                }
                None => false,
            },
            SetValue::Hash(d) => d.remove(m).is_some(),
        }
    }

    /// The member at position `i` (ascending for an intset).
    pub fn member_at(&self, i: usize) -> Bytes {
        match self {
            SetValue::Ints(v) => int_bytes(v.get(i)),
            SetValue::Pack(p) => Bytes::copy_from_slice(p.get(p.nth(i).expect("i < len"))),
            SetValue::Hash(d) => d.at(i).0.clone(),
        }
    }

    /// Removes and returns the member at position `i`.
    fn remove_at(&mut self, i: usize) -> Bytes {
        match self {
            SetValue::Ints(v) => int_bytes(v.remove_at(i)),
            SetValue::Pack(p) => {
                let at = p.nth(i).expect("i < len");
                let m = Bytes::copy_from_slice(p.get(at));
                p.remove(at, 1);
                m
            }
            SetValue::Hash(d) => d.swap_remove_index(i).0,
        }
    }

    /// Every member, in Redis's reply order for an intset (ascending).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Bytes> + '_> {
        match self {
            SetValue::Ints(v) => Box::new(v.iter().map(int_bytes)),
            SetValue::Pack(p) => Box::new(p.iter().map(Bytes::copy_from_slice)),
            SetValue::Hash(d) => Box::new(d.iter().map(|(m, _)| m.clone())),
        }
    }

    fn random_index(&self, rng: &mut impl Rng) -> usize {
        rng.gen_range(0..self.len())
    }
}

fn int_bytes(n: i64) -> Bytes {
    let mut buf = [0u8; 20];
    Bytes::copy_from_slice(fmt_i64(n, &mut buf))
}

fn members_reply(members: impl Iterator<Item = Bytes>) -> Reply {
    Reply::Set(members.map(Reply::Bulk).collect())
}

/// Looks `key` up; `Err(WRONGTYPE)` if it holds another type.
fn find_set<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut SetValue>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, mode) {
        None => Ok(None),
        Some(f) => match &mut f.slot.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// Looks every key up in order (expiry, stats, type checks as Redis does),
/// then returns the sets; missing keys are `None`.
pub(crate) fn lookup_sets<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    keys: &[Bytes],
    mode: Lookup,
) -> Result<Vec<Option<&'a SetValue>>, Reply> {
    for k in keys {
        find_set(ks, ctx, k, mode)?;
    }
    let ks: &'a Keyspace = ks;
    Ok(keys
        .iter()
        .map(|k| match ks.peek(ctx, ctx.db, k) {
            Some(Value::Set(s)) => Some(&**s),
            _ => None,
        })
        .collect())
}

/// Replaces `dst` with `set` (deleted when empty, no TTL). Returns whether a
/// live `dst` was deleted.
fn store_result(ks: &mut Keyspace, ctx: &mut ExecContext, dst: &[u8], set: SetValue) -> bool {
    let db = ctx.db;
    let deleted = ks.delete(ctx, db, dst);
    if !set.is_empty() {
        ks.insert_replacing(ctx, db, dst, Value::Set(Box::new(set)), None, deleted);
    }
    deleted
}

/// SADD key member [member ...]
pub fn sadd(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let added = match find_set(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(Some(s)) => args[2..].iter().filter(|m| s.add(m)).count(),
        Ok(None) => {
            let mut s = SetValue::for_member(&args[2]);
            let n = args[2..].iter().filter(|m| s.add(m)).count();
            ks.insert_new(ctx, db, &args[1], Value::Set(Box::new(s)), None);
            n
        }
    };
    if added > 0 {
        ctx.notify(ev::SET, "sadd", &args[1]);
        ctx.stats.dirty += added as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(added as i64)
}

/// Removes members through `f` and deletes the key when it empties (then
/// true beside `f`'s result: the caller notifies its event, then `del`).
fn with_set_write<R>(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    f: impl FnOnce(&mut SetValue) -> R,
) -> Result<Option<(R, bool)>, Reply> {
    let db = ctx.db;
    let Some(e) = ks.find_entry(ctx, db, key, Lookup::Write) else {
        return Ok(None);
    };
    let mut found = e.into_found();
    let Value::Set(s) = found.value_mut() else {
        return Err(err(errors::WRONGTYPE));
    };
    let r = f(s);
    let emptied = s.is_empty();
    if emptied {
        ks.remove(db, key);
    }
    Ok(Some((r, emptied)))
}

/// SREM key member [member ...]
pub fn srem(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (n, emptied) = match with_set_write(ks, ctx, &args[1], |s| {
        args[2..].iter().filter(|m| s.remove(m)).count()
    }) {
        Ok(n) => n.unwrap_or((0, false)),
        Err(e) => return e,
    };
    if n > 0 {
        ctx.notify(ev::SET, "srem", &args[1]);
        if emptied {
            ctx.notify(ev::GENERIC, "del", &args[1]);
        }
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

/// SMEMBERS key
pub fn smembers(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(s)) => members_reply(s.iter()),
        Ok(None) => Reply::Set(vec![]),
        Err(e) => e,
    }
}

/// SISMEMBER key member
pub fn sismember(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(s) => Reply::Integer(s.is_some_and(|s| s.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(s) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| Reply::Integer(s.as_ref().is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// SCARD key
pub fn scard(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(s) => Reply::Integer(s.map_or(0, |s| s.len()) as i64),
        Err(e) => e,
    }
}

/// SPOP key [count]: propagated as `SREM key member` per popped member, or
/// as `DEL key` when the whole set is popped.
pub fn spop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return err(errors::SYNTAX);
    }
    if args.len() == 3 {
        return spop_count(ks, ctx, args);
    }
    let key = &args[1];
    let rng = &mut ks.rng.clone();
    let popped = match with_set_write(ks, ctx, key, |s| {
        let i = s.random_index(rng);
        s.remove_at(i)
    }) {
        Ok(Some(m)) => m,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let (popped, emptied) = popped;
    ks.rng = rng.clone();
    ctx.notify(ev::SET, "spop", key);
    if emptied {
        ctx.notify(ev::GENERIC, "del", key);
    }
    ctx.stats.dirty += 1;
    ctx.propagate(vec![
        Bytes::from_static(b"SREM"),
        key.clone(),
        popped.clone(),
    ]);
    Reply::Bulk(popped)
}

fn spop_count(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let count = match parse_i64(&args[2]) {
        Ok(n) if n >= 0 => n as u64,
        _ => return err(errors::OUT_OF_RANGE_POSITIVE),
    };
    let db = ctx.db;
    let size = match find_set(ks, ctx, key, Lookup::Write) {
        Ok(Some(s)) => s.len() as u64,
        Ok(None) => return Reply::Set(vec![]),
        Err(e) => return e,
    };
    if count == 0 {
        return Reply::Set(vec![]);
    }
    if count >= size {
        let slot = ks
            .find_entry(ctx, db, key, Lookup::Write)
            .expect("looked up above")
            .remove();
        let Value::Set(s) = slot.value else {
            unreachable!("type checked above")
        };
        ctx.notify(ev::SET, "spop", key);
        ctx.notify(ev::GENERIC, "del", key);
        ctx.stats.dirty += 1;
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return members_reply(s.iter());
    }
    let count = count as usize;
    let remaining = size as usize - count;
    let mut rng = ks.rng.clone();
    let Ok(Some(s)) = find_set(ks, ctx, key, Lookup::Write) else {
        unreachable!("looked up above")
    };
    let popped: Vec<Bytes> = if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        (0..count)
            .map(|_| {
                let i = s.random_index(&mut rng);
                s.remove_at(i)
            })
            .collect()
    } else {
        // Popping most of the set: move the few members that stay into a new
        // set (encoded afresh, as Redis's setTypeCreate does) and return the
        // rest.
        let mut keep = SetValue::new();
        for _ in 0..remaining {
            let i = s.random_index(&mut rng);
            let m = s.remove_at(i);
            if keep.is_empty() {
                keep = SetValue::for_member(&m);
            }
            keep.add(&m);
        }
        let old = std::mem::replace(s, keep);
        old.iter().collect()
    };
    ks.rng = rng;
    ctx.notify(ev::SET, "spop", key);
    ctx.stats.dirty += count as u64;
    for m in &popped {
        ctx.propagate(vec![Bytes::from_static(b"SREM"), key.clone(), m.clone()]);
    }
    members_reply(popped.into_iter())
}

/// SRANDMEMBER key [count]: a negative count may repeat members. With a
/// count Redis 7.0 replies an array (not a RESP3 set), whatever the case.
pub fn srandmember(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        None => None,
        Some(raw) => match parse_i64(raw) {
            Ok(i64::MIN) => return err(errors::HRANDFIELD_RANGE),
            Ok(n) if n.unsigned_abs() > MAX_RANDOM_COUNT => return err(errors::VALUE_OUT_OF_RANGE),
            Ok(n) => Some(n),
            Err(e) => return e,
        },
    };
    let mut rng = ks.rng.clone();
    let s = match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(s)) => s,
        Ok(None) => return count.map_or(Reply::Nil, |_| Reply::Array(vec![])),
        Err(e) => return e,
    };
    let reply = match count {
        None => Reply::Bulk(s.member_at(s.random_index(&mut rng))),
        Some(0) => Reply::Array(vec![]),
        Some(n) if n < 0 => Reply::Array(
            (0..n.unsigned_abs())
                .map(|_| Reply::Bulk(s.member_at(s.random_index(&mut rng))))
                .collect(),
        ),
        Some(n) if n as usize >= s.len() => Reply::Array(s.iter().map(Reply::Bulk).collect()),
        Some(n) => {
            // Distinct positions: a partial Fisher-Yates shuffle over indices.
            let mut idx: Vec<usize> = (0..s.len()).collect();
            let n = n as usize;
            for i in 0..n {
                let j = rng.gen_range(i..idx.len());
                idx.swap(i, j);
            }
            Reply::Array(
                idx[..n]
                    .iter()
                    .map(|&i| Reply::Bulk(s.member_at(i)))
                    .collect(),
            )
        }
    };
    ks.rng = rng;
    reply
}

/// SMOVE source destination member
pub fn smove(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    let src_member = match find_set(ks, ctx, src, Lookup::Write) {
        Ok(Some(s)) => s.contains(m),
        Ok(None) => return Reply::Integer(0),
        Err(e) => return e,
    };
    let dst_exists = match find_set(ks, ctx, dst, Lookup::Write) {
        Ok(d) => d.is_some(),
        Err(e) => return e,
    };
    if src == dst || !src_member {
        return Reply::Integer(src_member as i64);
    }
    let emptied = match with_set_write(ks, ctx, src, |s| s.remove(m)) {
        Err(e) => return e,
        Ok(r) => r.is_some_and(|(_, emptied)| emptied),
    };
    ctx.notify(ev::SET, "srem", src);
    if emptied {
        ctx.notify(ev::GENERIC, "del", src);
    }
    ctx.stats.dirty += 1;
    let db = ctx.db;
    if !dst_exists {
        ks.insert_new(
            ctx,
            db,
            dst,
            Value::Set(Box::new(SetValue::for_member(m))),
            None,
        );
    }
    if let Ok(Some(d)) = find_set(ks, ctx, dst, Lookup::Write) {
        if d.add(m) {
            ctx.stats.dirty += 1;
            ctx.notify(ev::SET, "sadd", dst);
        }
    }
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

/// The intersection of `sets` (smallest first), stopping at `limit` members
/// (0 = no limit), in the order of the smallest set.
fn intersect(sets: &mut [&SetValue], limit: usize) -> Vec<Bytes> {
    sets.sort_by_key(|s| s.len());
    let mut out = Vec::new();
    for m in sets[0].iter() {
        if sets[1..]
            .iter()
            .all(|s| std::ptr::eq(*s, sets[0]) || s.contains(&m))
        {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

/// SINTER key [key ...] / SINTERSTORE destination key [key ...]
pub fn sinter(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], store: bool) -> Reply {
    let keys = if store { &args[2..] } else { &args[1..] };
    let mode = if store { Lookup::Write } else { Lookup::Read };
    let sets = match lookup_sets(ks, ctx, keys, mode) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let result: Option<Vec<Bytes>> = sets
        .into_iter()
        .collect::<Option<Vec<&SetValue>>>()
        .map(|mut sets| intersect(&mut sets, 0));
    if !store {
        return members_reply(result.unwrap_or_default().into_iter());
    }
    let dst = &args[1];
    let Some(result) = result else {
        // A missing source: the result is empty and only a deleted
        // destination counts as a change.
        let db = ctx.db;
        if ks.delete(ctx, db, dst) {
            ctx.notify(ev::GENERIC, "del", dst);
            ctx.stats.dirty += 1;
            ctx.propagate_as_sent(args);
        }
        return Reply::Integer(0);
    };
    let set = SetValue::from_members(result.iter().map(|m| &m[..]));
    finish_store(ks, ctx, args, set, "sinterstore")
}

/// Stores a computed set in `args[1]` and replies its size; a change is
/// counted (and the command propagated) unless nothing was stored or deleted.
fn finish_store(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    set: SetValue,
    event: &'static str,
) -> Reply {
    let n = set.len();
    let deleted = store_result(ks, ctx, &args[1], set);
    if n > 0 {
        ctx.notify(ev::SET, event, &args[1]);
    } else if deleted {
        ctx.notify(ev::GENERIC, "del", &args[1]);
    }
    if n > 0 || deleted {
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (keys, limit) = match parse_intercard(args) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let sets = match lookup_sets(ks, ctx, keys, Lookup::Read) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let n = sets
        .into_iter()
        .collect::<Option<Vec<&SetValue>>>()
        .map_or(0, |mut sets| intersect(&mut sets, limit).len());
    Reply::Integer(n as i64)
}

/// The keys and LIMIT (0 = none) of SINTERCARD/ZINTERCARD.
pub(crate) fn parse_intercard(args: &[Bytes]) -> Result<(&[Bytes], usize), Reply> {
    let numkeys = match parse_i64(&args[1]) {
        Ok(n) if n >= 1 => n as usize,
        _ => return Err(err(errors::NUMKEYS_NOT_POSITIVE)),
    };
    if numkeys > args.len() - 2 {
        return Err(err(errors::NUMKEYS_TOO_MANY));
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"limit") && j + 1 < args.len() {
            limit = match parse_i64(&args[j + 1]) {
                Ok(n) if n >= 0 => n as usize,
                _ => return Err(err(errors::LIMIT_NEGATIVE)),
            };
            j += 2;
        } else {
            return Err(err(errors::SYNTAX));
        }
    }
    Ok((&args[2..2 + numkeys], limit))
}

/// SUNION/SDIFF key [key ...], SUNIONSTORE/SDIFFSTORE destination key [key ...]
pub fn sunion_diff(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    diff: bool,
    store: bool,
) -> Reply {
    let keys = if store { &args[2..] } else { &args[1..] };
    let mode = if store { Lookup::Write } else { Lookup::Read };
    let sets = match lookup_sets(ks, ctx, keys, mode) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut out = SetValue::new();
    if diff {
        if let Some(first) = sets[0] {
            for m in first.iter() {
                let elsewhere = sets[1..]
                    .iter()
                    .flatten()
                    .any(|s| std::ptr::eq(*s, first) || s.contains(&m));
                if !elsewhere {
                    out.add(&m);
                }
            }
        }
    } else {
        for s in sets.iter().flatten() {
            for m in s.iter() {
                out.add(&m);
            }
        }
    }
    if store {
        let event = if diff { "sdiffstore" } else { "sunionstore" };
        finish_store(ks, ctx, args, out, event)
    } else {
        members_reply(out.iter())
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let cursor = match members::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let s = match find_set(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(s)) => s,
        Ok(None) => return members::scan_reply(0, vec![]),
        Err(e) => return e,
    };
    let opts = match members::parse_scan_options(cursor, &args[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let keep = |m: &Bytes| members::scan_match(&opts.pattern, m);
    match s {
        // Small encodings are returned whole, in order, as Redis does.
        SetValue::Ints(_) | SetValue::Pack(_) => {
            members::scan_reply(0, s.iter().filter(keep).map(Reply::Bulk).collect())
        }
        SetValue::Hash(d) => {
            let (next, range) = d.scan_range(cursor, opts.count);
            let items = range
                .rev()
                .map(|i| d.at(i).0)
                .filter(|m| keep(m))
                .map(|m| Reply::Bulk(m.clone()))
                .collect();
            members::scan_reply(next, items)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use shardis_protocol::Reply;

    fn set_of(items: &[&str]) -> Reply {
        Reply::Set(items.iter().map(|s| bulk(s)).collect())
    }

    fn sorted(r: Reply) -> Vec<String> {
        let (Reply::Set(v) | Reply::Array(v)) = r else {
            panic!("not an array: {r:?}")
        };
        let mut out: Vec<String> = v
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    #[test]
    fn sadd_srem_and_encodings() {
        let mut t = T::new();
        assert_eq!(t.run("SADD s 3 1 2 1"), int(3));
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("intset"));
        assert_eq!(t.run("TYPE s"), Reply::Simple("set"));
        assert_eq!(t.run("SMEMBERS s"), set_of(&["1", "2", "3"]));
        assert_eq!(t.run("SADD s 2"), int(0));
        assert_eq!(t.run("SADD s 01"), int(1), "not canonical: a string");
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("hashtable"));
        assert_eq!(t.run("SREM s 01 1 nope"), int(2));
        assert_eq!(
            t.run("OBJECT ENCODING s"),
            bulk("hashtable"),
            "never converts back"
        );
        assert_eq!(sorted(t.run("SMEMBERS s")), vec!["2", "3"]);
        assert_eq!(t.run("SREM s 2 3"), int(2));
        assert_eq!(t.run("EXISTS s"), int(0), "an emptied set is deleted");
        assert_eq!(t.run("SADD h a 1"), int(2));
        assert_eq!(t.run("OBJECT ENCODING h"), bulk("hashtable"));
        assert_eq!(
            t.effects(),
            vec![
                "SADD s 3 1 2 1",
                "SADD s 01",
                "SREM s 01 1 nope",
                "SREM s 2 3",
                "SADD h a 1"
            ]
        );
        assert_eq!(t.ctx.stats.dirty, 3 + 1 + 2 + 2 + 2);
        t.run("SET str x");
        for cmd in [
            "SADD str a",
            "SREM str a",
            "SMEMBERS str",
            "SISMEMBER str a",
            "SMISMEMBER str a",
            "SCARD str",
            "SPOP str",
            "SPOP str 2",
            "SRANDMEMBER str",
            "SRANDMEMBER str 2",
            "SMOVE str h a",
            "SMOVE h str a",
            "SINTER h str",
            "SINTERCARD 2 h str",
            "SUNION str h",
            "SDIFF h str",
            "SINTERSTORE d h str",
            "SSCAN str 0",
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd}");
        }
    }

    #[test]
    fn intset_limit_is_512() {
        let mut t = T::new();
        let mut args = vec!["SADD".to_string(), "s".to_string()];
        args.extend((0..512).map(|i| i.to_string()));
        t.run(&args.join(" "));
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("intset"));
        assert_eq!(t.run("SADD s 512"), int(1));
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("hashtable"));
        assert_eq!(t.run("SCARD s"), int(513));
        assert_eq!(t.run("SISMEMBER s 100"), int(1));
        assert_eq!(t.run("SISMEMBER s 513"), int(0));
    }

    #[test]
    fn membership_and_cardinality() {
        let mut t = T::new();
        t.run("SADD s a b 7");
        assert_eq!(t.run("SISMEMBER s a"), int(1));
        assert_eq!(t.run("SISMEMBER s 07"), int(0));
        assert_eq!(t.run("SISMEMBER nokey a"), int(0));
        assert_eq!(
            t.run("SMISMEMBER s a x 7"),
            Reply::Array(vec![int(1), int(0), int(1)])
        );
        assert_eq!(
            t.run("SMISMEMBER nokey a b"),
            Reply::Array(vec![int(0), int(0)])
        );
        assert_eq!(t.run("SCARD s"), int(3));
        assert_eq!(t.run("SCARD nokey"), int(0));
        assert_eq!(t.run("SMEMBERS nokey"), Reply::Set(vec![]));
    }

    #[test]
    fn spop_variants_and_effects() {
        let mut t = T::new();
        t.run("SADD s 1 2 3 4 5 6 7 8 9 10");
        t.effects();
        let Reply::Bulk(m) = t.run("SPOP s") else {
            panic!()
        };
        assert_eq!(t.effects(), vec![format!("SREM s {}", m.escape_ascii())]);
        let popped = sorted(t.run("SPOP s 2"));
        assert_eq!(popped.len(), 2);
        let eff = t.effects();
        assert_eq!(eff.len(), 2);
        for p in &popped {
            assert!(eff.contains(&format!("SREM s {p}")));
        }
        assert_eq!(t.run("SCARD s"), int(7));
        // Popping most of the set rebuilds it from the members that stay.
        let popped = sorted(t.run("SPOP s 6"));
        assert_eq!(popped.len(), 6);
        assert_eq!(t.effects().len(), 6);
        assert_eq!(t.run("SCARD s"), int(1));
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("intset"));
        assert_eq!(sorted(t.run("SPOP s 5")).len(), 1);
        assert_eq!(t.effects(), vec!["DEL s"]);
        assert_eq!(t.run("EXISTS s"), int(0));
        assert_eq!(t.run("SPOP s"), Reply::Nil);
        assert_eq!(t.run("SPOP s 3"), Reply::Set(vec![]));
        t.run("SADD s a");
        t.effects();
        assert_eq!(t.run("SPOP s 0"), Reply::Set(vec![]));
        assert!(t.effects().is_empty());
        for bad in ["SPOP s -1", "SPOP s x"] {
            assert_eq!(
                t.run(bad),
                err("ERR value is out of range, must be positive")
            );
        }
        assert_eq!(t.run("SPOP s 1 2"), err("ERR syntax error"));
        assert_eq!(t.run("SPOP s"), bulk("a"));
        assert_eq!(t.run("EXISTS s"), int(0));
        // The whole-set reply of an intset is ascending.
        t.run("SADD s 3 1 2");
        assert_eq!(t.run("SPOP s 10"), set_of(&["1", "2", "3"]));
        // A popped hashtable set whose remaining members are integers becomes an intset.
        let mut args = vec!["SADD".to_string(), "big".to_string()];
        args.extend((0..600).map(|i| i.to_string()));
        t.run(&args.join(" "));
        assert_eq!(t.run("OBJECT ENCODING big"), bulk("hashtable"));
        t.run("SPOP big 590");
        assert_eq!(t.run("SCARD big"), int(10));
        assert_eq!(t.run("OBJECT ENCODING big"), bulk("intset"));
    }

    #[test]
    fn srandmember_counts() {
        let mut t = T::new();
        t.run("SADD s a b c");
        assert!(matches!(t.run("SRANDMEMBER s"), Reply::Bulk(_)));
        assert_eq!(sorted(t.run("SRANDMEMBER s 5")), vec!["a", "b", "c"]);
        let two = sorted(t.run("SRANDMEMBER s 2"));
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
        let Reply::Array(rep) = t.run("SRANDMEMBER s -10") else {
            panic!()
        };
        assert_eq!(rep.len(), 10);
        assert_eq!(t.run("SRANDMEMBER s 0"), Reply::Array(vec![]));
        assert_eq!(t.run("SRANDMEMBER nokey"), Reply::Nil);
        assert_eq!(t.run("SRANDMEMBER nokey 3"), Reply::Array(vec![]));
        assert_eq!(
            t.run("SRANDMEMBER nokey x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            t.run("SRANDMEMBER s -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(t.run("SRANDMEMBER s 1 2"), err("ERR syntax error"));
        assert!(t.effects().len() == 1, "only the SADD");
    }

    #[test]
    fn smove_cases() {
        let mut t = T::new();
        t.run("SADD a 1 2");
        t.run("SADD b x");
        t.effects();
        assert_eq!(t.run("SMOVE nokey b 1"), int(0));
        assert_eq!(t.run("SMOVE a b 5"), int(0));
        assert_eq!(t.run("SMOVE a a 1"), int(1));
        assert!(t.effects().is_empty(), "moving onto itself changes nothing");
        assert_eq!(t.run("SMOVE a b 1"), int(1));
        assert_eq!(t.run("SMOVE a c 2"), int(1));
        assert_eq!(t.run("EXISTS a"), int(0));
        assert_eq!(t.run("SMEMBERS c"), set_of(&["2"]));
        assert_eq!(t.run("OBJECT ENCODING c"), bulk("intset"));
        assert_eq!(sorted(t.run("SMEMBERS b")), vec!["1", "x"]);
        assert_eq!(t.effects(), vec!["SMOVE a b 1", "SMOVE a c 2"]);
        t.run("SET str v");
        assert_eq!(t.run("SMOVE nokey str 1"), int(0), "missing source first");
    }

    #[test]
    fn set_algebra() {
        let mut t = T::new();
        t.run("SADD a 1 2 3 4");
        t.run("SADD b 3 4 5");
        t.run("SADD c x 4");
        assert_eq!(t.run("SINTER a b"), set_of(&["3", "4"]));
        assert_eq!(t.run("SINTER a b c"), set_of(&["4"]));
        assert_eq!(t.run("SINTER a nokey"), Reply::Set(vec![]));
        assert_eq!(t.run("SINTER a a"), set_of(&["1", "2", "3", "4"]));
        assert_eq!(t.run("SUNION a b"), set_of(&["1", "2", "3", "4", "5"]));
        assert_eq!(t.run("SUNION nokey b"), set_of(&["3", "4", "5"]));
        assert_eq!(t.run("SDIFF a b"), set_of(&["1", "2"]));
        assert_eq!(t.run("SDIFF a nokey b"), set_of(&["1", "2"]));
        assert_eq!(t.run("SDIFF a a"), Reply::Set(vec![]));
        assert_eq!(t.run("SDIFF nokey a"), Reply::Set(vec![]));
        assert_eq!(t.run("SINTERCARD 2 a b"), int(2));
        assert_eq!(t.run("SINTERCARD 2 a b LIMIT 1"), int(1));
        assert_eq!(t.run("SINTERCARD 2 a b LIMIT 0"), int(2));
        assert_eq!(t.run("SINTERCARD 2 a nokey"), int(0));
        assert_eq!(
            t.run("SINTERCARD 0 a"),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            t.run("SINTERCARD x a"),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            t.run("SINTERCARD 2 a"),
            err("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(
            t.run("SINTERCARD 1 a LIMIT -1"),
            err("ERR LIMIT can't be negative")
        );
        assert_eq!(
            t.run("SINTERCARD 1 a LIMIT x"),
            err("ERR LIMIT can't be negative")
        );
        assert_eq!(t.run("SINTERCARD 1 a LIMIT"), err("ERR syntax error"));
        assert_eq!(t.run("SINTERCARD 1 a FOO 1"), err("ERR syntax error"));
        t.run("SET str v");
        assert_eq!(
            t.run("SINTER nokey str"),
            err(WRONGTYPE),
            "types checked first"
        );
        assert_eq!(t.run("SUNION nokey str"), err(WRONGTYPE));
    }

    #[test]
    fn store_variants_and_effects() {
        let mut t = T::new();
        t.run("SADD a 1 2 3");
        t.run("SADD b 2 3 x");
        t.ctx.stats.dirty = 0;
        t.effects();
        assert_eq!(t.run("SUNIONSTORE d m1 m2"), int(0));
        assert_eq!(t.run("SINTERSTORE d a m1"), int(0));
        assert_eq!(t.run("SDIFFSTORE d m1 a"), int(0));
        assert!(t.effects().is_empty(), "nothing stored, nothing deleted");
        assert_eq!(t.run("SINTERSTORE d a b"), int(2));
        assert_eq!(t.run("OBJECT ENCODING d"), bulk("intset"));
        assert_eq!(t.run("SMEMBERS d"), set_of(&["2", "3"]));
        assert_eq!(t.run("SUNIONSTORE d a b"), int(4));
        assert_eq!(t.run("OBJECT ENCODING d"), bulk("hashtable"));
        assert_eq!(t.run("SDIFFSTORE d d a"), int(1));
        assert_eq!(t.run("SMEMBERS d"), set_of(&["x"]));
        assert_eq!(t.run("SINTERSTORE d a nokey"), int(0));
        assert_eq!(t.run("EXISTS d"), int(0));
        assert_eq!(
            t.effects(),
            vec![
                "SINTERSTORE d a b",
                "SUNIONSTORE d a b",
                "SDIFFSTORE d d a",
                "SINTERSTORE d a nokey"
            ]
        );
        assert_eq!(t.ctx.stats.dirty, 4);
        // The destination loses its TTL and may have held another type.
        t.run("SET d v EX 100");
        assert_eq!(t.run("SUNIONSTORE d a"), int(3));
        assert_eq!(t.run("TTL d"), int(-1));
    }

    #[test]
    fn sscan_whole_intset_and_paged_hashtable() {
        let mut t = T::new();
        t.run("SADD s 3 1 2 10");
        assert_eq!(
            t.run("SSCAN s 0"),
            Reply::Array(vec![
                bulk("0"),
                Reply::Array(vec![bulk("1"), bulk("2"), bulk("3"), bulk("10")])
            ])
        );
        assert_eq!(
            t.run("SSCAN s 0 MATCH 1*"),
            Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("1"), bulk("10")])])
        );
        assert_eq!(
            t.run("SSCAN nokey 0 BAD"),
            Reply::Array(vec![bulk("0"), Reply::Array(vec![])])
        );
        assert_eq!(t.run("SSCAN s x"), err("ERR invalid cursor"));
        assert_eq!(t.run("SSCAN s 0 COUNT 0"), err("ERR syntax error"));
        assert_eq!(
            t.run("SSCAN s 0 COUNT x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("SSCAN s 0 TYPE string"), err("ERR syntax error"));
        // A small string set is packed and, as in Redis 7.2, returned whole.
        t.run("SADD p a b c d e f g h i j k l");
        let Reply::Array(parts) = t.run("SSCAN p 0 COUNT 2") else {
            panic!()
        };
        assert_eq!(parts[0], bulk("0"));
        assert_eq!(sorted(parts[1].clone()).len(), 12);
        let mut args = vec!["SADD".to_string(), "h".to_string()];
        args.extend((0..200).map(|i| format!("m{i}")));
        t.run(&args.join(" "));
        let mut cursor = "0".to_string();
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let Reply::Array(parts) = t.run(&format!("SSCAN h {cursor} COUNT 7")) else {
                panic!()
            };
            calls += 1;
            let Reply::Bulk(c) = &parts[0] else { panic!() };
            seen.extend(sorted(parts[1].clone()));
            cursor = String::from_utf8_lossy(c).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert!(calls > 10);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn copy_rename_and_expiry_keep_sets() {
        let mut t = T::new();
        t.run("SADD s a b");
        assert_eq!(t.run("COPY s c"), int(1));
        t.run("SADD c z");
        assert_eq!(t.run("SCARD s"), int(2), "COPY is deep");
        t.run("RENAME c r");
        assert_eq!(t.run("SCARD r"), int(3));
        t.run("PEXPIRE r 10");
        t.advance(10);
        assert_eq!(t.run("SCARD r"), int(0));
        assert_eq!(t.run("EXISTS r"), int(0));
    }
}
