//! Observability: SLOWLOG, LATENCY, MONITOR and INFO latencystats/errorstats.
//!
//! # Layout
//! - [`slowlog`]: the slow-command ring (one per shard, merged by SLOWLOG GET);
//! - [`latency`]: latency-monitor event series and per-command hdr histograms;
//! - [`errorstats`]: error replies counted by error code;
//! - [`monitor`]: MONITOR lines, formatted where a command runs and delivered
//!   to every executor that has a monitor;
//! - [`commands`]: the SLOWLOG, LATENCY and MONITOR commands.
//!
//! ```text
//!  conn (executor A) ──record()──► Shard A: histogram, latency events, errorstats
//!        │ slow? ───────────────► Shard A slowlog ring ◄── SLOWLOG GET merges all rings
//!        │ monitors>0? ── lines ─► mesh ─► executor B's MONITOR clients (one Job per round)
//! ```
//!
//! Nothing here is shared or locked on the data path: every ring, histogram
//! and counter belongs to one shard and is merged when asked for. The only
//! per-command cross-core reads are relaxed atomics holding config copies.

pub mod commands;
pub mod errorstats;
pub mod latency;
pub mod monitor;
pub mod slowlog;

use shardis_config::Config;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Observability state every executor reads: hot config copies and monitor counts.
pub struct ObsShared {
    /// `slowlog-log-slower-than` (µs; negative disables).
    pub slowlog_slower_than: AtomicI64,
    /// `slowlog-max-len` (per shard ring; SLOWLOG GET merges).
    pub slowlog_max_len: AtomicU64,
    /// Next slowlog entry id, unique over all shards.
    pub next_slowlog_id: AtomicU64,
    /// `latency-monitor-threshold` (ms; 0 disables).
    pub latency_threshold_ms: AtomicU64,
    /// `latency-tracking`.
    pub latency_tracking: AtomicBool,
    /// MONITOR clients over all executors (0: nothing is formatted).
    pub monitors: AtomicUsize,
    /// MONITOR clients per executor, indexed by shard id.
    pub monitors_at: Vec<AtomicUsize>,
}

impl ObsShared {
    /// State for `shards` executors from the start-up config.
    pub fn new(config: &Config, shards: usize) -> ObsShared {
        let s = ObsShared {
            slowlog_slower_than: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            next_slowlog_id: AtomicU64::new(0),
            latency_threshold_ms: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(true),
            monitors: AtomicUsize::new(0),
            monitors_at: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        };
        s.refresh(config);
        s
    }

    /// Re-reads the hot copies after CONFIG SET.
    pub fn refresh(&self, c: &Config) {
        self.slowlog_slower_than
            .store(c.slowlog_log_slower_than, Ordering::Relaxed);
        self.slowlog_max_len
            .store(c.slowlog_max_len, Ordering::Relaxed);
        self.latency_threshold_ms
            .store(c.latency_monitor_threshold, Ordering::Relaxed);
        self.latency_tracking
            .store(c.latency_tracking, Ordering::Relaxed);
    }

    /// True if a command that took `usec` belongs in the slowlog.
    pub fn is_slow(&self, usec: u64) -> bool {
        let t = self.slowlog_slower_than.load(Ordering::Relaxed);
        t >= 0 && usec >= t as u64
    }

    /// True unless `slowlog-log-slower-than` is negative.
    pub fn slowlog_on(&self) -> bool {
        self.slowlog_slower_than.load(Ordering::Relaxed) >= 0
    }

    /// True if anyone is monitoring (checked once per round).
    pub fn monitoring(&self) -> bool {
        self.monitors.load(Ordering::Relaxed) != 0
    }
}

/// One shard's observability state.
#[derive(Default)]
pub struct ShardObs {
    /// This shard's slowlog ring.
    pub slowlog: slowlog::SlowLog,
    /// Latency events and per-command histograms.
    pub latency: latency::Latency,
    /// Error replies by code.
    pub errors: errorstats::ErrorStats,
    /// MONITOR clients on this executor.
    pub monitors: monitor::Monitors,
    /// Replication links served here (our master, our replicas), for CLIENT LIST.
    pub links: Vec<std::rc::Rc<std::cell::RefCell<crate::client::ClientInfo>>>,
}

/// Keeps a replication link in CLIENT LIST while it lives.
pub struct LinkGuard {
    shard: std::rc::Rc<crate::shard::Shard>,
    id: u64,
}

impl LinkGuard {
    /// Lists `info` (a master link or a replica) on `shard` until dropped.
    pub fn new(
        shard: &std::rc::Rc<crate::shard::Shard>,
        info: std::rc::Rc<std::cell::RefCell<crate::client::ClientInfo>>,
    ) -> LinkGuard {
        let id = info.borrow().id;
        shard.obs.borrow_mut().links.push(info);
        LinkGuard {
            shard: shard.clone(),
            id,
        }
    }
}

/// A replication link did I/O (a replica's ACK): CLIENT LIST's `idle` restarts.
pub fn touch_link(shard: &crate::shard::Shard, id: u64) {
    if let Some(c) = shard
        .obs
        .borrow()
        .links
        .iter()
        .find(|c| c.borrow().id == id)
    {
        c.borrow_mut().last_interaction = std::time::Instant::now();
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut o) = self.shard.obs.try_borrow_mut() {
            o.links.retain(|c| c.borrow().id != self.id);
        }
    }
}

impl ShardObs {
    /// CONFIG RESETSTAT: histograms and error counters (not the slowlog or
    /// latency events, as in Redis).
    pub fn reset_stats(&mut self) {
        self.latency.reset_histograms();
        self.errors = Default::default();
    }
}

/// Arguments as SLOWLOG and MONITOR show them: AUTH and HELLO's AUTH
/// credentials, ACL SETUSER's rules and CONFIG SET's secrets become
/// `(redacted)`, as Redis 7.0 redacts them.
pub fn redacted(
    cmd: &shardis_commands::Command,
    args: &[bytes::Bytes],
) -> Option<Vec<bytes::Bytes>> {
    use shardis_commands::CommandId;
    const R: bytes::Bytes = bytes::Bytes::from_static(b"(redacted)");
    match cmd.id {
        CommandId::Auth => {
            let mut v = args.to_vec();
            v[1..].iter_mut().for_each(|a| *a = R);
            Some(v)
        }
        CommandId::Hello => {
            let mut v = args.to_vec();
            let mut i = 2;
            while i < v.len() {
                if v[i].eq_ignore_ascii_case(b"auth") && i + 2 < v.len() {
                    v[i + 1] = R;
                    v[i + 2] = R;
                    i += 3;
                } else if v[i].eq_ignore_ascii_case(b"setname") {
                    i += 2;
                } else {
                    i += 1;
                }
            }
            Some(v)
        }
        // As migrateCommand redacts while parsing: AUTH's password, AUTH2's
        // user and password, up to KEYS or the first bad option.
        CommandId::Migrate => {
            let mut v = args.to_vec();
            let mut j = 6;
            while j < v.len() {
                let more = v.len() - 1 - j;
                if v[j].eq_ignore_ascii_case(b"auth") && more >= 1 {
                    v[j + 1] = R;
                    j += 2;
                } else if v[j].eq_ignore_ascii_case(b"auth2") && more >= 2 {
                    v[j + 1] = R;
                    v[j + 2] = R;
                    j += 3;
                } else if v[j].eq_ignore_ascii_case(b"copy")
                    || v[j].eq_ignore_ascii_case(b"replace")
                {
                    j += 1;
                } else {
                    break;
                }
            }
            Some(v)
        }
        CommandId::Acl if args.len() > 2 && args[1].eq_ignore_ascii_case(b"setuser") => {
            let mut v = args.to_vec();
            v[2..].iter_mut().for_each(|a| *a = R);
            Some(v)
        }
        CommandId::Config if args.len() > 3 && args[1].eq_ignore_ascii_case(b"set") => {
            let mut v = args.to_vec();
            for i in (2..v.len() - 1).step_by(2) {
                let name = v[i].to_ascii_lowercase();
                if SENSITIVE_CONFIGS.contains(&name.as_slice()) {
                    v[i + 1] = R;
                }
            }
            Some(v)
        }
        _ => None,
    }
}

/// Redis's `SENSITIVE_CONFIG` parameters: CONFIG SET hides their values.
const SENSITIVE_CONFIGS: &[&[u8]] = &[
    b"requirepass",
    b"masterauth",
    b"masteruser",
    b"tls-key-file-pass",
    b"tls-client-key-file-pass",
];

/// Per-command hook (from [`crate::shard::Shard::record`]): the latency
/// histogram and, above `latency-monitor-threshold`, a latency event.
pub fn record_command(
    shard: &crate::shard::Shard,
    cmd: &shardis_commands::Command,
    stat: Option<usize>,
    usec: u64,
) {
    let obs = &shard.shared.obs;
    let tracking = obs.latency_tracking.load(Ordering::Relaxed);
    let threshold = obs.latency_threshold_ms.load(Ordering::Relaxed);
    let spike = threshold > 0 && usec / 1000 >= threshold;
    if !tracking && !spike {
        return;
    }
    let mut o = shard.obs.borrow_mut();
    if let (true, Some(i)) = (tracking, stat) {
        o.latency.record_command(i, usec);
    }
    if spike {
        let event = if cmd.has(shardis_commands::flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        o.latency
            .add_sample(event, crate::shared::unix_ms() / 1000, usec / 1000);
    }
}

/// Records a latency event (expire-cycle, …) if it reaches the threshold.
pub fn latency_event(shard: &crate::shard::Shard, event: &'static str, ms: u64) {
    let threshold = shard
        .shared
        .obs
        .latency_threshold_ms
        .load(Ordering::Relaxed);
    if threshold > 0 && ms >= threshold {
        shard
            .obs
            .borrow_mut()
            .latency
            .add_sample(event, crate::shared::unix_ms() / 1000, ms);
    }
}

/// Logs a slow command to `shard`'s ring (the caller checked [`ObsShared::is_slow`]).
pub fn log_slow(
    shard: &crate::shard::Shard,
    cmd: &shardis_commands::Command,
    args: &[bytes::Bytes],
    usec: u64,
    info: &crate::client::ClientInfo,
) {
    if cmd.id == shardis_commands::CommandId::Exec {
        return; // EXEC is `skip_slowlog`: its commands are logged one by one.
    }
    let obs = &shard.shared.obs;
    let trimmed = match redacted(cmd, args) {
        Some(r) => slowlog::trim_args(&r),
        None => slowlog::trim_args(args),
    };
    let entry = slowlog::Entry {
        id: obs.next_slowlog_id.fetch_add(1, Ordering::Relaxed),
        time: crate::shared::unix_ms() / 1000,
        usec,
        args: trimmed,
        addr: info.addr.to_string(),
        name: info.name.clone(),
    };
    let max = obs.slowlog_max_len.load(Ordering::Relaxed) as usize;
    shard.obs.borrow_mut().slowlog.push(entry, max);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    fn shown(line: &str) -> String {
        let a = args(line);
        let cmd = shardis_commands::lookup(&a[0]).unwrap();
        let r = redacted(cmd, &a).unwrap_or(a);
        let v: Vec<&str> = r.iter().map(|b| std::str::from_utf8(b).unwrap()).collect();
        v.join(" ")
    }

    #[test]
    fn redacts_as_redis() {
        assert_eq!(shown("auth u p"), "auth (redacted) (redacted)");
        assert_eq!(
            shown("hello 3 setname auth auth u p"),
            "hello 3 setname auth auth (redacted) (redacted)"
        );
        assert_eq!(
            shown("config set requirepass a hz 5 masterauth b"),
            "config set requirepass (redacted) hz 5 masterauth (redacted)"
        );
        assert_eq!(shown("config get requirepass"), "config get requirepass");
        assert_eq!(
            shown("acl setuser bob on >pw"),
            "acl setuser (redacted) (redacted) (redacted)"
        );
        assert_eq!(shown("get k"), "get k");
        assert_eq!(
            shown("migrate h 1 k 0 5 copy auth p auth2 u q keys auth x"),
            "migrate h 1 k 0 5 copy auth (redacted) auth2 (redacted) (redacted) keys auth x"
        );
        assert_eq!(shown("migrate h 1 k 0 5 auth"), "migrate h 1 k 0 5 auth");
    }
}
