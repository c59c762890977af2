//! Client-side caching: CLIENT TRACKING and its invalidation messages.
//!
//! ```text
//!  tracking client (executor C)          key's owner (shard K)            redirect target (executor R)
//!  GET k ──remember (k → id, C)────────► Table.keys
//!                                         SET k (any client, any core)
//!                                         publish(): effects → invalidate
//!                                         outbox[C] ──one job per batch──► deliver on C: RESP3 push,
//!                                                                          or forward to R ─────────► push / `message`
//!                                                                          ◄── tracking-redir-broken ─┘ (R gone)
//! ```
//!
//! Redis keeps one table of tracked keys; here each shard keeps the part for
//! the keys it owns ([`Table::keys`], key → the ids of the clients that read
//! it, with their executor), filled on the owner when a tracking client's
//! read-only command runs there (the connection asks before it runs the
//! command, so no write can slip in between). A write is seen where every
//! write is seen, in the effects a command run publishes (and the multi-shard
//! write-back, FLUSHALL/FLUSHDB): when the shard's table is empty and no
//! BCAST prefix is registered, that costs one borrow and two `is_empty()`s.
//!
//! Invalidations are queued per destination executor and one local task per
//! shard sends each executor one mesh job per batch (like keyspace events);
//! the destination resolves the client (flags, protocol, redirection) there.
//! BCAST prefixes are registered on every shard; each shard collects the keys
//! written under a prefix and sends them when its outbox drains, so keys
//! written on two shards arrive as two messages (Redis sends one per event
//! loop cycle).
//!
//! Per-connection state ([`ClientTracking`]) lives in its executor's
//! [`Table::clients`], where deliveries find it; `Conn::tracking` is the
//! connection's one-flag fast path.

use crate::conn::Conn;
use crate::errors;
use crate::shard::Shard;
use bytes::Bytes;
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_commands::{flags, Command, CommandId, KeySpec};
use shardis_keyspace::Effect;
use shardis_protocol::{decode::parse_int, Reply};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A tracking client's id and the executor serving it.
pub type Track = (u64, usize);

/// One tracking connection's options (Redis's CLIENT_TRACKING_* flags).
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    /// REDIRECT target id (0: none) and its executor.
    pub redirect: u64,
    redirect_exec: usize,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    /// CLIENT CACHING was given for the next command.
    caching: bool,
    broken: bool,
    prefixes: Vec<Bytes>,
}

/// What an invalidation carries.
#[derive(Debug, Clone)]
enum Note {
    /// Default mode: one message per key.
    Keys(Vec<Bytes>),
    /// BCAST: one message with every key.
    Bcast(Vec<Bytes>),
    /// FLUSHALL/FLUSHDB: one message with a null.
    Flush,
}

/// One item of an executor's outbox.
#[derive(Debug)]
enum Item {
    /// Invalidate for tracking client `target`.
    Deliver { target: u64, note: Note },
    /// Messages for `redirect` on behalf of tracking client `from`.
    Redirect {
        redirect: u64,
        from: u64,
        from_exec: usize,
        payloads: Vec<Reply>,
    },
    /// `target`'s redirect client is gone.
    Broken {
        target: u64,
        redirect: u64,
        times: usize,
    },
}

/// Clients registered for one BCAST prefix, and the keys written under it
/// since the last send (key → the last writer's id, for NOLOOP).
#[derive(Debug, Default)]
struct Prefix {
    clients: Vec<(u64, usize, bool)>,
    pending: BTreeMap<Bytes, u64>,
}

/// One executor's tracking state.
#[derive(Default)]
pub struct Table {
    keys: HashMap<Bytes, Vec<Track>>,
    items: usize,
    prefixes: BTreeMap<Bytes, Prefix>,
    prefixes_pending: bool,
    /// Tracking connections of this executor.
    clients: HashMap<u64, ClientTracking>,
    outbox: Vec<Vec<Item>>,
    sending: Cell<bool>,
}

impl Table {
    /// True if a write on this shard may concern a tracking client.
    pub fn watching(&self) -> bool {
        !self.keys.is_empty() || !self.prefixes.is_empty()
    }

    fn queue(&mut self, exec: usize, item: Item) {
        if self.outbox.len() <= exec {
            self.outbox.resize_with(exec + 1, Vec::new);
        }
        self.outbox[exec].push(item);
    }

    /// A key was modified by client `writer` (0: none, e.g. expiry).
    fn invalidate(&mut self, key: &Bytes, writer: u64) {
        if !self.prefixes.is_empty() {
            for (p, st) in self.prefixes.iter_mut() {
                if key.starts_with(p) {
                    st.pending.insert(key.clone(), writer);
                    self.prefixes_pending = true;
                }
            }
        }
        let Some(ids) = self.keys.remove(key) else {
            return;
        };
        self.items -= ids.len();
        for (id, exec) in ids {
            // NOLOOP is decided where the client lives (it knows its flags):
            // the target id carries "this was its own write".
            let target = if writer == id { id | OWN_WRITE } else { id };
            self.queue(
                exec,
                Item::Deliver {
                    target,
                    note: Note::Keys(vec![key.clone()]),
                },
            );
        }
    }

    /// Moves BCAST keys written since the last send into the outbox.
    fn collect_bcast(&mut self) {
        if !self.prefixes_pending {
            return;
        }
        self.prefixes_pending = false;
        let mut items = Vec::new();
        for st in self.prefixes.values_mut() {
            if st.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut st.pending);
            for &(id, exec, noloop) in &st.clients {
                let keys: Vec<Bytes> = pending
                    .iter()
                    .filter(|(_, w)| !(noloop && **w == id))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !keys.is_empty() {
                    items.push((
                        exec,
                        Item::Deliver {
                            target: id,
                            note: Note::Bcast(keys),
                        },
                    ));
                }
            }
        }
        for (exec, item) in items {
            self.queue(exec, item);
        }
    }
}

/// Set in a delivered target id when the write was the client's own (NOLOOP).
const OWN_WRITE: u64 = 1 << 63;

// ------------------------------------------------------------------ writes

/// The keys a published effect writes have changed (from `Shard::publish`).
pub fn effects_written(shard: &Shard, effects: &[Effect], writer: u64) {
    {
        let mut t = shard.tracking.borrow_mut();
        if !t.watching() {
            return;
        }
        for e in effects {
            let Some(cmd) = e.args.first().and_then(|n| shardis_commands::lookup(n)) else {
                continue;
            };
            if matches!(
                cmd.id,
                CommandId::Flushall | CommandId::Flushdb | CommandId::Swapdb
            ) || matches!(cmd.keys, KeySpec::None)
            {
                continue;
            }
            let argv: Vec<&[u8]> = e.args.iter().map(|a| a.as_ref()).collect();
            for i in cmd.key_indices(&argv).unwrap_or_default() {
                t.invalidate(&e.args[i], writer);
            }
        }
    }
    kick(shard);
}

/// One key changed outside a command run: written back by a multi-shard
/// command of client `writer`, or deleted by lazy expiry (`writer` 0: for
/// no client).
pub fn key_written(shard: &Shard, key: &Bytes, writer: u64) {
    {
        let mut t = shard.tracking.borrow_mut();
        if !t.watching() {
            return;
        }
        t.invalidate(key, writer);
    }
    kick(shard);
}

/// FLUSHALL / FLUSHDB ran on this shard: forget its tracked keys (Redis frees
/// the whole table even for FLUSHDB) and send every tracking client of this
/// executor a null invalidation.
pub fn flushed(shard: &Shard) {
    {
        let mut t = shard.tracking.borrow_mut();
        t.keys.clear();
        t.items = 0;
        let ids: Vec<u64> = t.clients.keys().copied().collect();
        for id in ids {
            t.queue(
                shard.id.get(),
                Item::Deliver {
                    target: id,
                    note: Note::Flush,
                },
            );
        }
    }
    kick(shard);
}

/// Starts the sender task if anything waits in the outbox.
fn kick(shard: &Shard) {
    let t = shard.tracking.borrow();
    if t.sending.get() || (!t.prefixes_pending && t.outbox.iter().all(|o| o.is_empty())) {
        return;
    }
    t.sending.set(true);
    drop(t);
    if let Some(me) = shard.me() {
        glommio::spawn_local(send(me)).detach();
    } else {
        let mut t = shard.tracking.borrow_mut();
        t.outbox.clear();
        t.sending.set(false);
    }
}

/// Drains the outbox: local items at once, one mesh job per other executor.
async fn send(shard: Rc<Shard>) {
    loop {
        let batches = {
            let mut t = shard.tracking.borrow_mut();
            t.collect_bcast();
            std::mem::take(&mut t.outbox)
        };
        if batches.iter().all(|b| b.is_empty()) {
            shard.tracking.borrow().sending.set(false);
            return;
        }
        for (exec, items) in batches.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            if exec == shard.id.get() {
                for item in items {
                    handle(&shard, item);
                }
                continue;
            }
            let job: crate::shard::Job = Box::new(move |s| {
                for item in items {
                    handle(s, item);
                }
                kick(s);
            });
            if shard.send(ShardId(exec), job).await.is_err() {
                let mut t = shard.tracking.borrow_mut();
                t.outbox.clear();
                t.sending.set(false);
                return;
            }
        }
    }
}

fn handle(shard: &Shard, item: Item) {
    match item {
        Item::Deliver { target, note } => deliver(shard, target, note),
        Item::Redirect {
            redirect,
            from,
            from_exec,
            payloads,
        } => {
            let Some((mb, resp3, subscribed)) = client_mailbox(shard, redirect) else {
                let times = payloads.len();
                shard.tracking.borrow_mut().queue(
                    from_exec,
                    Item::Broken {
                        target: from,
                        redirect,
                        times,
                    },
                );
                return;
            };
            for p in payloads {
                push_to(shard, &mb, resp3, subscribed, true, p);
            }
        }
        Item::Broken {
            target,
            redirect,
            times,
        } => {
            let mut t = shard.tracking.borrow_mut();
            let Some(c) = t.clients.get_mut(&target) else {
                return;
            };
            if c.redirect != redirect {
                return;
            }
            c.broken = true;
            drop(t);
            if let Some(info) = shard.clients.borrow().get(&target) {
                let mut info = info.borrow_mut();
                if let Some((broken, _)) = info.tracking.as_mut() {
                    if !*broken {
                        *broken = true;
                        info.flags = info.flags.replacen('t', "tR", 1);
                    }
                }
            }
            if let Some((mb, resp3, _)) = client_mailbox(shard, target) {
                if resp3 {
                    for _ in 0..times {
                        let m = Reply::Push(vec![
                            Reply::bulk(b"tracking-redir-broken"),
                            Reply::Integer(redirect as i64),
                        ]);
                        push_raw(shard, &mb, m);
                    }
                }
            }
        }
    }
}

/// `(mailbox, speaks RESP3, subscribed)` of a client of this executor.
fn client_mailbox(shard: &Shard, id: u64) -> Option<(Rc<crate::pubsub::Mailbox>, bool, bool)> {
    let mb = shard.mailboxes.borrow().get(&id).cloned()?;
    let clients = shard.clients.borrow();
    let info = clients.get(&id)?.borrow();
    Some((mb, info.resp == 3, info.subscribed()))
}

fn push_raw(shard: &Shard, mb: &crate::pubsub::Mailbox, m: Reply) {
    let limit = shard.shared.output_limits.get(false);
    mb.push(m, 64, limit);
}

/// Sends one invalidation payload as Redis's `sendTrackingMessage` does.
fn push_to(
    shard: &Shard,
    mb: &crate::pubsub::Mailbox,
    resp3: bool,
    subscribed: bool,
    redirected: bool,
    payload: Reply,
) {
    let m = if resp3 {
        Reply::Push(vec![Reply::bulk(b"invalidate"), payload])
    } else if redirected && subscribed {
        Reply::Push(vec![
            Reply::bulk(b"message"),
            Reply::bulk(b"__redis__:invalidate"),
            payload,
        ])
    } else {
        // RESP2 without redirection: nowhere to send it.
        return;
    };
    push_raw(shard, mb, m);
}

/// Delivers a note to tracking client `target` of this executor.
fn deliver(shard: &Shard, target: u64, note: Note) {
    let own = target & OWN_WRITE != 0;
    let target = target & !OWN_WRITE;
    let c = {
        let t = shard.tracking.borrow();
        let Some(c) = t.clients.get(&target) else {
            return;
        };
        // A client that switched to BCAST drops what it tracked before.
        if matches!(note, Note::Keys(_)) && (c.bcast || (own && c.noloop)) {
            return;
        }
        c.clone()
    };
    let Some((mb, resp3, _)) = client_mailbox(shard, target) else {
        return;
    };
    let payloads: Vec<Reply> = match note {
        Note::Keys(keys) => keys
            .into_iter()
            .map(|k| Reply::Array(vec![Reply::Bulk(k)]))
            .collect(),
        Note::Bcast(keys) => vec![Reply::Array(keys.into_iter().map(Reply::Bulk).collect())],
        // The null of the tracking client's protocol, even when redirected.
        Note::Flush => vec![Reply::Raw(Bytes::from_static(if resp3 {
            b"_\r\n"
        } else {
            b"$-1\r\n"
        }))],
    };
    if c.redirect == 0 {
        for p in payloads {
            push_to(shard, &mb, resp3, false, false, p);
        }
        return;
    }
    let item = Item::Redirect {
        redirect: c.redirect,
        from: target,
        from_exec: shard.id.get(),
        payloads,
    };
    if c.redirect_exec == shard.id.get() {
        handle(shard, item);
    } else {
        shard.tracking.borrow_mut().queue(c.redirect_exec, item);
    }
}

// ------------------------------------------------------------------ reads

/// Whether `cmd` run by `conn` now makes it track the command's keys
/// (Redis's `trackingRememberKeys` conditions); None for almost everyone.
pub fn tracks(conn: &Conn, cmd: &'static Command, args: &[Bytes]) -> Option<Track> {
    if !conn.tracking {
        return None;
    }
    if cmd.flags_for(args) & flags::READONLY == 0
        || cmd.has(flags::PUBSUB)
        || crate::script::run::is_script_command(cmd)
    {
        return None;
    }
    caller(conn)
}

/// Whether `conn`'s read commands (its own, or its script's) remember keys
/// now: tracking, not BCAST, and OPTIN/OPTOUT with CLIENT CACHING allow it.
pub fn caller(conn: &Conn) -> Option<Track> {
    if !conn.tracking {
        return None;
    }
    let id = conn.info.borrow().id;
    let t = conn.shard.tracking.borrow();
    let c = t.clients.get(&id)?;
    if c.bcast || (c.optin && !c.caching) || (c.optout && c.caching) {
        return None;
    }
    Some((id, conn.shard.id.get()))
}

/// After a command ran outside MULTI: CLIENT CACHING applies to one command
/// (or one transaction), unless the command was CLIENT itself.
pub fn command_done(conn: &Conn, cmd: &'static Command) {
    if !conn.tracking || conn.tx.in_multi() || cmd.id == CommandId::Client {
        return;
    }
    let id = conn.info.borrow().id;
    if let Some(c) = conn.shard.tracking.borrow_mut().clients.get_mut(&id) {
        c.caching = false;
    }
}

/// Remembers that `track` read the keys of `cmd` that live on this shard.
pub fn remember(shard: &Shard, track: Track, cmd: &'static Command, args: &[Bytes]) {
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let n = shard.shards();
    let mut t = shard.tracking.borrow_mut();
    for i in cmd.key_indices(&argv).unwrap_or_default() {
        if crate::route::shard_of(&args[i], n) != shard.id {
            continue;
        }
        let ids = t.keys.entry(args[i].clone()).or_default();
        if !ids.iter().any(|(id, _)| *id == track.0) {
            ids.push(track);
            t.items += 1;
        }
    }
    drop(t);
    limit_keys(shard);
}

/// Remembers `cmd`'s keys on every shard that owns one (multi-shard reads,
/// before they run).
pub async fn remember_everywhere(
    shard: &Rc<Shard>,
    track: Track,
    cmd: &'static Command,
    args: &[Bytes],
) {
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let n = shard.shards();
    let mut owners: Vec<ShardId> = cmd
        .key_indices(&argv)
        .unwrap_or_default()
        .into_iter()
        .map(|i| crate::route::shard_of(&args[i], n))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    for o in owners {
        let a = args.to_vec();
        let _ = shard.call(o, move |s| remember(s, track, cmd, &a)).await;
    }
}

/// `tracking-table-max-keys`: over this shard's share of the limit, tracked
/// keys are invalidated (as if written) until it fits again.
fn limit_keys(shard: &Shard) {
    let max = shard
        .shared
        .tracking_max_keys
        .load(std::sync::atomic::Ordering::Relaxed);
    if max == 0 {
        return;
    }
    let share = max.div_ceil(shard.shards() as u64) as usize;
    {
        let mut t = shard.tracking.borrow_mut();
        if t.keys.len() <= share {
            return;
        }
        let extra: Vec<Bytes> = t.keys.keys().take(t.keys.len() - share).cloned().collect();
        for k in extra {
            t.invalidate(&k, 0);
        }
    }
    kick(shard);
}

// ------------------------------------------------------------------ commands

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p …] [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub async fn client_tracking(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let mut redir: i64 = 0;
    let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut redirect_exec = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq(a, "redirect") && more {
            j += 1;
            if redir != 0 {
                return Reply::error("ERR A client can only redirect to a single other client");
            }
            let Some(v) = parse_int(&args[j]) else {
                return Reply::error(errors::NOT_INTEGER);
            };
            redir = v;
            let id = v as u64;
            let found = conn
                .shard
                .broadcast(move |s| s.clients.borrow().contains_key(&id))
                .await
                .unwrap_or_default();
            match found.iter().position(|&f| f) {
                Some(e) if v > 0 => redirect_exec = e,
                _ => return Reply::error("ERR The client ID you want redirect to does not exist"),
            }
        } else if eq(a, "bcast") {
            bcast = true;
        } else if eq(a, "optin") {
            optin = true;
        } else if eq(a, "optout") {
            optout = true;
        } else if eq(a, "noloop") {
            noloop = true;
        } else if eq(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Reply::error(errors::SYNTAX);
        }
        j += 1;
    }
    let id = conn.info.borrow().id;
    if eq(&args[2], "on") {
        if !bcast && !prefixes.is_empty() {
            return Reply::error("ERR PREFIX option requires BCAST mode to be enabled");
        }
        let old = conn.shard.tracking.borrow().clients.get(&id).cloned();
        if let Some(o) = &old {
            if o.bcast != bcast {
                return Reply::error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
        }
        if bcast && (optin || optout) {
            return Reply::error("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if optin && optout {
            return Reply::error("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if let Some(o) = &old {
            if (optin && o.optout) || (optout && o.optin) {
                return Reply::error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
        }
        let existing = old.as_ref().map(|o| o.prefixes.clone()).unwrap_or_default();
        if bcast {
            if let Some(e) = prefix_collision(&existing, &prefixes) {
                return Reply::Error(e);
            }
        }
        let mut all = existing;
        if bcast {
            if prefixes.is_empty() {
                prefixes.push(Bytes::new());
            }
            for p in prefixes {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
            all.sort();
        }
        let state = ClientTracking {
            redirect: redir as u64,
            redirect_exec,
            bcast,
            optin,
            optout,
            noloop,
            caching: false,
            broken: false,
            prefixes: all.clone(),
        };
        conn.shard.tracking.borrow_mut().clients.insert(id, state);
        conn.tracking = true;
        if bcast {
            register_prefixes(conn, id, Some((all, noloop))).await;
        }
        refresh_info(conn);
        Reply::OK
    } else if eq(&args[2], "off") {
        disable(conn).await;
        Reply::OK
    } else {
        Reply::error(errors::SYNTAX)
    }
}

/// Redis's `checkPrefixCollisionsOrReply`: the error for the first prefix
/// that is a prefix of (or has as prefix) an existing or later given one.
fn prefix_collision(existing: &[Bytes], given: &[Bytes]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in given.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(e)
            ));
        }
        if let Some(q) = given[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(q)
            ));
        }
    }
    None
}

/// Sets (Some) or removes (None) client `id`'s BCAST prefixes on every shard.
async fn register_prefixes(conn: &Conn, id: u64, set: Option<(Vec<Bytes>, bool)>) {
    let exec = conn.shard.id.get();
    let _ = conn
        .shard
        .broadcast(move |s| {
            let mut t = s.tracking.borrow_mut();
            for st in t.prefixes.values_mut() {
                st.clients.retain(|(c, _, _)| *c != id);
            }
            t.prefixes.retain(|_, st| !st.clients.is_empty());
            if let Some((prefixes, noloop)) = &set {
                for p in prefixes {
                    t.prefixes
                        .entry(p.clone())
                        .or_default()
                        .clients
                        .push((id, exec, *noloop));
                }
            }
        })
        .await;
}

/// CLIENT TRACKING OFF, RESET and disconnect.
pub async fn disable(conn: &mut Conn) {
    if !conn.tracking {
        return;
    }
    let id = conn.info.borrow().id;
    let old = conn.shard.tracking.borrow_mut().clients.remove(&id);
    conn.tracking = false;
    if old.is_some_and(|o| o.bcast) {
        register_prefixes(conn, id, None).await;
    }
    refresh_info(conn);
}

/// CLIENT LIST's `redir=` and tracking flags.
fn refresh_info(conn: &Conn) {
    let id = conn.info.borrow().id;
    let t = conn.shard.tracking.borrow();
    let mut info = conn.info.borrow_mut();
    match t.clients.get(&id) {
        Some(c) => {
            info.redir = c.redirect as i64;
            info.tracking = Some((c.broken, c.bcast));
        }
        None => {
            info.redir = -1;
            info.tracking = None;
        }
    }
    drop(info);
    drop(t);
    crate::tx::refresh_flags(conn);
}

/// CLIENT CACHING YES|NO.
pub fn client_caching(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let id = conn.info.borrow().id;
    let mut t = conn.shard.tracking.borrow_mut();
    let Some(c) = t.clients.get_mut(&id) else {
        return Reply::error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if eq(&args[2], "yes") {
        if !c.optin {
            return Reply::error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if eq(&args[2], "no") {
        if !c.optout {
            return Reply::error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return Reply::error(errors::SYNTAX);
    }
    c.caching = true;
    Reply::OK
}

/// CLIENT GETREDIR.
pub fn client_getredir(conn: &Conn) -> Reply {
    let id = conn.info.borrow().id;
    let t = conn.shard.tracking.borrow();
    Reply::Integer(t.clients.get(&id).map_or(-1, |c| c.redirect as i64))
}

/// CLIENT TRACKINGINFO.
pub fn client_trackinginfo(conn: &Conn) -> Reply {
    let id = conn.info.borrow().id;
    let t = conn.shard.tracking.borrow();
    let c = t.clients.get(&id);
    let mut fl = vec![Reply::bulk(if c.is_some() { b"on" } else { b"off" })];
    if let Some(c) = c {
        if c.bcast {
            fl.push(Reply::bulk(b"bcast"));
        }
        if c.optin {
            fl.push(Reply::bulk(b"optin"));
            if c.caching {
                fl.push(Reply::bulk(b"caching-yes"));
            }
        }
        if c.optout {
            fl.push(Reply::bulk(b"optout"));
            if c.caching {
                fl.push(Reply::bulk(b"caching-no"));
            }
        }
        if c.noloop {
            fl.push(Reply::bulk(b"noloop"));
        }
        if c.broken {
            fl.push(Reply::bulk(b"broken_redirect"));
        }
    }
    let prefixes = c.map_or(Vec::new(), |c| {
        c.prefixes.iter().cloned().map(Reply::Bulk).collect()
    });
    Reply::Map(vec![
        (Reply::bulk(b"flags"), Reply::Set(fl)),
        (
            Reply::bulk(b"redirect"),
            Reply::Integer(c.map_or(-1, |c| c.redirect as i64)),
        ),
        (Reply::bulk(b"prefixes"), Reply::Array(prefixes)),
    ])
}

/// `(tracking_clients, tracking_total_keys, tracking_total_items,
/// tracking_total_prefixes)` over every executor.
pub async fn info(shard: &Rc<Shard>) -> (usize, usize, usize, usize) {
    let per = shard
        .broadcast(|s| {
            let t = s.tracking.borrow();
            (t.clients.len(), t.keys.len(), t.items, t.prefixes.len())
        })
        .await
        .unwrap_or_default();
    // Every shard holds the same prefix table.
    per.iter().fold((0, 0, 0, 0), |a, p| {
        (a.0 + p.0, a.1 + p.1, a.2 + p.2, a.3.max(p.3))
    })
}
