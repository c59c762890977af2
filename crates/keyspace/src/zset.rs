//! Sorted sets: the [`ZSetValue`] type and the Z* commands, blocking forms
//! included (tried once here; [`Reply::NilArray`] tells the server to block).
//!
//! A small sorted set is one [`Pack`] of (member, score) entries ordered by
//! (score, member), Redis's `listpack`, while it has at most
//! `zset-max-listpack-entries` members of at most `zset-max-listpack-value`
//! bytes ([`pack::limits`]). Past that it becomes a member → score [`Dict`]
//! plus a [`SkipList`], so rank and range operations are O(log n)
//! (`skiplist`), and never goes back, as in Redis. Replies are Redis's for
//! either (ZSCAN returns a `listpack` set whole and in order).

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::members::{self, Dict};
use crate::notify as ev;
use crate::pack::{self, Pack};
use crate::value::Value;
use crate::zskiplist::{LexBound, LexRange, ScoreRange, SkipList, NIL};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use rand::Rng;
use shardis_protocol::reply::format_double;
use shardis_protocol::Reply;

/// ZRANDMEMBER counts beyond this are refused (Redis would build the reply
/// until memory runs out).
const MAX_RANDOM_COUNT: u64 = i32::MAX as u64;

/// A sorted set value.
#[derive(Debug, Clone)]
pub struct ZSetValue(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// `listpack`: member and score entries alternating, ordered by
    /// (score, member); scores as [`pack::encode_score`] writes them.
    Pack(Pack),
    /// `skiplist`: a member → score dict plus the ordered skip list.
    Skip(Box<Big>),
}

#[derive(Debug, Clone)]
struct Big {
    dict: Dict<f64>,
    zsl: SkipList,
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &ZSetValue) -> bool {
        self.len() == other.len() && self.iter().all(|(m, s)| other.score(&m) == Some(s))
    }
}

impl Default for ZSetValue {
    fn default() -> ZSetValue {
        ZSetValue::new()
    }
}

/// (member, score) pairs of a pack, front to back.
fn pairs(p: &Pack) -> impl Iterator<Item = (&[u8], f64)> + '_ {
    let mut it = p.iter();
    std::iter::from_fn(move || Some((it.next()?, pack::decode_score(it.next()?))))
}

/// (member, score) pairs of a pack, back to front.
fn pairs_rev(p: &Pack) -> impl Iterator<Item = (&[u8], f64)> + '_ {
    let mut it = p.iter_rev();
    std::iter::from_fn(move || {
        let s = pack::decode_score(it.next()?);
        Some((it.next()?, s))
    })
}

/// Where `m` is in a pack: its member entry's position and score.
fn find_in(p: &Pack, m: &[u8]) -> Option<(pack::Pos, f64)> {
    let mut at = p.first();
    while at < p.end() {
        let sc = p.next(at);
        if p.get(at) == m {
            return Some((at, pack::decode_score(p.get(sc))));
        }
        at = p.next(sc);
    }
    None
}

fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

impl ZSetValue {
    /// An empty sorted set (`listpack` until it outgrows the limits).
    pub fn new() -> ZSetValue {
        ZSetValue(Repr::Pack(Pack::new()))
    }

    /// A sorted set of `pairs` (later duplicates overwrite the score),
    /// encoded as Redis encodes a loaded or computed set.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Bytes, f64)>) -> ZSetValue {
        let mut z = ZSetValue::new();
        for (m, s) in pairs {
            match z.score(&m) {
                Some(old) => z.set_score(&m, old, s),
                None => z.insert(&m, s),
            }
        }
        z
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        match self.0 {
            Repr::Pack(_) => "listpack",
            Repr::Skip(_) => "skiplist",
        }
    }

    /// True while packed (`listpack`).
    pub fn is_pack(&self) -> bool {
        matches!(self.0, Repr::Pack(_))
    }

    /// Bytes of the pack, or of the dict and skiplist structures without
    /// the members' heap blocks (MEMORY USAGE).
    pub(crate) fn table_bytes(&self) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.heap_bytes(),
            Repr::Skip(b) => {
                std::mem::size_of::<Big>() + b.dict.table_bytes() + b.zsl.table_bytes()
            }
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.len() / 2,
            Repr::Skip(b) => b.dict.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The score of `m`.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match &self.0 {
            Repr::Pack(p) => find_in(p, m).map(|(_, s)| s),
            Repr::Skip(b) => b.dict.get(m).copied(),
        }
    }

    /// Converts to the skiplist form (never back, as in Redis).
    fn make_skip(&mut self) {
        if let Repr::Pack(p) = &self.0 {
            let mut big = Big {
                dict: Dict::with_capacity(p.len() / 2),
                zsl: SkipList::new(),
            };
            for (m, s) in pairs(p) {
                let key = owned(m);
                big.zsl.insert(s, key.clone());
                big.dict.insert_unique(key, s);
            }
            self.0 = Repr::Skip(Box::new(big));
        }
    }

    /// Adds a member known to be absent (copied).
    pub fn insert(&mut self, m: &[u8], score: f64) {
        let l = pack::limits();
        if self.len() + 1 > l.zset_entries || m.len() > l.zset_value {
            self.make_skip();
        }
        match &mut self.0 {
            Repr::Pack(p) => {
                // A listpack keeps scores as text (d2string) or integers,
                // where -0 reads back as 0.
                let score = if score == 0.0 { 0.0 } else { score };
                let mut at = p.first();
                while at < p.end() {
                    let sc = p.next(at);
                    let s = pack::decode_score(p.get(sc));
                    if s > score || (s == score && p.get(at) > m) {
                        break;
                    }
                    at = p.next(sc);
                }
                let mut buf = [0u8; 8];
                let n = pack::encode_score(score, &mut buf);
                p.insert(at, &[m, &buf[..n]]);
            }
            Repr::Skip(b) => {
                let key = owned(m);
                b.zsl.insert(score, key.clone());
                b.dict.insert_unique(key, score);
            }
        }
    }

    fn set_score(&mut self, m: &[u8], old: f64, new: f64) {
        match &mut self.0 {
            Repr::Pack(_) => {
                self.remove(m);
                self.insert(m, new);
            }
            Repr::Skip(b) => {
                let key = b.dict.at(b.dict.position(m).expect("member")).0.clone();
                b.zsl.remove(old, m);
                b.zsl.insert(new, key);
                *b.dict.get_mut(m).expect("member") = new;
            }
        }
    }

    /// Removes `m`; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Pack(p) => match find_in(p, m) {
                Some((at, _)) => {
                    p.remove(at, 2);
                    true
                }
                None => false,
            },
            Repr::Skip(b) => match b.dict.remove(m) {
                Some(s) => {
                    b.zsl.remove(s, m);
                    true
                }
                None => false,
            },
        }
    }

    /// Every (member, score), in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (Bytes, f64)> + '_> {
        match &self.0 {
            Repr::Pack(p) => Box::new(pairs(p).map(|(m, s)| (owned(m), s))),
            Repr::Skip(b) => {
                let mut x = b.zsl.first();
                Box::new(std::iter::from_fn(move || {
                    (x != NIL).then(|| {
                        let item = (b.zsl.member(x).clone(), b.zsl.score(x));
                        x = b.zsl.next(x);
                        item
                    })
                }))
            }
        }
    }

    /// Visits the members with `min <= score < max` in order until `f`
    /// returns false (the GEO cell scans).
    pub(crate) fn walk_score_range(
        &self,
        min: f64,
        max: f64,
        mut f: impl FnMut(&[u8], f64) -> bool,
    ) {
        let r = ScoreRange {
            min,
            max,
            minex: false,
            maxex: true,
        };
        match &self.0 {
            Repr::Pack(p) => {
                for (m, s) in pairs(p).skip_while(|(_, s)| !r.gte_min(*s)) {
                    if !r.lte_max(s) || !f(m, s) {
                        break;
                    }
                }
            }
            Repr::Skip(b) => {
                let mut x = b.zsl.first_in_range(&r);
                while x != NIL && r.lte_max(b.zsl.score(x)) {
                    if !f(b.zsl.member(x), b.zsl.score(x)) {
                        break;
                    }
                    x = b.zsl.next(x);
                }
            }
        }
    }

    /// 0-based rank of `m` from the lowest (or highest when `rev`).
    pub fn rank(&self, m: &[u8], rev: bool) -> Option<usize> {
        let r = match &self.0 {
            Repr::Pack(p) => pairs(p).position(|(x, _)| x == m)? + 1,
            Repr::Skip(b) => b.zsl.rank(*b.dict.get(m)?, m),
        };
        Some(if rev { self.len() - r } else { r - 1 })
    }

    /// The member at dict position `i` (ZRANDMEMBER's pick; any fixed
    /// order of the members will do).
    fn at(&self, i: usize) -> (Bytes, f64) {
        match &self.0 {
            Repr::Pack(p) => pairs(p)
                .nth(i)
                .map(|(m, s)| (owned(m), s))
                .expect("i < len"),
            Repr::Skip(b) => {
                let (m, s) = b.dict.at(i);
                (m.clone(), *s)
            }
        }
    }

    /// Up to `limit` items after skipping `offset`, walking up (or down
    /// when `rev`) from the first item inside the range's `min` end (its
    /// `max` end when `rev`) while the other end holds: the pack form of
    /// every range walk. Like Redis, only the end the walk moves towards is
    /// checked after the start.
    fn pack_walk(
        p: &Pack,
        rev: bool,
        offset: usize,
        limit: usize,
        in_min: impl Fn(&[u8], f64) -> bool,
        in_max: impl Fn(&[u8], f64) -> bool,
    ) -> Vec<(Bytes, f64)> {
        type Bound<'a> = &'a dyn Fn(&[u8], f64) -> bool;
        let (start, keep): (Bound, Bound) = if rev {
            (&in_max, &in_min)
        } else {
            (&in_min, &in_max)
        };
        let it: Box<dyn Iterator<Item = (&[u8], f64)>> = if rev {
            Box::new(pairs_rev(p))
        } else {
            Box::new(pairs(p))
        };
        it.skip_while(|(m, s)| !start(m, *s))
            .skip(offset)
            .take(limit)
            .take_while(|(m, s)| keep(m, *s))
            .map(|(m, s)| (owned(m), s))
            .collect()
    }

    /// Up to `n` items walking from node `x` (backwards when `rev`) while
    /// `keep` holds.
    fn walk(
        b: &Big,
        mut x: u32,
        n: usize,
        rev: bool,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<(Bytes, f64)> {
        let mut out = Vec::new();
        while x != NIL && out.len() < n && keep(x) {
            out.push((b.zsl.member(x).clone(), b.zsl.score(x)));
            x = if rev { b.zsl.prev(x) } else { b.zsl.next(x) };
        }
        out
    }

    /// Items with 0-based ranks `start..=end` (already clamped), counted
    /// from the highest when `rev`.
    fn by_rank(&self, start: usize, end: usize, rev: bool) -> Vec<(Bytes, f64)> {
        let n = end - start + 1;
        match &self.0 {
            Repr::Pack(p) => ZSetValue::pack_walk(p, rev, start, n, |_, _| true, |_, _| true),
            Repr::Skip(b) => {
                let first = if rev {
                    b.zsl.by_rank(self.len() - start)
                } else {
                    b.zsl.by_rank(start + 1)
                };
                ZSetValue::walk(b, first, n, rev, |_| true)
            }
        }
    }

    /// Moves `offset` nodes on from `x` (by rank, O(log n)).
    fn skip(b: &Big, x: u32, offset: usize, rev: bool) -> u32 {
        if x == NIL || offset == 0 {
            return x;
        }
        let r = b.zsl.rank_of(x);
        let target = if rev {
            r.checked_sub(offset).filter(|&t| t >= 1)
        } else {
            Some(r + offset).filter(|&t| t <= b.dict.len())
        };
        target.map_or(NIL, |t| b.zsl.by_rank(t))
    }

    fn by_score(
        &self,
        r: &ScoreRange,
        offset: usize,
        limit: usize,
        rev: bool,
    ) -> Vec<(Bytes, f64)> {
        // Like Redis, check only the end the walk moves towards.
        match &self.0 {
            Repr::Pack(p) => ZSetValue::pack_walk(
                p,
                rev,
                offset,
                limit,
                |_, s| r.gte_min(s),
                |_, s| r.lte_max(s),
            ),
            Repr::Skip(b) => {
                let x = if rev {
                    b.zsl.last_in_range(r)
                } else {
                    b.zsl.first_in_range(r)
                };
                let x = ZSetValue::skip(b, x, offset, rev);
                ZSetValue::walk(b, x, limit, rev, |x| {
                    let v = b.zsl.score(x);
                    if rev {
                        r.gte_min(v)
                    } else {
                        r.lte_max(v)
                    }
                })
            }
        }
    }

    fn by_lex(&self, r: &LexRange, offset: usize, limit: usize, rev: bool) -> Vec<(Bytes, f64)> {
        match &self.0 {
            Repr::Pack(p) => ZSetValue::pack_walk(
                p,
                rev,
                offset,
                limit,
                |m, _| r.gte_min(m),
                |m, _| r.lte_max(m),
            ),
            Repr::Skip(b) => {
                let x = if rev {
                    b.zsl.last_in_lex(r)
                } else {
                    b.zsl.first_in_lex(r)
                };
                let x = ZSetValue::skip(b, x, offset, rev);
                ZSetValue::walk(b, x, limit, rev, |x| {
                    let m = b.zsl.member(x);
                    if rev {
                        r.gte_min(m)
                    } else {
                        r.lte_max(m)
                    }
                })
            }
        }
    }

    /// ZCOUNT: members with a score in `r`.
    fn count_in_scores(&self, r: &ScoreRange) -> usize {
        match &self.0 {
            Repr::Pack(p) => pairs(p)
                .filter(|(_, s)| r.gte_min(*s) && r.lte_max(*s))
                .count(),
            Repr::Skip(b) => count_between(b, b.zsl.first_in_range(r), b.zsl.last_in_range(r)),
        }
    }

    /// ZLEXCOUNT: members in `r`.
    fn count_in_lex(&self, r: &LexRange) -> usize {
        match &self.0 {
            Repr::Pack(p) => pairs(p)
                .filter(|(m, _)| r.gte_min(m) && r.lte_max(m))
                .count(),
            Repr::Skip(b) => count_between(b, b.zsl.first_in_lex(r), b.zsl.last_in_lex(r)),
        }
    }
}

fn count_between(b: &Big, first: u32, last: u32) -> usize {
    if first == NIL || last == NIL {
        return 0;
    }
    b.zsl.rank_of(last) + 1 - b.zsl.rank_of(first)
}

// ---------------------------------------------------------------------------
// Argument parsing
// ---------------------------------------------------------------------------

/// C's `strtod` on the whole of `s`: `Some((value, erange))` when all of it
/// is a number. `erange` marks an overflow to infinity or an underflow to 0.
fn strtod_all(s: &[u8]) -> Option<(f64, bool)> {
    let t = std::str::from_utf8(s).ok()?;
    if let Some(v) = parse_hex_float(t) {
        return Some((v, v.is_infinite()));
    }
    let v: f64 = t.parse().ok()?;
    let body = t.trim_start_matches(['+', '-']);
    let erange = if v.is_infinite() {
        !body.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("inf"))
    } else if v == 0.0 {
        body.split(['e', 'E'])
            .next()
            .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
    } else {
        false
    };
    Some((v, erange))
}

/// strtod's hexadecimal form: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`.
fn parse_hex_float(t: &str) -> Option<f64> {
    let (neg, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mant, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// Redis's `getDoubleFromObject`: no empty string, no leading space, no
/// overflow, no NaN.
pub(crate) fn parse_score(s: &[u8]) -> Option<f64> {
    if s.first()
        .is_none_or(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    match strtod_all(s)? {
        (v, false) if !v.is_nan() => Some(v),
        _ => None,
    }
}

/// One end of a score range (zslParseRange): `(` makes it exclusive; the
/// number is strtod's (leading spaces allowed, empty is 0), never NaN.
fn parse_range_item(s: &[u8]) -> Option<(f64, bool)> {
    let (ex, body) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return Some((0.0, ex));
    }
    let start = body
        .iter()
        .position(|c| !(c.is_ascii_whitespace() || *c == 0x0b))?;
    let (v, _) = strtod_all(&body[start..])?;
    (!v.is_nan()).then_some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    match (parse_range_item(min), parse_range_item(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        }),
        _ => Err(err(errors::ZRANGE_NOT_FLOAT)),
    }
}

fn parse_lex_item(s: &Bytes) -> Option<LexBound> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(Bytes::copy_from_slice(&s[1..]))),
        b'[' => Some(LexBound::Incl(Bytes::copy_from_slice(&s[1..]))),
        _ => None,
    }
}

fn parse_lex_range(min: &Bytes, max: &Bytes) -> Result<LexRange, Reply> {
    match (parse_lex_item(min), parse_lex_item(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(err(errors::ZRANGE_NOT_STRING)),
    }
}

// ---------------------------------------------------------------------------
// Lookup and reply helpers
// ---------------------------------------------------------------------------

fn find_zset<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut ZSetValue>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, mode) {
        None => Ok(None),
        Some(f) => match &mut f.slot.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// Runs `f` on a sorted set for writing and deletes the key if it empties
/// (then true beside `f`'s result: the caller notifies its event, then `del`).
fn with_zset_write<R>(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    f: impl FnOnce(&mut ZSetValue) -> R,
) -> Result<Option<(R, bool)>, Reply> {
    let db = ctx.db;
    let Some(z) = find_zset(ks, ctx, key, Lookup::Write)? else {
        return Ok(None);
    };
    let r = f(z);
    let emptied = z.is_empty();
    if emptied {
        ks.remove(db, key);
    }
    Ok(Some((r, emptied)))
}

/// Notifies `event` on `key`, then `del` if the command emptied it.
fn notify_removed(ctx: &mut ExecContext, event: &'static str, key: &[u8], emptied: bool) {
    ctx.notify(ev::ZSET, event, key);
    if emptied {
        ctx.notify(ev::GENERIC, "del", key);
    }
}

/// Members, or members and scores: flat in RESP2, `[member, score]` pairs
/// in RESP3 (Redis's addReplyArrayLen per pair when `resp > 2`).
fn items_reply(ctx: &ExecContext, items: Vec<(Bytes, f64)>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    if ctx.resp3 {
        return Reply::Array(
            items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                .collect(),
        );
    }
    Reply::Array(
        items
            .into_iter()
            .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
            .collect(),
    )
}

/// Stores a computed sorted set in `dst` (no TTL; deleted when empty) and
/// replies its size; counts a change (and propagates `args`) unless nothing
/// was stored or deleted.
fn store_zset(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    dst: &Bytes,
    z: ZSetValue,
    event: &'static str,
) -> Reply {
    let db = ctx.db;
    let n = z.len();
    let deleted = ks.delete(ctx, db, dst);
    if n > 0 {
        ks.insert_replacing(ctx, db, dst, Value::ZSet(Box::new(z)), None, deleted);
        ctx.notify(ev::ZSET, event, dst);
        ctx.ready_keys.push((db, Bytes::copy_from_slice(dst)));
    } else if deleted {
        ctx.notify(ev::GENERIC, "del", dst);
    }
    if n > 0 || deleted {
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY / ZREM
// ---------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

/// Redis's zsetAdd outcome for one pair.
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Processed without a change (same score, or INCR by 0).
    Same(f64),
    Nop,
    NaN,
}

fn zset_add(z: &mut ZSetValue, m: &[u8], score: f64, f: AddFlags) -> AddOutcome {
    match z.score(m) {
        Some(cur) => {
            if f.nx {
                return AddOutcome::Nop;
            }
            let new = if f.incr { score + cur } else { score };
            if new.is_nan() {
                return AddOutcome::NaN;
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return AddOutcome::Nop;
            }
            if new == cur {
                AddOutcome::Same(new)
            } else {
                z.set_score(m, cur, new);
                AddOutcome::Updated(new)
            }
        }
        None if f.xx => AddOutcome::Nop,
        None => {
            z.insert(m, score);
            AddOutcome::Added(score)
        }
    }
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], and
/// ZINCRBY key increment member (ZADD with INCR, parsed the same way).
pub fn zadd(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], zincrby: bool) -> Reply {
    let mut f = AddFlags {
        incr: zincrby,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let o = &args[idx];
        let is = |name: &[u8]| o.eq_ignore_ascii_case(name);
        if is(b"nx") {
            f.nx = true;
        } else if is(b"xx") {
            f.xx = true;
        } else if is(b"ch") {
            ch = true;
        } else if is(b"incr") {
            f.incr = true;
        } else if is(b"gt") {
            f.gt = true;
        } else if is(b"lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = &args[idx..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return err(errors::SYNTAX);
    }
    if f.nx && f.xx {
        return err(errors::ZADD_NX_XX);
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return err(errors::ZADD_GT_LT_NX);
    }
    if f.incr && rest.len() > 2 {
        return err(errors::ZADD_INCR_PAIR);
    }
    let mut scores = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        match parse_score(&pair[0]) {
            Some(s) => scores.push(s),
            None => return err(errors::NOT_FLOAT),
        }
    }
    let db = ctx.db;
    let key = &args[1];
    let mut fresh = None;
    let z = match find_zset(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(Some(z)) => z,
        Ok(None) if f.xx => {
            return if f.incr {
                Reply::Nil
            } else {
                Reply::Integer(0)
            };
        }
        Ok(None) => fresh.insert(ZSetValue::new()),
    };
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last = 0.0;
    let mut nan = false;
    for (pair, &score) in rest.chunks(2).zip(&scores) {
        match zset_add(z, &pair[1], score, f) {
            AddOutcome::Added(s) => (added, processed, last) = (added + 1, processed + 1, s),
            AddOutcome::Updated(s) => (updated, processed, last) = (updated + 1, processed + 1, s),
            AddOutcome::Same(s) => (processed, last) = (processed + 1, s),
            AddOutcome::Nop => {}
            AddOutcome::NaN => {
                nan = true;
                break;
            }
        }
    }
    if let Some(z) = fresh {
        if !z.is_empty() {
            ks.insert_new(ctx, db, key, Value::ZSet(Box::new(z)), None);
        }
    }
    if added > 0 {
        ctx.ready_keys.push((db, key.clone()));
    }
    if added + updated > 0 {
        ctx.notify(ev::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        ctx.stats.dirty += (added + updated) as u64;
        ctx.propagate_as_sent(args);
    }
    if nan {
        return err(errors::ZADD_NAN);
    }
    if f.incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Integer(if ch { added + updated } else { added })
    }
}

/// ZREM key member [member ...]
pub fn zrem(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (n, emptied) = match with_zset_write(ks, ctx, &args[1], |z| {
        args[2..].iter().filter(|m| z.remove(m)).count()
    }) {
        Ok(n) => n.unwrap_or((0, false)),
        Err(e) => return e,
    };
    if n > 0 {
        notify_removed(ctx, "zrem", &args[1], emptied);
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

/// ZCARD key
pub fn zcard(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(z) => Reply::Integer(z.map_or(0, |z| z.len()) as i64),
        Err(e) => e,
    }
}

/// ZSCORE key member
pub fn zscore(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

/// ZMSCORE key member [member ...]
pub fn zmscore(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(z) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| {
                    z.as_ref()
                        .and_then(|z| z.score(m))
                        .map_or(Reply::Nil, Reply::Double)
                })
                .collect(),
        ),
        Err(e) => e,
    }
}

/// ZRANK/ZREVRANK key member
pub fn zrank(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], rev: bool) -> Reply {
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(z) => z
            .and_then(|z| z.rank(&args[2], rev))
            .map_or(Reply::Nil, |r| Reply::Integer(r as i64)),
        Err(e) => e,
    }
}

/// ZCOUNT key min max
pub fn zcount(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let r = match parse_score_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(z)) => Reply::Integer(z.count_in_scores(&r) as i64),
        Ok(None) => Reply::Integer(0),
        Err(e) => e,
    }
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let r = match parse_lex_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(z)) => Reply::Integer(z.count_in_lex(&r) as i64),
        Ok(None) => Reply::Integer(0),
        Err(e) => e,
    }
}

/// How a ZRANGE-family command selects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RangeBy {
    /// By index.
    Rank,
    /// BYSCORE.
    Score,
    /// BYLEX.
    Lex,
}

enum ParsedRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Redis's zrangeGenericCommand for ZRANGE, ZRANGESTORE and the legacy
/// forms. `by`/`rev` are fixed by the legacy commands, `None` for ZRANGE and
/// ZRANGESTORE (which take BYSCORE/BYLEX/REV options).
pub fn zrange(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    store: bool,
    by: Option<RangeBy>,
    rev: Option<bool>,
) -> Reply {
    let start = if store { 2 } else { 1 };
    let (mut by_opt, mut rev_opt) = (by, rev);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            match (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) {
                (Ok(o), Ok(l)) => (offset, limit) = (o, l),
                (Err(e), _) | (_, Err(e)) => return e,
            }
            j += 2;
        } else if rev.is_none() && rev_opt.is_none() && a.eq_ignore_ascii_case(b"rev") {
            rev_opt = Some(true);
        } else if by.is_none() && by_opt.is_none() && a.eq_ignore_ascii_case(b"bylex") {
            by_opt = Some(RangeBy::Lex);
        } else if by.is_none() && by_opt.is_none() && a.eq_ignore_ascii_case(b"byscore") {
            by_opt = Some(RangeBy::Score);
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let rev = rev_opt.unwrap_or(false);
    let by = by_opt.unwrap_or(RangeBy::Rank);
    if limit != -1 && by == RangeBy::Rank {
        return err(errors::ZRANGE_LIMIT_RANK);
    }
    if withscores && by == RangeBy::Lex {
        return err(errors::ZRANGE_WITHSCORES_LEX);
    }
    let (mut lo, mut hi) = (&args[start + 1], &args[start + 2]);
    if rev && by != RangeBy::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match by {
        RangeBy::Rank => match (parse_i64(lo), parse_i64(hi)) {
            (Ok(a), Ok(b)) => ParsedRange::Rank(a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        },
        RangeBy::Score => match parse_score_range(lo, hi) {
            Ok(r) => ParsedRange::Score(r),
            Err(e) => return e,
        },
        RangeBy::Lex => match parse_lex_range(lo, hi) {
            Ok(r) => ParsedRange::Lex(r),
            Err(e) => return e,
        },
    };
    let items = match find_zset(ks, ctx, &args[start], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => Vec::new(),
        Ok(Some(z)) => {
            // Redis walks `offset` elements one by one: a negative offset
            // walks off the end, a negative limit means no limit.
            let skip = usize::try_from(offset).ok();
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            match (range, skip) {
                (ParsedRange::Rank(a, b), _) => crate::list::clamp_range(a, b, z.len())
                    .map_or_else(Vec::new, |(s, e)| z.by_rank(s, e, rev)),
                (_, None) => Vec::new(),
                (_, Some(o)) if o > 0 && o >= z.len() => Vec::new(),
                (ParsedRange::Score(r), Some(o)) => z.by_score(&r, o, limit, rev),
                (ParsedRange::Lex(r), Some(o)) => z.by_lex(&r, o, limit, rev),
            }
        }
    };
    if store {
        let z = ZSetValue::from_pairs(items);
        return store_zset(ks, ctx, args, &args[1], z, "zrangestore");
    }
    items_reply(ctx, items, withscores)
}

/// ZREMRANGEBYRANK/ZREMRANGEBYSCORE/ZREMRANGEBYLEX key min max
pub fn zremrange(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], by: RangeBy) -> Reply {
    let range = match by {
        RangeBy::Rank => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Ok(a), Ok(b)) => ParsedRange::Rank(a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        },
        RangeBy::Score => match parse_score_range(&args[2], &args[3]) {
            Ok(r) => ParsedRange::Score(r),
            Err(e) => return e,
        },
        RangeBy::Lex => match parse_lex_range(&args[2], &args[3]) {
            Ok(r) => ParsedRange::Lex(r),
            Err(e) => return e,
        },
    };
    let (n, emptied) = match with_zset_write(ks, ctx, &args[1], |z| {
        let victims = match &range {
            ParsedRange::Rank(a, b) => crate::list::clamp_range(*a, *b, z.len())
                .map_or_else(Vec::new, |(s, e)| z.by_rank(s, e, false)),
            ParsedRange::Score(r) => z.by_score(r, 0, usize::MAX, false),
            ParsedRange::Lex(r) => z.by_lex(r, 0, usize::MAX, false),
        };
        for (m, _) in &victims {
            z.remove(m);
        }
        victims.len()
    }) {
        Ok(n) => n.unwrap_or((0, false)),
        Err(e) => return e,
    };
    if n > 0 {
        let event = match by {
            RangeBy::Rank => "zremrangebyrank",
            RangeBy::Score => "zremrangebyscore",
            RangeBy::Lex => "zremrangebylex",
        };
        notify_removed(ctx, event, &args[1], emptied);
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

/// The key popped from and its (member, score) pairs.
type Popped = (Bytes, Vec<(Bytes, f64)>);

/// Pops up to `count` members from the first non-empty sorted set among
/// `keys` (type errors stop at the first wrong key, as Redis's
/// genericZpopCommand). `Ok(None)` when every key is missing.
fn pop_first(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    keys: &[Bytes],
    max: bool,
    count: usize,
) -> Result<Option<Popped>, Reply> {
    for key in keys {
        if find_zset(ks, ctx, key, Lookup::Write)?.is_none() {
            continue;
        }
        let popped = with_zset_write(ks, ctx, key, |z| {
            let n = count.min(z.len());
            let items = if max {
                z.by_rank(0, n.max(1) - 1, true)
            } else {
                z.by_rank(0, n.max(1) - 1, false)
            };
            let items = if n == 0 { Vec::new() } else { items };
            for (m, _) in &items {
                z.remove(m);
            }
            items
        })?
        .unwrap_or_default();
        let (popped, emptied) = popped;
        if !popped.is_empty() {
            notify_removed(ctx, if max { "zpopmax" } else { "zpopmin" }, key, emptied);
        }
        ctx.stats.dirty += popped.len() as u64;
        return Ok(Some((key.clone(), popped)));
    }
    Ok(None)
}

fn pop_name(max: bool) -> Bytes {
    Bytes::from_static(if max { b"ZPOPMAX" } else { b"ZPOPMIN" })
}

/// ZPOPMIN/ZPOPMAX key [count]
pub fn zpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return err(errors::SYNTAX);
    }
    let count = match args.get(2).map(|c| parse_i64(c)) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n as usize),
        Some(_) => return err(errors::OUT_OF_RANGE_POSITIVE),
    };
    match pop_first(ks, ctx, &args[1..2], max, count.unwrap_or(1)) {
        Err(e) => e,
        Ok(None) => Reply::Array(vec![]),
        Ok(Some((_, items))) => {
            if !items.is_empty() {
                ctx.propagate_as_sent(args);
            }
            // RESP3 nests pairs only when a count was given.
            let nested = ctx.resp3 && count.is_some();
            let saved = ctx.resp3;
            ctx.resp3 = nested;
            let r = items_reply(ctx, items, true);
            ctx.resp3 = saved;
            r
        }
    }
}

/// The parsed `numkeys key… MIN|MAX [COUNT n]` of ZMPOP/BZMPOP.
fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<(&[Bytes], bool, usize), Reply> {
    let numkeys = match parse_i64(&args[numkeys_idx]) {
        Ok(n) if n >= 1 => n as usize,
        _ => return Err(err(errors::NUMKEYS_NOT_POSITIVE)),
    };
    let where_idx = numkeys_idx
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < args.len())
        .ok_or_else(|| err(errors::SYNTAX))?;
    let max = if args[where_idx].eq_ignore_ascii_case(b"min") {
        false
    } else if args[where_idx].eq_ignore_ascii_case(b"max") {
        true
    } else {
        return Err(err(errors::SYNTAX));
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = match parse_i64(&args[j + 1]) {
                Ok(n) if n >= 1 => Some(n as usize),
                _ => return Err(err(errors::COUNT_NOT_POSITIVE)),
            };
            j += 2;
        } else {
            return Err(err(errors::SYNTAX));
        }
    }
    Ok((&args[numkeys_idx + 1..where_idx], max, count.unwrap_or(1)))
}

/// `[key, [[member, score]…]]`, propagated as `ZPOPMIN|ZPOPMAX key n`.
fn mpop_reply(ctx: &mut ExecContext, max: bool, key: Bytes, items: Vec<(Bytes, f64)>) -> Reply {
    ctx.propagate(vec![
        pop_name(max),
        key.clone(),
        Bytes::from(items.len().to_string()),
    ]);
    let pairs = items
        .into_iter()
        .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
        .collect();
    Reply::Array(vec![Reply::Bulk(key), Reply::Array(pairs)])
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (keys, max, count) = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match pop_first(ks, ctx, keys, max, count) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some((key, items))) => mpop_reply(ctx, max, key, items),
    }
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout, tried once: `NilArray` (and no
/// change) when every key is empty, for the server to block.
pub fn bzpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], max: bool) -> Reply {
    if let Err(e) = crate::list::parse_timeout(&args[args.len() - 1]) {
        return e;
    }
    match pop_first(ks, ctx, &args[1..args.len() - 1], max, 1) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some((key, mut items))) => {
            ctx.propagate(vec![pop_name(max), key.clone()]);
            let (m, s) = items.pop().expect("a live sorted set is never empty");
            Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(m), Reply::Double(s)])
        }
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count], tried once.
pub fn bzmpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (keys, max, count) = match parse_mpop(args, 2) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Err(e) = crate::list::parse_timeout(&args[1]) {
        return e;
    }
    match pop_first(ks, ctx, keys, max, count) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some((key, items))) => mpop_reply(ctx, max, key, items),
    }
}

// ---------------------------------------------------------------------------
// Set operations
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(a: Aggregate, target: &mut f64, v: f64) {
    match a {
        Aggregate::Sum => {
            *target += v;
            // inf + -inf: Redis stores 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = target.min(v),
        Aggregate::Max => *target = target.max(v),
    }
}

/// A source of a Z set operation: a sorted set, or a set (scores 1).
enum Source<'a> {
    ZSet(&'a ZSetValue),
    Set(&'a crate::set::SetValue),
    Missing,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::ZSet(z) => z.len(),
            Source::Set(s) => s.len(),
            Source::Missing => 0,
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::ZSet(z) => z.score(m),
            Source::Set(s) => s.contains(m).then_some(1.0),
            Source::Missing => None,
        }
    }

    fn items(&self) -> Vec<(Bytes, f64)> {
        match self {
            Source::ZSet(z) => z.iter().collect(),
            Source::Set(s) => s.iter().map(|m| (m, 1.0)).collect(),
            Source::Missing => Vec::new(),
        }
    }

    fn same(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::ZSet(a), Source::ZSet(b)) => std::ptr::eq(*a, *b),
            (Source::Set(a), Source::Set(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// ZUNION/ZINTER/ZDIFF (`dst` None), their STORE forms, and ZINTERCARD
/// (`card`): Redis's zunionInterDiffGenericCommand.
fn zsetop(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    numkeys_idx: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Reply {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let setnum = match parse_i64(&args[numkeys_idx]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if setnum < 1 {
        return err(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if setnum as u64 > (args.len() - numkeys_idx - 1) as u64 {
        return err(errors::SYNTAX);
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    let db = ctx.db;
    for k in keys {
        if let Some(f) = ks.find(ctx, db, k, Lookup::Read) {
            if !matches!(f.slot.value, Value::ZSet(_) | Value::Set(_)) {
                return err(errors::WRONGTYPE);
            }
        }
    }
    let mut weights = vec![1.0; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !card && remaining > setnum && a.eq_ignore_ascii_case(b"weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                match parse_score(&args[j + 1 + i]) {
                    Some(v) => *w = v,
                    None => return err(errors::WEIGHT_NOT_FLOAT),
                }
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff
            && !card
            && remaining >= 2
            && a.eq_ignore_ascii_case(b"aggregate")
        {
            let v = &args[j + 1];
            agg = if v.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if v.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if v.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return err(errors::SYNTAX);
            };
            j += 2;
        } else if !store && !card && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && a.eq_ignore_ascii_case(b"limit") {
            limit = match parse_i64(&args[j + 1]) {
                Ok(n) if n >= 0 => n as usize,
                _ => return err(errors::LIMIT_NEGATIVE),
            };
            j += 2;
        } else {
            return err(errors::SYNTAX);
        }
    }
    let ks_ro: &Keyspace = ks;
    let srcs: Vec<(Source, f64)> = keys
        .iter()
        .zip(&weights)
        .map(|(k, &w)| {
            let s = match ks_ro.peek(ctx, db, k) {
                Some(Value::ZSet(z)) => Source::ZSet(z),
                Some(Value::Set(s)) => Source::Set(s),
                _ => Source::Missing,
            };
            (s, w)
        })
        .collect();
    let mut result: Vec<(Bytes, f64)> = Vec::new();
    match op {
        SetOp::Inter => {
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| srcs[i].0.len());
            let (first, w0) = &srcs[order[0]];
            'outer: for (m, s) in first.items() {
                let mut score = weight_mul(*w0, s);
                for &i in &order[1..] {
                    let (src, w) = &srcs[i];
                    let v = if src.same(first) {
                        s
                    } else {
                        match src.score(&m) {
                            Some(v) => v,
                            None => continue 'outer,
                        }
                    };
                    aggregate(agg, &mut score, weight_mul(*w, v));
                }
                result.push((m, score));
                if card && result.len() == limit {
                    break;
                }
            }
        }
        SetOp::Union => {
            let mut acc: Dict<f64> = Dict::default();
            for (src, w) in &srcs {
                for (m, s) in src.items() {
                    let v = weight_mul(*w, s);
                    match acc.get_mut(&m) {
                        Some(t) => aggregate(agg, t, v),
                        None => acc.insert_unique(m, v),
                    }
                }
            }
            result = acc.iter().map(|(m, s)| (m.clone(), *s)).collect();
        }
        SetOp::Diff => {
            let first = &srcs[0].0;
            for (m, s) in first.items() {
                let elsewhere = srcs[1..]
                    .iter()
                    .any(|(src, _)| src.same(first) || src.score(&m).is_some());
                if !elsewhere {
                    result.push((m, s));
                }
            }
        }
    }
    if card {
        return Reply::Integer(result.len() as i64);
    }
    let z = ZSetValue::from_pairs(result);
    if store {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        return store_zset(ks, ctx, args, &args[1], z, event);
    }
    items_reply(ctx, z.iter().collect(), withscores)
}

/// Redis's `src.weight * score`, with NaN (0 × inf) stored as 0.
fn weight_mul(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// ZUNION/ZINTER/ZDIFF numkeys key [key ...] [options] [WITHSCORES]
pub fn zsetop_read(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], which: u8) -> Reply {
    let op = [SetOp::Union, SetOp::Inter, SetOp::Diff][which as usize];
    zsetop(ks, ctx, args, 1, op, false, false)
}

/// ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE destination numkeys key [key ...] [options]
pub fn zsetop_store(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], which: u8) -> Reply {
    let op = [SetOp::Union, SetOp::Inter, SetOp::Diff][which as usize];
    zsetop(ks, ctx, args, 2, op, true, false)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    zsetop(ks, ctx, args, 1, SetOp::Inter, false, true)
}

// ---------------------------------------------------------------------------
// Random members and scans
// ---------------------------------------------------------------------------

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let withscores = match args.len() {
        2 | 3 => false,
        4 if args[3].eq_ignore_ascii_case(b"withscores") => true,
        _ => return err(errors::SYNTAX),
    };
    let count = match args.get(2).map(|c| parse_i64(c)) {
        None => None,
        Some(Ok(i64::MIN)) => return err(errors::HRANDFIELD_RANGE),
        Some(Ok(n)) if n.unsigned_abs() > MAX_RANDOM_COUNT => {
            return err(errors::VALUE_OUT_OF_RANGE)
        }
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let mut rng = ks.rng.clone();
    let z = match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(z)) => z,
        Ok(None) => return count.map_or(Reply::Nil, |_| Reply::Array(vec![])),
        Err(e) => return e,
    };
    let pick = |rng: &mut rand::rngs::StdRng| z.at(rng.gen_range(0..z.len()));
    let reply = match count {
        None => Reply::Bulk(pick(&mut rng).0),
        Some(0) => Reply::Array(vec![]),
        Some(n) if n < 0 => {
            let items = (0..n.unsigned_abs()).map(|_| pick(&mut rng)).collect();
            items_reply(ctx, items, withscores)
        }
        // The whole set, highest first, as Redis 7.0 answers this case.
        Some(n) if n as usize >= z.len() => {
            items_reply(ctx, z.by_rank(0, z.len() - 1, true), withscores)
        }
        Some(n) => {
            let mut idx: Vec<usize> = (0..z.len()).collect();
            let n = n as usize;
            for i in 0..n {
                let j = rng.gen_range(i..idx.len());
                idx.swap(i, j);
            }
            let items = idx[..n].iter().map(|&i| z.at(i)).collect();
            items_reply(ctx, items, withscores)
        }
    };
    ks.rng = rng;
    reply
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: scores as `%.17g` text.
pub fn zscan(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let cursor = match members::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let z = match find_zset(ks, ctx, &args[1], Lookup::Read) {
        Ok(Some(z)) => z,
        Ok(None) => return members::scan_reply(0, vec![]),
        Err(e) => return e,
    };
    let opts = match members::parse_scan_options(cursor, &args[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let pair = |m: &Bytes, s: f64| [Reply::Bulk(m.clone()), Reply::bulk_string(format_double(s))];
    let Repr::Skip(b) = &z.0 else {
        // A listpack is returned whole, in order, as Redis does.
        let items = z
            .iter()
            .filter(|(m, _)| members::scan_match(&opts.pattern, m))
            .flat_map(|(m, s)| pair(&m, s))
            .collect();
        return members::scan_reply(0, items);
    };
    let (next, range) = b.dict.scan_range(cursor, opts.count);
    let items = range
        .rev()
        .map(|i| b.dict.at(i))
        .filter(|(m, _)| members::scan_match(&opts.pattern, m))
        .flat_map(|(m, s)| pair(m, *s))
        .collect();
    members::scan_reply(next, items)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use shardis_protocol::Reply;

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn arr(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    /// Members and scores as text, RESP2-style (doubles as `%.17g`).
    fn flat(r: Reply) -> Vec<String> {
        let Reply::Array(v) = r else {
            panic!("not an array: {r:?}")
        };
        v.into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                Reply::Double(d) => shardis_protocol::reply::format_double(d),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn run_flat(t: &mut T, line: &str) -> Vec<String> {
        flat(t.run(line))
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut t = T::new();
        assert_eq!(t.run("ZADD z 1 a 2 b 3 c"), int(3));
        assert_eq!(t.run("TYPE z"), Reply::Simple("zset"));
        assert_eq!(t.run("OBJECT ENCODING z"), bulk("listpack"));
        for (cmd, e) in [
            (
                "ZADD z nx xx 1 a",
                "ERR XX and NX options at the same time are not compatible",
            ),
            (
                "ZADD z gt lt 1 a",
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ),
            (
                "ZADD z nx gt 1 a",
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ),
            (
                "ZADD z incr 1 a 2 b",
                "ERR INCR option supports a single increment-element pair",
            ),
            ("ZADD z abc a", "ERR value is not a valid float"),
            ("ZADD z nan a", "ERR value is not a valid float"),
            ("ZADD z 1e400 a", "ERR value is not a valid float"),
            ("ZADD z 1e-400 a", "ERR value is not a valid float"),
            ("ZADD z 1 a 2", "ERR syntax error"),
            ("ZINCRBY z nx a", "ERR syntax error"),
            ("ZINCRBY z abc a", "ERR value is not a valid float"),
        ] {
            assert_eq!(t.run(cmd), err(e), "{cmd}");
        }
        t.effects();
        assert_eq!(t.run("ZADD z 1 a"), int(0));
        assert_eq!(t.run("ZADD z xx 5 nope"), int(0));
        assert_eq!(t.run("ZADD z nx 5 a"), int(0));
        assert_eq!(t.run("ZADD z gt 0 a"), int(0));
        assert!(t.effects().is_empty(), "no change, no effect");
        assert_eq!(t.run("ZADD z gt ch 5 a 1 d"), int(2));
        assert_eq!(t.run("ZADD z lt ch 9 a"), int(0));
        assert_eq!(t.run("ZSCORE z a"), Reply::Double(5.0));
        assert_eq!(t.run("ZADD z inf a"), int(0));
        assert_eq!(
            t.run("ZADD z incr -inf a"),
            err("ERR resulting score is not a number (NaN)")
        );
        assert_eq!(t.run("ZADD z 0x10 hex"), int(1));
        assert_eq!(t.run("ZSCORE z hex"), Reply::Double(16.0));
        assert_eq!(t.run("ZADD z 5e-324 tiny"), int(1));
        assert_eq!(t.run("ZINCRBY z 0.1 b"), Reply::Double(2.1));
        assert_eq!(
            t.effects(),
            vec![
                "ZADD z gt ch 5 a 1 d",
                "ZADD z inf a",
                "ZADD z 0x10 hex",
                "ZADD z 5e-324 tiny",
                "ZINCRBY z 0.1 b"
            ]
        );
        assert_eq!(t.run("ZINCRBY z 0 b"), Reply::Double(2.1));
        assert_eq!(t.run("ZADD z incr 0 b"), Reply::Double(2.1));
        assert_eq!(t.run("ZADD z nx incr 1 b"), Reply::Nil);
        assert_eq!(t.run("ZADD nokey xx incr 1 b"), Reply::Nil);
        assert_eq!(t.run("ZADD nokey xx 1 b"), int(0));
        assert_eq!(t.run("EXISTS nokey"), int(0));
        assert!(
            t.effects().is_empty(),
            "an unchanged score propagates nothing"
        );
        assert_eq!(
            run_flat(&mut t, "ZRANGE z 0 -1 WITHSCORES"),
            vec![
                "tiny",
                "4.9406564584124654e-324",
                "d",
                "1",
                "b",
                "2.1000000000000001",
                "c",
                "3",
                "hex",
                "16",
                "a",
                "inf"
            ]
        );
        t.run("SET str v");
        for cmd in [
            "ZADD str 1 a",
            "ZINCRBY str 1 a",
            "ZREM str a",
            "ZCARD str",
            "ZSCORE str a",
            "ZMSCORE str a",
            "ZCOUNT str 0 1",
            "ZLEXCOUNT str - +",
            "ZRANGE str 0 1",
            "ZRANGESTORE d str 0 1",
            "ZRANK str a",
            "ZPOPMIN str",
            "ZMPOP 1 str MIN",
            "BZPOPMIN str 0",
            "BZMPOP 0 1 str MAX",
            "ZREMRANGEBYRANK str 0 1",
            "ZUNION 1 str",
            "ZINTERSTORE d 1 str",
            "ZRANDMEMBER str",
            "ZSCAN str 0",
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd}");
        }
    }

    #[test]
    fn ranges_by_rank_score_and_lex() {
        let mut t = T::new();
        t.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(t.run("ZRANGE z 0 1"), arr(&["a", "b"]));
        assert_eq!(t.run("ZRANGE z -2 -1"), arr(&["d", "e"]));
        assert_eq!(t.run("ZRANGE z 3 100"), arr(&["d", "e"]));
        assert_eq!(t.run("ZRANGE z 5 10"), arr(&[]));
        assert_eq!(t.run("ZREVRANGE z 0 1"), arr(&["e", "d"]));
        assert_eq!(t.run("ZRANGE z 0 1 REV"), arr(&["e", "d"]));
        assert_eq!(t.run("ZRANGE z (1 3 BYSCORE"), arr(&["b", "c"]));
        assert_eq!(
            t.run("ZRANGEBYSCORE z -inf +inf LIMIT 1 2"),
            arr(&["b", "c"])
        );
        assert_eq!(t.run("ZRANGE z -inf +inf BYSCORE LIMIT -1 2"), arr(&[]));
        assert_eq!(
            t.run("ZRANGE z -inf +inf BYSCORE LIMIT 1 -1"),
            arr(&["b", "c", "d", "e"])
        );
        assert_eq!(t.run("ZRANGE z -inf +inf BYSCORE LIMIT 5 1"), arr(&[]));
        assert_eq!(
            run_flat(
                &mut t,
                "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES"
            ),
            vec!["d", "4", "c", "3"]
        );
        assert_eq!(t.run("ZREVRANGEBYSCORE z (4 2"), arr(&["c", "b"]));
        assert_eq!(t.run("ZRANGE z 0 -1 BYSCORE REV"), arr(&[]));
        t.run("ZADD l 0 a 0 b 0 c 0 d");
        assert_eq!(t.run("ZRANGEBYLEX l - +"), arr(&["a", "b", "c", "d"]));
        assert_eq!(t.run("ZRANGEBYLEX l (a [c"), arr(&["b", "c"]));
        assert_eq!(t.run("ZREVRANGEBYLEX l + (b LIMIT 0 1"), arr(&["d"]));
        assert_eq!(t.run("ZRANGE l [c - BYLEX REV"), arr(&["c", "b", "a"]));
        assert_eq!(t.run("ZLEXCOUNT l (a +"), int(3));
        assert_eq!(t.run("ZLEXCOUNT l + -"), int(0));
        assert_eq!(t.run("ZCOUNT z (1 5"), int(4));
        assert_eq!(t.run("ZCOUNT z 6 +inf"), int(0));
        assert_eq!(t.run("ZCOUNT nokey 0 1"), int(0));
        for (cmd, e) in [
            ("ZRANGE z 0 -1 LIMIT 0 1", "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"),
            ("ZRANGE l - + BYLEX WITHSCORES", "ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
            ("ZRANGEBYLEX l - + WITHSCORES", "ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
            ("ZRANGE z a b BYLEX", "ERR min or max not valid string range item"),
            ("ZLEXCOUNT z a b", "ERR min or max not valid string range item"),
            ("ZCOUNT z x 1", "ERR min or max is not a float"),
            ("ZRANGEBYSCORE z -inf +inf REV", "ERR syntax error"),
            ("ZREVRANGE z 0 0 BYSCORE", "ERR syntax error"),
            ("ZRANGE z 0 1 REV REV", "ERR syntax error"),
            ("ZRANGE z 0 1 BYSCORE BYLEX", "ERR syntax error"),
            ("ZRANGE z a 1", "ERR value is not an integer or out of range"),
            ("ZRANGESTORE d z 0 -1 WITHSCORES", "ERR syntax error"),
        ] {
            assert_eq!(t.run(cmd), err(e), "{cmd}");
        }
        assert_eq!(t.run("ZRANGE nokey 0 -1"), arr(&[]));
        let args = ["ZRANGE", "z", "", "3", "BYSCORE"].map(bytes::Bytes::from);
        assert_eq!(
            t.run_args(args.to_vec()),
            arr(&["a", "b", "c"]),
            "empty is 0"
        );
        let args = ["ZRANGE", "z", "( 1", "2", "BYSCORE"].map(bytes::Bytes::from);
        assert_eq!(
            t.run_args(args.to_vec()),
            arr(&["b"]),
            "strtod skips spaces"
        );
        t.ctx.resp3 = true;
        assert_eq!(
            t.run("ZRANGE z 0 0 WITHSCORES"),
            Reply::Array(vec![Reply::Array(vec![bulk("a"), Reply::Double(1.0)])])
        );
    }

    #[test]
    fn rank_score_and_store() {
        let mut t = T::new();
        t.run("ZADD z 1 a 2 b 3 c");
        assert_eq!(t.run("ZRANK z c"), int(2));
        assert_eq!(t.run("ZREVRANK z c"), int(0));
        assert_eq!(t.run("ZRANK z nope"), Reply::Nil);
        assert_eq!(t.run("ZRANK nokey a"), Reply::Nil);
        assert_eq!(
            t.run("ZMSCORE z a nope"),
            Reply::Array(vec![Reply::Double(1.0), Reply::Nil])
        );
        assert_eq!(t.run("ZMSCORE nokey a"), Reply::Array(vec![Reply::Nil]));
        assert_eq!(t.run("ZCARD z"), int(3));
        t.effects();
        assert_eq!(t.run("ZRANGESTORE d z 1 -1"), int(2));
        assert_eq!(t.run("OBJECT ENCODING d"), bulk("listpack"));
        assert_eq!(t.run("ZRANGESTORE d z 5 6 BYSCORE"), int(0));
        assert_eq!(t.run("EXISTS d"), int(0));
        assert_eq!(t.run("ZRANGESTORE d z 5 6 BYSCORE"), int(0));
        assert_eq!(
            t.effects(),
            vec!["ZRANGESTORE d z 1 -1", "ZRANGESTORE d z 5 6 BYSCORE"]
        );
        assert_eq!(
            t.ctx.ready_keys.last().map(|(_, k)| k.clone()),
            Some(bytes::Bytes::from("d"))
        );
    }

    #[test]
    fn removals() {
        let mut t = T::new();
        t.run("ZADD z 1 a 2 b 3 c 4 d 0 x");
        t.effects();
        assert_eq!(t.run("ZREM z a nope"), int(1));
        assert_eq!(t.run("ZREM z nope"), int(0));
        assert_eq!(t.run("ZREMRANGEBYSCORE z 5 6"), int(0));
        assert_eq!(t.run("ZREMRANGEBYSCORE z (0 2"), int(1));
        assert_eq!(t.run("ZREMRANGEBYRANK z -1 -1"), int(1));
        assert_eq!(
            t.run("ZREMRANGEBYLEX z - (d"),
            int(0),
            "x (score 0) > d: Redis's pre-check"
        );
        assert_eq!(
            t.run("ZRANGEBYLEX z - (y"),
            Reply::Array(vec![bulk("x"), bulk("c")])
        );
        assert_eq!(t.run("ZREMRANGEBYLEX z - +"), int(2));
        assert_eq!(t.run("EXISTS z"), int(0));
        assert_eq!(t.run("ZREMRANGEBYRANK z 0 -1"), int(0));
        assert_eq!(
            t.run("ZREMRANGEBYSCORE z x 1"),
            err("ERR min or max is not a float")
        );
        assert_eq!(
            t.effects(),
            vec![
                "ZREM z a nope",
                "ZREMRANGEBYSCORE z (0 2",
                "ZREMRANGEBYRANK z -1 -1",
                "ZREMRANGEBYLEX z - +"
            ]
        );
    }

    #[test]
    fn pops_and_blocking_forms() {
        let mut t = T::new();
        t.run("ZADD z 1 a 2 b 3 c 4 d");
        t.effects();
        assert_eq!(run_flat(&mut t, "ZPOPMIN z"), vec!["a", "1"]);
        assert_eq!(run_flat(&mut t, "ZPOPMAX z 2"), vec!["d", "4", "c", "3"]);
        assert_eq!(t.run("ZPOPMIN z 0"), arr(&[]));
        assert_eq!(t.effects(), vec!["ZPOPMIN z", "ZPOPMAX z 2"]);
        assert_eq!(
            t.run("ZPOPMIN z abc"),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            t.run("ZPOPMIN z -1"),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(t.run("ZPOPMIN z 1 2"), err("ERR syntax error"));
        assert_eq!(t.run("ZPOPMIN nokey"), arr(&[]));
        assert_eq!(
            t.run("BZPOPMIN nokey z 0"),
            Reply::Array(vec![bulk("z"), bulk("b"), Reply::Double(2.0)])
        );
        assert_eq!(t.effects(), vec!["ZPOPMIN z"]);
        assert_eq!(
            t.run("BZPOPMAX z 0"),
            Reply::NilArray,
            "empty: the server blocks"
        );
        assert_eq!(t.run("ZMPOP 1 z MIN"), Reply::NilArray);
        assert_eq!(t.run("BZPOPMIN z -1"), err("ERR timeout is negative"));
        assert_eq!(
            t.run("BZPOPMIN z abc"),
            err("ERR timeout is not a float or out of range")
        );
        t.run("ZADD z 1 a 2 b 3 c");
        t.effects();
        assert_eq!(
            t.run("ZMPOP 2 nokey z MAX COUNT 5"),
            Reply::Array(vec![
                bulk("z"),
                Reply::Array(vec![
                    Reply::Array(vec![bulk("c"), Reply::Double(3.0)]),
                    Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
                    Reply::Array(vec![bulk("a"), Reply::Double(1.0)]),
                ])
            ])
        );
        assert_eq!(t.effects(), vec!["ZPOPMAX z 3"]);
        t.run("ZADD z 1 a");
        t.effects();
        assert_eq!(
            t.run("BZMPOP 0 1 z MIN COUNT 2"),
            Reply::Array(vec![
                bulk("z"),
                Reply::Array(vec![Reply::Array(vec![bulk("a"), Reply::Double(1.0)])])
            ])
        );
        assert_eq!(t.effects(), vec!["ZPOPMIN z 1"]);
        for (cmd, e) in [
            ("ZMPOP 0 z MIN", "ERR numkeys should be greater than 0"),
            ("ZMPOP 1 z foo", "ERR syntax error"),
            (
                "ZMPOP 1 z MIN COUNT 0",
                "ERR count should be greater than 0",
            ),
            ("ZMPOP 1 z MIN COUNT 1 COUNT 1", "ERR syntax error"),
            ("ZMPOP 2 z MIN", "ERR syntax error"),
            ("BZMPOP -1 1 z MIN", "ERR timeout is negative"),
            (
                "BZMPOP abc 1 z MIN",
                "ERR timeout is not a float or out of range",
            ),
            ("BZMPOP 0 1 z foo", "ERR syntax error"),
        ] {
            assert_eq!(t.run(cmd), err(e), "{cmd}");
        }
    }

    #[test]
    fn union_inter_diff() {
        let mut t = T::new();
        t.run("ZADD z2 1 a 2 b");
        t.run("ZADD z3 2 b 3 c");
        t.run("SADD s1 a c");
        t.run("ZADD z4 inf x");
        assert_eq!(
            run_flat(&mut t, "ZUNION 2 z2 z3 WITHSCORES"),
            vec!["a", "1", "c", "3", "b", "4"]
        );
        assert_eq!(
            run_flat(&mut t, "ZINTER 2 z2 z3 WITHSCORES AGGREGATE MAX"),
            vec!["b", "2"]
        );
        assert_eq!(run_flat(&mut t, "ZDIFF 2 z2 z3 WITHSCORES"), vec!["a", "1"]);
        assert_eq!(
            run_flat(&mut t, "ZUNION 2 z2 z3 WEIGHTS 2 inf WITHSCORES"),
            vec!["a", "2", "b", "inf", "c", "inf"]
        );
        assert_eq!(
            run_flat(&mut t, "ZINTER 2 z2 s1 WITHSCORES"),
            vec!["a", "2"]
        );
        assert_eq!(
            run_flat(&mut t, "ZUNION 3 z2 s1 nokey WITHSCORES"),
            vec!["c", "1", "a", "2", "b", "2"]
        );
        assert_eq!(
            run_flat(&mut t, "ZUNION 2 z4 z4 WEIGHTS 1 -1 WITHSCORES"),
            vec!["x", "0"]
        );
        assert_eq!(
            run_flat(&mut t, "ZUNION 1 z4 WEIGHTS 0 WITHSCORES"),
            vec!["x", "0"]
        );
        assert_eq!(t.run("ZINTER 2 z2 nokey"), arr(&[]));
        assert_eq!(t.run("ZINTERCARD 2 z2 z3"), int(1));
        assert_eq!(t.run("ZINTERCARD 2 z2 s1 LIMIT 0"), int(1));
        t.run("SET str v");
        for (cmd, e) in [
            (
                "ZUNIONSTORE d 0 z2",
                "ERR at least 1 input key is needed for 'zunionstore' command",
            ),
            (
                "ZUNION 0 z2",
                "ERR at least 1 input key is needed for 'zunion' command",
            ),
            (
                "ZINTERCARD 0 z2",
                "ERR at least 1 input key is needed for 'zintercard' command",
            ),
            ("ZUNION 2 z2", "ERR syntax error"),
            ("ZUNION 1 z2 WEIGHTS 1 2", "ERR syntax error"),
            ("ZUNION 1 z2 WEIGHTS x", "ERR weight value is not a float"),
            ("ZUNION 1 z2 AGGREGATE foo", "ERR syntax error"),
            ("ZDIFF 1 z2 WEIGHTS 1", "ERR syntax error"),
            ("ZINTERCARD 1 z2 LIMIT -1", "ERR LIMIT can't be negative"),
            ("ZINTERCARD 1 z2 WITHSCORES", "ERR syntax error"),
            ("ZUNIONSTORE d 1 z2 WITHSCORES", "ERR syntax error"),
            ("ZUNION 2 z2 str", WRONGTYPE),
            ("ZUNION x z2", "ERR value is not an integer or out of range"),
        ] {
            assert_eq!(t.run(cmd), err(e), "{cmd}");
        }
        t.effects();
        assert_eq!(t.run("ZUNIONSTORE d 1 nokey"), int(0));
        assert!(t.effects().is_empty());
        assert_eq!(t.run("ZINTERSTORE d 2 z2 z3"), int(1));
        assert_eq!(t.run("ZINTERSTORE d 2 z2 nokey"), int(0));
        assert_eq!(t.run("ZDIFFSTORE d 1 z2"), int(2));
        assert_eq!(
            t.effects(),
            vec![
                "ZINTERSTORE d 2 z2 z3",
                "ZINTERSTORE d 2 z2 nokey",
                "ZDIFFSTORE d 1 z2"
            ]
        );
    }

    #[test]
    fn encodings_scan_and_randmember() {
        let mut t = T::new();
        t.run("ZADD z5 0.1 a 1e20 b -0 c");
        assert_eq!(
            t.run("ZSCAN z5 0"),
            Reply::Array(vec![
                bulk("0"),
                arr(&["c", "0", "a", "0.10000000000000001", "b", "1e+20"])
            ])
        );
        assert_eq!(
            t.run("ZSCAN z5 0 MATCH b"),
            Reply::Array(vec![bulk("0"), arr(&["b", "1e+20"])])
        );
        assert_eq!(
            t.run("ZSCAN nokey 0"),
            Reply::Array(vec![bulk("0"), arr(&[])])
        );
        let long = "x".repeat(65);
        t.run(&format!("ZADD big 1 {long}"));
        assert_eq!(t.run("OBJECT ENCODING big"), bulk("skiplist"));
        let mut args = vec!["ZADD".to_string(), "n".to_string()];
        for i in 0..128 {
            args.push(i.to_string());
            args.push(format!("m{i}"));
        }
        t.run(&args.join(" "));
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("listpack"));
        t.run("ZADD n 1000 extra");
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("skiplist"));
        t.run("ZREMRANGEBYRANK n 0 100");
        assert_eq!(
            t.run("OBJECT ENCODING n"),
            bulk("skiplist"),
            "never converts back"
        );
        t.run("ZADD n -0 zero");
        assert_eq!(t.run("ZSCORE n zero"), Reply::Double(-0.0));
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        loop {
            let Reply::Array(parts) = t.run(&format!("ZSCAN n {cursor} COUNT 5")) else {
                panic!()
            };
            let Reply::Bulk(c) = &parts[0] else { panic!() };
            for pair in flat(parts[1].clone()).chunks(2) {
                seen.insert(pair[0].clone());
            }
            cursor = String::from_utf8_lossy(c).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 29);
        assert_eq!(flat(t.run("ZRANDMEMBER z5 -5 WITHSCORES")).len(), 10);
        assert_eq!(flat(t.run("ZRANDMEMBER z5 2")).len(), 2);
        assert_eq!(
            t.run("ZRANDMEMBER z5 10"),
            arr(&["b", "a", "c"]),
            "whole set, highest first"
        );
        assert!(matches!(t.run("ZRANDMEMBER z5"), Reply::Bulk(_)));
        assert_eq!(t.run("ZRANDMEMBER nokey"), Reply::Nil);
        assert_eq!(t.run("ZRANDMEMBER nokey 1"), arr(&[]));
        assert_eq!(t.run("ZRANDMEMBER z5 1 2"), err("ERR syntax error"));
        assert_eq!(
            t.run("ZRANDMEMBER z5 -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
    }

    #[test]
    fn rank_is_logarithmic_on_a_large_set() {
        let mut t = T::new();
        for chunk in 0..20 {
            let mut args = vec!["ZADD".to_string(), "big".to_string()];
            for i in chunk * 5000..(chunk + 1) * 5000 {
                args.push(i.to_string());
                args.push(format!("m{i}"));
            }
            t.run(&args.join(" "));
        }
        // 100k ranks and range seeks; a linear walk would take ~5e9 steps.
        for i in (0..100_000).step_by(7) {
            assert_eq!(t.run(&format!("ZRANK big m{i}")), int(i));
        }
        assert_eq!(t.run("ZRANGE big 99998 99999"), arr(&["m99998", "m99999"]));
        assert_eq!(
            t.run("ZRANGEBYSCORE big 50000 +inf LIMIT 49999 5"),
            arr(&["m99999"])
        );
        assert_eq!(t.run("ZCOUNT big (10 20"), int(10));
    }

    #[test]
    fn rdb_round_trip_keeps_encoding() {
        let mut t = T::new();
        t.run("ZADD z 1 a 2.5 b");
        let db = t.ctx.db;
        let v = t.ks.peek(&t.ctx, db, b"z").unwrap().clone();
        let back = crate::rdbconv::from_rdb(crate::rdbconv::to_rdb(&v)).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.encoding(), "listpack");
    }
}
