//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis 7.0 embeds it: `pack`, `unpack`,
//! `unpack_one`, `unpack_limit`, with its integer/float choices and errors.

use super::vm::lua_error;
use mlua::{Lua, MultiValue, Table, Value};

/// Tables nested deeper than this pack as nil (LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("_NAME", "lua-cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(lua_error(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, 0, &mut out).map_err(|e| lua_error(e.to_string()))?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| unpack(lua, &args, "unpack", None, 0))?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = int_arg(&args, 1, 0);
            unpack(lua, &args, "unpack_one", Some(1), offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = int_arg(&args, 1, 0);
            let offset = int_arg(&args, 2, 0);
            unpack(lua, &args, "unpack_limit", Some(limit), offset)
        })?,
    )?;
    Ok(t)
}

fn int_arg(args: &MultiValue, i: usize, default: i64) -> i64 {
    match args.get(i) {
        Some(Value::Integer(n)) => *n,
        Some(Value::Number(n)) => *n as i64,
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map_or(default, |n| n as i64),
        _ => default,
    }
}

fn encode(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => int(*n, out),
        Value::Number(n) => number(*n, out),
        Value::String(s) => bytes(&s.as_bytes(), out),
        Value::Table(t) if level < MAX_NESTING => table_value(t, level, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && (n as i64) as f64 == n {
        int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn bytes(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(n: usize, fix: u8, mid: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(mid);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(mid + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn table_value(t: &Table, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    // An array when its keys are exactly 1..n (lua-cmsgpack's table_is_an_array).
    let mut max = 0i64;
    let mut count = 0i64;
    let mut array = true;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) => n,
            Value::Number(f) if f.fract() == 0.0 => f as i64,
            _ => {
                array = false;
                break;
            }
        };
        if n <= 0 {
            array = false;
            break;
        }
        max = max.max(n);
        count += 1;
    }
    if array && max == count {
        header(count as usize, 0x90, 0xdc, out);
        for i in 1..=count {
            let v: Value = t.raw_get(i)?;
            encode(&v, level + 1, out)?;
        }
    } else {
        let pairs: Vec<(Value, Value)> = t
            .clone()
            .pairs::<Value, Value>()
            .collect::<mlua::Result<_>>()?;
        header(pairs.len(), 0x80, 0xde, out);
        for (k, v) in pairs {
            encode(&k, level + 1, out)?;
            encode(&v, level + 1, out)?;
        }
    }
    Ok(())
}

enum DecodeError {
    Eof,
    BadFormat,
}

fn unpack(
    lua: &Lua,
    args: &MultiValue,
    name: &str,
    limit: Option<i64>,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let s: Vec<u8> = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(Value::Integer(n)) => super::convert::lua_number_string(*n as f64).into_bytes(),
        Some(Value::Number(n)) => super::convert::lua_number_string(*n).into_bytes(),
        other => {
            return Err(lua_error(format!(
                "bad argument #1 to '{name}' (string expected, got {})",
                other.map_or("no value", super::libs::type_name)
            )))
        }
    };
    let len = s.len() as i64;
    if offset < 0 || limit.is_some_and(|l| l < 0) {
        return Err(lua_error(format!(
            "Invalid request to unpack with offset of {offset} and limit of {len}."
        )));
    }
    if offset > len {
        return Err(lua_error(format!(
            "Start offset {offset} greater than input length {len}."
        )));
    }
    let limit = match limit {
        Some(0) | None => i64::MAX,
        Some(l) => l,
    };
    let mut pos = offset as usize;
    let mut out = Vec::new();
    let mut count = 0;
    while pos < s.len() && count < limit {
        match decode(lua, &s, &mut pos) {
            Ok(v) => out.push(v),
            Err(DecodeError::Eof) => return Err(lua_error("Missing bytes in input.")),
            Err(DecodeError::BadFormat) => return Err(lua_error("Bad data format in input.")),
        }
        count += 1;
    }
    if name != "unpack" {
        let next = if pos as i64 >= len { -1 } else { pos as i64 };
        out.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(out))
}

fn take<'a>(s: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], DecodeError> {
    let b = s.get(*pos..*pos + n).ok_or(DecodeError::Eof)?;
    *pos += n;
    Ok(b)
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | x as u64)
}

fn decode(lua: &Lua, s: &[u8], pos: &mut usize) -> Result<Value, DecodeError> {
    let lerr = |_| DecodeError::BadFormat;
    let c = take(s, pos, 1)?[0];
    Ok(match c {
        0x00..=0x7f => Value::Number(c as f64),
        0xe0..=0xff => Value::Number(c as i8 as f64),
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc => Value::Number(be(take(s, pos, 1)?) as f64),
        0xcd => Value::Number(be(take(s, pos, 2)?) as f64),
        0xce => Value::Number(be(take(s, pos, 4)?) as f64),
        0xcf => Value::Number(be(take(s, pos, 8)?) as f64),
        0xd0 => Value::Number(take(s, pos, 1)?[0] as i8 as f64),
        0xd1 => Value::Number(be(take(s, pos, 2)?) as u16 as i16 as f64),
        0xd2 => Value::Number(be(take(s, pos, 4)?) as u32 as i32 as f64),
        0xd3 => Value::Number(be(take(s, pos, 8)?) as i64 as f64),
        0xca => Value::Number(f32::from_bits(be(take(s, pos, 4)?) as u32) as f64),
        0xcb => Value::Number(f64::from_bits(be(take(s, pos, 8)?))),
        0xa0..=0xbf | 0xd9 | 0xda | 0xdb | 0xc4 | 0xc5 | 0xc6 => {
            let n = match c {
                0xa0..=0xbf => (c & 0x1f) as usize,
                0xd9 | 0xc4 => be(take(s, pos, 1)?) as usize,
                0xda | 0xc5 => be(take(s, pos, 2)?) as usize,
                _ => be(take(s, pos, 4)?) as usize,
            };
            Value::String(lua.create_string(take(s, pos, n)?).map_err(lerr)?)
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match c {
                0x90..=0x9f => (c & 0x0f) as usize,
                0xdc => be(take(s, pos, 2)?) as usize,
                _ => be(take(s, pos, 4)?) as usize,
            };
            let t = lua.create_table().map_err(lerr)?;
            for i in 1..=n {
                let v = decode(lua, s, pos)?;
                t.raw_set(i, v).map_err(lerr)?;
            }
            Value::Table(t)
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match c {
                0x80..=0x8f => (c & 0x0f) as usize,
                0xde => be(take(s, pos, 2)?) as usize,
                _ => be(take(s, pos, 4)?) as usize,
            };
            let t = lua.create_table().map_err(lerr)?;
            for _ in 0..n {
                let k = decode(lua, s, pos)?;
                let v = decode(lua, s, pos)?;
                if !matches!(k, Value::Nil) {
                    t.raw_set(k, v).map_err(lerr)?;
                }
            }
            Value::Table(t)
        }
        _ => return Err(DecodeError::BadFormat),
    })
}
