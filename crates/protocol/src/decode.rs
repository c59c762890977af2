//! Request decoding: RESP multibulk and inline commands.
//!
//! Mirrors `processMultibulkBuffer` / `processInlineBuffer` in Redis 7.0's
//! networking.c: the same limits, the same error texts, and the same rule that
//! only the bytes of complete arguments are consumed. The decoder keeps its
//! position between calls, so a 512 MB bulk arriving in small reads is scanned
//! once, not once per read. "Need more bytes" is `Ok(None)`, never an error.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request or length line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Largest multibulk count (INT_MAX).
const MAX_MULTIBULK: i64 = i32::MAX as i64;

/// Size limits that come from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// `proto-max-bulk-len`: the largest bulk argument (default 512 MB).
    pub max_bulk_len: i64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bulk_len: 512 * 1024 * 1024,
        }
    }
}

/// A malformed request. Redis replies `-ERR <message>` and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request longer than 64 KB without a newline.
    TooBigInline,
    /// A multibulk count line longer than 64 KB.
    TooBigMultibulkCount,
    /// A bulk length line longer than 64 KB.
    TooBigBulkCount,
    /// The `*` count is not a number or is too large.
    InvalidMultibulkLength,
    /// More than 10 arguments before authentication.
    UnauthenticatedMultibulkLength,
    /// The `$` length is not a number, negative, or above `proto-max-bulk-len`.
    InvalidBulkLength,
    /// A bulk above 16 KB before authentication.
    UnauthenticatedBulkLength,
    /// A bulk header did not start with `$`.
    ExpectedDollar(u8),
    /// Inline quoting was not closed.
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The error line Redis sends, without the leading `-`.
    pub fn message(&self) -> String {
        let what = match self {
            ProtocolError::TooBigInline => "too big inline request".to_string(),
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string".to_string(),
            ProtocolError::TooBigBulkCount => "too big bulk count string".to_string(),
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length".to_string(),
            ProtocolError::UnauthenticatedMultibulkLength => {
                "unauthenticated multibulk length".to_string()
            }
            ProtocolError::InvalidBulkLength => "invalid bulk length".to_string(),
            ProtocolError::UnauthenticatedBulkLength => "unauthenticated bulk length".to_string(),
            ProtocolError::ExpectedDollar(c) => format!("expected '$', got '{}'", *c as char),
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request".to_string(),
        };
        format!("ERR Protocol error: {what}")
    }
}

/// Incremental request decoder for one connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Arguments still expected in the current multibulk (0: between requests).
    remaining: usize,
    /// Length of the bulk whose header was consumed, if any.
    bulk_len: Option<usize>,
    args: Vec<Bytes>,
    /// Whether the client has authenticated (Redis caps sizes before that).
    authenticated: bool,
}

impl RequestDecoder {
    /// A decoder for a connection that is (or is not yet) authenticated.
    pub fn new(authenticated: bool) -> Self {
        RequestDecoder {
            authenticated,
            ..Default::default()
        }
    }

    /// Lifts the pre-authentication size caps.
    pub fn set_authenticated(&mut self, yes: bool) {
        self.authenticated = yes;
    }

    /// True while a request has been partly read.
    pub fn in_request(&self) -> bool {
        self.remaining > 0
    }

    /// Bytes the current partial bulk still needs, for sizing reads.
    pub fn pending_bulk(&self) -> Option<usize> {
        self.bulk_len
    }

    /// Takes the next complete request off the front of `buf`.
    ///
    /// `Ok(Some(args))` is a request (never empty); `Ok(None)` means more bytes
    /// are needed. Empty inline lines and `*0`/`*-1` are consumed silently.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(count) = take_int_line(
                    buf,
                    ProtocolError::TooBigMultibulkCount,
                    ProtocolError::InvalidMultibulkLength,
                )?
                else {
                    return Ok(None);
                };
                if count > MAX_MULTIBULK {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if !self.authenticated && count > 10 {
                    return Err(ProtocolError::UnauthenticatedMultibulkLength);
                }
                if count <= 0 {
                    continue;
                }
                self.remaining = count as usize;
                // Cap the up-front reservation: the count is client-controlled.
                self.args = Vec::with_capacity(self.remaining.min(1024));
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        if buf[0] != b'$' {
                            // Redis checks the tag only once the whole line is in.
                            if memchr::memchr(b'\r', buf).is_none() {
                                if buf.len() > INLINE_MAX {
                                    return Err(ProtocolError::TooBigBulkCount);
                                }
                                return Ok(None);
                            }
                            return Err(ProtocolError::ExpectedDollar(buf[0]));
                        }
                        let Some(len) = take_int_line(
                            buf,
                            ProtocolError::TooBigBulkCount,
                            ProtocolError::InvalidBulkLength,
                        )?
                        else {
                            return Ok(None);
                        };
                        if len < 0 || len > limits.max_bulk_len {
                            return Err(ProtocolError::InvalidBulkLength);
                        }
                        if !self.authenticated && len > 16384 {
                            return Err(ProtocolError::UnauthenticatedBulkLength);
                        }
                        let len = len as usize;
                        self.bulk_len = Some(len);
                        if buf.capacity() - buf.len() < len + 2 && len >= 32 * 1024 {
                            // A big argument: make room once rather than growing by reads.
                            buf.reserve(len + 2 - buf.len().min(len + 2));
                        }
                        len
                    }
                };
                if buf.len() < len + 2 {
                    return Ok(None);
                }
                let arg = buf.split_to(len).freeze();
                // Like Redis, the two bytes after the payload are skipped unchecked.
                buf.advance(2);
                self.args.push(arg);
                self.bulk_len = None;
                self.remaining -= 1;
            }
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        // Redis finds the newline with strchr, which stops at a NUL: a NUL before
        // the newline keeps the request incomplete until it is too big.
        let nl = memchr::memchr2(b'\n', 0, buf).filter(|&i| buf[i] == b'\n');
        let Some(nl) = nl else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1);
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        split_args(&line[..end])
            .map(Some)
            .ok_or(ProtocolError::UnbalancedQuotes)
    }
}

/// Removes a complete `<type byte><integer>\r\n` header line from `buf` and
/// parses its integer. The line is parsed in place and skipped with `advance`:
/// splitting it off would cost a reference-count increment and decrement on
/// the read buffer per header line, two of them for every argument.
fn take_int_line(
    buf: &mut BytesMut,
    too_big: ProtocolError,
    invalid: ProtocolError,
) -> Result<Option<i64>, ProtocolError> {
    match memchr::memchr(b'\r', buf) {
        None => {
            if buf.len() > INLINE_MAX {
                Err(too_big)
            } else {
                Ok(None)
            }
        }
        Some(cr) => {
            if cr + 1 >= buf.len() {
                return Ok(None);
            }
            let v = parse_int(&buf[1..cr]).ok_or(invalid)?;
            buf.advance(cr + 2);
            Ok(Some(v))
        }
    }
}

/// Redis's `string2ll`: an optional `-`, digits, no leading zeros or spaces.
pub fn parse_int(b: &[u8]) -> Option<i64> {
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
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `sdssplitargs`: whitespace-separated words, with `"…"` (C escapes
/// and `\xHH`) and `'…'` quoting. `None` on unbalanced quotes or a closing quote
/// not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(Bytes::from(cur));
    }
}

/// C's `isspace`, which sdssplitargs uses: ASCII whitespace plus vertical tab.
fn is_space(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>, usize) {
        let mut d = RequestDecoder::new(true);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf, &DecodeLimits::default()) {
                Ok(Some(a)) => out.push(a),
                Ok(None) => return (out, None, buf.len()),
                Err(e) => return (out, Some(e), buf.len()),
            }
        }
    }

    #[test]
    fn multibulk_and_pipelines() {
        let (reqs, err, left) =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI");
        assert_eq!(err, None);
        assert_eq!(
            reqs,
            vec![
                vec![Bytes::from("GET"), Bytes::from("k")],
                vec![Bytes::from("PING")]
            ]
        );
        assert_eq!(left, 2);
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\nPING\r\n";
        let mut d = RequestDecoder::new(true);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(a) = d.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                out.push(a);
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0][2], Bytes::from("va\r\nl"));
        assert_eq!(out[1], vec![Bytes::from("PING")]);
    }

    #[test]
    fn inline() {
        let (reqs, _, _) = decode_all(b"set a \"b c\\x41\"\r\n\r\nget 'x y'\n");
        assert_eq!(
            reqs[0],
            vec![Bytes::from("set"), Bytes::from("a"), Bytes::from("b cA")]
        );
        assert_eq!(reqs[1], vec![Bytes::from("get"), Bytes::from("x y")]);
        let (_, err, _) = decode_all(b"set \"a\r\n");
        assert_eq!(err, Some(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn errors_match_redis() {
        assert_eq!(
            decode_all(b"*x\r\n").1.unwrap().message(),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            decode_all(b"*1\r\n+x\r\n").1.unwrap().message(),
            "ERR Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            decode_all(b"*1\r\n$4294967296\r\n").1.unwrap().message(),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            decode_all(b"*1\r\n$-1\r\n").1,
            Some(ProtocolError::InvalidBulkLength)
        );
        let big = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(decode_all(&big).1, Some(ProtocolError::TooBigInline));
        let mut d = RequestDecoder::new(false);
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf, &DecodeLimits::default()),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
    }

    #[test]
    fn inline_like_sdssplitargs_and_strchr() {
        // Checked against redis-server 7.0.15: \v counts as space around words
        // (but not inside one), and a NUL hides the newline after it.
        let (reqs, err, _) = decode_all(b" \x0bPING\r\n\x0b\x0cPING\x0b\r\nECHO \"a\"\x0b\r\n");
        assert_eq!(err, None);
        assert_eq!(
            reqs,
            vec![
                vec![Bytes::from("PING")],
                vec![Bytes::from("PING\x0b")],
                vec![Bytes::from("ECHO"), Bytes::from("a")]
            ]
        );
        let (reqs, err, left) = decode_all(b"PI\0NG\r\nPING\r\n");
        assert_eq!((reqs.len(), err, left), (0, None, 13));
        let mut nul = b"PING\0\r\n".to_vec();
        nul.resize(INLINE_MAX + 1, b'a');
        assert_eq!(decode_all(&nul).1, Some(ProtocolError::TooBigInline));
    }

    #[test]
    fn empty_requests_are_skipped() {
        let (reqs, err, left) = decode_all(b"*0\r\n*-1\r\n\r\n*1\r\n$1\r\nx\r\n");
        assert_eq!(err, None);
        assert_eq!(left, 0);
        assert_eq!(reqs, vec![vec![Bytes::from("x")]]);
    }

    #[test]
    fn parse_int_like_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"01"), None);
        assert_eq!(parse_int(b"-0"), None);
        assert_eq!(parse_int(b" 1"), None);
        assert_eq!(parse_int(b""), None);
    }
}
