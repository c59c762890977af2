//! MEMORY STATS, DOCTOR, MALLOC-STATS, PURGE and HELP (MEMORY USAGE is a
//! keyspace command: it runs on the key's shard, see `shardis_keyspace::usage`).
//!
//! STATS has Redis 7.0.15's fields in Redis's order. The numbers are
//! shardis's: the allocator counts of `alloc.rs` (as INFO memory), per-db
//! table overheads from the keyspace's own slot sizes, client buffers as
//! CLIENT LIST estimates them. mimalloc has no jemalloc-style
//! active/resident split, so `allocator.active` is the allocated count and
//! `allocator.resident` the RSS (as INFO's `allocator_frag_ratio:1.00`).

use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use shardis_keyspace::usage::{SLOT_BYTES, TTL_BYTES};
use shardis_protocol::Reply;
use std::sync::atomic::Ordering;

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// Redis's `redisMemOverhead`, as far as shardis has each part.
struct Overhead {
    peak: u64,
    total: u64,
    startup: u64,
    backlog: u64,
    clients_slaves: u64,
    clients_normal: u64,
    normal_clients: u64,
    replicas: u64,
    lua: u64,
    functions: u64,
    /// (db, main table bytes, expires index bytes) of every non-empty db.
    dbs: Vec<(usize, u64, u64)>,
    overhead_total: u64,
    keys: u64,
    rss: u64,
}

impl Overhead {
    fn net(&self) -> u64 {
        self.total.saturating_sub(self.startup)
    }
    fn dataset(&self) -> u64 {
        self.total.saturating_sub(self.overhead_total)
    }
}

async fn overhead(conn: &Conn) -> Result<Overhead, Reply> {
    let shared = &conn.shard.shared;
    let per_shard = conn
        .shard
        .broadcast(|s| {
            let info = s.store.keyspace.borrow().keyspace_info();
            let (mut normal, mut n, mut replicas) = (0u64, 0u64, 0u64);
            for c in s.clients.borrow().values() {
                let c = c.borrow();
                if c.flags.contains('S') {
                    replicas += 1;
                } else {
                    normal += 16384 + c.qbuf as u64;
                    n += 1;
                }
            }
            (info, normal, n, replicas)
        })
        .await
        .map_err(|_| Reply::error(errors::SHUTTING_DOWN))?;
    let backlog = conn
        .shard
        .call(crate::shard::HOME_SHARD, |s0| {
            s0.repl()
                .borrow()
                .backlog
                .as_ref()
                .map_or(0, |b| b.histlen() as u64)
        })
        .await
        .map_err(|_| Reply::error(errors::SHUTTING_DOWN))?;
    let ndb = per_shard.first().map_or(0, |p| p.0.len());
    let mut dbs = Vec::new();
    let mut keys = 0u64;
    for db in 0..ndb {
        let (k, e) = per_shard.iter().fold((0u64, 0u64), |(k, e), p| {
            (k + p.0[db].0 as u64, e + p.0[db].1 as u64)
        });
        if k > 0 {
            dbs.push((db, k * SLOT_BYTES as u64, e * TTL_BYTES as u64));
            keys += k;
        }
    }
    let mut o = Overhead {
        peak: crate::alloc::peak_memory(),
        total: crate::alloc::used_memory(),
        startup: crate::alloc::startup_memory(),
        backlog,
        clients_slaves: shared.not_counted_memory.load(Ordering::Relaxed),
        clients_normal: per_shard.iter().map(|p| p.1).sum(),
        normal_clients: per_shard.iter().map(|p| p.2).sum(),
        replicas: per_shard.iter().map(|p| p.3).sum(),
        lua: crate::script::cache_bytes() as u64,
        functions: crate::script::functions::cache_bytes() as u64,
        dbs,
        overhead_total: 0,
        keys,
        rss: crate::info::rss_bytes(),
    };
    o.overhead_total = o.startup
        + o.backlog
        + o.clients_slaves
        + o.clients_normal
        + o.lua
        + o.functions
        + o.dbs.iter().map(|d| d.1 + d.2).sum::<u64>();
    Ok(o)
}

/// Redis computes these ratios in `float`; printing them as doubles shows
/// float's precision, as Redis's replies do.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f32 / b as f32) as f64
    }
}

fn entry(name: &str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk(name.as_bytes()), v)
}

fn int(v: u64) -> Reply {
    Reply::Integer(v as i64)
}

fn stats(o: &Overhead) -> Reply {
    let mut m = vec![
        entry("peak.allocated", int(o.peak)),
        entry("total.allocated", int(o.total)),
        entry("startup.allocated", int(o.startup)),
        entry("replication.backlog", int(o.backlog)),
        entry("clients.slaves", int(o.clients_slaves)),
        entry("clients.normal", int(o.clients_normal)),
        entry("cluster.links", int(0)),
        entry("aof.buffer", int(0)),
        entry("lua.caches", int(o.lua)),
        entry("functions.caches", int(o.functions)),
    ];
    for &(db, main, expires) in &o.dbs {
        m.push(entry(
            &format!("db.{db}"),
            Reply::Map(vec![
                entry("overhead.hashtable.main", int(main)),
                entry("overhead.hashtable.expires", int(expires)),
                entry("overhead.hashtable.slot-to-keys", int(0)),
            ]),
        ));
    }
    let net = o.net();
    let dataset = o.dataset();
    let (alloc, active, resident) = (o.total, o.total, o.rss.max(o.total));
    m.extend([
        entry("overhead.total", int(o.overhead_total)),
        entry("keys.count", int(o.keys)),
        entry(
            "keys.bytes-per-key",
            int(net.checked_div(o.keys).unwrap_or(0)),
        ),
        entry("dataset.bytes", int(dataset)),
        entry(
            "dataset.percentage",
            Reply::Double(((dataset as f32 * 100.0) / net.max(1) as f32) as f64),
        ),
        entry(
            "peak.percentage",
            Reply::Double(((o.total as f32 * 100.0) / o.peak.max(1) as f32) as f64),
        ),
        entry("allocator.allocated", int(alloc)),
        entry("allocator.active", int(active)),
        entry("allocator.resident", int(resident)),
        entry(
            "allocator-fragmentation.ratio",
            Reply::Double(ratio(active, alloc)),
        ),
        entry("allocator-fragmentation.bytes", int(active - alloc)),
        entry(
            "allocator-rss.ratio",
            Reply::Double(ratio(resident, active)),
        ),
        entry("allocator-rss.bytes", int(resident - active)),
        entry("rss-overhead.ratio", Reply::Double(ratio(o.rss, resident))),
        entry(
            "rss-overhead.bytes",
            Reply::Integer(o.rss as i64 - resident as i64),
        ),
        entry("fragmentation", Reply::Double(ratio(o.rss, o.total))),
        entry(
            "fragmentation.bytes",
            Reply::Integer(o.rss as i64 - o.total as i64),
        ),
    ]);
    Reply::Map(m)
}

/// Redis's getMemoryDoctorReport, on shardis's numbers.
fn doctor(o: &Overhead) -> String {
    const MB10: u64 = 10 << 20;
    // Redis's "empty" test is total.allocated < 5 MB; shardis's idle
    // baseline (every shard's tables and buffers) is larger than that, so
    // the test is on memory above startup.
    if o.net() < 5 * 1024 * 1024 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues \
                detector can't be used in these conditions. Please, leave for your mission on \
                Earth and fill it with some data. The new Sam and I will be back to our \
                programming as soon as I finished rebooting.\n"
            .to_string();
    }
    let resident = o.rss.max(o.total);
    let big_peak = (o.peak as f32 / o.total as f32) > 1.5;
    let high_frag = ratio(o.rss, o.total) > 1.4 && o.rss.saturating_sub(o.total) > MB10;
    let high_alloc_rss = ratio(resident, o.total) > 1.1 && resident.saturating_sub(o.total) > MB10;
    let big_client_buf = o.normal_clients > 0 && o.clients_normal / o.normal_clients > 1024 * 200;
    let big_slave_buf = o.replicas > 0 && o.clients_slaves / o.replicas > MB10;
    let many_scripts = crate::script::cache_len() > 1000;
    let mut s = String::new();
    if big_peak {
        s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if high_frag {
        s.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"mimalloc\".\n\n");
    }
    if high_alloc_rss {
        s.push_str(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
    }
    if big_slave_buf {
        s.push_str(" * Big replica buffers: The replica output buffers in this instance are greater than 10MB for each replica (on average). This likely means that there is some replica instance that is struggling receiving data, either because it is too slow or because of networking issues. As a result, data piles on the master output buffers. Please try to identify what replica is not receiving data correctly and why. You can use the INFO output in order to check the replicas delays and the CLIENT LIST command to check the output buffers of each replica.\n\n");
    }
    if big_client_buf {
        s.push_str(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
    }
    if many_scripts {
        s.push_str(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n");
    }
    if s.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for \
                what occurs on this base.\n"
            .to_string();
    }
    format!(
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n{s}\
         I'm here to keep you safe, Sam. I want to help you.\n"
    )
}

#[allow(unsafe_code)]
fn malloc_stats() -> String {
    unsafe extern "C" fn collect(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void) {
        // SAFETY: `arg` is the String passed below and `msg` a C string
        // mimalloc owns for the duration of the call.
        unsafe {
            let out = &mut *(arg as *mut String);
            out.push_str(&std::ffi::CStr::from_ptr(msg).to_string_lossy());
        }
    }
    let mut out = String::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        libmimalloc_sys::mi_stats_print_out(
            Some(collect),
            &mut out as *mut String as *mut std::ffi::c_void,
        );
    }
    out
}

/// MEMORY with a subcommand other than USAGE (checked by the command table).
pub async fn memory(conn: &mut Conn, args: &[Bytes]) -> Reply {
    match args[1].to_ascii_lowercase().as_slice() {
        b"help" => Reply::Array(HELP.iter().map(|l| Reply::Status(l.to_string())).collect()),
        b"stats" => match overhead(conn).await {
            Ok(o) => stats(&o),
            Err(e) => e,
        },
        b"doctor" => match overhead(conn).await {
            Ok(o) => Reply::Verbatim("txt", Bytes::from(doctor(&o))),
            Err(e) => e,
        },
        b"malloc-stats" => Reply::Verbatim("txt", Bytes::from(malloc_stats())),
        b"purge" => {
            // Each executor's heap is its own: every shard returns its
            // unused pages.
            #[allow(unsafe_code)]
            let purge = |_: &std::rc::Rc<crate::shard::Shard>| {
                // SAFETY: plain call, no arguments to uphold.
                unsafe { libmimalloc_sys::mi_collect(true) }
            };
            match conn.shard.broadcast(purge).await {
                Ok(_) => Reply::OK,
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        _ => Reply::error(errors::SYNTAX),
    }
}
