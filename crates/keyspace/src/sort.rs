//! SORT and SORT_RO (Redis 7.0's `sortCommandGeneric`).
//!
//! The elements of a list, set or sorted set are sorted numerically or
//! lexicographically, by themselves or by weights read through a `BY`
//! pattern, then returned (or stored as a list) as themselves or as the
//! values `GET` patterns name. A pattern's first `*` is replaced by the
//! element; `key*->field` reads a hash field.
//!
//! Patterns name arbitrary keys, which in shardis may live on other shards.
//! This module only reads its own keyspace: the server, when a SORT's
//! patterns can read other keys and there are several shards, holds every
//! shard, copies the source key into a temporary keyspace, asks
//! [`pattern_keys`] which keys the patterns will read, copies those too and
//! runs the command there unchanged.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::value::Value;
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;
use std::cmp::Ordering;

/// The parsed options.
#[derive(Debug, Default)]
struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<&'a Bytes>,
    by: Option<&'a Bytes>,
    dontsort: bool,
    get: Vec<&'a Bytes>,
}

fn parse(args: &[Bytes], readonly: bool) -> Result<Options<'_>, Reply> {
    let mut o = Options::default();
    let mut j = 2;
    while j < args.len() {
        let a = &args[j][..];
        let left = args.len() - j - 1;
        let is = |n: &[u8]| a.eq_ignore_ascii_case(n);
        if is(b"asc") {
            o.desc = false;
        } else if is(b"desc") {
            o.desc = true;
        } else if is(b"alpha") {
            o.alpha = true;
        } else if is(b"limit") && left >= 2 {
            o.limit = Some((parse_i64(&args[j + 1])?, parse_i64(&args[j + 2])?));
            j += 2;
        } else if !readonly && is(b"store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if is(b"by") && left >= 1 {
            o.by = Some(&args[j + 1]);
            // A constant BY (no `*`) means "do not sort".
            o.dontsort = !args[j + 1].contains(&b'*');
            j += 1;
        } else if is(b"get") && left >= 1 {
            o.get.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(err(errors::SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

/// For a user who may not read every key: the error SORT gives at its first
/// sorting BY or at its first GET, if option parsing reaches one (Redis
/// checks while parsing, so an earlier syntax error wins).
pub fn pattern_denied(args: &[Bytes], readonly: bool) -> Option<&'static str> {
    let mut j = 2;
    while j < args.len() {
        let a = &args[j][..];
        let left = args.len() - j - 1;
        let is = |n: &[u8]| a.eq_ignore_ascii_case(n);
        if is(b"asc") || is(b"desc") || is(b"alpha") {
        } else if is(b"limit") && left >= 2 {
            if parse_i64(&args[j + 1]).is_err() || parse_i64(&args[j + 2]).is_err() {
                return None;
            }
            j += 2;
        } else if !readonly && is(b"store") && left >= 1 {
            j += 1;
        } else if is(b"by") && left >= 1 {
            if args[j + 1].contains(&b'*') {
                return Some("ERR BY option of SORT denied due to insufficient ACL permissions.");
            }
            j += 1;
        } else if is(b"get") && left >= 1 {
            return Some("ERR GET option of SORT denied due to insufficient ACL permissions.");
        } else {
            return None;
        }
        j += 1;
    }
    None
}

/// A pattern with its `*` replaced by `elem`: the key to read and, for
/// `…->field`, the hash field. None for `#` and for patterns without `*`.
fn substitute(pattern: &[u8], elem: &[u8]) -> Option<(Vec<u8>, Option<Bytes>)> {
    if pattern == b"#" {
        return None;
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    // `->` only counts when a field name follows it.
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&i| i + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(i) => (&after[..i], Some(Bytes::copy_from_slice(&after[i + 2..]))),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    Some((key, field))
}

/// What a pattern yields for `elem` (Redis's `lookupKeyByPattern`): the
/// element itself for `#`, else the string key or hash field it names.
fn lookup_pattern(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    pattern: &[u8],
    elem: &Bytes,
) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(elem.clone());
    }
    let (key, field) = substitute(pattern, elem)?;
    let db = ctx.db;
    let f = ks.find(ctx, db, &key, Lookup::Read)?;
    match (&f.slot.value, field) {
        (Value::Hash(h), Some(field)) => h.get(&field).map(Bytes::copy_from_slice),
        (Value::String(s), None) => Some(s.to_bytes()),
        _ => None,
    }
}

/// True if the options can read keys other than the source and the
/// destination: a sorting BY pattern or a GET pattern other than `#`.
/// Whatever the syntax (a malformed command fails before reading anything).
pub fn reads_other_keys(args: &[Bytes], readonly: bool) -> bool {
    let Ok(o) = parse(args, readonly) else {
        return false;
    };
    (o.by.is_some() && !o.dontsort) || o.get.iter().any(|g| &g[..] != b"#")
}

/// The hash tags that pin every key the reading patterns can name: for each
/// BY (when it sorts) and GET pattern other than `#`, the `{tag}` its text
/// before the `*` fixes (Redis Cluster hashes only the first `{…}`). None if
/// some pattern's keys depend on the element (no complete tag before `*`).
pub fn pattern_tags(args: &[Bytes], readonly: bool) -> Option<Vec<&[u8]>> {
    let o = parse(args, readonly).ok()?;
    let mut reading: Vec<&Bytes> = o.get.iter().copied().filter(|g| &g[..] != b"#").collect();
    if !o.dontsort {
        reading.extend(o.by);
    }
    reading
        .into_iter()
        .filter(|p| p.contains(&b'*'))
        .map(|p| {
            let star = p.iter().position(|&c| c == b'*')?;
            let prefix = &p[..star];
            let open = prefix.iter().position(|&c| c == b'{')?;
            let len = prefix[open + 1..].iter().position(|&c| c == b'}')?;
            (len > 0).then(|| &prefix[open + 1..open + 1 + len])
        })
        .collect()
}

/// The keys SORT's patterns will read for the source key as it is in `ks`
/// now (each once). Empty if the command fails before reading any.
pub fn pattern_keys(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Vec<Bytes> {
    let readonly = false;
    let Ok(o) = parse(args, readonly) else {
        return Vec::new();
    };
    let elems = match source_elements(ks, ctx, &args[1]) {
        Ok(Some(e)) => e,
        _ => return Vec::new(),
    };
    let mut patterns: Vec<&Bytes> = o.get.clone();
    if !o.dontsort {
        patterns.extend(o.by);
    }
    let mut seen = hashbrown::HashSet::new();
    let mut out = Vec::new();
    for e in &elems {
        for p in &patterns {
            if let Some((key, _)) = substitute(p, e) {
                if seen.insert(key.clone()) {
                    out.push(Bytes::from(key));
                }
            }
        }
    }
    out
}

/// What SORT reads from the source key: its elements in load order.
fn source_elements(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
) -> Result<Option<Vec<Bytes>>, Reply> {
    let db = ctx.db;
    let Some(f) = ks.find(ctx, db, key, Lookup::Read) else {
        return Ok(None);
    };
    Ok(Some(match &f.slot.value {
        Value::List(l) => l.iter().map(Bytes::copy_from_slice).collect(),
        Value::Set(s) => s.iter().collect(),
        Value::ZSet(z) => z.iter().map(|(m, _)| m).collect(),
        _ => return Err(err(errors::WRONGTYPE)),
    }))
}

/// C's `strtod` over a whole string as SORT uses it: the text up to the first
/// NUL must be a number (leading spaces allowed, empty is 0), not NaN, and not
/// out of range.
fn sort_score(b: &[u8]) -> Option<f64> {
    let b = match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    };
    if b.is_empty() {
        return Some(0.0);
    }
    let t = std::str::from_utf8(b).ok()?;
    // strtod skips leading spaces, but only in front of a number.
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let v = crate::zset::parse_score(t.as_bytes())?;
    Some(v)
}

/// `strcoll` in the C locale: bytes up to the first NUL.
fn coll(a: &[u8], b: &[u8]) -> Ordering {
    let cut = |s: &[u8]| -> usize { s.iter().position(|&c| c == 0).unwrap_or(s.len()) };
    a[..cut(a)].cmp(&b[..cut(b)])
}

/// One element being sorted.
struct Item {
    elem: Bytes,
    score: f64,
    cmp: Option<Bytes>,
}

/// SORT / SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA] [STORE destination]
pub fn sort(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], readonly: bool) -> Reply {
    let mut o = match parse(args, readonly) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let db = ctx.db;
    let (kind, mut elems) = {
        let Some(f) = ks.find(ctx, db, &args[1], Lookup::Read) else {
            return finish(ks, ctx, args, &o, Vec::new());
        };
        match &f.slot.value {
            Value::List(l) => (
                0u8,
                l.iter().map(Bytes::copy_from_slice).collect::<Vec<_>>(),
            ),
            Value::Set(s) => (1, s.iter().collect()),
            Value::ZSet(z) => (2, z.iter().map(|(m, _)| m).collect()),
            _ => return err(errors::WRONGTYPE),
        }
    };
    // A set has no order of its own: when the result is stored (and so
    // replicated), sort it anyway so every replica gets the same list.
    if o.dontsort && kind == 1 && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = elems.len() as i64;
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut start = limit_start.max(0).min(len);
    let limit_count = limit_count.max(-1).min(len);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start + limit_count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    if o.dontsort {
        // Lists and sorted sets keep their order; DESC reverses it.
        if o.desc && kind != 1 {
            elems.reverse();
        }
        let out = if end >= start {
            elems[start as usize..=end as usize].to_vec()
        } else {
            Vec::new()
        };
        return finish(ks, ctx, args, &o, out);
    }
    let mut items: Vec<Item> = elems
        .into_iter()
        .map(|elem| Item {
            elem,
            score: 0.0,
            cmp: None,
        })
        .collect();
    let mut conversion_error = false;
    for it in items.iter_mut() {
        let byval = match o.by {
            Some(p) => match lookup_pattern(ks, ctx, p, &it.elem) {
                Some(v) => v,
                None => continue,
            },
            None => it.elem.clone(),
        };
        if o.alpha {
            if o.by.is_some() {
                it.cmp = Some(byval);
            }
        } else {
            match sort_score(&byval) {
                Some(s) => it.score = s,
                None => conversion_error = true,
            }
        }
    }
    let (alpha, by, store, desc) = (o.alpha, o.by.is_some(), o.store.is_some(), o.desc);
    // Ties keep load order (glibc's qsort is a merge sort): a stable sort.
    items.sort_by(|a, b| {
        let c = if !alpha {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.elem.cmp(&b.elem))
        } else if by {
            match (&a.cmp, &b.cmp) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) if store => x.cmp(y),
                (Some(x), Some(y)) => coll(x, y),
            }
        } else if store {
            a.elem.cmp(&b.elem)
        } else {
            coll(&a.elem, &b.elem)
        };
        if desc {
            c.reverse()
        } else {
            c
        }
    });
    if conversion_error {
        return err("ERR One or more scores can't be converted into double");
    }
    let out = if end >= start {
        items
            .drain(start as usize..=end as usize)
            .map(|it| it.elem)
            .collect()
    } else {
        Vec::new()
    };
    finish(ks, ctx, args, &o, out)
}

/// Replies (or stores) the selected elements, through the GET patterns.
fn finish(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    o: &Options<'_>,
    elems: Vec<Bytes>,
) -> Reply {
    let Some(dst) = o.store else {
        if o.get.is_empty() {
            return Reply::Array(elems.into_iter().map(Reply::Bulk).collect());
        }
        let mut out = Vec::with_capacity(elems.len() * o.get.len());
        for e in &elems {
            for p in &o.get {
                out.push(match lookup_pattern(ks, ctx, p, e) {
                    Some(v) => Reply::Bulk(v),
                    None => Reply::Nil,
                });
            }
        }
        return Reply::Array(out);
    };
    let list: crate::list::List = if o.get.is_empty() {
        crate::list::List::from_items(elems.iter().map(|e| &e[..]))
    } else {
        let mut l = crate::list::List::new();
        for e in &elems {
            for p in &o.get {
                l.push_back(&lookup_pattern(ks, ctx, p, e).unwrap_or_default());
            }
        }
        l
    };
    let db = ctx.db;
    let n = list.len();
    let deleted = ks.delete(ctx, db, dst);
    if n > 0 {
        ks.insert_replacing(ctx, db, dst, Value::List(Box::new(list)), None, deleted);
        ctx.notify(crate::notify::LIST, "sortstore", dst);
        ctx.ready_keys.push((db, dst.clone()));
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    } else if deleted {
        ctx.notify(crate::notify::GENERIC, "del", dst);
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

#[cfg(test)]
mod tests {
    use super::{pattern_keys, pattern_tags, reads_other_keys, substitute};
    use crate::testutil::*;
    use bytes::Bytes;
    use shardis_protocol::Reply;

    fn arr(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn substitution() {
        assert_eq!(substitute(b"w_*", b"3"), Some((b"w_3".to_vec(), None)));
        assert_eq!(
            substitute(b"h_*->f", b"3"),
            Some((b"h_3".to_vec(), Some(Bytes::from_static(b"f"))))
        );
        assert_eq!(substitute(b"h_*->", b"3"), Some((b"h_3->".to_vec(), None)));
        assert_eq!(substitute(b"nostar", b"3"), None);
        assert_eq!(substitute(b"#", b"3"), None);
    }

    #[test]
    fn numeric_alpha_limit() {
        let mut t = T::new();
        t.run("RPUSH l 3 1 2 10");
        assert_eq!(t.run("SORT l"), arr(&["1", "2", "3", "10"]));
        assert_eq!(t.run("SORT l DESC LIMIT 1 2"), arr(&["3", "2"]));
        assert_eq!(t.run("SORT l ALPHA"), arr(&["1", "10", "2", "3"]));
        assert_eq!(t.run("SORT l BY nosort DESC"), arr(&["10", "2", "1", "3"]));
        t.run("RPUSH bad 1 x");
        assert_eq!(
            t.run("SORT bad"),
            err("ERR One or more scores can't be converted into double")
        );
        assert_eq!(t.run("SORT l LIMIT 0"), err("ERR syntax error"));
        assert_eq!(t.run("SORT_RO l STORE d"), err("ERR syntax error"));
    }

    #[test]
    fn by_get_store() {
        let mut t = T::new();
        t.run("RPUSH l 1 2 3");
        t.run("MSET w_1 30 w_2 10 w_3 20 o_1 a o_2 b");
        t.run("HSET h_3 f zz");
        assert_eq!(t.run("SORT l BY w_*"), arr(&["2", "3", "1"]));
        assert_eq!(
            t.run("SORT l BY w_* GET # GET o_* GET h_*->f"),
            Reply::Array(vec![
                bulk("2"),
                bulk("b"),
                Reply::Nil,
                bulk("3"),
                Reply::Nil,
                bulk("zz"),
                bulk("1"),
                bulk("a"),
                Reply::Nil,
            ])
        );
        t.effects();
        assert_eq!(t.run("SORT l BY w_* GET o_* STORE d"), int(3));
        assert_eq!(t.effects(), vec!["SORT l BY w_* GET o_* STORE d"]);
        assert_eq!(t.run("LRANGE d 0 -1"), arr(&["b", "", "a"]));
        assert!(reads_other_keys(&args("SORT l BY w_*"), false));
        assert!(!reads_other_keys(&args("SORT l BY nosort GET #"), false));
        assert_eq!(
            pattern_tags(&args("SORT l BY w{t}_* GET {u}* GET # GET nostar"), false),
            Some(vec![&b"u"[..], &b"t"[..]])
        );
        assert_eq!(pattern_tags(&args("SORT l BY w_{*}"), false), None);
        assert_eq!(pattern_tags(&args("SORT l BY {}w_*"), false), None);
        assert_eq!(
            pattern_keys(&mut t.ks, &mut t.ctx, &args("SORT l BY w_* GET h_*->f")),
            args("h_1 w_1 h_2 w_2 h_3 w_3")
        );
    }
}
