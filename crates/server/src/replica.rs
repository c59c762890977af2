//! The replica side: REPLICAOF, the link to our master, and promotion.
//!
//! The link runs on shard 0. It does Redis's handshake (PING, AUTH,
//! REPLCONF listening-port/capa, PSYNC), loads a full-sync RDB into every shard,
//! then applies the command stream through an ordinary [`Conn`] flagged as the
//! master link, so each command is routed to its shard exactly like a client's
//! (per-shard FIFO keeps per-key order). Every applied command's bytes are
//! forwarded verbatim to our own backlog and sub-replicas at the same offsets:
//! chained replication, which PSYNC2 failover depends on.

use crate::conn::Conn;
use crate::repl::MasterInfo;
use crate::shard::Shard;
use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use shardis_keyspace::DbIndex;
use shardis_protocol::{DecodeLimits, Reply};
use shardis_replication::{encode_command, Backlog, LinkError, LinkPhase, ReplId, ReplIds};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a link attempt ended.
type LinkResult = Result<(), LinkError>;

/// REPLICAOF host port (runs on shard 0).
/// `who` is the requesting client's description, or None for `replicaof` in the
/// config file at start-up (no cached master then, unless the dump file had one).
pub async fn replicaof(shard: Rc<Shard>, host: String, port: u16, who: Option<String>) -> Reply {
    {
        let repl = shard.repl().borrow();
        if let Some(m) = &repl.master {
            if m.host == host && m.port == port {
                crate::log!(Notice, "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
                return Reply::Status("OK Already connected to specified master".into());
            }
        }
    }
    let was_master = shard.repl().borrow().master.is_none();
    if was_master && who.is_some() {
        crate::log!(Notice, "Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer.");
    }
    // Clients blocked on this master would otherwise consume the new
    // master's stream (Redis's disconnectAllBlockedClients); WAIT callers
    // notice the role themselves (`wait_for_acks`).
    let _ = shard
        .broadcast(|s| {
            s.store.replica.set(true);
            *s.write_log.entries.borrow_mut() = None;
            s.write_log.signal.new_log_epoch();
            crate::blocking::unblock_all_here(s, crate::errors::UNBLOCKED_ROLE_CHANGE);
        })
        .await;
    crate::logging::set_role(b'S');
    let generation = {
        let mut repl = shard.repl().borrow_mut();
        let generation = repl.master.as_ref().map(|m| m.generation + 1).unwrap_or(1);
        // A master's own history is what it offers the new master (cached master).
        if who.is_some() {
            repl.cached = true;
        }
        if repl.backlog.is_none() {
            let size = shard.shared.config().repl_backlog_size as usize;
            let offset = repl.offset;
            repl.backlog = Some(Backlog::new(size, offset));
        }
        repl.master = Some(MasterInfo {
            host: host.clone(),
            port,
            phase: LinkPhase::Connect,
            last_io: Instant::now(),
            // Redis's repl_down_since: dropping an up link starts it, a re-point
            // while down keeps it, and a master turning replica has none (-1),
            // which Sentinel's replica selection reads.
            down_since: repl.master.as_ref().and_then(|m| {
                if m.phase.is_up() {
                    Some(Instant::now())
                } else {
                    m.down_since
                }
            }),
            read_offset: repl.master_offset(),
            generation,
            link_fd: None,
        });
        shard.shared.master_link_down.store(true, Ordering::Relaxed);
        generation
    };
    link_round_done(&shard).await;
    if let Some(who) = &who {
        crate::log!(
            Notice,
            "REPLICAOF {}:{} enabled (user request from '{}')",
            host,
            port,
            who
        );
    }
    let s = shard.clone();
    glommio::spawn_local(async move { link_loop(s, generation).await }).detach();
    Reply::OK
}

/// REPLICAOF NO ONE (runs on shard 0): promotion that keeps the old history.
pub async fn promote(shard: Rc<Shard>, who: String) -> Reply {
    if shard.repl().borrow().master.is_none() {
        return Reply::OK;
    }
    promote_quietly(&shard).await;
    crate::log!(Notice, "MASTER MODE enabled (user request from '{}')", who);
    Reply::OK
}

/// Waits until the master link has finished the round it is applying. A
/// role change first ends the link's generation (so it starts no new round),
/// then waits here: the round's commands are then both applied and in our
/// backlog, and the offset it reads covers exactly them.
async fn link_round_done(shard: &Rc<Shard>) {
    while shard.repl().borrow().link_round_active {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

async fn promote_quietly(shard: &Rc<Shard>) {
    shard.repl().borrow_mut().master = None;
    shard
        .shared
        .master_link_down
        .store(false, Ordering::Relaxed);
    link_round_done(shard).await;
    {
        let mut repl = shard.repl().borrow_mut();
        let offset = repl.master_offset();
        let new_id = crate::shared::random_repl_id();
        repl.ids.shift(new_id, offset);
        crate::log!(
            Notice,
            "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
            repl.ids.replid2,
            repl.ids.second_offset,
            repl.ids.replid
        );
        repl.merger.force_select();
        repl.disconnect_replicas();
    }
    let _ = shard
        .broadcast(|s| {
            s.store.replica.set(false);
            *s.write_log.entries.borrow_mut() = Some(Vec::new());
        })
        .await;
    crate::logging::set_role(b'M');
}

/// `PSYNC <replid> <offset> FAILOVER` from our master: promote ourselves, then
/// the PSYNC continues as a partial resync against our new history.
pub async fn promote_for_failover(shard: Rc<Shard>, replid: String, who: String) -> Reply {
    {
        let repl = shard.repl().borrow();
        if repl.master.is_none() || !repl.ids.replid.is(&replid) {
            return Reply::error("ERR PSYNC FAILOVER replid must match my replid.");
        }
    }
    promote_quietly(&shard).await;
    crate::log!(
        Notice,
        "MASTER MODE enabled (failover request from '{}')",
        who
    );
    Reply::OK
}

fn current(shard: &Shard, generation: u64) -> bool {
    shard
        .repl()
        .borrow()
        .master
        .as_ref()
        .is_some_and(|m| m.generation == generation)
        && !shard.shared.shutting_down()
}

/// Updates the link state of link `generation` only: a link task that
/// REPLICAOF replaced must not touch its successor's state when it ends
/// (it did, and left a streaming link reported as down: NOMASTERLINK to
/// every sub-replica).
fn set_master<F: FnOnce(&mut MasterInfo)>(shard: &Shard, generation: u64, f: F) {
    if let Some(m) = shard.repl().borrow_mut().master.as_mut() {
        if m.generation == generation {
            f(m);
            shard
                .shared
                .master_link_down
                .store(!m.phase.is_up(), Ordering::Relaxed);
        }
    }
}

async fn link_loop(shard: Rc<Shard>, generation: u64) {
    let mut first = true;
    while current(&shard, generation) {
        if !first {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            if !current(&shard, generation) {
                break;
            }
        }
        first = false;
        let (host, port) = {
            let repl = shard.repl().borrow();
            let m = repl.master.as_ref().expect("current link has a master");
            (m.host.clone(), m.port)
        };
        crate::log!(Notice, "Connecting to MASTER {}:{}", host, port);
        set_master(&shard, generation, |m| m.phase = LinkPhase::Connecting);
        let timeout = Duration::from_secs(shard.shared.config().repl_timeout.max(1));
        let connected = TcpStream::connect_timeout(format!("{host}:{port}"), timeout).await;
        let stream = match connected {
            Ok(s) => s,
            Err(e) if is_timeout(&e) => {
                crate::log!(Warning, "Timeout connecting to the MASTER...");
                set_master(&shard, generation, |m| m.phase = LinkPhase::Connect);
                continue;
            }
            Err(e) => {
                set_master(&shard, generation, |m| m.phase = LinkPhase::Connect);
                crate::log!(
                    Warning,
                    "Unable to connect to MASTER: {}",
                    strerror(&e.to_string())
                );
                continue;
            }
        };
        crate::log!(Notice, "MASTER <-> REPLICA sync started");
        crate::log!(Notice, "Non blocking connect for SYNC fired the event.");
        set_master(&shard, generation, |m| m.phase = LinkPhase::Handshake);
        if let Err(e) = run_link(&shard, generation, stream).await {
            // The phase the link ended in says which timeout it was.
            let phase = shard.repl().borrow().master.as_ref().map(|m| m.phase);
            if let Some(line) = phase.and_then(|p| e.log_line(p)) {
                crate::log!(Warning, "{}", line);
            }
        }
        set_master(&shard, generation, |m| {
            m.link_fd = None;
            if m.phase.is_up() {
                m.down_since = Some(Instant::now());
            }
            m.phase = LinkPhase::Connect;
        });
    }
}

fn is_timeout(e: &impl std::fmt::Display) -> bool {
    let e = e.to_string();
    e.contains("timed out") || e.contains("Timed out") || e.contains("os error 110")
}

/// The OS's text for an error, as Redis prints strerror(): "Connection refused".
fn strerror(e: &str) -> String {
    let e = e.rsplit("IO error occurred: ").next().unwrap_or(e);
    match e.find(" (os error") {
        Some(i) => e[..i].to_string(),
        None => e.to_string(),
    }
}

/// Reads until a full line (without CRLF), skipping the master's "\n" keepalives.
async fn read_line(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<String, LinkError> {
    loop {
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
        if let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line = buf.split_to(pos + 1);
            let text = String::from_utf8_lossy(&line[..pos])
                .trim_end_matches('\r')
                .to_string();
            return Ok(text);
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<usize, LinkError> {
    let len = buf.len();
    buf.resize(len + 64 * 1024, 0);
    match stream.read(&mut buf[len..]).await {
        Ok(0) => {
            buf.truncate(len);
            Err(LinkError::ConnectionLost)
        }
        Ok(n) => {
            buf.truncate(len + n);
            Ok(n)
        }
        Err(e) => {
            buf.truncate(len);
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) || is_timeout(&e)
            {
                return Err(LinkError::TimedOut);
            }
            Err(LinkError::SyncSocket(e.to_string()))
        }
    }
}

async fn command(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> Result<String, LinkError> {
    let mut out = BytesMut::new();
    encode_command(args, &mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| LinkError::SyncSocket(e.to_string()))?;
    read_line(stream, buf).await
}

async fn run_link(shard: &Rc<Shard>, generation: u64, mut stream: TcpStream) -> LinkResult {
    let timeout = Duration::from_secs(shard.shared.config().repl_timeout.max(1));
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = BytesMut::new();
    let pong = command(&mut stream, &mut buf, &[b"PING"]).await?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(LinkError::PingRefused(pong));
    }
    crate::log!(
        Notice,
        "Master replied to PING, replication can continue..."
    );
    let (auth, user, port, announce_ip) = {
        let c = shard.shared.config();
        let port = if c.replica_announce_port != 0 {
            c.replica_announce_port
        } else {
            shard.shared.port.load(std::sync::atomic::Ordering::Relaxed) as u16
        };
        (
            c.masterauth.clone(),
            c.masteruser.clone(),
            port,
            c.replica_announce_ip.clone(),
        )
    };
    if let Some(pass) = auth {
        let reply = match &user {
            Some(u) => {
                command(
                    &mut stream,
                    &mut buf,
                    &[b"AUTH", u.as_bytes(), pass.as_bytes()],
                )
                .await?
            }
            None => command(&mut stream, &mut buf, &[b"AUTH", pass.as_bytes()]).await?,
        };
        if reply.starts_with('-') {
            return Err(LinkError::AuthRefused(reply));
        }
    }
    let port_s = port.to_string();
    let r = command(
        &mut stream,
        &mut buf,
        &[b"REPLCONF", b"listening-port", port_s.as_bytes()],
    )
    .await?;
    if r.starts_with('-') {
        crate::log!(
            Notice,
            "(Non critical) Master does not understand REPLCONF listening-port: {}",
            r
        );
    }
    if let Some(ip) = announce_ip {
        let r = command(
            &mut stream,
            &mut buf,
            &[b"REPLCONF", b"ip-address", ip.as_bytes()],
        )
        .await?;
        if r.starts_with('-') {
            crate::log!(
                Notice,
                "(Non critical) Master does not understand REPLCONF ip-address: {}",
                r
            );
        }
    }
    let r = command(
        &mut stream,
        &mut buf,
        &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
    )
    .await?;
    if r.starts_with('-') {
        crate::log!(
            Notice,
            "(Non critical) Master does not understand REPLCONF capa: {}",
            r
        );
    }
    if !current(shard, generation) {
        return Err(LinkError::Superseded);
    }
    let (replid, offset, cached) = {
        let repl = shard.repl().borrow();
        (repl.ids.replid.clone(), repl.master_offset(), repl.cached)
    };
    let failover = std::mem::take(&mut shard.repl().borrow_mut().failover_psync);
    let reply = if cached {
        let psync_off = (offset + 1).to_string();
        crate::log!(
            Notice,
            "Trying a partial resynchronization (request {}:{}).",
            replid,
            offset + 1
        );
        let mut psync: Vec<&[u8]> =
            vec![b"PSYNC", replid.as_str().as_bytes(), psync_off.as_bytes()];
        if failover {
            psync.push(b"FAILOVER");
        }
        command(&mut stream, &mut buf, &psync).await?
    } else {
        crate::log!(
            Notice,
            "Partial resynchronization not possible (no cached master)"
        );
        command(&mut stream, &mut buf, &[b"PSYNC", b"?", b"-1"]).await?
    };
    let mut eof_ack = false;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut it = rest.split_whitespace();
        let new_id = it.next().unwrap_or_default().to_string();
        let new_off: i64 = it.next().and_then(|o| o.parse().ok()).unwrap_or(0);
        crate::log!(Notice, "Full resync from master: {}:{}", new_id, new_off);
        set_master(shard, generation, |m| m.phase = LinkPhase::Transfer);
        full_sync_load(
            shard,
            generation,
            &mut stream,
            &mut buf,
            &mut eof_ack,
            &new_id,
        )
        .await?;
        let mut repl = shard.repl().borrow_mut();
        repl.ids = ReplIds::new(ReplId::from_text(new_id));
        repl.cached = true;
        // The stream after a full sync starts with a SELECT.
        repl.link_db = DbIndex(0);
        let size = shard.shared.config().repl_backlog_size as usize;
        repl.backlog = Some(Backlog::new(size, new_off));
        // After a full sync our sub-replicas must resync too.
        repl.disconnect_replicas();
        crate::log!(Notice, "MASTER <-> REPLICA sync: Finished with success");
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        crate::log!(Notice, "Successful partial resynchronization with master.");
        let new_id = rest.trim();
        let mut repl = shard.repl().borrow_mut();
        if !new_id.is_empty() && new_id != repl.ids.replid.as_str() {
            let off = repl.master_offset();
            repl.ids.shift(ReplId::from_text(new_id), off);
            crate::log!(Notice, "Master replication ID changed to {}", new_id);
            repl.disconnect_replicas();
        }
        crate::log!(
            Notice,
            "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."
        );
    } else {
        return Err(LinkError::UnexpectedPsyncReply(reply));
    }
    set_master(shard, generation, |m| {
        m.phase = LinkPhase::Connected;
        m.down_since = None;
        m.last_io = Instant::now();
    });
    stream_loop(shard, generation, stream, buf, eof_ack).await
}

/// Raises one of `Shared`'s loading flags for its lifetime, so every exit
/// of a load (an error included) lowers it again.
struct FlagGuard(Rc<Shard>, fn(&crate::shared::Shared) -> &AtomicBool);

impl FlagGuard {
    fn raise(shard: &Rc<Shard>, flag: fn(&crate::shared::Shared) -> &AtomicBool) -> Self {
        flag(&shard.shared).store(true, Ordering::Relaxed);
        FlagGuard(shard.clone(), flag)
    }
}

impl Drop for FlagGuard {
    fn drop(&mut self) {
        (self.1)(&self.0.shared).store(false, Ordering::Relaxed);
    }
}

/// `Shared::loading` (INFO `loading:1`, clients get -LOADING).
fn loading_guard(shard: &Rc<Shard>) -> FlagGuard {
    FlagGuard::raise(shard, |s| &s.loading)
}

/// How the RDB of a full sync arrives: a length, or an end mark (`$EOF:`).
enum Transfer {
    Len(usize),
    Mark(Vec<u8>),
}

async fn full_sync_load(
    shard: &Rc<Shard>,
    generation: u64,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    eof_ack: &mut bool,
    new_id: &str,
) -> LinkResult {
    let header = read_line(stream, buf).await?;
    let Some(spec) = header.strip_prefix('$') else {
        return Err(LinkError::BadPayloadHeader(header));
    };
    let transfer = match spec.strip_prefix("EOF:") {
        Some(mark) => Transfer::Mark(mark.as_bytes().to_vec()),
        None => Transfer::Len(
            spec.parse()
                .map_err(|_| LinkError::BadPayloadLength(spec.to_string()))?,
        ),
    };
    still_current(shard, generation)?;
    match diskless_load(shard).await {
        Some(Diskless::OnEmptyDb) => {
            return streamed_load(shard, stream, buf, eof_ack, transfer).await
        }
        Some(Diskless::SwapDb) => {
            return swapdb_load(shard, stream, buf, eof_ack, transfer, new_id).await
        }
        None => {}
    }
    let payload: Bytes = match transfer {
        Transfer::Mark(mark) => {
            crate::log!(
                Notice,
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
            );
            loop {
                if buf.len() >= mark.len() && buf.ends_with(&mark) {
                    let body = buf.split_to(buf.len() - mark.len());
                    buf.clear();
                    *eof_ack = true;
                    break body.freeze();
                }
                read_more(stream, buf).await?;
                still_current(shard, generation)?;
            }
        }
        Transfer::Len(len) => {
            crate::log!(
                Notice,
                "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
                len
            );
            while buf.len() < len {
                read_more(stream, buf).await?;
                still_current(shard, generation)?;
            }
            buf.split_to(len).freeze()
        }
    };
    still_current(shard, generation)?;
    crate::log!(Notice, "Discarding previously cached master state.");
    // From the flush to the end of the load clients get -LOADING, as Redis's
    // blocked main thread gives them nothing of the half-loaded data.
    let _loading = loading_guard(shard);
    flush_for_load(shard).await;
    crate::log!(Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
    let loaded = crate::persist::load_rdb_bytes(shard, &payload, false).await;
    finish_load(shard, loaded).await
}

/// How a diskless load installs the payload.
enum Diskless {
    /// Into the (empty) live dataset.
    OnEmptyDb,
    /// Into a dataset aside, swapped in at the end.
    SwapDb,
}

/// A transfer REPLICAOF (or a promotion) has made obsolete stops before it
/// touches the data, as Redis's cancelReplicationHandshake ends it. (Once the
/// load has begun, those commands get -LOADING, as in Redis.)
fn still_current(shard: &Shard, generation: u64) -> LinkResult {
    if current(shard, generation) {
        Ok(())
    } else {
        Err(LinkError::Superseded)
    }
}

/// `repl-diskless-load`: parse the RDB as it arrives instead of receiving it
/// whole first. `on-empty-db` does so only when no db holds a key (Redis's
/// "only when it is completely safe"): a transfer that fails part-way then
/// leaves the replica empty, as it was. `swapdb` always does, loading aside.
async fn diskless_load(shard: &Rc<Shard>) -> Option<Diskless> {
    let mode = shard.shared.config().repl_diskless_load.clone();
    match mode.as_str() {
        "on-empty-db" => {
            let sizes = shard
                .broadcast(|s| {
                    let ks = s.store.keyspace.borrow();
                    (0..ks.databases())
                        .map(|db| ks.dbsize(DbIndex(db)))
                        .sum::<usize>()
                })
                .await;
            sizes
                .is_ok_and(|v| v.iter().all(|&n| n == 0))
                .then_some(Diskless::OnEmptyDb)
        }
        "swapdb" => Some(Diskless::SwapDb),
        _ => None,
    }
}

/// `repl-diskless-load swapdb`: the payload loads into a dataset aside while
/// the old one stays. Clients get -LOADING during the load, unless the master
/// continues the replication history the replica already has (the old data
/// is an earlier point of the same dataset): then they go on reading it
/// (`async_loading:1`), as in Redis 7.0. A failed load discards the new
/// dataset and keeps the old; a complete one is swapped in on every shard.
async fn swapdb_load(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    eof_ack: &mut bool,
    transfer: Transfer,
    new_id: &str,
) -> LinkResult {
    log_receiving(&transfer);
    let async_loading = shard.repl().borrow().ids.replid.as_str() == new_id;
    let loading = (!async_loading).then(|| loading_guard(shard));
    let _async = async_loading.then(|| FlagGuard::raise(shard, |s| &s.async_loading));
    crate::aof::stop(shard);
    let databases = shard.store.keyspace.borrow().databases();
    let _ = shard
        .broadcast(move |s| {
            *s.store.staged.borrow_mut() = Some(shardis_keyspace::Keyspace::new(databases));
        })
        .await;
    crate::log!(Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
    let loader = crate::persist::Loader::new(shard, false).into_staged();
    let loaded = feed_loader(stream, buf, &transfer, loader).await;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = shard
                .broadcast(|s| drop(s.store.staged.borrow_mut().take()))
                .await;
            crate::log!(
                Notice,
                "MASTER <-> REPLICA sync: Discarding temporary DB in background"
            );
            return load_failed(shard, e).await;
        }
    };
    if let Transfer::Mark(_) = transfer {
        *eof_ack = true;
    }
    crate::log!(Notice, "Discarding previously cached master state.");
    crate::log!(
        Notice,
        "MASTER <-> REPLICA sync: Swapping active DB with loaded DB"
    );
    // Clients see the old dataset or the new one, never a mix of shards.
    let _swapping = loading.unwrap_or_else(|| loading_guard(shard));
    let _ = shard
        .broadcast(|s| {
            let Some(mut staged) = s.store.staged.borrow_mut().take() else {
                return;
            };
            let mut ks = s.store.keyspace.borrow_mut();
            if ks.snapshot_active() {
                ks.snapshot_abort();
            }
            ks.swap_data(&mut staged);
            drop(ks);
            // The old dataset, now in `staged`, is freed here.
            drop(staged);
        })
        .await;
    crate::log!(
        Notice,
        "MASTER <-> REPLICA sync: Discarding old DB in background"
    );
    load_done(shard, loaded).await
}

fn log_receiving(transfer: &Transfer) {
    match transfer {
        Transfer::Mark(_) => crate::log!(
            Notice,
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to parser"
        ),
        Transfer::Len(len) => crate::log!(
            Notice,
            "MASTER <-> REPLICA sync: receiving {} bytes from master to parser",
            len
        ),
    }
}

/// Stops what must not run during a load and empties every shard (Redis's
/// `emptyData` before loading a master's RDB).
async fn flush_for_load(shard: &Rc<Shard>) {
    // The AOF stops for the load and restarts with a rewrite of the new data
    // set (Redis's stopAppendOnly / restartAOFAfterSYNC).
    crate::aof::stop(shard);
    crate::log!(Notice, "MASTER <-> REPLICA sync: Flushing old data");
    let _ = shard
        .broadcast(|s| {
            let mut ks = s.store.keyspace.borrow_mut();
            if ks.snapshot_active() {
                ks.snapshot_abort();
            }
            ks.flush_all();
        })
        .await;
}

/// The end of a load, successful or not: a failed one removes the
/// half-loaded data (as Redis does); the AOF comes back either way.
async fn finish_load(shard: &Rc<Shard>, loaded: Result<(u64, u64), String>) -> LinkResult {
    match loaded {
        Ok(loaded) => load_done(shard, loaded).await,
        Err(e) => {
            let _ = shard
                .broadcast(|s| s.store.keyspace.borrow_mut().flush_all())
                .await;
            load_failed(shard, e).await
        }
    }
}

/// A load that completed: Redis's line, then the AOF back on.
async fn load_done(shard: &Rc<Shard>, (keys, expired): (u64, u64)) -> LinkResult {
    crate::log!(
        Notice,
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        keys,
        expired
    );
    restart_aof_after_sync(shard).await;
    Ok(())
}

/// A load that failed (its data already dealt with): the AOF back on, and
/// the link's error.
async fn load_failed(shard: &Rc<Shard>, e: String) -> LinkResult {
    restart_aof_after_sync(shard).await;
    Err(LinkError::LoadFailed(e))
}

/// Diskless load: the shards install keys while the payload still streams,
/// so the replica never holds the whole payload, and loading overlaps the
/// transfer. Clients get -LOADING from the flush to the end.
async fn streamed_load(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    eof_ack: &mut bool,
    transfer: Transfer,
) -> LinkResult {
    log_receiving(&transfer);
    crate::log!(Notice, "Discarding previously cached master state.");
    let _loading = loading_guard(shard);
    flush_for_load(shard).await;
    crate::log!(Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
    let loader = crate::persist::Loader::new(shard, false);
    let loaded = feed_loader(stream, buf, &transfer, loader).await;
    if loaded.is_ok() {
        if let Transfer::Mark(_) = transfer {
            *eof_ack = true;
        }
    }
    finish_load(shard, loaded).await
}

/// Reads the transfer into an [`RdbFeed`](shardis_rdb::RdbFeed) and installs
/// its items as they come. Leaves in `buf` what follows the payload (the
/// start of the replication stream).
async fn feed_loader(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    transfer: &Transfer,
    mut loader: crate::persist::Loader<'_>,
) -> Result<(u64, u64), String> {
    let mut feed = shardis_rdb::RdbFeed::new();
    // Payload bytes still to come (length transfers).
    let mut left = match transfer {
        Transfer::Len(len) => *len,
        Transfer::Mark(_) => usize::MAX,
    };
    loop {
        let take = buf.len().min(left);
        feed.extend(&buf.split_to(take));
        if left != usize::MAX {
            left -= take;
            if left == 0 {
                feed.all_received();
            }
        }
        if let Transfer::Mark(mark) = transfer {
            if feed.pending().ends_with(mark) {
                feed.all_received();
            }
        }
        while let Some(item) = feed.next_item().map_err(|e| e.to_string())? {
            loader.item(item).await?;
        }
        if feed.finished() {
            break;
        }
        if left == 0 {
            return Err("the payload ended before the RDB did".into());
        }
        read_more(stream, buf).await.map_err(transfer_error)?;
    }
    match transfer {
        Transfer::Len(_) => {
            if !feed.pending().is_empty() || left != 0 {
                return Err("the RDB ended before the payload did".into());
            }
        }
        Transfer::Mark(mark) => {
            // The mark follows the RDB; it may still be arriving.
            let mut tail = BytesMut::from(feed.pending());
            while tail.len() < mark.len() {
                if buf.is_empty() {
                    read_more(stream, buf).await.map_err(transfer_error)?;
                }
                let take = buf.len().min(mark.len() - tail.len());
                tail.extend_from_slice(&buf.split_to(take));
            }
            if tail[..mark.len()] != mark[..] {
                crate::log!(Warning, "Replication stream EOF marker is broken");
                return Err("Replication stream EOF marker is broken".into());
            }
            // Stream bytes that came in with the mark go back first.
            let rest = tail.split_off(mark.len());
            if !rest.is_empty() {
                let after = buf.split();
                buf.extend_from_slice(&rest);
                buf.extend_from_slice(&after);
            }
        }
    }
    loader.finish().await
}

/// A read error while a load consumes the payload, as the load's reason.
fn transfer_error(e: LinkError) -> String {
    e.log_line(LinkPhase::Transfer).unwrap_or_default()
}

/// Turns the AOF back on after a full sync's load (Redis's restartAOFAfterSYNC).
async fn restart_aof_after_sync(shard: &Rc<Shard>) {
    if !shard.shared.config().appendonly {
        return;
    }
    for _ in 0..10 {
        if crate::aof::start_at_runtime(shard).await {
            return;
        }
        crate::log!(Warning, "Failed enabling the AOF after successful master synchronization! Trying it again in one second.");
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
    crate::log!(Warning, "FATAL: this replica instance finished the synchronization with its master, but the AOF can't be turned on. Exiting now.");
    std::process::exit(1);
}

/// The most a link round reads before applying what it has. Big enough that a
/// round's hops to the other shards are a small part of its cost, small enough
/// that the executor's clients wait a round, not seconds (a 4 MiB round of
/// small writes kept a `--threads 1` replica from them for over a second under
/// load; docs/benchmarks.md).
const MAX_ROUND_BYTES: usize = 512 << 10;

/// Applies the master's stream until the link breaks.
async fn stream_loop(
    shard: &Rc<Shard>,
    generation: u64,
    stream: TcpStream,
    buf: BytesMut,
    send_ack_now: bool,
) -> LinkResult {
    let stream = crate::net::Socket::from_glommio(stream)
        .map_err(|e| LinkError::RegisterSocket(e.to_string()))?;
    let info = Rc::new(std::cell::RefCell::new(
        crate::client::ClientInfo::master_link(std::os::fd::AsRawFd::as_raw_fd(&stream)),
    ));
    info.borrow_mut().id = shard.shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let _listed = crate::obs::LinkGuard::new(shard, info.clone());
    let mut conn = Conn::new(shard.clone(), stream, info, true);
    conn.master_link = true;
    // A continued stream goes on in the db the last link left selected.
    conn.db = shard.repl().borrow().link_db;
    {
        use std::os::fd::AsRawFd;
        let fd = conn.stream.as_raw_fd();
        set_master(shard, generation, |m| m.link_fd = Some(fd));
    }
    conn.rbuf = buf;
    // Wakes the read below once a second so a silent master is noticed.
    let mut tick = glommio::timer::Timer::new(Duration::from_secs(1));
    let repl_timeout = Duration::from_secs(shard.shared.config().repl_timeout.max(1));
    let limits = DecodeLimits::default();
    let mut last_io = Instant::now();
    let mut last_ack = Instant::now() - Duration::from_secs(2);
    let mut ack_due = send_ack_now;
    let mut reqs: Vec<Vec<Bytes>> = Vec::new();
    let mut forward = BytesMut::new();
    // Reads land here (zeroed once) and are appended to rbuf: resizing rbuf
    // by 64 KiB of zeros before every read cost more than the read.
    let mut scratch = vec![0u8; 64 * 1024].into_boxed_slice();
    loop {
        if !current(shard, generation) {
            return Err(LinkError::Superseded);
        }
        // A sub-replica's full sync: snapshot here, between rounds.
        let request = shard.repl().borrow_mut().snapshot_request.take();
        if let Some((group, reply)) = request {
            crate::persist::begin_snapshot(shard).await;
            crate::repl::start_streams(&group);
            let (offset, db) = {
                let repl = shard.repl().borrow();
                (repl.master_offset(), repl.link_db)
            };
            let _ = reply.send((offset, db));
        }
        // An AOF rewrite's barrier: the same, and the next round goes to the new incr file.
        let aof_request = shard.repl().borrow_mut().aof_snapshot_request.take();
        if let Some(reply) = aof_request {
            crate::persist::begin_snapshot(shard).await;
            crate::aof::link_barrier(shard);
            let _ = reply.send(());
        }
        // Decode what is complete; a GETACK ends the round so its ACK carries
        // exactly the offset of the commands before it.
        let mut consumed: i64 = 0;
        let mut getack = false;
        loop {
            let before = conn.rbuf.len();
            match conn.decoder.decode(&mut conn.rbuf, &limits) {
                Ok(Some(args)) => {
                    let used = (before - conn.rbuf.len()) as i64;
                    consumed += used;
                    encode_command(&args, &mut forward);
                    if args.len() >= 2
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"getack")
                    {
                        getack = true;
                        break;
                    }
                    if args[0].eq_ignore_ascii_case(b"ping") {
                        continue;
                    }
                    reqs.push(args);
                }
                Ok(None) => break,
                Err(e) => return Err(LinkError::Protocol(e.message().to_string())),
            }
        }
        // A round is applied and appended as one unit (see `link_round_done`).
        shard.repl().borrow_mut().link_round_active = true;
        if !reqs.is_empty() {
            // What Redis's replica propagates to its AOF: the applied
            // commands, not REPLCONF (PING never reaches `reqs`) nor PUBLISH.
            let for_aof: Vec<Vec<Bytes>> = if crate::aof::is_open(shard) {
                reqs.iter()
                    .filter(|a| {
                        !a[0].eq_ignore_ascii_case(b"replconf")
                            && !a[0].eq_ignore_ascii_case(b"publish")
                    })
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let db = conn.db;
            conn.process(&mut reqs).await;
            shard.repl().borrow_mut().link_db = conn.db;
            conn.wbuf.clear();
            crate::aof::feed_link(shard, &for_aof, db);
        }
        if consumed > 0 {
            let chunk = forward.split().freeze();
            let limits = crate::repl::replica_limits(shard);
            let mut repl = shard.repl().borrow_mut();
            repl.append(chunk, limits, Instant::now());
            let off = repl.master_offset();
            if let Some(m) = repl.master.as_mut() {
                m.read_offset = off;
            }
        }
        shard.repl().borrow_mut().link_round_active = false;
        if getack {
            ack_due = true;
        }
        if ack_due || last_ack.elapsed() >= Duration::from_secs(1) {
            let off = shard.repl().borrow().master_offset().to_string();
            let mut out = BytesMut::new();
            encode_command(&[b"REPLCONF".as_slice(), b"ACK", off.as_bytes()], &mut out);
            conn.stream
                .write_all(&out)
                .await
                .map_err(|e| LinkError::AckWrite(e.to_string()))?;
            last_ack = Instant::now();
            ack_due = false;
        }
        // One round per turn: with the master's data always ready, the reads
        // below never wait, so without this the link would keep the executor
        // from its other tasks (its clients' INFO waited for a minute while a
        // `--threads 1` replica applied a flat-out stream). Redis's replica
        // likewise reads its master once per event-loop iteration.
        futures_lite::future::yield_now().await;
        if getack {
            continue;
        }
        let read = futures_lite::future::or(
            async { Some(conn.stream.read(&mut scratch).await) },
            async {
                (&mut tick).await;
                None
            },
        )
        .await;
        let read = read.unwrap_or_else(|| {
            tick = glommio::timer::Timer::new(Duration::from_secs(1));
            Err(std::io::ErrorKind::TimedOut.into())
        });
        match read {
            Ok(0) => {
                crate::log!(Notice, "Connection with master lost.");
                crate::log!(Notice, "Caching the disconnected master state.");
                return Err(LinkError::StreamClosed);
            }
            Ok(n) => {
                conn.rbuf.extend_from_slice(&scratch[..n]);
                // Take all the kernel holds (up to a bound): while this round
                // waited for the other shards, the stream piled up, and a
                // round's cost is mostly its hops, not its bytes.
                let mut last = n;
                while last == scratch.len() && conn.rbuf.len() < MAX_ROUND_BYTES {
                    match futures_lite::future::poll_once(conn.stream.read(&mut scratch)).await {
                        Some(Ok(m)) if m > 0 => {
                            conn.rbuf.extend_from_slice(&scratch[..m]);
                            last = m;
                        }
                        _ => break,
                    }
                }
                last_io = Instant::now();
                set_master(shard, generation, |m| m.last_io = last_io);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                if last_io.elapsed() > repl_timeout {
                    return Err(LinkError::StreamTimedOut);
                }
            }
            Err(e) => {
                crate::log!(Notice, "Connection with master lost.");
                return Err(LinkError::SyncSocket(e.to_string()));
            }
        }
    }
}
