//! redis.conf-compatible configuration for shardis.
//!
//! Place in the architecture: a sans-IO library used by `shardis-server` at start-up
//! (`shardis-server [config-file] [--directive value ...]`, exactly like redis-server) and by the
//! `CONFIG GET` / `CONFIG SET` commands. The server reads the file and passes its text in; this
//! crate never touches the filesystem, sockets or clocks.
//!
//! # Layout
//! - `lib.rs`: [`Config`] (typed fields with Redis 7.0.15 defaults), the parameter table that
//!   drives parsing, `CONFIG GET` formatting and `CONFIG SET`, and [`ConfigError`].
//! - `parse.rs`: ports of the C helpers Redis uses (`sdssplitargs`, `string2ll`, `memtoull`,
//!   `strtol`, `stringmatchlen`) so edge cases behave byte for byte like Redis.
//!
//! # Differences from redis-server
//! - Error report: [`ConfigError::redis_message`] prints Redis's exact text, with
//!   `(shardis <version>)` in the header instead of `(Redis 7.0.15)`, plus one extra final line
//!   `File: <path>` when the error came from a file.
//! - `include`, `rename-command`, `user`, `loadmodule` and `sentinel` are rejected.
//! - `cluster-enabled yes` and a non-zero `tls-port` are rejected (not supported).
//! - `threads N` is shardis's own directive: the number of shards/executors (0 or absent means
//!   every CPU in the affinity mask).
//! - Directives in [`IGNORED`] are validated like Redis does (type, range, enum values), stored,
//!   and reported by `CONFIG GET`, but have no effect; those in [`READ_BY_NAME`] are stored the
//!   same way and read by name where they take effect; those in [`DEFAULT_ONLY`] accept only
//!   their default, which is what shardis does.
//! - `dir` is stored as given (default `.`); the server resolves it and `chdir`s.
//!
//! It may depend on `shardis-acl` (`user` directives are checked as ACL rules) and
//! `shardis-base`, nothing else of shardis's own. Sans-IO: the server reads files and
//! passes their text in.

mod parse;
pub use parse::memtoull;
pub use parse::split_args;
mod rewrite;

use std::collections::BTreeMap;

/// Stored directives whose default value is what shardis does, and whose other values it cannot
/// honour: any other value is refused (at start-up and by CONFIG SET). `(name, why)`.
pub const DEFAULT_ONLY: &[(&str, &str)] = &[
    (
        "active-expire-effort",
        "the active-expire cycle has a fixed per-shard budget",
    ),
    (
        "activedefrag",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "bind-source-addr",
        "outgoing connections use the OS-chosen source address",
    ),
    (
        "io-threads",
        "shardis runs one executor per core instead (see `threads`)",
    ),
    (
        "maxmemory-clients",
        "client-memory eviction is not implemented",
    ),
    (
        "maxmemory-eviction-tenacity",
        "eviction effort is not tunable",
    ),
    ("list-compress-depth", "list nodes are never compressed"),
    ("oom-score-adj", "the server does not adjust its OOM score"),
    (
        "propagation-error-behavior",
        "replicas ignore errors in the stream, as with the default",
    ),
    (
        "repl-disable-tcp-nodelay",
        "replica sockets always use TCP_NODELAY",
    ),
    (
        "replica-ignore-maxmemory",
        "replicas never evict on their own, as with the default",
    ),
    (
        "shutdown-on-sigint",
        "signal shutdown behaves as the default (save if save points are set)",
    ),
    (
        "shutdown-on-sigterm",
        "signal shutdown behaves as the default (save if save points are set)",
    ),
    ("socket-mark-id", "sockets are not marked"),
    (
        "supervised",
        "no systemd/upstart readiness notification (use Type=simple)",
    ),
    ("syslog-enabled", "logging goes to logfile/stdout only"),
    ("tls-cluster", "TLS is not supported"),
    ("tls-replication", "TLS is not supported"),
    ("unixsocket", "shardis listens on TCP only"),
];

/// Stored directives (kept as their formatted string, like [`IGNORED`]) that do have Redis's
/// effect: the server reads them by name where they apply. `(name, where)`.
pub const READ_BY_NAME: &[(&str, &str)] = &[
    ("enable-debug-command", "gates DEBUG, where DEBUG is routed"),
    (
        "enable-module-command",
        "gates MODULE LOAD/LOADEX/UNLOAD, where MODULE is routed",
    ),
    (
        "shutdown-timeout",
        "how long SHUTDOWN and SIGTERM wait for lagging replicas, in the server's shutdown",
    ),
    (
        "stop-writes-on-bgsave-error",
        "refuses writes after a failed BGSAVE, where writes are checked",
    ),
    (
        "tracking-table-max-keys",
        "limits the tracking table (each shard its share), in the tracking module",
    ),
];

/// Redis directives that are accepted, validated, stored and reported by `CONFIG GET`, but have
/// no effect in shardis. Each entry is `(name, why it is ignored)`.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "active-defrag-cycle-max",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "active-defrag-cycle-min",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "active-defrag-ignore-bytes",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "active-defrag-max-scan-fields",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "active-defrag-threshold-lower",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "active-defrag-threshold-upper",
        "no jemalloc active defragmentation (mimalloc)",
    ),
    (
        "activerehashing",
        "hashbrown tables have no incremental rehash to drive",
    ),
    ("always-show-logo", "shardis prints no ASCII-art logo"),
    (
        "aof-rewrite-incremental-fsync",
        "a rewrite's base file is fsynced once, when complete",
    ),
    (
        "aof_rewrite_cpulist",
        "no fork()ed AOF-rewrite child to pin",
    ),
    (
        "bgsave_cpulist",
        "snapshots are fork-free; no BGSAVE child to pin",
    ),
    ("bio_cpulist", "no background I/O threads to pin"),
    (
        "cluster-allow-pubsubshard-when-down",
        "cluster mode is not supported",
    ),
    (
        "cluster-allow-reads-when-down",
        "cluster mode is not supported",
    ),
    (
        "cluster-allow-replica-migration",
        "cluster mode is not supported",
    ),
    ("cluster-announce-bus-port", "cluster mode is not supported"),
    ("cluster-announce-hostname", "cluster mode is not supported"),
    ("cluster-announce-ip", "cluster mode is not supported"),
    ("cluster-announce-port", "cluster mode is not supported"),
    ("cluster-announce-tls-port", "cluster mode is not supported"),
    ("cluster-config-file", "cluster mode is not supported"),
    (
        "cluster-enabled",
        "cluster mode is not supported; only `no` is accepted",
    ),
    (
        "cluster-link-sendbuf-limit",
        "cluster mode is not supported",
    ),
    ("cluster-migration-barrier", "cluster mode is not supported"),
    ("cluster-node-timeout", "cluster mode is not supported"),
    ("cluster-port", "cluster mode is not supported"),
    (
        "cluster-preferred-endpoint-type",
        "cluster mode is not supported",
    ),
    (
        "cluster-replica-no-failover",
        "cluster mode is not supported",
    ),
    (
        "cluster-replica-validity-factor",
        "cluster mode is not supported",
    ),
    (
        "cluster-require-full-coverage",
        "cluster mode is not supported",
    ),
    (
        "crash-log-enabled",
        "Rust panics report themselves; no signal-handler crash log",
    ),
    (
        "crash-memcheck-enabled",
        "Rust panics report themselves; no crash-time memory test",
    ),
    (
        "disable-thp",
        "THP only hurts fork() copy-on-write, and shardis never forks",
    ),
    ("dynamic-hz", "cron frequency is fixed at hz"),
    (
        "enable-protected-configs",
        "only its effect on CONFIG SET dir/dbfilename is implemented",
    ),
    (
        "ignore-warnings",
        "Redis's kernel-bug start-up checks do not apply",
    ),
    (
        "io-threads-do-reads",
        "shardis runs one executor per core instead (see `threads`)",
    ),
    ("jemalloc-bg-thread", "shardis uses mimalloc, not jemalloc"),
    (
        "lazyfree-lazy-eviction",
        "values are freed inline on the owning shard",
    ),
    (
        "lazyfree-lazy-expire",
        "values are freed inline on the owning shard",
    ),
    (
        "lazyfree-lazy-server-del",
        "values are freed inline on the owning shard",
    ),
    (
        "lazyfree-lazy-user-del",
        "values are freed inline on the owning shard",
    ),
    (
        "lazyfree-lazy-user-flush",
        "values are freed inline on the owning shard",
    ),
    (
        "oom-score-adj-values",
        "the server does not adjust its OOM score",
    ),
    ("proc-title-template", "the process title is not changed"),
    ("rdb-del-sync-files", "sync RDB files are not kept on disk"),
    (
        "rdb-save-incremental-fsync",
        "snapshot writes are fsynced by the server as a whole",
    ),
    (
        "replica-ignore-disk-write-errors",
        "replicas do not stop on disk errors",
    ),
    (
        "replica-lazy-flush",
        "values are freed inline on the owning shard",
    ),
    (
        "sanitize-dump-payload",
        "RESTORE/DUMP payloads are always validated",
    ),
    ("set-proc-title", "the process title is not changed"),
    ("syslog-facility", "logging goes to logfile/stdout only"),
    ("syslog-ident", "logging goes to logfile/stdout only"),
    ("tls-auth-clients", "TLS is not supported"),
    ("tls-ca-cert-dir", "TLS is not supported"),
    ("tls-ca-cert-file", "TLS is not supported"),
    ("tls-cert-file", "TLS is not supported"),
    ("tls-ciphers", "TLS is not supported"),
    ("tls-ciphersuites", "TLS is not supported"),
    ("tls-client-cert-file", "TLS is not supported"),
    ("tls-client-key-file", "TLS is not supported"),
    ("tls-client-key-file-pass", "TLS is not supported"),
    ("tls-dh-params-file", "TLS is not supported"),
    ("tls-key-file", "TLS is not supported"),
    ("tls-key-file-pass", "TLS is not supported"),
    ("tls-port", "TLS is not supported; only 0 is accepted"),
    ("tls-prefer-server-ciphers", "TLS is not supported"),
    ("tls-protocols", "TLS is not supported"),
    ("tls-session-cache-size", "TLS is not supported"),
    ("tls-session-cache-timeout", "TLS is not supported"),
    ("tls-session-caching", "TLS is not supported"),
    ("unixsocketperm", "shardis listens on TCP only"),
];

/// Directives Redis 7.0 silently accepts and drops (`deprecated_configs` in config.c).
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// Directives Redis handles outside its config table, which shardis does not support.
const UNSUPPORTED: &[&str] = &["include", "rename-command", "loadmodule", "sentinel"];

/// `loglevel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `debug`: everything.
    Debug,
    /// `verbose`: rarely useful details.
    Verbose,
    /// `notice`: the default.
    Notice,
    /// `warning`: only important messages.
    Warning,
}

const LOG_LEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];

impl LogLevel {
    /// The redis.conf spelling.
    pub fn as_str(self) -> &'static str {
        LOG_LEVELS[self as usize]
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "verbose" => LogLevel::Verbose,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            _ => return None,
        })
    }
}

/// One client class's output buffer limit (`<hard> <soft> <soft_seconds>`; 0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientBufferLimit {
    /// Disconnect as soon as the output buffer exceeds this many bytes.
    pub hard: u64,
    /// Disconnect when the buffer stays above this many bytes ...
    pub soft: u64,
    /// ... for this many seconds.
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit` for the three configurable client classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOutputBufferLimits {
    /// Ordinary clients.
    pub normal: ClientBufferLimit,
    /// Replicas (`slave` / `replica` class).
    pub replica: ClientBufferLimit,
    /// Pub/Sub subscribers.
    pub pubsub: ClientBufferLimit,
}

impl Default for ClientOutputBufferLimits {
    fn default() -> Self {
        ClientOutputBufferLimits {
            normal: ClientBufferLimit::default(),
            replica: ClientBufferLimit {
                hard: 256 << 20,
                soft: 64 << 20,
                soft_seconds: 60,
            },
            pubsub: ClientBufferLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_seconds: 60,
            },
        }
    }
}

/// The server configuration. Defaults are Redis 7.0.15's.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `port`: TCP port (0 = don't listen on TCP).
    pub port: u16,
    /// `bind`: listen addresses; a `-` prefix means "optional".
    pub bind: Vec<String>,
    /// `protected-mode`.
    pub protected_mode: bool,
    /// `requirepass` (None = no password).
    pub requirepass: Option<String>,
    /// `databases`: number of logical dbs.
    pub databases: usize,
    /// `dir`: working directory for RDB files (the server stores it absolute, as Redis does).
    pub dir: String,
    /// `logfile` ("" = stdout).
    pub logfile: String,
    /// `loglevel`.
    pub loglevel: LogLevel,
    /// `pidfile`.
    pub pidfile: Option<String>,
    /// `maxclients`.
    pub maxclients: u64,
    /// `timeout`: idle client timeout in seconds (0 = never).
    pub timeout: u64,
    /// `tcp-keepalive` seconds.
    pub tcp_keepalive: u64,
    /// `tcp-backlog`.
    pub tcp_backlog: u32,
    /// `threads` (shardis only): number of shards/executors; None = one per CPU of
    /// `server_cpulist`, else of the affinity mask.
    pub threads: Option<usize>,
    /// `server_cpulist`: the CPUs the executors are pinned to, executor i to the
    /// i-th listed CPU ([`parse_cpulist`]); empty = not pinned (as Redis's threads).
    pub server_cpulist: String,
    /// `daemonize`.
    pub daemonize: bool,
    /// `proto-max-bulk-len` bytes.
    pub proto_max_bulk_len: i64,
    /// `client-query-buffer-limit` bytes.
    pub client_query_buffer_limit: u64,
    /// `save`: (seconds, changes) snapshot points; empty = no automatic snapshots.
    pub save: Vec<(u64, u64)>,
    /// `dbfilename`.
    pub dbfilename: String,
    /// `rdbcompression`.
    pub rdbcompression: bool,
    /// `rdbchecksum`.
    pub rdbchecksum: bool,
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfsync`: always, everysec or no.
    pub appendfsync: String,
    /// `appenddirname`.
    pub appenddirname: String,
    /// `appendfilename`.
    pub appendfilename: String,
    /// `aof-load-truncated`.
    pub aof_load_truncated: bool,
    /// `aof-use-rdb-preamble`.
    pub aof_use_rdb_preamble: bool,
    /// `aof-timestamp-enabled`.
    pub aof_timestamp_enabled: bool,
    /// `aof-disable-auto-gc`.
    pub aof_disable_auto_gc: bool,
    /// `auto-aof-rewrite-percentage`.
    pub auto_aof_rewrite_percentage: u64,
    /// `auto-aof-rewrite-min-size`.
    pub auto_aof_rewrite_min_size: u64,
    /// `no-appendfsync-on-rewrite`.
    pub no_appendfsync_on_rewrite: bool,
    /// `replicaof` / `slaveof`: (host, port) of the master.
    pub replicaof: Option<(String, u16)>,
    /// `masterauth`.
    pub masterauth: Option<String>,
    /// `masteruser`.
    pub masteruser: Option<String>,
    /// `aclfile` (None = users come from `user` directives).
    pub aclfile: Option<String>,
    /// `acllog-max-len`.
    pub acllog_max_len: usize,
    /// `acl-pubsub-default`: `resetchannels` or `allchannels` for new users.
    pub acl_pubsub_default: String,
    /// `user <name> rules…` directives, in file order (name first).
    pub users: Vec<Vec<String>>,
    /// `replica-read-only`.
    pub replica_read_only: bool,
    /// `replica-serve-stale-data`.
    pub replica_serve_stale_data: bool,
    /// `replica-announce-ip`.
    pub replica_announce_ip: Option<String>,
    /// `replica-announce-port` (0 = the listening port).
    pub replica_announce_port: u16,
    /// `replica-priority`.
    pub replica_priority: u64,
    /// `replica-announced` (INFO's `replica_announced`; Sentinel hides replicas with 0).
    pub replica_announced: bool,
    /// `repl-backlog-size` bytes.
    pub repl_backlog_size: u64,
    /// `repl-backlog-ttl` seconds.
    pub repl_backlog_ttl: u64,
    /// `repl-timeout` seconds.
    pub repl_timeout: u64,
    /// `repl-ping-replica-period` seconds.
    pub repl_ping_replica_period: u64,
    /// `repl-diskless-sync`.
    pub repl_diskless_sync: bool,
    /// `repl-diskless-sync-delay` seconds.
    pub repl_diskless_sync_delay: u64,
    /// `repl-diskless-sync-max-replicas`: start at once when this many wait (0: off).
    pub repl_diskless_sync_max_replicas: u64,
    /// `repl-diskless-load`: disabled, on-empty-db or swapdb.
    pub repl_diskless_load: String,
    /// `min-replicas-to-write`.
    pub min_replicas_to_write: u64,
    /// `min-replicas-max-lag` seconds.
    pub min_replicas_max_lag: u64,
    /// `client-output-buffer-limit`.
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    /// `maxmemory` bytes (0 = no limit).
    pub maxmemory: u64,
    /// `maxmemory-policy`.
    pub maxmemory_policy: String,
    /// `maxmemory-samples`.
    pub maxmemory_samples: u64,
    /// `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time` minutes.
    pub lfu_decay_time: u32,
    /// `hz`.
    pub hz: u64,
    /// `slowlog-log-slower-than` microseconds (-1 = disabled).
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: u64,
    /// `latency-monitor-threshold` milliseconds.
    pub latency_monitor_threshold: u64,
    /// `latency-tracking`: per-command latency histograms for INFO latencystats.
    pub latency_tracking: bool,
    /// `latency-tracking-info-percentiles`, space separated.
    pub latency_tracking_info_percentiles: String,
    /// `notify-keyspace-events` as given (valid; CONFIG GET shows Redis's
    /// canonical form, see [`Config::notify_flags`]).
    pub notify_keyspace_events: String,
    /// `hash-max-listpack-entries`.
    pub hash_max_listpack_entries: u64,
    /// `hash-max-listpack-value`.
    pub hash_max_listpack_value: u64,
    /// `set-max-intset-entries`.
    pub set_max_intset_entries: u64,
    /// `zset-max-listpack-entries`.
    pub zset_max_listpack_entries: u64,
    /// `zset-max-listpack-value`.
    pub zset_max_listpack_value: u64,
    /// `list-max-listpack-size` (negative = size class in KiB).
    pub list_max_listpack_size: i64,
    /// `busy-reply-threshold` (alias `lua-time-limit`): ms before a running
    /// script makes other clients get `-BUSY`.
    pub busy_reply_threshold: i64,
    /// `stream-node-max-bytes`.
    pub stream_node_max_bytes: u64,
    /// `stream-node-max-entries`.
    pub stream_node_max_entries: u64,
    /// `hll-sparse-max-bytes`.
    pub hll_sparse_max_bytes: u64,
    /// Values of the [`IGNORED`] directives, by canonical name, formatted for CONFIG GET.
    ignored: BTreeMap<&'static str, String>,
    /// Redis resets the default `save` points at the first `save` line of the config only.
    save_loaded: bool,
}

impl Default for Config {
    fn default() -> Self {
        let ignored = PARAMS
            .iter()
            .filter_map(|p| match p.access {
                Access::Stored(default) => Some((p.name, default.to_string())),
                _ => None,
            })
            .collect();
        Config {
            port: 6379,
            bind: vec!["*".into(), "-::*".into()],
            protected_mode: true,
            requirepass: None,
            databases: 16,
            dir: ".".into(),
            logfile: String::new(),
            loglevel: LogLevel::Notice,
            pidfile: None,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            tcp_backlog: 511,
            threads: None,
            server_cpulist: String::new(),
            daemonize: false,
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            dbfilename: "dump.rdb".into(),
            rdbcompression: true,
            rdbchecksum: true,
            appendonly: false,
            appendfsync: "everysec".into(),
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
            aof_load_truncated: true,
            aof_use_rdb_preamble: true,
            aof_timestamp_enabled: false,
            aof_disable_auto_gc: false,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 << 20,
            no_appendfsync_on_rewrite: false,
            replicaof: None,
            masterauth: None,
            masteruser: None,
            aclfile: None,
            acllog_max_len: 128,
            acl_pubsub_default: "resetchannels".into(),
            users: Vec::new(),
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_announce_ip: None,
            replica_announce_port: 0,
            replica_priority: 100,
            replica_announced: true,
            repl_backlog_size: 1 << 20,
            repl_backlog_ttl: 3600,
            repl_timeout: 60,
            repl_ping_replica_period: 10,
            repl_diskless_sync: true,
            repl_diskless_sync_delay: 5,
            repl_diskless_sync_max_replicas: 0,
            repl_diskless_load: "disabled".into(),
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            client_output_buffer_limit: ClientOutputBufferLimits::default(),
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            hz: 10,
            slowlog_log_slower_than: 10000,
            busy_reply_threshold: 5000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            latency_tracking_info_percentiles: "50 99 99.9".into(),
            notify_keyspace_events: String::new(),
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
            hll_sparse_max_bytes: 3000,
            ignored,
            save_loaded: false,
        }
    }
}

/// A configuration line that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the text came from, if any.
    pub file: Option<String>,
    /// 1-based line number (command-line options count as lines after the file, as in Redis).
    pub line: usize,
    /// The offending line, trimmed, as Redis prints it after `>>>`.
    pub directive: String,
    /// Redis's reason text, e.g. `Bad directive or wrong number of arguments`.
    pub reason: String,
}

impl ConfigError {
    /// The text redis-server prints to stderr before exiting, with shardis's name and version in
    /// the header and an extra `File: <path>` line when the error came from a file.
    pub fn redis_message(&self) -> String {
        let mut s = format!(
            "\n*** FATAL CONFIG FILE ERROR (shardis {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}\n",
            env!("CARGO_PKG_VERSION"),
            self.line,
            self.directive,
            self.reason
        );
        if let Some(f) = &self.file {
            s.push_str(&format!("File: {f}\n"));
        }
        s
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.as_deref().unwrap_or("<command line>");
        write!(
            f,
            "{file}:{}: '{}': {}",
            self.line, self.directive, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Parameter table
// ---------------------------------------------------------------------------------------------

const IMMUTABLE: u8 = 1;
const PROTECTED: u8 = 2;
const MULTI_ARG: u8 = 4;

const I32: i128 = i32::MAX as i128;
const I64: i128 = i64::MAX as i128;

/// How a parameter's arguments are validated.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    /// Integer parsed with `string2ll`, inclusive bounds.
    Int(i128, i128),
    /// Memory value (`memtoull`), inclusive bounds.
    Mem(i128, i128),
    /// Memory value or `N%`.
    MemOrPercent,
    Enum(&'static [&'static str]),
    Str,
    /// `dbfilename`: a file name without directory.
    FileName,
    /// Any number of arguments, stored joined by spaces.
    Words,
    /// Numbers in 0..=100, stored joined by spaces (`latency-tracking-info-percentiles`).
    Percentiles,
    /// Keyspace event classes (`notify-keyspace-events`), stored canonical.
    NotifyClasses,
    /// Integer 0..=65535 stored as `Option<usize>` (0 = None).
    Threads,
    /// Redis's CPU list syntax (`0-7:2,9`), checked with [`parse_cpulist`].
    CpuList,
    Save,
    Bind,
    ClientOutputBufferLimit,
    ReplicaOf,
}

/// A typed view of a field, for formatting (`get`) and assignment (`set`).
enum Slot<'a> {
    Bool(&'a bool),
    U16(&'a u16),
    U32(&'a u32),
    U64(&'a u64),
    Usize(&'a usize),
    I64(&'a i64),
    Str(&'a String),
    OptStr(&'a Option<String>),
    LogLevel(&'a LogLevel),
}

enum SlotMut<'a> {
    Bool(&'a mut bool),
    U16(&'a mut u16),
    U32(&'a mut u32),
    U64(&'a mut u64),
    Usize(&'a mut usize),
    I64(&'a mut i64),
    Str(&'a mut String),
    OptStr(&'a mut Option<String>),
    LogLevel(&'a mut LogLevel),
}

enum Access {
    /// A typed field of [`Config`].
    Field(fn(&Config) -> Slot<'_>, fn(&mut Config) -> SlotMut<'_>),
    /// An [`IGNORED`] directive stored as its formatted string; the value is the default.
    Stored(&'static str),
    /// Handled by name (save, bind, client-output-buffer-limit, replicaof, threads).
    Special,
}

struct Param {
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    flags: u8,
    access: Access,
}

macro_rules! field {
    ($variant:ident, $f:ident) => {{
        fn get(c: &Config) -> Slot<'_> {
            Slot::$variant(&c.$f)
        }
        fn set(c: &mut Config) -> SlotMut<'_> {
            SlotMut::$variant(&mut c.$f)
        }
        Access::Field(get, set)
    }};
}

const fn p(
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    flags: u8,
    access: Access,
) -> Param {
    Param {
        name,
        alias,
        kind,
        flags,
        access,
    }
}

/// Refuses a value other than the default for a [`DEFAULT_ONLY`] directive.
fn default_only(param: &Param, value: &str) -> Result<(), String> {
    let Some((_, why)) = DEFAULT_ONLY.iter().find(|(n, _)| *n == param.name) else {
        return Ok(());
    };
    match param.access {
        Access::Stored(default) if value != default => {
            Err(format!("shardis accepts only '{default}' here ({why})"))
        }
        _ => Ok(()),
    }
}

const fn ign(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        kind,
        flags: 0,
        access: Access::Stored(default),
    }
}

const fn ign_f(
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    flags: u8,
    default: &'static str,
) -> Param {
    Param {
        name,
        alias,
        kind,
        flags,
        access: Access::Stored(default),
    }
}

const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const NO_YES_LOCAL: &[&str] = &["no", "yes", "local"];

use Kind::*;

static PARAMS: &[Param] = &[
    // Network and process.
    p("port", None, Int(0, 65535), 0, field!(U16, port)),
    p("bind", None, Bind, MULTI_ARG, Access::Special),
    p(
        "protected-mode",
        None,
        Bool,
        0,
        field!(Bool, protected_mode),
    ),
    p("requirepass", None, Str, 0, field!(OptStr, requirepass)),
    p(
        "databases",
        None,
        Int(1, I32),
        IMMUTABLE,
        field!(Usize, databases),
    ),
    p("dir", None, Str, PROTECTED, field!(Str, dir)),
    p("logfile", None, Str, IMMUTABLE, field!(Str, logfile)),
    p(
        "loglevel",
        None,
        Enum(LOG_LEVELS),
        0,
        field!(LogLevel, loglevel),
    ),
    p("pidfile", None, Str, IMMUTABLE, field!(OptStr, pidfile)),
    p(
        "maxclients",
        None,
        Int(1, u32::MAX as i128),
        0,
        field!(U64, maxclients),
    ),
    p("timeout", None, Int(0, I32), 0, field!(U64, timeout)),
    p(
        "tcp-keepalive",
        None,
        Int(0, I32),
        0,
        field!(U64, tcp_keepalive),
    ),
    p(
        "tcp-backlog",
        None,
        Int(0, I32),
        IMMUTABLE,
        field!(U32, tcp_backlog),
    ),
    p("threads", None, Threads, IMMUTABLE, Access::Special),
    p("daemonize", None, Bool, IMMUTABLE, field!(Bool, daemonize)),
    p(
        "proto-max-bulk-len",
        None,
        Mem(1 << 20, I64),
        0,
        field!(I64, proto_max_bulk_len),
    ),
    p(
        "client-query-buffer-limit",
        None,
        Mem(1 << 20, I64),
        0,
        field!(U64, client_query_buffer_limit),
    ),
    p(
        "client-output-buffer-limit",
        None,
        ClientOutputBufferLimit,
        MULTI_ARG,
        Access::Special,
    ),
    // Persistence.
    p("save", None, Save, MULTI_ARG, Access::Special),
    p(
        "dbfilename",
        None,
        FileName,
        PROTECTED,
        field!(Str, dbfilename),
    ),
    p(
        "rdbcompression",
        None,
        Bool,
        0,
        field!(Bool, rdbcompression),
    ),
    p(
        "rdbchecksum",
        None,
        Bool,
        IMMUTABLE,
        field!(Bool, rdbchecksum),
    ),
    p("appendonly", None, Bool, 0, field!(Bool, appendonly)),
    // Replication.
    p(
        "replicaof",
        Some("slaveof"),
        ReplicaOf,
        IMMUTABLE | MULTI_ARG,
        Access::Special,
    ),
    p("masterauth", None, Str, 0, field!(OptStr, masterauth)),
    p("masteruser", None, Str, 0, field!(OptStr, masteruser)),
    p("aclfile", None, Str, IMMUTABLE, field!(OptStr, aclfile)),
    p(
        "acl-pubsub-default",
        None,
        Enum(&["allchannels", "resetchannels"]),
        0,
        field!(Str, acl_pubsub_default),
    ),
    p(
        "acllog-max-len",
        None,
        Int(0, I64),
        0,
        field!(Usize, acllog_max_len),
    ),
    p(
        "replica-read-only",
        Some("slave-read-only"),
        Bool,
        0,
        field!(Bool, replica_read_only),
    ),
    p(
        "replica-serve-stale-data",
        Some("slave-serve-stale-data"),
        Bool,
        0,
        field!(Bool, replica_serve_stale_data),
    ),
    p(
        "replica-announce-ip",
        Some("slave-announce-ip"),
        Str,
        0,
        field!(OptStr, replica_announce_ip),
    ),
    p(
        "replica-announce-port",
        Some("slave-announce-port"),
        Int(0, 65535),
        0,
        field!(U16, replica_announce_port),
    ),
    p(
        "replica-priority",
        Some("slave-priority"),
        Int(0, I32),
        0,
        field!(U64, replica_priority),
    ),
    p(
        "replica-announced",
        None,
        Bool,
        0,
        field!(Bool, replica_announced),
    ),
    p(
        "repl-backlog-size",
        None,
        Mem(1, I64),
        0,
        field!(U64, repl_backlog_size),
    ),
    p(
        "repl-backlog-ttl",
        None,
        Int(0, I64),
        0,
        field!(U64, repl_backlog_ttl),
    ),
    p(
        "repl-timeout",
        None,
        Int(1, I32),
        0,
        field!(U64, repl_timeout),
    ),
    p(
        "repl-ping-replica-period",
        Some("repl-ping-slave-period"),
        Int(1, I32),
        0,
        field!(U64, repl_ping_replica_period),
    ),
    p(
        "repl-diskless-sync",
        None,
        Bool,
        0,
        field!(Bool, repl_diskless_sync),
    ),
    p(
        "repl-diskless-sync-delay",
        None,
        Int(0, I32),
        0,
        field!(U64, repl_diskless_sync_delay),
    ),
    p(
        "repl-diskless-sync-max-replicas",
        None,
        Int(0, I32),
        0,
        field!(U64, repl_diskless_sync_max_replicas),
    ),
    p(
        "repl-diskless-load",
        None,
        Enum(&["disabled", "on-empty-db", "swapdb"]),
        0,
        field!(Str, repl_diskless_load),
    ),
    p(
        "min-replicas-to-write",
        Some("min-slaves-to-write"),
        Int(0, I32),
        0,
        field!(U64, min_replicas_to_write),
    ),
    p(
        "min-replicas-max-lag",
        Some("min-slaves-max-lag"),
        Int(0, I32),
        0,
        field!(U64, min_replicas_max_lag),
    ),
    // Memory and housekeeping.
    p(
        "maxmemory",
        None,
        Mem(0, u64::MAX as i128),
        0,
        field!(U64, maxmemory),
    ),
    p(
        "maxmemory-policy",
        None,
        Enum(MAXMEMORY_POLICIES),
        0,
        field!(Str, maxmemory_policy),
    ),
    p(
        "notify-keyspace-events",
        None,
        NotifyClasses,
        0,
        field!(Str, notify_keyspace_events),
    ),
    p(
        "maxmemory-samples",
        None,
        Int(1, I32),
        0,
        field!(U64, maxmemory_samples),
    ),
    p(
        "lfu-log-factor",
        None,
        Int(0, I32),
        0,
        field!(U32, lfu_log_factor),
    ),
    p(
        "lfu-decay-time",
        None,
        Int(0, I32),
        0,
        field!(U32, lfu_decay_time),
    ),
    p("hz", None, Int(0, I32), 0, field!(U64, hz)),
    p(
        "slowlog-log-slower-than",
        None,
        Int(-1, I64),
        0,
        field!(I64, slowlog_log_slower_than),
    ),
    p(
        "slowlog-max-len",
        None,
        Int(0, I64),
        0,
        field!(U64, slowlog_max_len),
    ),
    p(
        "latency-monitor-threshold",
        None,
        Int(0, I64),
        0,
        field!(U64, latency_monitor_threshold),
    ),
    p(
        "latency-tracking",
        None,
        Bool,
        0,
        field!(Bool, latency_tracking),
    ),
    p(
        "latency-tracking-info-percentiles",
        None,
        Percentiles,
        MULTI_ARG,
        field!(Str, latency_tracking_info_percentiles),
    ),
    // Encoding thresholds.
    p(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        Int(0, I64),
        0,
        field!(U64, hash_max_listpack_entries),
    ),
    p(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        Mem(0, I64),
        0,
        field!(U64, hash_max_listpack_value),
    ),
    p(
        "set-max-intset-entries",
        None,
        Int(0, I64),
        0,
        field!(U64, set_max_intset_entries),
    ),
    p(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        Int(0, I64),
        0,
        field!(U64, zset_max_listpack_entries),
    ),
    p(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        Mem(0, I64),
        0,
        field!(U64, zset_max_listpack_value),
    ),
    p(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        Int(i32::MIN as i128, I32),
        0,
        field!(I64, list_max_listpack_size),
    ),
    p(
        "stream-node-max-bytes",
        None,
        Mem(0, I64),
        0,
        field!(U64, stream_node_max_bytes),
    ),
    p(
        "stream-node-max-entries",
        None,
        Int(0, I64),
        0,
        field!(U64, stream_node_max_entries),
    ),
    p(
        "hll-sparse-max-bytes",
        None,
        Mem(0, I64),
        0,
        field!(U64, hll_sparse_max_bytes),
    ),
    // Accepted and ignored (see IGNORED for why).
    ign("active-defrag-cycle-max", Int(1, 99), "25"),
    ign("active-defrag-cycle-min", Int(1, 99), "1"),
    ign("active-defrag-ignore-bytes", Mem(1, I64), "104857600"),
    ign("active-defrag-max-scan-fields", Int(1, I64), "1000"),
    ign("active-defrag-threshold-lower", Int(0, 1000), "10"),
    ign("active-defrag-threshold-upper", Int(0, 1000), "100"),
    ign("active-expire-effort", Int(1, 10), "1"),
    ign("activedefrag", Bool, "no"),
    ign("activerehashing", Bool, "yes"),
    ign_f("always-show-logo", None, Bool, IMMUTABLE, "no"),
    p(
        "aof-disable-auto-gc",
        None,
        Bool,
        0,
        field!(Bool, aof_disable_auto_gc),
    ),
    p(
        "aof-load-truncated",
        None,
        Bool,
        0,
        field!(Bool, aof_load_truncated),
    ),
    ign("aof-rewrite-incremental-fsync", Bool, "yes"),
    p(
        "aof-timestamp-enabled",
        None,
        Bool,
        0,
        field!(Bool, aof_timestamp_enabled),
    ),
    p(
        "aof-use-rdb-preamble",
        None,
        Bool,
        0,
        field!(Bool, aof_use_rdb_preamble),
    ),
    ign_f("aof_rewrite_cpulist", None, Str, IMMUTABLE, ""),
    p(
        "appenddirname",
        None,
        FileName,
        IMMUTABLE,
        field!(Str, appenddirname),
    ),
    p(
        "appendfilename",
        None,
        FileName,
        IMMUTABLE,
        field!(Str, appendfilename),
    ),
    p(
        "appendfsync",
        None,
        Enum(&["everysec", "always", "no"]),
        0,
        field!(Str, appendfsync),
    ),
    p(
        "auto-aof-rewrite-min-size",
        None,
        Mem(0, I64),
        0,
        field!(U64, auto_aof_rewrite_min_size),
    ),
    p(
        "auto-aof-rewrite-percentage",
        None,
        Int(0, I32),
        0,
        field!(U64, auto_aof_rewrite_percentage),
    ),
    ign_f("bgsave_cpulist", None, Str, IMMUTABLE, ""),
    ign("bind-source-addr", Str, ""),
    ign_f("bio_cpulist", None, Str, IMMUTABLE, ""),
    p(
        "busy-reply-threshold",
        Some("lua-time-limit"),
        Int(0, I64),
        0,
        field!(I64, busy_reply_threshold),
    ),
    ign("cluster-allow-pubsubshard-when-down", Bool, "yes"),
    ign("cluster-allow-reads-when-down", Bool, "no"),
    ign("cluster-allow-replica-migration", Bool, "yes"),
    ign("cluster-announce-bus-port", Int(0, 65535), "0"),
    ign("cluster-announce-hostname", Str, ""),
    ign("cluster-announce-ip", Str, ""),
    ign("cluster-announce-port", Int(0, 65535), "0"),
    ign("cluster-announce-tls-port", Int(0, 65535), "0"),
    ign_f("cluster-config-file", None, Str, IMMUTABLE, "nodes.conf"),
    ign_f("cluster-enabled", None, Bool, IMMUTABLE, "no"),
    ign("cluster-link-sendbuf-limit", Mem(0, I64), "0"),
    ign("cluster-migration-barrier", Int(0, I32), "1"),
    ign("cluster-node-timeout", Int(0, I64), "15000"),
    ign_f("cluster-port", None, Int(0, 65535), IMMUTABLE, "0"),
    ign(
        "cluster-preferred-endpoint-type",
        Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    ign_f(
        "cluster-replica-no-failover",
        Some("cluster-slave-no-failover"),
        Bool,
        0,
        "no",
    ),
    ign_f(
        "cluster-replica-validity-factor",
        Some("cluster-slave-validity-factor"),
        Int(0, I32),
        0,
        "10",
    ),
    ign("cluster-require-full-coverage", Bool, "yes"),
    ign("crash-log-enabled", Bool, "yes"),
    ign("crash-memcheck-enabled", Bool, "yes"),
    ign_f("disable-thp", None, Bool, IMMUTABLE, "yes"),
    ign("dynamic-hz", Bool, "yes"),
    ign_f(
        "enable-debug-command",
        None,
        Enum(NO_YES_LOCAL),
        IMMUTABLE,
        "no",
    ),
    ign_f(
        "enable-module-command",
        None,
        Enum(NO_YES_LOCAL),
        IMMUTABLE,
        "no",
    ),
    ign_f(
        "enable-protected-configs",
        None,
        Enum(NO_YES_LOCAL),
        IMMUTABLE,
        "no",
    ),
    ign("ignore-warnings", Str, ""),
    ign_f("io-threads", None, Int(1, 128), IMMUTABLE, "1"),
    ign_f("io-threads-do-reads", None, Bool, IMMUTABLE, "no"),
    ign("jemalloc-bg-thread", Bool, "yes"),
    ign("lazyfree-lazy-eviction", Bool, "no"),
    ign("lazyfree-lazy-expire", Bool, "no"),
    ign("lazyfree-lazy-server-del", Bool, "no"),
    ign("lazyfree-lazy-user-del", Bool, "no"),
    ign("lazyfree-lazy-user-flush", Bool, "no"),
    ign("list-compress-depth", Int(0, I32), "0"),
    ign("maxmemory-clients", MemOrPercent, "0"),
    ign("maxmemory-eviction-tenacity", Int(0, 100), "10"),
    p(
        "no-appendfsync-on-rewrite",
        None,
        Bool,
        0,
        field!(Bool, no_appendfsync_on_rewrite),
    ),
    ign(
        "oom-score-adj",
        Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    ign_f("oom-score-adj-values", None, Words, MULTI_ARG, "0 200 800"),
    ign(
        "proc-title-template",
        Str,
        "{title} {listen-addr} {server-mode}",
    ),
    ign(
        "propagation-error-behavior",
        Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    ign("rdb-del-sync-files", Bool, "no"),
    ign("rdb-save-incremental-fsync", Bool, "yes"),
    ign("repl-disable-tcp-nodelay", Bool, "no"),
    ign("replica-ignore-disk-write-errors", Bool, "no"),
    ign_f(
        "replica-ignore-maxmemory",
        Some("slave-ignore-maxmemory"),
        Bool,
        0,
        "yes",
    ),
    ign_f(
        "replica-lazy-flush",
        Some("slave-lazy-flush"),
        Bool,
        0,
        "no",
    ),
    ign(
        "sanitize-dump-payload",
        Enum(&["no", "yes", "clients"]),
        "no",
    ),
    p(
        "server_cpulist",
        None,
        CpuList,
        IMMUTABLE,
        field!(Str, server_cpulist),
    ),
    ign_f("set-proc-title", None, Bool, IMMUTABLE, "yes"),
    ign_f("shutdown-on-sigint", None, Words, MULTI_ARG, "default"),
    ign_f("shutdown-on-sigterm", None, Words, MULTI_ARG, "default"),
    ign("shutdown-timeout", Int(0, I32), "10"),
    ign_f(
        "socket-mark-id",
        None,
        Int(0, u32::MAX as i128),
        IMMUTABLE,
        "0",
    ),
    ign("stop-writes-on-bgsave-error", Bool, "yes"),
    ign_f(
        "supervised",
        None,
        Enum(&["upstart", "systemd", "auto", "no"]),
        IMMUTABLE,
        "no",
    ),
    ign_f("syslog-enabled", None, Bool, IMMUTABLE, "no"),
    ign_f(
        "syslog-facility",
        None,
        Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        IMMUTABLE,
        "local0",
    ),
    ign_f("syslog-ident", None, Str, IMMUTABLE, "redis"),
    ign("tls-auth-clients", Enum(&["no", "yes", "optional"]), "yes"),
    ign("tls-ca-cert-dir", Str, ""),
    ign("tls-ca-cert-file", Str, ""),
    ign("tls-cert-file", Str, ""),
    ign("tls-ciphers", Str, ""),
    ign("tls-ciphersuites", Str, ""),
    ign("tls-client-cert-file", Str, ""),
    ign("tls-client-key-file", Str, ""),
    ign("tls-client-key-file-pass", Str, ""),
    ign("tls-cluster", Bool, "no"),
    ign("tls-dh-params-file", Str, ""),
    ign("tls-key-file", Str, ""),
    ign("tls-key-file-pass", Str, ""),
    ign("tls-port", Int(0, 65535), "0"),
    ign("tls-prefer-server-ciphers", Bool, "no"),
    ign("tls-protocols", Str, ""),
    ign("tls-replication", Bool, "no"),
    ign("tls-session-cache-size", Int(0, I32), "20480"),
    ign("tls-session-cache-timeout", Int(0, I32), "300"),
    ign("tls-session-caching", Bool, "yes"),
    ign("tracking-table-max-keys", Int(0, I64), "1000000"),
    ign_f("unixsocket", None, Str, IMMUTABLE, ""),
    ign_f("unixsocketperm", None, Str, IMMUTABLE, "0"),
];

fn lookup(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| {
        p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

/// A validated single value.
enum Value {
    Bool(bool),
    Int(i128),
    Str(String),
}

fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

fn check_bounds(v: i128, min: i128, max: i128) -> Result<Value, String> {
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(Value::Int(v))
}

/// Validates the single argument of a scalar parameter.
fn parse_scalar(kind: Kind, arg: &str) -> Result<Value, String> {
    match kind {
        Bool => parse_bool(arg).map(Value::Bool),
        Int(min, max) => match parse::string2ll(arg) {
            Some(v) => check_bounds(i128::from(v), min, max),
            None => Err("argument couldn't be parsed into an integer".into()),
        },
        Threads => match parse::string2ll(arg) {
            Some(v) => check_bounds(i128::from(v), 0, 65535),
            None => Err("argument couldn't be parsed into an integer".into()),
        },
        Mem(min, max) => match parse::memtoull(arg) {
            // Redis stores signed configs as long long, so huge values fail the bounds check.
            Some(v) => check_bounds(i128::from(v), min, max),
            None => Err("argument must be a memory value".into()),
        },
        MemOrPercent => {
            if let Some(v) = parse::memtoull(arg) {
                check_bounds(i128::from(v), 0, I64)
            } else if let Some(n) = arg
                .strip_suffix('%')
                .filter(|n| !n.is_empty())
                .and_then(parse::string2ll)
                .filter(|n| *n >= 0)
            {
                // Kept as written: Redis reports percentages back as "N%".
                Ok(Value::Str(format!("{n}%")))
            } else {
                Err("argument must be a memory or percent value".into())
            }
        }
        Enum(names) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(arg))
            .map(|n| Value::Str((*n).to_string()))
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    names.join(", ")
                )
            }),
        CpuList if arg.is_empty() => Ok(Value::Str(String::new())),
        CpuList => parse_cpulist(arg).map(|_| Value::Str(arg.to_string())),
        // Kept as given: `A` hides `n` in the canonical form, not in effect.
        NotifyClasses => match shardis_base::notify::parse_flags(arg.as_bytes()) {
            Some(_) => Ok(Value::Str(arg.to_string())),
            None => Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        },
        FileName => {
            if arg.contains('/') || arg.contains('\\') {
                Err("dbfilename can't be a path, just a filename".into())
            } else {
                Ok(Value::Str(arg.to_string()))
            }
        }
        Str | Words | Percentiles | Save | Bind | ClientOutputBufferLimit | ReplicaOf => {
            Ok(Value::Str(arg.to_string()))
        }
    }
}

/// `latency-tracking-info-percentiles`: numbers in 0..=100 (Redis's checks and texts),
/// normalised to space-separated `%f`-free form.
/// The most CPUs a list may name (glibc's `CPU_SETSIZE`).
const MAX_CPUS: usize = 1024;

/// Parses Redis's CPU list syntax, as `server_cpulist` takes it: CPUs `N`,
/// ranges `A-B` and stepped ranges `A-B:S`, separated by commas
/// (`0-7:2,9` is 0, 2, 4, 6, 9). Returns the CPUs in the order listed, each
/// once. Redis skips a list it cannot parse; shardis refuses it, because it
/// decides where the executors run.
pub fn parse_cpulist(list: &str) -> Result<Vec<usize>, String> {
    let bad = || {
        format!("Invalid CPU list '{list}': expected CPUs (N), ranges (A-B) or stepped ranges (A-B:S) below {MAX_CPUS}, separated by commas")
    };
    let num = |t: &str| {
        t.parse::<usize>()
            .ok()
            .filter(|&n| n < MAX_CPUS && !t.starts_with('+'))
            .ok_or_else(bad)
    };
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((range, step)) => (range, num(step).ok().filter(|&s| s > 0).ok_or_else(bad)?),
            None => (part, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(range)?, num(range)?),
        };
        if first > last {
            return Err(bad());
        }
        for cpu in (first..=last).step_by(step) {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    Ok(cpus)
}

fn parse_percentiles(args: &[String]) -> Result<String, String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args.iter().flat_map(|a| a.split_whitespace()) {
        let v: f64 = a
            .parse()
            .map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        out.push(format!("{v}"));
    }
    Ok(out.join(" "))
}

/// The percentiles of `latency-tracking-info-percentiles` as numbers.
pub fn percentiles(value: &str) -> Vec<f64> {
    value
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn value_to_string(v: &Value) -> String {
    match v {
        Value::Bool(b) => yes_no(*b).into(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn parse_save(args: &[String]) -> Result<Vec<(u64, u64)>, String> {
    let args: &[String] = if args.len() == 1 && args[0].is_empty() {
        &[]
    } else {
        args
    };
    let bad = || "Invalid save parameters".to_string();
    if !args.len().is_multiple_of(2) {
        return Err(bad());
    }
    let mut out = Vec::new();
    for pair in args.chunks(2) {
        // Redis uses strtoll here, so "+5" and " 5" are accepted.
        let (secs, ok1) = parse::strtol(&pair[0]);
        let (changes, ok2) = parse::strtol(&pair[1]);
        if !ok1 || !ok2 || secs < 1 || changes < 0 {
            return Err(bad());
        }
        out.push((secs as u64, changes as u64));
    }
    Ok(out)
}

fn parse_client_output_buffer_limit(
    current: &ClientOutputBufferLimits,
    args: &[String],
) -> Result<ClientOutputBufferLimits, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = *current;
    for a in args.chunks(4) {
        let class = a[0].to_ascii_lowercase();
        let slot = match class.as_str() {
            "normal" => &mut out.normal,
            "slave" | "replica" => &mut out.replica,
            "pubsub" => &mut out.pubsub,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let (secs, secs_ok) = parse::strtol(&a[3]);
        match (parse::memtoull(&a[1]), parse::memtoull(&a[2])) {
            (Some(hard), Some(soft)) if secs_ok && secs >= 0 => {
                *slot = ClientBufferLimit {
                    hard,
                    soft,
                    soft_seconds: secs as u64,
                }
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                )
            }
        }
    }
    Ok(out)
}

fn parse_replicaof(args: &[String]) -> Result<Option<(String, u16)>, String> {
    if args.len() != 2 {
        return Err("wrong number of arguments".into());
    }
    if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
        return Ok(None);
    }
    // Redis uses strtol, so "+6379" is accepted.
    let (port, ok) = parse::strtol(&args[1]);
    if !ok || !(0..=65535).contains(&port) {
        return Err("Invalid master port".into());
    }
    Ok(Some((args[0].clone(), port as u16)))
}

fn format_save(save: &[(u64, u64)]) -> String {
    save.iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn format_cobl(l: &ClientOutputBufferLimits) -> String {
    let f = |name: &str, c: &ClientBufferLimit| {
        format!("{name} {} {} {}", c.hard, c.soft, c.soft_seconds)
    };
    format!(
        "{} {} {}",
        f("normal", &l.normal),
        f("slave", &l.replica),
        f("pubsub", &l.pubsub)
    )
}

/// Whether this parse is part of loading the config (affects `save` accumulation).
#[derive(Clone, Copy, PartialEq)]
enum Source {
    File,
    ConfigSet,
}

impl Config {
    /// Applies a whole redis.conf text: `#` comments, quoting as in Redis's `sdssplitargs`,
    /// case-insensitive directives, later lines override earlier ones. `include` is rejected.
    pub fn apply_text(&mut self, text: &str, file: Option<&str>) -> Result<(), ConfigError> {
        self.apply_text_entering_dir(text, file, &mut |d: &str| Ok(d.to_string()))
    }

    /// [`Config::apply_text`], calling `enter_dir` for every `dir` line as it is read, as
    /// redis-server chdirs there at once (so later relative paths resolve inside it). It
    /// returns the path to store (the server's: the absolute directory) or the reason.
    pub fn apply_text_entering_dir(
        &mut self,
        text: &str,
        file: Option<&str>,
        enter_dir: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), ConfigError> {
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError {
                file: file.map(str::to_string),
                line: i + 1,
                directive: line.to_string(),
                reason,
            };
            let Some(argv) = parse::split_args(line.as_bytes()) else {
                return Err(err("Unbalanced quotes in configuration line".into()));
            };
            let argv: Vec<String> = argv
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            if argv.is_empty() {
                continue;
            }
            self.apply_directive(&argv).map_err(&err)?;
            if argv[0].eq_ignore_ascii_case("dir") {
                self.dir = enter_dir(&self.dir).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Applies command-line `--directive value ...` arguments with redis-server's semantics: they
    /// become config lines appended after an (empty) config file, so the first is line 2.
    pub fn apply_args(&mut self, args: &[String]) -> Result<(), ConfigError> {
        self.apply_file_and_args(None, args)
    }

    /// Applies an optional `(path, text)` config file followed by command-line arguments, exactly
    /// as redis-server concatenates them (`<file>\n<options>`), so line numbers in errors match.
    pub fn apply_file_and_args(
        &mut self,
        file: Option<(&str, &str)>,
        args: &[String],
    ) -> Result<(), ConfigError> {
        self.apply_file_and_args_entering_dir(file, args, &mut |d: &str| Ok(d.to_string()))
    }

    /// [`Config::apply_file_and_args`] with the `dir` hook of [`Config::apply_text_entering_dir`].
    pub fn apply_file_and_args_entering_dir(
        &mut self,
        file: Option<(&str, &str)>,
        args: &[String],
        enter_dir: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), ConfigError> {
        let mut text = file.map(|(_, t)| t.to_string()).unwrap_or_default();
        text.push('\n');
        text.push_str(&args_to_config_text(args));
        self.apply_text_entering_dir(&text, file.map(|(p, _)| p), enter_dir)
    }

    fn apply_directive(&mut self, argv: &[String]) -> Result<(), String> {
        let name = argv[0].to_ascii_lowercase();
        if name == "user" && argv.len() >= 2 {
            return self.add_user(&argv[1..]);
        }
        let Some(param) = lookup(&name) else {
            if DEPRECATED.contains(&name.as_str()) {
                return Ok(());
            }
            if UNSUPPORTED.contains(&name.as_str()) {
                return Err(format!("'{name}' is not supported by shardis"));
            }
            return Err("Bad directive or wrong number of arguments".into());
        };
        let multi = param.flags & MULTI_ARG != 0;
        if !multi && argv.len() != 2 {
            return Err("wrong number of arguments".into());
        }
        let args: Vec<String> = if multi && argv.len() == 2 && !argv[1].is_empty() {
            // Redis splits a lone multi-arg value, so `--save "60 1"` works.
            parse::split_args(argv[1].as_bytes())
                .unwrap_or_default()
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        } else {
            argv[1..].to_vec()
        };
        self.set_param(param, &args, Source::File)
    }

    /// Validates `args` for `param` and stores the result; on error nothing changes.
    fn set_param(&mut self, param: &Param, args: &[String], source: Source) -> Result<(), String> {
        match param.kind {
            Save => {
                let points = parse_save(args)?;
                // While loading, the first `save` line replaces the defaults and later ones add;
                // `save ""` always clears.
                let clear_all = args.len() == 1 && args[0].is_empty();
                if clear_all || source == Source::ConfigSet || !self.save_loaded {
                    self.save.clear();
                }
                if source == Source::File {
                    self.save_loaded = true;
                }
                self.save.extend(points);
                return Ok(());
            }
            Bind => {
                let args: &[String] = if args.len() == 1 && args[0].is_empty() {
                    &[]
                } else {
                    args
                };
                if args.len() > 16 {
                    return Err("Too many bind addresses specified.".into());
                }
                self.bind = args.to_vec();
                return Ok(());
            }
            ClientOutputBufferLimit => {
                self.client_output_buffer_limit =
                    parse_client_output_buffer_limit(&self.client_output_buffer_limit, args)?;
                return Ok(());
            }
            ReplicaOf => {
                self.replicaof = parse_replicaof(args)?;
                return Ok(());
            }
            Words => {
                let joined = args.join(" ");
                default_only(param, &joined)?;
                self.ignored.insert(param.name, joined);
                return Ok(());
            }
            Percentiles => {
                self.latency_tracking_info_percentiles = parse_percentiles(args)?;
                return Ok(());
            }
            _ => {}
        }
        let [arg] = args else {
            return Err("wrong number of arguments".into());
        };
        let value = parse_scalar(param.kind, arg)?;
        match param.access {
            Access::Field(_, get_mut) => assign(get_mut(self), value),
            Access::Stored(_) => {
                let s = value_to_string(&value);
                if param.name == "cluster-enabled" && s == "yes" {
                    return Err("cluster mode is not supported by shardis".into());
                }
                if param.name == "tls-port" && s != "0" {
                    return Err("TLS is not supported by shardis".into());
                }
                default_only(param, &s)?;
                self.ignored.insert(param.name, s);
            }
            Access::Special => {
                // Only `threads` is a scalar special.
                if let Value::Int(n) = value {
                    self.threads = if n == 0 { None } else { Some(n as usize) };
                }
            }
        }
        Ok(())
    }

    /// A `user` directive: the rules are checked now (as Redis does), the
    /// user is created when the server starts.
    fn add_user(&mut self, argv: &[String]) -> Result<(), String> {
        if self.users.iter().any(|u| u[0] == argv[0]) {
            return Err(format!(
                "Error in user declaration '{}': {}",
                argv[0],
                shardis_acl::RuleError::Duplicate.message()
            ));
        }
        let mut probe = shardis_acl::User::new(&argv[0]);
        for (j, op) in argv[1..].iter().enumerate() {
            match probe.apply(op.as_bytes()) {
                Ok(()) | Err(shardis_acl::RuleError::UnknownCommand) => {}
                Err(e) => {
                    // Redis names `argv[j]` of the whole line (`user`, name,
                    // rules…) where j counts rules: we print the same token.
                    let shown = if j == 0 { "user" } else { &argv[j - 1] };
                    return Err(format!(
                        "Error in user declaration '{shown}': {}",
                        e.message()
                    ));
                }
            }
        }
        self.users.push(argv.to_vec());
        Ok(())
    }

    fn param_value(&self, param: &Param) -> String {
        if let NotifyClasses = param.kind {
            return shardis_base::notify::format_flags(self.notify_flags());
        }
        match &param.access {
            Access::Field(get, _) => match get(self) {
                Slot::Bool(b) => yes_no(*b).into(),
                Slot::U16(v) => v.to_string(),
                Slot::U32(v) => v.to_string(),
                Slot::U64(v) => v.to_string(),
                Slot::Usize(v) => v.to_string(),
                Slot::I64(v) => v.to_string(),
                Slot::Str(s) => s.clone(),
                Slot::OptStr(s) => s.clone().unwrap_or_default(),
                Slot::LogLevel(l) => l.as_str().into(),
            },
            Access::Stored(default) => self
                .ignored
                .get(param.name)
                .cloned()
                .unwrap_or_else(|| default.to_string()),
            Access::Special => match param.kind {
                Save => format_save(&self.save),
                Bind => self.bind.join(" "),
                ClientOutputBufferLimit => format_cobl(&self.client_output_buffer_limit),
                ReplicaOf => self
                    .replicaof
                    .as_ref()
                    .map(|(h, p)| format!("{h} {p}"))
                    .unwrap_or_default(),
                Threads => self.threads.unwrap_or(0).to_string(),
                _ => String::new(),
            },
        }
    }

    /// CONFIG GET: `(name, value)` for every parameter (or alias) matching the glob `pattern`
    /// (case-insensitive), formatted as Redis 7.0 formats them. Sorted by name.
    pub fn get(&self, pattern: &str) -> Vec<(String, String)> {
        let pat = pattern.as_bytes();
        let mut out = Vec::new();
        for param in PARAMS {
            for name in std::iter::once(param.name).chain(param.alias) {
                if parse::glob_match(pat, name.as_bytes(), true) {
                    out.push((name.to_string(), self.param_value(param)));
                }
            }
        }
        out.sort();
        out
    }

    /// `notify-keyspace-events` as event class bits (`shardis_keyspace::notify`).
    pub fn notify_flags(&self) -> u32 {
        shardis_base::notify::parse_flags(self.notify_keyspace_events.as_bytes()).unwrap_or(0)
    }

    /// The stored value of a directive from [`IGNORED`] (or any parameter), as CONFIG GET shows it.
    pub fn value_of(&self, name: &str) -> Option<String> {
        lookup(name).map(|p| self.param_value(p))
    }

    /// CONFIG SET `name` `value`, with Redis 7.0's exact error replies (starting with `ERR`).
    /// The server must apply side effects (rebinding `port`, resizing the backlog, ...) itself.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some(param) = lookup(name) else {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        let fail = |reason: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")
        };
        if param.flags & IMMUTABLE != 0 {
            return Err(fail("can't set immutable config"));
        }
        if param.flags & PROTECTED != 0
            && self
                .ignored
                .get("enable-protected-configs")
                .is_some_and(|v| v == "no")
        {
            return Err(fail("can't set protected config"));
        }
        let args: Vec<String> = if param.flags & MULTI_ARG != 0 {
            // Redis splits multi-arg values on single spaces (sdssplitlen), "" giving no args.
            if value.is_empty() {
                Vec::new()
            } else {
                value.split(' ').map(str::to_string).collect()
            }
        } else {
            vec![value.to_string()]
        };
        self.set_param(param, &args, Source::ConfigSet)
            .map_err(|e| fail(&e))
    }
}

fn assign(slot: SlotMut<'_>, value: Value) {
    // parse_scalar has already checked the bounds against the field's range.
    match (slot, value) {
        (SlotMut::Bool(r), Value::Bool(b)) => *r = b,
        (SlotMut::U16(r), Value::Int(i)) => *r = i as u16,
        (SlotMut::U32(r), Value::Int(i)) => *r = i as u32,
        (SlotMut::U64(r), Value::Int(i)) => *r = i as u64,
        (SlotMut::Usize(r), Value::Int(i)) => *r = i as usize,
        (SlotMut::I64(r), Value::Int(i)) => *r = i as i64,
        (SlotMut::Str(r), Value::Str(s)) => *r = s,
        (SlotMut::OptStr(r), Value::Str(s)) => *r = if s.is_empty() { None } else { Some(s) },
        (SlotMut::LogLevel(r), Value::Str(s)) => {
            if let Some(l) = LogLevel::from_name(&s) {
                *r = l;
            }
        }
        _ => unreachable!("parameter table pairs each kind with a matching field type"),
    }
}

/// Turns redis-server command-line options into config text the way Redis 7.0's `main()` does:
/// `--name` starts a line, following arguments are appended quoted, and a bare `--save`
/// (last, or followed by another `--option`) becomes `save ""`.
pub fn args_to_config_text(args: &[String]) -> String {
    let mut options = String::new();
    let mut handled_last_config_arg = true;
    for (j, arg) in args.iter().enumerate() {
        if handled_last_config_arg && arg.starts_with("--") {
            if !options.is_empty() {
                options.push('\n');
            }
            options.push_str(&arg[2..]);
            options.push(' ');
            let argc = parse::split_args(arg.as_bytes()).map_or(0, |v| v.len());
            if argc == 1 {
                handled_last_config_arg = false;
                let next_is_option = args.get(j + 1).is_some_and(|n| n.starts_with("--"));
                let is_save = arg.eq_ignore_ascii_case("--save");
                if is_save && next_is_option {
                    options.push_str("\"\"");
                    handled_last_config_arg = true;
                } else if is_save && j == args.len() - 1 {
                    options.push_str("\"\"");
                }
            } else {
                handled_last_config_arg = true;
            }
        } else {
            parse::cat_repr(&mut options, arg.as_bytes());
            options.push(' ');
            handled_last_config_arg = true;
        }
    }
    options
}

#[cfg(test)]
mod tests;
