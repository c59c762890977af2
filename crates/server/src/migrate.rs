//! MIGRATE: moves keys to another server, as Redis 7.0's `migrateCommand`
//! outside cluster mode.
//!
//! Owns: the command (option parsing, the transfer, the local delete and its
//! propagation as `DEL`) and the process-wide cache of connections to targets
//! (Redis's `migrate_cached_sockets`: one per `host:port` as typed, at most 64,
//! closed after 10 s unused by shard 0's cron).
//!
//! ```text
//!  lock the keys (ascending shards) ─► DUMP payload + expiry of each (owners)
//!    ─► cached connection ─► AUTH? SELECT? RESTORE key ttl payload [REPLACE] …
//!    ─► one reply line each ─► delete what the target took, log `DEL k …`
//!    ─► unlock
//! ```
//!
//! Redis blocks its whole event loop for the transfer, which makes MIGRATE
//! atomic. Here the connection's task awaits non-blocking I/O on its executor
//! (the socket joins the executor's poller for the call) while intent locks
//! hold the keys, so no other command sees or changes them mid-move and the
//! rest of the server keeps serving. The replication markers go around the
//! locks as for any multi-shard write (`multi.rs`), so the `DEL` lands at a
//! consistent point of the stream.
//!
//! Redis's quirks are kept: the reply lines are read as `syncReadLine` reads
//! them (1023 bytes at most, a bare `\n` is a failure), a failed connect
//! surfaces as a failed write (7.0.15's `connSocketBlockingConnect` reports
//! success and the write fails), a socket error before any reply is retried
//! once on a fresh connection unless it was a timeout, and a target error
//! forgets the selected db (so a following `SELECT -1` is skipped).

use crate::conn::Conn;
use crate::net::Socket;
use crate::shard::{Pending, Shard, ShardGone};
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_keyspace::DbIndex;
use shardis_keyspace::Effect;
use shardis_protocol::Reply;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

/// Most cached connections (Redis's `MIGRATE_SOCKET_CACHE_ITEMS`).
const CACHE_ITEMS: usize = 64;
/// Seconds a cached connection may sit unused (`MIGRATE_SOCKET_CACHE_TTL`).
const CACHE_TTL_SECS: u64 = 10;
/// The transfer is written in chunks of this size, each with its own timeout.
const WRITE_CHUNK: usize = 64 * 1024;
/// Longest reply line read at once (`syncReadLine` into a 1024-byte buffer).
const LINE_MAX: usize = 1023;

const ERR_CONNECT: &str = "IOERR error or timeout connecting to the client";

/// The process-wide cache of connections to MIGRATE targets, by `host:port`
/// exactly as the command named them.
#[derive(Default)]
pub struct SocketCache {
    map: Mutex<HashMap<Vec<u8>, Cached>>,
}

/// One cache entry. `conn` is `None` while a MIGRATE uses the connection
/// (it is on that executor's poller then); the entry still counts.
struct Cached {
    conn: Option<Idle>,
    last_dbid: i64,
    last_use: u64,
}

/// A cached connection between two uses: a plain non-blocking socket, plus
/// any reply bytes read past the last line (a line cut at 1023 bytes leaves
/// the rest for the next read, as Redis leaves it in the kernel).
struct Idle {
    stream: TcpStream,
    pending: BytesMut,
}

/// What [`SocketCache::take`] found.
enum Take {
    /// The cached connection, now in use.
    Cached(Idle, i64),
    /// A new entry is reserved under the name: connect and use it.
    Reserved,
    /// Connect, use and close without caching (the cached connection is in
    /// use by another MIGRATE, or the cache is full of connections in use).
    Private,
}

impl SocketCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cached connections, in use or not (INFO's `migrate_cached_sockets`).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, name: &[u8], now: u64) -> Take {
        let mut map = self.lock();
        if let Some(c) = map.get_mut(name) {
            return match c.conn.take() {
                Some(idle) => {
                    c.last_use = now;
                    Take::Cached(idle, c.last_dbid)
                }
                None => Take::Private,
            };
        }
        if map.len() >= CACHE_ITEMS {
            // Too many: drop one at random, as Redis does (only an idle one can go).
            use rand::seq::IteratorRandom;
            let victim = map
                .iter()
                .filter(|(_, c)| c.conn.is_some())
                .map(|(k, _)| k.clone())
                .choose(&mut rand::thread_rng());
            match victim {
                Some(k) => {
                    map.remove(&k);
                }
                None => return Take::Private,
            }
        }
        map.insert(
            name.to_vec(),
            Cached {
                conn: None,
                last_dbid: -1,
                last_use: now,
            },
        );
        Take::Reserved
    }

    fn put(&self, name: &[u8], idle: Idle, last_dbid: i64) {
        if let Some(c) = self.lock().get_mut(name) {
            c.conn = Some(idle);
            c.last_dbid = last_dbid;
        }
    }

    fn remove(&self, name: &[u8]) {
        self.lock().remove(name);
    }

    /// Closes connections unused for more than 10 s (Redis's
    /// `migrateCloseTimedoutSockets`, once a second).
    pub fn sweep(&self, now: u64) {
        self.lock()
            .retain(|_, c| c.conn.is_none() || now.saturating_sub(c.last_use) <= CACHE_TTL_SECS);
    }
}

fn unix_secs() -> u64 {
    crate::shared::unix_ms() / 1000
}

/// The parsed command.
struct Options {
    host: Bytes,
    port: Bytes,
    dbid: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    username: Option<Bytes>,
    password: Option<Bytes>,
    /// The keys named, in order, repeats included.
    keys: Vec<Bytes>,
}

impl Options {
    /// The cache key: `host:port` as typed.
    fn name(&self) -> Vec<u8> {
        [&self.host[..], b":", &self.port[..]].concat()
    }
}

/// Redis's option loop, then `timeout` and `destination-db` (in that order),
/// with its errors.
fn parse(args: &[Bytes]) -> Result<Options, Reply> {
    let (mut copy, mut replace) = (false, false);
    let (mut username, mut password) = (None, None);
    let (mut first, mut num) = (3, 1);
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"copy") {
            copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(Reply::error(crate::errors::SYNTAX));
            }
            j += 1;
            password = Some(args[j].clone());
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(Reply::error(crate::errors::SYNTAX));
            }
            username = Some(args[j + 1].clone());
            password = Some(args[j + 2].clone());
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err(Reply::error(crate::errors::MIGRATE_KEYS_OPTION));
            }
            first = j + 1;
            num = args.len() - j - 1;
            break;
        } else {
            return Err(Reply::error(crate::errors::SYNTAX));
        }
        j += 1;
    }
    let int = |b: &Bytes| {
        shardis_protocol::decode::parse_int(b)
            .ok_or_else(|| Reply::error(crate::errors::NOT_INTEGER))
    };
    let timeout = int(&args[5])?;
    let dbid = int(&args[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    Ok(Options {
        host: args[1].clone(),
        port: args[2].clone(),
        dbid,
        // Capped (at ~35 years) so that deadlines stay representable.
        timeout: Duration::from_millis((timeout as u64).min(1 << 40)),
        copy,
        replace,
        username,
        password,
        keys: args[first..first + num].to_vec(),
    })
}

/// C's `atoi` as Redis reads the port, then the 16 bits getaddrinfo keeps.
fn port_number(b: &[u8]) -> u16 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    let n = if neg { -n } else { n };
    (n as i32) as u16
}

/// MIGRATE from a client: takes the keys' locks, runs, releases.
pub async fn command(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let shard = conn.shard.clone();
    let db = conn.db;
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<(DbIndex, Bytes)>> = BTreeMap::new();
    for k in &opts.keys {
        by_shard
            .entry(crate::route::shard_of(k, n))
            .or_default()
            .push((db, k.clone()));
    }
    for keys in by_shard.values_mut() {
        keys.sort();
        keys.dedup();
    }
    let tx = shard.shared.next_tx();
    let marked = shard.logging();
    let want: crate::multi::Locks = by_shard.into_iter().collect();
    let (held, all) = crate::multi::acquire(&shard, tx, marked, false, want).await;
    let mut effects = Vec::new();
    let reply = if all {
        let client = conn.info.borrow().id;
        run(&shard, db, &opts, &mut effects, client).await
    } else {
        Reply::error(crate::errors::SHUTTING_DOWN)
    };
    // No key, no lock, no markers: nothing for the merger to place.
    if marked && !held.is_empty() {
        crate::multi::tx_effects(&shard, tx, effects).await;
    }
    crate::multi::release(&shard, tx, marked, false, held).await;
    reply
}

/// MIGRATE inside EXEC or a script, whose locks already hold the keys,
/// for `client`; effects go to the transaction's `fx`.
pub async fn run_held(
    shard: &Rc<Shard>,
    db: DbIndex,
    args: &[Bytes],
    fx: &mut Vec<Effect>,
    client: u64,
) -> Reply {
    match parse(args) {
        Ok(opts) => run(shard, db, &opts, fx, client).await,
        Err(e) => e,
    }
}

/// One key found on its owner: its name, DUMP payload and expiry.
struct Found {
    key: Bytes,
    payload: Bytes,
    expire_at: Option<u64>,
}

/// The command with the keys held, for `client`: look up, transfer
/// (retrying once), delete what moved.
async fn run(
    shard: &Rc<Shard>,
    db: DbIndex,
    opts: &Options,
    fx: &mut Vec<Effect>,
    client: u64,
) -> Reply {
    let found = match lookup(shard, db, &opts.keys, fx).await {
        Ok(f) => f,
        Err(ShardGone) => return Reply::error(crate::errors::SHUTTING_DOWN),
    };
    if found.is_empty() {
        return Reply::Simple("NOKEY");
    }
    let mut may_retry = true;
    loop {
        match attempt(shard, db, opts, &found, fx, client).await {
            Outcome::Done(r) => return r,
            Outcome::SocketError {
                writing,
                timed_out,
                retry,
            } => {
                if retry && may_retry && !timed_out {
                    may_retry = false;
                    continue;
                }
                return Reply::Error(format!(
                    "IOERR error or timeout {} to target instance",
                    if writing { "writing" } else { "reading" }
                ));
            }
        }
    }
}

/// Each key's payload and expiry from its owner, in argument order; missing
/// keys are left out. A read as Redis's `lookupKeyRead` (hits, misses,
/// access time, lazy expiry, whose `DEL`s go to `fx`).
async fn lookup(
    shard: &Rc<Shard>,
    db: DbIndex,
    keys: &[Bytes],
    fx: &mut Vec<Effect>,
) -> Result<Vec<Found>, ShardGone> {
    type Looked = Vec<(usize, Option<(Bytes, Option<u64>)>)>;
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, Bytes)>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_shard
            .entry(crate::route::shard_of(k, n))
            .or_default()
            .push((i, k.clone()));
    }
    let mut pending: Vec<Pending<(Looked, Vec<Effect>)>> = Vec::new();
    for (s, keys) in by_shard {
        pending.push(
            shard
                .post(s, move |sh| {
                    let mut fx = Vec::new();
                    let looked = keys
                        .into_iter()
                        .map(|(i, k)| {
                            let f = sh.with_ctx_into(db, &mut fx, |ks, ctx| {
                                shardis_keyspace::generic::migrate_payload(ks, ctx, &k)
                            });
                            (i, f)
                        })
                        .collect();
                    (looked, fx)
                })
                .await?,
        );
    }
    let mut slots: Vec<Option<(Bytes, Option<u64>)>> = vec![None; keys.len()];
    for p in pending {
        let (looked, effects) = p.wait().await?;
        fx.extend(effects);
        for (i, f) in looked {
            slots[i] = f;
        }
    }
    Ok(keys
        .iter()
        .zip(slots)
        .filter_map(|(k, f)| {
            f.map(|(payload, expire_at)| Found {
                key: k.clone(),
                payload,
                expire_at,
            })
        })
        .collect())
}

/// How one attempt ended.
enum Outcome {
    /// The reply (success, or the target's error).
    Done(Reply),
    /// The connection failed; `retry`: before any key was acknowledged.
    SocketError {
        writing: bool,
        timed_out: bool,
        retry: bool,
    },
}

/// Why a read or write failed.
#[derive(Clone, Copy)]
struct IoFail {
    timed_out: bool,
}

/// A connection in use by one MIGRATE.
struct Lease<'a> {
    sock: Socket,
    pending: BytesMut,
    last_dbid: i64,
    /// The cache entry it belongs to (None: a private connection, closed
    /// after use).
    entry: Option<EntryGuard<'a>>,
}

/// A cache entry held by a MIGRATE. Dropped without [`give_back`] (a socket
/// error, or the command's future dropped mid-way), it removes the entry, so
/// the next MIGRATE connects anew (Redis's `migrateCloseSocket`).
struct EntryGuard<'a> {
    cache: &'a SocketCache,
    name: &'a [u8],
}

impl Drop for EntryGuard<'_> {
    fn drop(&mut self) {
        self.cache.remove(self.name);
    }
}

/// Why no connection could be had.
enum ConnectError {
    /// The address did not resolve: Redis's connect error reply.
    Unresolved,
    /// The connect failed or timed out: Redis goes on and its write fails.
    Failed(IoFail),
}

/// One try: connect (or reuse), send, read the replies, delete what moved.
async fn attempt(
    shard: &Rc<Shard>,
    db: DbIndex,
    opts: &Options,
    found: &[Found],
    fx: &mut Vec<Effect>,
    client: u64,
) -> Outcome {
    let cache = &shard.shared.migrate_sockets;
    let name = opts.name();
    let mut lease = match get_socket(cache, &name, opts).await {
        Ok(l) => l,
        Err(ConnectError::Unresolved) => return Outcome::Done(Reply::error(ERR_CONNECT)),
        Err(ConnectError::Failed(f)) => {
            return Outcome::SocketError {
                writing: true,
                timed_out: f.timed_out,
                retry: true,
            }
        }
    };
    let mut out = BytesMut::new();
    let auth = opts.password.is_some();
    if let Some(password) = &opts.password {
        match &opts.username {
            Some(user) => {
                shardis_base::encode_command(&[&b"AUTH"[..], &user[..], &password[..]], &mut out)
            }
            None => shardis_base::encode_command(&[&b"AUTH"[..], &password[..]], &mut out),
        }
    }
    let select = lease.last_dbid != opts.dbid;
    if select {
        let dbid = opts.dbid.to_string();
        shardis_base::encode_command(&[&b"SELECT"[..], dbid.as_bytes()], &mut out);
    }
    // Keys whose TTL ran out since the lookup are left out.
    let now = crate::shared::unix_ms() as i64;
    let mut sent: Vec<&Found> = Vec::with_capacity(found.len());
    for f in found {
        let ttl = match f.expire_at {
            None => 0,
            Some(at) => {
                let ttl = at as i64 - now;
                if ttl < 0 {
                    continue;
                }
                ttl.max(1)
            }
        };
        let ttl = ttl.to_string();
        let mut restore: Vec<&[u8]> = vec![b"RESTORE", &f.key[..], ttl.as_bytes(), &f.payload[..]];
        if opts.replace {
            restore.push(&b"REPLACE"[..]);
        }
        shardis_base::encode_command(&restore, &mut out);
        sent.push(f);
    }
    for chunk in out.chunks(WRITE_CHUNK) {
        let written = glommio::future::timeout(opts.timeout, lease.sock.write_all(chunk)).await;
        let fail = match written {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(IoFail { timed_out: false }),
            Err(_) => Some(IoFail { timed_out: true }),
        };
        if let Some(f) = fail {
            drop(lease);
            return Outcome::SocketError {
                writing: true,
                timed_out: f.timed_out,
                retry: true,
            };
        }
    }
    let mut auth_reply = Vec::new();
    let mut select_reply = Vec::new();
    for (wanted, line) in [(auth, &mut auth_reply), (select, &mut select_reply)] {
        if !wanted {
            continue;
        }
        match read_line(&mut lease, opts.timeout).await {
            Ok(l) => *line = l,
            Err(f) => {
                drop(lease);
                return Outcome::SocketError {
                    writing: false,
                    timed_out: f.timed_out,
                    retry: true,
                };
            }
        }
    }
    let failed = |l: &[u8]| l.first() == Some(&b'-');
    let mut target_error: Option<Reply> = None;
    let mut socket_error: Option<IoFail> = None;
    let mut moved: Vec<Bytes> = Vec::new();
    let mut answered = 0;
    for f in &sent {
        let line = match read_line(&mut lease, opts.timeout).await {
            Ok(l) => l,
            Err(e) => {
                socket_error = Some(e);
                break;
            }
        };
        answered += 1;
        let error_line = if auth && failed(&auth_reply) {
            Some(&auth_reply)
        } else if select && failed(&select_reply) {
            Some(&select_reply)
        } else if failed(&line) {
            Some(&line)
        } else {
            None
        };
        match error_line {
            // Only the first error is replied; the target may not have
            // selected the db.
            Some(e) if target_error.is_none() => {
                lease.last_dbid = -1;
                target_error = Some(target_error_reply(&e[1..]));
            }
            Some(_) => {}
            None if !opts.copy => moved.push(f.key.clone()),
            None => {}
        }
    }
    if let Some(e) = socket_error {
        // Closed: the next MIGRATE connects anew.
        drop(lease);
        if target_error.is_none() && answered == 0 {
            // Nothing was processed: a fresh connection may do better.
            return Outcome::SocketError {
                writing: false,
                timed_out: e.timed_out,
                retry: true,
            };
        }
    } else {
        if target_error.is_none() {
            lease.last_dbid = opts.dbid;
        }
        give_back(lease);
    }
    if !moved.is_empty() && delete_moved(shard, db, &moved, client).await.is_ok() {
        let mut del = Vec::with_capacity(moved.len() + 1);
        del.push(Bytes::from_static(b"DEL"));
        del.extend(moved);
        fx.push(Effect { db, args: del });
    }
    match (target_error, socket_error) {
        (Some(e), _) => Outcome::Done(e),
        (None, Some(e)) => Outcome::SocketError {
            writing: false,
            timed_out: e.timed_out,
            retry: false,
        },
        (None, None) => Outcome::Done(Reply::OK),
    }
}

/// `-ERR Target instance replied with error: …`, with CR/LF turned into
/// spaces as Redis's `addReplyErrorFormat` does.
fn target_error_reply(msg: &[u8]) -> Reply {
    let text: String = String::from_utf8_lossy(msg)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    Reply::Error(format!("ERR Target instance replied with error: {text}"))
}

/// Deletes the keys the target took, on their owners, for `client` (as
/// Redis's `dbDelete`, `signalModifiedKey` and the `del` event, per key in
/// order).
async fn delete_moved(
    shard: &Rc<Shard>,
    db: DbIndex,
    keys: &[Bytes],
    client: u64,
) -> Result<(), ShardGone> {
    let n = shard.shards();
    let mut by_shard: BTreeMap<ShardId, Vec<Bytes>> = BTreeMap::new();
    for k in keys {
        by_shard
            .entry(crate::route::shard_of(k, n))
            .or_default()
            .push(k.clone());
    }
    let mut acks = Vec::new();
    for (s, keys) in by_shard {
        acks.push(
            shard
                .post(s, move |sh| {
                    for k in keys {
                        sh.with_ctx(db, |ks, ctx| {
                            shardis_keyspace::generic::migrate_delete(ks, ctx, &k)
                        });
                        sh.key_written(db, &k, client);
                    }
                })
                .await?,
        );
    }
    for a in acks {
        a.wait().await?;
    }
    Ok(())
}

/// The cached connection to the target, or a new one (Redis's
/// `migrateGetSocket`).
async fn get_socket<'a>(
    cache: &'a SocketCache,
    name: &'a [u8],
    opts: &Options,
) -> Result<Lease<'a>, ConnectError> {
    let guard = || EntryGuard { cache, name };
    let entry = match cache.take(name, unix_secs()) {
        Take::Cached(idle, last_dbid) => {
            let entry = guard();
            let sock = Socket::new(idle.stream)
                .map_err(|_| ConnectError::Failed(IoFail { timed_out: false }))?;
            return Ok(Lease {
                sock,
                pending: idle.pending,
                last_dbid,
                entry: Some(entry),
            });
        }
        Take::Reserved => Some(guard()),
        Take::Private => None,
    };
    let stream = connect(&opts.host, port_number(&opts.port), opts.timeout).await?;
    let _ = stream.set_nodelay(true);
    let sock =
        Socket::new(stream).map_err(|_| ConnectError::Failed(IoFail { timed_out: false }))?;
    Ok(Lease {
        sock,
        pending: BytesMut::new(),
        last_dbid: -1,
        entry,
    })
}

/// Resolves `host` (off the executor when it is a name) and connects to its
/// first address. Redis 7.0.15 waits `timeout` for the connect, then goes on
/// regardless and its first write waits `timeout` again, so a connect gets
/// twice the timeout and its failure is a failed write.
async fn connect(host: &[u8], port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let host = std::str::from_utf8(host).map_err(|_| ConnectError::Unresolved)?;
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => {
            let host = host.to_string();
            let resolved = glommio::executor()
                .spawn_blocking(move || {
                    use std::net::ToSocketAddrs;
                    (host.as_str(), port)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                })
                .await;
            resolved.ok_or(ConnectError::Unresolved)?
        }
    };
    match glommio::net::TcpStream::connect_timeout(addr, timeout.saturating_mul(2)).await {
        Ok(s) => {
            let fd = s.into_raw_fd();
            #[allow(unsafe_code)]
            // SAFETY: into_raw_fd gave up glommio's ownership; we are the only owner.
            Ok(unsafe { TcpStream::from_raw_fd(fd) })
        }
        Err(e) => {
            let timed_out = matches!(e, glommio::GlommioError::TimedOut(_))
                || std::io::Error::from(e).kind() == std::io::ErrorKind::TimedOut;
            Err(ConnectError::Failed(IoFail { timed_out }))
        }
    }
}

/// Reads one reply line as Redis's `syncReadLine` into a 1024-byte buffer:
/// up to the newline (a CR before it dropped) or 1023 bytes, whichever comes
/// first; each wait for more bytes may last `timeout`. A line that is only a
/// newline counts as a failure, as its length 0 does in Redis.
async fn read_line(lease: &mut Lease<'_>, timeout: Duration) -> Result<Vec<u8>, IoFail> {
    loop {
        let limit = lease.pending.len().min(LINE_MAX);
        if let Some(pos) = lease.pending[..limit].iter().position(|&c| c == b'\n') {
            let mut line = lease.pending.split_to(pos + 1).to_vec();
            line.pop();
            if pos == 0 {
                return Err(IoFail { timed_out: false });
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if lease.pending.len() >= LINE_MAX {
            return Ok(lease.pending.split_to(LINE_MAX).to_vec());
        }
        let mut chunk = [0u8; 4096];
        match glommio::future::timeout(timeout, lease.sock.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(IoFail { timed_out: false }),
            Ok(Ok(k)) => lease.pending.extend_from_slice(&chunk[..k]),
            Err(_) => return Err(IoFail { timed_out: true }),
        }
    }
}

/// Returns a connection to the cache after a use that read every reply.
fn give_back(mut lease: Lease<'_>) {
    let Some(entry) = lease.entry.take() else {
        return;
    };
    let (cache, name) = (entry.cache, entry.name);
    std::mem::forget(entry);
    let fd = lease.sock.into_raw_fd();
    #[allow(unsafe_code)]
    // SAFETY: into_raw_fd left the poller and gave up the descriptor to us.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    cache.put(
        name,
        Idle {
            stream,
            pending: lease.pending,
        },
        lease.last_dbid,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<Bytes> {
        line.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn err(line: &[&str]) -> String {
        match parse(&args(line)) {
            Err(Reply::Error(e)) => e,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("parsed"),
        }
    }

    #[test]
    fn parses_as_redis() {
        let base = ["migrate", "h", "1", "k", "0", "5"];
        fn with(base: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
            [base, extra].concat()
        }
        assert_eq!(err(&with(&base, &["foo"])), "ERR syntax error");
        assert_eq!(err(&with(&base, &["auth"])), "ERR syntax error");
        assert_eq!(err(&with(&base, &["auth2", "u"])), "ERR syntax error");
        assert_eq!(
            err(&with(&base, &["keys", "a"])),
            crate::errors::MIGRATE_KEYS_OPTION
        );
        // Options before the integers: a syntax error wins over a bad timeout.
        assert_eq!(
            err(&["migrate", "h", "1", "k", "x", "y", "foo"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&["migrate", "h", "1", "k", "0", "x"]),
            "ERR value is not an integer or out of range"
        );
        let o = parse(&args(&[
            "migrate", "h", "1", "", "3", "0", "COPY", "auth2", "u", "p", "auth", "q", "KEYS", "a",
            "a",
        ]))
        .unwrap();
        assert!(o.copy && !o.replace);
        assert_eq!(o.timeout, Duration::from_millis(1000), "0 means 1000 ms");
        assert_eq!(o.dbid, 3);
        // AUTH after AUTH2 replaces the password and keeps the user, as in Redis.
        assert_eq!(o.username.as_deref(), Some(&b"u"[..]));
        assert_eq!(o.password.as_deref(), Some(&b"q"[..]));
        assert_eq!(o.keys, args(&["a", "a"]));
        assert_eq!(parse(&args(&base)).unwrap().keys, args(&["k"]));
        // KEYS with nothing after it names no key (NOKEY).
        let o = parse(&args(&["migrate", "h", "1", "", "0", "5", "keys"])).unwrap();
        assert!(o.keys.is_empty());
    }

    #[test]
    fn port_is_read_with_atoi() {
        assert_eq!(port_number(b"6379"), 6379);
        assert_eq!(port_number(b" 12x"), 12);
        assert_eq!(port_number(b"abc"), 0);
        assert_eq!(port_number(b"99999"), 34463);
        assert_eq!(port_number(b"-1"), 65535);
    }

    #[test]
    fn target_errors_lose_line_breaks() {
        assert_eq!(
            target_error_reply(b"BUSYKEY Target key name already exists."),
            Reply::Error(
                "ERR Target instance replied with error: BUSYKEY Target key name already exists."
                    .into()
            )
        );
        assert_eq!(
            target_error_reply(b"ERR a\rb"),
            Reply::Error("ERR Target instance replied with error: ERR a b".into())
        );
    }

    #[test]
    fn cache_reserves_reuses_and_sweeps() {
        let cache = SocketCache::default();
        assert!(matches!(cache.take(b"h:1", 100), Take::Reserved));
        // In use: a second MIGRATE to the same target connects privately.
        assert!(matches!(cache.take(b"h:1", 100), Take::Private));
        assert_eq!(cache.len(), 1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        cache.put(
            b"h:1",
            Idle {
                stream,
                pending: BytesMut::new(),
            },
            4,
        );
        match cache.take(b"h:1", 105) {
            Take::Cached(idle, db) => {
                assert_eq!(db, 4);
                cache.put(b"h:1", idle, db);
            }
            _ => panic!("not cached"),
        }
        cache.sweep(115);
        assert_eq!(cache.len(), 1, "10 s after the last use it stays");
        cache.sweep(116);
        assert!(cache.is_empty());
        // Full: an idle entry gives way; entries in use never do.
        for i in 0..CACHE_ITEMS {
            assert!(matches!(
                cache.take(format!("h:{i}").as_bytes(), 1),
                Take::Reserved
            ));
        }
        assert!(matches!(cache.take(b"x:1", 1), Take::Private));
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        cache.put(
            b"h:7",
            Idle {
                stream,
                pending: BytesMut::new(),
            },
            0,
        );
        assert!(matches!(cache.take(b"x:1", 1), Take::Reserved));
        assert_eq!(cache.len(), CACHE_ITEMS);
        // h:7 was the one dropped; every other entry is in use now.
        assert!(matches!(cache.take(b"h:7", 1), Take::Private));
    }
}
