//! Splitting a typed line into arguments, as Redis' `sdssplitargs` does.
//!
//! Double quotes understand `\n \r \t \b \a \xHH` and `\<any>`; single quotes only `\'`. A closing
//! quote must be followed by a blank or the end of the line. `None` means the line is malformed
//! (redis-cli then prints `Invalid argument(s)`).

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits `line` into arguments; `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let (mut inq, mut insq) = (false, false);
        let mut cur = Vec::new();
        loop {
            let c = at(p);
            if inq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    cur.push(hex(at(p + 2))? * 16 + hex(at(p + 3))?);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        o => o,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 && p >= line.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 && p >= line.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    0 if p >= line.len() => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            p += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    #[test]
    fn plain_words() {
        assert_eq!(s("  set  a 1 ").unwrap(), ["set", "a", "1"]);
        assert_eq!(s("").unwrap(), Vec::<String>::new());
        assert_eq!(s("   ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(s(r#""set" "q k" "x\x41y""#).unwrap(), ["set", "q k", "xAy"]);
        assert_eq!(
            s(r#"a "\n\t\"\\" 'it\'s' 'a\nb'"#).unwrap(),
            ["a", "\n\t\"\\", "it's", "a\\nb"]
        );
        assert_eq!(s(r#""""#).unwrap(), [""]);
        assert_eq!(split_args(br#""\xff""#).unwrap(), vec![vec![0xff]]);
        assert_eq!(s(r#"ab"c d""#).unwrap(), ["abc d"]);
    }

    #[test]
    fn malformed() {
        assert_eq!(s(r#""abc"#), None);
        assert_eq!(s(r#""abc"d"#), None);
        assert_eq!(s("'abc"), None);
        assert_eq!(s("'a'b"), None);
    }
}
