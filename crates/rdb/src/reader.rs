//! Reading RDB files (versions 1 to 11, i.e. everything Redis 7.0 and 7.2
//! write) and DUMP payloads.
//!
//! The reader works on a byte slice. Every length read from the input is
//! checked against what remains before anything is allocated, so a corrupt or
//! truncated file yields an [`RdbError`] with its offset, never a panic or a huge
//! allocation. A caller receiving a file piecewise can retry an item that failed
//! with [`Reason::Truncated`] once more bytes have arrived.

use bytes::Bytes;

use crate::crc64::crc64;
use crate::error::{RdbError, Reason};
use crate::packed::{self, Elem};
use crate::{
    op, PendingEntry, RdbEntry, RdbStream, RdbValue, StreamConsumer, StreamEntry, StreamGroup,
    StreamId,
};

/// The newest RDB version this reader understands (Redis 7.2 writes 11).
pub const MAX_READ_VERSION: u32 = 11;

type R<T> = Result<T, RdbError>;

/// A length field, or the special string encoding that replaces it.
enum Len {
    Plain(u64),
    Encoded(u8),
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn truncated(&self) -> RdbError {
        RdbError::new(self.buf.len(), Reason::Truncated)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> R<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len_or_enc(&mut self) -> R<Len> {
        let at = self.pos;
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.u8()? as u64),
            2 => match b {
                0x80 => Len::Plain(u32::from_be_bytes(self.array()?) as u64),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return Err(RdbError::corrupt(at, "unknown length encoding")),
            },
            _ => Len::Encoded(b & 0x3f),
        })
    }

    fn len(&mut self) -> R<u64> {
        let at = self.pos;
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(RdbError::corrupt(
                at,
                "encoded value where a length was expected",
            )),
        }
    }

    /// A length that counts items which each take at least one input byte; a
    /// count beyond the remaining input is corrupt (or truncated), and this
    /// check is what bounds every preallocation.
    fn count(&mut self) -> R<usize> {
        let n = self.len()?;
        if n > self.remaining() as u64 {
            return Err(self.truncated());
        }
        Ok(n as usize)
    }

    fn string_slice(&mut self) -> R<std::borrow::Cow<'a, [u8]>> {
        use std::borrow::Cow;
        let at = self.pos;
        match self.len_or_enc()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| self.truncated())?;
                Ok(Cow::Borrowed(self.take(n)?))
            }
            Len::Encoded(op::ENC_INT8) => {
                Ok(Cow::Owned((self.u8()? as i8).to_string().into_bytes()))
            }
            Len::Encoded(op::ENC_INT16) => Ok(Cow::Owned(
                i16::from_le_bytes(self.array()?).to_string().into_bytes(),
            )),
            Len::Encoded(op::ENC_INT32) => Ok(Cow::Owned(
                i32::from_le_bytes(self.array()?).to_string().into_bytes(),
            )),
            Len::Encoded(op::ENC_LZF) => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let clen = usize::try_from(clen).map_err(|_| self.truncated())?;
                let data = self.take(clen)?;
                // LZF expands at most 264 bytes per 3-byte back reference.
                if ulen > (clen as u64) * 88 + 32 {
                    return Err(RdbError::corrupt(at, "LZF length larger than possible"));
                }
                crate::lzf::decompress(data, ulen as usize)
                    .map(Cow::Owned)
                    .map_err(|_| RdbError::corrupt(at, "invalid LZF compressed string"))
            }
            Len::Encoded(_) => Err(RdbError::corrupt(at, "unknown string encoding")),
        }
    }

    fn string(&mut self) -> R<Bytes> {
        Ok(match self.string_slice()? {
            std::borrow::Cow::Borrowed(s) => Bytes::copy_from_slice(s),
            std::borrow::Cow::Owned(v) => Bytes::from(v),
        })
    }

    /// A string holding a packed blob, plus the offset to blame if it is corrupt.
    fn blob(&mut self) -> R<(usize, std::borrow::Cow<'a, [u8]>)> {
        let at = self.pos;
        Ok((at, self.string_slice()?))
    }

    fn ms_time(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn stream_id_raw(&mut self) -> R<StreamId> {
        let k: [u8; 16] = self.array()?;
        Ok(decode_stream_id(&k))
    }

    fn stream_id_lens(&mut self) -> R<StreamId> {
        Ok(StreamId {
            ms: self.len()?,
            seq: self.len()?,
        })
    }

    fn binary_double(&mut self) -> R<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// RDB_TYPE_ZSET's scores: a 1-byte length (253 NaN, 254 +inf, 255 -inf) and text.
    fn text_double(&mut self) -> R<f64> {
        let at = self.pos;
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.take(n as usize)?;
                packed::parse_f64(s).ok_or_else(|| RdbError::corrupt(at, "invalid zset score"))
            }
        }
    }
}

fn decode_stream_id(k: &[u8; 16]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&k[..8]);
    seq.copy_from_slice(&k[8..]);
    StreamId {
        ms: u64::from_be_bytes(ms),
        seq: u64::from_be_bytes(seq),
    }
}

fn check_score(at: usize, s: f64) -> R<f64> {
    if s.is_nan() {
        Err(RdbError::corrupt(at, "zset with NaN score"))
    } else {
        Ok(s)
    }
}

fn pairs<'b>(at: usize, elems: &[Elem<'b>], what: &'static str) -> R<Vec<(Elem<'b>, Elem<'b>)>> {
    if !elems.len().is_multiple_of(2) {
        return Err(RdbError::corrupt(at, what));
    }
    Ok(elems.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

fn read_object(c: &mut Cursor<'_>, t: u8) -> R<RdbValue> {
    let at = c.pos;
    let blob_err = |at: usize| move |e: &'static str| RdbError::corrupt(at, e);
    Ok(match t {
        op::TYPE_STRING => RdbValue::String(c.string()?),
        op::TYPE_LIST | op::TYPE_SET => {
            let n = c.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(c.string()?);
            }
            if t == op::TYPE_LIST {
                RdbValue::List(v)
            } else {
                RdbValue::Set(v)
            }
        }
        op::TYPE_ZSET | op::TYPE_ZSET_2 => {
            let n = c.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let m = c.string()?;
                let at = c.pos;
                let s = if t == op::TYPE_ZSET {
                    c.text_double()?
                } else {
                    c.binary_double()?
                };
                v.push((m, check_score(at, s)?));
            }
            RdbValue::ZSet(v)
        }
        op::TYPE_HASH => {
            let n = c.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push((c.string()?, c.string()?));
            }
            RdbValue::Hash(v)
        }
        op::TYPE_MODULE_PRE_GA | op::TYPE_MODULE_2 => {
            return Err(RdbError::new(at, Reason::ModuleData))
        }
        op::TYPE_HASH_ZIPMAP => {
            let (at, b) = c.blob()?;
            let kv = packed::zipmap(&b).map_err(blob_err(at))?;
            RdbValue::Hash(
                kv.into_iter()
                    .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
                    .collect(),
            )
        }
        op::TYPE_LIST_ZIPLIST => {
            let (at, b) = c.blob()?;
            let e = packed::ziplist(&b).map_err(blob_err(at))?;
            RdbValue::List(e.into_iter().map(Elem::to_bytes).collect())
        }
        op::TYPE_SET_INTSET => {
            let (at, b) = c.blob()?;
            let e = packed::intset(&b).map_err(blob_err(at))?;
            RdbValue::Set(e.into_iter().map(|i| Bytes::from(i.to_string())).collect())
        }
        op::TYPE_SET_LISTPACK => {
            let (at, b) = c.blob()?;
            let e = packed::listpack(&b).map_err(blob_err(at))?;
            RdbValue::Set(e.into_iter().map(Elem::to_bytes).collect())
        }
        op::TYPE_ZSET_ZIPLIST | op::TYPE_ZSET_LISTPACK => {
            let (at, b) = c.blob()?;
            let e = if t == op::TYPE_ZSET_ZIPLIST {
                packed::ziplist(&b)
            } else {
                packed::listpack(&b)
            }
            .map_err(blob_err(at))?;
            let mut v = Vec::with_capacity(e.len() / 2);
            for (m, s) in pairs(at, &e, "zset blob with an odd number of elements")? {
                let s = s
                    .as_f64()
                    .ok_or_else(|| RdbError::corrupt(at, "invalid zset score"))?;
                v.push((m.to_bytes(), check_score(at, s)?));
            }
            RdbValue::ZSet(v)
        }
        op::TYPE_HASH_ZIPLIST | op::TYPE_HASH_LISTPACK => {
            let (at, b) = c.blob()?;
            let e = if t == op::TYPE_HASH_ZIPLIST {
                packed::ziplist(&b)
            } else {
                packed::listpack(&b)
            }
            .map_err(blob_err(at))?;
            let p = pairs(at, &e, "hash blob with an odd number of elements")?;
            RdbValue::Hash(
                p.into_iter()
                    .map(|(f, v)| (f.to_bytes(), v.to_bytes()))
                    .collect(),
            )
        }
        op::TYPE_LIST_QUICKLIST | op::TYPE_LIST_QUICKLIST_2 => {
            let nodes = c.count()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                // Quicklist2 nodes carry a container kind: 1 plain element, 2 listpack.
                let container = if t == op::TYPE_LIST_QUICKLIST_2 {
                    c.len()?
                } else {
                    2
                };
                let (at, b) = c.blob()?;
                match container {
                    1 => v.push(Bytes::copy_from_slice(&b)),
                    2 => {
                        let e = if t == op::TYPE_LIST_QUICKLIST {
                            packed::ziplist(&b)
                        } else {
                            packed::listpack(&b)
                        }
                        .map_err(blob_err(at))?;
                        if e.is_empty() {
                            return Err(RdbError::corrupt(at, "empty quicklist node"));
                        }
                        v.extend(e.into_iter().map(Elem::to_bytes));
                    }
                    _ => return Err(RdbError::corrupt(at, "unknown quicklist node container")),
                }
            }
            RdbValue::List(v)
        }
        op::TYPE_STREAM_LISTPACKS | op::TYPE_STREAM_LISTPACKS_2 | op::TYPE_STREAM_LISTPACKS_3 => {
            RdbValue::Stream(Box::new(read_stream(c, t)?))
        }
        _ => return Err(RdbError::new(at.saturating_sub(1), Reason::UnknownType(t))),
    })
}

/// Walks one stream node's listpack (see `streamAppendItem` for the layout).
fn stream_node(at: usize, master: StreamId, e: &[Elem<'_>], out: &mut Vec<StreamEntry>) -> R<()> {
    let bad = |what| RdbError::corrupt(at, what);
    let mut it = e.iter().copied();
    let int = |it: &mut dyn Iterator<Item = Elem<'_>>| -> R<i64> {
        it.next()
            .and_then(Elem::as_int)
            .ok_or_else(|| bad("stream listpack: missing integer"))
    };
    let _count = int(&mut it)?;
    let _deleted = int(&mut it)?;
    let nmaster = int(&mut it)?;
    if nmaster < 0 || nmaster as usize > e.len() {
        return Err(bad("stream listpack: bad master field count"));
    }
    let master_fields: Vec<Elem<'_>> = it.by_ref().take(nmaster as usize).collect();
    if master_fields.len() != nmaster as usize || int(&mut it)? != 0 {
        return Err(bad("stream listpack: bad master entry"));
    }
    while let Some(flags) = it.next() {
        let flags = flags
            .as_int()
            .ok_or_else(|| bad("stream listpack: bad flags"))?;
        let ms = master.ms.wrapping_add(int(&mut it)? as u64);
        let seq = master.seq.wrapping_add(int(&mut it)? as u64);
        let same = flags & 2 != 0;
        let nf = if same { nmaster } else { int(&mut it)? };
        if nf < 0 || nf as usize > e.len() {
            return Err(bad("stream listpack: bad field count"));
        }
        let mut fields = Vec::with_capacity(nf as usize);
        for slot in 0..nf as usize {
            // With SAMEFIELDS the names come from the master entry.
            let f = if let Some(&m) = master_fields.get(slot).filter(|_| same) {
                m
            } else {
                it.next()
                    .ok_or_else(|| bad("stream listpack: missing field"))?
            };
            let v = it
                .next()
                .ok_or_else(|| bad("stream listpack: missing value"))?;
            fields.push((f.to_bytes(), v.to_bytes()));
        }
        let _lp_count = int(&mut it)?;
        if flags & 1 == 0 {
            out.push(StreamEntry {
                id: StreamId { ms, seq },
                fields,
            });
        }
    }
    Ok(())
}

fn read_stream(c: &mut Cursor<'_>, t: u8) -> R<RdbStream> {
    let mut s = RdbStream::default();
    let nodes = c.count()?;
    for _ in 0..nodes {
        let (kat, key) = c.blob()?;
        let key: [u8; 16] = key
            .as_ref()
            .try_into()
            .map_err(|_| RdbError::corrupt(kat, "stream node key is not 128 bits"))?;
        let (at, lp) = c.blob()?;
        let e = packed::listpack(&lp).map_err(|e| RdbError::corrupt(at, e))?;
        if e.is_empty() {
            return Err(RdbError::corrupt(at, "empty listpack inside stream"));
        }
        stream_node(at, decode_stream_id(&key), &e, &mut s.entries)?;
    }
    let at = c.pos;
    let length = c.len()?;
    if length != s.entries.len() as u64 {
        return Err(RdbError::corrupt(
            at,
            "stream length does not match its entries",
        ));
    }
    s.last_id = c.stream_id_lens()?;
    if t >= op::TYPE_STREAM_LISTPACKS_2 {
        s.first_id = c.stream_id_lens()?;
        s.max_deleted_id = c.stream_id_lens()?;
        s.entries_added = c.len()?;
    } else {
        // What Redis 7.0 derives for pre-7.0 streams.
        s.first_id = s.entries.first().map(|e| e.id).unwrap_or_default();
        s.entries_added = length;
    }
    let ngroups = c.count()?;
    for _ in 0..ngroups {
        let name = c.string()?;
        let last_id = c.stream_id_lens()?;
        let entries_read = if t >= op::TYPE_STREAM_LISTPACKS_2 {
            c.len()? as i64
        } else {
            -1
        };
        let npel = c.count()?;
        let mut pel = Vec::with_capacity(npel);
        for _ in 0..npel {
            let id = c.stream_id_raw()?;
            let delivery_time_ms = c.ms_time()?;
            let delivery_count = c.len()?;
            pel.push(PendingEntry {
                id,
                delivery_time_ms,
                delivery_count,
            });
        }
        let ncons = c.count()?;
        let mut consumers = Vec::with_capacity(ncons);
        for _ in 0..ncons {
            let name = c.string()?;
            let seen_time_ms = c.ms_time()?;
            let active_time_ms = if t >= op::TYPE_STREAM_LISTPACKS_3 {
                c.ms_time()?
            } else {
                seen_time_ms
            };
            let np = c.count()?;
            let mut pending = Vec::with_capacity(np);
            for _ in 0..np {
                let at = c.pos;
                let id = c.stream_id_raw()?;
                if pel.binary_search_by(|p| p.id.cmp(&id)).is_err() {
                    return Err(RdbError::corrupt(
                        at,
                        "consumer pending entry missing from the group PEL",
                    ));
                }
                pending.push(id);
            }
            consumers.push(StreamConsumer {
                name,
                seen_time_ms,
                active_time_ms,
                pending,
            });
        }
        s.groups.push(StreamGroup {
            name,
            last_id,
            entries_read,
            pel,
            consumers,
        });
    }
    Ok(s)
}

/// One item of an RDB file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbItem {
    /// An aux field (`redis-ver`, `ctime`, `repl-id`, ...).
    Aux(Bytes, Bytes),
    /// `SELECTDB`: the following keys belong to this db.
    SelectDb(usize),
    /// `RESIZEDB`: sizing hints for the current db.
    ResizeDb {
        /// Number of keys.
        db_size: u64,
        /// Number of keys with an expiry.
        expires_size: u64,
    },
    /// A function library's code (`FUNCTION2`), to be loaded with FUNCTION LOAD.
    Function(Bytes),
    /// A key with its value.
    Entry(RdbEntry),
}

/// A pull reader over a complete (or partial) RDB file.
#[derive(Debug, Clone)]
pub struct RdbReader<'a> {
    cur: Cursor<'a>,
    version: u32,
    db: usize,
    done: bool,
    /// CRC64 of the file's bytes before `cur.buf` starts (a reader resumed
    /// on the tail of a file whose head is gone, see [`RdbReader::crc_seed`]).
    crc_seed: u64,
}

impl<'a> RdbReader<'a> {
    /// Checks the `REDIS` magic and the version; the reader then sits on the first item.
    pub fn new(input: &'a [u8]) -> Result<Self, RdbError> {
        let mut cur = Cursor { buf: input, pos: 0 };
        let magic = cur.take(9)?;
        if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::new(0, Reason::BadMagic));
        }
        let version: u32 = std::str::from_utf8(&magic[5..])
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        if !(1..=MAX_READ_VERSION).contains(&version) {
            return Err(RdbError::new(5, Reason::UnsupportedVersion(version)));
        }
        Ok(RdbReader {
            cur,
            version,
            db: 0,
            done: false,
            crc_seed: 0,
        })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far (after `None`, the end of the checksum trailer).
    pub fn offset(&self) -> usize {
        self.cur.pos
    }

    /// The next item; `Ok(None)` after `EOF` once the CRC64 trailer has verified.
    ///
    /// After an error the reader is left where the failing item started, so a
    /// [`Reason::Truncated`] item can be retried on a longer slice by a new reader
    /// positioned via [`RdbReader::resume`].
    pub fn next_item(&mut self) -> Result<Option<RdbItem>, RdbError> {
        if self.done {
            return Ok(None);
        }
        let start = self.cur.pos;
        let r = self.parse_item();
        if r.is_err() {
            self.cur.pos = start;
        }
        r
    }

    /// A reader over `input` (a longer copy of the same file) that continues at
    /// `offset` in db `db`, as returned by [`offset`](Self::offset) and [`db`](Self::db).
    pub fn resume(input: &'a [u8], offset: usize, version: u32, db: usize) -> Self {
        RdbReader {
            cur: Cursor {
                buf: input,
                pos: offset.min(input.len()),
            },
            version,
            db,
            done: false,
            crc_seed: 0,
        }
    }

    /// For a reader whose input is only the tail of the file: the CRC64 of
    /// every byte before it, so the trailer is checked over the whole file.
    pub fn crc_seed(mut self, crc: u64) -> Self {
        self.crc_seed = crc;
        self
    }

    /// The db selected by the last `SELECTDB`.
    pub fn db(&self) -> usize {
        self.db
    }

    fn parse_item(&mut self) -> Result<Option<RdbItem>, RdbError> {
        let c = &mut self.cur;
        let mut expire_at_ms = None;
        loop {
            let at = c.pos;
            let t = c.u8()?;
            match t {
                op::EXPIRETIME_MS => {
                    expire_at_ms = Some(i64::from_le_bytes(c.array()?).max(0) as u64);
                }
                op::EXPIRETIME => {
                    expire_at_ms =
                        Some((i32::from_le_bytes(c.array()?) as i64).max(0) as u64 * 1000);
                }
                op::FREQ => {
                    c.u8()?;
                }
                op::IDLE => {
                    c.len()?;
                }
                op::AUX => {
                    let k = c.string()?;
                    let v = c.string()?;
                    return Ok(Some(RdbItem::Aux(k, v)));
                }
                op::RESIZEDB => {
                    let db_size = c.len()?;
                    let expires_size = c.len()?;
                    return Ok(Some(RdbItem::ResizeDb {
                        db_size,
                        expires_size,
                    }));
                }
                op::SELECTDB => {
                    let db = c.len()?;
                    self.db = usize::try_from(db)
                        .map_err(|_| RdbError::corrupt(at, "db index out of range"))?;
                    return Ok(Some(RdbItem::SelectDb(self.db)));
                }
                op::MODULE_AUX => return Err(RdbError::new(at, Reason::ModuleData)),
                op::FUNCTION_PRE_GA => {
                    return Err(RdbError::corrupt(
                        at,
                        "pre-release function format not supported",
                    ))
                }
                op::FUNCTION2 => return Ok(Some(RdbItem::Function(c.string()?))),
                op::EOF => {
                    if self.version >= 5 {
                        let body_end = c.pos;
                        let trailer_at = c.pos;
                        let stored = u64::from_le_bytes(c.array()?);
                        let computed = crc64(self.crc_seed, &c.buf[..body_end]);
                        if stored != 0 && stored != computed {
                            return Err(RdbError::new(
                                trailer_at,
                                Reason::Checksum { stored, computed },
                            ));
                        }
                    }
                    self.done = true;
                    return Ok(None);
                }
                _ => {
                    let key = c.string()?;
                    let value = read_object(c, t)?;
                    return Ok(Some(RdbItem::Entry(RdbEntry {
                        db: self.db,
                        key,
                        value,
                        expire_at_ms,
                    })));
                }
            }
        }
    }
}

impl Iterator for RdbReader<'_> {
    type Item = Result<RdbItem, RdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(Some(i)) => Some(Ok(i)),
            Ok(None) => None,
            Err(e) => {
                // Stop after an error so `collect` terminates.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A whole RDB file, read into memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RdbFile {
    /// RDB version from the magic.
    pub version: u32,
    /// Aux fields in file order.
    pub aux: Vec<(Bytes, Bytes)>,
    /// Function libraries' code.
    pub functions: Vec<Bytes>,
    /// Keys in file order.
    pub entries: Vec<RdbEntry>,
}

/// The aux fields a loading server cares about, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuxInfo {
    /// `redis-ver`.
    pub redis_ver: Option<String>,
    /// `ctime`, Unix seconds.
    pub ctime: Option<i64>,
    /// `used-mem`, bytes.
    pub used_mem: Option<i64>,
    /// `repl-stream-db`.
    pub repl_stream_db: Option<i64>,
    /// `repl-id`.
    pub repl_id: Option<String>,
    /// `repl-offset`.
    pub repl_offset: Option<i64>,
    /// `aof-base`.
    pub aof_base: Option<i64>,
}

impl RdbFile {
    /// The well-known aux fields, parsed (unknown or malformed ones are `None`).
    pub fn aux_info(&self) -> AuxInfo {
        let get = |k: &str| {
            self.aux
                .iter()
                .rev()
                .find(|(key, _)| key.as_ref() == k.as_bytes())
                .and_then(|(_, v)| std::str::from_utf8(v).ok().map(str::to_owned))
        };
        let int = |k: &str| get(k).and_then(|v| v.parse().ok());
        AuxInfo {
            redis_ver: get("redis-ver"),
            ctime: int("ctime"),
            used_mem: int("used-mem"),
            repl_stream_db: int("repl-stream-db"),
            repl_id: get("repl-id"),
            repl_offset: int("repl-offset"),
            aof_base: int("aof-base"),
        }
    }
}

/// Reads a complete RDB file, verifying its checksum.
pub fn read_rdb(input: &[u8]) -> Result<RdbFile, RdbError> {
    let mut r = RdbReader::new(input)?;
    let mut f = RdbFile {
        version: r.version(),
        ..RdbFile::default()
    };
    while let Some(item) = r.next_item()? {
        match item {
            RdbItem::Aux(k, v) => f.aux.push((k, v)),
            RdbItem::Function(code) => f.functions.push(code),
            RdbItem::Entry(e) => f.entries.push(e),
            RdbItem::SelectDb(_) | RdbItem::ResizeDb { .. } => {}
        }
    }
    Ok(f)
}

/// The newest RDB version RESTORE accepts: Redis 7.0 refuses anything newer.
const DUMP_MAX_VERSION: u16 = 10;

/// Decodes a DUMP payload as Redis 7.0's RESTORE does: the footer (version ≤ 10,
/// CRC64) must verify, then the value must parse.
pub fn parse_dump_payload(payload: &[u8]) -> Result<RdbValue, RdbError> {
    if payload.len() < 10 {
        return Err(RdbError::new(0, Reason::DumpFooter));
    }
    let body_len = payload.len() - 10;
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let stored = u64::from_le_bytes(footer[2..10].try_into().unwrap_or([0; 8]));
    if version > DUMP_MAX_VERSION || crc64(0, &payload[..body_len + 2]) != stored {
        return Err(RdbError::new(body_len, Reason::DumpFooter));
    }
    let mut c = Cursor {
        buf: &payload[..body_len],
        pos: 0,
    };
    let t = c.u8()?;
    read_object(&mut c, t)
}

/// Decodes a FUNCTION DUMP payload: `FUNCTION2` records (one library's code
/// each), then the DUMP footer (version ≤ 10, CRC64). `None` when the footer
/// does not verify or a record is not a function.
pub fn parse_functions_payload(payload: &[u8]) -> Option<Vec<Bytes>> {
    if payload.len() < 10 {
        return None;
    }
    let body_len = payload.len() - 10;
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let stored = u64::from_le_bytes(footer[2..10].try_into().unwrap_or([0; 8]));
    if version > DUMP_MAX_VERSION || crc64(0, &payload[..body_len + 2]) != stored {
        return None;
    }
    let mut c = Cursor {
        buf: &payload[..body_len],
        pos: 0,
    };
    let mut out = Vec::new();
    while c.pos < body_len {
        if c.u8().ok()? != crate::op::FUNCTION2 {
            return None;
        }
        out.push(c.string().ok()?);
    }
    Some(out)
}
