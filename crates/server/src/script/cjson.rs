//! `cjson`: lua-cjson 2.1.0 as Redis 7.0 embeds it (default settings):
//! `encode` with `%.14g` numbers, `/` escaped, sparse-array and nesting
//! checks; `decode` with lua-cjson's tokenizer and error texts; `cjson.null`.

use super::convert::lua_number_string;
use super::vm::lua_error;
use mlua::{LightUserData, Lua, MultiValue, Table, Value};

const MAX_DEPTH: usize = 1000;

/// The `cjson` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    t.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lua_error(
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(&args[0], 0, &mut out).map_err(lua_error)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lua_error(
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            }
            let text: Vec<u8> = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(n) => lua_number_string(*n as f64).into_bytes(),
                Value::Number(n) => lua_number_string(*n).into_bytes(),
                other => {
                    return Err(lua_error(format!(
                        "bad argument #1 to 'decode' (string expected, got {})",
                        super::libs::type_name(other)
                    )))
                }
            };
            let mut p = Parser {
                s: &text,
                pos: 0,
                depth: 0,
            };
            p.document(lua).map_err(lua_error)
        })?,
    )?;
    Ok(t)
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil | Value::LightUserData(_) => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Lua 5.1 numbers are doubles: integers print as %.14g too.
        Value::Integer(n) => number(*n as f64, out)?,
        Value::Number(n) => number(*n, out)?,
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => table_value(t, depth + 1, out)?,
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                super::libs::type_name(other)
            ))
        }
    }
    Ok(())
}

fn number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(lua_number_string(n).as_bytes());
    Ok(())
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua-cjson's array test: every key a positive integer; too sparse is an error.
fn array_len(t: &Table) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let n = match k {
            Value::Integer(n) if n >= 1 => n as usize,
            Value::Number(f) if f >= 1.0 && f.fract() == 0.0 => f as usize,
            _ => return Ok(None),
        };
        max = max.max(n);
        items += 1;
    }
    if max > items * 2 && max > 10 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok((max > 0).then_some(max))
}

fn table_value(t: &Table, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    if let Some(len) = array_len(t)? {
        out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                out.push(b',');
            }
            let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
            encode(&v, depth, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &k {
            Value::String(s) => string(&s.as_bytes(), out),
            Value::Integer(n) => string(lua_number_string(*n as f64).as_bytes(), out),
            Value::Number(n) => string(lua_number_string(*n).as_bytes(), out),
            other => {
                return Err(format!(
                    "Cannot serialise {}: table key must be a number or string",
                    super::libs::type_name(other)
                ))
            }
        }
        out.push(b':');
        encode(&v, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A lexer token: its kind and the 1-based character where it starts.
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A lexer error; the text is what lua-cjson names it.
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

fn expected(what: &str, t: &Tok, at: usize) -> String {
    format!("Expected {what} but found {} at character {at}", t.name())
}

impl Parser<'_> {
    fn document(&mut self, lua: &Lua) -> Result<Value, String> {
        let (t, at) = self.next();
        let v = self.value(lua, t, at)?;
        let (t, at) = self.next();
        if !matches!(t, Tok::End) {
            return Err(expected("the end", &t, at));
        }
        Ok(v)
    }

    fn value(&mut self, lua: &Lua, t: Tok, at: usize) -> Result<Value, String> {
        let e = |e: mlua::Error| e.to_string();
        Ok(match t {
            Tok::Str(b) => Value::String(lua.create_string(&b).map_err(e)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
            Tok::ObjBegin => {
                self.nest(at)?;
                let t = lua.create_table().map_err(e)?;
                let (mut tok, mut at) = self.next();
                if !matches!(tok, Tok::ObjEnd) {
                    loop {
                        let Tok::Str(key) = tok else {
                            return Err(expected("object key string", &tok, at));
                        };
                        let (c, cat) = self.next();
                        if !matches!(c, Tok::Colon) {
                            return Err(expected("colon", &c, cat));
                        }
                        let (vt, vat) = self.next();
                        let v = self.value(lua, vt, vat)?;
                        t.raw_set(lua.create_string(&key).map_err(e)?, v)
                            .map_err(e)?;
                        let (sep, sat) = self.next();
                        match sep {
                            Tok::ObjEnd => break,
                            Tok::Comma => {
                                (tok, at) = self.next();
                            }
                            other => return Err(expected("comma or object end", &other, sat)),
                        }
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            Tok::ArrBegin => {
                self.nest(at)?;
                let t = lua.create_table().map_err(e)?;
                let (mut tok, mut at) = self.next();
                if !matches!(tok, Tok::ArrEnd) {
                    let mut i = 1;
                    loop {
                        let v = self.value(lua, tok, at)?;
                        t.raw_set(i, v).map_err(e)?;
                        i += 1;
                        let (sep, sat) = self.next();
                        match sep {
                            Tok::ArrEnd => break,
                            Tok::Comma => {
                                (tok, at) = self.next();
                            }
                            other => return Err(expected("comma or array end", &other, sat)),
                        }
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            other => return Err(expected("value", &other, at)),
        })
    }

    fn nest(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "Found too many nested data structures ({}) at character {at}",
                self.depth
            ));
        }
        Ok(())
    }

    /// The next token and the 1-based character it starts at.
    fn next(&mut self) -> (Tok, usize) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos + 1;
        let Some(&c) = self.s.get(self.pos) else {
            return (Tok::End, at);
        };
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, at);
        }
        let rest = &self.s[self.pos..];
        if c == b'"' {
            let (t, err_at) = self.string();
            let at = if matches!(t, Tok::Error(_)) {
                err_at
            } else {
                at
            };
            return (t, at);
        }
        if c == b'-' || c.is_ascii_digit() {
            return self.number(at);
        }
        for (word, tok) in [
            (&b"true"[..], Tok::Bool(true)),
            (b"false", Tok::Bool(false)),
            (b"null", Tok::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return (tok, at);
            }
        }
        let lower: Vec<u8> = rest
            .iter()
            .take(3)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        if lower.starts_with(b"inf") || lower.starts_with(b"nan") {
            return self.number(at);
        }
        (Tok::Error("invalid token"), at)
    }

    fn number(&mut self, at: usize) -> (Tok, usize) {
        match strtod(&self.s[self.pos..]) {
            Some((n, used)) => {
                self.pos += used;
                (Tok::Num(n), at)
            }
            None => (Tok::Error("invalid number"), at),
        }
    }

    fn string(&mut self) -> (Tok, usize) {
        let s = self.s;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = s.get(self.pos) else {
                return (Tok::Error("unexpected end of string"), self.pos + 1);
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return (Tok::Str(out), 0);
                }
                b'\\' => {
                    let esc_at = self.pos + 1;
                    let Some(&e) = s.get(self.pos + 1) else {
                        return (Tok::Error("unexpected end of string"), self.pos + 2);
                    };
                    let ch = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => match self.unicode() {
                            Some(cp) => {
                                let mut buf = [0u8; 4];
                                let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                                continue;
                            }
                            None => return (Tok::Error("invalid unicode escape code"), esc_at),
                        },
                        _ => return (Tok::Error("invalid escape code"), esc_at),
                    };
                    out.push(ch);
                    self.pos += 2;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `\uXXXX` (with a surrogate pair) at `pos`; advances past it.
    fn unicode(&mut self) -> Option<u32> {
        let hex = |b: &[u8]| -> Option<u32> {
            let s = std::str::from_utf8(b.get(..4)?).ok()?;
            u32::from_str_radix(s, 16).ok()
        };
        let hi = hex(&self.s[self.pos + 2..])?;
        self.pos += 6;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return None;
            }
            let lo = hex(&self.s[self.pos + 2..])?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            self.pos += 6;
            return Some(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        Some(hi)
    }
}

/// C's `strtod` on a prefix: the value and how many bytes it used.
fn strtod(b: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &b[i..];
    let sign = if neg { -1.0 } else { 1.0 };
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if lower.starts_with(b"infinity") {
        return Some((sign * f64::INFINITY, i + 8));
    }
    if lower.starts_with(b"inf") {
        return Some((sign * f64::INFINITY, i + 3));
    }
    if lower.starts_with(b"nan") {
        return Some((f64::NAN, i + 3));
    }
    if lower.starts_with(b"0x") {
        let digits = rest[2..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if digits > 0 {
            let v = rest[2..2 + digits].iter().fold(0f64, |a, &c| {
                a * 16.0 + (c as char).to_digit(16).unwrap_or(0) as f64
            });
            return Some((sign * v, i + 2 + digits));
        }
    }
    let mut j = 0;
    let digits = |j: &mut usize| {
        let s = *j;
        while rest.get(*j).is_some_and(|c| c.is_ascii_digit()) {
            *j += 1;
        }
        *j - s
    };
    let int = digits(&mut j);
    let mut frac = 0;
    if rest.get(j) == Some(&b'.') {
        j += 1;
        frac = digits(&mut j);
        if int == 0 && frac == 0 {
            return None;
        }
    }
    if int == 0 && frac == 0 {
        return None;
    }
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if digits(&mut k) > 0 {
            j = k;
        }
    }
    let text = std::str::from_utf8(&rest[..j]).ok()?;
    let text = text.strip_suffix('.').unwrap_or(text);
    let v: f64 = text.parse().ok()?;
    Some((sign * v, i + j))
}
