//! [`Pack`]: a small collection as one heap block (shardis's listpack).
//!
//! Most hashes, sorted sets and lists hold a handful of short strings. As
//! separate `Bytes` each element would cost 32 bytes plus a heap block;
//! packed, it costs its length plus two bytes. A pack is what Redis calls a
//! listpack, in shardis's own format:
//!
//! ```text
//! [count: u32 LE] entry* ;  entry = [len: varint] [bytes] [back: rvarint]
//! ```
//!
//! `back` is the size of `len` plus `bytes`, written so that it can be read
//! from its last byte backwards: the pack walks both ways, one step per
//! entry. Positions are byte offsets of an entry's start ([`Pos`]); editing
//! moves the bytes after the edit, as a listpack does, which is cheap at the
//! sizes the encoding thresholds allow.
//!
//! The block is a boxed slice sized exactly (an empty pack owns none), so a
//! pack is 16 bytes and never holds spare capacity.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// When a small collection stays packed: Redis's `*-max-listpack-*`,
/// `set-max-intset-entries`, `list-max-listpack-size` and
/// `stream-node-max-*` settings, process wide as in Redis (the server sets
/// them from the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`
    pub hash_entries: usize,
    /// `hash-max-listpack-value`
    pub hash_value: usize,
    /// `zset-max-listpack-entries`
    pub zset_entries: usize,
    /// `zset-max-listpack-value`
    pub zset_value: usize,
    /// `set-max-intset-entries`
    pub set_intset_entries: usize,
    /// `list-max-listpack-size`: entries per node when positive, else a
    /// size class (-1 = 4 KiB ... -5 = 64 KiB).
    pub list_size: i64,
    /// `stream-node-max-entries` (0: no limit)
    pub stream_node_entries: usize,
    /// `stream-node-max-bytes` (0: no limit)
    pub stream_node_bytes: usize,
}

impl Default for Limits {
    /// Redis 7.0's defaults.
    fn default() -> Limits {
        Limits {
            hash_entries: 512,
            hash_value: 64,
            zset_entries: 128,
            zset_value: 64,
            set_intset_entries: 512,
            list_size: -2,
            stream_node_entries: 100,
            stream_node_bytes: 4096,
        }
    }
}

static HASH_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_VALUE: AtomicUsize = AtomicUsize::new(64);
static ZSET_ENTRIES: AtomicUsize = AtomicUsize::new(128);
static ZSET_VALUE: AtomicUsize = AtomicUsize::new(64);
static SET_INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static LIST_SIZE: AtomicI64 = AtomicI64::new(-2);
static STREAM_NODE_ENTRIES: AtomicUsize = AtomicUsize::new(100);
static STREAM_NODE_BYTES: AtomicUsize = AtomicUsize::new(4096);

/// Sets the limits every later conversion decision reads.
pub fn set_limits(l: Limits) {
    HASH_ENTRIES.store(l.hash_entries, Ordering::Relaxed);
    HASH_VALUE.store(l.hash_value, Ordering::Relaxed);
    ZSET_ENTRIES.store(l.zset_entries, Ordering::Relaxed);
    ZSET_VALUE.store(l.zset_value, Ordering::Relaxed);
    SET_INTSET_ENTRIES.store(l.set_intset_entries, Ordering::Relaxed);
    LIST_SIZE.store(l.list_size, Ordering::Relaxed);
    STREAM_NODE_ENTRIES.store(l.stream_node_entries, Ordering::Relaxed);
    STREAM_NODE_BYTES.store(l.stream_node_bytes, Ordering::Relaxed);
}

/// The limits in force.
pub fn limits() -> Limits {
    Limits {
        hash_entries: HASH_ENTRIES.load(Ordering::Relaxed),
        hash_value: HASH_VALUE.load(Ordering::Relaxed),
        zset_entries: ZSET_ENTRIES.load(Ordering::Relaxed),
        zset_value: ZSET_VALUE.load(Ordering::Relaxed),
        set_intset_entries: SET_INTSET_ENTRIES.load(Ordering::Relaxed),
        list_size: LIST_SIZE.load(Ordering::Relaxed),
        stream_node_entries: STREAM_NODE_ENTRIES.load(Ordering::Relaxed),
        stream_node_bytes: STREAM_NODE_BYTES.load(Ordering::Relaxed),
    }
}

/// The byte offset of an entry in a [`Pack`].
pub type Pos = usize;

const HEADER: usize = 4;

/// A packed sequence of byte strings (see the module docs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pack(Box<[u8]>);

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(bytes::Bytes::copy_from_slice))
            .finish()
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Appends `n` as a varint (7 bits a byte, low first); also the stream
/// log's header encoding.
pub(crate) fn push_varint(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 10];
    let l = put_varint(&mut tmp, n as usize);
    out.extend_from_slice(&tmp[..l]);
}

/// Reads a varint at `*at`, moving `at` past it.
pub(crate) fn read_varint(b: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        n |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

fn get_varint(b: &[u8]) -> (usize, usize) {
    let mut at = 0;
    let n = read_varint(b, &mut at);
    (n as usize, at)
}

/// The back length: a varint stored last byte first, so a reader that
/// stands after it reads the low 7 bits first.
fn put_back(out: &mut [u8], n: usize) -> usize {
    let l = varint_len(n);
    let mut tmp = [0u8; 10];
    put_varint(&mut tmp, n);
    for i in 0..l {
        out[l - 1 - i] = tmp[i];
    }
    l
}

/// Reads the back length that ends at `end`: (value, its size).
fn get_back(b: &[u8], end: usize) -> (usize, usize) {
    let (mut n, mut shift, mut p) = (0usize, 0, end);
    loop {
        p -= 1;
        let byte = b[p];
        n |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            return (n, end - p);
        }
        shift += 7;
    }
}

/// The encoded size of an entry holding `len` bytes.
pub fn entry_size(len: usize) -> usize {
    let body = varint_len(len) + len;
    body + varint_len(body)
}

fn encode(out: &mut [u8], data: &[u8]) -> usize {
    let l = put_varint(out, data.len());
    out[l..l + data.len()].copy_from_slice(data);
    let body = l + data.len();
    body + put_back(&mut out[body..], body)
}

impl Pack {
    /// An empty pack (no heap block).
    pub fn new() -> Pack {
        Pack(Box::default())
    }

    /// A pack of `items`, in order.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]> + Clone) -> Pack {
        let (mut n, mut size) = (0u32, HEADER);
        for it in items.clone() {
            n += 1;
            size += entry_size(it.len());
        }
        if n == 0 {
            return Pack::new();
        }
        let mut buf = vec![0u8; size].into_boxed_slice();
        buf[..HEADER].copy_from_slice(&n.to_le_bytes());
        let mut at = HEADER;
        for it in items {
            at += encode(&mut buf[at..], it);
        }
        Pack(buf)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            u32::from_le_bytes(self.0[..HEADER].try_into().expect("header")) as usize
        }
    }

    /// True with no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the heap block (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// The first entry's position (the end when empty).
    pub fn first(&self) -> Pos {
        HEADER.min(self.0.len())
    }

    /// The position after the last entry.
    pub fn end(&self) -> Pos {
        self.0.len()
    }

    /// The entry at `p` (which must be an entry's start).
    pub fn get(&self, p: Pos) -> &[u8] {
        let (len, l) = get_varint(&self.0[p..]);
        &self.0[p + l..p + l + len]
    }

    /// The position after the entry at `p`.
    pub fn next(&self, p: Pos) -> Pos {
        let (len, l) = get_varint(&self.0[p..]);
        let body = l + len;
        p + body + varint_len(body)
    }

    /// The entry before `p`, if `p` is not the first.
    pub fn prev(&self, p: Pos) -> Option<Pos> {
        if p <= HEADER {
            return None;
        }
        let (body, bl) = get_back(&self.0, p);
        Some(p - bl - body)
    }

    /// The last entry's position, if any.
    pub fn last(&self) -> Option<Pos> {
        self.prev(self.end())
    }

    /// The entry `i` from the front (O(i)).
    pub fn nth(&self, i: usize) -> Option<Pos> {
        if i >= self.len() {
            return None;
        }
        let mut p = self.first();
        for _ in 0..i {
            p = self.next(p);
        }
        Some(p)
    }

    /// Every entry, front to back.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            pack: self,
            at: self.first(),
        }
    }

    /// Every entry, back to front.
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut at = self.end();
        std::iter::from_fn(move || {
            let p = self.prev(at)?;
            at = p;
            Some(self.get(p))
        })
    }

    /// Replaces the bytes `at..at + remove` with `items`' entries and adds
    /// `added` to the count: the one edit every change is made of.
    fn splice(&mut self, at: Pos, remove: usize, items: &[&[u8]], added: isize) {
        let insert: usize = items.iter().map(|i| entry_size(i.len())).sum();
        let old = std::mem::take(&mut self.0);
        let before = match old.get(..HEADER) {
            Some(h) => u32::from_le_bytes(h.try_into().expect("header")) as isize,
            None => 0,
        };
        let count = (before + added) as u32;
        if count == 0 {
            return; // empty: no block at all
        }
        let mut v = Vec::from(old);
        if v.is_empty() {
            v.resize(HEADER, 0);
        }
        let at = at.max(HEADER);
        let tail = v.len() - at - remove;
        let new_len = v.len() - remove + insert;
        if insert > remove {
            v.reserve_exact(insert - remove);
            v.resize(new_len, 0);
            v.copy_within(at + remove..at + remove + tail, at + insert);
        } else {
            v.copy_within(at + remove..at + remove + tail, at + insert);
            v.truncate(new_len);
        }
        let mut w = at;
        for it in items {
            w += encode(&mut v[w..], it);
        }
        v[..HEADER].copy_from_slice(&count.to_le_bytes());
        self.0 = v.into_boxed_slice();
    }

    /// Inserts `items` as entries before the entry at `p` (or at the end).
    pub fn insert(&mut self, p: Pos, items: &[&[u8]]) {
        self.splice(p, 0, items, items.len() as isize);
    }

    /// Appends `items`.
    pub fn push_back(&mut self, items: &[&[u8]]) {
        self.insert(self.end(), items);
    }

    /// Prepends `items` (the first of them ends up first).
    pub fn push_front(&mut self, items: &[&[u8]]) {
        self.insert(self.first(), items);
    }

    /// Removes `n` entries starting at `p`.
    pub fn remove(&mut self, p: Pos, n: usize) {
        let mut end = p;
        for _ in 0..n {
            end = self.next(end);
        }
        self.splice(p, end - p, &[], -(n as isize));
    }

    /// Replaces the entry at `p` with `item`; returns the position after it.
    pub fn replace(&mut self, p: Pos, item: &[u8]) -> Pos {
        let old = self.next(p) - p;
        self.splice(p, old, &[item], 0);
        p + entry_size(item.len())
    }
}

/// Front-to-back entries of a [`Pack`].
pub struct Iter<'a> {
    pack: &'a Pack,
    at: Pos,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.pack.end() {
            return None;
        }
        let item = self.pack.get(self.at);
        self.at = self.pack.next(self.at);
        Some(item)
    }
}

impl Iter<'_> {
    /// The position of the entry `next` returns next.
    pub fn pos(&self) -> Pos {
        self.at
    }
}

/// A sorted-set score as a pack entry: integral values that a double holds
/// exactly are stored as 1 to 7 little-endian bytes, anything else as the
/// 8 bytes of the double (an entry's length tells which). `-0.0` keeps its
/// sign as a double.
pub fn encode_score(score: f64, out: &mut [u8; 8]) -> usize {
    const EXACT: f64 = (1u64 << 53) as f64;
    if score.fract() == 0.0 && score.abs() <= EXACT && !(score == 0.0 && score.is_sign_negative()) {
        let n = score as i64;
        let bytes = n.to_le_bytes();
        let mut l = 1;
        while l < 7 {
            let shift = 64 - 8 * l;
            if (n << shift) >> shift == n {
                break;
            }
            l += 1;
        }
        out[..l].copy_from_slice(&bytes[..l]);
        l
    } else {
        out.copy_from_slice(&score.to_le_bytes());
        8
    }
}

/// Reads a score written by [`encode_score`].
pub fn decode_score(b: &[u8]) -> f64 {
    if b.len() == 8 {
        f64::from_le_bytes(b.try_into().expect("8 bytes"))
    } else {
        let mut buf = [0u8; 8];
        buf[..b.len()].copy_from_slice(b);
        let shift = 64 - 8 * b.len();
        ((i64::from_le_bytes(buf) << shift) >> shift) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Pack) -> Vec<Vec<u8>> {
        p.iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn edits_keep_both_directions_consistent() {
        let long = vec![b'x'; 300];
        let mut p = Pack::new();
        assert_eq!(p.heap_bytes(), 0);
        p.push_back(&[b"a", &long]);
        p.push_front(&[b"z"]);
        p.push_back(&[b""]);
        assert_eq!(p.len(), 4);
        assert_eq!(
            items(&p),
            vec![b"z".to_vec(), b"a".to_vec(), long.clone(), vec![]]
        );
        let mut rev: Vec<Vec<u8>> = p.iter_rev().map(|b| b.to_vec()).collect();
        rev.reverse();
        assert_eq!(rev, items(&p));
        let at = p.nth(1).unwrap();
        let after = p.replace(at, &long);
        assert_eq!(p.get(after), &long[..]);
        p.remove(p.nth(2).unwrap(), 2);
        assert_eq!(items(&p), vec![b"z".to_vec(), long.clone()]);
        p.remove(p.first(), 2);
        assert!(p.is_empty());
        assert_eq!(p.heap_bytes(), 0);
        assert_eq!(p.last(), None);
    }

    #[test]
    fn back_lengths_of_every_size_read_back() {
        for n in [0, 1, 125, 126, 127, 128, 16381, 16382, 16383, 16384, 70000] {
            let item = vec![7u8; n];
            let p = Pack::from_items([&b"a"[..], &item, b"b"]);
            assert_eq!(p.get(p.prev(p.last().unwrap()).unwrap()).len(), n);
            assert_eq!(p.heap_bytes(), 4 + 2 * entry_size(1) + entry_size(n));
        }
    }

    #[test]
    fn scores_round_trip_exactly() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            127.0,
            128.0,
            -129.0,
            1e6,
            -1e15,
            9007199254740992.0,
            -9007199254740992.0,
            9007199254740994.0,
            0.5,
            -2.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            f64::MIN_POSITIVE,
        ] {
            let mut b = [0u8; 8];
            let l = encode_score(s, &mut b);
            let back = decode_score(&b[..l]);
            assert_eq!(back.to_bits(), s.to_bits(), "{s}");
        }
        let mut b = [0u8; 8];
        assert_eq!(encode_score(523412.0, &mut b), 3);
    }
}
