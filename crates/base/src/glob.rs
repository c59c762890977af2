//! Glob-style matching for KEYS, SCAN MATCH and (later) the other SCANs: a
//! faithful port of Redis 7.0.15's `stringmatchlen`, quirks included.
//!
//! Like Redis, it recurses once per `*` but stops trying longer matches for an
//! earlier `*` as soon as a later one has failed everywhere, so patterns such as
//! `*a*a*a*a*…b` stay linear-ish instead of exploding, and nesting is capped.

/// True if `s` matches the glob `pattern` (`*`, `?`, `[...]`, `[^...]`, ranges,
/// `\` escapes). With `nocase`, ASCII letters compare case-insensitively.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer, 0)
}

/// The byte at `i`, or 0 past the end (C reads the NUL terminator there).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn match_impl(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    // Redis's protection against abusive patterns.
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    while p < pat.len() && i < s.len() {
        match pat[p] {
            b'*' => {
                while p < pat.len() && at(pat, p + 1) == b'*' {
                    p += 1;
                }
                if pat.len() - p == 1 {
                    return true;
                }
                while i < s.len() {
                    if match_impl(&pat[p + 1..], &s[i..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    i += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => i += 1,
            b'[' => {
                p += 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                let c = s[i];
                loop {
                    if at(pat, p) == b'\\' && pat.len() - p >= 2 {
                        p += 1;
                        if pat[p] == c {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if p >= pat.len() {
                        // Unterminated class: step back so the outer
                        // increment lands exactly on the end.
                        p -= 1;
                        break;
                    } else if pat.len() - p >= 3 && pat[p + 1] == b'-' {
                        // C compares (signed) chars as ints.
                        let (mut start, mut end) = (pat[p] as i8 as i32, pat[p + 2] as i8 as i32);
                        let mut ch = c as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower_int(start);
                            end = lower_int(end);
                            ch = lower_int(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if (!nocase && pat[p] == c) || (nocase && lower(pat[p]) == lower(c)) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                i += 1;
            }
            b => {
                let mut b = b;
                if b == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    b = pat[p];
                }
                let eq = if nocase {
                    lower(b) == lower(s[i])
                } else {
                    b == s[i]
                };
                if !eq {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
        if i == s.len() {
            while at(pat, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && i == s.len()
}

fn lower_int(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        assert!(m("*", "anything"));
        assert!(
            !m("*", ""),
            "Redis quirk: a lone * does not match the empty string"
        );
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("foo*", "foo"));
        assert!(m("foo**", "foo"));
        assert!(!m("foo?", "foo"));
        assert!(m("*bar", "foobar"));
        assert!(!m("*bar", "foobaz"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges are swapped");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        assert!(m("[a-]", "a"));
        // Unterminated class: matches like the C code (the class runs to the end).
        assert!(m("[abc", "a"));
        assert!(!m("[abc", "d"));
    }

    #[test]
    fn escapes_and_case() {
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        assert!(glob_match(b"HeLLo", b"hello", true));
        assert!(!glob_match(b"HeLLo", b"hello", false));
        assert!(glob_match(b"[A-C]x", b"bx", true));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let s = "a".repeat(5000);
        let p = format!("{}b", "*a".repeat(200));
        let t = std::time::Instant::now();
        assert!(!m(&p, &s));
        assert!(t.elapsed().as_secs() < 2);
        // Deep nesting is refused rather than overflowing the stack.
        let deep = "a*".repeat(2000);
        assert!(!m(&deep, &"a".repeat(3000)));
    }
}
