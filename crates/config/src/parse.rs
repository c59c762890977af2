//! Byte-level parsers that mirror the C helpers redis-server uses for its configuration
//! (`sdssplitargs`, `sdscatrepr`, `string2ll`, `memtoull`, `strtol`, `stringmatchlen`), so that
//! edge cases are accepted or rejected exactly as Redis does.

/// Splits a line into arguments with the quoting rules of Redis's `sdssplitargs`.
/// Returns `None` for unbalanced quotes (or a closing quote not followed by a space).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut p = 0usize;
    loop {
        // C `isspace` also skips vertical tab and form feed between arguments.
        while p < line.len() && matches!(line[p], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut cur = Vec::new();
        while !done {
            let c = at(p);
            if inq {
                if p >= line.len() {
                    return None;
                }
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    cur.push(hex(at(p + 2)).unwrap_or(0) * 16 + hex(at(p + 3)).unwrap_or(0));
                    p += 3;
                } else if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    cur.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or nothing at all.
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return None;
                    }
                    done = true;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if p >= line.len() {
                    return None;
                }
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return None;
                    }
                    done = true;
                } else {
                    cur.push(c);
                }
            } else if p >= line.len() {
                done = true;
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        out.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Appends `s` quoted like Redis's `sdscatrepr` (used to turn `--opt value` into a config line).
pub(crate) fn cat_repr(out: &mut String, s: &[u8]) {
    out.push('"');
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
}

/// Redis `string2ll`: strict decimal, optional leading '-', no '+', no leading zeros, no spaces.
pub(crate) fn string2ll(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty()
        || !(b'1'..=b'9').contains(&digits[0])
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis `memtoull`: digits followed by an optional unit (b, k, kb, m, mb, g, gb; any case).
/// `k` is 1000 and `kb` is 1024. Like Redis, an empty digit string counts as 0.
pub fn memtoull(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.first() == Some(&b'-') {
        return None;
    }
    let ndigits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mul: u64 = match s[ndigits..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // Redis copies the digits into a 128-byte buffer first.
    if ndigits >= 128 {
        return None;
    }
    let val: u64 = if ndigits == 0 {
        0
    } else {
        s[..ndigits].parse().ok()?
    };
    val.checked_mul(mul)
}

/// C `strtol`/`strtoll` base 10: returns the (saturated) value and whether the whole string was
/// consumed. Leading whitespace and a sign are allowed; no digits yields 0 with nothing consumed.
pub(crate) fn strtol(s: &str) -> (i64, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    let start = i;
    let neg = match b.get(i) {
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
    let dstart = i;
    let mut v: i128 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = (v * 10 + i128::from(b[i] - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    if i == dstart {
        // No conversion: endptr is the start of the string.
        let _ = start;
        return (0, b.is_empty());
    }
    let v = if neg { -v } else { v };
    let v = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    (v, i == b.len())
}

pub(crate) use shardis_base::glob::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(split("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(split(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split(r#""\x41\n\"" '\''"#).unwrap(), ["A\n\"", "'"]);
        assert_eq!(split(r#"a"b c""#).unwrap(), ["ab c"]);
        assert_eq!(split(r#""""#).unwrap(), [""]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split(r#""abc"#).is_none());
        assert!(split(r#""a"b"#).is_none());
        assert!(split("'a'b").is_none());
        assert!(split("'abc").is_none());
        assert!(split(r#""abc\"#).is_none());
    }

    #[test]
    fn repr_round_trips_through_split() {
        for s in ["plain", "a b", "q\"uo\\te", "\u{e9}\n\x01"] {
            let mut r = String::new();
            cat_repr(&mut r, s.as_bytes());
            assert_eq!(
                split_args(r.as_bytes()).unwrap(),
                vec![s.as_bytes().to_vec()]
            );
        }
    }

    #[test]
    fn integers_like_string2ll() {
        assert_eq!(string2ll("0"), Some(0));
        assert_eq!(string2ll("-12"), Some(-12));
        assert_eq!(string2ll("9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll("-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "+5",
            "05",
            " 5",
            "5 ",
            "-",
            "-0",
            "9223372036854775808",
            "1a",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(memtoull("1k"), Some(1000));
        assert_eq!(memtoull("1KB"), Some(1024));
        assert_eq!(memtoull("100mb"), Some(100 << 20));
        assert_eq!(memtoull("1gB"), Some(1 << 30));
        assert_eq!(memtoull("3G"), Some(3_000_000_000));
        assert_eq!(memtoull("7b"), Some(7));
        assert_eq!(memtoull("gb"), Some(0));
        assert_eq!(memtoull("18446744073709551615"), Some(u64::MAX));
        for bad in ["-1", "1.5gb", "1zz", "1 gb", "18446744073709551615kb"] {
            assert_eq!(memtoull(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol("+5"), (5, true));
        assert_eq!(strtol(" 5"), (5, true));
        assert_eq!(strtol("5x"), (5, false));
        assert_eq!(strtol(""), (0, true));
        assert_eq!(strtol("x"), (0, false));
        assert_eq!(strtol("99999999999999999999"), (i64::MAX, true));
    }

    #[test]
    fn glob() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), true);
        assert!(m("*", "port"));
        assert!(m("*max*", "maxmemory"));
        assert!(m("PORT", "port"));
        assert!(m("p?rt", "port"));
        assert!(m("[a-p]ort", "port"));
        assert!(m("[^x]ort", "port"));
        assert!(!m("[^p]ort", "port"));
        assert!(m("repl-*", "repl-timeout"));
        assert!(!m("repl-*", "replicaof"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(!m("x[", "x"));
        assert!(!m("x[", "xa"));
        assert!(m("*a*b", "aaab"));
        assert!(!m(&"*a".repeat(50), &"a".repeat(40)));
    }
}
