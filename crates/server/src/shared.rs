//! State every executor can read: configuration, counters and process-wide flags.
//!
//! Nothing here is touched per command except relaxed atomics that belong to one
//! shard (its own cache line), so the data path stays lock-free. The config mutex
//! is taken by INFO, CONFIG and connection set-up, never by GET/SET.

use shardis_config::Config;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Process-wide state shared by all executors.
pub struct Shared {
    /// The live configuration (CONFIG SET writes it).
    pub config: Mutex<Config>,
    /// The config file path, for INFO's `config_file`.
    pub config_file: Option<String>,
    /// Number of shards (= executors).
    pub shards: usize,
    /// The TCP port actually bound (differs from the config when it was 0).
    pub port: AtomicU64,
    /// When the process started.
    pub started: Instant,
    /// Unix seconds at start.
    pub started_unix: u64,
    /// 40-hex run id, fresh per process.
    pub run_id: String,
    /// Write commands wait while set (FAILOVER's pause).
    pub writes_paused: AtomicBool,
    /// Connection rounds that passed the pause check with a write and have
    /// not finished it: FAILOVER waits for 0 after pausing, so every write
    /// it did not stop is in the stream before it reads the offset.
    pub writes_in_flight: std::sync::atomic::AtomicUsize,
    /// Clients waiting out a CLIENT PAUSE or FAILOVER pause: INFO counts
    /// them in `blocked_clients`, as Redis counts its postponed clients.
    pub paused_clients: std::sync::atomic::AtomicUsize,
    /// CLIENT PAUSE's state (see `limits`).
    pub client_pause: crate::limits::ClientPause,
    /// `timeout`: idle seconds before a client is closed (0: never).
    pub idle_timeout: AtomicU64,
    /// `client-output-buffer-limit` for normal and Pub/Sub clients.
    pub output_limits: crate::limits::OutputLimits,
    /// Set once to stop every executor.
    pub shutdown: AtomicBool,
    /// SHUTDOWN's save mode (see `server::SHUTDOWN_*`).
    pub shutdown_mode: std::sync::atomic::AtomicU8,
    /// SHUTDOWN (or SIGTERM/SIGINT) was asked for; shard 0's cron carries it
    /// out, first waiting for lagging replicas (`shutdown-timeout`).
    pub shutdown_requested: AtomicBool,
    /// The request was SHUTDOWN NOW: no wait for replicas.
    pub shutdown_now: AtomicBool,
    /// Unix ms until which the shutdown waits for replicas (0: not waiting).
    /// Writes are paused meanwhile, as Redis's PAUSE_DURING_SHUTDOWN.
    pub shutdown_deadline_ms: AtomicU64,
    /// Next client id (CLIENT ID starts at 1 as in Redis).
    pub next_client_id: AtomicU64,
    /// Next multi-shard transaction id.
    pub next_tx_id: AtomicU64,
    /// Clients connected now, over all executors.
    pub connected_clients: AtomicUsize,
    /// Hot copies of config values read per request.
    pub proto_max_bulk_len: AtomicI64,
    /// `busy-reply-threshold` (read per script run).
    pub busy_reply_threshold: AtomicI64,
    /// `tracking-table-max-keys` (0: no limit).
    pub tracking_max_keys: AtomicU64,
    /// `client-query-buffer-limit`.
    pub query_buffer_limit: AtomicU64,
    /// `maxclients`.
    pub maxclients: AtomicU64,
    /// `notify-keyspace-events` as the keyspace tests it (0: off).
    pub notify_flags: std::sync::atomic::AtomicU32,
    /// `maxmemory` (0: no limit).
    pub maxmemory: AtomicU64,
    /// Bumped when an eviction setting changes; shards re-read them (see `memory`).
    pub eviction_version: AtomicU64,
    /// Memory not counted against maxmemory: replica output buffers beyond
    /// the backlog (Redis's `freeMemoryGetNotCountedMemory`), kept by shard 0.
    pub not_counted_memory: AtomicU64,
    /// `min-replicas-to-write`.
    pub min_replicas_to_write: AtomicU64,
    /// Online replicas within `min-replicas-max-lag` (kept by the replication role).
    pub good_replicas: AtomicUsize,
    /// A master is configured and its link is not up (Redis's `masterhost &&
    /// repl_state != REPL_STATE_CONNECTED`), kept by shard 0: with
    /// `replica-serve-stale-data no` commands without the `stale` flag get MASTERDOWN.
    pub master_link_down: AtomicBool,
    /// `replica-serve-stale-data`.
    pub serve_stale_data: AtomicBool,
    /// A replica is flushing and loading its master's RDB: commands without the
    /// `loading` flag get `-LOADING` (INFO `loading:1`).
    pub loading: AtomicBool,
    /// A `repl-diskless-load swapdb` load goes on while clients keep reading
    /// the old dataset (INFO `async_loading:1`).
    pub async_loading: AtomicBool,
    /// Per-shard counters, indexed by shard id.
    pub stats: Vec<ShardCounters>,
    /// A snapshot (save or full sync) is running.
    pub snapshot_running: AtomicBool,
    /// Save times and outcomes for INFO persistence.
    pub persistence: Mutex<crate::persist::Persistence>,
    /// INFO's instantaneous rates (shard 0's cron samples them every 100 ms).
    pub instantaneous: Mutex<crate::metrics::Instantaneous>,
    /// Set by shard 0 once the shutdown work (final save) is done.
    pub exiting: AtomicBool,
    /// Active expiry runs in the cron (`DEBUG SET-ACTIVE-EXPIRE 0` stops it, as in Redis).
    pub active_expire: AtomicBool,
    /// Set once the dump file is loaded; listeners open after it.
    pub loaded: AtomicBool,
    /// Set once every executor is serving.
    pub started_up: AtomicBool,
    /// ACL users and log.
    pub acl: crate::acl::AclState,
    /// SLOWLOG/LATENCY/MONITOR settings and monitor counts.
    pub obs: crate::obs::ObsShared,
    /// The append-only file is written: replies wait until it holds their
    /// writes (`aof::wait_durable`).
    pub aof_on: AtomicBool,
    /// The last AOF write failed: write commands get -MISCONF.
    pub aof_write_failed: AtomicBool,
    /// The last BGSAVE failed (`rdb_last_bgsave_status:err`): with
    /// `stop-writes-on-bgsave-error yes` and save points, writes get -MISCONF.
    pub bgsave_failed: AtomicBool,
    /// The AOF's files and counters (shard 0 writes, INFO reads).
    pub aof: Mutex<crate::aof::AofState>,
    /// MIGRATE's cached connections to its targets.
    pub migrate_sockets: crate::migrate::SocketCache,
}

/// Counters one shard increments and INFO sums. Padded to avoid false sharing.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardCounters {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused at maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands processed.
    pub commands_processed: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Successful key lookups.
    pub keyspace_hits: AtomicU64,
    /// Failed key lookups.
    pub keyspace_misses: AtomicU64,
    /// Keys deleted because they expired.
    pub expired_keys: AtomicU64,
    /// Keys deleted by maxmemory eviction.
    pub evicted_keys: AtomicU64,
    /// Keys this shard's policy may evict, as of its last cron or eviction
    /// step (lets shards share eviction in proportion, see `memory`).
    pub evictable_keys: AtomicU64,
    /// Error replies sent.
    pub total_error_replies: AtomicU64,
    /// Changes since the last save (Redis's `dirty`).
    pub dirty: AtomicU64,
    /// Commands that crossed to another shard.
    pub cross_shard_batches: AtomicU64,
    /// Entries this shard appended to its write log, ever.
    pub logged: AtomicU64,
    /// How many of those the append-only file holds (set by the pump).
    pub aof_covered: AtomicU64,
    /// A connection on this executor waits for `aof_covered` to move.
    pub aof_waiting: AtomicBool,
}

impl Shared {
    /// A fresh multi-shard transaction id.
    pub fn next_tx(&self) -> shardis_base::TxId {
        shardis_base::TxId(self.next_tx_id.fetch_add(1, Ordering::Relaxed))
    }
}

impl ShardCounters {
    /// Adds `n` to one of this shard's own counters. Only the shard's own
    /// executor writes its counters (CONFIG RESETSTAT is broadcast, so each
    /// shard zeroes its own), and other threads only read them, so a plain
    /// load and store is exact: no locked read-modify-write, which is a full
    /// fence on x86 and stalled behind the command's stores (the `lock add`
    /// for `dirty` was 5-8% of a replica's samples while it applied a stream).
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }

    /// [`ShardCounters::add`] with a Release store, for a counter another
    /// thread reads with Acquire to see what was written before it (`logged`,
    /// which the pump reads before taking the shard's log).
    pub fn add_release(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Release,
        );
    }
}

/// The process-wide settings the keyspace reads (HyperLogLog's sparse
/// limit, the bit offset limit), as Redis reads them from `server.*`.
fn apply_keyspace_limits(c: &Config) {
    shardis_keyspace::hll::set_sparse_max_bytes(c.hll_sparse_max_bytes);
    shardis_keyspace::bitops::set_proto_max_bulk_len(c.proto_max_bulk_len);
    shardis_keyspace::pack::set_limits(shardis_keyspace::pack::Limits {
        hash_entries: c.hash_max_listpack_entries as usize,
        hash_value: c.hash_max_listpack_value as usize,
        zset_entries: c.zset_max_listpack_entries as usize,
        zset_value: c.zset_max_listpack_value as usize,
        set_intset_entries: c.set_max_intset_entries as usize,
        list_size: c.list_max_listpack_size,
        stream_node_entries: c.stream_node_max_entries as usize,
        stream_node_bytes: c.stream_node_max_bytes as usize,
    });
}

/// `tracking-table-max-keys`, which the config crate keeps as a plain value.
fn tracking_max_keys(c: &Config) -> u64 {
    c.value_of("tracking-table-max-keys")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

impl Shared {
    /// Fresh shared state for `shards` executors.
    pub fn new(config: Config, config_file: Option<String>, shards: usize) -> Shared {
        apply_keyspace_limits(&config);
        let run_id = random_hex40();
        let mut users = shardis_acl::Users::new();
        users.set_requirepass(config.requirepass.as_deref());
        Shared {
            acl: crate::acl::AclState::new(users),
            proto_max_bulk_len: AtomicI64::new(config.proto_max_bulk_len),
            busy_reply_threshold: AtomicI64::new(config.busy_reply_threshold),
            tracking_max_keys: AtomicU64::new(tracking_max_keys(&config)),
            client_pause: Default::default(),
            idle_timeout: AtomicU64::new(config.timeout),
            output_limits: {
                let l = crate::limits::OutputLimits::default();
                let c = &config.client_output_buffer_limit;
                l.store(c.normal, c.pubsub);
                l
            },
            query_buffer_limit: AtomicU64::new(config.client_query_buffer_limit),
            maxclients: AtomicU64::new(config.maxclients),
            notify_flags: std::sync::atomic::AtomicU32::new(shardis_keyspace::notify::effective(
                config.notify_flags(),
            )),
            maxmemory: AtomicU64::new(config.maxmemory),
            eviction_version: AtomicU64::new(1),
            not_counted_memory: AtomicU64::new(0),
            min_replicas_to_write: AtomicU64::new(config.min_replicas_to_write),
            good_replicas: AtomicUsize::new(0),
            master_link_down: AtomicBool::new(false),
            serve_stale_data: AtomicBool::new(config.replica_serve_stale_data),
            loading: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            port: AtomicU64::new(config.port as u64),
            obs: crate::obs::ObsShared::new(&config, shards),
            config: Mutex::new(config),
            config_file,
            shards,
            started: Instant::now(),
            started_unix: unix_ms() / 1000,
            run_id,
            writes_paused: AtomicBool::new(false),
            writes_in_flight: std::sync::atomic::AtomicUsize::new(0),
            paused_clients: std::sync::atomic::AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            shutdown_mode: std::sync::atomic::AtomicU8::new(0),
            shutdown_requested: AtomicBool::new(false),
            shutdown_now: AtomicBool::new(false),
            shutdown_deadline_ms: AtomicU64::new(0),
            next_client_id: AtomicU64::new(1),
            next_tx_id: AtomicU64::new(1),
            connected_clients: AtomicUsize::new(0),
            stats: (0..shards).map(|_| ShardCounters::default()).collect(),
            snapshot_running: AtomicBool::new(false),
            instantaneous: Mutex::new(Default::default()),
            persistence: Mutex::new(crate::persist::Persistence {
                last_save: unix_ms() / 1000,
                last_bgsave_ok: true,
                last_bgsave_secs: -1,
                ..Default::default()
            }),
            exiting: AtomicBool::new(false),
            active_expire: AtomicBool::new(true),
            loaded: AtomicBool::new(false),
            started_up: AtomicBool::new(false),
            aof_on: AtomicBool::new(false),
            aof_write_failed: AtomicBool::new(false),
            bgsave_failed: AtomicBool::new(false),
            aof: Mutex::new(Default::default()),
            migrate_sockets: Default::default(),
        }
    }

    /// Locks the config (poisoning is ignored: config values stay valid).
    pub fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the hot copies after CONFIG SET.
    pub fn refresh_hot_config(&self) {
        let c = self.config();
        self.proto_max_bulk_len
            .store(c.proto_max_bulk_len, Ordering::Relaxed);
        self.busy_reply_threshold
            .store(c.busy_reply_threshold, Ordering::Relaxed);
        self.tracking_max_keys
            .store(tracking_max_keys(&c), Ordering::Relaxed);
        self.query_buffer_limit
            .store(c.client_query_buffer_limit, Ordering::Relaxed);
        self.maxclients.store(c.maxclients, Ordering::Relaxed);
        self.notify_flags.store(
            shardis_keyspace::notify::effective(c.notify_flags()),
            Ordering::Relaxed,
        );
        self.maxmemory.store(c.maxmemory, Ordering::Relaxed);
        self.idle_timeout.store(c.timeout, Ordering::Relaxed);
        let l = &c.client_output_buffer_limit;
        self.output_limits.store(l.normal, l.pubsub);
        self.eviction_version.fetch_add(1, Ordering::Relaxed);
        self.min_replicas_to_write
            .store(c.min_replicas_to_write, Ordering::Relaxed);
        self.serve_stale_data
            .store(c.replica_serve_stale_data, Ordering::Relaxed);
        self.obs.refresh(&c);
        apply_keyspace_limits(&c);
    }

    /// Sum of one counter over all shards.
    pub fn total(&self, f: impl Fn(&ShardCounters) -> &AtomicU64) -> u64 {
        self.stats
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    /// True once shutdown began.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix time in microseconds.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// 40 random hex characters (run ids, replication ids).
/// A new replication history's id.
pub fn random_repl_id() -> shardis_replication::ReplId {
    shardis_replication::ReplId::from_text(random_hex40())
}

/// 40 random lower-case hex characters (run ids, replication ids).
pub fn random_hex40() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
        .collect()
}

/// An I/O error as C's strerror words it ("No such file or directory"), as Redis prints it.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
