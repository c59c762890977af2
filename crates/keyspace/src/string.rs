//! The string commands: GET, SET and friends, counters, APPEND, ranges.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::longdouble::LongDouble;
use crate::notify as ev;
use crate::value::{StrValue, Value};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

/// Redis's default `proto-max-bulk-len`: the largest string APPEND/SETRANGE may build.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// Which expiry option was given (SET, GETEX).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    Exat,
    Pxat,
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in ms, or the
/// error for a non-positive or overflowing time.
fn expire_at(ctx: &ExecContext, kind: ExpireKind, raw: &[u8], cmd: &str) -> Result<u64, Reply> {
    let mut ms = parse_i64(raw)?;
    let secs = matches!(kind, ExpireKind::Ex | ExpireKind::Exat);
    if ms <= 0 || (secs && ms > i64::MAX / 1000) {
        return Err(Reply::Error(errors::invalid_expire(cmd)));
    }
    if secs {
        ms *= 1000;
    }
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        ms = ms
            .checked_add(ctx.now_ms as i64)
            .ok_or_else(|| Reply::Error(errors::invalid_expire(cmd)))?;
    }
    Ok(ms as u64)
}

fn pxat_effect(key: &Bytes, value: &Bytes, at: u64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        value.clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]
}

fn is_opt(a: &[u8], name: &[u8]) -> bool {
    a.eq_ignore_ascii_case(name)
}

/// The value of a string key for a read command: `Ok(None)` if missing.
fn read_str(ks: &mut Keyspace, ctx: &mut ExecContext, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, Lookup::Read) {
        None => Ok(None),
        Some(f) => match f.slot.value.as_str() {
            Some(s) => Ok(Some(s.to_bytes())),
            None => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// Stores `value` under `key`: overwrites a live key in place (keeping its TTL
/// only when `keep_ttl`) or inserts a new one. Returns whether it existed.
fn store(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    value: Value,
    keep_ttl: bool,
    expire: Option<u64>,
) -> bool {
    let db = ctx.db;
    if let Some(mut f) = ks.find(ctx, db, key, Lookup::Write) {
        f.slot.value = value;
        if expire.is_some() || !keep_ttl {
            f.set_expire(expire);
        }
        return true;
    }
    ks.insert_new(ctx, db, key, value, expire);
    false
}

/// GET key
pub fn get(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match read_str(ks, ctx, &args[1]) {
        Ok(Some(b)) => Reply::Bulk(b),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expire: Option<(ExpireKind, &Bytes)> = None;
    let mut j = 3;
    // Redis's parseExtendedStringArgumentsOrReply: a repeated EX is allowed
    // (last wins), mixing kinds is a syntax error.
    while j < args.len() {
        let a = &args[j][..];
        let next = args.get(j + 1);
        let kind = if is_opt(a, b"ex") {
            Some(ExpireKind::Ex)
        } else if is_opt(a, b"px") {
            Some(ExpireKind::Px)
        } else if is_opt(a, b"exat") {
            Some(ExpireKind::Exat)
        } else if is_opt(a, b"pxat") {
            Some(ExpireKind::Pxat)
        } else {
            None
        };
        if is_opt(a, b"nx") && !xx {
            nx = true;
        } else if is_opt(a, b"xx") && !nx {
            xx = true;
        } else if is_opt(a, b"get") {
            get = true;
        } else if is_opt(a, b"keepttl") && expire.is_none() {
            keepttl = true;
        } else if let (Some(k), Some(v)) = (kind, next) {
            if keepttl || expire.is_some_and(|(old, _)| old != k) {
                return err(errors::SYNTAX);
            }
            expire = Some((k, v));
            j += 1;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let at = match expire {
        Some((k, v)) => match expire_at(ctx, k, v, "set") {
            Ok(at) => Some(at),
            Err(e) => return e,
        },
        None => None,
    };
    let old = if get {
        match read_str(ks, ctx, &args[1]) {
            Ok(o) => Some(o),
            Err(e) => return e,
        }
    } else {
        None
    };
    let ok_reply = |old: Option<Option<Bytes>>| match old {
        Some(Some(b)) => Reply::Bulk(b),
        Some(None) => Reply::Nil,
        None => Reply::OK,
    };
    if nx || xx {
        let db = ctx.db;
        let found = ks.find(ctx, db, &args[1], Lookup::Write).is_some();
        if (nx && found) || (xx && !found) {
            return if get { ok_reply(old) } else { Reply::Nil };
        }
    }
    store(ks, ctx, &args[1], Value::string(&args[2]), keepttl, at);
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "set", &args[1]);
    if at.is_some() {
        ctx.notify(ev::GENERIC, "expire", &args[1]);
    }
    if let Some(at) = at {
        ctx.propagate(pxat_effect(&args[1], &args[2], at));
    } else if get {
        // Replicas get the SET without its GET arguments.
        let a: Vec<Bytes> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !is_opt(a, b"get"))
            .map(|(_, a)| a.clone())
            .collect();
        ctx.propagate(a);
    } else {
        ctx.propagate_as_sent(args);
    }
    ok_reply(old)
}

/// SETNX key value
pub fn setnx(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    if ks.find(ctx, db, &args[1], Lookup::Write).is_some() {
        return Reply::Integer(0);
    }
    ks.insert_new(ctx, db, &args[1], Value::string(&args[2]), None);
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "set", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

/// SETEX key seconds value / PSETEX key milliseconds value
pub fn setex(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], millis: bool) -> Reply {
    let (kind, name) = if millis {
        (ExpireKind::Px, "psetex")
    } else {
        (ExpireKind::Ex, "setex")
    };
    let at = match expire_at(ctx, kind, &args[2], name) {
        Ok(at) => at,
        Err(e) => return e,
    };
    store(ks, ctx, &args[1], Value::string(&args[3]), false, Some(at));
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "set", &args[1]);
    ctx.notify(ev::GENERIC, "expire", &args[1]);
    ctx.propagate(pxat_effect(&args[1], &args[3], at));
    Reply::OK
}

/// GETSET key value (propagated as SET)
pub fn getset(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let old = match read_str(ks, ctx, &args[1]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    store(ks, ctx, &args[1], Value::string(&args[2]), false, None);
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "set", &args[1]);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        args[2].clone(),
    ]);
    old.map_or(Reply::Nil, Reply::Bulk)
}

/// GETDEL key (propagated as DEL)
pub fn getdel(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let Some(e) = ks.find_entry(ctx, db, &args[1], Lookup::Read) else {
        return Reply::Nil;
    };
    let Some(s) = e.slot().value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    let v = s.to_bytes();
    e.remove();
    ctx.stats.dirty += 1;
    ctx.notify(ev::GENERIC, "del", &args[1]);
    ctx.propagate(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
    Reply::Bulk(v)
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
pub fn getex(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let mut persist = false;
    let mut expire: Option<(ExpireKind, &Bytes)> = None;
    let mut j = 2;
    while j < args.len() {
        let a = &args[j][..];
        let next = args.get(j + 1);
        let kind = if is_opt(a, b"ex") {
            Some(ExpireKind::Ex)
        } else if is_opt(a, b"px") {
            Some(ExpireKind::Px)
        } else if is_opt(a, b"exat") {
            Some(ExpireKind::Exat)
        } else if is_opt(a, b"pxat") {
            Some(ExpireKind::Pxat)
        } else {
            None
        };
        if is_opt(a, b"persist") && expire.is_none() {
            persist = true;
        } else if let (Some(k), Some(v)) = (kind, next) {
            if persist || expire.is_some_and(|(old, _)| old != k) {
                return err(errors::SYNTAX);
            }
            expire = Some((k, v));
            j += 1;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let at = match expire {
        Some((k, v)) => match expire_at(ctx, k, v, "getex") {
            Ok(at) => Some((k, at)),
            Err(e) => return e,
        },
        None => None,
    };
    let db = ctx.db;
    let key = &args[1];
    let Some(e) = ks.find_entry(ctx, db, key, Lookup::Read) else {
        return Reply::Nil;
    };
    let Some(s) = e.slot().value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    let v = s.to_bytes();
    match at {
        // An absolute time already past deletes the key (not on replicas).
        Some((ExpireKind::Exat | ExpireKind::Pxat, at)) if at <= ctx.now_ms && !ctx.replica => {
            e.remove();
            ctx.stats.dirty += 1;
            ctx.notify(ev::GENERIC, "del", key);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        Some((_, at)) => {
            e.into_found().set_expire(Some(at));
            ctx.stats.dirty += 1;
            ctx.notify(ev::GENERIC, "expire", key);
            ctx.propagate(vec![
                Bytes::from_static(b"PEXPIREAT"),
                key.clone(),
                Bytes::from(at.to_string()),
            ]);
        }
        None if persist && e.slot().expire_at().is_some() => {
            e.into_found().set_expire(None);
            ctx.stats.dirty += 1;
            ctx.notify(ev::GENERIC, "persist", key);
            ctx.propagate(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
        }
        None => {}
    }
    Reply::Bulk(v)
}

/// MGET key [key ...]: wrong-type keys read as nil.
pub fn mget(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let out = args[1..]
        .iter()
        .map(|k| match ks.find(ctx, db, k, Lookup::Read) {
            Some(f) => f
                .slot
                .value
                .as_str()
                .map_or(Reply::Nil, |s| Reply::Bulk(s.to_bytes())),
            None => Reply::Nil,
        })
        .collect();
    Reply::Array(out)
}

/// MSET key value [key value ...] / MSETNX (all or nothing)
pub fn mset(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], nx: bool) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::Error(errors::wrong_arity(if nx { "msetnx" } else { "mset" }));
    }
    let db = ctx.db;
    if nx {
        for k in args[1..].iter().step_by(2) {
            if ks.find(ctx, db, k, Lookup::Write).is_some() {
                return Reply::Integer(0);
            }
        }
    }
    for pair in args[1..].chunks(2) {
        store(ks, ctx, &pair[0], Value::string(&pair[1]), false, None);
        ctx.notify(ev::STRING, "set", &pair[0]);
    }
    ctx.stats.dirty += (args.len() / 2) as u64;
    ctx.propagate_as_sent(args);
    if nx {
        Reply::Integer(1)
    } else {
        Reply::OK
    }
}

/// INCR/DECR (`by` given) and INCRBY/DECRBY (`by` parsed from args\[2\]).
pub fn incr_by(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], by: Option<i64>) -> Reply {
    let incr = match by {
        Some(n) => n,
        None => {
            let n = match parse_i64(&args[2]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if args[0].eq_ignore_ascii_case(b"decrby") {
                if n == i64::MIN {
                    return err(errors::DECR_OVERFLOW);
                }
                -n
            } else {
                n
            }
        }
    };
    let db = ctx.db;
    let result = match ks.find(ctx, db, &args[1], Lookup::Write) {
        Some(f) => {
            let Some(s) = f.slot.value.as_str_mut() else {
                return err(errors::WRONGTYPE);
            };
            let Some(old) = s.as_i64() else {
                return err(errors::NOT_INTEGER);
            };
            let Some(new) = old.checked_add(incr) else {
                return err(errors::INCR_OVERFLOW);
            };
            *s = StrValue::Int(new);
            new
        }
        None => {
            ks.insert_new(ctx, db, &args[1], Value::String(StrValue::Int(incr)), None);
            incr
        }
    };
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "incrby", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(result)
}

/// INCRBYFLOAT key increment, in x87 long double like Redis; propagated as
/// `SET key <result> KEEPTTL`.
pub fn incrbyfloat(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let found = ks.find(ctx, db, &args[1], Lookup::Write);
    let current = match &found {
        Some(f) => match f.slot.value.as_str() {
            None => return err(errors::WRONGTYPE),
            Some(StrValue::Int(n)) => Some(LongDouble::from_i64(*n)),
            Some(s) => s.with_bytes(LongDouble::parse),
        },
        None => Some(LongDouble::from_i64(0)),
    };
    let (Some(current), Some(incr)) = (current, LongDouble::parse(&args[2])) else {
        return err(errors::NOT_FLOAT);
    };
    let sum = current.add(incr);
    if sum.is_nan_or_inf() {
        return err(errors::NAN_OR_INF);
    }
    let text = Bytes::from(sum.to_human());
    // Redis stores the formatted result as a plain string, never int-encoded.
    let value = Value::String(StrValue::Str(crate::CompactBytes::new(&text)));
    match found {
        Some(f) => f.slot.value = value,
        None => ks.insert_new(ctx, db, &args[1], value, None),
    }
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "incrbyfloat", &args[1]);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        text.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Reply::Bulk(text)
}

/// APPEND key value
pub fn append(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let len = match ks.find(ctx, db, &args[1], Lookup::Write) {
        Some(f) => {
            let Some(s) = f.slot.value.as_str_mut() else {
                return err(errors::WRONGTYPE);
            };
            if s.len() + args[2].len() > MAX_STRING_LEN {
                return err(errors::STRING_TOO_LONG);
            }
            let v = s.make_raw();
            v.extend_from_slice(&args[2]);
            v.len()
        }
        None => {
            ks.insert_new(ctx, db, &args[1], Value::string(&args[2]), None);
            args[2].len()
        }
    };
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "append", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(len as i64)
}

/// STRLEN key
pub fn strlen(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    match ks.find(ctx, db, &args[1], Lookup::Read) {
        None => Reply::Integer(0),
        Some(f) => match f.slot.value.as_str() {
            Some(s) => Reply::Integer(s.len() as i64),
            None => err(errors::WRONGTYPE),
        },
    }
}

/// GETRANGE key start end (and its old name SUBSTR)
pub fn getrange(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (mut start, mut end) = match (parse_i64(&args[2]), parse_i64(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let db = ctx.db;
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::Read) else {
        return Reply::Bulk(Bytes::new());
    };
    let Some(s) = f.slot.value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        if start < 0 && end < 0 && start > end {
            return Reply::Bulk(Bytes::new());
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            Reply::Bulk(Bytes::new())
        } else {
            Reply::bulk(&b[start as usize..=end as usize])
        }
    })
}

/// SETRANGE key offset value
pub fn setrange(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let offset = match parse_i64(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if offset < 0 {
        return err(errors::OFFSET_OUT_OF_RANGE);
    }
    let offset = offset as usize;
    let value = &args[3];
    let too_long = offset.saturating_add(value.len()) > MAX_STRING_LEN;
    let db = ctx.db;
    let len = match ks.find(ctx, db, &args[1], Lookup::Write) {
        None => {
            if value.is_empty() {
                return Reply::Integer(0);
            }
            if too_long {
                return err(errors::STRING_TOO_LONG);
            }
            let mut v = vec![0u8; offset + value.len()];
            v[offset..].copy_from_slice(value);
            let len = v.len();
            ks.insert_new(
                ctx,
                db,
                &args[1],
                Value::String(StrValue::Raw(Box::new(v))),
                None,
            );
            len
        }
        Some(f) => {
            let Some(s) = f.slot.value.as_str_mut() else {
                return err(errors::WRONGTYPE);
            };
            if value.is_empty() {
                return Reply::Integer(s.len() as i64);
            }
            if too_long {
                return err(errors::STRING_TOO_LONG);
            }
            let v = s.make_raw();
            if v.len() < offset + value.len() {
                v.resize(offset + value.len(), 0);
            }
            v[offset..offset + value.len()].copy_from_slice(value);
            v.len()
        }
    };
    ctx.stats.dirty += 1;
    ctx.notify(ev::STRING, "setrange", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(len as i64)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::Value;
    use shardis_protocol::Reply;

    fn nil() -> Reply {
        Reply::Nil
    }

    #[test]
    fn get_set_basics_and_effects() {
        let mut t = T::new();
        assert_eq!(t.run("GET k"), nil());
        assert_eq!(t.run("SET k v"), Reply::OK);
        assert_eq!(t.run("GET k"), bulk("v"));
        assert_eq!(t.effects(), vec!["SET k v"]);
        assert_eq!(t.ctx.stats.keyspace_hits, 1);
        assert_eq!(t.ctx.stats.keyspace_misses, 1);
        assert_eq!(t.ctx.stats.dirty, 1);
        assert_eq!(t.run("SET k v2 NX"), nil());
        assert_eq!(t.run("SET nope v XX"), nil());
        assert!(t.effects().is_empty(), "refused SETs propagate nothing");
        assert_eq!(t.run("SET k v3 XX GET"), bulk("v"));
        assert_eq!(t.effects(), vec!["SET k v3 XX"]);
        assert_eq!(t.run("SET k v4 NX GET"), bulk("v3"));
        assert_eq!(t.run("SET new v NX GET"), nil());
        assert_eq!(t.run("GET new"), bulk("v"));
    }

    #[test]
    fn set_options_and_errors() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        assert_eq!(t.run("SET k v NX XX"), err("ERR syntax error"));
        assert_eq!(t.run("SET k v EX 10 PX 10"), err("ERR syntax error"));
        assert_eq!(t.run("SET k v KEEPTTL EX 10"), err("ERR syntax error"));
        assert_eq!(t.run("SET k v EX"), err("ERR syntax error"));
        assert_eq!(t.run("SET k v FOO"), err("ERR syntax error"));
        assert_eq!(
            t.run("SET k v EX abc"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            t.run("SET k v EX 0"),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            t.run("SET k v PX -5"),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            t.run("SET k v EX 9223372036854775807"),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            t.run("SET k v PX 9223372036854775807"),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            t.run("SET k v EX 10 EX 20"),
            Reply::OK,
            "a repeated EX is allowed"
        );
        assert_eq!(t.run("PTTL k"), int(20_000));
        assert_eq!(t.effects(), vec![format!("SET k v PXAT {}", now + 20_000)]);
        assert_eq!(t.run("SET k v2 KEEPTTL"), Reply::OK);
        assert_eq!(t.run("PTTL k"), int(20_000));
        assert_eq!(t.run("SET k v3"), Reply::OK);
        assert_eq!(t.run("TTL k"), int(-1));
        assert_eq!(
            t.run(&format!("SET k v EXAT {}", now / 1000 + 5)),
            Reply::OK
        );
        assert_eq!(t.run("TTL k"), int(5));
        assert_eq!(t.run(&format!("SET k v PXAT {}", now + 7)), Reply::OK);
        assert_eq!(t.run("PTTL k"), int(7));
        t.effects();
        t.advance(7);
        assert_eq!(t.run("GET k"), nil());
        assert_eq!(t.effects(), vec!["DEL k"]);
        assert_eq!(t.ctx.stats.expired_keys, 1);
    }

    #[test]
    fn setex_psetex_setnx_getset() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        assert_eq!(t.run("SETEX k 10 v"), Reply::OK);
        assert_eq!(t.run("PSETEX p 1500 v"), Reply::OK);
        assert_eq!(
            t.effects(),
            vec![
                format!("SET k v PXAT {}", now + 10_000),
                format!("SET p v PXAT {}", now + 1500)
            ]
        );
        assert_eq!(
            t.run("SETEX k 0 v"),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            t.run("PSETEX k -1 v"),
            err("ERR invalid expire time in 'psetex' command")
        );
        assert_eq!(t.run("SETNX k x"), int(0));
        assert_eq!(t.run("SETNX n x"), int(1));
        assert_eq!(t.effects(), vec!["SETNX n x"]);
        assert_eq!(t.run("GETSET k new"), bulk("v"));
        assert_eq!(t.run("TTL k"), int(-1), "GETSET clears the TTL");
        assert_eq!(t.run("GETSET none x"), nil());
        assert_eq!(t.effects(), vec!["SET k new", "SET none x"]);
    }

    #[test]
    fn getdel_getex() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        t.run("SET k v");
        t.effects();
        assert_eq!(t.run("GETEX k"), bulk("v"));
        assert!(t.effects().is_empty());
        assert_eq!(t.run("GETEX k EX 100"), bulk("v"));
        assert_eq!(t.effects(), vec![format!("PEXPIREAT k {}", now + 100_000)]);
        assert_eq!(t.run("GETEX k PERSIST"), bulk("v"));
        assert_eq!(t.effects(), vec!["PERSIST k"]);
        assert_eq!(t.run("GETEX k PERSIST"), bulk("v"));
        assert!(t.effects().is_empty(), "nothing to persist");
        assert_eq!(t.run("GETEX k PERSIST EX 5"), err("ERR syntax error"));
        assert_eq!(t.run("GETEX k KEEPTTL"), err("ERR syntax error"));
        assert_eq!(
            t.run("GETEX k EX 0"),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(
            t.run("GETEX nope EX 0"),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(t.run("GETEX k PXAT 1"), bulk("v"));
        assert_eq!(t.effects(), vec!["DEL k"]);
        assert_eq!(t.run("EXISTS k"), int(0));
        t.run("SET k v");
        assert_eq!(t.run("GETDEL k"), bulk("v"));
        assert_eq!(t.run("GETDEL k"), nil());
        assert_eq!(t.effects(), vec!["SET k v", "DEL k"]);
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut t = T::new();
        assert_eq!(t.run("MSET a 1 b 2"), Reply::OK);
        assert_eq!(
            t.run("MSET a 1 b"),
            err("ERR wrong number of arguments for 'mset' command")
        );
        assert_eq!(
            t.run("MGET a b c"),
            Reply::Array(vec![bulk("1"), bulk("2"), nil()])
        );
        assert_eq!(t.run("MSETNX c 3 a 9"), int(0));
        assert_eq!(t.run("GET c"), nil());
        assert_eq!(t.run("MSETNX c 3 d 4"), int(1));
        assert_eq!(t.effects(), vec!["MSET a 1 b 2", "MSETNX c 3 d 4"]);
        assert_eq!(t.ctx.stats.dirty, 4);
    }

    #[test]
    fn counters() {
        let mut t = T::new();
        assert_eq!(t.run("INCR n"), int(1));
        assert_eq!(t.run("INCRBY n 10"), int(11));
        assert_eq!(t.run("DECR n"), int(10));
        assert_eq!(t.run("DECRBY n 20"), int(-10));
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("int"));
        assert_eq!(
            t.run("INCRBY n abc"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            t.run("DECRBY n -9223372036854775808"),
            err("ERR decrement would overflow")
        );
        t.run("SET big 9223372036854775807");
        assert_eq!(
            t.run("INCR big"),
            err("ERR increment or decrement would overflow")
        );
        t.run("SET s abc");
        assert_eq!(
            t.run("INCR s"),
            err("ERR value is not an integer or out of range")
        );
        t.run("SET sp 01");
        assert_eq!(
            t.run("INCR sp"),
            err("ERR value is not an integer or out of range")
        );
        t.run("SETEX ttl 100 5");
        assert_eq!(t.run("INCR ttl"), int(6));
        assert_eq!(t.run("TTL ttl"), int(100), "INCR keeps the TTL");
    }

    #[test]
    fn incrbyfloat_like_redis() {
        let mut t = T::new();
        assert_eq!(t.run("INCRBYFLOAT f 0.1"), bulk("0.1"));
        assert_eq!(t.run("INCRBYFLOAT f 1.0e-5"), bulk("0.10001"));
        assert_eq!(
            t.effects(),
            vec!["SET f 0.1 KEEPTTL", "SET f 0.10001 KEEPTTL"]
        );
        assert_eq!(t.run("OBJECT ENCODING f"), bulk("embstr"));
        assert_eq!(t.run("INCRBYFLOAT h 5.0e3"), bulk("5000"));
        assert_eq!(
            t.run("OBJECT ENCODING h"),
            bulk("embstr"),
            "never int-encoded"
        );
        assert_eq!(
            t.run("INCRBYFLOAT h abc"),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            t.run("INCRBYFLOAT h inf"),
            err("ERR increment would produce NaN or Infinity")
        );
        t.run("SET s abc");
        assert_eq!(
            t.run("INCRBYFLOAT s 1"),
            err("ERR value is not a valid float")
        );
        t.run("SET i 10");
        assert_eq!(t.run("INCRBYFLOAT i 1.5"), bulk("11.5"));
        t.run("SETEX e 100 1");
        t.run("INCRBYFLOAT e 1");
        assert_eq!(t.run("TTL e"), int(100));
    }

    #[test]
    fn append_strlen_ranges() {
        let mut t = T::new();
        assert_eq!(t.run("APPEND k 12"), int(2));
        assert_eq!(t.run("OBJECT ENCODING k"), bulk("int"));
        assert_eq!(t.run("APPEND k 3"), int(3));
        assert_eq!(t.run("OBJECT ENCODING k"), bulk("raw"));
        assert_eq!(t.run("GET k"), bulk("123"));
        assert_eq!(
            t.run("INCR k"),
            int(124),
            "a raw numeric string still counts"
        );
        assert_eq!(t.run("STRLEN k"), int(3));
        assert_eq!(t.run("STRLEN nope"), int(0));
        t.run("SET s hello");
        assert_eq!(t.run("GETRANGE s 0 -1"), bulk("hello"));
        assert_eq!(t.run("GETRANGE s -100 -50"), bulk("h"));
        assert_eq!(t.run("GETRANGE s 3 1"), bulk(""));
        assert_eq!(t.run("GETRANGE s -1 -5"), bulk(""));
        assert_eq!(t.run("GETRANGE s 0 100"), bulk("hello"));
        assert_eq!(t.run("SUBSTR s 1 2"), bulk("el"));
        assert_eq!(t.run("GETRANGE nope 0 1"), bulk(""));
        assert_eq!(
            t.run("GETRANGE s a b"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("SETRANGE s -1 x"), err("ERR offset is out of range"));
        assert_eq!(
            t.run("SETRANGE s 536870912 x"),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
        assert_eq!(t.run("SETRANGE s 1 EY"), int(5));
        assert_eq!(t.run("GET s"), bulk("hEYlo"));
        assert_eq!(t.run("SETRANGE s 7 !"), int(8));
        assert_eq!(t.run("GET s"), Reply::bulk(b"hEYlo\0\0!"));
        t.effects();
        t.run_args(vec!["SETRANGE".into(), "s".into(), "0".into(), "".into()]);
        t.run_args(vec!["SETRANGE".into(), "new".into(), "3".into(), "".into()]);
        assert!(t.effects().is_empty(), "empty SETRANGE changes nothing");
        assert_eq!(t.run("SETRANGE new 2 ab"), int(4));
        assert_eq!(t.run("GET new"), Reply::bulk(b"\0\0ab"));
    }

    #[test]
    fn stored_values_do_not_borrow_the_callers_buffer() {
        let mut t = T::new();
        let buf = bytes::Bytes::from_static(b"SETkeyvalue-that-is-long-enough");
        let args = vec![buf.slice(0..3), buf.slice(3..6), buf.slice(6..)];
        t.run_args(args);
        let e = t.ks.clone_entry(&mut t.ctx, b"key").unwrap();
        let Value::String(crate::StrValue::Str(b)) = e.value else {
            panic!("stored as bytes")
        };
        assert_eq!(b, buf[6..]);
        assert_ne!(b.as_ptr(), buf[6..].as_ptr());
    }
}
