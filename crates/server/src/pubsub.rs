//! Pub/Sub across cores.
//!
//! ```text
//!  PUBLISH (any core) ──job per shard──► Registry on each executor ──► Mailbox of
//!                                         (local subscribers only)       each local
//!        ◄── receiver count per shard ────┘                              subscriber
//! ```
//!
//! A subscriber registers in its own executor's [`Registry`]. PUBLISH sends
//! one job to every shard; each delivers to its local subscribers (exact
//! channel, then patterns with Redis's glob) by pushing the message into the
//! subscriber's [`Mailbox`] and waking its connection, which waits on "socket
//! readable or mailbox non-empty". The reply is the sum of the counts.
//!
//! Sharded Pub/Sub (SSUBSCRIBE/SPUBLISH) is a third, separate namespace of
//! exact channels: outside cluster mode Redis keeps it apart from ordinary
//! channels (own counts, own `smessage` replies) but delivers it the same way,
//! so it travels the same path.

use crate::conn::Conn;
use crate::errors;
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_config::ClientBufferLimit;
use shardis_keyspace::glob::glob_match;
use shardis_keyspace::notify::Event;
use shardis_keyspace::Effect;
use shardis_protocol::{Protocol, Reply};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::task::Waker;

/// Messages waiting to be written to one subscribed connection.
#[derive(Default)]
pub struct Mailbox {
    queue: RefCell<VecDeque<Reply>>,
    waker: Cell<Option<Waker>>,
    /// Approximate encoded size of `queue`.
    queued_bytes: Cell<usize>,
    /// Replies the connection is writing now (its output buffer).
    pub in_flight: Cell<usize>,
    /// The client broke its output buffer limit: drop further messages.
    pub closing: Cell<bool>,
    /// Soft-limit timing for `client-output-buffer-limit`.
    pub limit: crate::limits::OutputLimit,
}

impl Mailbox {
    /// True if no message waits.
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Registers the connection task to wake on the next message.
    pub fn set_waker(&self, w: &Waker) {
        self.waker.set(Some(w.clone()));
    }

    /// Queues a message of about `size` bytes; false (and the message is
    /// dropped) once the client is over its output buffer `limit`.
    pub(crate) fn push(&self, r: Reply, size: usize, limit: ClientBufferLimit) -> bool {
        if self.closing.get() {
            return true;
        }
        let pending = self.queued_bytes.get() + size + self.in_flight.get();
        if self.limit.exceeded(pending as u64, limit) {
            self.closing.set(true);
            self.queue.borrow_mut().clear();
            self.queued_bytes.set(0);
            return false;
        }
        self.queue.borrow_mut().push_back(r);
        self.queued_bytes.set(self.queued_bytes.get() + size);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
    }

    /// Bytes queued and being written: the client's output buffer.
    pub fn pending_bytes(&self) -> usize {
        self.queued_bytes.get() + self.in_flight.get()
    }

    /// Encodes every waiting message into `out`.
    pub fn drain_into(&self, proto: Protocol, out: &mut BytesMut) {
        for r in self.queue.borrow_mut().drain(..) {
            r.encode(proto, out);
        }
        self.queued_bytes.set(0);
    }
}

/// A connection's subscriptions.
#[derive(Default)]
pub struct Subs {
    /// Where this connection's messages are queued.
    pub mailbox: Rc<Mailbox>,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    shard_channels: Vec<Bytes>,
}

impl Subs {
    /// True while subscribed to any channel, pattern or shard channel (Redis's
    /// CLIENT_PUBSUB).
    pub fn active(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty() || !self.shard_channels.is_empty()
    }

    /// True while subscribed to `channel` (not a pattern, not a shard channel).
    pub fn has_channel(&self, channel: &[u8]) -> bool {
        self.channels.iter().any(|c| c == channel)
    }

    /// The count Redis puts in a (un)subscribe acknowledgement: channels and
    /// patterns together, shard channels on their own.
    fn count(&self, kind: Kind) -> i64 {
        match kind {
            Kind::Channel | Kind::Pattern => (self.channels.len() + self.patterns.len()) as i64,
            Kind::Shard => self.shard_channels.len() as i64,
        }
    }

    fn list(&mut self, kind: Kind) -> &mut Vec<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

/// The three subscription namespaces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH (sharded Pub/Sub).
    Shard,
}

impl Kind {
    fn subscribe_ack(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    fn unsubscribe_ack(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

type Subscribers = Vec<(u64, Rc<Mailbox>)>;

/// One executor's subscribers.
#[derive(Default)]
pub struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
    shard_channels: HashMap<Bytes, Subscribers>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn map_ref(&self, kind: Kind) -> &HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn add(map: &mut HashMap<Bytes, Subscribers>, name: &Bytes, id: u64, mb: &Rc<Mailbox>) {
        map.entry(name.clone()).or_default().push((id, mb.clone()));
    }

    fn remove(map: &mut HashMap<Bytes, Subscribers>, name: &Bytes, id: u64) {
        if let Some(v) = map.get_mut(name) {
            v.retain(|(c, _)| *c != id);
            if v.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Ids of local subscribers to a channel (or pattern) that `allowed`
    /// refuses; `allowed(name, is_pattern)`.
    pub fn subscribers_outside(&self, allowed: impl Fn(&[u8], bool) -> bool) -> Vec<u64> {
        let mut ids = Vec::new();
        for (map, pattern) in [
            (&self.channels, false),
            (&self.patterns, true),
            (&self.shard_channels, false),
        ] {
            for (name, subs) in map {
                if !allowed(name, pattern) {
                    ids.extend(subs.iter().map(|(id, _)| *id));
                }
            }
        }
        ids
    }

    /// Delivers a message to the local subscribers; returns how many got it
    /// and the ids of subscribers that broke their output buffer `limit`.
    fn deliver(
        &self,
        sharded: bool,
        channel: &Bytes,
        msg: &Bytes,
        limit: ClientBufferLimit,
    ) -> (i64, Vec<u64>) {
        let mut n = 0;
        let mut over = Vec::new();
        // Encoded size, roughly: headers plus the three or four bulks.
        let size = 64 + channel.len() + msg.len();
        let (map, kind): (_, &'static [u8]) = if sharded {
            (&self.shard_channels, b"smessage")
        } else {
            (&self.channels, b"message")
        };
        if let Some(subs) = map.get(channel) {
            for (id, mb) in subs {
                let m = Reply::Push(vec![
                    Reply::Bulk(Bytes::from_static(kind)),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(msg.clone()),
                ]);
                if !mb.push(m, size, limit) {
                    over.push(*id);
                }
                n += 1;
            }
        }
        if sharded {
            return (n, over);
        }
        for (pat, subs) in &self.patterns {
            if !glob_match(pat, channel, false) {
                continue;
            }
            for (id, mb) in subs {
                let m = Reply::Push(vec![
                    Reply::Bulk(Bytes::from_static(b"pmessage")),
                    Reply::Bulk(pat.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(msg.clone()),
                ]);
                if !mb.push(m, size + pat.len(), limit) {
                    over.push(*id);
                }
                n += 1;
            }
        }
        (n, over)
    }
}

fn ack(kind: &'static [u8], name: Option<&Bytes>, count: i64) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(kind)),
        name.map_or(Reply::Nil, |n| Reply::Bulk(n.clone())),
        Reply::Integer(count),
    ])
}

fn sync_info(conn: &Conn) {
    {
        let mut info = conn.info.borrow_mut();
        info.sub = conn.subs.channels.len();
        info.psub = conn.subs.patterns.len();
        info.ssub = conn.subs.shard_channels.len();
    }
    crate::tx::refresh_flags(conn);
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one acknowledgement per name, as raw replies.
pub fn subscribe(conn: &mut Conn, args: &[Bytes], kind: Kind) -> Reply {
    let id = conn.info.borrow().id;
    let mut out = BytesMut::new();
    for name in &args[1..] {
        let mb = conn.subs.mailbox.clone();
        let list = conn.subs.list(kind);
        if !list.contains(name) {
            list.push(name.clone());
            Registry::add(conn.shard.pubsub.borrow_mut().map(kind), name, id, &mb);
        }
        ack(kind.subscribe_ack(), Some(name), conn.subs.count(kind)).encode(conn.proto, &mut out);
    }
    sync_info(conn);
    Reply::Raw(out.freeze())
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE (no names: all of them).
pub fn unsubscribe(conn: &mut Conn, args: &[Bytes], kind: Kind) -> Reply {
    let id = conn.info.borrow().id;
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        conn.subs.list(kind).clone()
    };
    let mut out = BytesMut::new();
    if names.is_empty() {
        ack(kind.unsubscribe_ack(), None, conn.subs.count(kind)).encode(conn.proto, &mut out);
    }
    for name in &names {
        let list = conn.subs.list(kind);
        if let Some(pos) = list.iter().position(|c| c == name) {
            list.remove(pos);
            Registry::remove(conn.shard.pubsub.borrow_mut().map(kind), name, id);
        }
        ack(kind.unsubscribe_ack(), Some(name), conn.subs.count(kind)).encode(conn.proto, &mut out);
    }
    sync_info(conn);
    Reply::Raw(out.freeze())
}

/// RESET and disconnect: drop every subscription without replying.
pub fn reset(conn: &mut Conn) {
    let id = conn.info.borrow().id;
    {
        let mut reg = conn.shard.pubsub.borrow_mut();
        for c in conn.subs.channels.drain(..) {
            Registry::remove(&mut reg.channels, &c, id);
        }
        for p in conn.subs.patterns.drain(..) {
            Registry::remove(&mut reg.patterns, &p, id);
        }
        for c in conn.subs.shard_channels.drain(..) {
            Registry::remove(&mut reg.shard_channels, &c, id);
        }
    }
    conn.subs.mailbox.queue.borrow_mut().clear();
    sync_info(conn);
}

/// PUBLISH / SPUBLISH channel message: delivered on every core; propagated
/// to replicas (Redis's `forceCommandPropagation` outside cluster mode).
pub async fn publish(conn: &mut Conn, args: &[Bytes], sharded: bool) -> Reply {
    let channel = args[1].clone();
    let msg = args[2].clone();
    let counts = conn
        .shard
        .broadcast(move |s| deliver(s, sharded, &channel, &msg))
        .await;
    let Ok(counts) = counts else {
        return Reply::error(errors::SHUTTING_DOWN);
    };
    if !conn.master_link {
        conn.propagate(Effect {
            db: conn.db,
            args: args.to_vec(),
        });
    }
    Reply::Integer(counts.iter().sum())
}

/// Delivers one message to this core's subscribers (closing those over their
/// output limit); returns how many received it.
pub fn deliver_here(s: &crate::shard::Shard, channel: &Bytes, msg: &Bytes) -> i64 {
    deliver(s, false, channel, msg)
}

/// [`deliver_here`] for an ordinary (`sharded` false) or shard channel.
pub fn deliver(s: &crate::shard::Shard, sharded: bool, channel: &Bytes, msg: &Bytes) -> i64 {
    let limit = s.shared.output_limits.get(true);
    let (n, over) = s.pubsub.borrow().deliver(sharded, channel, msg, limit);
    for id in over {
        if let Some(c) = s.clients.borrow().get(&id) {
            let mut c = c.borrow_mut();
            crate::limits::log_output_limit(&c.line());
            c.kill();
        }
    }
    n
}

/// `(pubsub_channels, pubsub_patterns, pubsubshard_channels)` for INFO stats:
/// distinct names with a subscriber, over every core.
pub async fn counts(shard: &Rc<crate::shard::Shard>) -> (usize, usize, usize) {
    let names = shard
        .broadcast(|s| {
            let reg = s.pubsub.borrow();
            [Kind::Channel, Kind::Pattern, Kind::Shard]
                .map(|k| reg.map_ref(k).keys().cloned().collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
    let mut sets: [BTreeSet<Bytes>; 3] = Default::default();
    for per_core in names {
        for (set, names) in sets.iter_mut().zip(per_core) {
            set.extend(names);
        }
    }
    (sets[0].len(), sets[1].len(), sets[2].len())
}

/// PUBSUB CHANNELS / SHARDCHANNELS: distinct names over every core.
async fn channel_list(conn: &Conn, kind: Kind, pattern: Option<Bytes>) -> Reply {
    let r = conn
        .shard
        .broadcast(move |s| {
            s.pubsub
                .borrow()
                .map_ref(kind)
                .keys()
                .filter(|c| pattern.as_ref().is_none_or(|p| glob_match(p, c, false)))
                .cloned()
                .collect::<Vec<_>>()
        })
        .await;
    match r {
        Ok(lists) => {
            let set: BTreeSet<Bytes> = lists.into_iter().flatten().collect();
            Reply::Array(set.into_iter().map(Reply::Bulk).collect())
        }
        Err(_) => Reply::error(errors::SHUTTING_DOWN),
    }
}

/// PUBSUB NUMSUB / SHARDNUMSUB: subscribers per name, summed over every core.
async fn numsub(conn: &Conn, kind: Kind, chans: Vec<Bytes>) -> Reply {
    let q = chans.clone();
    let r = conn
        .shard
        .broadcast(move |s| {
            let reg = s.pubsub.borrow();
            let map = reg.map_ref(kind);
            q.iter()
                .map(|c| map.get(c).map_or(0, |v| v.len() as i64))
                .collect::<Vec<_>>()
        })
        .await;
    match r {
        Ok(per_shard) => {
            let mut out = Vec::with_capacity(chans.len() * 2);
            for (i, c) in chans.into_iter().enumerate() {
                out.push(Reply::Bulk(c));
                out.push(Reply::Integer(per_shard.iter().map(|v| v[i]).sum()));
            }
            Reply::Array(out)
        }
        Err(_) => Reply::error(errors::SHUTTING_DOWN),
    }
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP.
pub async fn pubsub(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"help", 2) => Reply::Array(HELP.iter().map(|l| Reply::Status(l.to_string())).collect()),
        (b"channels", 2 | 3) => channel_list(conn, Kind::Channel, args.get(2).cloned()).await,
        (b"shardchannels", 2 | 3) => channel_list(conn, Kind::Shard, args.get(2).cloned()).await,
        (b"numsub", _) => numsub(conn, Kind::Channel, args[2..].to_vec()).await,
        (b"shardnumsub", _) => numsub(conn, Kind::Shard, args[2..].to_vec()).await,
        (b"numpat", 2) => Reply::Integer(counts(&conn.shard).await.1 as i64),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "pubsub")),
    }
}

// ------------------------------------------------------------- keyspace events

/// Keyspace notifications waiting to leave this executor for the others.
#[derive(Default)]
pub struct EventOutbox {
    queue: RefCell<Vec<(Bytes, Bytes)>>,
    /// A sender task is draining `queue`.
    sending: Cell<bool>,
}

/// Publishes the keyspace events of one command run (Redis's
/// `notifyKeyspaceEvent`): `__keyspace@<db>__:<key>` with the event, then
/// `__keyevent@<db>__:<event>` with the key, as `flags` (K, E) ask.
///
/// Subscribers on this executor receive them at once. The other executors
/// are sent them right away, before the command's reply can leave, so a
/// client that waits for its reply and writes again on another shard is seen
/// in that order by every subscriber, as with Redis's one thread. A full
/// queue to an executor falls back to a sender task; while it runs, later
/// events queue behind it, so events of one key (always produced on the shard
/// that owns it) still reach every subscriber in the order they happened.
pub fn keyspace_events(shard: &Shard, flags: u32, events: &mut Vec<Event>) {
    use shardis_keyspace::notify::{KEYEVENT, KEYSPACE};
    let mut msgs = Vec::with_capacity(events.len() * 2);
    for e in events.drain(..) {
        if flags & KEYSPACE != 0 {
            let mut ch = BytesMut::with_capacity(20 + e.key.len());
            ch.extend_from_slice(format!("__keyspace@{}__:", e.db).as_bytes());
            ch.extend_from_slice(&e.key);
            msgs.push((ch.freeze(), Bytes::from_static(e.event.as_bytes())));
        }
        if flags & KEYEVENT != 0 {
            let ch = Bytes::from(format!("__keyevent@{}__:{}", e.db, e.event));
            msgs.push((ch, e.key));
        }
    }
    for (ch, msg) in &msgs {
        deliver_here(shard, ch, msg);
    }
    if shard.shards() == 1 || msgs.is_empty() {
        return;
    }
    let out = &shard.events_out;
    if out.sending.get() {
        // A sender task is behind on some executor: keep the order.
        out.queue.borrow_mut().extend(msgs);
        return;
    }
    let batch = std::sync::Arc::new(msgs);
    let mut missed = Vec::new();
    for t in 0..shard.shards() {
        if t == shard.id.get() {
            continue;
        }
        if let Err(Some(_)) = shard.try_send_job(ShardId(t), deliver_job(&batch)) {
            missed.push(t);
        }
    }
    if missed.is_empty() {
        return;
    }
    match shard.me() {
        Some(me) => {
            out.sending.set(true);
            glommio::spawn_local(send_events(me, batch, missed)).detach();
        }
        // The shard is being dropped: nobody is left to send to.
        None => out.queue.borrow_mut().clear(),
    }
}

/// A job that hands `batch` to the subscribers of the executor it runs on.
fn deliver_job(batch: &std::sync::Arc<Vec<(Bytes, Bytes)>>) -> crate::shard::Job {
    let b = batch.clone();
    Box::new(move |s| {
        for (ch, msg) in b.iter() {
            deliver_here(s, ch, msg);
        }
    })
}

/// Sends `first` to the executors in `missed` (their queues were full), then
/// drains this executor's outbox to every other executor, batch by batch.
async fn send_events(
    shard: Rc<Shard>,
    first: std::sync::Arc<Vec<(Bytes, Bytes)>>,
    missed: Vec<usize>,
) {
    let mut pending = Some((first, missed));
    loop {
        let (batch, targets) = match pending.take() {
            Some(p) => p,
            None => {
                let batch = std::mem::take(&mut *shard.events_out.queue.borrow_mut());
                if batch.is_empty() {
                    shard.events_out.sending.set(false);
                    return;
                }
                let all = (0..shard.shards())
                    .filter(|&t| t != shard.id.get())
                    .collect();
                (std::sync::Arc::new(batch), all)
            }
        };
        for t in targets {
            if shard.send(ShardId(t), deliver_job(&batch)).await.is_err() {
                // Shutting down: nobody is left to receive them.
                shard.events_out.queue.borrow_mut().clear();
                shard.events_out.sending.set(false);
                return;
            }
        }
    }
}
