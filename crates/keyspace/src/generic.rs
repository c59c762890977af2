//! Type-independent key commands: DEL, EXISTS, TYPE, TOUCH, RENAME, COPY,
//! MOVE, OBJECT, DUMP, RESTORE.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::notify as ev;
use crate::rdbconv::{from_rdb, to_rdb};
use crate::DbIndex;
use crate::{ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

/// DEL/UNLINK key [key ...]
pub fn del(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let mut n = 0;
    for k in &args[1..] {
        if ks.delete(ctx, db, k) {
            ctx.notify(ev::GENERIC, "del", k);
            n += 1;
        }
    }
    if n > 0 {
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(n as i64)
}

/// EXISTS key [key ...]: repeated keys count each time.
pub fn exists(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let n = args[1..]
        .iter()
        .filter(|k| ks.find(ctx, db, k, Lookup::ReadNoTouch).is_some())
        .count();
    Reply::Integer(n as i64)
}

/// TYPE key
pub fn type_(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    Reply::Simple(
        ks.find(ctx, db, &args[1], Lookup::ReadNoTouch)
            .map_or("none", |f| f.slot.value.type_name()),
    )
}

/// TOUCH key [key ...]
pub fn touch(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let n = args[1..]
        .iter()
        .filter(|k| ks.find(ctx, db, k, Lookup::Read).is_some())
        .count();
    Reply::Integer(n as i64)
}

/// RENAME key newkey / RENAMENX key newkey
pub fn rename(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes], nx: bool) -> Reply {
    let db = ctx.db;
    let (src, dst) = (&args[1], &args[2]);
    if ks.find(ctx, db, src, Lookup::Write).is_none() {
        return err(errors::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Integer(0) } else { Reply::OK };
    }
    if let Some(e) = ks.find_entry(ctx, db, dst, Lookup::Write) {
        if nx {
            return Reply::Integer(0);
        }
        e.remove();
    }
    let slot = ks
        .find_entry(ctx, db, src, Lookup::Write)
        .expect("source checked above")
        .remove();
    let at = slot.expire_at();
    ks.insert_new(ctx, db, dst, slot.value, at);
    ctx.notify(ev::GENERIC, "rename_from", src);
    ctx.notify(ev::GENERIC, "rename_to", dst);
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    if nx {
        Reply::Integer(1)
    } else {
        Reply::OK
    }
}

/// A db number argument as Redis's `getIntFromObjectOrReply` + `selectDb` check it.
fn parse_db(ks: &Keyspace, raw: &[u8]) -> Result<DbIndex, Reply> {
    let n = crate::parse_i64(raw)?;
    let n = i32::try_from(n).map_err(|_| err(errors::NOT_INTEGER))?;
    if n < 0 || n as usize >= ks.databases() {
        return Err(err(errors::DB_OUT_OF_RANGE));
    }
    Ok(DbIndex(n as usize))
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let src_db = ctx.db;
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if args[j].eq_ignore_ascii_case(b"db") && j + 1 < args.len() {
            match parse_db(ks, &args[j + 1]) {
                Ok(d) => dst_db = d,
                Err(e) => return e,
            }
            j += 1;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src_db == dst_db && src == dst {
        return err(errors::SAME_OBJECT);
    }
    let Some((value, expire)) = ks
        .find(ctx, src_db, src, Lookup::Read)
        .map(|f| (f.slot.value.clone(), f.slot.expire_at()))
    else {
        return Reply::Integer(0);
    };
    if let Some(e) = ks.find_entry(ctx, dst_db, dst, Lookup::Write) {
        if !replace {
            return Reply::Integer(0);
        }
        e.remove();
    }
    ks.insert_new(ctx, dst_db, dst, value, expire);
    ctx.notify_db(ev::GENERIC, "copy_to", dst_db, dst);
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

/// MOVE key db
pub fn move_(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let src_db = ctx.db;
    let dst_db = match parse_db(ks, &args[2]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dst_db == src_db {
        return err(errors::SAME_OBJECT);
    }
    let key = &args[1];
    if ks.find(ctx, src_db, key, Lookup::Write).is_none() {
        return Reply::Integer(0);
    }
    if ks.find(ctx, dst_db, key, Lookup::Write).is_some() {
        return Reply::Integer(0);
    }
    let slot = ks
        .find_entry(ctx, src_db, key, Lookup::Write)
        .expect("checked above")
        .remove();
    let at = slot.expire_at();
    ks.insert_new(ctx, dst_db, key, slot.value, at);
    ctx.notify_db(ev::GENERIC, "move_from", src_db, key);
    ctx.notify_db(ev::GENERIC, "move_to", dst_db, key);
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP. Subcommand arity
/// is checked here (the server only checks OBJECT's own).
pub fn object(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let name = match &sub[..] {
        b"help" => "help",
        b"encoding" => "encoding",
        b"refcount" => "refcount",
        b"idletime" => "idletime",
        b"freq" => "freq",
        _ => return Reply::Error(errors::unknown_subcommand(&args[1], "OBJECT")),
    };
    let want = if name == "help" { 2 } else { 3 };
    if args.len() != want {
        return Reply::Error(errors::wrong_arity(&format!("object|{name}")));
    }
    if name == "help" {
        return Reply::Array(OBJECT_HELP.iter().map(|l| Reply::Simple(l)).collect());
    }
    let db = ctx.db;
    let now = ctx.now_ms;
    let eviction = ks.eviction_config();
    let Some(f) = ks.find(ctx, db, &args[2], Lookup::ReadNoTouchNoNotify) else {
        return Reply::Nil;
    };
    let slot = &*f.slot;
    let lfu = eviction.policy.lfu();
    match name {
        "encoding" => Reply::bulk(slot.value.encoding().as_bytes()),
        "refcount" => Reply::Integer(slot.value.refcount()),
        "idletime" if lfu => err(errors::LFU_SELECTED),
        "idletime" => Reply::Integer((crate::evict::idle_ms(slot.lru, now) / 1000) as i64),
        _ if !lfu => err(errors::LFU_NOT_SELECTED),
        _ => {
            Reply::Integer(crate::evict::lfu_counter(slot.lru, now, eviction.lfu_decay_time) as i64)
        }
    }
}

/// DEBUG OBJECT key, in Redis's format: `Value at:<address> refcount:<n>
/// encoding:<name> serializedlength:<bytes> lru:<word> lru_seconds_idle:<s>`.
/// Like Redis it finds the key without expiring or touching it. The
/// address is the value's own, the length is that of shardis's RDB form of
/// the value, and lists carry no `ql_*` fields: they are not quicklists here.
pub fn debug_object(ks: &Keyspace, now_ms: u64, db: DbIndex, key: &[u8]) -> Reply {
    let Some(slot) = ks.slot_raw(db, key) else {
        return err(errors::NO_SUCH_KEY);
    };
    let value = &slot.value;
    let rdb = shardis_rdb::dump_payload(&to_rdb(value));
    // The payload is the type byte, the object, 2 version bytes and a CRC64.
    let serialized = rdb.len().saturating_sub(11);
    // Lists add Redis's quicklist fields (nodes are never compressed).
    let quicklist = match value {
        crate::value::Value::List(l) => format!(
            " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{}",
            l.node_count(),
            l.len() as f64 / l.node_count().max(1) as f64,
            crate::pack::limits().list_size,
            l.heap_bytes(),
        ),
        _ => String::new(),
    };
    Reply::Status(format!(
        "Value at:{:p} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{}",
        value as *const _,
        value.refcount(),
        value.encoding(),
        serialized,
        slot.lru & crate::evict::LRU_CLOCK_MAX,
        crate::evict::idle_ms(slot.lru, now_ms) / 1000,
        quicklist,
    ))
}

/// DEBUG LISTPACK key / DEBUG QUICKLIST key: prints the value's structure on
/// stdout and answers Redis's status, or Redis's error when the value is not
/// in that encoding. `encoding` is `listpack` or `quicklist`. The printout is
/// shardis's own structure (Redis dumps its listpack or quicklist nodes).
pub fn debug_structure(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    encoding: &str,
) -> Reply {
    let db = ctx.db;
    let Some(f) = ks.find(ctx, db, key, Lookup::ReadNoTouchNoNotify) else {
        return err(errors::NO_SUCH_KEY);
    };
    let value = &f.slot.value;
    let (title, status) = match encoding {
        "listpack" => ("Listpack", "Listpack structure printed on stdout"),
        _ => ("Quicklist", "Quicklist structure printed on stdout"),
    };
    if value.encoding() != encoding {
        return Reply::Error(format!("ERR Not a {encoding} encoded object."));
    }
    let items = crate::rdbconv::to_rdb(value);
    println!(
        "{{{title} of key {}: {}}}\n{items:?}",
        String::from_utf8_lossy(key),
        value.type_name(),
    );
    Reply::Status(status.into())
}

/// MEMORY USAGE key [SAMPLES n] (the other MEMORY subcommands are the
/// server's). Like Redis it finds the key without expiring it.
pub fn memory_usage(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let mut samples = crate::usage::DEFAULT_SAMPLES;
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"samples") && j + 1 < args.len() {
            match crate::parse_i64(&args[j + 1]) {
                Err(e) => return e,
                Ok(n) if n < 0 => return err(errors::SYNTAX),
                Ok(n) => samples = n as usize,
            }
            j += 2;
        } else {
            return err(errors::SYNTAX);
        }
    }
    // Only USAGE is routed here (with its key); the server runs the others.
    let Some(key) = args.get(2) else {
        return err(errors::SYNTAX);
    };
    match ks.slot_raw(ctx.db, key) {
        Some(slot) => Reply::Integer(crate::usage::key_usage(slot, samples) as i64),
        None => Reply::Nil,
    }
}

/// DUMP key: the value in Redis's DUMP format (RDB 10 object, version, CRC64).
pub fn dump(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    match ks.find(ctx, db, &args[1], Lookup::Read) {
        Some(f) => Reply::Bulk(Bytes::from(shardis_rdb::dump_payload(&to_rdb(
            &f.slot.value,
        )))),
        None => Reply::Nil,
    }
}

/// MIGRATE's source side for one key, as Redis's `lookupKeyRead` then
/// `getExpire` and `createDumpPayload`: the DUMP payload and the absolute
/// expiry (Unix ms), or `None` for a missing (or just expired) key. Counts
/// a hit or miss and touches the key, as any read does.
pub fn migrate_payload(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
) -> Option<(Bytes, Option<u64>)> {
    let db = ctx.db;
    let f = ks.find(ctx, db, key, Lookup::Read)?;
    let payload = Bytes::from(shardis_rdb::dump_payload(&to_rdb(&f.slot.value)));
    Some((payload, f.slot.expire_at()))
}

/// MIGRATE's delete of a key the target acknowledged, as Redis's `dbDelete`
/// (expired or not) plus the `del` event and a dirty change, which Redis
/// counts even when a repeated key is already gone. The caller propagates
/// one `DEL` of every moved key.
pub fn migrate_delete(ks: &mut Keyspace, ctx: &mut ExecContext, key: &[u8]) -> bool {
    let removed = ks.remove(ctx.db, key);
    ctx.notify(ev::GENERIC, "del", key);
    ctx.stats.dirty += 1;
    removed
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f],
/// in Redis 7.0's order of checks: options, BUSYKEY, TTL, payload.
pub fn restore(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let has_value = j + 1 < args.len();
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && has_value && freq.is_none() {
            let n = match crate::parse_i64(&args[j + 1]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if n < 0 {
                return err(errors::RESTORE_BAD_IDLETIME);
            }
            idle = Some(n);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && has_value && idle.is_none() {
            let n = match crate::parse_i64(&args[j + 1]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if !(0..=255).contains(&n) {
                return err(errors::RESTORE_BAD_FREQ);
            }
            freq = Some(n);
            j += 1;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let (db, key) = (ctx.db, &args[1]);
    if !replace && ks.find(ctx, db, key, Lookup::Write).is_some() {
        return err(errors::BUSYKEY);
    }
    let ttl = match crate::parse_i64(&args[2]) {
        Ok(n) if n < 0 => return err(errors::RESTORE_BAD_TTL),
        Ok(n) => n,
        Err(e) => return e,
    };
    let value = match shardis_rdb::parse_dump_payload(&args[3]) {
        Ok(v) => v,
        Err(e) => return Reply::Error(e.restore_reply().to_owned()),
    };
    let Ok(value) = from_rdb(value) else {
        return Reply::Error(crate::errors::BAD_DATA_FORMAT.to_owned());
    };
    let deleted = replace && ks.delete(ctx, db, key);
    let now = ctx.now_ms as i64;
    let at = if ttl != 0 && !absttl {
        ttl.saturating_add(now)
    } else {
        ttl
    };
    // checkAlreadyExpired: a replica keeps what its master sends.
    if at != 0 && at <= now && !ctx.replica {
        if deleted {
            ctx.notify(ev::GENERIC, "del", key);
            ctx.stats.dirty += 1;
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        return Reply::OK;
    }
    ks.insert_new(ctx, db, key, value, (at != 0).then_some(at as u64));
    let restored = ks.eviction_config().restored_word(idle, freq, ctx.now_ms);
    if let Some(word) = restored {
        if let Some(f) = ks.find(ctx, db, key, Lookup::ReadNoTouch) {
            f.slot.lru = word;
        }
    }
    ctx.notify(ev::GENERIC, "restore", key);
    ctx.stats.dirty += 1;
    if at != 0 && !absttl {
        // Replicas get the absolute time, as Redis rewrites it.
        let mut sent = args.to_vec();
        sent[2] = Bytes::from(at.to_string());
        sent.push(Bytes::from_static(b"ABSTTL"));
        ctx.propagate(sent);
    } else {
        ctx.propagate_as_sent(args);
    }
    Reply::OK
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::DbIndex;
    use shardis_protocol::Reply;

    #[test]
    fn del_exists_type_touch() {
        let mut t = T::new();
        t.run("MSET a 1 b 2");
        t.effects();
        assert_eq!(t.run("EXISTS a a b c"), int(3), "duplicates count");
        assert_eq!(t.run("TYPE a"), Reply::Simple("string"));
        assert_eq!(t.run("TYPE c"), Reply::Simple("none"));
        assert_eq!(t.run("TOUCH a c"), int(1));
        assert_eq!(t.run("DEL c"), int(0));
        assert!(
            t.effects().is_empty(),
            "deleting nothing propagates nothing"
        );
        assert_eq!(t.run("DEL a b c"), int(2));
        assert_eq!(t.run("UNLINK a"), int(0));
        assert_eq!(t.effects(), vec!["DEL a b c"]);
        assert_eq!(t.ctx.stats.dirty, 4, "MSET 2 + DEL 2");
        assert_eq!(t.ks.dbsize(DbIndex(0)), 0);
    }

    #[test]
    fn rename_and_renamenx() {
        let mut t = T::new();
        assert_eq!(t.run("RENAME a b"), err("ERR no such key"));
        assert_eq!(t.run("RENAMENX a b"), err("ERR no such key"));
        t.run("SETEX a 100 1");
        t.run("SET c 3");
        assert_eq!(t.run("RENAME a a"), Reply::OK);
        assert_eq!(t.run("RENAMENX a a"), int(0));
        assert_eq!(t.run("RENAMENX a c"), int(0));
        assert_eq!(t.run("RENAME a b"), Reply::OK);
        assert_eq!(t.run("TTL b"), int(100), "the TTL moves with the key");
        assert_eq!(t.run("EXISTS a"), int(0));
        assert_eq!(t.run("RENAME b c"), Reply::OK);
        assert_eq!(t.run("GET c"), bulk("1"));
        assert_eq!(t.run("TTL c"), int(100));
        assert_eq!(t.run("RENAMENX c d"), int(1));
        assert_eq!(t.ks.dbsize(DbIndex(0)), 1);
        assert_eq!(t.ks.keyspace_info()[0].1, 1);
    }

    #[test]
    fn copy_with_db_and_replace() {
        let mut t = T::new();
        t.run("SETEX a 50 v");
        t.run("SET b other");
        assert_eq!(
            t.run("COPY a a"),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(t.run("COPY a b"), int(0));
        assert_eq!(t.run("COPY a b REPLACE"), int(1));
        assert_eq!(t.run("GET b"), bulk("v"));
        assert_eq!(t.run("TTL b"), int(50));
        assert_eq!(t.run("COPY a a DB 1"), int(1));
        assert_eq!(t.run("COPY nope x"), int(0));
        assert_eq!(t.run("COPY a x DB 16"), err("ERR DB index is out of range"));
        assert_eq!(t.run("COPY a x DB -1"), err("ERR DB index is out of range"));
        assert_eq!(
            t.run("COPY a x DB abc"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            t.run("COPY a x DB 4294967296"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("COPY a x FOO"), err("ERR syntax error"));
        assert_eq!(t.run("COPY a x DB"), err("ERR syntax error"));
        t.ctx.db = DbIndex(1);
        assert_eq!(t.run("GET a"), bulk("v"));
        assert_eq!(t.run("TTL a"), int(50));
        assert_eq!(
            t.effects(),
            vec![
                "SETEX a 50 v",
                "SET b other",
                "COPY a b REPLACE",
                "COPY a a DB 1"
            ]
            .into_iter()
            .map(|s| if s.starts_with("SETEX") {
                format!("SET a v PXAT {}", t.ctx.now_ms + 50_000)
            } else {
                s.to_string()
            })
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn move_between_dbs() {
        let mut t = T::new();
        t.run("SETEX k 30 v");
        assert_eq!(
            t.run("MOVE k 0"),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(t.run("MOVE k 99"), err("ERR DB index is out of range"));
        assert_eq!(
            t.run("MOVE k x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run("MOVE nope 1"), int(0));
        assert_eq!(t.run("MOVE k 1"), int(1));
        assert_eq!(t.ks.dbsize(DbIndex(0)), 0);
        t.run("SET k again");
        assert_eq!(t.run("MOVE k 1"), int(0), "target exists");
        t.ctx.db = DbIndex(1);
        assert_eq!(t.run("GET k"), bulk("v"));
        assert_eq!(t.run("TTL k"), int(30));
    }

    #[test]
    fn object_subcommands() {
        let mut t = T::new();
        t.run("SET n 123");
        t.run("SET big 12345678901");
        t.run("SET s hello");
        assert_eq!(t.run("OBJECT ENCODING n"), bulk("int"));
        assert_eq!(t.run("OBJECT encoding s"), bulk("embstr"));
        assert_eq!(t.run("OBJECT ENCODING nope"), Reply::Nil);
        assert_eq!(t.run("OBJECT REFCOUNT n"), int(2147483647));
        assert_eq!(t.run("OBJECT REFCOUNT big"), int(1));
        t.advance(5_000);
        assert_eq!(t.run("OBJECT IDLETIME s"), int(5));
        t.run("GET s");
        assert_eq!(t.run("OBJECT IDLETIME s"), int(0));
        assert!(
            matches!(t.run("OBJECT FREQ s"), Reply::Error(e) if e.starts_with("ERR An LFU maxmemory policy is not selected"))
        );
        assert_eq!(t.run("OBJECT FREQ nope"), Reply::Nil);
        assert_eq!(
            t.run("OBJECT Foo"),
            err("ERR unknown subcommand 'Foo'. Try OBJECT HELP.")
        );
        assert_eq!(
            t.run("OBJECT ENCODING a b"),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            t.run("OBJECT freq"),
            err("ERR wrong number of arguments for 'object|freq' command")
        );
        assert_eq!(
            t.run("OBJECT HELP x"),
            err("ERR wrong number of arguments for 'object|help' command")
        );
        let Reply::Array(help) = t.run("OBJECT HELP") else {
            panic!()
        };
        assert_eq!(help.len(), 15);
        assert_eq!(help[14], Reply::Simple("    Prints this help."));
    }

    #[test]
    fn migrate_payload_and_delete() {
        use bytes::Bytes;
        let mut t = T::new();
        t.run("SET a hello");
        t.run("PEXPIRE a 5000");
        t.run("SET b x");
        let hits = t.ctx.stats.keyspace_hits;
        let (payload, at) = super::migrate_payload(&mut t.ks, &mut t.ctx, b"a").unwrap();
        assert_eq!(at, Some(t.ctx.now_ms + 5000));
        assert_eq!(
            t.ctx.stats.keyspace_hits,
            hits + 1,
            "a read, as lookupKeyRead"
        );
        // The payload is DUMP's, so RESTORE takes it back.
        assert_eq!(t.run("DUMP a"), Reply::Bulk(payload.clone()));
        let misses = t.ctx.stats.keyspace_misses;
        assert!(super::migrate_payload(&mut t.ks, &mut t.ctx, b"nosuch").is_none());
        assert_eq!(t.ctx.stats.keyspace_misses, misses + 1);
        t.effects();
        let dirty = t.ctx.stats.dirty;
        assert!(super::migrate_delete(&mut t.ks, &mut t.ctx, b"a"));
        // A repeated key is gone already, but Redis still counts the change.
        assert!(!super::migrate_delete(&mut t.ks, &mut t.ctx, b"a"));
        assert_eq!(t.ctx.stats.dirty, dirty + 2);
        assert!(t.effects().is_empty(), "the caller propagates one DEL");
        assert_eq!(t.run("EXISTS a b"), int(1));
        let mut args = vec![Bytes::from_static(b"RESTORE"), Bytes::from_static(b"a")];
        args.push(Bytes::from_static(b"0"));
        args.push(payload);
        assert_eq!(t.run_args(args), Reply::OK);
        assert_eq!(t.run("GET a"), bulk("hello"));
        // An expired key is missing (and reclaimed, as any read does).
        t.run("PEXPIRE b 1");
        t.advance(2);
        t.effects();
        assert!(super::migrate_payload(&mut t.ks, &mut t.ctx, b"b").is_none());
        assert_eq!(t.effects(), ["DEL b"]);
    }
}
