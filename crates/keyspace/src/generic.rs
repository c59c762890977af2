//! Type-independent key commands: DEL, EXISTS, TYPE, TOUCH, RENAME, COPY,
//! MOVE, OBJECT.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::{ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

/// DEL/UNLINK key [key ...]
pub fn del(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let n = args[1..].iter().filter(|k| ks.delete(ctx, db, k)).count();
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
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    if nx {
        Reply::Integer(1)
    } else {
        Reply::OK
    }
}

/// A db number argument as Redis's `getIntFromObjectOrReply` + `selectDb` check it.
fn parse_db(ks: &Keyspace, raw: &[u8]) -> Result<usize, Reply> {
    let n = crate::parse_i64(raw)?;
    let n = i32::try_from(n).map_err(|_| err(errors::NOT_INTEGER))?;
    if n < 0 || n as usize >= ks.databases() {
        return Err(err(errors::DB_OUT_OF_RANGE));
    }
    Ok(n as usize)
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
        _ => return errors::unknown_subcommand(&args[1], "OBJECT"),
    };
    let want = if name == "help" { 2 } else { 3 };
    if args.len() != want {
        return errors::wrong_arity(&format!("object|{name}"));
    }
    if name == "help" {
        return Reply::Array(OBJECT_HELP.iter().map(|l| Reply::Simple(l)).collect());
    }
    let db = ctx.db;
    let now_s = ctx.now_ms / 1000;
    let Some(f) = ks.find(ctx, db, &args[2], Lookup::ReadNoTouch) else {
        return Reply::Nil;
    };
    let slot = &*f.slot;
    match name {
        "encoding" => Reply::bulk(slot.value.encoding().as_bytes()),
        "refcount" => Reply::Integer(slot.value.refcount()),
        "idletime" => Reply::Integer(now_s.saturating_sub(slot.atime as u64) as i64),
        _ => err(errors::LFU_NOT_SELECTED),
    }
}
