//! The base file of an AOF (Redis's `rewriteAppendOnlyFile`): with
//! `aof-use-rdb-preamble yes` an RDB marked `aof-base:1`; with `no` the
//! commands that rebuild the data set, shaped as Redis 7.0's
//! `rewriteAppendOnlyFileRio` writes them.
//!
//! Both forms come from the running fork-free snapshot
//! ([`crate::repl::walk_snapshot`]): the shards keep serving, and the file is
//! written in pieces of about 64 KiB, so the base is never whole in memory
//! (one key's commands at most, as the RDB form holds one key's encoding).
//!
//! The command form:
//!
//! ```text
//! #TS:<unix seconds>                      with aof-timestamp-enabled yes
//! FUNCTION LOAD <code>                    one per library
//! SELECT <db>                             whenever the db changes (each shard walks db 0, 1, …)
//! SET k v                                 strings
//! RPUSH | SADD | HMSET | ZADD k …         at most 64 items (pairs for hashes, zsets) per command
//! XADD … XSETID … XGROUP CREATE … XCLAIM … | XGROUP CREATECONSUMER …   streams
//! PEXPIREAT k <unix ms>                   after a key that has a TTL
//! ```

use super::{now_sec, AofConfig};
use crate::shard::Shard;
use crate::shared::strerror;
use bytes::{BufMut, Bytes, BytesMut};
use shardis_rdb::{RdbEntry, RdbStream, RdbValue, StreamId};
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
const ITEMS_PER_CMD: usize = 64;

/// Bytes gathered before a write to the file.
const WRITE_AT: usize = 64 * 1024;

fn write_error(e: &std::io::Error) -> String {
    format!(
        "Write error writing append only file on disk: {}",
        strerror(e)
    )
}

/// Writes a base file at `path` from a snapshot taken now (at start-up, of
/// the empty data set, as Redis's `aofOpenIfNeededOnServerStart` does).
pub(super) async fn write_base(
    shard: &Rc<Shard>,
    cfg: &AofConfig,
    path: &Path,
) -> Result<(), String> {
    let mut file = std::fs::File::create(path).map_err(|e| {
        format!(
            "Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {}",
            strerror(&e)
        )
    })?;
    crate::persist::claim(shard).await;
    crate::persist::begin_snapshot(shard).await;
    let r = produce_base(shard, cfg, &mut file).await;
    crate::persist::release(shard);
    r?;
    file.sync_all().map_err(|e| write_error(&e))
}

/// Streams the running snapshot into `file` as a base: an RDB, or commands
/// without `aof-use-rdb-preamble`.
pub(super) async fn produce_base(
    shard: &Rc<Shard>,
    cfg: &AofConfig,
    file: &mut std::fs::File,
) -> Result<(), String> {
    if !cfg.rdb_preamble {
        return produce_commands(shard, cfg.timestamps, file).await;
    }
    let mut failed = None;
    let ok = crate::repl::produce_rdb_with(
        shard,
        None,
        true,
        crate::repl::SAVE_STEP,
        |chunk: Bytes| match file.write_all(&chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(write_error(&e));
                false
            }
        },
        || true,
    )
    .await;
    match failed {
        Some(e) => Err(e),
        None if !ok => Err("snapshot aborted".into()),
        None => Ok(()),
    }
}

/// The command form (Redis's `rewriteAppendOnlyFileRio`).
async fn produce_commands(
    shard: &Rc<Shard>,
    timestamps: bool,
    file: &mut std::fs::File,
) -> Result<(), String> {
    let mut out = BytesMut::with_capacity(WRITE_AT * 2);
    if timestamps {
        out.extend_from_slice(format!("#TS:{}\r\n", now_sec()).as_bytes());
    }
    // Read after the snapshot's barrier, as the RDB form reads them.
    for code in crate::script::functions::library_codes() {
        function_load(&mut out, &code);
    }
    let mut failed = None;
    let mut flush = |out: &mut BytesMut| match file.write_all(out) {
        Ok(()) => {
            out.clear();
            true
        }
        Err(e) => {
            failed = Some(write_error(&e));
            false
        }
    };
    let mut db = None;
    let walked = crate::repl::walk_snapshot(
        shard,
        || true,
        |entries| {
            for e in &entries {
                if db != Some(e.db) {
                    select(&mut out, e.db);
                    db = Some(e.db);
                }
                rebuild_key(&mut out, e);
                if out.len() >= WRITE_AT && !flush(&mut out) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    if walked {
        flush(&mut out);
    }
    match failed {
        Some(e) => Err(e),
        None if !walked => Err("snapshot aborted".into()),
        None => Ok(()),
    }
}

// ------------------------------------------------------------------ encoding

/// `*<n>\r\n`
fn array(out: &mut BytesMut, n: usize) {
    out.put_u8(b'*');
    shardis_base::put_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`
fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.put_u8(b'$');
    shardis_base::put_decimal(out, b.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn bulk_int(out: &mut BytesMut, n: i64) {
    bulk(out, n.to_string().as_bytes());
}

fn bulk_u64(out: &mut BytesMut, n: u64) {
    bulk(out, n.to_string().as_bytes());
}

fn bulk_id(out: &mut BytesMut, id: StreamId) {
    bulk(out, format!("{}-{}", id.ms, id.seq).as_bytes());
}

fn select(out: &mut BytesMut, db: usize) {
    array(out, 2);
    bulk(out, b"SELECT");
    bulk_u64(out, db as u64);
}

fn function_load(out: &mut BytesMut, code: &[u8]) {
    array(out, 3);
    bulk(out, b"FUNCTION");
    bulk(out, b"LOAD");
    bulk(out, code);
}

/// `cmd key item…` with at most [`ITEMS_PER_CMD`] items per command, each
/// item `width` arguments written by `item`.
fn batched<T>(
    out: &mut BytesMut,
    cmd: &[u8],
    key: &[u8],
    items: &[T],
    width: usize,
    mut item: impl FnMut(&mut BytesMut, &T),
) {
    for chunk in items.chunks(ITEMS_PER_CMD) {
        array(out, 2 + chunk.len() * width);
        bulk(out, cmd);
        bulk(out, key);
        for it in chunk {
            item(out, it);
        }
    }
}

/// The commands that rebuild one key, then its TTL.
fn rebuild_key(out: &mut BytesMut, e: &RdbEntry) {
    let key = &e.key[..];
    match &e.value {
        RdbValue::String(v) => {
            array(out, 3);
            bulk(out, b"SET");
            bulk(out, key);
            bulk(out, v);
        }
        RdbValue::List(items) => batched(out, b"RPUSH", key, items, 1, |o, v| bulk(o, v)),
        RdbValue::Set(items) => batched(out, b"SADD", key, items, 1, |o, v| bulk(o, v)),
        RdbValue::Hash(pairs) => batched(out, b"HMSET", key, pairs, 2, |o, (f, v)| {
            bulk(o, f);
            bulk(o, v);
        }),
        // Scores as Redis 7.0's rioWriteBulkDouble prints them (%.17g: exact).
        RdbValue::ZSet(pairs) => batched(out, b"ZADD", key, pairs, 2, |o, (m, score)| {
            bulk(o, shardis_protocol::reply::format_double(*score).as_bytes());
            bulk(o, m);
        }),
        RdbValue::Stream(s) => rebuild_stream(out, key, s),
    }
    if let Some(ms) = e.expire_at_ms {
        array(out, 3);
        bulk(out, b"PEXPIREAT");
        bulk(out, key);
        bulk_u64(out, ms);
    }
}

/// A stream (Redis's `rewriteStreamObject`): its entries, its ids and
/// counters, then each group with its consumers, in name order (the groups
/// and consumers come sorted, as Redis's radix trees hand them out).
fn rebuild_stream(out: &mut BytesMut, key: &[u8], s: &RdbStream) {
    if s.entries.is_empty() {
        // An empty stream: an entry added and trimmed away at once.
        array(out, 7);
        bulk(out, b"XADD");
        bulk(out, key);
        bulk(out, b"MAXLEN");
        bulk(out, b"0");
        bulk_id(out, StreamId { ms: 0, seq: 1 });
        bulk(out, b"x");
        bulk(out, b"y");
    }
    for entry in &s.entries {
        array(out, 3 + entry.fields.len() * 2);
        bulk(out, b"XADD");
        bulk(out, key);
        bulk_id(out, entry.id);
        for (f, v) in &entry.fields {
            bulk(out, f);
            bulk(out, v);
        }
    }
    // The last id may be past the last entry (XDEL), and the counters.
    array(out, 7);
    bulk(out, b"XSETID");
    bulk(out, key);
    bulk_id(out, s.last_id);
    bulk(out, b"ENTRIESADDED");
    bulk_u64(out, s.entries_added);
    bulk(out, b"MAXDELETEDID");
    bulk_id(out, s.max_deleted_id);
    for g in &s.groups {
        array(out, 7);
        bulk(out, b"XGROUP");
        bulk(out, b"CREATE");
        bulk(out, key);
        bulk(out, &g.name);
        bulk_id(out, g.last_id);
        bulk(out, b"ENTRIESREAD");
        bulk_int(out, g.entries_read);
        for c in &g.consumers {
            if c.pending.is_empty() {
                array(out, 5);
                bulk(out, b"XGROUP");
                bulk(out, b"CREATECONSUMER");
                bulk(out, key);
                bulk(out, &g.name);
                bulk(out, &c.name);
                continue;
            }
            for id in &c.pending {
                // The group's PEL holds each consumer's entries (the
                // snapshot's streams are consistent), in id order.
                let Ok(i) = g.pel.binary_search_by_key(id, |p| p.id) else {
                    continue;
                };
                let nack = &g.pel[i];
                array(out, 12);
                bulk(out, b"XCLAIM");
                bulk(out, key);
                bulk(out, &g.name);
                bulk(out, &c.name);
                bulk(out, b"0");
                bulk_id(out, *id);
                bulk(out, b"TIME");
                bulk_u64(out, nack.delivery_time_ms);
                bulk(out, b"RETRYCOUNT");
                bulk_u64(out, nack.delivery_count);
                bulk(out, b"JUSTID");
                bulk(out, b"FORCE");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardis_rdb::{PendingEntry, StreamConsumer, StreamEntry, StreamGroup};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn entry(key: &str, value: RdbValue, ttl: Option<u64>) -> RdbEntry {
        RdbEntry {
            db: 0,
            key: b(key),
            value,
            expire_at_ms: ttl,
        }
    }

    /// RESP as redis-cli-less text: `\r\n` shown as `|`.
    fn text(out: &BytesMut) -> String {
        String::from_utf8_lossy(out).replace("\r\n", "|")
    }

    fn encode(e: &RdbEntry) -> String {
        let mut out = BytesMut::new();
        rebuild_key(&mut out, e);
        // Every command is valid AOF syntax.
        let mut r = super::super::parse::Reader::new(&out, 0);
        while let super::super::parse::Item::Command(..) = r.next_item() {}
        assert_eq!(r.next_item(), super::super::parse::Item::Eof);
        text(&out)
    }

    #[test]
    fn strings_and_ttls_as_redis_writes_them() {
        assert_eq!(
            encode(&entry("s1", RdbValue::String(b("v1")), Some(1796546327707))),
            "*3|$3|SET|$2|s1|$2|v1|*3|$9|PEXPIREAT|$2|s1|$13|1796546327707|"
        );
    }

    #[test]
    fn collections_as_redis_writes_them() {
        assert_eq!(
            encode(&entry(
                "l",
                RdbValue::List(vec![b("a"), b("b"), b("3")]),
                None
            )),
            "*5|$5|RPUSH|$1|l|$1|a|$1|b|$1|3|"
        );
        assert_eq!(
            encode(&entry("si", RdbValue::Set(vec![b("1"), b("2")]), None)),
            "*4|$4|SADD|$2|si|$1|1|$1|2|"
        );
        assert_eq!(
            encode(&entry(
                "h",
                RdbValue::Hash(vec![(b("f"), b("v")), (b("g"), b("1"))]),
                None
            )),
            "*6|$5|HMSET|$1|h|$1|f|$1|v|$1|g|$1|1|"
        );
        // redis-server 7.0.15's base for ZADD z 1.1 a -inf b inf c 3 d.
        assert_eq!(
            encode(&entry(
                "z",
                RdbValue::ZSet(vec![
                    (b("b"), f64::NEG_INFINITY),
                    (b("a"), 1.1),
                    (b("d"), 3.0),
                    (b("c"), f64::INFINITY)
                ]),
                None
            )),
            "*10|$4|ZADD|$1|z|$4|-inf|$1|b|$18|1.1000000000000001|$1|a|$1|3|$1|d|$3|inf|$1|c|"
        );
    }

    #[test]
    fn large_collections_are_split_every_64_items() {
        let items: Vec<Bytes> = (0..130).map(|i| b(&i.to_string())).collect();
        let mut out = BytesMut::new();
        rebuild_key(&mut out, &entry("l", RdbValue::List(items), None));
        let mut r = super::super::parse::Reader::new(&out, 0);
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let super::super::parse::Item::Command(args, _) = r.next_item() {
            assert_eq!(&args[..2], [b("RPUSH"), b("l")]);
            sizes.push(args.len() - 2);
            all.extend(args[2..].iter().cloned());
        }
        assert_eq!(sizes, [64, 64, 2]);
        assert_eq!(all, (0..130).map(|i| b(&i.to_string())).collect::<Vec<_>>());
        let pairs: Vec<(Bytes, Bytes)> = (0..65).map(|i| (b(&format!("f{i}")), b("v"))).collect();
        let mut out = BytesMut::new();
        rebuild_key(&mut out, &entry("h", RdbValue::Hash(pairs), None));
        let mut r = super::super::parse::Reader::new(&out, 0);
        let mut sizes = Vec::new();
        while let super::super::parse::Item::Command(args, _) = r.next_item() {
            sizes.push(args.len());
        }
        assert_eq!(sizes, [2 + 128, 2 + 2]);
    }

    #[test]
    fn streams_as_redis_writes_them() {
        // redis-server 7.0.15's base for: XADD x 1-1 a 1, 2-1 b 2, 3-1 c 3; XDEL x 2-1;
        // XGROUP CREATE x g 0; XGROUP CREATE x g2 $; XREADGROUP GROUP g alice COUNT 1;
        // XGROUP CREATECONSUMER x g bob.
        let s = RdbStream {
            entries: vec![
                StreamEntry {
                    id: id(1, 1),
                    fields: vec![(b("a"), b("1"))],
                },
                StreamEntry {
                    id: id(3, 1),
                    fields: vec![(b("c"), b("3"))],
                },
            ],
            last_id: id(3, 1),
            first_id: id(1, 1),
            max_deleted_id: id(2, 1),
            entries_added: 3,
            groups: vec![
                StreamGroup {
                    name: b("g"),
                    last_id: id(1, 1),
                    entries_read: -1,
                    pel: vec![PendingEntry {
                        id: id(1, 1),
                        delivery_time_ms: 1796446327799,
                        delivery_count: 1,
                    }],
                    consumers: vec![
                        StreamConsumer {
                            name: b("alice"),
                            seen_time_ms: 1796446327799,
                            active_time_ms: 1796446327799,
                            pending: vec![id(1, 1)],
                        },
                        StreamConsumer {
                            name: b("bob"),
                            seen_time_ms: 1796446327800,
                            active_time_ms: 1796446327800,
                            pending: vec![],
                        },
                    ],
                },
                StreamGroup {
                    name: b("g2"),
                    last_id: id(3, 1),
                    entries_read: -1,
                    pel: vec![],
                    consumers: vec![],
                },
            ],
        };
        assert_eq!(
            encode(&entry("x", RdbValue::Stream(Box::new(s)), None)),
            "*5|$4|XADD|$1|x|$3|1-1|$1|a|$1|1|\
             *5|$4|XADD|$1|x|$3|3-1|$1|c|$1|3|\
             *7|$6|XSETID|$1|x|$3|3-1|$12|ENTRIESADDED|$1|3|$12|MAXDELETEDID|$3|2-1|\
             *7|$6|XGROUP|$6|CREATE|$1|x|$1|g|$3|1-1|$11|ENTRIESREAD|$2|-1|\
             *12|$6|XCLAIM|$1|x|$1|g|$5|alice|$1|0|$3|1-1|$4|TIME|$13|1796446327799|$10|RETRYCOUNT|$1|1|$6|JUSTID|$5|FORCE|\
             *5|$6|XGROUP|$14|CREATECONSUMER|$1|x|$1|g|$3|bob|\
             *7|$6|XGROUP|$6|CREATE|$1|x|$2|g2|$3|3-1|$11|ENTRIESREAD|$2|-1|"
        );
        // An empty stream (XGROUP CREATE … MKSTREAM).
        let empty = RdbStream {
            groups: vec![StreamGroup {
                name: b("g"),
                last_id: id(0, 0),
                entries_read: -1,
                pel: vec![],
                consumers: vec![],
            }],
            ..RdbStream::default()
        };
        assert_eq!(
            encode(&entry("empty", RdbValue::Stream(Box::new(empty)), None)),
            "*7|$4|XADD|$5|empty|$6|MAXLEN|$1|0|$3|0-1|$1|x|$1|y|\
             *7|$6|XSETID|$5|empty|$3|0-0|$12|ENTRIESADDED|$1|0|$12|MAXDELETEDID|$3|0-0|\
             *7|$6|XGROUP|$6|CREATE|$5|empty|$1|g|$3|0-0|$11|ENTRIESREAD|$2|-1|"
        );
    }

    #[test]
    fn select_and_function_load() {
        let mut out = BytesMut::new();
        function_load(
            &mut out,
            b"#!lua name=lib\nredis.register_function('f', function() return 1 end)",
        );
        select(&mut out, 12);
        assert_eq!(
            text(&out),
            "*3|$8|FUNCTION|$4|LOAD|$68|#!lua name=lib\nredis.register_function('f', function() return 1 end)|*2|$6|SELECT|$2|12|"
        );
    }
}
