//! Stream consumer groups: XGROUP, XREADGROUP's delivery, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM, and XINFO.
//!
//! Deliveries and claims propagate as Redis 7.0 does (t_stream.c
//! `streamPropagateXCLAIM`, `streamPropagateGroupID`,
//! `streamPropagateConsumerCreation`): one idempotent
//! `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID id`
//! per pending entry touched, `XGROUP SETID … ENTRIESREAD n` when only the
//! group's position moved, and `XGROUP CREATECONSUMER` for a NOACK reader.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::stream::{
    entry_reply, id_bytes, id_reply, incr, parse_id, parse_range_end, parse_strict_id, stream_mut,
    Consumer, Group, Nack, Stream, StreamId, ENTRIES_READ_UNKNOWN, MAX_ID,
};
use crate::value::Value;
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`.
fn xclaim_effect(
    key: &Bytes,
    gname: &Bytes,
    last_id: StreamId,
    id: StreamId,
    n: &Nack,
) -> Vec<Bytes> {
    vec![
        b("XCLAIM"),
        key.clone(),
        gname.clone(),
        n.consumer.clone(),
        b("0"),
        id_bytes(id),
        b("TIME"),
        Bytes::from(n.delivery_time.to_string()),
        b("RETRYCOUNT"),
        Bytes::from(n.delivery_count.to_string()),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        id_bytes(last_id),
    ]
}

/// `XGROUP SETID key group last ENTRIESREAD n`.
fn setid_effect(key: &Bytes, gname: &Bytes, g: &Group) -> Vec<Bytes> {
    vec![
        b("XGROUP"),
        b("SETID"),
        key.clone(),
        gname.clone(),
        id_bytes(g.last_id),
        b("ENTRIESREAD"),
        Bytes::from(g.entries_read.to_string()),
    ]
}

/// The consumer `name`, created if missing (seen now either way); true if created.
fn consumer_entry<'a>(g: &'a mut Group, name: &Bytes, now: u64) -> (&'a mut Consumer, bool) {
    let created = !g.consumers.contains_key(name);
    let c = g.consumers.entry(name.clone()).or_default();
    c.seen_time = now;
    (c, created)
}

/// Moves pending entry `id` to consumer `to` (Redis reassigns a NACK an
/// XREADGROUP or claim finds owned by someone else).
fn assign(g: &mut Group, id: StreamId, to: &Bytes) {
    let Some(n) = g.pel.get_mut(&id) else { return };
    if n.consumer != *to {
        if let Some(old) = g.consumers.get_mut(&n.consumer) {
            old.pel.remove(&id);
        }
        n.consumer = to.clone();
    }
    g.consumers.entry(to.clone()).or_default().pel.insert(id);
}

/// XREADGROUP `>`: delivers entries after the group's last id to `cname`.
pub(crate) fn read_new(
    s: &mut Stream,
    key: &Bytes,
    gname: &Bytes,
    cname: &Bytes,
    count: usize,
    noack: bool,
    now: u64,
) -> (Vec<Vec<Bytes>>, Reply) {
    let mut effects = Vec::new();
    let start = incr(s.groups[gname].last_id);
    let ids: Vec<StreamId> = match start {
        Some(start) => s
            .range(start, MAX_ID, false)
            .take(if count == 0 { usize::MAX } else { count })
            .map(|(id, _)| id)
            .collect(),
        None => Vec::new(),
    };
    let tombstones: Vec<bool> = ids.iter().map(|&id| s.has_tombstones_after(id)).collect();
    let estimates: Vec<i64> = ids.iter().map(|&id| s.estimate_entries_read(id)).collect();
    let entries_added = s.entries_added;
    let mut out = Vec::with_capacity(ids.len());
    let g = s.groups.get_mut(gname).expect("checked by the caller");
    if consumer_entry(g, cname, now).1 && noack {
        effects.push(vec![
            b("XGROUP"),
            b("CREATECONSUMER"),
            key.clone(),
            gname.clone(),
            cname.clone(),
        ]);
    }
    let mut propagate_last_id = false;
    for (k, &id) in ids.iter().enumerate() {
        if id > g.last_id {
            if g.entries_read != ENTRIES_READ_UNKNOWN && !tombstones[k] {
                g.entries_read += 1;
            } else if entries_added > 0 {
                g.entries_read = estimates[k];
            }
            g.last_id = id;
            propagate_last_id |= noack;
        }
        if !noack {
            // A pending entry of another consumer (after XGROUP SETID) moves.
            assign(g, id, cname);
            g.pel.insert(
                id,
                Nack {
                    consumer: cname.clone(),
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
            g.consumers.entry(cname.clone()).or_default().pel.insert(id);
            effects.push(xclaim_effect(key, gname, g.last_id, id, &g.pel[&id]));
        }
        out.push(id);
    }
    if propagate_last_id {
        effects.push(setid_effect(key, gname, g));
    }
    let reply = Reply::Array(
        out.into_iter()
            .map(|id| entry_reply(id, &s.entries.get(id).expect("delivered entries exist")))
            .collect(),
    );
    (effects, reply)
}

/// XREADGROUP with an id: the consumer's own pending entries from `after`
/// on (inclusive of the next id); deleted entries come back as `[id, nil]`.
pub(crate) fn read_history(
    s: &mut Stream,
    gname: &Bytes,
    cname: &Bytes,
    after: StreamId,
    count: usize,
    now: u64,
) -> (Vec<Vec<Bytes>>, Reply) {
    let Some(start) = incr(after) else {
        return (Vec::new(), Reply::Array(Vec::new()));
    };
    let g = s.groups.get_mut(gname).expect("checked by the caller");
    let ids: Vec<StreamId> = consumer_entry(g, cname, now)
        .0
        .pel
        .range(start..)
        .take(if count == 0 { usize::MAX } else { count })
        .copied()
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.entries.get(id) {
            Some(fields) => {
                out.push(entry_reply(id, &fields));
                if let Some(n) = g.pel.get_mut(&id) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            }
            None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
        }
    }
    (Vec::new(), Reply::Array(out))
}

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

fn subcommand_syntax(args: &[Bytes], cmd: &str) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        lossy(&args[1])
    ))
}

/// XGROUP's subcommands and their Redis arities.
const XGROUP_SUBS: &[(&str, i32)] = &[
    ("create", -5),
    ("setid", -5),
    ("destroy", 4),
    ("createconsumer", 5),
    ("delconsumer", 5),
    ("help", 2),
];
const XINFO_SUBS: &[(&str, i32)] = &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];

/// Checks a container command's subcommand and its arity, with Redis's texts.
fn check_sub(
    args: &[Bytes],
    cmd: &str,
    subs: &[(&'static str, i32)],
) -> Result<&'static str, Reply> {
    let sub = args[1].to_ascii_lowercase();
    let Some(&(name, arity)) = subs.iter().find(|(n, _)| n.as_bytes() == &sub[..]) else {
        return Err(Reply::Error(errors::unknown_subcommand(&args[1], cmd)));
    };
    let n = args.len() as i32;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(Reply::Error(errors::wrong_arity(&format!(
            "{}|{name}",
            cmd.to_ascii_lowercase()
        ))));
    }
    Ok(name)
}

fn help(lines: &[&str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Status((*l).to_owned()))
            .collect(),
    )
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP …
pub fn xgroup(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let sub = match check_sub(args, "XGROUP", XGROUP_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if sub == "help" {
        return help(XGROUP_HELP);
    }
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    let mut i = 5;
    while i < args.len() {
        let a = &args[i];
        if sub == "create" && a.eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && a.eq_ignore_ascii_case(b"entriesread")
            && i + 1 < args.len()
        {
            entries_read = match parse_i64(&args[i + 1]) {
                Ok(n) if n < 0 && n != ENTRIES_READ_UNKNOWN => {
                    return err("ERR value for ENTRIESREAD must be positive or -1")
                }
                Ok(n) => n,
                Err(e) => return e,
            };
            i += 2;
        } else {
            return subcommand_syntax(args, "XGROUP");
        }
    }
    // Names may be stored: copies, not slices of the request buffer.
    let (key, gname) = (&args[2], &Bytes::copy_from_slice(&args[3]));
    let db = ctx.db;
    let exists = match stream_mut(ks, ctx, key, Lookup::Write) {
        Err(e) => return e,
        Ok(s) => s.map(|s| s.groups.contains_key(gname)),
    };
    if !mkstream {
        match exists {
            None => return err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."),
            Some(false) if matches!(sub, "setid" | "createconsumer" | "delconsumer") => {
                return Reply::Error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    lossy(gname),
                    lossy(key)
                ))
            }
            _ => {}
        }
    }
    let now = ctx.now_ms;
    match sub {
        "create" if args.len() <= 8 => {
            let id = if &args[4][..] == b"$" {
                None
            } else {
                match parse_strict_id(&args[4], 0) {
                    Ok(id) => Some(id),
                    Err(e) => return e,
                }
            };
            if exists.is_none() {
                ks.insert_new(ctx, db, key, Value::Stream(Box::default()), None);
            }
            let s = match stream_mut(ks, ctx, key, Lookup::Write) {
                Ok(Some(s)) => s,
                _ => unreachable!("exists or just created"),
            };
            if s.groups.contains_key(gname) {
                if exists.is_none() {
                    unreachable!("a new stream has no groups");
                }
                return err("BUSYGROUP Consumer Group name already exists");
            }
            let last_id = id.unwrap_or(s.last_id);
            s.groups.insert(
                gname.clone(),
                Group {
                    last_id,
                    entries_read,
                    ..Default::default()
                },
            );
            ctx.stats.dirty += 1;
            ctx.notify(crate::notify::STREAM, "xgroup-create", key);
            ctx.propagate_as_sent(args);
            Reply::OK
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let s = stream_mut(ks, ctx, key, Lookup::Write)
                .ok()
                .flatten()
                .expect("checked above");
            let id = if &args[4][..] == b"$" {
                s.last_id
            } else {
                match parse_id(&args[4], 0) {
                    Ok(id) => id,
                    Err(e) => return e,
                }
            };
            let g = s.groups.get_mut(gname).expect("checked above");
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.stats.dirty += 1;
            ctx.notify(crate::notify::STREAM, "xgroup-setid", key);
            ctx.propagate_as_sent(args);
            Reply::OK
        }
        "destroy" => {
            let s = stream_mut(ks, ctx, key, Lookup::Write)
                .ok()
                .flatten()
                .expect("checked above");
            if s.groups.remove(gname).is_none() {
                return Reply::Integer(0);
            }
            ctx.stats.dirty += 1;
            ctx.notify(crate::notify::STREAM, "xgroup-destroy", key);
            ctx.propagate_as_sent(args);
            ctx.ready_keys.push((db, key.clone()));
            Reply::Integer(1)
        }
        "createconsumer" => {
            let s = stream_mut(ks, ctx, key, Lookup::Write)
                .ok()
                .flatten()
                .expect("checked above");
            let g = s.groups.get_mut(gname).expect("checked above");
            if g.consumers.contains_key(&args[4]) {
                return Reply::Integer(0);
            }
            g.consumers.insert(
                Bytes::copy_from_slice(&args[4]),
                Consumer {
                    seen_time: now,
                    ..Default::default()
                },
            );
            ctx.stats.dirty += 1;
            ctx.notify(crate::notify::STREAM, "xgroup-createconsumer", key);
            ctx.propagate_as_sent(args);
            Reply::Integer(1)
        }
        "delconsumer" => {
            let s = stream_mut(ks, ctx, key, Lookup::Write)
                .ok()
                .flatten()
                .expect("checked above");
            let g = s.groups.get_mut(gname).expect("checked above");
            let Some(c) = g.consumers.remove(&args[4]) else {
                return Reply::Integer(0);
            };
            for id in &c.pel {
                g.pel.remove(id);
            }
            ctx.stats.dirty += 1;
            ctx.notify(crate::notify::STREAM, "xgroup-delconsumer", key);
            ctx.propagate_as_sent(args);
            Reply::Integer(c.pel.len() as i64)
        }
        _ => subcommand_syntax(args, "XGROUP"),
    }
}

/// XACK key group id [id ...]
pub fn xack(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let s = match stream_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) => s,
    };
    let Some(g) = s.groups.get_mut(&args[2]) else {
        return Reply::Integer(0);
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match parse_strict_id(a, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let mut acked = 0;
    for id in ids {
        if let Some(n) = g.pel.remove(&id) {
            if let Some(c) = g.consumers.get_mut(&n.consumer) {
                c.pel.remove(&id);
            }
            acked += 1;
        }
    }
    if acked > 0 {
        ctx.stats.dirty += acked;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(acked as i64)
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return err(errors::SYNTAX);
    }
    let mut range = None;
    if !summary {
        let mut at = 3;
        let mut minidle = 0;
        if args[3].eq_ignore_ascii_case(b"idle") {
            minidle = match parse_i64(&args[4]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if args.len() < 8 {
                return err(errors::SYNTAX);
            }
            at += 2;
        }
        let count = match parse_i64(&args[at + 2]) {
            Ok(n) => n.max(0) as usize,
            Err(e) => return e,
        };
        let start = match parse_range_end(&args[at], true) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let end = match parse_range_end(&args[at + 1], false) {
            Ok(v) => v,
            Err(e) => return e,
        };
        range = Some((minidle, start, end, count, args.get(at + 3).cloned()));
    }
    let now = ctx.now_ms;
    let g = match stream_mut(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(s) => match s.and_then(|s| s.groups.get(&args[2])) {
            Some(g) => g,
            None => return nogroup(&args[1], &args[2]),
        },
    };
    let Some((minidle, start, end, count, consumer)) = range else {
        if g.pel.is_empty() {
            return Reply::Array(vec![
                Reply::Integer(0),
                Reply::Nil,
                Reply::Nil,
                Reply::NilArray,
            ]);
        }
        let first = *g.pel.keys().next().expect("not empty");
        let last = *g.pel.keys().next_back().expect("not empty");
        let owners = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Reply::Array(vec![
                    Reply::Bulk(n.clone()),
                    Reply::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return Reply::Array(vec![
            Reply::Integer(g.pel.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(owners),
        ]);
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
        Some(name) => match g.consumers.get(name) {
            None => return Reply::Array(Vec::new()),
            Some(c) if start <= end => Box::new(c.pel.range(start..=end).copied()),
            Some(_) => Box::new(std::iter::empty()),
        },
        None if start <= end => Box::new(g.pel.range(start..=end).map(|(id, _)| *id)),
        None => Box::new(std::iter::empty()),
    };
    let mut out = Vec::new();
    for id in ids {
        if out.len() >= count {
            break;
        }
        let n = &g.pel[&id];
        let idle = now as i64 - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(n.consumer.clone()),
            Reply::Integer(idle.max(0)),
            Reply::Integer(n.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

/// What XCLAIM/XAUTOCLAIM do to one pending entry they take.
fn claim_one(g: &mut Group, id: StreamId, to: &Bytes, time: u64, retry: Option<u64>, justid: bool) {
    if !g.consumers.contains_key(to) {
        g.consumers.insert(to.clone(), Consumer::default());
    }
    let n = g.pel.get_mut(&id).expect("caller checked");
    n.delivery_time = time;
    match retry {
        Some(r) => n.delivery_count = r,
        None if !justid => n.delivery_count += 1,
        None => {}
    }
    assign(g, id, to);
}

/// Removes a pending entry whose stream entry is gone.
fn drop_nack(g: &mut Group, id: StreamId) {
    if let Some(n) = g.pel.remove(&id) {
        if let Some(c) = g.consumers.get_mut(&n.consumer) {
            c.pel.remove(&id);
        }
    }
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    // The consumer's name may be stored: a copy, not a slice of the request.
    let (key, gname, cname) = (&args[1], &args[2], &Bytes::copy_from_slice(&args[3]));
    let s = match stream_mut(ks, ctx, key, Lookup::Read) {
        Err(e) => return e,
        Ok(s) => match s {
            Some(s) if s.groups.contains_key(gname) => s,
            _ => return nogroup(key, gname),
        },
    };
    let minidle = match parse_i64(&args[4]) {
        Ok(n) => n.max(0),
        Err(_) => return err("ERR Invalid min-idle-time argument for XCLAIM"),
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retry: Option<i64> = None;
    let mut delivery: Option<i64> = None;
    let mut last_id = StreamId::default();
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let int_opt = |v: &Bytes, name: &str| {
            parse_i64(v)
                .map_err(|_| Reply::Error(format!("ERR Invalid {name} option argument for XCLAIM")))
        };
        if opt.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if opt.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if opt.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            match int_opt(&args[j], "IDLE") {
                Ok(v) => delivery = Some(now as i64 - v),
                Err(e) => return e,
            }
        } else if opt.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            match int_opt(&args[j], "TIME") {
                Ok(v) => delivery = Some(v),
                Err(e) => return e,
            }
        } else if opt.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            match int_opt(&args[j], "RETRYCOUNT") {
                Ok(v) => retry = Some(v),
                Err(e) => return e,
            }
        } else if opt.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            match parse_strict_id(&args[j], 0) {
                Ok(v) => last_id = v,
                Err(e) => return e,
            }
        } else {
            return Reply::Error(format!("ERR Unrecognized XCLAIM option '{}'", lossy(opt)));
        }
        j += 1;
    }
    let g = s.groups.get_mut(gname).expect("checked above");
    let mut propagate_last_id = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    let time = match delivery {
        Some(t) if t < 0 || t > now as i64 => now,
        Some(t) => t as u64,
        None => now,
    };
    let retry = retry.filter(|r| *r >= 0).map(|r| r as u64);
    let mut out = Vec::new();
    let mut effects = Vec::new();
    let mut seen = false;
    for id in ids {
        let Some(fields) = s.entries.get(id) else {
            if let Some(n) = g.pel.get(&id) {
                effects.push(xclaim_effect(key, gname, g.last_id, id, n));
                propagate_last_id = false;
                drop_nack(g, id);
            }
            continue;
        };
        // FORCE creates the pending entry; a new one has no idle time to check.
        let forced = force && !g.pel.contains_key(&id);
        if forced {
            g.pel.insert(
                id,
                Nack {
                    consumer: cname.clone(),
                    delivery_time: now,
                    delivery_count: 0,
                },
            );
        }
        let Some(n) = g.pel.get(&id) else { continue };
        if !forced && minidle > 0 && (now as i64 - n.delivery_time as i64) < minidle {
            continue;
        }
        if !seen {
            // streamLookupConsumer / streamCreateConsumer: seen now.
            seen = true;
            if !g.consumers.contains_key(cname) {
                ctx.notify(crate::notify::STREAM, "xgroup-createconsumer", key);
            }
            g.consumers.entry(cname.clone()).or_default().seen_time = now;
        }
        claim_one(g, id, cname, time, retry, justid);
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(id, &fields)
        });
        effects.push(xclaim_effect(key, gname, g.last_id, id, &g.pel[&id]));
        propagate_last_id = false;
    }
    if propagate_last_id {
        effects.push(setid_effect(key, gname, g));
    }
    ctx.stats.dirty += effects.len() as u64;
    for e in effects {
        ctx.propagate(e);
    }
    Reply::Array(out)
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    // The consumer's name may be stored: a copy, not a slice of the request.
    let (key, gname, cname) = (&args[1], &args[2], &Bytes::copy_from_slice(&args[3]));
    let minidle = match parse_i64(&args[4]) {
        Ok(n) => n.max(0),
        Err(_) => return err("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let start = match parse_range_end(&args[5], true) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            count = match parse_i64(&args[j + 1]) {
                Ok(n) if (1..=i64::MAX / 10).contains(&n) => n,
                _ => return err(errors::COUNT_MUST_BE_POSITIVE),
            };
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    let s = match stream_mut(ks, ctx, key, Lookup::Read) {
        Err(e) => return e,
        Ok(s) => match s {
            Some(s) if s.groups.contains_key(gname) => s,
            _ => return nogroup(key, gname),
        },
    };
    let g = s.groups.get_mut(gname).expect("checked above");
    let mut attempts = count * 10;
    let mut out = Vec::new();
    let mut deleted = Vec::new();
    let mut effects = Vec::new();
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    let mut seen = false;
    while let Some(id) = g.pel.range(cursor..).next().map(|(id, _)| *id) {
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        cursor = match incr(id) {
            Some(c) => c,
            None => {
                // The largest id: nothing can follow it.
                attempts = 0;
                id
            }
        };
        let Some(fields) = s.entries.get(id) else {
            effects.push(xclaim_effect(key, gname, g.last_id, id, &g.pel[&id]));
            drop_nack(g, id);
            deleted.push(id_reply(id));
            count -= 1;
            if id == MAX_ID {
                break;
            }
            continue;
        };
        let n = &g.pel[&id];
        if minidle > 0 && (now as i64 - n.delivery_time as i64) < minidle {
            if id == MAX_ID {
                break;
            }
            continue;
        }
        if !seen {
            seen = true;
            if !g.consumers.contains_key(cname) {
                ctx.notify(crate::notify::STREAM, "xgroup-createconsumer", key);
            }
            g.consumers.entry(cname.clone()).or_default().seen_time = now;
        }
        claim_one(g, id, cname, now, None, justid);
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(id, &fields)
        });
        count -= 1;
        effects.push(xclaim_effect(key, gname, g.last_id, id, &g.pel[&id]));
        if id == MAX_ID {
            break;
        }
    }
    ctx.stats.dirty += effects.len() as u64;
    for e in effects {
        ctx.propagate(e);
    }
    Reply::Array(vec![
        id_reply(next.unwrap_or_default()),
        Reply::Array(out),
        Reply::Array(deleted),
    ])
}

fn kv(k: &'static str, v: Reply) -> (Reply, Reply) {
    (Reply::Bulk(b(k)), v)
}

/// XINFO's lag of a group (`nil` when it cannot be known).
fn lag(s: &Stream, g: &Group) -> Reply {
    if s.entries_added == 0 {
        return Reply::Integer(0);
    }
    if g.entries_read != ENTRIES_READ_UNKNOWN && !s.has_tombstones_after(g.last_id) {
        return Reply::Integer(s.entries_added as i64 - g.entries_read);
    }
    match s.estimate_entries_read(g.last_id) {
        ENTRIES_READ_UNKNOWN => Reply::Nil,
        read => Reply::Integer(s.entries_added as i64 - read),
    }
}

fn entries_read(g: &Group) -> Reply {
    if g.entries_read == ENTRIES_READ_UNKNOWN {
        Reply::Nil
    } else {
        Reply::Integer(g.entries_read)
    }
}

/// Radix-tree figures XINFO STREAM reports: one key per listpack node (as
/// modelled); the radix tree's inner node count is an estimate.
fn radix_figures(s: &Stream) -> (i64, i64) {
    let keys = s.node_count() as i64;
    (keys, keys + 1)
}

/// XINFO CONSUMERS key group | GROUPS key | STREAM key [FULL [COUNT n]] | HELP
pub fn xinfo(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let sub = match check_sub(args, "XINFO", XINFO_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if sub == "help" {
        return help(XINFO_HELP);
    }
    let now = ctx.now_ms;
    let key = &args[2];
    let s = match stream_mut(ks, ctx, key, Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return err(errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    match sub {
        "consumers" => {
            let Some(g) = s.groups.get(&args[3]) else {
                return Reply::Error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    lossy(&args[3]),
                    lossy(key)
                ));
            };
            Reply::Array(
                g.consumers
                    .iter()
                    .map(|(name, c)| {
                        Reply::Map(vec![
                            kv("name", Reply::Bulk(name.clone())),
                            kv("pending", Reply::Integer(c.pel.len() as i64)),
                            kv(
                                "idle",
                                Reply::Integer((now as i64 - c.seen_time as i64).max(0)),
                            ),
                        ])
                    })
                    .collect(),
            )
        }
        "groups" => Reply::Array(
            s.groups
                .iter()
                .map(|(name, g)| {
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(name.clone())),
                        kv("consumers", Reply::Integer(g.consumers.len() as i64)),
                        kv("pending", Reply::Integer(g.pel.len() as i64)),
                        kv("last-delivered-id", id_reply(g.last_id)),
                        kv("entries-read", entries_read(g)),
                        kv("lag", lag(s, g)),
                    ])
                })
                .collect(),
        ),
        _ => xinfo_stream(s, args),
    }
}

fn xinfo_stream(s: &Stream, args: &[Bytes]) -> Reply {
    let mut full = false;
    let mut count: i64 = 10;
    if args.len() > 3 {
        if args.len() != 4 && args.len() != 6 || !args[3].eq_ignore_ascii_case(b"full") {
            return subcommand_syntax(args, "XINFO");
        }
        full = true;
        if args.len() == 6 {
            if !args[4].eq_ignore_ascii_case(b"count") {
                return subcommand_syntax(args, "XINFO");
            }
            count = match parse_i64(&args[5]) {
                Ok(n) => n.max(0),
                Err(e) => return e,
            };
            if count == 0 {
                count = i64::MAX;
            }
        }
    }
    let (keys, nodes) = radix_figures(s);
    let mut m = vec![
        kv("length", Reply::Integer(s.len() as i64)),
        kv("radix-tree-keys", Reply::Integer(keys)),
        kv("radix-tree-nodes", Reply::Integer(nodes)),
        kv("last-generated-id", id_reply(s.last_id)),
        kv("max-deleted-entry-id", id_reply(s.max_deleted)),
        kv("entries-added", Reply::Integer(s.entries_added as i64)),
        kv("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    let edge = |e: Option<(StreamId, crate::stream::Fields)>| {
        e.map_or(Reply::Nil, |(id, f)| entry_reply(id, &f))
    };
    if !full {
        m.push(kv("groups", Reply::Integer(s.groups.len() as i64)));
        m.push(kv("first-entry", edge(s.entries.iter().next())));
        m.push(kv(
            "last-entry",
            edge(
                s.entries
                    .last_id()
                    .and_then(|id| s.entries.get(id).map(|f| (id, f))),
            ),
        ));
        return Reply::Map(m);
    }
    let take = count as usize;
    m.push(kv(
        "entries",
        Reply::Array(
            s.entries
                .iter()
                .take(take)
                .map(|(id, f)| entry_reply(id, &f))
                .collect(),
        ),
    ));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| {
            let pel = g
                .pel
                .iter()
                .take(take)
                .map(|(id, n)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(n.consumer.clone()),
                        Reply::Integer(n.delivery_time as i64),
                        Reply::Integer(n.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let pending = c
                        .pel
                        .iter()
                        .take(take)
                        .map(|id| {
                            let n = &g.pel[id];
                            Reply::Array(vec![
                                id_reply(*id),
                                Reply::Integer(n.delivery_time as i64),
                                Reply::Integer(n.delivery_count as i64),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(cname.clone())),
                        kv("seen-time", Reply::Integer(c.seen_time as i64)),
                        kv("pel-count", Reply::Integer(c.pel.len() as i64)),
                        kv("pending", Reply::Array(pending)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                kv("name", Reply::Bulk(name.clone())),
                kv("last-delivered-id", id_reply(g.last_id)),
                kv("entries-read", entries_read(g)),
                kv("lag", lag(s, g)),
                kv("pel-count", Reply::Integer(g.pel.len() as i64)),
                kv("pending", Reply::Array(pel)),
                kv("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    m.push(kv("groups", Reply::Array(groups)));
    Reply::Map(m)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use shardis_protocol::Reply;

    #[test]
    fn groups_deliver_ack_and_propagate() {
        let mut t = T::new();
        t.run("XADD s 1-0 f 1");
        t.run("XADD s 2-0 f 2");
        assert_eq!(t.run("XGROUP CREATE s g 0"), Reply::OK);
        assert_eq!(
            t.run("XGROUP CREATE s g 0"),
            err("BUSYGROUP Consumer Group name already exists")
        );
        t.effects();
        let r = t.run("XREADGROUP GROUP g alice COUNT 1 STREAMS s >");
        assert!(matches!(r, Reply::Array(ref v) if v.len() == 1));
        assert_eq!(
            t.effects(),
            vec!["XCLAIM s g alice 0 1-0 TIME 1000000000000 RETRYCOUNT 1 FORCE JUSTID LASTID 1-0"]
        );
        t.run("XREADGROUP GROUP g bob NOACK STREAMS s >");
        assert_eq!(
            t.effects(),
            vec![
                "XGROUP CREATECONSUMER s g bob",
                "XGROUP SETID s g 2-0 ENTRIESREAD 2"
            ]
        );
        assert_eq!(t.run("XACK s g 1-0 2-0"), int(1));
        assert_eq!(
            t.run("XPENDING s g"),
            Reply::Array(vec![int(0), Reply::Nil, Reply::Nil, Reply::NilArray])
        );
        assert_eq!(
            t.run("XPENDING nos g"),
            err("NOGROUP No such key 'nos' or consumer group 'g'")
        );
    }

    #[test]
    fn claim_moves_pending_entries() {
        let mut t = T::new();
        t.run("XADD s 1-0 f 1");
        t.run("XGROUP CREATE s g 0");
        t.run("XREADGROUP GROUP g a STREAMS s >");
        t.advance(100);
        t.effects();
        assert_eq!(
            t.run("XCLAIM s g b 50 1-0 JUSTID"),
            Reply::Array(vec![bulk("1-0")])
        );
        assert_eq!(
            t.effects(),
            vec!["XCLAIM s g b 0 1-0 TIME 1000000000100 RETRYCOUNT 1 FORCE JUSTID LASTID 1-0"]
        );
        assert_eq!(t.run("XCLAIM s g c 50 1-0"), Reply::Array(vec![]));
        let r = t.run("XAUTOCLAIM s g c 0 0 COUNT 1");
        assert_eq!(
            r,
            Reply::Array(vec![
                bulk("0-0"),
                Reply::Array(vec![Reply::Array(vec![
                    bulk("1-0"),
                    Reply::Array(vec![bulk("f"), bulk("1")])
                ])]),
                Reply::Array(vec![])
            ])
        );
        t.run("XDEL s 1-0");
        let r = t.run("XAUTOCLAIM s g c 0 0");
        assert_eq!(
            r,
            Reply::Array(vec![
                bulk("0-0"),
                Reply::Array(vec![]),
                Reply::Array(vec![bulk("1-0")])
            ])
        );
        assert_eq!(t.run("XGROUP DELCONSUMER s g c"), int(0));
        assert_eq!(t.run("XGROUP DESTROY s g"), int(1));
        assert_eq!(
            t.run("XGROUP SETID s g 0"),
            err("NOGROUP No such consumer group 'g' for key name 's'")
        );
    }
}
