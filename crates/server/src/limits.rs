//! Client limits: the idle `timeout`, `client-output-buffer-limit` for
//! normal and Pub/Sub clients, CLIENT PAUSE/UNPAUSE and CLIENT NO-EVICT.
//!
//! - **Idle timeout** (Redis's `clientsCronHandleTimeout`): every executor's cron
//!   closes its own clients idle for longer than `timeout` seconds, except
//!   subscribers, blocked clients and the master link (replicas are not in the
//!   client registry once they sync).
//! - **Output buffers**: a client's pending output is what its Pub/Sub mailbox
//!   holds plus the replies being written. Publishers check the subscriber's
//!   class limit on every message; the connection checks before it writes. A
//!   client over its hard limit, or over its soft limit for longer than the
//!   soft seconds, is closed, with Redis's log line.
//! - **Pause**: CLIENT PAUSE, FAILOVER and a shutdown waiting for its
//!   replicas are purposes of one mechanism; a
//!   command waits while any purpose pauses it. The master link is never
//!   paused, nor is eviction or expiry run meanwhile (as in Redis).

use crate::conn::{Conn, Route};
use crate::shard::Shard;
use crate::shared::{unix_ms, Shared};
use bytes::Bytes;
use shardis_commands::{Command, CommandId};
use shardis_config::ClientBufferLimit;
use shardis_protocol::decode::parse_int;
use shardis_protocol::Reply;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// No pause.
const PAUSE_OFF: u8 = 0;
/// Write commands (and commands that may replicate) wait.
const PAUSE_WRITE: u8 = 1;
/// Every command waits.
const PAUSE_ALL: u8 = 2;

/// CLIENT PAUSE's state (FAILOVER's pause is `Shared::writes_paused`).
#[derive(Default)]
pub struct ClientPause {
    mode: AtomicU8,
    end_ms: AtomicU64,
}

impl ClientPause {
    /// The pause in force now, expiring a finished one.
    fn mode(&self) -> u8 {
        let mode = self.mode.load(Ordering::Acquire);
        if mode != PAUSE_OFF && unix_ms() >= self.end_ms.load(Ordering::Acquire) {
            self.mode.store(PAUSE_OFF, Ordering::Release);
            return PAUSE_OFF;
        }
        mode
    }
}

/// True if `cmd` may change the dataset or the replication stream (Redis's
/// `CMD_WRITE | CMD_MAY_REPLICATE`); `queued_writes` is EXEC's queue.
fn may_replicate(cmd: &Command, queued_writes: bool) -> bool {
    cmd.is_write()
        || matches!(cmd.id, CommandId::Publish | CommandId::Spublish)
        || (cmd.id == CommandId::Exec && queued_writes)
}

/// True if pauses stop eviction and expiry right now (any client pause).
pub fn clients_paused(shared: &Shared) -> bool {
    shared.client_pause.mode() != PAUSE_OFF || shutdown_pause(shared)
}

/// A shutdown waiting for its replicas pauses writes (Redis's
/// PAUSE_DURING_SHUTDOWN), so they can catch up with a final offset.
fn shutdown_pause(shared: &Shared) -> bool {
    shared.shutdown_deadline_ms.load(Ordering::SeqCst) != 0
}

/// Whether the command behind `route` must wait for a pause to end.
fn must_wait(shared: &Shared, route: &Route, queued_writes: bool) -> bool {
    let cmd = match route {
        Route::Keyed(_, c) | Route::MultiShard(c, _) | Route::Special(c) => *c,
        Route::Reply(_) => return false,
    };
    let writes = may_replicate(cmd, queued_writes);
    // FAILOVER pauses writers until the switch is done (no write is lost).
    if writes && (shared.writes_paused.load(Ordering::SeqCst) || shutdown_pause(shared)) {
        return true;
    }
    match shared.client_pause.mode() {
        PAUSE_ALL => true,
        PAUSE_WRITE => writes,
        _ => false,
    }
}

/// Waits while `route`'s command is paused (never for the master link).
///
/// A write first counts its round in `Shared::writes_in_flight`, then reads
/// the pause (both SeqCst), while FAILOVER sets the pause, then reads the
/// count: either the write sees the pause and waits (uncounted), or FAILOVER
/// sees the write and waits until its round has run (`end_writes`).
/// Returns true if it waited: the caller then decides the command afresh
/// (Redis re-processes a postponed command from scratch), since the server
/// may have become a replica meanwhile and must answer READONLY.
pub async fn wait_if_paused(conn: &mut Conn, route: &Route) -> bool {
    if conn.master_link {
        return false;
    }
    let queued_writes = conn
        .tx
        .queued
        .as_ref()
        .is_some_and(|q| q.iter().any(|(c, _)| may_replicate(c, false)));
    let shared = conn.shard.shared.clone();
    let writes = match route {
        Route::Keyed(_, c) | Route::MultiShard(c, _) | Route::Special(c) => {
            may_replicate(c, queued_writes)
        }
        Route::Reply(_) => false,
    };
    let mut waited = false;
    loop {
        if writes && !conn.write_in_flight {
            shared.writes_in_flight.fetch_add(1, Ordering::SeqCst);
            conn.write_in_flight = true;
        }
        if !must_wait(&shared, route, queued_writes) {
            return waited;
        }
        waited = true;
        // The round's earlier commands run now; then it holds no write.
        conn.flush_batches().await;
        end_writes(conn);
        shared.paused_clients.fetch_add(1, Ordering::Relaxed);
        while must_wait(&shared, route, queued_writes) && !shared.shutting_down() {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        shared.paused_clients.fetch_sub(1, Ordering::Relaxed);
        if shared.shutting_down() {
            return waited;
        }
    }
}

/// The connection's writes of this round have run (or it is about to wait
/// for a reply that any later write may take): uncounts it.
pub fn end_writes(conn: &mut Conn) {
    if conn.write_in_flight {
        conn.shard
            .shared
            .writes_in_flight
            .fetch_sub(1, Ordering::SeqCst);
        conn.write_in_flight = false;
    }
}

/// FAILOVER, after setting its pause: waits until no connection is between
/// its pause check and the end of its write.
pub async fn writes_drained(shared: &Shared) {
    while shared.writes_in_flight.load(Ordering::SeqCst) != 0 {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL]. A pause can be extended or made
/// stricter, never shortened or relaxed (only CLIENT UNPAUSE ends it early).
pub fn pause(shared: &Shared, args: &[Bytes]) -> Reply {
    let ms = match parse_int(&args[2]) {
        Some(n) if n < 0 => return Reply::error(crate::errors::TIMEOUT_NEGATIVE),
        Some(n) => n as u64,
        None => return Reply::error(crate::errors::TIMEOUT_NOT_INTEGER),
    };
    let mode = match args.get(3).map(|a| a.to_ascii_lowercase()) {
        None => PAUSE_ALL,
        Some(m) if m == b"all" && args.len() == 4 => PAUSE_ALL,
        Some(m) if m == b"write" && args.len() == 4 => PAUSE_WRITE,
        Some(_) => return Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let p = &shared.client_pause;
    let end = unix_ms().saturating_add(ms);
    let current = p.mode();
    let end = if current == PAUSE_OFF {
        end
    } else {
        end.max(p.end_ms.load(Ordering::Acquire))
    };
    p.end_ms.store(end, Ordering::Release);
    p.mode.store(mode.max(current), Ordering::Release);
    Reply::OK
}

/// CLIENT UNPAUSE.
pub fn unpause(shared: &Shared) -> Reply {
    shared.client_pause.mode.store(PAUSE_OFF, Ordering::Release);
    Reply::OK
}

/// CLIENT NO-EVICT on|off. Accepted and shown in CLIENT LIST (flag `e`);
/// shardis does not evict clients (`maxmemory-clients` is not implemented).
pub fn no_evict(conn: &mut Conn, arg: &[u8]) -> Reply {
    conn.no_evict = if arg.eq_ignore_ascii_case(b"on") {
        true
    } else if arg.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return Reply::error(crate::errors::SYNTAX);
    };
    crate::tx::refresh_flags(conn);
    Reply::OK
}

/// Closes this executor's clients idle for more than `timeout` seconds
/// (called by the cron). Subscribers, blocked clients and the master link
/// are exempt, as in Redis 7.0.
pub fn close_idle_clients(shard: &Shard) {
    let timeout = shard.shared.idle_timeout.load(Ordering::Relaxed);
    if timeout == 0 {
        return;
    }
    let now = Instant::now();
    for c in shard.clients.borrow().values() {
        let mut c = c.borrow_mut();
        let exempt = c.subscribed() || c.flags.contains(['b', 'M', 'S']);
        if !exempt && !c.killed && now.duration_since(c.last_interaction).as_secs() > timeout {
            crate::log!(Verbose, "Closing idle client");
            c.kill();
        }
    }
}

/// Redis's `checkClientOutputBufferLimits` for one client: hard limit at
/// once, soft limit after it held for the soft seconds.
#[derive(Default)]
pub struct OutputLimit {
    soft_since: Cell<Option<Instant>>,
}

impl OutputLimit {
    /// True if `used` pending bytes break `limit`.
    pub fn exceeded(&self, used: u64, limit: ClientBufferLimit) -> bool {
        let hard = limit.hard > 0 && used >= limit.hard;
        let mut soft = limit.soft > 0 && used >= limit.soft;
        if soft {
            match self.soft_since.get() {
                None => {
                    self.soft_since.set(Some(Instant::now()));
                    soft = false;
                }
                Some(t) => soft = t.elapsed().as_secs() >= limit.soft_seconds,
            }
        } else {
            self.soft_since.set(None);
        }
        hard || soft
    }
}

/// Logs Redis's line for a client closed at its output buffer limit.
pub fn log_output_limit(info_line: &str) {
    crate::log!(
        Warning,
        "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
        info_line
    );
}

/// The hot copy of `client-output-buffer-limit` for normal and Pub/Sub clients.
#[derive(Default)]
pub struct OutputLimits {
    normal: [AtomicU64; 3],
    pubsub: [AtomicU64; 3],
}

impl OutputLimits {
    /// Stores new limits (CONFIG SET, start-up).
    pub fn store(&self, normal: ClientBufferLimit, pubsub: ClientBufferLimit) {
        for (slots, l) in [(&self.normal, normal), (&self.pubsub, pubsub)] {
            slots[0].store(l.hard, Ordering::Relaxed);
            slots[1].store(l.soft, Ordering::Relaxed);
            slots[2].store(l.soft_seconds, Ordering::Relaxed);
        }
    }

    /// The limit of a client class.
    pub fn get(&self, pubsub: bool) -> ClientBufferLimit {
        let s = if pubsub { &self.pubsub } else { &self.normal };
        ClientBufferLimit {
            hard: s[0].load(Ordering::Relaxed),
            soft: s[1].load(Ordering::Relaxed),
            soft_seconds: s[2].load(Ordering::Relaxed),
        }
    }
}

/// `tcp-keepalive`: TCP keepalive probes on a client socket, as Redis's
/// `anetKeepAlive` sets them (idle `secs`, interval `secs / 3`, 3 probes).
pub fn apply_keepalive(fd: i32, secs: u64) {
    if secs == 0 {
        return;
    }
    let idle = secs.min(i32::MAX as u64) as libc::c_int;
    let opts = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (idle / 3).max(1)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
    ];
    for (level, name, value) in opts {
        #[allow(unsafe_code)]
        // SAFETY: setsockopt on a socket this process owns, with an int option value.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}
