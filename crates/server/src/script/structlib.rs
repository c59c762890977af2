//! `struct`: Roberto Ierusalimschy's struct library as Redis 7.0 embeds it:
//! `pack`, `unpack` and `size` over formats of `<>!` controls and
//! `bBhHlLTiIxcsfd` items, with its alignment and error texts.

use super::vm::lua_error;
use mlua::{Lua, MultiValue, Table, Value};

/// Widest `i`/`I` item.
const MAX_INT_SIZE: usize = 32;
/// What `!` aligns to without a number (a double's alignment).
const DEFAULT_ALIGN: usize = 8;

/// The `struct` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            pack(lua, &v).map_err(lua_error)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            unpack(lua, &v).map_err(lua_error)
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|_, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            size(&v).map_err(lua_error)
        })?,
    )?;
    Ok(t)
}

struct Header {
    little: bool,
    align: usize,
}

fn arg_err(n: usize, f: &str, msg: &str) -> String {
    format!("bad argument #{n} to '{f}' ({msg})")
}

fn type_of(v: Option<&Value>) -> &'static str {
    // Missing arguments read as nil: the library's buffer sits above them.
    v.map_or("nil", super::libs::type_name)
}

fn check_str(args: &[Value], i: usize, f: &str) -> Result<Vec<u8>, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(super::convert::lua_number_string(*n as f64).into_bytes()),
        Some(Value::Number(n)) => Ok(super::convert::lua_number_string(*n).into_bytes()),
        other => Err(arg_err(
            i + 1,
            f,
            &format!("string expected, got {}", type_of(other)),
        )),
    }
}

fn check_num(args: &[Value], i: usize, f: &str) -> Result<f64, String> {
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| arg_err(i + 1, f, "number expected, got string")),
        other => Err(arg_err(
            i + 1,
            f,
            &format!("number expected, got {}", type_of(other)),
        )),
    }
}

/// Reads an optional decimal size after an option.
fn getnum(fmt: &[u8], i: &mut usize, default: usize) -> Result<usize, String> {
    if !fmt.get(*i).is_some_and(|c| c.is_ascii_digit()) {
        return Ok(default);
    }
    let mut a: usize = 0;
    while let Some(&c) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        let d = (c - b'0') as usize;
        if a > (i32::MAX as usize) / 10 || a * 10 > i32::MAX as usize - d {
            return Err("integral size overflow".into());
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a)
}

fn optsize(opt: u8, fmt: &[u8], i: &mut usize) -> Result<usize, String> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' | b'x' => {
            if opt == b'f' {
                4
            } else {
                1
            }
        }
        b'c' => getnum(fmt, i, 1)?,
        b'i' | b'I' => {
            let sz = getnum(fmt, i, 4)?;
            if sz > MAX_INT_SIZE {
                return Err(format!(
                    "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                ));
            }
            sz
        }
        _ => 0,
    })
}

fn toalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let align = size.min(h.align);
    (align - (len & (align - 1))) & (align - 1)
}

/// `' '`, `<`, `>`, `!n`; anything else is an invalid option.
fn control(opt: u8, fmt: &[u8], i: &mut usize, h: &mut Header, f: &str) -> Result<(), String> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = getnum(fmt, i, DEFAULT_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(format!("alignment {a} is not a power of 2"));
            }
            h.align = a;
        }
        _ => {
            return Err(arg_err(
                1,
                f,
                &format!("invalid format option '{}'", opt as char),
            ))
        }
    }
    Ok(())
}

fn put_int(n: f64, size: usize, little: bool, out: &mut Vec<u8>) {
    let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut buf = vec![0u8; size];
    let idx: Vec<usize> = if little {
        (0..size).collect()
    } else {
        (0..size).rev().collect()
    };
    for i in idx {
        buf[i] = (value & 0xff) as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    out.extend_from_slice(&buf);
}

fn pack(lua: &Lua, args: &[Value]) -> Result<mlua::String, String> {
    let fmt = check_str(args, 0, "pack")?;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut arg = 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(opt, &fmt, &mut i)?;
        let pad = toalign(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_num(args, arg, "pack")?;
                arg += 1;
                put_int(n, size, h.little, &mut out);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_num(args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = check_num(args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_str(args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The library reports the argument after the string.
                    return Err(arg_err(arg + 1, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(opt, &fmt, &mut i, &mut h, "pack")?,
        }
    }
    lua.create_string(&out).map_err(|e| e.to_string())
}

fn get_int(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let size = b.len();
    let order: Vec<usize> = if little {
        (0..size).rev().collect()
    } else {
        (0..size).collect()
    };
    for i in order {
        l = (l << 8) | b[i] as u64;
    }
    if !signed {
        return l as f64;
    }
    if size < 8 {
        let mask = u64::MAX << (size * 8 - 1);
        if l & mask != 0 {
            return (l | mask) as i64 as f64;
        }
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: &[Value]) -> Result<MultiValue, String> {
    let fmt = check_str(args, 0, "unpack")?;
    let data = check_str(args, 1, "unpack")?;
    let ld = data.len();
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => check_num(args, 2, "unpack")?,
    };
    if start < 1.0 {
        return Err(arg_err(3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = start as usize - 1;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    let short = || arg_err(2, "unpack", "data string too short");
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(opt, &fmt, &mut i)?;
        pos += toalign(pos, &h, opt, size);
        if size > ld || pos > ld - size {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(get_int(
                    &data[pos..pos + size],
                    h.little,
                    signed,
                )));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                let f = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(f));
            }
            b'c' => {
                if size == 0 {
                    let n = match out.pop() {
                        Some(Value::Number(n)) => n,
                        Some(Value::Integer(n)) => n as f64,
                        _ => return Err("format 'c0' needs a previous size".into()),
                    };
                    size = n as usize;
                    if size > ld || pos > ld - size {
                        return Err(short());
                    }
                }
                let s = lua
                    .create_string(&data[pos..pos + size])
                    .map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err("unfinished string in data".into());
                };
                size = e + 1;
                let s = lua
                    .create_string(&data[pos..pos + e])
                    .map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            _ => control(opt, &fmt, &mut i, &mut h, "unpack")?,
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(out))
}

fn size(args: &[Value]) -> Result<f64, String> {
    let fmt = check_str(args, 0, "size")?;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut pos = 0;
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let size = optsize(opt, &fmt, &mut i)?;
        pos += toalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_err(1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_err(1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(opt, &fmt, &mut i, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos as f64)
}
