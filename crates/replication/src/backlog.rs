//! The replication backlog: the last `size` bytes of the stream, addressed by
//! stream offset, so a replica that reconnects can continue where it stopped.
//!
//! Offsets follow Redis: `master_repl_offset` counts every byte ever emitted;
//! the backlog holds bytes `first_byte_offset ..= master_repl_offset`, where the
//! first byte of the stream has offset 1.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// A bounded window over the stream, kept as the chunks that were emitted (so
/// appending and serving a partial resync copy nothing).
#[derive(Debug)]
pub struct Backlog {
    size: usize,
    chunks: VecDeque<Bytes>,
    histlen: usize,
    /// Offset of the last byte emitted (`master_repl_offset`).
    master_offset: i64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte will have offset `master_offset + 1`.
    pub fn new(size: usize, master_offset: i64) -> Backlog {
        Backlog {
            size: size.max(1),
            chunks: VecDeque::new(),
            histlen: 0,
            master_offset,
        }
    }

    /// `repl_backlog_size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Changes the size (CONFIG SET repl-backlog-size), dropping old bytes if needed.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        self.trim();
    }

    /// `master_repl_offset`.
    pub fn master_offset(&self) -> i64 {
        self.master_offset
    }

    /// `repl_backlog_histlen`.
    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// `repl_backlog_first_byte_offset`.
    pub fn first_byte_offset(&self) -> i64 {
        self.master_offset - self.histlen as i64 + 1
    }

    /// Appends emitted stream bytes.
    pub fn append(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.master_offset += chunk.len() as i64;
        self.histlen += chunk.len();
        self.chunks.push_back(chunk);
        self.trim();
    }

    fn trim(&mut self) {
        while self.histlen > self.size {
            let excess = self.histlen - self.size;
            let front = self.chunks.front_mut().expect("histlen > 0 means chunks");
            if front.len() <= excess {
                self.histlen -= front.len();
                self.chunks.pop_front();
            } else {
                let _ = front.split_to(excess);
                self.histlen -= excess;
            }
        }
    }

    /// True if a replica asking for `offset` (the next byte it needs) can be
    /// served from here: `first_byte_offset <= offset <= first_byte_offset + histlen`.
    pub fn can_serve(&self, offset: i64) -> bool {
        let first = self.first_byte_offset();
        offset >= first && offset <= first + self.histlen as i64
    }

    /// The bytes from `offset` (inclusive) to the end, as shared chunks.
    pub fn read_from(&self, offset: i64) -> Option<Vec<Bytes>> {
        if !self.can_serve(offset) {
            return None;
        }
        let mut skip = (offset - self.first_byte_offset()) as usize;
        let mut out = Vec::new();
        for c in &self.chunks {
            if skip >= c.len() {
                skip -= c.len();
                continue;
            }
            out.push(c.slice(skip..));
            skip = 0;
        }
        Some(out)
    }

    /// Forgets the history (a replica after a full sync), continuing at `master_offset`.
    pub fn reset(&mut self, master_offset: i64) {
        self.chunks.clear();
        self.histlen = 0;
        self.master_offset = master_offset;
    }

    /// Concatenates chunks (tests and small reads).
    pub fn concat(chunks: &[Bytes]) -> Bytes {
        let mut b = BytesMut::new();
        for c in chunks {
            b.extend_from_slice(c);
        }
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_follow_redis() {
        let mut b = Backlog::new(10, 0);
        assert_eq!(b.first_byte_offset(), 1);
        b.append(Bytes::from_static(b"hello"));
        assert_eq!(b.master_offset(), 5);
        assert_eq!(b.first_byte_offset(), 1);
        assert!(b.can_serve(1) && b.can_serve(6) && !b.can_serve(7));
        b.append(Bytes::from_static(b"world!!"));
        assert_eq!(b.histlen(), 10);
        assert_eq!(b.first_byte_offset(), 3);
        assert_eq!(
            Backlog::concat(&b.read_from(3).unwrap()),
            Bytes::from_static(b"lloworld!!")
        );
        assert_eq!(Backlog::concat(&b.read_from(13).unwrap()), Bytes::new());
        assert!(b.read_from(2).is_none());
    }

    proptest! {
        #[test]
        fn read_from_matches_a_flat_copy(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..30), size in 1usize..64, start in 0i64..50) {
            let mut b = Backlog::new(size, start);
            let mut flat = Vec::new();
            for c in &chunks {
                b.append(Bytes::from(c.clone()));
                flat.extend_from_slice(c);
            }
            let total = start + flat.len() as i64;
            prop_assert_eq!(b.master_offset(), total);
            prop_assert!(b.histlen() <= size);
            let first = b.first_byte_offset();
            for off in first..=total + 1 {
                let got = Backlog::concat(&b.read_from(off).unwrap());
                let from = (off - start - 1) as usize;
                prop_assert_eq!(&got[..], &flat[from..]);
            }
            prop_assert!(b.read_from(first - 1).is_none() || first - 1 < 1);
            prop_assert!(b.read_from(total + 2).is_none());
        }
    }
}
