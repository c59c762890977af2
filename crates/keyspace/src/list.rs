//! The list commands, including the blocking ones (BLPOP, BLMOVE, BLMPOP…).
//!
//! A list is a [`List`], a chain of packed nodes (Redis's quicklist). Redis
//! 7.0 reports every list as `quicklist` (the small-list `listpack` encoding
//! arrived in 7.2), so there is no encoding state to track.
//!
//! The keyspace never blocks. A blocking command validates its arguments as
//! Redis does and tries once: if an element is there it pops it, replies as
//! the blocking command would and propagates the non-blocking form; if not it
//! returns [`Reply::NilArray`] and changes nothing, and the server blocks the
//! client (re-running the command when one of [`ExecContext::ready_keys`]
//! names a key it waits on). Every push records its key there.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::longdouble::LongDouble;
use crate::notify as ev;
use crate::value::Value;
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

pub use crate::quicklist::List;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    /// Redis's `getListPositionFromObjectOrReply`.
    fn parse(raw: &[u8]) -> Result<End, Reply> {
        if raw.eq_ignore_ascii_case(b"left") {
            Ok(End::Left)
        } else if raw.eq_ignore_ascii_case(b"right") {
            Ok(End::Right)
        } else {
            Err(err(errors::SYNTAX))
        }
    }

    fn pop(self, l: &mut List) -> Option<Bytes> {
        match self {
            End::Left => l.pop_front(),
            End::Right => l.pop_back(),
        }
    }

    fn push(self, l: &mut List, v: &[u8]) {
        match self {
            End::Left => l.push_front(v),
            End::Right => l.push_back(v),
        }
    }

    /// The keyspace event of a pop from this end.
    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }

    /// The keyspace event of a push to this end.
    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    fn pop_name(self) -> &'static [u8] {
        match self {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        }
    }
}

/// A blocking command's timeout in ms (0: wait forever), as Redis 7.0.15's
/// `getTimeoutFromObjectOrReply` computes it for seconds: `strtold`, times
/// 1000 in `long double`, `ceill`, cast to `long long`. Out-of-range values
/// become LLONG_MIN on x86 and so report "timeout is negative" (7.0.15 never
/// says "timeout is out of range" for seconds); `-0.0001` rounds up to 0,
/// which means forever.
pub fn parse_timeout(raw: &[u8]) -> Result<u64, Reply> {
    let Some(v) = LongDouble::parse(raw) else {
        return Err(err(errors::TIMEOUT_NOT_FLOAT));
    };
    let ms = match v {
        LongDouble::Finite { neg, mant, exp } => ceil_times_1000(neg, mant, exp),
        _ => None,
    };
    match ms {
        Some(ms) if ms >= 0 => Ok(ms as u64),
        _ => Err(err(errors::TIMEOUT_NEGATIVE)),
    }
}

/// `(long long) ceill(v * 1000.0L)` for `v = ±mant × 2^exp`; `None` when the
/// result does not fit an i64.
fn ceil_times_1000(neg: bool, mant: u64, exp: i64) -> Option<i64> {
    // The x87 product is rounded to a 64-bit mantissa, half to even.
    let mut p = mant as u128 * 1000;
    let mut e = exp;
    let bits = 128 - p.leading_zeros() as i64;
    if bits > 64 {
        let sh = (bits - 64) as u32;
        let rem = p & ((1u128 << sh) - 1);
        let half = 1u128 << (sh - 1);
        p >>= sh;
        e += sh as i64;
        if rem > half || (rem == half && p & 1 == 1) {
            p += 1;
        }
    }
    if p == 0 {
        return Some(0);
    }
    // |value| = p × 2^e; ceil rounds positives up and negatives towards zero.
    let magnitude: u128 = if e >= 0 {
        if e >= 64 {
            return None;
        }
        p.checked_shl(e as u32).filter(|m| m >> e == p)?
    } else if e <= -128 {
        u128::from(!neg)
    } else {
        let sh = (-e) as u32;
        let q = p >> sh;
        let frac = p & ((1u128 << sh) - 1) != 0;
        if frac && !neg {
            q + 1
        } else {
            q
        }
    };
    if neg {
        if magnitude <= 1u128 << 63 {
            Some((magnitude as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The list at `key` (write lookup): `Ok(None)` if missing, WRONGTYPE if not a list.
fn list_mut<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut List>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, mode) {
        None => Ok(None),
        Some(f) => match &mut f.slot.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// Deletes `key` if its list became empty (Redis never keeps empty lists),
/// with Redis's `del` event.
fn drop_if_empty(ks: &mut Keyspace, ctx: &mut ExecContext, key: &[u8], empty: bool) {
    if empty {
        ks.remove(ctx.db, key);
        ctx.notify(ev::GENERIC, "del", key);
    }
}

fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn bulks<'a>(items: impl Iterator<Item = &'a [u8]>) -> Reply {
    Reply::Array(items.map(|b| Reply::Bulk(owned(b))).collect())
}

fn ready(ctx: &mut ExecContext, key: &[u8]) {
    let db = ctx.db;
    ctx.ready_keys.push((db, owned(key)));
}

/// LPUSH/RPUSH key element [element ...]; LPUSHX/RPUSHX with `only_existing`.
pub fn push(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    left: bool,
    only_existing: bool,
) -> Reply {
    let end = if left { End::Left } else { End::Right };
    let key = &args[1];
    let len = match list_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) if only_existing => return Reply::Integer(0),
        Ok(Some(l)) => {
            for a in &args[2..] {
                end.push(l, a);
            }
            l.len()
        }
        Ok(None) => {
            let mut l = List::new();
            for a in &args[2..] {
                end.push(&mut l, a);
            }
            let n = l.len();
            let db = ctx.db;
            ks.insert_new(ctx, db, key, Value::List(Box::new(l)), None);
            n
        }
    };
    ctx.stats.dirty += (args.len() - 2) as u64;
    ctx.notify(ev::LIST, end.push_event(), key);
    ready(ctx, key);
    ctx.propagate_as_sent(args);
    Reply::Integer(len as i64)
}

/// Redis's `getPositiveLongFromObjectOrReply` with its default message, which
/// it also gives for a non-integer.
fn parse_positive(raw: &[u8]) -> Result<i64, Reply> {
    match parse_i64(raw) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(err(errors::OUT_OF_RANGE_POSITIVE)),
    }
}

/// LPOP/RPOP key [count]
pub fn pop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], left: bool) -> Reply {
    let end = if left { End::Left } else { End::Right };
    if args.len() > 3 {
        return Reply::Error(errors::wrong_arity(if left { "lpop" } else { "rpop" }));
    }
    let count = match args.get(2) {
        Some(raw) => match parse_positive(raw) {
            Ok(n) => Some(n as usize),
            Err(e) => return e,
        },
        None => None,
    };
    let key = &args[1];
    let l = match list_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Reply::NilArray
            } else {
                Reply::Nil
            }
        }
        Ok(Some(l)) => l,
    };
    let reply = match count {
        None => Reply::Bulk(end.pop(l).expect("lists are never empty")),
        Some(0) => return Reply::Array(Vec::new()),
        Some(n) => {
            let n = n.min(l.len());
            let out: Vec<Reply> = (0..n)
                .map(|_| Reply::Bulk(end.pop(l).expect("n <= len")))
                .collect();
            Reply::Array(out)
        }
    };
    let empty = l.is_empty();
    ctx.notify(ev::LIST, end.pop_event(), key);
    drop_if_empty(ks, ctx, key, empty);
    ctx.stats.dirty += match &reply {
        Reply::Array(v) => v.len() as u64,
        _ => 1,
    };
    ctx.propagate_as_sent(args);
    reply
}

/// LLEN key
pub fn llen(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match list_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => e,
        Ok(l) => Reply::Integer(l.map_or(0, |l| l.len() as i64)),
    }
}

/// Redis's clamp of `start..=end` (negatives from the end) to a list of `len`;
/// `None` when the range is empty.
pub(crate) fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// LRANGE key start stop
pub fn lrange(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (start, end) = match (parse_i64(&args[2]), parse_i64(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match list_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => e,
        Ok(None) => Reply::Array(Vec::new()),
        Ok(Some(l)) => match clamp_range(start, end, l.len()) {
            None => Reply::Array(Vec::new()),
            Some((s, e)) => bulks(l.range(s, e)),
        },
    }
}

/// A list index (negatives from the end) as a position, if inside the list.
fn position(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// LINDEX key index
pub fn lindex(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let l = match list_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(l)) => l,
    };
    let index = match parse_i64(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match position(index, l.len()) {
        Some(i) => Reply::Bulk(owned(l.get(i).expect("i < len"))),
        None => Reply::Nil,
    }
}

/// LSET key index element
pub fn lset(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let l = match list_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return err(errors::NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let index = match parse_i64(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let Some(i) = position(index, l.len()) else {
        return err(errors::INDEX_OUT_OF_RANGE);
    };
    l.set(i, &args[3]);
    ctx.stats.dirty += 1;
    ctx.notify(ev::LIST, "lset", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::OK
}

/// LREM key count element: `count` > 0 from the head, < 0 from the tail, 0 all.
pub fn lrem(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let count = match parse_i64(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let key = &args[1];
    let l = match list_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(l)) => l,
    };
    let want = &args[3][..];
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs().try_into().unwrap_or(usize::MAX)
    };
    let mut removed = 0usize;
    if count >= 0 {
        l.retain(|e| {
            if removed < limit && e == want {
                removed += 1;
                false
            } else {
                true
            }
        });
    } else {
        // From the tail: mark positions, then keep the rest in order.
        let mut drop = vec![false; l.len()];
        for (i, e) in l.iter().enumerate().rev() {
            if removed == limit {
                break;
            }
            if e == want {
                drop[i] = true;
                removed += 1;
            }
        }
        let mut i = 0;
        l.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
    }
    if removed > 0 {
        let empty = l.is_empty();
        ctx.notify(ev::LIST, "lrem", key);
        drop_if_empty(ks, ctx, key, empty);
        ctx.stats.dirty += removed as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(removed as i64)
}

/// LTRIM key start stop
pub fn ltrim(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (start, end) = match (parse_i64(&args[2]), parse_i64(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = &args[1];
    let l = match list_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::OK,
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let removed = match clamp_range(start, end, len) {
        None => {
            l.clear();
            len
        }
        Some((s, e)) => {
            l.trim(s, e);
            len - (e + 1 - s)
        }
    };
    // Redis reports `ltrim` even when nothing was trimmed.
    let empty = l.is_empty();
    ctx.notify(ev::LIST, "ltrim", key);
    drop_if_empty(ks, ctx, key, empty);
    if removed > 0 {
        ctx.stats.dirty += removed as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::OK
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return err(errors::SYNTAX);
    };
    let key = &args[1];
    let l = match list_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(l)) => l,
    };
    let Some(i) = l.iter().position(|e| e == &args[3][..]) else {
        return Reply::Integer(-1);
    };
    l.insert(if after { i + 1 } else { i }, &args[4]);
    let len = l.len();
    ctx.stats.dirty += 1;
    ctx.notify(ev::LIST, "linsert", key);
    ready(ctx, key);
    ctx.propagate_as_sent(args);
    Reply::Integer(len as i64)
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j][..];
        let more = j + 1 < args.len();
        if more && opt.eq_ignore_ascii_case(b"rank") {
            j += 1;
            rank = match parse_i64(&args[j]) {
                Ok(r) => r,
                Err(e) => return e,
            };
            if rank == 0 {
                return err(errors::LPOS_RANK_ZERO);
            }
        } else if more && opt.eq_ignore_ascii_case(b"count") {
            j += 1;
            match parse_i64(&args[j]) {
                Ok(c) if c >= 0 => count = Some(c),
                _ => return err(errors::LPOS_COUNT_NEGATIVE),
            }
        } else if more && opt.eq_ignore_ascii_case(b"maxlen") {
            j += 1;
            match parse_i64(&args[j]) {
                Ok(m) if m >= 0 => maxlen = m,
                _ => return err(errors::LPOS_MAXLEN_NEGATIVE),
            }
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    // Redis negates a negative rank in a C long: i64::MIN stays negative and
    // then matches from the first hit (`matches >= rank`).
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let l = match list_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Reply::Array(Vec::new())
            } else {
                Reply::Nil
            }
        }
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let want = &args[2][..];
    let mut out = Vec::new();
    let mut matches: i64 = 0;
    let at = |index: usize| if from_tail { len - index - 1 } else { index };
    let items: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(l.iter().rev())
    } else {
        Box::new(l.iter())
    };
    for (index, item) in items.enumerate() {
        if maxlen != 0 && index as i64 >= maxlen {
            break;
        }
        if item != want {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        match count {
            None => return Reply::Integer(at(index) as i64),
            Some(c) => {
                out.push(Reply::Integer(at(index) as i64));
                if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c {
                    break;
                }
            }
        }
    }
    match count {
        Some(_) => Reply::Array(out),
        None => Reply::Nil,
    }
}

/// Pops from `src` and pushes onto `dst` (LMOVE, RPOPLPUSH and the blocking
/// forms once something is there). `Ok(None)` when `src` is missing.
fn move_one(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, Reply> {
    if list_mut(ks, ctx, src, Lookup::Write)?.is_none() {
        return Ok(None);
    }
    // The destination's type is checked before anything is popped.
    list_mut(ks, ctx, dst, Lookup::Write)?;
    let l = list_mut(ks, ctx, src, Lookup::Write)?.expect("checked above");
    let v = from.pop(l).expect("lists are never empty");
    let empty = l.is_empty();
    if src == dst {
        // Rotation: the list is still there even if it held one element.
        to.push(l, &v);
    } else {
        if empty {
            // Its `del` event comes after the push's, as in Redis.
            ks.remove(ctx.db, src);
        }
        match list_mut(ks, ctx, dst, Lookup::Write)? {
            Some(d) => to.push(d, &v),
            None => {
                let db = ctx.db;
                ks.insert_new(
                    ctx,
                    db,
                    dst,
                    Value::List(Box::new(List::from_items([&v[..]]))),
                    None,
                );
            }
        }
    }
    ctx.stats.dirty += 1;
    ctx.notify(ev::LIST, to.push_event(), dst);
    ctx.notify(ev::LIST, from.pop_event(), src);
    if empty && src != dst {
        ctx.notify(ev::GENERIC, "del", src);
    }
    ready(ctx, dst);
    Ok(Some(v))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (from, to) = match (End::parse(&args[3]), End::parse(&args[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match move_one(ks, ctx, &args[1], &args[2], from, to) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(v)) => {
            ctx.propagate_as_sent(args);
            Reply::Bulk(v)
        }
    }
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match move_one(ks, ctx, &args[1], &args[2], End::Right, End::Left) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(v)) => {
            ctx.propagate_as_sent(args);
            Reply::Bulk(v)
        }
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout (propagated as
/// LMOVE); `NilArray` = block.
pub fn blmove(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (from, to) = match (End::parse(&args[3]), End::parse(&args[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if let Err(e) = parse_timeout(&args[5]) {
        return e;
    }
    match move_one(ks, ctx, &args[1], &args[2], from, to) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some(v)) => {
            ctx.propagate(vec![
                Bytes::from_static(b"LMOVE"),
                args[1].clone(),
                args[2].clone(),
                args[3].clone(),
                args[4].clone(),
            ]);
            Reply::Bulk(v)
        }
    }
}

/// BRPOPLPUSH source destination timeout (propagated as RPOPLPUSH);
/// `NilArray` = block.
pub fn brpoplpush(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    if let Err(e) = parse_timeout(&args[3]) {
        return e;
    }
    match move_one(ks, ctx, &args[1], &args[2], End::Right, End::Left) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some(v)) => {
            ctx.propagate(vec![
                Bytes::from_static(b"RPOPLPUSH"),
                args[1].clone(),
                args[2].clone(),
            ]);
            Reply::Bulk(v)
        }
    }
}

/// Pops up to `count` elements from the first non-empty list of `keys`:
/// `Ok(Some((key, values)))`, `Ok(None)` if all are missing. A wrong-typed key
/// before the first non-empty one is an error. Propagates `[LR]POP key n`
/// when `as_count`, `[LR]POP key` otherwise.
fn pop_first(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    keys: &[Bytes],
    end: End,
    count: Option<usize>,
) -> Result<Option<(Bytes, Vec<Bytes>)>, Reply> {
    for key in keys {
        let Some(l) = list_mut(ks, ctx, key, Lookup::Write)? else {
            continue;
        };
        let n = count.unwrap_or(1).min(l.len());
        let values: Vec<Bytes> = (0..n).map(|_| end.pop(l).expect("n <= len")).collect();
        let empty = l.is_empty();
        ctx.notify(ev::LIST, end.pop_event(), key);
        drop_if_empty(ks, ctx, key, empty);
        ctx.stats.dirty += n as u64;
        let mut effect = vec![Bytes::from_static(end.pop_name()), key.clone()];
        if count.is_some() {
            effect.push(Bytes::from(n.to_string()));
        }
        ctx.propagate(effect);
        return Ok(Some((key.clone(), values)));
    }
    Ok(None)
}

/// BLPOP/BRPOP key [key ...] timeout (propagated as LPOP/RPOP key);
/// `NilArray` = block.
pub fn bpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], left: bool) -> Reply {
    let end = if left { End::Left } else { End::Right };
    if let Err(e) = parse_timeout(&args[args.len() - 1]) {
        return e;
    }
    match pop_first(ks, ctx, &args[1..args.len() - 1], end, None) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some((key, mut v))) => Reply::Array(vec![
            Reply::Bulk(key),
            Reply::Bulk(v.pop().expect("one element")),
        ]),
    }
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] (`numkeys_at` = 1)
/// and BLMPOP timeout numkeys … (`numkeys_at` = 2, timeout checked first).
/// Both propagate `[LR]POP key n`; BLMPOP returns `NilArray` to block, LMPOP
/// replies it when every list is empty.
pub fn mpop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], numkeys_at: usize) -> Reply {
    if numkeys_at == 2 {
        if let Err(e) = parse_timeout(&args[1]) {
            return e;
        }
    }
    let numkeys = match parse_i64(&args[numkeys_at]) {
        Ok(n) if n >= 1 => n as u64,
        _ => return err(errors::NUMKEYS_NOT_POSITIVE),
    };
    let where_at = (numkeys_at as u64)
        .saturating_add(numkeys)
        .saturating_add(1);
    if where_at >= args.len() as u64 {
        return err(errors::SYNTAX);
    }
    let where_at = where_at as usize;
    let end = match End::parse(&args[where_at]) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let mut count: Option<usize> = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && j + 1 < args.len() && args[j].eq_ignore_ascii_case(b"count") {
            j += 1;
            match parse_i64(&args[j]) {
                Ok(c) if c >= 1 => count = Some(c as usize),
                _ => return err(errors::COUNT_NOT_POSITIVE),
            }
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let keys = &args[numkeys_at + 1..where_at];
    match pop_first(ks, ctx, keys, end, Some(count.unwrap_or(1))) {
        Err(e) => e,
        Ok(None) => Reply::NilArray,
        Ok(Some((key, v))) => Reply::Array(vec![Reply::Bulk(key), bulks(v.iter().map(|b| &b[..]))]),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;
    use crate::testutil::*;
    use crate::DbIndex;
    use bytes::Bytes;
    use shardis_protocol::Reply;

    fn arr(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    fn ints(items: &[i64]) -> Reply {
        Reply::Array(items.iter().map(|&n| int(n)).collect())
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    #[test]
    fn push_pop_len_and_deletion_when_empty() {
        let mut t = T::new();
        assert_eq!(t.run("LPUSH l a b c"), int(3));
        assert_eq!(t.run("RPUSH l d"), int(4));
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["c", "b", "a", "d"]));
        assert_eq!(t.run("LLEN l"), int(4));
        assert_eq!(t.run("LLEN nol"), int(0));
        assert_eq!(t.run("TYPE l"), Reply::Simple("list"));
        assert_eq!(t.run("OBJECT ENCODING l"), bulk("quicklist"));
        assert_eq!(t.run("LPUSHX nol a"), int(0));
        assert_eq!(t.run("RPUSHX l e f"), int(6));
        assert_eq!(t.run("LPUSHX l z"), int(7));
        assert_eq!(t.run("LPOP l"), bulk("z"));
        assert_eq!(t.run("RPOP l"), bulk("f"));
        assert_eq!(t.run("LPOP l 2"), arr(&["c", "b"]));
        assert_eq!(t.run("RPOP l 0"), arr(&[]));
        assert_eq!(t.run("RPOP l 10"), arr(&["e", "d", "a"]));
        assert_eq!(t.run("EXISTS l"), int(0), "an emptied list is deleted");
        assert_eq!(t.run("LPOP l"), Reply::Nil);
        assert_eq!(t.run("LPOP l 1"), Reply::NilArray);
        assert_eq!(t.run("LPOP l 0"), Reply::NilArray);
        assert_eq!(
            t.effects(),
            vec![
                "LPUSH l a b c",
                "RPUSH l d",
                "RPUSHX l e f",
                "LPUSHX l z",
                "LPOP l",
                "RPOP l",
                "LPOP l 2",
                "RPOP l 10",
            ]
        );
        assert_eq!(t.ctx.stats.dirty, 3 + 1 + 2 + 1 + 1 + 1 + 2 + 3);
        assert_eq!(
            t.ctx.ready_keys,
            vec![(DbIndex(0), Bytes::from("l")); 4],
            "every push marks the key ready"
        );
    }

    #[test]
    fn pop_count_errors_and_wrongtype() {
        let mut t = T::new();
        assert_eq!(
            t.run("LPOP nol -1"),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            t.run("LPOP nol x"),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            t.run("LPOP l 1 2"),
            err("ERR wrong number of arguments for 'lpop' command")
        );
        t.run("SET s v");
        for cmd in [
            "LPUSH s a",
            "RPUSHX s a",
            "LPOP s",
            "RPOP s 2",
            "LLEN s",
            "LRANGE s 0 1",
            "LINDEX s 0",
            "LSET s 0 a",
            "LREM s 0 a",
            "LTRIM s 0 1",
            "LINSERT s BEFORE a b",
            "LPOS s a",
            "LMOVE s d LEFT LEFT",
            "RPOPLPUSH s d",
            "BLPOP s 0",
            "BRPOPLPUSH s d 0",
            "LMPOP 1 s LEFT",
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        t.run("RPUSH l a");
        assert_eq!(t.run("GET l"), err(WRONGTYPE));
        assert_eq!(t.run("APPEND l x"), err(WRONGTYPE));
        assert_eq!(t.run("LMOVE l s LEFT LEFT"), err(WRONGTYPE));
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["a"]), "nothing was popped");
    }

    #[test]
    fn ranges_and_indexes() {
        let mut t = T::new();
        t.run("RPUSH l a b c d e");
        assert_eq!(t.run("LRANGE l 1 2"), arr(&["b", "c"]));
        assert_eq!(t.run("LRANGE l -2 100"), arr(&["d", "e"]));
        assert_eq!(t.run("LRANGE l -100 0"), arr(&["a"]));
        assert_eq!(t.run("LRANGE l 3 1"), arr(&[]));
        assert_eq!(t.run("LRANGE l 5 10"), arr(&[]));
        assert_eq!(
            t.run("LRANGE l -9223372036854775808 9223372036854775807"),
            arr(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(
            t.run("LRANGE l x 1"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("LRANGE nol 0 -1"), arr(&[]));
        assert_eq!(t.run("LINDEX l 0"), bulk("a"));
        assert_eq!(t.run("LINDEX l -1"), bulk("e"));
        assert_eq!(t.run("LINDEX l 5"), Reply::Nil);
        assert_eq!(t.run("LINDEX l -6"), Reply::Nil);
        assert_eq!(t.run("LINDEX nol x"), Reply::Nil, "key looked up first");
        assert_eq!(
            t.run("LINDEX l x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("LSET l -1 E"), Reply::OK);
        assert_eq!(t.run("LSET l 5 E"), err("ERR index out of range"));
        assert_eq!(t.run("LSET nol 0 E"), err("ERR no such key"));
        assert_eq!(t.run("LINDEX l 4"), bulk("E"));
        t.effects();
        assert_eq!(t.run("LTRIM l 0 -1"), Reply::OK);
        assert!(t.effects().is_empty(), "a no-op trim propagates nothing");
        assert_eq!(t.run("LTRIM l 1 -2"), Reply::OK);
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["b", "c", "d"]));
        assert_eq!(t.run("LTRIM nol 0 1"), Reply::OK);
        assert_eq!(t.run("LTRIM l 2 1"), Reply::OK);
        assert_eq!(t.run("EXISTS l"), int(0));
        assert_eq!(t.effects(), vec!["LTRIM l 1 -2", "LTRIM l 2 1"]);
    }

    #[test]
    fn lrem_both_directions() {
        let mut t = T::new();
        t.run("RPUSH l x a x b x c x");
        assert_eq!(t.run("LREM l 2 x"), int(2));
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["a", "b", "x", "c", "x"]));
        assert_eq!(t.run("LREM l -1 x"), int(1));
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["a", "b", "x", "c"]));
        assert_eq!(t.run("LREM l 0 zz"), int(0));
        assert_eq!(t.run("LREM l 0 x"), int(1));
        assert_eq!(t.run("LREM nol 0 x"), int(0));
        assert_eq!(
            t.run("LREM l y x"),
            err("ERR value is not an integer or out of range")
        );
        t.effects();
        t.run("RPUSH m q q");
        assert_eq!(t.run("LREM m -5 q"), int(2));
        assert_eq!(t.run("EXISTS m"), int(0));
        assert_eq!(t.effects(), vec!["RPUSH m q q", "LREM m -5 q"]);
    }

    #[test]
    fn linsert_and_lpos() {
        let mut t = T::new();
        t.run("RPUSH l a b c");
        assert_eq!(t.run("LINSERT l BEFORE b x"), int(4));
        assert_eq!(t.run("LINSERT l after c y"), int(5));
        assert_eq!(t.run("LINSERT l AFTER zz y"), int(-1));
        assert_eq!(t.run("LINSERT nol AFTER a y"), int(0));
        assert_eq!(t.run("LINSERT l middle a y"), err("ERR syntax error"));
        assert_eq!(t.run("LRANGE l 0 -1"), arr(&["a", "x", "b", "c", "y"]));
        t.run("DEL l");
        t.run("RPUSH l a b c 1 2 3 c c");
        assert_eq!(t.run("LPOS l c"), int(2));
        assert_eq!(t.run("LPOS l zz"), Reply::Nil);
        assert_eq!(t.run("LPOS l c RANK 2"), int(6));
        assert_eq!(t.run("LPOS l c RANK -1"), int(7));
        assert_eq!(t.run("LPOS l c COUNT 2"), ints(&[2, 6]));
        assert_eq!(t.run("LPOS l c COUNT 0"), ints(&[2, 6, 7]));
        assert_eq!(t.run("LPOS l c RANK -2 COUNT 0"), ints(&[6, 2]));
        assert_eq!(t.run("LPOS l c COUNT 0 MAXLEN 7"), ints(&[2, 6]));
        assert_eq!(t.run("LPOS l c RANK -1 MAXLEN 1"), int(7));
        assert_eq!(t.run("LPOS l c RANK 4"), Reply::Nil);
        assert_eq!(t.run("LPOS l c RANK 4 COUNT 1"), ints(&[]));
        assert_eq!(t.run("LPOS nol c COUNT 1"), ints(&[]));
        assert_eq!(t.run("LPOS nol c"), Reply::Nil);
        assert_eq!(t.run("LPOS l c RANK -9223372036854775808"), int(7));
        assert_eq!(
            t.run("LPOS l c RANK 0"),
            err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
        );
        assert_eq!(
            t.run("LPOS l c COUNT -1"),
            err("ERR COUNT can't be negative")
        );
        assert_eq!(
            t.run("LPOS l c COUNT x"),
            err("ERR COUNT can't be negative")
        );
        assert_eq!(
            t.run("LPOS l c MAXLEN -1"),
            err("ERR MAXLEN can't be negative")
        );
        assert_eq!(t.run("LPOS l c RANK"), err("ERR syntax error"));
        assert_eq!(
            t.run("LPOS l c RANK x"),
            err("ERR value is not an integer or out of range")
        );
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut t = T::new();
        t.run("RPUSH a 1 2 3");
        assert_eq!(t.run("LMOVE a b LEFT RIGHT"), bulk("1"));
        assert_eq!(t.run("LMOVE a b right left"), bulk("3"));
        assert_eq!(t.run("LRANGE b 0 -1"), arr(&["3", "1"]));
        assert_eq!(t.run("RPOPLPUSH a a"), bulk("2"), "rotation of one");
        assert_eq!(t.run("LRANGE a 0 -1"), arr(&["2"]));
        assert_eq!(t.run("RPOPLPUSH a b"), bulk("2"));
        assert_eq!(t.run("EXISTS a"), int(0));
        assert_eq!(t.run("RPOPLPUSH a b"), Reply::Nil);
        assert_eq!(t.run("LMOVE a b LEFT UP"), err("ERR syntax error"));
        assert_eq!(t.run("LMOVE b b LEFT RIGHT"), bulk("2"));
        assert_eq!(t.run("LRANGE b 0 -1"), arr(&["3", "1", "2"]));
        assert_eq!(
            t.effects(),
            vec![
                "RPUSH a 1 2 3",
                "LMOVE a b LEFT RIGHT",
                "LMOVE a b right left",
                "RPOPLPUSH a a",
                "RPOPLPUSH a b",
                "LMOVE b b LEFT RIGHT",
            ]
        );
    }

    #[test]
    fn lmpop_parsing_and_effects() {
        let mut t = T::new();
        t.run("RPUSH b 1 2 3");
        t.effects();
        assert_eq!(
            t.run("LMPOP 2 a b LEFT"),
            Reply::Array(vec![bulk("b"), arr(&["1"])])
        );
        assert_eq!(
            t.run("LMPOP 2 a b RIGHT COUNT 5"),
            Reply::Array(vec![bulk("b"), arr(&["3", "2"])])
        );
        assert_eq!(t.run("LMPOP 2 a b RIGHT"), Reply::NilArray);
        assert_eq!(t.effects(), vec!["LPOP b 1", "RPOP b 2"]);
        assert_eq!(
            t.run("LMPOP 0 a LEFT"),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            t.run("LMPOP x a LEFT"),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(t.run("LMPOP 3 a LEFT"), err("ERR syntax error"));
        assert_eq!(t.run("LMPOP 1 a MIDDLE"), err("ERR syntax error"));
        assert_eq!(
            t.run("LMPOP 1 a LEFT COUNT 0"),
            err("ERR count should be greater than 0")
        );
        assert_eq!(
            t.run("LMPOP 1 a LEFT COUNT 1 COUNT 2"),
            err("ERR syntax error")
        );
        assert_eq!(t.run("LMPOP 1 a LEFT COUNT"), err("ERR syntax error"));
        assert_eq!(
            t.run("LMPOP 9223372036854775807 a LEFT"),
            err("ERR syntax error")
        );
    }

    #[test]
    fn blocking_forms_pop_once_or_ask_to_block() {
        let mut t = T::new();
        assert_eq!(t.run("BLPOP a b 0"), Reply::NilArray);
        assert_eq!(t.run("BRPOPLPUSH a b 1.5"), Reply::NilArray);
        assert_eq!(t.run("BLMOVE a b LEFT LEFT 0"), Reply::NilArray);
        assert_eq!(t.run("BLMPOP 0 2 a b LEFT"), Reply::NilArray);
        assert!(t.effects().is_empty());
        assert_eq!(t.ctx.stats.dirty, 0);
        t.run("RPUSH b 1 2 3 4 5");
        t.effects();
        assert_eq!(t.run("BLPOP a b 0"), arr(&["b", "1"]));
        assert_eq!(t.run("BRPOP a b 0"), arr(&["b", "5"]));
        assert_eq!(t.run("BRPOPLPUSH b c 0"), bulk("4"));
        assert_eq!(t.run("BLMOVE b c LEFT RIGHT 0.5"), bulk("2"));
        assert_eq!(
            t.run("BLMPOP 0 2 a b RIGHT COUNT 9"),
            Reply::Array(vec![bulk("b"), arr(&["3"])])
        );
        assert_eq!(
            t.effects(),
            vec![
                "LPOP b",
                "RPOP b",
                "RPOPLPUSH b c",
                "LMOVE b c LEFT RIGHT",
                "RPOP b 1",
            ]
        );
        assert_eq!(t.run("LRANGE c 0 -1"), arr(&["4", "2"]));
        t.run("SET s x");
        assert_eq!(t.run("BLPOP s c 0"), err(WRONGTYPE), "checked in order");
        assert_eq!(t.run("BLPOP c s 0"), arr(&["c", "4"]));
        assert_eq!(
            t.run("BLPOP c x"),
            err("ERR timeout is not a float or out of range")
        );
        assert_eq!(t.run("BLPOP c -1"), err("ERR timeout is negative"));
        assert_eq!(
            t.run("BLMOVE c d LEFT UP x"),
            err("ERR syntax error"),
            "directions before the timeout"
        );
        assert_eq!(
            t.run("BLMPOP x 0 c LEFT"),
            err("ERR timeout is not a float or out of range"),
            "timeout before numkeys"
        );
        assert_eq!(
            t.run("BLMPOP 0 0 c LEFT"),
            err("ERR numkeys should be greater than 0")
        );
    }

    #[test]
    fn timeouts_like_redis_7_0_15() {
        let ok = |s: &str| parse_timeout(s.as_bytes()).unwrap();
        let neg = |s: &str| parse_timeout(s.as_bytes()).unwrap_err();
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("1"), 1000);
        assert_eq!(ok("0.0001"), 1, "ceil");
        assert_eq!(ok("1e-300"), 1);
        assert_eq!(ok("-0.0001"), 0, "rounds up to 0: forever");
        assert_eq!(ok("-0.001"), 0);
        assert_eq!(ok("0x10"), 16000, "strtold takes hex");
        assert_eq!(ok("9223372036854775.807"), i64::MAX as u64);
        let negative = err("ERR timeout is negative");
        for s in [
            "-1",
            "-0.0011",
            "9223372036854775.808",
            "1e100",
            "inf",
            "-inf",
        ] {
            assert_eq!(neg(s), negative, "{s}");
        }
        let not_float = err("ERR timeout is not a float or out of range");
        for s in ["", " 1", "nan", "abc", "1x"] {
            assert_eq!(neg(s), not_float, "{s:?}");
        }
    }

    #[test]
    fn copy_rename_and_expiry_keep_lists() {
        let mut t = T::new();
        t.run("RPUSH a 1 2");
        assert_eq!(t.run("COPY a b"), int(1));
        t.run("RPUSH b 3");
        assert_eq!(t.run("LLEN a"), int(2), "the copy is deep");
        assert_eq!(t.run("RENAME b c"), Reply::OK);
        assert_eq!(t.run("LRANGE c 0 -1"), arr(&["1", "2", "3"]));
        t.run("PEXPIRE c 10");
        t.advance(10);
        assert_eq!(t.run("LLEN c"), int(0));
    }
}
