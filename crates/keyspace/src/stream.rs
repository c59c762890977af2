//! The stream type and its entry commands: XADD, XLEN, XRANGE, XREVRANGE,
//! XDEL, XTRIM, XSETID, XREAD and XREADGROUP (consumer groups themselves are
//! in [`crate::stream_group`]).
//!
//! A stream's entries are a [`Log`]: Redis's listpack nodes, each one pack
//! of entries with ids as deltas and repeated field names left out, found
//! by first id in a `BTreeMap`, so seeks and ranges are O(log n) plus one
//! node. The nodes are Redis's (`stream-node-max-entries`, `-bytes`), which
//! shows through where Redis's do: approximate (`~`) trimming removes whole
//! nodes only, and XINFO STREAM counts them.
//!
//! Every write propagates what Redis 7.0 propagates (t_stream.c): XADD with
//! the concrete id and an exact (`=`) trim argument, XREADGROUP as one
//! `XCLAIM … FORCE JUSTID LASTID` per delivered entry, so a replica never
//! needs the master's clock or node layout.

use crate::db::Lookup;
use crate::errors::{self, err};
pub(crate) use crate::stream_log::Log;
use crate::value::Value;
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;
use std::collections::{BTreeMap, BTreeSet};

pub use shardis_rdb::StreamId;

/// The group's `entries_read` when unknown (Redis's SCG_INVALID_ENTRIES_READ).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// A stream value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// Live entries, packed in Redis's nodes (see [`Log`]).
    pub(crate) entries: Log,
    /// The last id ever added (may exceed the last live entry).
    pub(crate) last_id: StreamId,
    /// The first live entry's id as Redis records it (0-0 when emptied by XDEL).
    pub(crate) first_id: StreamId,
    /// The greatest id deleted by XDEL.
    pub(crate) max_deleted: StreamId,
    /// Entries ever added.
    pub(crate) entries_added: u64,
    /// Consumer groups by name (Redis keeps them in a radix tree: name order).
    pub(crate) groups: BTreeMap<Bytes, Group>,
}

/// One entry's field/value list in one allocation: each item as a u32
/// little-endian length and its bytes (a `Vec<Bytes>` would cost 32 bytes
/// and an allocation per item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Box<[u8]>);

impl Fields {
    /// Encodes `items` (copied).
    pub fn new<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Fields {
        let mut v = Vec::new();
        for it in items {
            v.extend_from_slice(&(it.len() as u32).to_le_bytes());
            v.extend_from_slice(it);
        }
        Fields(v.into_boxed_slice())
    }

    /// The items in order: field, value, field, value…
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let n = u32::from_le_bytes(*len) as usize;
            let (item, next) = tail.split_at(n);
            rest = next;
            Some(item)
        })
    }
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// The last id delivered to the group.
    pub(crate) last_id: StreamId,
    /// Logical read counter, or [`ENTRIES_READ_UNKNOWN`].
    pub(crate) entries_read: i64,
    /// Delivered but unacknowledged entries.
    pub(crate) pel: BTreeMap<StreamId, Nack>,
    /// Consumers by name.
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
}

/// One pending entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Nack {
    /// The consumer that owns it.
    pub(crate) consumer: Bytes,
    /// Last delivery, Unix ms.
    pub(crate) delivery_time: u64,
    /// Times delivered.
    pub(crate) delivery_count: u64,
}

/// A consumer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// Last time it was seen, Unix ms.
    pub(crate) seen_time: u64,
    /// Ids of the group's pending entries it owns.
    pub(crate) pel: BTreeSet<StreamId>,
}

/// The largest id.
pub const MAX_ID: StreamId = StreamId {
    ms: u64::MAX,
    seq: u64::MAX,
};
const ZERO_ID: StreamId = StreamId { ms: 0, seq: 0 };

/// `id + 1` (Redis's streamIncrID); `None` past the largest id.
pub(crate) fn incr(id: StreamId) -> Option<StreamId> {
    if id.seq < u64::MAX {
        Some(StreamId {
            ms: id.ms,
            seq: id.seq + 1,
        })
    } else if id.ms < u64::MAX {
        Some(StreamId {
            ms: id.ms + 1,
            seq: 0,
        })
    } else {
        None
    }
}

/// `id - 1` (streamDecrID); `None` below 0-0.
fn decr(id: StreamId) -> Option<StreamId> {
    if id.seq > 0 {
        Some(StreamId {
            ms: id.ms,
            seq: id.seq - 1,
        })
    } else if id.ms > 0 {
        Some(StreamId {
            ms: id.ms - 1,
            seq: u64::MAX,
        })
    } else {
        None
    }
}

/// `ms-seq` as a bulk string.
pub(crate) fn id_bytes(id: StreamId) -> Bytes {
    Bytes::from(format!("{}-{}", id.ms, id.seq))
}

pub(crate) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id_bytes(id))
}

/// Redis's `string2ull`: a canonical non-negative i64, or what `strtoull`
/// accepts in full (leading blanks, a sign, digits).
fn string2ull(b: &[u8]) -> Option<u64> {
    if let Some(n) = shardis_protocol::decode::parse_int(b) {
        return (n >= 0).then_some(n as u64);
    }
    let s = std::str::from_utf8(b).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// How an id argument may be written.
#[derive(Clone, Copy, PartialEq)]
enum IdForm {
    /// `-` and `+` allowed (range ends).
    Range,
    /// Plain ids only.
    Strict,
    /// Plain ids, and `ms-*` (XADD).
    Add,
}

/// streamGenericParseIDOrReply: `(id, seq_given)`; a missing sequence is
/// `missing_seq`.
fn parse_id_form(b: &[u8], missing_seq: u64, form: IdForm) -> Result<(StreamId, bool), Reply> {
    let invalid = || err(crate::errors::INVALID_STREAM_ID);
    if b.len() > 127 {
        return Err(invalid());
    }
    if b == b"-" || b == b"+" {
        if form != IdForm::Range {
            return Err(invalid());
        }
        return Ok((if b == b"-" { ZERO_ID } else { MAX_ID }, true));
    }
    let (ms_part, seq_part) = match b.iter().position(|&c| c == b'-') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid)?;
    match seq_part {
        Some(b"*") if form == IdForm::Add => Ok((StreamId { ms, seq: 0 }, false)),
        Some(s) => Ok((
            StreamId {
                ms,
                seq: string2ull(s).ok_or_else(invalid)?,
            },
            true,
        )),
        None => Ok((
            StreamId {
                ms,
                seq: missing_seq,
            },
            true,
        )),
    }
}

/// A plain id (`ms` or `ms-seq`), as streamParseStrictIDOrReply.
pub(crate) fn parse_strict_id(b: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id_form(b, missing_seq, IdForm::Strict).map(|(id, _)| id)
}

/// An id that may also be `-` or `+` (streamParseIDOrReply).
pub(crate) fn parse_id(b: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id_form(b, missing_seq, IdForm::Range).map(|(id, _)| id)
}

/// A range end as XRANGE/XPENDING take it: `-`, `+`, an id, or `(id`
/// (exclusive), already moved past the excluded id.
pub(crate) fn parse_range_end(b: &[u8], start: bool) -> Result<StreamId, Reply> {
    let missing_seq = if start { 0 } else { u64::MAX };
    if b.len() > 1 && b[0] == b'(' {
        let id = parse_strict_id(&b[1..], missing_seq)?;
        let moved = if start { incr(id) } else { decr(id) };
        return moved.ok_or_else(|| {
            Reply::Error(format!(
                "ERR invalid {} ID for the interval",
                if start { "start" } else { "end" }
            ))
        });
    }
    parse_id(b, missing_seq)
}

impl Stream {
    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the stream has no entries (streams may be empty).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last live entry's id, or 0-0 (streamLastValidID).
    fn last_valid_id(&self) -> StreamId {
        self.entries.last_id().unwrap_or(ZERO_ID)
    }

    /// Entries with ids in `start..=end`, forward or reversed.
    pub(crate) fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (StreamId, Fields)> + '_> {
        self.entries.range(start, end, rev)
    }

    /// Removes one entry; true if it existed (XDEL's bookkeeping is the caller's).
    fn delete(&mut self, id: StreamId) -> bool {
        self.entries.delete(id)
    }

    /// Appends an entry (its id is above every other).
    fn append(&mut self, id: StreamId, fields: Fields) {
        self.entries.append(id, fields);
    }

    /// Number of listpack nodes (XINFO's radix-tree-keys).
    pub(crate) fn node_count(&self) -> usize {
        self.entries.node_count()
    }

    /// Redis's streamRangeHasTombstones from `start` to the end.
    pub(crate) fn has_tombstones_after(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted == ZERO_ID {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry.
    pub(crate) fn estimate_entries_read(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.entries.is_empty() && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        if self.max_deleted == ZERO_ID || self.max_deleted < self.first_id {
            let len = self.entries.len() as i64;
            if id < self.first_id {
                return self.entries_added as i64 - len;
            } else if id == self.first_id {
                return self.entries_added as i64 - len + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// The entries as the RDB crate's plain form.
    pub fn to_rdb(&self) -> shardis_rdb::RdbStream {
        use shardis_rdb::{PendingEntry, StreamConsumer, StreamEntry, StreamGroup};
        shardis_rdb::RdbStream {
            entries: self
                .entries
                .iter()
                .map(|(id, f)| StreamEntry {
                    id,
                    fields: {
                        let items: Vec<&[u8]> = f.iter().collect();
                        items
                            .chunks(2)
                            .map(|p| (Bytes::copy_from_slice(p[0]), Bytes::copy_from_slice(p[1])))
                            .collect()
                    },
                })
                .collect(),
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted_id: self.max_deleted,
            entries_added: self.entries_added,
            groups: self
                .groups
                .iter()
                .map(|(name, g)| StreamGroup {
                    name: name.clone(),
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                    pel: g
                        .pel
                        .iter()
                        .map(|(id, n)| PendingEntry {
                            id: *id,
                            delivery_time_ms: n.delivery_time,
                            delivery_count: n.delivery_count,
                        })
                        .collect(),
                    consumers: g
                        .consumers
                        .iter()
                        .map(|(cname, c)| StreamConsumer {
                            name: cname.clone(),
                            seen_time_ms: c.seen_time,
                            active_time_ms: c.seen_time,
                            pending: c.pel.iter().copied().collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// A stream from its RDB form; `Err` for what Redis refuses to load (a
    /// pending entry with no owner, or owned by a consumer twice).
    pub fn from_rdb(s: shardis_rdb::RdbStream) -> Result<Stream, String> {
        let mut out = Stream {
            entries: Log::default(),
            last_id: s.last_id,
            first_id: s.first_id,
            max_deleted: s.max_deleted_id,
            entries_added: s.entries_added,
            groups: BTreeMap::new(),
        };
        // Nodes are filled as appending would: the file's layout is not kept.
        for e in s.entries {
            let flat = Fields::new(e.fields.iter().flat_map(|(f, v)| [&f[..], &v[..]]));
            out.append(e.id, flat);
        }
        for g in s.groups {
            let mut pel: BTreeMap<StreamId, (u64, u64)> = g
                .pel
                .iter()
                .map(|p| (p.id, (p.delivery_time_ms, p.delivery_count)))
                .collect();
            let mut group = Group {
                last_id: g.last_id,
                entries_read: g.entries_read,
                pel: BTreeMap::new(),
                consumers: BTreeMap::new(),
            };
            for c in g.consumers {
                let mut consumer = Consumer {
                    seen_time: c.seen_time_ms,
                    pel: BTreeSet::new(),
                };
                for id in c.pending {
                    let (t, n) = pel
                        .remove(&id)
                        .ok_or("consumer pending entry not in the group PEL")?;
                    group.pel.insert(
                        id,
                        Nack {
                            consumer: c.name.clone(),
                            delivery_time: t,
                            delivery_count: n,
                        },
                    );
                    consumer.pel.insert(id);
                }
                group.consumers.insert(c.name, consumer);
            }
            if !pel.is_empty() {
                return Err("group pending entry with no consumer".into());
            }
            out.groups.insert(g.name, group);
        }
        Ok(out)
    }
}

/// The stream at `key`: `Ok(None)` if missing, WRONGTYPE if not a stream.
pub(crate) fn stream_mut<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut Stream>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, mode) {
        None => Ok(None),
        Some(f) => match &mut f.slot.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

/// `[id, [field, value, …]]`.
pub(crate) fn entry_reply(id: StreamId, fields: &Fields) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().map(Reply::bulk).collect()),
    ])
}

/// The trimming part of XADD/XTRIM's arguments (streamAddTrimArgs).
#[derive(Default)]
struct TrimArgs {
    strategy: Option<Trim>,
    approx: bool,
    limit: i64,
    /// Index of the MAXLEN/MINID value (the `~` is just before it).
    arg_idx: usize,
}

#[derive(Clone, Copy)]
enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// XADD's parsed options.
#[derive(Default)]
struct AddArgs {
    trim: TrimArgs,
    nomkstream: bool,
    /// An explicit id and whether its sequence was given (`ms-*` is not).
    id: Option<(StreamId, bool)>,
}

/// streamParseAddOrTrimArgsOrReply: returns the index of XADD's id argument
/// (`*` or explicit) or, for XTRIM, the end.
fn parse_add_or_trim(
    obey_master: bool,
    args: &[Bytes],
    xadd: bool,
) -> Result<(AddArgs, usize), Reply> {
    let mut a = AddArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
            a.trim.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                a.trim.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = &args[i + 1];
            a.trim.strategy = Some(if maxlen {
                let n = parse_i64(v)?;
                if n < 0 {
                    return Err(err("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(v, 0)?)
            });
            i += 1;
            a.trim.arg_idx = i;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            let n = parse_i64(&args[i + 1])?;
            if n < 0 {
                return Err(err("ERR The LIMIT argument must be >= 0."));
            }
            a.trim.limit = n;
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_form(opt, 0, IdForm::Add)?);
            break;
        } else {
            return Err(err(errors::SYNTAX));
        }
        i += 1;
    }
    if a.trim.limit != 0 && a.trim.strategy.is_none() {
        return Err(err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.strategy.is_none() {
        return Err(err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if obey_master {
        // The master rewrote the trim to an exact one: never limit it.
        a.trim.limit = 0;
    } else if limit_given {
        if !a.trim.approx {
            return Err(err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else {
        // Redis's default LIMIT for `~`: 100 nodes' worth of entries.
        let per_node = crate::pack::limits().stream_node_entries as i64;
        a.trim.limit = if a.trim.approx { 100 * per_node } else { 0 };
    }
    Ok((a, i))
}

/// streamTrim: removes entries from the head; returns how many. Whole
/// nodes go first; `~` stops at the first node it cannot remove whole,
/// an exact trim removes what is left from inside that node.
fn trim(s: &mut Stream, t: &TrimArgs) -> u64 {
    let Some(strategy) = t.strategy else {
        return 0;
    };
    let limit = t.limit.max(0) as u64;
    let mut deleted = 0u64;
    while let Some((_, n)) = s.entries.first_node() {
        let len = s.entries.len() as u64;
        if let Trim::MaxLen(max) = strategy {
            if len <= max {
                break;
            }
        }
        let live = n.live as u64;
        if limit > 0 && deleted + live > limit {
            break;
        }
        let whole = match strategy {
            Trim::MaxLen(max) => len - live >= max,
            Trim::MinId(min) => n.last < min,
        };
        if whole {
            deleted += s.entries.drop_first_node() as u64;
            continue;
        }
        if t.approx {
            break;
        }
        // Exact: the rest comes out of this node, entry by entry.
        while let Some(first) = s.entries.first_id() {
            let more = match strategy {
                Trim::MaxLen(max) => s.entries.len() as u64 > max,
                Trim::MinId(min) => first < min,
            };
            if !more {
                break;
            }
            s.entries.pop_first();
            deleted += 1;
        }
        break;
    }
    if deleted > 0 {
        s.first_id = s.entries.first_id().unwrap_or(ZERO_ID);
    }
    deleted
}

/// What an approximate trim propagates: `~` becomes `=` and the value the
/// exact outcome (streamRewriteApproxSpecifier / streamRewriteTrimArgument).
fn rewrite_trim(argv: &mut [Bytes], s: &Stream, t: &TrimArgs) {
    if !t.approx {
        return;
    }
    argv[t.arg_idx - 1] = Bytes::from_static(b"=");
    argv[t.arg_idx] = match t.strategy {
        Some(Trim::MaxLen(_)) => Bytes::from(s.entries.len().to_string()),
        _ => id_bytes(s.entries.first_id().unwrap_or(MAX_ID)),
    };
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
pub fn xadd(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (a, i) = match parse_add_or_trim(ctx.obey_master, args, true) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let nfields = args.len().saturating_sub(i + 1);
    if nfields < 2 || nfields % 2 == 1 {
        return Reply::Error(errors::wrong_arity("xadd"));
    }
    if let Some((ZERO_ID, true)) = a.id {
        return err("ERR The ID specified in XADD must be greater than 0-0");
    }
    let db = ctx.db;
    match stream_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(None) if a.nomkstream => return Reply::Nil,
        Ok(None) => ks.insert_new(ctx, db, &args[1], Value::Stream(Box::default()), None),
        Ok(Some(_)) => {}
    }
    let now = ctx.now_ms;
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Write) {
        Ok(Some(s)) => s,
        _ => unreachable!("just checked or created"),
    };
    if s.last_id == MAX_ID {
        return err("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let too_small =
        || err("ERR The ID specified in XADD is equal or smaller than the target stream top item");
    let id = match a.id {
        Some((id, true)) => id,
        Some((id, false)) if s.last_id.ms == id.ms => {
            if s.last_id.seq == u64::MAX {
                return too_small();
            }
            StreamId {
                ms: id.ms,
                seq: s.last_id.seq + 1,
            }
        }
        Some((id, false)) => id,
        None if now > s.last_id.ms => StreamId { ms: now, seq: 0 },
        None => incr(s.last_id).expect("not exhausted"),
    };
    if id <= s.last_id {
        return too_small();
    }
    if s.entries.is_empty() {
        s.first_id = id;
    }
    // Stored: copies, never slices of the request buffer.
    s.append(id, Fields::new(args[i + 1..].iter().map(|a| &a[..])));
    s.last_id = id;
    s.entries_added += 1;
    ctx.stats.dirty += 1;
    ctx.notify(crate::notify::STREAM, "xadd", &args[1]);
    let mut argv = args.to_vec();
    if a.trim.strategy.is_some() {
        if trim(s, &a.trim) > 0 {
            ctx.notify(crate::notify::STREAM, "xtrim", &args[1]);
        }
        rewrite_trim(&mut argv, s, &a.trim);
    }
    if !matches!(a.id, Some((_, true))) {
        argv[i] = id_bytes(id);
    }
    ctx.propagate(argv);
    ctx.ready_keys.push((db, args[1].clone()));
    id_reply(id)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (a, _) = match parse_add_or_trim(ctx.obey_master, args, false) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) => s,
    };
    let deleted = trim(s, &a.trim);
    if deleted > 0 {
        ctx.notify(crate::notify::STREAM, "xtrim", &args[1]);
        let mut argv = args.to_vec();
        rewrite_trim(&mut argv, s, &a.trim);
        ctx.stats.dirty += deleted;
        ctx.propagate(argv);
    }
    Reply::Integer(deleted as i64)
}

/// XLEN key
pub fn xlen(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    match stream_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => e,
        Ok(None) => Reply::Integer(0),
        Ok(Some(s)) => Reply::Integer(s.len() as i64),
    }
}

/// XRANGE key start end [COUNT count] / XREVRANGE key end start [COUNT count]
pub fn xrange(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], rev: bool) -> Reply {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = match parse_range_end(start_arg, true) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let end = match parse_range_end(end_arg, false) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = match parse_i64(&args[j + 1]) {
                Ok(n) => n.max(0),
                Err(e) => return e,
            };
            j += 2;
        } else {
            return err(errors::SYNTAX);
        }
    }
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return Reply::NilArray;
    }
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    Reply::Array(
        s.range(start, end, rev)
            .take(take)
            .map(|(id, f)| entry_reply(id, &f))
            .collect(),
    )
}

/// XDEL key id [id ...]
pub fn xdel(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match parse_strict_id(a, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let mut deleted = 0u64;
    let mut first_entry = false;
    for id in ids {
        if s.delete(id) {
            first_entry |= id == s.first_id;
            s.max_deleted = s.max_deleted.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.entries.is_empty() {
            s.first_id = ZERO_ID;
        } else if first_entry {
            s.first_id = s.entries.first_id().expect("not empty");
        }
        ctx.notify(crate::notify::STREAM, "xdel", &args[1]);
        ctx.stats.dirty += deleted;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(deleted as i64)
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let id = match parse_strict_id(&args[2], 0) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = ZERO_ID;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            entries_added = match parse_i64(&args[i + 1]) {
                Ok(n) if n < 0 => return err("ERR entries_added must be positive"),
                Ok(n) => n,
                Err(e) => return e,
            };
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            max_xdel = match parse_strict_id(&args[i + 1], 0) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if id < max_xdel {
                return err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
        } else {
            return err(errors::SYNTAX);
        }
        i += 2;
    }
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return err(errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if !s.entries.is_empty() {
        if id < s.last_valid_id() {
            return err(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.entries.len() as u64 > entries_added as u64 {
            return err(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    if id < s.max_deleted {
        return err("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if max_xdel != ZERO_ID {
        s.max_deleted = max_xdel;
    }
    ctx.stats.dirty += 1;
    ctx.notify(crate::notify::STREAM, "xsetid", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::OK
}

/// XREAD/XREADGROUP's parsed arguments.
struct ReadArgs {
    /// BLOCK's timeout in ms, if given.
    block: Option<u64>,
    count: usize,
    /// Index of the first key.
    streams_at: usize,
    nstreams: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

/// `ERR timeout is not an integer or out of range` / `… is negative`, in ms.
pub fn parse_block_timeout(b: &[u8]) -> Result<u64, Reply> {
    match shardis_protocol::decode::parse_int(b) {
        None => Err(err(errors::TIMEOUT_NOT_INTEGER)),
        Some(n) if n < 0 => Err(err(errors::TIMEOUT_NEGATIVE)),
        Some(n) => Ok(n as u64),
    }
}

fn parse_read(args: &[Bytes], xreadgroup: bool) -> Result<ReadArgs, Reply> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        streams_at: 0,
        nstreams: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = &args[i][..];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            i += 1;
            r.block = Some(parse_block_timeout(&args[i])?);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            r.count = parse_i64(&args[i])?.max(0) as usize;
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            r.streams_at = i + 1;
            let n = args.len() - r.streams_at;
            if !n.is_multiple_of(2) {
                // Redis 7.0 uses XREAD's text for XREADGROUP too.
                return Err(err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            r.nstreams = n / 2;
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !xreadgroup {
                return Err(err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            // Copied: a group read may store the consumer's name.
            r.group = Some((
                Bytes::copy_from_slice(&args[i + 1]),
                Bytes::copy_from_slice(&args[i + 2]),
            ));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !xreadgroup {
                return Err(err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(err(errors::SYNTAX));
        }
        i += 1;
    }
    if r.streams_at == 0 {
        return Err(err(errors::SYNTAX));
    }
    if xreadgroup && r.group.is_none() {
        return Err(err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// The id XREAD waits after, per stream: `$` resolved, `>` as [`MAX_ID`].
fn read_ids(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    r: &ReadArgs,
) -> Result<Vec<StreamId>, Reply> {
    let mut ids = Vec::with_capacity(r.nstreams);
    for k in 0..r.nstreams {
        let key = &args[r.streams_at + k];
        let arg = &args[r.streams_at + r.nstreams + k];
        let s = stream_mut(ks, ctx, key, Lookup::Read)?;
        if let Some((group, _)) = &r.group {
            if s.as_ref().and_then(|s| s.groups.get(group)).is_none() {
                return Err(Reply::Error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(group)
                )));
            }
        }
        if &arg[..] == b"$" {
            if r.group.is_some() {
                return Err(err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            ids.push(s.map_or(ZERO_ID, |s| s.last_id));
        } else if &arg[..] == b">" {
            if r.group.is_none() {
                return Err(err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            ids.push(MAX_ID);
        } else {
            ids.push(parse_strict_id(arg, 0)?);
        }
    }
    Ok(ids)
}

/// What the server needs to block an XREAD/XREADGROUP: its BLOCK timeout in
/// ms (`None` without BLOCK or with malformed arguments, which the command
/// itself reports) and the index of its first key.
pub fn block_spec(args: &[Bytes], group: bool) -> Option<(u64, usize, usize)> {
    let r = parse_read(args, group).ok()?;
    Some((r.block?, r.streams_at, r.nstreams))
}

/// XREAD's `$` for a client about to block: the stream's last id now (0-0
/// if missing or not a stream), so the client later waits for what comes
/// after it. No side effects (no expiry, stats or access time).
pub fn dollar_id(ks: &Keyspace, ctx: &ExecContext, key: &[u8]) -> Bytes {
    let id = match ks.peek(ctx, ctx.db, key) {
        Some(Value::Stream(s)) => s.last_id,
        _ => ZERO_ID,
    };
    id_bytes(id)
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...] and
/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS …
///
/// Never blocks: with nothing to serve it replies NilArray, and the server
/// blocks the client if BLOCK was given (see the server's `blocking`).
pub fn xread(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], group: bool) -> Reply {
    let r = match parse_read(args, group) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let ids = match read_ids(ks, ctx, args, &r) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut out: Vec<(Bytes, Reply)> = Vec::new();
    let now = ctx.now_ms;
    for (k, &gt) in ids.iter().enumerate() {
        let key = &args[r.streams_at + k];
        let Ok(Some(s)) = stream_mut(ks, ctx, key, Lookup::Read) else {
            continue;
        };
        let entries = match &r.group {
            None => {
                if s.entries.is_empty() || s.last_valid_id() <= gt {
                    continue;
                }
                let Some(start) = incr(gt) else { continue };
                let take = if r.count == 0 { usize::MAX } else { r.count };
                Reply::Array(
                    s.range(start, MAX_ID, false)
                        .take(take)
                        .map(|(id, f)| entry_reply(id, &f))
                        .collect(),
                )
            }
            Some((gname, cname)) => {
                let history = gt != MAX_ID;
                let group_last = s.groups[gname].last_id;
                if !history && (s.entries.is_empty() || s.last_valid_id() <= group_last) {
                    continue;
                }
                if !s.groups[gname].consumers.contains_key(cname) {
                    ctx.notify(crate::notify::STREAM, "xgroup-createconsumer", key);
                }
                let (effects, reply) = if history {
                    crate::stream_group::read_history(s, gname, cname, gt, r.count, now)
                } else {
                    crate::stream_group::read_new(s, key, gname, cname, r.count, r.noack, now)
                };
                ctx.stats.dirty += 1;
                for e in effects {
                    ctx.propagate(e);
                }
                reply
            }
        };
        out.push((key.clone(), entries));
    }
    if out.is_empty() {
        return Reply::NilArray;
    }
    if ctx.resp3 {
        Reply::Map(out.into_iter().map(|(k, v)| (Reply::Bulk(k), v)).collect())
    } else {
        Reply::Array(
            out.into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::DbIndex;
    use shardis_protocol::Reply;

    fn arr(v: Vec<Reply>) -> Reply {
        Reply::Array(v)
    }

    fn entry(id: &str, fields: &[&str]) -> Reply {
        arr(vec![
            bulk(id),
            arr(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn xadd_ids_and_errors() {
        let mut t = T::new();
        assert_eq!(t.run("XADD s 1-1 a 1"), bulk("1-1"));
        assert_eq!(t.run("XADD s 1-* b 2"), bulk("1-2"));
        assert_eq!(t.run("XADD s 5 c 3"), bulk("5-0"));
        assert_eq!(
            t.run("XADD s 5 c 3"),
            err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
        );
        assert_eq!(
            t.run("XADD s2 0-0 a 1"),
            err("ERR The ID specified in XADD must be greater than 0-0")
        );
        assert_eq!(
            t.run("XADD s 1-x a 1"),
            err("ERR Invalid stream ID specified as stream command argument")
        );
        assert_eq!(
            t.run("XADD s * a 1 b"),
            err("ERR wrong number of arguments for 'xadd' command")
        );
        assert_eq!(t.run("XADD nos NOMKSTREAM * a 1"), Reply::Nil);
        assert_eq!(t.run("EXISTS nos"), int(0));
        // `*` uses the clock.
        assert_eq!(t.run("XADD s * d 4"), bulk("1000000000000-0"));
        assert_eq!(t.run("XADD s * d 5"), bulk("1000000000000-1"));
        let eff = t.effects();
        assert_eq!(eff[1], "XADD s 1-2 b 2");
        assert_eq!(eff[4], "XADD s 1000000000000-1 d 5");
        assert_eq!(t.run("XLEN s"), int(5));
        assert_eq!(t.run("TYPE s"), Reply::Simple("stream"));
        assert_eq!(t.run("OBJECT ENCODING s"), bulk("stream"));
        t.run("SET str x");
        assert_eq!(t.run("XADD str * a 1"), err(crate::errors::WRONGTYPE));
    }

    #[test]
    fn ranges() {
        let mut t = T::new();
        for i in 1..=5 {
            t.run(&format!("XADD s {i}-0 f {i}"));
        }
        assert_eq!(
            t.run("XRANGE s - + COUNT 2"),
            arr(vec![entry("1-0", &["f", "1"]), entry("2-0", &["f", "2"])])
        );
        assert_eq!(
            t.run("XRANGE s (1-0 3"),
            arr(vec![entry("2-0", &["f", "2"]), entry("3-0", &["f", "3"])])
        );
        assert_eq!(
            t.run("XREVRANGE s + (4 COUNT 1"),
            arr(vec![entry("5-0", &["f", "5"])])
        );
        assert_eq!(t.run("XRANGE s - + COUNT 0"), Reply::NilArray);
        assert_eq!(t.run("XRANGE nos - +"), arr(vec![]));
        assert_eq!(
            t.run("XRANGE s (- +"),
            err("ERR Invalid stream ID specified as stream command argument")
        );
        assert_eq!(
            t.run("XRANGE s (18446744073709551615-18446744073709551615 +"),
            err("ERR invalid start ID for the interval")
        );
    }

    #[test]
    fn trimming_and_propagation() {
        let mut t = T::new();
        for i in 1..=10 {
            t.run(&format!("XADD s {i}-0 f v"));
        }
        t.effects();
        assert_eq!(t.run("XTRIM s MAXLEN 7"), int(3));
        assert_eq!(t.run("XTRIM s MINID 6"), int(2));
        assert_eq!(t.run("XLEN s"), int(5));
        // Approximate: a node is 100 entries, so nothing goes.
        assert_eq!(t.run("XTRIM s MAXLEN ~ 1"), int(0));
        assert_eq!(t.effects(), vec!["XTRIM s MAXLEN 7", "XTRIM s MINID 6"]);
        for i in 11..=250 {
            t.run(&format!("XADD s {i}-0 f v"));
        }
        t.effects();
        assert_eq!(t.run("XLEN s"), int(245));
        // The first node got 100 entries, 5 of them trimmed before: its 95
        // live ones go whole; the second node cannot go whole.
        assert_eq!(t.run("XTRIM s MAXLEN ~ 100"), int(95));
        assert_eq!(t.effects(), vec!["XTRIM s MAXLEN = 150"]);
        assert_eq!(t.run("XADD s MAXLEN ~ 10 * f v"), bulk("1000000000000-0"));
        assert_eq!(t.effects(), vec!["XADD s MAXLEN = 51 1000000000000-0 f v"]);
        assert_eq!(
            t.run("XTRIM s MAXLEN 1 LIMIT 10"),
            err("ERR syntax error, LIMIT cannot be used without the special ~ option")
        );
        assert_eq!(
            t.run("XTRIM s LIMIT 10"),
            err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
        );
    }

    #[test]
    fn xdel_and_xsetid() {
        let mut t = T::new();
        t.run("XADD s 1-0 a 1");
        t.run("XADD s 2-0 a 2");
        assert_eq!(t.run("XDEL s 1-0 3-0"), int(1));
        assert_eq!(
            t.run("XSETID s 1-5"),
            err("ERR The ID specified in XSETID is smaller than the target stream top item")
        );
        assert_eq!(t.run("XSETID s 9-0"), Reply::OK);
        assert_eq!(
            t.run("XADD s 5-0 a 1"),
            err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
        );
        assert_eq!(t.run("XSETID nos 1-0"), err("ERR no such key"));
        assert_eq!(t.run("XDEL s 2-0"), int(1));
        assert_eq!(t.run("XLEN s"), int(0));
        assert_eq!(t.run("EXISTS s"), int(1));
        assert_eq!(
            t.run("XSETID s 1-0"),
            err("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id")
        );
    }

    #[test]
    fn fields_encoding_and_nodes() {
        let f = super::Fields::new([&b""[..], b"a", &[0u8; 300][..]]);
        let items: Vec<&[u8]> = f.iter().collect();
        assert_eq!(items, vec![&b""[..], b"a", &[0u8; 300][..]]);
        let mut t = T::new();
        for i in 1..=150 {
            t.run(&format!("XADD s {i}-0 f v"));
        }
        t.run("XADD s 151-0 f v");
        let nodes = |t: &mut T| match t.ks.peek(&t.ctx, DbIndex(0), b"s") {
            Some(crate::Value::Stream(s)) => s.node_count(),
            _ => 0,
        };
        assert_eq!(nodes(&mut t), 2);
        // A node whose entries are all deleted goes.
        let ids: Vec<String> = (101..=151).map(|i| format!("{i}-0")).collect();
        t.run(&format!("XDEL s {}", ids.join(" ")));
        assert_eq!(nodes(&mut t), 1);
        t.ctx.resp3 = true;
        assert!(matches!(t.run("XREAD COUNT 1 STREAMS s 0"), Reply::Map(_)));
    }

    #[test]
    fn xread_plain() {
        let mut t = T::new();
        t.run("XADD a 1-0 f 1");
        t.run("XADD a 2-0 f 2");
        assert_eq!(
            t.run("XREAD COUNT 1 STREAMS a nokey 0 0"),
            arr(vec![arr(vec![
                bulk("a"),
                arr(vec![entry("1-0", &["f", "1"])])
            ])])
        );
        assert_eq!(t.run("XREAD STREAMS a $"), Reply::NilArray);
        assert_eq!(t.run("XREAD BLOCK 10 STREAMS a 2"), Reply::NilArray);
        assert_eq!(
            t.run("XREAD STREAMS a b 0"),
            err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
        );
        assert_eq!(
            t.run("XREAD BLOCK -1 STREAMS a 0"),
            err("ERR timeout is negative")
        );
    }
}
