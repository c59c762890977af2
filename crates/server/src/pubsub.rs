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

use crate::conn::Conn;
use crate::errors;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use shardis_config::ClientBufferLimit;
use shardis_keyspace::glob::glob_match;
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
}

impl Subs {
    /// True while subscribed to any channel or pattern (Redis's CLIENT_PUBSUB).
    pub fn active(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    fn count(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }
}

type Subscribers = Vec<(u64, Rc<Mailbox>)>;

/// One executor's subscribers.
#[derive(Default)]
pub struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
}

impl Registry {
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
        for (map, pattern) in [(&self.channels, false), (&self.patterns, true)] {
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
    fn deliver(&self, channel: &Bytes, msg: &Bytes, limit: ClientBufferLimit) -> (i64, Vec<u64>) {
        let mut n = 0;
        let mut over = Vec::new();
        // Encoded size, roughly: headers plus the three or four bulks.
        let size = 64 + channel.len() + msg.len();
        if let Some(subs) = self.channels.get(channel) {
            for (id, mb) in subs {
                let m = Reply::Push(vec![
                    Reply::Bulk(Bytes::from_static(b"message")),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(msg.clone()),
                ]);
                if !mb.push(m, size, limit) {
                    over.push(*id);
                }
                n += 1;
            }
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
    }
    crate::tx::refresh_flags(conn);
}

/// SUBSCRIBE / PSUBSCRIBE: one acknowledgement per name, as raw replies.
pub fn subscribe(conn: &mut Conn, args: &[Bytes], pattern: bool) -> Reply {
    let id = conn.info.borrow().id;
    let mut out = BytesMut::new();
    for name in &args[1..] {
        let mb = conn.subs.mailbox.clone();
        let list = if pattern {
            &mut conn.subs.patterns
        } else {
            &mut conn.subs.channels
        };
        if !list.contains(name) {
            list.push(name.clone());
            let mut reg = conn.shard.pubsub.borrow_mut();
            let map = if pattern {
                &mut reg.patterns
            } else {
                &mut reg.channels
            };
            Registry::add(map, name, id, &mb);
        }
        let kind: &'static [u8] = if pattern { b"psubscribe" } else { b"subscribe" };
        ack(kind, Some(name), conn.subs.count()).encode(conn.proto, &mut out);
    }
    sync_info(conn);
    Reply::Raw(out.freeze())
}

/// UNSUBSCRIBE / PUNSUBSCRIBE (no names: all of them).
pub fn unsubscribe(conn: &mut Conn, args: &[Bytes], pattern: bool) -> Reply {
    let id = conn.info.borrow().id;
    let kind: &'static [u8] = if pattern {
        b"punsubscribe"
    } else {
        b"unsubscribe"
    };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else if pattern {
        conn.subs.patterns.clone()
    } else {
        conn.subs.channels.clone()
    };
    let mut out = BytesMut::new();
    if names.is_empty() {
        ack(kind, None, conn.subs.count()).encode(conn.proto, &mut out);
    }
    for name in &names {
        let list = if pattern {
            &mut conn.subs.patterns
        } else {
            &mut conn.subs.channels
        };
        if let Some(pos) = list.iter().position(|c| c == name) {
            list.remove(pos);
            let mut reg = conn.shard.pubsub.borrow_mut();
            let map = if pattern {
                &mut reg.patterns
            } else {
                &mut reg.channels
            };
            Registry::remove(map, name, id);
        }
        ack(kind, Some(name), conn.subs.count()).encode(conn.proto, &mut out);
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
    }
    conn.subs.mailbox.queue.borrow_mut().clear();
    sync_info(conn);
}

/// PUBLISH channel message: delivered on every core; propagated to replicas.
pub async fn publish(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let channel = args[1].clone();
    let msg = args[2].clone();
    let counts = conn
        .shard
        .broadcast(move |s| {
            let limit = s.shared.output_limits.get(true);
            let (n, over) = s.pubsub.borrow().deliver(&channel, &msg, limit);
            for id in over {
                if let Some(c) = s.clients.borrow().get(&id) {
                    let mut c = c.borrow_mut();
                    crate::limits::log_output_limit(&c.line());
                    c.kill();
                }
            }
            n
        })
        .await;
    let Ok(counts) = counts else {
        return Reply::error(errors::SHUTTING_DOWN);
    };
    if !conn.master_link {
        conn.shard.log_effects(std::iter::once(Effect {
            db: conn.db,
            args: args.to_vec(),
        }));
    }
    Reply::Integer(counts.iter().sum())
}

/// `(pubsub_channels, pubsub_patterns)` for INFO stats: distinct channels with
/// a subscriber and distinct patterns, over every core.
pub async fn counts(shard: &Rc<crate::shard::Shard>) -> (usize, usize) {
    let names = shard
        .broadcast(|s| {
            let reg = s.pubsub.borrow();
            (
                reg.channels.keys().cloned().collect::<Vec<_>>(),
                reg.patterns.keys().cloned().collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap_or_default();
    let mut ch = BTreeSet::new();
    let mut pat = BTreeSet::new();
    for (c, p) in names {
        ch.extend(c);
        pat.extend(p);
    }
    (ch.len(), pat.len())
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
        (b"channels", 2 | 3) => {
            let pattern = args.get(2).cloned();
            let r = conn
                .shard
                .broadcast(move |s| {
                    s.pubsub
                        .borrow()
                        .channels
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
        (b"numsub", _) => {
            let chans: Vec<Bytes> = args[2..].to_vec();
            let q = chans.clone();
            let r = conn
                .shard
                .broadcast(move |s| {
                    let reg = s.pubsub.borrow();
                    q.iter()
                        .map(|c| reg.channels.get(c).map_or(0, |v| v.len() as i64))
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
        (b"numpat", 2) => Reply::Integer(counts(&conn.shard).await.1 as i64),
        // Sharded pub/sub (SSUBSCRIBE) does not exist here, so no shard channels.
        (b"shardchannels", 2 | 3) => Reply::Array(Vec::new()),
        (b"shardnumsub", _) => Reply::Array(
            args[2..]
                .iter()
                .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Integer(0)])
                .collect(),
        ),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "pubsub")),
    }
}
