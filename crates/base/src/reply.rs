//! A server's replies as a client reads them, sans-IO: the one reader that
//! shardis-cli and shardis-benchmark share.
//!
//! [`Scanner`] finds where one whole RESP2/RESP3 reply ends without
//! allocating (the benchmark only counts replies and notices errors). It
//! resumes where it stopped when more bytes arrive, so a reply that comes in
//! many reads is walked once. [`scanned`] builds the [`Reply`] value of a
//! reply the scanner found complete (the cli prints it); [`parse`] does both.
//!
//! The grammar is hiredis 1.x's, as redis-cli 7.0 reads it: attributes (`|`)
//! are refused, and [`ReplyError::message`] gives hiredis's texts.

/// One reply, with the shapes hiredis distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` simple string.
    Status(Vec<u8>),
    /// `-ERR ...` or RESP3 `!` blob error.
    Error(Vec<u8>),
    /// `:1` integer.
    Integer(i64),
    /// `$` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`.
    Nil,
    /// `*` array.
    Array(Vec<Reply>),
    /// RESP3 `%` map, as a flat key, value, key, value list.
    Map(Vec<Reply>),
    /// RESP3 `~` set.
    Set(Vec<Reply>),
    /// RESP3 `>` push message.
    Push(Vec<Reply>),
    /// RESP3 `,` double, kept as the server wrote it.
    Double(Vec<u8>),
    /// RESP3 `#t` / `#f`.
    Bool(bool),
    /// RESP3 `=` verbatim string, without its `txt:` format prefix.
    Verbatim(Vec<u8>),
    /// RESP3 `(` big number.
    BigNumber(Vec<u8>),
}

/// What a complete top-level reply was, for a reader that builds no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Any reply that is not an error (status, integer, bulk, array, null, ...).
    Value,
    /// A `-ERR ...` or RESP3 `!` blob error.
    Error,
}

/// Bytes that are not RESP: the connection cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not end in CRLF.
    LineEnd,
    /// An empty line where a type byte was expected.
    EmptyLine,
    /// A type byte RESP does not have (or an attribute).
    TypeByte(u8),
    /// An integer reply that is not a 64-bit integer.
    Integer,
    /// A bulk length below -1 or not a number.
    BulkLength,
    /// A bulk payload not followed by CRLF.
    BulkEnd,
    /// An aggregate length below -1 or not a number.
    AggregateLength,
    /// `#` followed by neither `t` nor `f`.
    Bool,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl ReplyError {
    /// The text hiredis (and so redis-cli) prints for it.
    pub fn message(&self) -> String {
        match self {
            ReplyError::LineEnd => "Protocol error, line not ended by CRLF".into(),
            ReplyError::EmptyLine => "Empty reply line".into(),
            ReplyError::TypeByte(b) => {
                let mut shown = String::new();
                crate::repr(&mut shown, &[*b]);
                format!("Protocol error, got {shown} as reply type byte")
            }
            ReplyError::Integer => "Bad integer value".into(),
            ReplyError::BulkLength => "Bad bulk string length".into(),
            ReplyError::BulkEnd => "Bad bulk string terminator".into(),
            ReplyError::AggregateLength => "Bad multi-bulk length".into(),
            ReplyError::Bool => "Bad bool value".into(),
            ReplyError::TooDeep => "Reply nested too deeply".into(),
        }
    }
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Nesting deeper than this is refused: [`parse`] recurses once per level.
pub const MAX_DEPTH: usize = 512;

/// Finds where the reply at the start of a growing buffer ends.
///
/// Feed it the same buffer, with more bytes appended, until it returns the
/// reply's length; then [`Scanner::reset`] it (or make a new one) for the
/// next reply, which starts at that length.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Where the next element starts.
    pos: usize,
    /// Elements still owed: the top-level reply counts as one.
    owed: u64,
    /// Open aggregates: how many elements each still owes after the current one.
    depth: Vec<u64>,
    kind: ReplyKind,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            pos: 0,
            owed: 1,
            depth: Vec::new(),
            kind: ReplyKind::Value,
        }
    }
}

impl Scanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Starts over, for the next reply.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.owed = 1;
        self.depth.clear();
        self.kind = ReplyKind::Value;
    }

    /// Walks `buf` (the bytes fed before, plus any new ones) from where the
    /// last call stopped. `Ok(None)`: more bytes are needed. Otherwise the
    /// reply's length in bytes and its kind.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<(usize, ReplyKind)>, ReplyError> {
        while self.owed > 0 {
            let pos = self.pos;
            let Some(&tag) = buf.get(pos) else {
                return Ok(None);
            };
            let Some(eol) = memchr_nl(&buf[pos..]) else {
                return Ok(None);
            };
            let line_end = pos + eol;
            if line_end == pos || buf[line_end - 1] != b'\r' {
                return Err(ReplyError::LineEnd);
            }
            if line_end == pos + 1 {
                return Err(ReplyError::EmptyLine);
            }
            let line = &buf[pos + 1..line_end - 1];
            let mut next = line_end + 1;
            let top = self.depth.is_empty() && self.owed == 1;
            let mut opens = 0;
            match tag {
                b'+' | b',' | b'(' | b'_' => {}
                b'-' => {
                    if top {
                        self.kind = ReplyKind::Error;
                    }
                }
                b':' => {
                    int(line).ok_or(ReplyError::Integer)?;
                }
                b'#' => {
                    if line != b"t" && line != b"f" {
                        return Err(ReplyError::Bool);
                    }
                }
                b'$' | b'=' | b'!' => {
                    let len = int(line)
                        .filter(|&n| n >= -1)
                        .ok_or(ReplyError::BulkLength)?;
                    if len >= 0 {
                        let end = next + len as usize + 2;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(ReplyError::BulkEnd);
                        }
                        next = end;
                        if tag == b'!' && top {
                            self.kind = ReplyKind::Error;
                        }
                    }
                }
                b'*' | b'~' | b'>' | b'%' => {
                    let n = int(line)
                        .filter(|&n| n >= -1)
                        .ok_or(ReplyError::AggregateLength)?;
                    if n > 0 {
                        let per = if tag == b'%' { 2 } else { 1 };
                        opens = n as u64 * per;
                    }
                }
                other => return Err(ReplyError::TypeByte(other)),
            }
            self.pos = next;
            self.owed -= 1;
            if opens > 0 {
                if self.depth.len() >= MAX_DEPTH {
                    return Err(ReplyError::TooDeep);
                }
                self.depth.push(self.owed);
                self.owed = opens;
            }
            while self.owed == 0 {
                match self.depth.pop() {
                    Some(outer) => self.owed = outer,
                    None => break,
                }
            }
        }
        Ok(Some((self.pos, self.kind)))
    }
}

/// The end of the first complete reply in `buf`, from scratch.
pub fn scan(buf: &[u8]) -> Result<Option<(usize, ReplyKind)>, ReplyError> {
    Scanner::new().scan(buf)
}

/// Builds the first reply in `buf` with its length, or `Ok(None)` while it is
/// incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    match scan(buf)? {
        None => Ok(None),
        Some((len, _)) => Ok(Some((scanned(&buf[..len])?, len))),
    }
}

/// Builds the reply a [`Scanner`] found complete: `reply` is exactly its
/// bytes, already checked, so they are not walked a second time.
pub fn scanned(reply: &[u8]) -> Result<Reply, ReplyError> {
    let mut pos = 0;
    let value = build(reply, &mut pos)?;
    debug_assert_eq!(pos, reply.len());
    Ok(value)
}

/// Builds the reply at `*pos` of a buffer [`scan`] found complete, and moves
/// `*pos` past it. The scan checked every line, length and depth.
fn build(buf: &[u8], pos: &mut usize) -> Result<Reply, ReplyError> {
    let start = *pos;
    let eol = start + memchr_nl(&buf[start..]).ok_or(ReplyError::LineEnd)?;
    let tag = buf[start];
    let line = &buf[start + 1..eol - 1];
    *pos = eol + 1;
    let number = |e| int(line).ok_or(e);
    Ok(match tag {
        b'+' => Reply::Status(line.to_vec()),
        b'-' => Reply::Error(line.to_vec()),
        b':' => Reply::Integer(number(ReplyError::Integer)?),
        b',' => Reply::Double(line.to_vec()),
        b'(' => Reply::BigNumber(line.to_vec()),
        b'_' => Reply::Nil,
        b'#' => Reply::Bool(line == b"t"),
        b'$' | b'!' | b'=' => {
            let len = number(ReplyError::BulkLength)?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let blob = &buf[*pos..*pos + len as usize];
            *pos += len as usize + 2;
            match tag {
                b'$' => Reply::Bulk(blob.to_vec()),
                b'!' => Reply::Error(blob.to_vec()),
                // hiredis strips the three-letter format and its colon.
                _ => Reply::Verbatim(blob.get(4..).unwrap_or_default().to_vec()),
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = number(ReplyError::AggregateLength)?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let per = if tag == b'%' { 2 } else { 1 };
            let count = (n * per) as usize;
            // Capped: the count comes from the peer.
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                items.push(build(buf, pos)?);
            }
            match tag {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                _ => Reply::Map(items),
            }
        }
        other => return Err(ReplyError::TypeByte(other)),
    })
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// A decimal `i64` as RESP writes it (an optional `-`, digits).
fn int(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(b: &[u8]) -> (usize, ReplyKind) {
        scan(b).unwrap().unwrap()
    }

    fn value(b: &[u8]) -> Reply {
        let (r, len) = parse(b).unwrap().unwrap();
        assert_eq!(len, b.len(), "{b:?}");
        r
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn scalars() {
        assert_eq!(whole(b"+OK\r\n"), (5, ReplyKind::Value));
        assert_eq!(whole(b":42\r\nextra"), (5, ReplyKind::Value));
        assert_eq!(whole(b"-ERR no\r\n"), (9, ReplyKind::Error));
        assert_eq!(whole(b"_\r\n"), (3, ReplyKind::Value));
        assert_eq!(value(b"+OK\r\n"), Reply::Status(b"OK".to_vec()));
        assert_eq!(value(b"-ERR bad\r\n"), Reply::Error(b"ERR bad".to_vec()));
        assert_eq!(value(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(value(b"$5\r\na\r\nbc\r\n"), bulk("a\r\nbc"));
        assert_eq!(value(b"$0\r\n\r\n"), bulk(""));
        assert_eq!(value(b"$-1\r\n"), Reply::Nil);
        assert_eq!(value(b"*-1\r\n"), Reply::Nil);
    }

    #[test]
    fn aggregates() {
        let r = b"*2\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
        assert_eq!(
            value(b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n"),
            Reply::Array(vec![
                bulk("a"),
                Reply::Array(vec![Reply::Integer(1), Reply::Nil])
            ])
        );
        assert_eq!(value(b"*0\r\n"), Reply::Array(vec![]));
        // An error inside an array does not make the reply an error.
        let r = b"*1\r\n-ERR x\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
        // An empty array closes at once, inside another one too.
        let r = b"*2\r\n*0\r\n:1\r\n";
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
    }

    #[test]
    fn resp3_types() {
        assert_eq!(value(b"#t\r\n"), Reply::Bool(true));
        assert_eq!(value(b"#f\r\n"), Reply::Bool(false));
        assert_eq!(value(b",3.141\r\n"), Reply::Double(b"3.141".to_vec()));
        assert_eq!(
            value(b"(1234567999999999999999999\r\n"),
            Reply::BigNumber(b"1234567999999999999999999".to_vec())
        );
        assert_eq!(
            value(b"=15\r\ntxt:Some string\r\n"),
            Reply::Verbatim(b"Some string".to_vec())
        );
        assert_eq!(
            value(b"!9\r\nERR x\r\nyz\r\n"),
            Reply::Error(b"ERR x\r\nyz".to_vec())
        );
        assert_eq!(whole(b"!1\r\nx\r\n").1, ReplyKind::Error);
        assert_eq!(
            value(b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n#t\r\n"),
            Reply::Map(vec![
                Reply::Status(b"a".to_vec()),
                Reply::Integer(1),
                bulk("b"),
                Reply::Bool(true)
            ])
        );
        assert_eq!(value(b"~1\r\n:0\r\n"), Reply::Set(vec![Reply::Integer(0)]));
        assert_eq!(
            value(b">2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            Reply::Push(vec![bulk("a"), bulk("b")])
        );
    }

    #[test]
    fn incomplete_at_every_cut_and_resumed() {
        let r = b"*3\r\n$3\r\nfoo\r\n%1\r\n:7\r\n*1\r\n$-1\r\n:2\r\n";
        for cut in 0..r.len() {
            assert_eq!(scan(&r[..cut]).unwrap(), None, "cut at {cut}");
            assert_eq!(parse(&r[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(whole(r), (r.len(), ReplyKind::Value));
        // Fed a byte at a time, the scanner resumes and ends at the same place.
        let mut s = Scanner::new();
        for cut in 0..r.len() {
            assert_eq!(s.scan(&r[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(s.scan(r).unwrap(), Some((r.len(), ReplyKind::Value)));
        s.reset();
        assert_eq!(s.scan(b"-E\r\n").unwrap(), Some((4, ReplyKind::Error)));
    }

    #[test]
    fn malformed_with_hiredis_messages() {
        for (bad, want) in [
            (
                &b"?x\r\n"[..],
                "Protocol error, got \"?\" as reply type byte",
            ),
            (
                b"|1\r\n+a\r\n+b\r\n",
                "Protocol error, got \"|\" as reply type byte",
            ),
            (b"+OK\n", "Protocol error, line not ended by CRLF"),
            (b"$x\r\n", "Bad bulk string length"),
            (b"$-2\r\n", "Bad bulk string length"),
            (b"$1\r\nab\r\n", "Bad bulk string terminator"),
            (b":x\r\n", "Bad integer value"),
            (b"*x\r\n", "Bad multi-bulk length"),
            (b"#x\r\n", "Bad bool value"),
            (b"\r\n", "Empty reply line"),
        ] {
            assert_eq!(scan(bad).unwrap_err().message(), want, "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(scan(deep.as_bytes()).unwrap_err(), ReplyError::TooDeep);
    }
}
