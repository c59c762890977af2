//! Conversions between RESP replies and Lua values, as Redis 7.0 makes them
//! (`redisProtocolToLuaType` one way, `luaReplyToRedisReply` the other).

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use shardis_protocol::Reply;

/// A Lua number as a command argument or integer reply: C's `(long long)` cast
/// truncates toward zero (and saturates here instead of being undefined).
pub fn num_to_i64(n: f64) -> i64 {
    n as i64
}

/// Builds the `{err=…}` text Redis stores for an error string
/// (`luaPushErrorBuff`): a leading `-` means "CODE message"; otherwise the
/// code is `ERR`. Trailing CR/LF are trimmed.
pub fn error_text(raw: &str) -> String {
    let (code, msg) = match raw.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code.to_string(), msg.to_string()),
            None => ("ERR".to_string(), rest.to_string()),
        },
        None => ("ERR".to_string(), raw.to_string()),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    format!("{code} {msg}")
}

/// An `{err=msg}` table.
pub fn err_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(msg)?)?;
    Ok(t)
}

/// A command's reply as the Lua value `redis.call` returns. `resp3` follows
/// `redis.setresp`.
pub fn reply_to_lua(lua: &Lua, r: Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s)?)?;
            Value::Table(t)
        }
        Reply::Status(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        // A command's own error keeps its code (`-WRONGTYPE …`).
        Reply::Error(e) => Value::Table(err_table(lua, &error_text(&format!("-{e}")))?),
        Reply::Integer(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b)?),
        Reply::Nil | Reply::NilArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Set(items) => {
            if resp3 {
                let inner = lua.create_table()?;
                for item in items {
                    let k = reply_to_lua(lua, item, resp3)?;
                    inner.raw_set(k, true)?;
                }
                let t = lua.create_table()?;
                t.raw_set("set", inner)?;
                Value::Table(t)
            } else {
                array(lua, items, resp3)?
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                let inner = lua.create_table()?;
                for (k, v) in pairs {
                    let k = reply_to_lua(lua, k, resp3)?;
                    let v = reply_to_lua(lua, v, resp3)?;
                    inner.raw_set(k, v)?;
                }
                let t = lua.create_table()?;
                t.raw_set("map", inner)?;
                Value::Table(t)
            } else {
                let t = lua.create_table()?;
                let mut i = 1;
                for (k, v) in pairs {
                    t.raw_set(i, reply_to_lua(lua, k, resp3)?)?;
                    t.raw_set(i + 1, reply_to_lua(lua, v, resp3)?)?;
                    i += 2;
                }
                Value::Table(t)
            }
        }
        Reply::Double(d) => {
            if resp3 {
                let t = lua.create_table()?;
                t.raw_set("double", d)?;
                Value::Table(t)
            } else {
                Value::String(lua.create_string(shardis_protocol::reply::format_double(d))?)
            }
        }
        Reply::Bool(b) => {
            if resp3 {
                Value::Boolean(b)
            } else {
                Value::Number(if b { 1.0 } else { 0.0 })
            }
        }
        Reply::Verbatim(fmt, b) => {
            if resp3 {
                let inner = lua.create_table()?;
                inner.raw_set("format", fmt)?;
                inner.raw_set("string", lua.create_string(&b)?)?;
                let t = lua.create_table()?;
                t.raw_set("verbatim_string", inner)?;
                Value::Table(t)
            } else {
                Value::String(lua.create_string(&b)?)
            }
        }
        Reply::Raw(b) => Value::String(lua.create_string(&b)?),
    })
}

fn array(lua: &Lua, items: Vec<Reply>, resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

/// A script's return value as the reply to the client. `resp3` is the script's
/// `redis.setresp` (booleans and nulls follow it, as in Redis 7.0).
pub fn lua_to_reply(v: &Value, resp3: bool) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Boolean(b) => {
            if resp3 {
                Reply::Bool(*b)
            } else if *b {
                Reply::Integer(1)
            } else {
                Reply::Nil
            }
        }
        Value::Integer(n) => Reply::Integer(*n),
        Value::Number(n) => Reply::Integer(num_to_i64(*n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => table_to_reply(t, resp3),
        _ => Reply::Nil,
    }
}

fn field_string(t: &Table, name: &str) -> Option<String> {
    match t.raw_get::<Value>(name).ok()? {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(n) => Some(lua_number_string(n as f64)),
        Value::Number(n) => Some(lua_number_string(n)),
        _ => None,
    }
}

/// Lua 5.1's `tostring` of a number (`%.14g`).
pub fn lua_number_string(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    format_g(n, 14)
}

/// C's `%.{prec}g`.
pub fn format_g(n: f64, prec: usize) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exp = n.abs().log10().floor() as i32;
    // Round first: the exponent may change (9.99… → 10).
    let sci = format!("{:.*e}", prec - 1, n);
    let (mant, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if e < -4 || e >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", e.abs())
    } else {
        let decimals = (prec as i32 - 1 - e).max(0) as usize;
        trim_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn table_to_reply(t: &Table, resp3: bool) -> Reply {
    if let Some(e) = field_string(t, "err") {
        return Reply::Error(e.replace(['\r', '\n'], " "));
    }
    if let Some(s) = field_string(t, "ok") {
        return Reply::Status(s.replace(['\r', '\n'], " "));
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return Reply::Double(d);
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        return Reply::Double(d as f64);
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((lua_to_reply(&k, resp3), lua_to_reply(&v, resp3)));
        }
        return Reply::Map(pairs);
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            items.push(lua_to_reply(&k, resp3));
        }
        return Reply::Set(items);
    }
    // An array stops at the first nil, as Redis's does.
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_reply(&v, resp3)),
        }
        i += 1;
    }
    Reply::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_as_redis_builds_them() {
        assert_eq!(error_text("-WRONGTYPE Operation"), "WRONGTYPE Operation");
        assert_eq!(error_text("my err"), "ERR my err");
        assert_eq!(error_text("-my err"), "my err");
        assert_eq!(error_text("-x"), "ERR x");
        assert_eq!(error_text("-ERR bad\r\n"), "ERR bad");
    }

    #[test]
    fn lua_number_formatting() {
        assert_eq!(lua_number_string(3.0), "3");
        assert_eq!(lua_number_string(0.1), "0.1");
        assert_eq!(lua_number_string(1e20), "1e+20");
        assert_eq!(lua_number_string(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(lua_number_string(1e-5), "1e-05");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1.5, 17), "1.5");
    }
}
