//! The libraries Redis 7.0 adds to its Lua: `bit` (LuaBitOp semantics) and
//! `cjson`, `cmsgpack` and `struct` (in their own files).

use mlua::{Lua, MultiValue, Table, Value};

/// Registers the extra libraries in the globals table `g`.
pub fn register(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.raw_set("bit", bit(lua)?)?;
    g.raw_set("cjson", super::cjson::table(lua)?)?;
    g.raw_set("cmsgpack", super::cmsgpack::table(lua)?)?;
    g.raw_set("struct", super::structlib::table(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument conversion: a number (or numeric string) reduced
/// modulo 2^32, as its `+ 2^52+2^51` trick does.
fn tobit(v: Option<&Value>, pos: usize, name: &str) -> mlua::Result<i32> {
    let Some(v) = v else {
        return Err(super::vm::lua_error(format!(
            "bad argument #{pos} to '{name}' (number expected, got no value)"
        )));
    };
    let n = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(s) => match s.to_str().ok().and_then(|s| parse_lua_number(&s)) {
            Some(n) => n,
            None => return Err(bad_arg(pos, name, "number", v)),
        },
        _ => return Err(bad_arg(pos, name, "number", v)),
    };
    // Round to nearest (ties to even) like the FPU add does, then wrap.
    let r = n.round_ties_even();
    let m = r.rem_euclid(4294967296.0);
    Ok(m as u64 as u32 as i32)
}

fn parse_lua_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    t.parse().ok()
}

/// Lua's name for the type of `v`.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn bad_arg(pos: usize, name: &str, expected: &str, got: &Value) -> mlua::Error {
    super::vm::lua_error(format!(
        "bad argument #{pos} to '{name}' ({expected} expected, got {})",
        if matches!(got, Value::Nil) {
            "no value"
        } else {
            type_name(got)
        }
    ))
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    type Op = fn(i32, i32) -> i32;
    type Unary = fn(i32) -> i32;
    let folds: [(&str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |_, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                let mut acc = tobit(v.first(), 1, name)?;
                for (i, x) in v.iter().enumerate().skip(1) {
                    acc = op(acc, tobit(Some(x), i + 1, name)?);
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    let shifts: [(&str, Op); 5] = [
        ("lshift", |a, n| ((a as u32) << (n & 31)) as i32),
        ("rshift", |a, n| ((a as u32) >> (n & 31)) as i32),
        ("arshift", |a, n| a >> (n & 31)),
        ("rol", |a, n| (a as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |a, n| {
            (a as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |_, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                let a = tobit(v.first(), 1, name)?;
                let n = tobit(v.get(1), 2, name)?;
                Ok(op(a, n) as f64)
            })?,
        )?;
    }
    let unary: [(&str, Unary); 3] = [
        ("tobit", |a| a),
        ("bnot", |a| !a),
        ("bswap", |a| a.swap_bytes()),
    ];
    for (name, op) in unary {
        t.raw_set(
            name,
            lua.create_function(move |_, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                Ok(op(tobit(v.first(), 1, name)?) as f64)
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|_, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            let a = tobit(v.first(), 1, "tohex")? as u32;
            let n = match v.get(1) {
                None => 8,
                Some(x) => tobit(Some(x), 2, "tohex")?,
            };
            let upper = n < 0;
            let n = n.unsigned_abs().min(8) as usize;
            let s = if upper {
                format!("{a:08X}")
            } else {
                format!("{a:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
