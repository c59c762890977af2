//! MONITOR: every executed command as a `+<unix.usec> [db addr] "arg" ...` line.
//!
//! A connection formats the lines of the commands it ran in a round (only
//! when some client monitors anywhere: one relaxed atomic load per round) and
//! hands them to [`flush`]: monitors on this executor get them at once, every
//! other executor that has a monitor gets them as one mesh message per round.

use crate::pubsub::Mailbox;
use crate::shard::Shard;
use bytes::Bytes;
use shardis_base::ShardId;
use shardis_commands::{flags, Command};
use shardis_keyspace::DbIndex;
use shardis_protocol::Reply;
use std::fmt::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// MONITOR clients on one executor.
#[derive(Default)]
pub struct Monitors {
    clients: Vec<(u64, Rc<Mailbox>)>,
    /// Lines formatted on this executor, not yet delivered.
    pending: Vec<String>,
}

/// True if Redis shows `cmd` to monitors (admin commands and subcommands
/// are hidden).
pub fn shown(cmd: &Command, args: &[Bytes]) -> bool {
    cmd.flags_for(args) & (flags::ADMIN | flags::SKIP_MONITOR) == 0
}

pub use shardis_base::repr;

/// One MONITOR line (without `+` and CRLF).
pub fn line(now_us: u64, db: DbIndex, addr: &str, args: &[Bytes]) -> String {
    let mut s = String::with_capacity(48 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    let _ = write!(
        s,
        "{}.{:06} [{db} {addr}]",
        now_us / 1_000_000,
        now_us % 1_000_000
    );
    for a in args {
        s.push(' ');
        repr(&mut s, a);
    }
    s
}

/// Queues the line for one executed command (call only while monitoring).
pub fn feed(shard: &Shard, cmd: &Command, db: DbIndex, addr: &str, args: &[Bytes]) {
    if !shown(cmd, args) {
        return;
    }
    let now = crate::shared::unix_us();
    let l = match super::redacted(cmd, args) {
        Some(r) => line(now, db, addr, &r),
        None => line(now, db, addr, args),
    };
    shard.obs.borrow_mut().monitors.pending.push(l);
}

/// Delivers the lines queued on this executor to every monitor.
pub async fn flush(shard: &Rc<Shard>) {
    let lines = std::mem::take(&mut shard.obs.borrow_mut().monitors.pending);
    if lines.is_empty() {
        return;
    }
    let obs = &shard.shared.obs;
    let mut pending = Vec::new();
    for t in 0..shard.shards() {
        if obs.monitors_at[t].load(Ordering::Relaxed) == 0 {
            continue;
        }
        if t == shard.id.get() {
            deliver(shard, &lines);
        } else {
            let lines = lines.clone();
            if let Ok(p) = shard.post(ShardId(t), move |s| deliver(s, &lines)).await {
                pending.push(p);
            }
        }
    }
    // Delivered before the client sees its replies: a command sent after a
    // reply is never shown before the command that produced it.
    for p in pending {
        let _ = p.wait().await;
    }
}

fn deliver(shard: &Shard, lines: &[String]) {
    // A monitor is a normal client for `client-output-buffer-limit`: one
    // that cannot keep up is closed (its mailbox marks it), as in Redis.
    let limit = shard.shared.output_limits.get(false);
    let obs = shard.obs.borrow();
    for (_, mb) in &obs.monitors.clients {
        for l in lines {
            mb.push(Reply::Status(l.clone()), l.len() + 3, limit);
        }
    }
}

/// Makes a connection a monitor (MONITOR); false if it already is one.
pub fn add(shard: &Shard, id: u64, mailbox: Rc<Mailbox>) -> bool {
    let mut obs = shard.obs.borrow_mut();
    if obs.monitors.clients.iter().any(|(i, _)| *i == id) {
        return false;
    }
    obs.monitors.clients.push((id, mailbox));
    shard.shared.obs.monitors_at[shard.id.get()].fetch_add(1, Ordering::Relaxed);
    shard.shared.obs.monitors.fetch_add(1, Ordering::Relaxed);
    true
}

/// Stops monitoring for connection `id` (disconnect or RESET).
pub fn remove(shard: &Shard, id: u64) {
    let mut obs = shard.obs.borrow_mut();
    let before = obs.monitors.clients.len();
    obs.monitors.clients.retain(|(i, _)| *i != id);
    if obs.monitors.clients.len() != before {
        shard.shared.obs.monitors_at[shard.id.get()].fetch_sub(1, Ordering::Relaxed);
        shard.shared.obs.monitors.fetch_sub(1, Ordering::Relaxed);
    }
}

/// RESET: the connection stops monitoring.
pub fn stop(conn: &crate::conn::Conn) {
    let id = conn.info.borrow().id;
    remove(&conn.shard, id);
    let mut info = conn.info.borrow_mut();
    if info.flags.starts_with('O') {
        info.flags = "N".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_redis() {
        let args = [
            Bytes::from("set"),
            Bytes::from("a b"),
            Bytes::from(&b"x\"y\\z\n\xc3\xa9"[..]),
        ];
        assert_eq!(
            line(1_795_703_121_634_466, DbIndex(0), "127.0.0.1:51498", &args),
            r#"1795703121.634466 [0 127.0.0.1:51498] "set" "a b" "x\"y\\z\n\xc3\xa9""#
        );
        assert_eq!(line(5_000_001, DbIndex(3), "h:1", &[]), "5.000001 [3 h:1]");
    }
}
