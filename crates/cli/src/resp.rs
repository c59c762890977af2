//! Blocking RESP2/RESP3 reply reader and command encoder.
//!
//! The client reads one reply at a time from a `BufRead`, so "not enough bytes yet" simply means
//! "block for more". A short read at end of stream is reported as `ServerClosed`, which is how
//! hiredis names it and how redis-cli reports it (`Error: Server closed the connection`).

use std::io::{self, BufRead, Write};

/// One reply from the server, with the shapes hiredis distinguishes.
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
    /// RESP3 `(` big number: redis-cli 7.0 cannot print it and exits.
    BigNumber(Vec<u8>),
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (possibly mid-reply).
    ServerClosed,
    /// A socket error.
    Io(io::Error),
    /// Bytes that are not RESP; the text is hiredis' message.
    Protocol(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::ServerClosed => f.write_str("Server closed the connection"),
            ReadError::Io(e) => f.write_str(&crate::os_error_text(e)),
            ReadError::Protocol(s) => f.write_str(s),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::ServerClosed
        } else {
            ReadError::Io(e)
        }
    }
}

/// Nesting deeper than this is refused rather than risking stack exhaustion.
const MAX_DEPTH: usize = 512;

/// Reads exactly one reply.
pub fn read_reply<R: BufRead>(r: &mut R) -> Result<Reply, ReadError> {
    read_at(r, 0)
}

fn read_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 || !line.ends_with(b"\r\n") {
        return Err(ReadError::ServerClosed);
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(b: &[u8]) -> Result<i64, ReadError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReadError::Protocol("Bad integer value".into()))
}

fn read_blob<R: BufRead>(r: &mut R, len: i64) -> Result<Vec<u8>, ReadError> {
    let len =
        usize::try_from(len).map_err(|_| ReadError::Protocol("Bad bulk string length".into()))?;
    let mut buf = vec![0u8; len + 2];
    r.read_exact(&mut buf)?;
    if &buf[len..] != b"\r\n" {
        return Err(ReadError::Protocol("Bad bulk string terminator".into()));
    }
    buf.truncate(len);
    Ok(buf)
}

fn read_items<R: BufRead>(r: &mut R, n: i64, depth: usize) -> Result<Vec<Reply>, ReadError> {
    let n = usize::try_from(n).map_err(|_| ReadError::Protocol("Bad multi-bulk length".into()))?;
    // Cap the pre-allocation: the count comes from the peer.
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        items.push(read_at(r, depth + 1)?);
    }
    Ok(items)
}

fn read_at<R: BufRead>(r: &mut R, depth: usize) -> Result<Reply, ReadError> {
    if depth > MAX_DEPTH {
        return Err(ReadError::Protocol("Reply nested too deeply".into()));
    }
    let line = read_line(r)?;
    let Some((&kind, rest)) = line.split_first() else {
        return Err(ReadError::Protocol("Empty reply line".into()));
    };
    let rest = rest.to_vec();
    Ok(match kind {
        b'+' => Reply::Status(rest),
        b'-' => Reply::Error(rest),
        b':' => Reply::Integer(parse_int(&rest)?),
        b',' => Reply::Double(rest),
        b'(' => Reply::BigNumber(rest),
        b'_' => Reply::Nil,
        b'#' => match rest.as_slice() {
            b"t" => Reply::Bool(true),
            b"f" => Reply::Bool(false),
            _ => return Err(ReadError::Protocol("Bad bool value".into())),
        },
        b'$' | b'!' | b'=' => {
            let len = parse_int(&rest)?;
            if len < 0 {
                Reply::Nil
            } else {
                let blob = read_blob(r, len)?;
                match kind {
                    b'$' => Reply::Bulk(blob),
                    b'!' => Reply::Error(blob),
                    // hiredis strips the three-letter format and its colon.
                    _ => Reply::Verbatim(blob.get(4..).unwrap_or_default().to_vec()),
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let n = parse_int(&rest)?;
            if n < 0 {
                Reply::Nil
            } else {
                let items = read_items(r, n, depth)?;
                match kind {
                    b'*' => Reply::Array(items),
                    b'~' => Reply::Set(items),
                    _ => Reply::Push(items),
                }
            }
        }
        b'%' => {
            let n = parse_int(&rest)?;
            Reply::Map(read_items(r, n.saturating_mul(2), depth)?)
        }
        other => {
            return Err(ReadError::Protocol(format!(
                "Protocol error, got {} as reply type byte",
                String::from_utf8_lossy(&crate::format::repr(&[other]))
            )))
        }
    })
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    write!(out, "*{}\r\n", args.len()).expect("write to Vec");
    for a in args {
        let a = a.as_ref();
        write!(out, "${}\r\n", a.len()).expect("write to Vec");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, ReadError> {
        let mut r = bytes;
        read_reply(&mut r)
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn resp2_scalars() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status(b"OK".to_vec()));
        assert_eq!(
            parse(b"-ERR bad\r\n").unwrap(),
            Reply::Error(b"ERR bad".to_vec())
        );
        assert_eq!(parse(b":-42\r\n").unwrap(), Reply::Integer(-42));
        assert_eq!(parse(b"$5\r\na\r\nbc\r\n").unwrap(), bulk("a\r\nbc"));
        assert_eq!(parse(b"$0\r\n\r\n").unwrap(), bulk(""));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Nil);
    }

    #[test]
    fn resp2_nested_array() {
        let r = parse(b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n").unwrap();
        assert_eq!(
            r,
            Reply::Array(vec![
                bulk("a"),
                Reply::Array(vec![Reply::Integer(1), Reply::Nil])
            ])
        );
        assert_eq!(parse(b"*0\r\n").unwrap(), Reply::Array(vec![]));
    }

    #[test]
    fn resp3_types() {
        assert_eq!(parse(b"_\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"#t\r\n").unwrap(), Reply::Bool(true));
        assert_eq!(parse(b"#f\r\n").unwrap(), Reply::Bool(false));
        assert_eq!(
            parse(b",3.141\r\n").unwrap(),
            Reply::Double(b"3.141".to_vec())
        );
        assert_eq!(
            parse(b"(1234567999999999999999999\r\n").unwrap(),
            Reply::BigNumber(b"1234567999999999999999999".to_vec())
        );
        assert_eq!(
            parse(b"=15\r\ntxt:Some string\r\n").unwrap(),
            Reply::Verbatim(b"Some string".to_vec())
        );
        assert_eq!(
            parse(b"!9\r\nERR x\r\nyz\r\n").unwrap(),
            Reply::Error(b"ERR x\r\nyz".to_vec())
        );
        assert_eq!(
            parse(b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n#t\r\n").unwrap(),
            Reply::Map(vec![
                Reply::Status(b"a".to_vec()),
                Reply::Integer(1),
                bulk("b"),
                Reply::Bool(true)
            ])
        );
        assert_eq!(
            parse(b"~1\r\n:0\r\n").unwrap(),
            Reply::Set(vec![Reply::Integer(0)])
        );
        assert_eq!(
            parse(b">2\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap(),
            Reply::Push(vec![bulk("a"), bulk("b")])
        );
    }

    #[test]
    fn truncated_input_is_server_closed() {
        for input in [&b""[..], b"+OK", b"$5\r\nab", b"*2\r\n:1\r\n"] {
            assert!(
                matches!(parse(input), Err(ReadError::ServerClosed)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn bad_type_byte_matches_hiredis_message() {
        let e = parse(b"|1\r\n+a\r\n+b\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Protocol error, got \"|\" as reply type byte"
        );
        assert!(matches!(parse(b":x\r\n"), Err(ReadError::Protocol(_))));
    }

    #[test]
    fn reads_consecutive_replies() {
        let mut r = &b"+A\r\n:2\r\n"[..];
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Status(b"A".to_vec()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Integer(2));
    }

    #[test]
    fn encodes_binary_safe_commands() {
        assert_eq!(
            encode_command(&["SET", "k", "a\r\nb"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n".to_vec()
        );
        assert_eq!(encode_command::<&str>(&[]), b"*0\r\n".to_vec());
    }
}
