//! The bottom of shardis's crate stack: facts several crates need, kept in
//! one place so that no library crate depends on the keyspace for them.
//!
//! - [`glob`]: Redis's `stringmatchlen` (KEYS, SCAN MATCH, ACL key and channel
//!   patterns, PSUBSCRIBE, CONFIG GET, COMMAND LIST FILTERBY PATTERN);
//! - [`Effect`]: the write record a shard produces and replication (and the
//!   AOF) consumes;
//! - [`TxId`], [`ReplId`], [`DbIndex`] and [`ShardId`]: a multi-shard
//!   transaction's, a replication history's, a database's and a shard's
//!   identities;
//! - [`encode_command`]: a command as a RESP multibulk, as it travels in the
//!   replication stream and in requests (into the server's `BytesMut` and the
//!   tools' `Vec<u8>` alike, through [`RespBuf`]);
//! - [`reply`]: a server's replies as a client reads them (shardis-cli and
//!   shardis-benchmark);
//! - [`notify`]: the classes of `notify-keyspace-events` and their string form;
//! - [`errors`]: every error text shardis replies with, Redis's, written once.
//!
//! It may depend on nothing of shardis's own. Sans-IO.

pub mod errors;
pub mod glob;
pub mod notify;
pub mod reply;

use bytes::{BufMut, Bytes, BytesMut};

/// A multi-shard transaction's id (a command holding several shards, EXEC,
/// a script, a snapshot barrier): it names the transaction's key locks on
/// each shard and its `Acquire`/`Release` markers in their write logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// A replication history's id (`master_replid`): 40 characters, random for a
/// new history, else as a master, a dump file or a promotion named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplId(String);

impl ReplId {
    /// "No id": 40 zeros (`master_replid2` without a previous history).
    pub fn none() -> ReplId {
        ReplId("0".repeat(40))
    }

    /// The id named by `text` (a master's `+FULLRESYNC`, a dump file's
    /// `repl-id`, a freshly drawn random id).
    pub fn from_text(text: impl Into<String>) -> ReplId {
        ReplId(text.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `text` names this id, in any case (Redis compares ids
    /// with `strcasecmp`).
    pub fn is(&self, text: &str) -> bool {
        self.0.eq_ignore_ascii_case(text)
    }
}

impl std::fmt::Display for ReplId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A database's index: SELECT's argument, `0..databases`. Its own type so
/// that it is never mixed up with a shard id or a count, which are numbers
/// of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DbIndex(pub usize);

impl DbIndex {
    /// The index into a shard's databases.
    pub const fn get(self) -> usize {
        self.0
    }
}

impl std::fmt::Display for DbIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A shard's id: the index of the executor that owns it (`0..threads`),
/// which is also its peer id on the cross-core mesh and the index of its
/// counters. Its own type for the same reason as [`DbIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ShardId(pub usize);

impl ShardId {
    /// The index of this shard's executor.
    pub const fn get(self) -> usize {
        self.0
    }

    /// Every shard of `shards`, in order.
    pub fn all(shards: usize) -> impl DoubleEndedIterator<Item = ShardId> + Clone {
        (0..shards).map(ShardId)
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One command to propagate to replicas (and later the AOF), in db `db`.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The db the command applies to.
    pub db: DbIndex,
    /// The command and its arguments.
    pub args: Vec<Bytes>,
}

/// Appends `s` quoted as Redis's `sdscatrepr` does (MONITOR lines, CONFIG
/// REWRITE's string values).
pub fn repr(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out.push('"');
}

/// A buffer RESP is written into: the server's `BytesMut`s, the tools' `Vec<u8>`s.
pub trait RespBuf {
    /// Makes room for `n` more bytes.
    fn reserve_more(&mut self, n: usize);
    /// Appends `b`.
    fn put(&mut self, b: &[u8]);
}

impl RespBuf for BytesMut {
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
    fn put(&mut self, b: &[u8]) {
        self.put_slice(b);
    }
}

impl RespBuf for Vec<u8> {
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Encodes a command as a RESP multibulk, as it travels in the stream.
pub fn encode_command<A: AsRef<[u8]>, O: RespBuf>(args: &[A], out: &mut O) {
    // Sized once and written without formatting: this runs for every write a
    // replica or the AOF receives.
    let need = 16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>();
    out.reserve_more(need);
    put_header(out, b'*', args.len());
    for a in args {
        let a = a.as_ref();
        put_header(out, b'$', a.len());
        out.put(a);
        out.put(b"\r\n");
    }
}

/// `<prefix><n>\r\n`.
fn put_header<O: RespBuf>(out: &mut O, prefix: u8, n: usize) {
    out.put(&[prefix]);
    put_decimal(out, n as u64);
    out.put(b"\r\n");
}

/// Appends the decimal digits of `n`, written from a stack buffer (no
/// allocation, unlike `to_string`).
pub fn put_decimal<O: RespBuf>(out: &mut O, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&buf[i..]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_a_multibulk() {
        let mut out = bytes::BytesMut::new();
        super::encode_command(&[b"SET".as_slice(), b"k", b""], &mut out);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        let long = vec![b'x'; 1234567];
        let mut out = bytes::BytesMut::new();
        super::encode_command(&[long.as_slice()], &mut out);
        assert!(out.starts_with(b"*1\r\n$1234567\r\nxxx"));
        assert_eq!(out.len(), 4 + 10 + 1234567 + 2);
        let mut out = bytes::BytesMut::new();
        super::put_decimal(&mut out, 0);
        super::put_decimal(&mut out, u64::MAX);
        assert_eq!(&out[..], b"018446744073709551615");
    }

    #[test]
    fn repr_quotes_as_sdscatrepr() {
        let mut s = String::new();
        super::repr(&mut s, b"a \"b\"\n\x01");
        assert_eq!(s, "\"a \\\"b\\\"\\n\\x01\"");
    }
}
