//! Writing RDB files and DUMP payloads in Redis 7.0's format.
//!
//! The writer never touches I/O: each call appends the bytes for one item to a
//! caller-provided buffer and folds them into the running CRC64, so the caller
//! may flush (or `split()` off) what was written between any two calls.

use bytes::BufMut;

use crate::crc64::crc64;
use crate::op;
use crate::packed::ListpackBuilder;
use crate::{RdbStream, RdbValue, StreamId, RDB_VERSION, REDIS_VER};

/// Switches that correspond to redis.conf's `rdbcompression` and `rdbchecksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// LZF-compress strings longer than 20 bytes when that saves space (`rdbcompression yes`).
    pub compression: bool,
    /// Write the real CRC64 trailer; when off the trailer is 0 (`rdbchecksum no`).
    pub checksum: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: true,
            checksum: true,
        }
    }
}

/// The header's aux fields that vary per snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderAux {
    /// `ctime`: snapshot creation time, Unix seconds.
    pub ctime: i64,
    /// `used-mem`: the server's memory use in bytes.
    pub used_mem: u64,
    /// Replication info; Redis writes it for replication and for saves with a backlog.
    pub repl: Option<ReplAux>,
    /// `aof-base`: 1 when the file is the base of a multi-part AOF.
    pub aof_base: bool,
}

/// The replication aux fields (`repl-stream-db`, `repl-id`, `repl-offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplAux {
    /// The db the replication stream has selected at the snapshot point.
    pub stream_db: i64,
    /// The 40-hex-char replication id.
    pub repl_id: String,
    /// The replication offset the snapshot corresponds to.
    pub repl_offset: i64,
}

/// Streams an RDB file into caller-provided buffers.
///
/// Call [`header`](Self::header), then per db [`select_db`](Self::select_db)
/// followed by [`entry`](Self::entry) for each key, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct RdbWriter {
    opts: WriterOptions,
    crc: u64,
    scratch: Vec<u8>,
}

impl RdbWriter {
    /// A writer with the given options and an empty CRC.
    pub fn new(opts: WriterOptions) -> Self {
        RdbWriter {
            opts,
            crc: 0,
            scratch: Vec::new(),
        }
    }

    fn flush<B: BufMut>(&mut self, out: &mut B) {
        if self.opts.checksum {
            self.crc = crc64(self.crc, &self.scratch);
        }
        out.put_slice(&self.scratch);
        self.scratch.clear();
    }

    fn aux_field(&mut self, key: &[u8], value: &[u8]) {
        let c = self.opts.compression;
        self.scratch.push(op::AUX);
        save_string(&mut self.scratch, key, c);
        save_string(&mut self.scratch, value, c);
    }

    /// Writes the magic `REDIS0010` and the aux fields in Redis 7.0's order.
    pub fn header<B: BufMut>(&mut self, out: &mut B, aux: &HeaderAux) {
        self.scratch
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        self.aux_field(b"redis-ver", REDIS_VER.as_bytes());
        self.aux_field(b"redis-bits", b"64");
        self.aux_field(b"ctime", aux.ctime.to_string().as_bytes());
        self.aux_field(b"used-mem", aux.used_mem.to_string().as_bytes());
        if let Some(r) = &aux.repl {
            self.aux_field(b"repl-stream-db", r.stream_db.to_string().as_bytes());
            self.aux_field(b"repl-id", r.repl_id.as_bytes());
            self.aux_field(b"repl-offset", r.repl_offset.to_string().as_bytes());
        }
        self.aux_field(b"aof-base", if aux.aof_base { b"1" } else { b"0" });
        self.flush(out);
    }

    /// Writes an extra aux field (Redis readers ignore unknown ones).
    pub fn aux<B: BufMut>(&mut self, out: &mut B, key: &[u8], value: &[u8]) {
        self.aux_field(key, value);
        self.flush(out);
    }

    /// Writes one function library's code (`FUNCTION2`), as Redis 7.0 does
    /// after the aux fields.
    pub fn function<B: BufMut>(&mut self, out: &mut B, code: &[u8]) {
        self.scratch.push(op::FUNCTION2);
        save_string(&mut self.scratch, code, self.opts.compression);
        self.flush(out);
    }

    /// Starts a database: `SELECTDB` and the `RESIZEDB` sizing hints.
    pub fn select_db<B: BufMut>(
        &mut self,
        out: &mut B,
        db: usize,
        db_size: u64,
        expires_size: u64,
    ) {
        self.scratch.push(op::SELECTDB);
        save_len(&mut self.scratch, db as u64);
        self.scratch.push(op::RESIZEDB);
        save_len(&mut self.scratch, db_size);
        save_len(&mut self.scratch, expires_size);
        self.flush(out);
    }

    /// Writes one key: optional `EXPIRETIME_MS`, the type byte, the key and the value.
    pub fn entry<B: BufMut>(
        &mut self,
        out: &mut B,
        key: &[u8],
        value: &RdbValue,
        expire_at_ms: Option<u64>,
    ) {
        if let Some(ms) = expire_at_ms {
            self.scratch.push(op::EXPIRETIME_MS);
            self.scratch.extend_from_slice(&ms.to_le_bytes());
        }
        self.scratch.push(object_type(value));
        save_string(&mut self.scratch, key, self.opts.compression);
        save_object(&mut self.scratch, value, self.opts.compression);
        self.flush(out);
    }

    /// Counts `encoded` into the checksum without writing it: bytes another
    /// writer made (a shard's part of a snapshot, encoded on its own core)
    /// that the caller puts in the file at this point.
    pub fn account(&mut self, encoded: &[u8]) {
        if self.opts.checksum {
            self.crc = crc64(self.crc, encoded);
        }
    }

    /// Writes `EOF` and the CRC64 trailer (0 when checksums are off).
    pub fn finish<B: BufMut>(mut self, out: &mut B) {
        self.scratch.push(op::EOF);
        self.flush(out);
        let crc = if self.opts.checksum { self.crc } else { 0 };
        out.put_slice(&crc.to_le_bytes());
    }
}

/// Serializes a value as Redis 7.0's DUMP does: type, value, RDB version (2 bytes
/// LE), CRC64 of all that (8 bytes LE). Streams use 7.0's layout, which has no
/// consumer active-time (Redis 7.2): it reads back as the seen-time.
pub fn dump_payload(value: &RdbValue) -> Vec<u8> {
    let mut out = vec![object_type(value)];
    // DUMP honours rdbcompression; its default is on.
    save_object(&mut out, value, true);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION DUMP's payload: a `FUNCTION2` record per library, then the DUMP
/// footer (RDB version, CRC64).
pub fn functions_payload(codes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(op::FUNCTION2);
        save_string(&mut out, code, true);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Redis 7.0's default `hash-max-listpack-*`, `zset-max-listpack-*` and
/// `set-max-intset-entries`: values within them are written in the compact
/// encodings Redis 7.0 itself writes for them (a loader re-encodes by its
/// own settings, as Redis does).
const HASH_LISTPACK_ENTRIES: usize = 512;
const HASH_LISTPACK_VALUE: usize = 64;
const ZSET_LISTPACK_ENTRIES: usize = 128;
const ZSET_LISTPACK_VALUE: usize = 64;
const SET_INTSET_ENTRIES: usize = 512;
/// A quicklist node's listpack closes at 8 KiB (`list-max-listpack-size -2`).
const LIST_NODE_BYTES: usize = 8192;

fn hash_is_small(pairs: &[(bytes::Bytes, bytes::Bytes)]) -> bool {
    pairs.len() <= HASH_LISTPACK_ENTRIES
        && pairs
            .iter()
            .all(|(f, v)| f.len() <= HASH_LISTPACK_VALUE && v.len() <= HASH_LISTPACK_VALUE)
}

fn zset_is_small(pairs: &[(bytes::Bytes, f64)]) -> bool {
    pairs.len() <= ZSET_LISTPACK_ENTRIES
        && pairs.iter().all(|(m, s)| {
            // -0 keeps its sign only as a binary double.
            m.len() <= ZSET_LISTPACK_VALUE && !(*s == 0.0 && s.is_sign_negative())
        })
}

/// The set as sorted integers when it is an intset's worth of them.
fn set_as_ints(items: &[bytes::Bytes]) -> Option<Vec<i64>> {
    if items.len() > SET_INTSET_ENTRIES {
        return None;
    }
    let mut ints = items
        .iter()
        .map(|m| canonical_i64(m))
        .collect::<Option<Vec<i64>>>()?;
    ints.sort_unstable();
    Some(ints)
}

fn object_type(v: &RdbValue) -> u8 {
    match v {
        RdbValue::String(_) => op::TYPE_STRING,
        RdbValue::List(_) => op::TYPE_LIST_QUICKLIST_2,
        RdbValue::Set(items) if set_as_ints(items).is_some() => op::TYPE_SET_INTSET,
        RdbValue::Set(_) => op::TYPE_SET,
        RdbValue::Hash(pairs) if hash_is_small(pairs) => op::TYPE_HASH_LISTPACK,
        RdbValue::Hash(_) => op::TYPE_HASH,
        RdbValue::ZSet(pairs) if zset_is_small(pairs) => op::TYPE_ZSET_LISTPACK,
        RdbValue::ZSet(_) => op::TYPE_ZSET_2,
        RdbValue::Stream(_) => op::TYPE_STREAM_LISTPACKS_2,
    }
}

/// A score as a listpack entry: an integer when it is one, else text that
/// reads back to the same double (Redis writes `%.17g`; any exact text
/// loads the same).
fn push_score(lp: &mut ListpackBuilder, s: f64) {
    const EXACT: f64 = (1u64 << 53) as f64;
    if s.fract() == 0.0 && s.abs() <= EXACT {
        lp.push_int(s as i64);
    } else if s.is_infinite() {
        lp.push_str(if s > 0.0 { b"inf" } else { b"-inf" });
    } else {
        lp.push_str(format!("{s:e}").as_bytes());
    }
}

/// An intset blob: element width, count, then the sorted values.
fn intset_blob(ints: &[i64]) -> Vec<u8> {
    let width: usize = if ints.iter().all(|&i| i16::try_from(i).is_ok()) {
        2
    } else if ints.iter().all(|&i| i32::try_from(i).is_ok()) {
        4
    } else {
        8
    };
    let mut b = Vec::with_capacity(8 + width * ints.len());
    b.extend_from_slice(&(width as u32).to_le_bytes());
    b.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for &i in ints {
        b.extend_from_slice(&i.to_le_bytes()[..width]);
    }
    b
}

/// A list as Redis 7.0's quicklist: packed nodes of up to 8 KiB.
fn save_quicklist(out: &mut Vec<u8>, items: &[bytes::Bytes], c: bool) {
    let mut nodes = Vec::new();
    let mut lp = ListpackBuilder::new();
    for it in items {
        if lp.len() > 0 && lp.bytes() + it.len() + 11 > LIST_NODE_BYTES {
            nodes.push(std::mem::replace(&mut lp, ListpackBuilder::new()).finish());
        }
        lp.push_str(it);
    }
    if lp.len() > 0 {
        nodes.push(lp.finish());
    }
    save_len(out, nodes.len() as u64);
    for n in nodes {
        // QUICKLIST_NODE_CONTAINER_PACKED
        save_len(out, 2);
        save_string(out, &n, c);
    }
}

pub(crate) fn save_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Redis's `string2ll`: only the canonical decimal form of an i64 (no `+`, no
/// leading zeros, no `-0`), so the string can be rebuilt exactly from the number.
pub(crate) fn canonical_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// `rdbSaveRawString`: integer encoding for short canonical integers that fit in
/// 32 bits, LZF for strings over 20 bytes when it saves at least 4 bytes, else raw.
pub(crate) fn save_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = canonical_i64(s) {
            if let Ok(v) = i8::try_from(v) {
                out.push(0xc0 | op::ENC_INT8);
                out.push(v as u8);
                return;
            } else if let Ok(v) = i16::try_from(v) {
                out.push(0xc0 | op::ENC_INT16);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            } else if let Ok(v) = i32::try_from(v) {
                out.push(0xc0 | op::ENC_INT32);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = crate::lzf::compress(s, s.len() - 4) {
            out.push(0xc0 | op::ENC_LZF);
            save_len(out, c.len() as u64);
            save_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    save_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn save_object(out: &mut Vec<u8>, value: &RdbValue, c: bool) {
    match value {
        RdbValue::String(s) => save_string(out, s, c),
        RdbValue::List(items) => save_quicklist(out, items, c),
        RdbValue::Set(items) => match set_as_ints(items) {
            Some(ints) => save_string(out, &intset_blob(&ints), c),
            None => {
                save_len(out, items.len() as u64);
                for it in items {
                    save_string(out, it, c);
                }
            }
        },
        RdbValue::Hash(pairs) if hash_is_small(pairs) => {
            let mut lp = ListpackBuilder::new();
            for (f, v) in pairs {
                lp.push_str(f);
                lp.push_str(v);
            }
            save_string(out, &lp.finish(), c);
        }
        RdbValue::Hash(pairs) => {
            save_len(out, pairs.len() as u64);
            for (f, v) in pairs {
                save_string(out, f, c);
                save_string(out, v, c);
            }
        }
        RdbValue::ZSet(pairs) if zset_is_small(pairs) => {
            // A listpack zset must be in (score, member) order: loaders
            // trust it, where they sort a ZSET_2's pairs themselves.
            let mut sorted: Vec<&(bytes::Bytes, f64)> = pairs.iter().collect();
            sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let mut lp = ListpackBuilder::new();
            for (m, score) in sorted {
                lp.push_str(m);
                push_score(&mut lp, *score);
            }
            save_string(out, &lp.finish(), c);
        }
        RdbValue::ZSet(pairs) => {
            save_len(out, pairs.len() as u64);
            for (m, score) in pairs {
                save_string(out, m, c);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        RdbValue::Stream(s) => save_stream(out, s, c),
    }
}

/// Redis's defaults for `stream-node-max-entries` and `stream-node-max-bytes`.
const STREAM_NODE_MAX_ENTRIES: usize = 100;
const STREAM_NODE_MAX_BYTES: usize = 4096;
const STREAM_ITEM_FLAG_SAMEFIELDS: i64 = 2;

fn stream_id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

/// One radix-tree node's listpack, laid out as `streamAppendItem` builds it.
fn stream_nodes(entries: &[crate::StreamEntry]) -> Vec<(StreamId, Vec<u8>)> {
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let master = &entries[i];
        // Close a node at Redis's default limits (by entry count, or roughly by
        // listpack bytes); any split is valid, this one keeps nodes Redis-sized.
        let mut j = i;
        let mut bytes = 0usize;
        while j < entries.len() && j - i < STREAM_NODE_MAX_ENTRIES {
            let e_bytes: usize = entries[j]
                .fields
                .iter()
                .map(|(f, v)| f.len() + v.len() + 10)
                .sum();
            if j > i && bytes + e_bytes >= STREAM_NODE_MAX_BYTES {
                break;
            }
            bytes += e_bytes;
            j += 1;
        }
        let node = &entries[i..j];
        let mut lp = ListpackBuilder::new();
        lp.push_int(node.len() as i64);
        lp.push_int(0);
        lp.push_int(master.fields.len() as i64);
        for (f, _) in &master.fields {
            lp.push_str(f);
        }
        lp.push_int(0);
        for e in node {
            let same = e.fields.len() == master.fields.len()
                && e.fields
                    .iter()
                    .zip(&master.fields)
                    .all(|((a, _), (b, _))| a == b);
            lp.push_int(if same { STREAM_ITEM_FLAG_SAMEFIELDS } else { 0 });
            lp.push_int(e.id.ms.wrapping_sub(master.id.ms) as i64);
            lp.push_int(e.id.seq.wrapping_sub(master.id.seq) as i64);
            let nf = e.fields.len() as i64;
            if !same {
                lp.push_int(nf);
            }
            for (f, v) in &e.fields {
                if !same {
                    lp.push_str(f);
                }
                lp.push_str(v);
            }
            lp.push_int(if same { nf + 3 } else { nf * 2 + 4 });
        }
        nodes.push((master.id, lp.finish()));
        i = j;
    }
    nodes
}

/// RDB_TYPE_STREAM_LISTPACKS_2 (19), the layout Redis 7.0 writes.
fn save_stream(out: &mut Vec<u8>, s: &RdbStream, c: bool) {
    let nodes = stream_nodes(&s.entries);
    save_len(out, nodes.len() as u64);
    for (id, lp) in &nodes {
        save_string(out, &stream_id_key(*id), c);
        save_string(out, lp, c);
    }
    save_len(out, s.entries.len() as u64);
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        save_len(out, id.ms);
        save_len(out, id.seq);
    }
    save_len(out, s.entries_added);
    save_len(out, s.groups.len() as u64);
    for g in &s.groups {
        save_string(out, &g.name, c);
        save_len(out, g.last_id.ms);
        save_len(out, g.last_id.seq);
        save_len(out, g.entries_read as u64);
        save_len(out, g.pel.len() as u64);
        for p in &g.pel {
            out.extend_from_slice(&stream_id_key(p.id));
            out.extend_from_slice(&p.delivery_time_ms.to_le_bytes());
            save_len(out, p.delivery_count);
        }
        save_len(out, g.consumers.len() as u64);
        for cons in &g.consumers {
            save_string(out, &cons.name, c);
            out.extend_from_slice(&cons.seen_time_ms.to_le_bytes());
            save_len(out, cons.pending.len() as u64);
            for id in &cons.pending {
                out.extend_from_slice(&stream_id_key(*id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_take_redis_7_0s_compact_types() {
        use bytes::Bytes;
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let long = Bytes::from(vec![b'x'; 65]);
        let ints: Vec<Bytes> = (0..513).map(|i| b(&i.to_string())).collect();
        let cases = [
            (
                RdbValue::Hash(vec![(b("f"), b("1"))]),
                op::TYPE_HASH_LISTPACK,
            ),
            (RdbValue::Hash(vec![(b("f"), long.clone())]), op::TYPE_HASH),
            (RdbValue::ZSet(vec![(b("m"), 1.5)]), op::TYPE_ZSET_LISTPACK),
            (RdbValue::ZSet(vec![(long.clone(), 1.5)]), op::TYPE_ZSET_2),
            (RdbValue::ZSet(vec![(b("m"), -0.0)]), op::TYPE_ZSET_2),
            (
                RdbValue::Set(vec![b("3"), b("-70000")]),
                op::TYPE_SET_INTSET,
            ),
            (RdbValue::Set(ints[..512].to_vec()), op::TYPE_SET_INTSET),
            (RdbValue::Set(ints), op::TYPE_SET),
            (RdbValue::Set(vec![b("3"), b("a")]), op::TYPE_SET),
            (RdbValue::List(vec![b("a")]), op::TYPE_LIST_QUICKLIST_2),
        ];
        for (v, t) in cases {
            assert_eq!(object_type(&v), t, "{v:?}");
        }
        // A long list is split into 8 KiB nodes.
        let items: Vec<Bytes> = (0..3000).map(|i| b(&format!("item-{i}"))).collect();
        let mut out = Vec::new();
        save_quicklist(&mut out, &items, false);
        assert_eq!(out[0], 4, "nodes");
        assert_eq!(intset_blob(&[-1, 40000])[..4], 4u32.to_le_bytes());
    }

    #[test]
    fn fragments_written_elsewhere_make_the_same_file() {
        use bytes::Bytes;
        let aux = HeaderAux {
            ctime: 1,
            used_mem: 2,
            repl: None,
            aof_base: false,
        };
        let v = RdbValue::String(Bytes::from_static(b"value"));
        let opts = WriterOptions::default();
        let mut whole = Vec::new();
        let mut w = RdbWriter::new(opts);
        w.header(&mut whole, &aux);
        w.select_db(&mut whole, 0, 0, 0);
        w.entry(&mut whole, b"a", &v, None);
        w.select_db(&mut whole, 3, 0, 0);
        w.entry(&mut whole, b"b", &v, Some(7));
        w.finish(&mut whole);

        let mut joined = Vec::new();
        let mut w = RdbWriter::new(opts);
        w.header(&mut joined, &aux);
        for (db, key, exp) in [(0, b"a", None), (3, b"b", Some(7))] {
            let mut part = Vec::new();
            let mut f = RdbWriter::new(WriterOptions {
                checksum: false,
                ..opts
            });
            f.select_db(&mut part, db, 0, 0);
            f.entry(&mut part, key, &v, exp);
            w.account(&part);
            joined.extend_from_slice(&part);
        }
        w.finish(&mut joined);
        assert_eq!(joined, whole);
    }

    #[test]
    fn lengths() {
        let enc = |n| {
            let mut v = Vec::new();
            save_len(&mut v, n);
            v
        };
        assert_eq!(enc(63), [63]);
        assert_eq!(enc(64), [0x40, 64]);
        assert_eq!(enc(16383), [0x7f, 0xff]);
        assert_eq!(enc(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(enc(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn string_encodings() {
        let enc = |s: &[u8]| {
            let mut v = Vec::new();
            save_string(&mut v, s, true);
            v
        };
        assert_eq!(enc(b"-1"), [0xc0, 0xff]);
        assert_eq!(enc(b"300"), [0xc1, 0x2c, 0x01]);
        assert_eq!(enc(b"100000"), [0xc2, 0xa0, 0x86, 0x01, 0x00]);
        // Not canonical, or too wide for 32 bits: stored as raw strings.
        assert_eq!(enc(b"007"), [3, b'0', b'0', b'7']);
        assert_eq!(enc(b"-0"), [2, b'-', b'0']);
        assert_eq!(enc(b"+5"), [2, b'+', b'5']);
        assert_eq!(enc(b"4294967296")[0], 10);
        assert_eq!(enc(&[b'a'; 30])[0], 0xc3);
    }
}
