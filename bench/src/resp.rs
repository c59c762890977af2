//! Reading server replies: find where one whole RESP reply ends, without
//! allocating and without building a value, because the load generator only
//! needs to count replies and notice errors.

use std::fmt;

/// What a complete top-level reply was, as far as the benchmark cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Any reply that is not an error (status, integer, bulk, array, null, ...).
    Value,
    /// A `-ERR ...` (or RESP3 `!` blob error) reply.
    Error,
}

/// A reply that is not valid RESP; the connection cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError(pub String);

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error in reply: {}", self.0)
    }
}

/// Finds the end of the first complete reply in `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the reply's length in bytes
/// and its kind. Nested aggregates are walked iteratively with a count of
/// elements still owed, so deep nesting cannot overflow the stack.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(usize, ReplyKind)>, ReplyError> {
    let mut pos = 0;
    let mut owed: u64 = 1;
    let mut kind = ReplyKind::Value;
    let mut top = true;
    while owed > 0 {
        let Some(&tag) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(eol) = memchr::memchr(b'\n', &buf[pos..]) else {
            return Ok(None);
        };
        let line_end = pos + eol; // index of '\n'
        if line_end == pos || buf[line_end - 1] != b'\r' {
            return Err(ReplyError(format!("line without CRLF at byte {pos}")));
        }
        let line = &buf[pos + 1..line_end - 1];
        pos = line_end + 1;
        owed -= 1;
        match tag {
            // Simple lines: status, error, integer, RESP3 null/double/bool/bignum.
            b'+' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'-' => {
                if top {
                    kind = ReplyKind::Error;
                }
            }
            // Length-prefixed blobs: bulk string, RESP3 verbatim string and blob error.
            b'$' | b'=' | b'!' => {
                if tag == b'!' && top {
                    kind = ReplyKind::Error;
                }
                let len = parse_len(line)?;
                if len >= 0 {
                    let end = pos + len as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err(ReplyError("bulk payload not followed by CRLF".into()));
                    }
                    pos = end;
                }
            }
            // Aggregates: array, set, push, and maps/attributes with two items per entry.
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_len(line)?;
                if n > 0 {
                    let per = if tag == b'%' || tag == b'|' { 2 } else { 1 };
                    owed += n as u64 * per;
                }
                // An attribute precedes the reply it annotates, which is still owed.
                if tag == b'|' {
                    owed += 1;
                }
            }
            other => {
                return Err(ReplyError(format!(
                    "unexpected type byte {:?}",
                    other as char
                )));
            }
        }
        top = false;
    }
    Ok(Some((pos, kind)))
}

/// Parses a length header (`-1` for null is allowed).
fn parse_len(line: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&n| n >= -1)
        .ok_or_else(|| {
            ReplyError(format!(
                "bad length {:?}",
                String::from_utf8_lossy(line).into_owned()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(b: &[u8]) -> (usize, ReplyKind) {
        parse_reply(b).unwrap().unwrap()
    }

    #[test]
    fn simple_types() {
        assert_eq!(whole(b"+OK\r\n"), (5, ReplyKind::Value));
        assert_eq!(whole(b":42\r\nextra"), (5, ReplyKind::Value));
        assert_eq!(whole(b"-ERR no\r\n"), (9, ReplyKind::Error));
        assert_eq!(whole(b"_\r\n"), (3, ReplyKind::Value));
    }

    #[test]
    fn bulk_and_null() {
        assert_eq!(whole(b"$3\r\nfoo\r\n+OK\r\n"), (9, ReplyKind::Value));
        assert_eq!(whole(b"$-1\r\n"), (5, ReplyKind::Value));
        assert_eq!(whole(b"$0\r\n\r\n"), (6, ReplyKind::Value));
        // The payload may contain CR and LF.
        assert_eq!(whole(b"$4\r\na\r\nb\r\n"), (10, ReplyKind::Value));
    }

    #[test]
    fn nested_arrays() {
        let r = b"*2\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
        assert_eq!(whole(b"*0\r\n"), (4, ReplyKind::Value));
        // An error inside an array does not make the reply an error.
        let r = b"*1\r\n-ERR x\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
        // RESP3 map: two items per entry.
        let r = b"%1\r\n+k\r\n:1\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
    }

    #[test]
    fn incomplete_at_every_cut() {
        let r = b"*3\r\n$3\r\nfoo\r\n:7\r\n*1\r\n$-1\r\n";
        for cut in 0..r.len() {
            assert_eq!(parse_reply(&r[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
    }

    #[test]
    fn malformed() {
        assert!(parse_reply(b"?x\r\n").is_err());
        assert!(parse_reply(b"+OK\n").is_err());
        assert!(parse_reply(b"$x\r\n").is_err());
        assert!(parse_reply(b"$-2\r\n").is_err());
        assert!(parse_reply(b"$1\r\nab\r\n").is_err());
    }
}
