//! Blocking reply reader and command encoder, over shardis-base's sans-IO
//! reply reader (the one the benchmark uses too).
//!
//! [`ReplyReader`] reads from the socket until one whole reply is buffered and
//! keeps what arrived beyond it for the next call. A short read at end of
//! stream is reported as `ServerClosed`, which is how hiredis names it and how
//! redis-cli reports it (`Error: Server closed the connection`).

use std::io::{self, Read};

pub use shardis_base::reply::Reply;
use shardis_base::reply::{self, Scanner};

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

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Replies read one at a time from a byte stream.
pub struct ReplyReader<R> {
    inner: R,
    /// What was read and not yet returned: the current reply's start first.
    buf: Vec<u8>,
    /// How far the current reply was walked, so a long one is walked once.
    scanner: Scanner,
}

impl<R: Read> ReplyReader<R> {
    /// Reads replies from `inner`.
    pub fn new(inner: R) -> ReplyReader<R> {
        ReplyReader {
            inner,
            buf: Vec::new(),
            scanner: Scanner::new(),
        }
    }

    /// Reads exactly one reply.
    pub fn read_reply(&mut self) -> Result<Reply, ReadError> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.scanner.scan(&self.buf) {
                Ok(Some((len, _))) => {
                    let parsed = reply::scanned(&self.buf[..len]);
                    self.buf.drain(..len);
                    self.scanner.reset();
                    return parsed.map_err(|e| ReadError::Protocol(e.message()));
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Protocol(e.message())),
            }
            let n = loop {
                match self.inner.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Err(ReadError::ServerClosed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    shardis_base::encode_command(args, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, ReadError> {
        ReplyReader::new(bytes).read_reply()
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
        let mut r = ReplyReader::new(&b"+A\r\n:2\r\n"[..]);
        assert_eq!(r.read_reply().unwrap(), Reply::Status(b"A".to_vec()));
        assert_eq!(r.read_reply().unwrap(), Reply::Integer(2));
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
