//! INFO: Redis's sections and field names, summed over all shards.

use crate::conn::Conn;
use crate::shared::ShardCounters;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Renders the requested sections.
pub async fn render(conn: &mut Conn, args: &[Bytes]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    let mut everything = false;
    if args.len() == 1 {
        wanted.extend(DEFAULT);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => {
                everything = true;
                wanted.extend(ALL)
            }
            "default" => wanted.extend(DEFAULT),
            s => {
                if let Some(&known) = ALL.iter().find(|&&k| k == s) {
                    wanted.push(known)
                }
            }
        }
    }
    let _ = everything;
    let mut out = String::new();
    let mut first = true;
    for section in ALL {
        if !wanted.contains(section) {
            continue;
        }
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        section_text(conn, section, &mut out).await;
    }
    out
}

async fn section_text(conn: &mut Conn, section: &str, out: &mut String) {
    let shared = conn.shard.shared.clone();
    let total = |f: fn(&ShardCounters) -> &std::sync::atomic::AtomicU64| shared.total(f);
    match section {
        "server" => {
            let cfg = shared.config();
            let uptime = shared.started.elapsed().as_secs();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{}\r\nshardis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshards:{}\r\n",
                crate::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                os_line(),
                std::process::id(),
                shared.run_id,
                shared.port.load(Ordering::Relaxed),
                crate::shared::unix_us(),
                uptime,
                uptime / 86400,
                cfg.hz,
                cfg.hz,
                (crate::shared::unix_ms() / 1000) & ((1 << 24) - 1),
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                shared.config_file.clone().unwrap_or_default(),
                shared.shards,
            );
        }
        "clients" => {
            let blocked = crate::blocking::blocked_clients(&conn.shard).await;
            let tracking = crate::tracking::info(&conn.shard).await;
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
                shared.connected_clients.load(Ordering::Relaxed),
                shared.maxclients.load(Ordering::Relaxed),
                blocked,
                tracking.0,
            );
        }
        "memory" => {
            let used = crate::alloc::used_memory();
            let peak = crate::alloc::peak_memory();
            let rss = rss_bytes();
            let cfg = shared.config();
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:1.00\r\nmem_fragmentation_ratio:{:.2}\r\nmem_not_counted_for_evict:{}\r\nmem_allocator:mimalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
                human(used),
                human(rss),
                human(peak),
                if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 100.0 },
                total_memory(),
                human(total_memory()),
                cfg.maxmemory,
                human(cfg.maxmemory),
                cfg.maxmemory_policy,
                if used > 0 { rss as f64 / used as f64 } else { 1.0 },
                shared.not_counted_memory.load(Ordering::Relaxed),
            );
        }
        "persistence" => {
            let dirty = total(|c| &c.dirty);
            let p = shared.persistence.lock().unwrap_or_else(|e| e.into_inner());
            let _ = write!(
                out,
                "# Persistence\r\nloading:{}\r\nasync_loading:{}\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n{}",
                shared.loading.load(Ordering::Relaxed) as u8,
                shared.async_loading.load(Ordering::Relaxed) as u8,
                dirty.saturating_sub(p.dirty_at_save),
                p.bgsave_in_progress as u8,
                p.last_save,
                if p.last_bgsave_ok { "ok" } else { "err" },
                p.last_bgsave_secs,
                p.bgsave_started.map(|t| t.elapsed().as_secs() as i64).unwrap_or(-1),
                p.saves,
                p.last_load_expired,
                p.last_load_keys,
                crate::aof::info(&conn.shard),
            );
        }
        "stats" => {
            let uptime = shared.started.elapsed().as_secs_f64().max(1e-3);
            let (channels, patterns, shard_channels) = crate::pubsub::counts(&conn.shard).await;
            let migrate_sockets = conn.shard.shared.migrate_sockets.len();
            let (_, tracked_keys, tracked_items, tracked_prefixes) =
                crate::tracking::info(&conn.shard).await;
            let (full, pok, perr) = conn
                .shard
                .call(crate::shard::HOME_SHARD, |s0| {
                    let r = s0.repl().borrow();
                    (r.sync_full, r.sync_partial_ok, r.sync_partial_err)
                })
                .await
                .unwrap_or_default();
            let (ops, kin, kout) = {
                use crate::metrics::Metric;
                let m = shared
                    .instantaneous
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                (
                    m.per_second(Metric::Commands),
                    m.kbps(Metric::NetInput),
                    m.kbps(Metric::NetOutput),
                )
            };
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{ops}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{kin}\r\ninstantaneous_output_kbps:{kout}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{full}\r\nsync_partial_ok:{pok}\r\nsync_partial_err:{perr}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:{shard_channels}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:{migrate_sockets}\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{tracked_keys}\r\ntracking_total_items:{tracked_items}\r\ntracking_total_prefixes:{tracked_prefixes}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\ncross_shard_messages:{}\r\n",
                total(|c| &c.connections_received),
                total(|c| &c.commands_processed),
                total(|c| &c.net_input_bytes),
                total(|c| &c.net_output_bytes),
                total(|c| &c.rejected_connections),
                total(|c| &c.expired_keys),
                total(|c| &c.evicted_keys),
                total(|c| &c.keyspace_hits),
                total(|c| &c.keyspace_misses),
                total(|c| &c.total_error_replies),
                total(|c| &c.cross_shard_batches),
            );
            let _ = uptime;
        }
        "replication" => {
            let (cfg, size, min_good) = {
                let c = shared.config();
                (
                    (c.replica_priority, c.replica_read_only, c.replica_announced),
                    c.repl_backlog_size,
                    // Redis shows the count only while min-replicas-to-write is on.
                    (c.min_replicas_to_write > 0 && c.min_replicas_max_lag > 0)
                        .then(|| shared.good_replicas.load(Ordering::Relaxed)),
                )
            };
            let text = conn
                .shard
                .call(crate::shard::HOME_SHARD, move |s0| {
                    s0.repl().borrow().info(cfg, size, min_good)
                })
                .await;
            out.push_str(&text.unwrap_or_default());
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            let _ = write!(
                out,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n"
            );
        }
        "modules" => out.push_str("# Modules\r\n"),
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            let per_shard = conn
                .shard
                .broadcast(|s| s.obs.borrow().errors.clone())
                .await
                .unwrap_or_default();
            for (code, n) in crate::obs::errorstats::merge(per_shard) {
                let _ = write!(out, "errorstat_{code}:count={n}\r\n");
            }
        }
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            let percentiles =
                shardis_config::percentiles(&shared.config().latency_tracking_info_percentiles);
            let per_shard = conn
                .shard
                .broadcast(|s| s.obs.borrow().latency.histograms())
                .await
                .unwrap_or_default();
            for (id, h) in crate::obs::latency::merge_histograms(per_shard) {
                out.push_str(&crate::obs::latency::info_line(
                    shardis_commands::meta::TABLE[id].name,
                    &h,
                    &percentiles,
                ));
            }
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            let stats = conn
                .shard
                .broadcast(|s| s.store.cmdstats.borrow().clone())
                .await
                .unwrap_or_default();
            for i in shardis_commands::visible() {
                let c = &shardis_commands::meta::TABLE[i];
                let (calls, usec, failed, rejected) = stats.iter().fold((0, 0, 0, 0), |a, s| {
                    (
                        a.0 + s[i].calls,
                        a.1 + s[i].usec,
                        a.2 + s[i].failed,
                        a.3 + s[i].rejected,
                    )
                });
                if calls + rejected == 0 {
                    continue;
                }
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    c.name,
                    if calls > 0 { usec as f64 / calls as f64 } else { 0.0 }
                );
            }
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            let per_shard = conn
                .shard
                .broadcast(|s| s.store.keyspace.borrow().keyspace_info())
                .await
                .unwrap_or_default();
            let dbs = per_shard.first().map(|v| v.len()).unwrap_or(0);
            for db in 0..dbs {
                let (mut keys, mut expires, mut ttl_sum, mut ttl_n) =
                    (0usize, 0usize, 0u128, 0u128);
                for s in &per_shard {
                    let (k, e, avg) = s[db];
                    keys += k;
                    expires += e;
                    if e > 0 {
                        ttl_sum += avg as u128 * e as u128;
                        ttl_n += e as u128;
                    }
                }
                if keys > 0 {
                    let avg = ttl_sum.checked_div(ttl_n).unwrap_or(0);
                    let _ = write!(
                        out,
                        "db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n"
                    );
                }
            }
        }
        _ => {}
    }
}

fn os_line() -> String {
    let mut u: libc::utsname = unsafe_zeroed_utsname();
    #[allow(unsafe_code)]
    // SAFETY: uname fills the struct we own.
    unsafe {
        libc::uname(&mut u);
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", s(&u.sysname), s(&u.release), s(&u.machine))
}

fn unsafe_zeroed_utsname() -> libc::utsname {
    #[allow(unsafe_code)]
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    unsafe {
        std::mem::zeroed()
    }
}

/// Resident set size from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Process user and system CPU seconds.
pub fn cpu_times() -> (f64, f64) {
    #[allow(unsafe_code)]
    // SAFETY: getrusage fills the struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}
