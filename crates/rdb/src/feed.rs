//! Reading an RDB that arrives in pieces (a replica loading its master's
//! payload while it streams, Redis's diskless load): bytes go in as they come,
//! complete items come out, and only the unparsed tail is kept.
//!
//! Sans-IO: the caller reads the socket and calls [`RdbFeed::extend`]; this
//! type only parses. The CRC64 trailer is checked over every byte of the file
//! although none but the tail is kept (a running checksum over the consumed
//! bytes). An item cut by the end of the buffered bytes is parsed again once
//! the buffer has doubled, so a value of any size costs linear work, not a
//! re-parse per network read.

use bytes::{Buf, BytesMut};

use crate::crc64::crc64;
use crate::error::RdbError;
use crate::reader::{RdbItem, RdbReader};

/// An RDB file parsed as its bytes arrive.
#[derive(Debug, Default)]
pub struct RdbFeed {
    /// Received and not yet parsed.
    buf: BytesMut,
    /// CRC64 of every byte parsed so far.
    crc: u64,
    /// Bytes parsed so far (error offsets are file offsets).
    consumed: usize,
    /// The file's version, once the magic has been read.
    version: Option<u32>,
    /// The db of the last `SELECTDB`.
    db: usize,
    /// The next parse waits until this many bytes are buffered (an item was
    /// cut short with fewer).
    want: usize,
    /// The `EOF` opcode and the checksum have been read.
    done: bool,
    /// Every byte of the file is buffered ([`RdbFeed::all_received`]).
    all_in: bool,
}

impl RdbFeed {
    /// An empty feed, waiting for the `REDIS` magic.
    pub fn new() -> RdbFeed {
        RdbFeed::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received and not yet parsed (after the end: what followed the
    /// RDB, such as a replication `EOF:` mark).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of the file parsed so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Tells the feed that no more bytes will come before it is read to the
    /// end (the transfer's length was reached, or its end mark seen): items
    /// cut short are parsed at once instead of after the buffer doubles.
    pub fn all_received(&mut self) {
        self.all_in = true;
    }

    /// True once the `EOF` opcode and a matching checksum were read.
    pub fn finished(&self) -> bool {
        self.done
    }

    /// The next complete item. `Ok(None)` means nothing more can be parsed
    /// now: more bytes are needed, or the file has ended ([`finished`]).
    /// Errors are those of [`RdbReader`], at file offsets; a checksum that
    /// does not match is [`Reason::Checksum`].
    ///
    /// [`finished`]: RdbFeed::finished
    pub fn next_item(&mut self) -> Result<Option<RdbItem>, RdbError> {
        if self.done || (self.buf.len() < self.want && !self.all_in) {
            return Ok(None);
        }
        let version = match self.version {
            Some(v) => v,
            None => match RdbReader::new(&self.buf) {
                Ok(r) => {
                    let v = r.version();
                    self.version = Some(v);
                    self.consume(9);
                    v
                }
                Err(e) if e.is_truncated() => return self.cut_short(),
                Err(e) => return Err(e),
            },
        };
        let mut reader = RdbReader::resume(&self.buf, 0, version, self.db).crc_seed(self.crc);
        match reader.next_item() {
            Ok(item) => {
                let used = reader.offset();
                self.db = reader.db();
                self.want = 0;
                self.consume(used);
                // `None`: the EOF opcode and a trailer that verified.
                self.done = item.is_none();
                Ok(item)
            }
            Err(e) if e.is_truncated() => self.cut_short(),
            Err(e) => Err(RdbError {
                offset: e.offset + self.consumed,
                ..e
            }),
        }
    }

    /// An item needs more bytes than are buffered: parse again once the
    /// buffer has doubled.
    fn cut_short(&mut self) -> Result<Option<RdbItem>, RdbError> {
        self.want = self.buf.len().saturating_mul(2).max(self.buf.len() + 1);
        Ok(None)
    }

    fn consume(&mut self, n: usize) {
        self.crc = crc64(self.crc, &self.buf[..n]);
        self.consumed += n;
        self.buf.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;
    use crate::writer::{HeaderAux, RdbWriter, WriterOptions};
    use crate::RdbValue;
    use bytes::Bytes;

    fn sample() -> Vec<u8> {
        // Uncompressed, so the big string's bytes are in the file as they are.
        let mut w = RdbWriter::new(WriterOptions {
            compression: false,
            checksum: true,
        });
        let mut out = Vec::new();
        w.header(&mut out, &HeaderAux::default());
        w.select_db(&mut out, 0, 3, 1);
        w.entry(
            &mut out,
            b"a",
            &RdbValue::String(Bytes::from_static(b"1")),
            None,
        );
        let big = Bytes::from(vec![b'x'; 100_000]);
        w.entry(
            &mut out,
            b"big",
            &RdbValue::String(big),
            Some(1_900_000_000_000),
        );
        w.select_db(&mut out, 3, 1, 0);
        w.entry(
            &mut out,
            b"l",
            &RdbValue::List(vec![Bytes::from_static(b"p"), Bytes::from_static(b"q")]),
            None,
        );
        w.finish(&mut out);
        out
    }

    fn whole(file: &[u8]) -> Vec<RdbItem> {
        RdbReader::new(file)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn fed(file: &[u8], chunk: usize) -> (Vec<RdbItem>, RdbFeed) {
        let mut feed = RdbFeed::new();
        let mut items = Vec::new();
        let pieces: Vec<&[u8]> = file.chunks(chunk).collect();
        for (i, piece) in pieces.iter().enumerate() {
            feed.extend(piece);
            if i + 1 == pieces.len() {
                feed.all_received();
            }
            while let Some(item) = feed.next_item().unwrap() {
                items.push(item);
            }
        }
        (items, feed)
    }

    #[test]
    fn any_split_gives_the_items_of_the_whole_file() {
        let file = sample();
        let expected = whole(&file);
        for chunk in [1, 2, 7, 64, 1000, 65536, file.len()] {
            let (items, feed) = fed(&file, chunk);
            assert!(feed.finished(), "chunk {chunk}");
            assert_eq!(items, expected, "chunk {chunk}");
            assert_eq!(feed.consumed(), file.len());
            assert!(feed.pending().is_empty());
        }
    }

    #[test]
    fn bytes_after_the_end_stay_pending() {
        let mut file = sample();
        file.extend_from_slice(b"MARK");
        let (_, feed) = fed(&file, 10);
        assert!(feed.finished());
        assert_eq!(feed.pending(), b"MARK");
    }

    #[test]
    fn a_damaged_byte_fails_the_checksum_or_the_parse() {
        let file = sample();
        let mut bad = file.clone();
        // Inside the big string's payload: still parses, so only the CRC sees it.
        let at = file.windows(4).position(|w| w == b"xxxx").unwrap() + 10;
        bad[at] = b'y';
        let mut feed = RdbFeed::new();
        let mut err = None;
        for piece in bad.chunks(333) {
            feed.extend(piece);
            if feed.consumed() + feed.pending().len() == bad.len() {
                feed.all_received();
            }
            loop {
                match feed.next_item() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if err.is_some() {
                break;
            }
        }
        let err = err.expect("checksum error");
        assert!(matches!(err.reason, Reason::Checksum { .. }), "{err:?}");
        assert_eq!(err.offset, file.len() - 8);
    }

    #[test]
    fn a_bad_magic_is_refused_at_once() {
        let mut feed = RdbFeed::new();
        feed.extend(b"REDIX0011");
        assert_eq!(feed.next_item().unwrap_err().reason, Reason::BadMagic);
    }

    #[test]
    fn a_huge_value_is_not_reparsed_per_read() {
        // 100 KB arriving 10 bytes at a time: with doubling, a few dozen
        // parse attempts, not ten thousand.
        let file = sample();
        let mut feed = RdbFeed::new();
        let mut attempts = 0;
        for piece in file.chunks(10) {
            feed.extend(piece);
            if feed.consumed() + feed.pending().len() == file.len() {
                feed.all_received();
            }
            loop {
                let before = feed.buf.len() >= feed.want || feed.all_in;
                attempts += before as usize;
                if feed.next_item().unwrap().is_none() {
                    break;
                }
            }
        }
        assert!(feed.finished());
        assert!(attempts < 200, "{attempts} parse attempts");
    }
}
