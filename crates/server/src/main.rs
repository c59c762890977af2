//! `shardis-server`: a Redis 7.0-compatible server, thread-per-core.
//!
//! Where it sits: this crate is the only one that does I/O. It starts one glommio
//! executor per core ([`server`]), each owning a shard of the keyspace
//! ([`shard`]) and accepting connections ([`conn`]); commands whose keys live on
//! another core cross over the channel mesh. Protocol, command table, keyspace
//! and config are plain libraries.
//!
//! # Layers
//! From the bottom up (docs/architecture.md draws them):
//! - plumbing that names no other module but the logger: [`route`] (key → slot → shard),
//!   [`net`], [`logging`], [`metrics`], [`alloc`], [`errors`]; and [`shared`],
//!   the process-wide settings and counters (it also holds, as fields, the
//!   process-wide state of a few modules above, whose types it names);
//! - one executor's data and state tables, which name nothing above them:
//!   [`store`] (keyspace, key locks, commandstats, how a run executes),
//!   [`writelog`], [`watch`], and `blocking`'s table;
//! - [`shard`]: an executor's store, what consumes the store's runs (WATCH,
//!   blocked and tracking clients, keyspace events, the write log), the mesh;
//! - what acts across shards and clients, each taking the shard: [`multi`]
//!   (atomic multi-shard commands), [`tx`], [`blocking`], [`tracking`],
//!   [`pubsub`], [`repl`] and [`replica`], [`persist`], [`aof`], [`script`],
//!   [`obs`];
//! - [`conn`] (one client connection: decode, route, reply in order) and the
//!   commands it runs itself: [`admin`], [`info`], [`acl`], [`migrate`], …;
//! - [`server`]: executors, listeners, cron, signals.
//!
//! The modules above the shard call one another (serving a blocked client
//! runs a command; a command makes keys ready), so they share one import
//! cycle over `&Shard`; the layers below the shard do not call up.

pub mod acl;
pub mod admin;
pub mod alloc;
pub mod aof;
pub mod blocking;
pub mod client;
pub mod conn;
pub mod errors;
pub mod failover;
pub mod info;
pub mod limits;
pub mod logging;
pub mod lolwut;
pub mod memory;
pub mod memstats;
pub mod metrics;
pub mod migrate;
pub mod module;
pub mod multi;
pub mod net;
pub mod obs;
pub mod persist;
pub mod pubsub;
pub mod repl;
pub mod replica;
pub mod route;
pub mod script;
pub mod server;
pub mod shard;
pub mod shared;
pub mod store;
pub mod tracking;
pub mod tx;
pub mod watch;
pub mod writelog;

use clap::Parser;

#[global_allocator]
static GLOBAL: alloc::CountingMimalloc = alloc::CountingMimalloc;

/// The Redis version shardis is compatible with, reported where clients look.
pub const REDIS_VERSION: &str = "7.0.15";

/// Command line: `shardis-server [config-file] [--directive value ...]`.
#[derive(Parser, Debug)]
#[command(
    name = "shardis-server",
    version,
    about = "A Redis 7.0-compatible in-memory server, thread-per-core",
    override_usage = "shardis-server [/path/to/shardis.conf] [--directive value ...]\n       shardis-server --port 7777 --replicaof 127.0.0.1 8888\n       shardis-server /etc/shardis/6379.conf --loglevel verbose"
)]
struct Cli {
    /// A redis.conf-style configuration file.
    config_file: Option<String>,
    /// Configuration directives, as `--name value ...` (same names as the file).
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    directives: Vec<String>,
}

fn main() {
    alloc::tune();
    // A first argument starting with `--` is a directive, not the config file.
    let raw: Vec<String> = std::env::args().collect();
    let (file, directives) = if raw.len() > 1 && !raw[1].starts_with("--") && raw[1] != "-" {
        let cli = Cli::parse();
        (cli.config_file, cli.directives)
    } else if raw.len() > 1
        && (raw[1] == "--help" || raw[1] == "--version" || raw[1] == "-h" || raw[1] == "-V")
    {
        Cli::parse();
        return;
    } else {
        (None, raw[1..].to_vec())
    };
    // Absolute, as Redis keeps it: `dir` changes the working directory, and
    // CONFIG REWRITE must still find the file.
    let file = file.map(|f| {
        std::path::absolute(&f)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(f)
    });
    let mut config = shardis_config::Config::default();
    let text = match &file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("Fatal error, can't open config file '{path}': {e}");
                std::process::exit(1);
            }
        },
        None => None,
    };
    let source = file.as_deref().zip(text.as_deref());
    // Like redis-server: chdir into `dir` as its line is read; CONFIG GET dir is absolute.
    let mut enter_dir = |dir: &str| -> Result<String, String> {
        std::env::set_current_dir(dir).map_err(|e| shared::strerror(&e))?;
        std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| shared::strerror(&e))
    };
    if let Err(e) = config.apply_file_and_args_entering_dir(source, &directives, &mut enter_dir) {
        eprint!("{}", e.redis_message());
        std::process::exit(1);
    }
    if config.dir == "." {
        // No `dir` line: the working directory, spelt out as Redis reports it.
        if let Ok(cwd) = std::env::current_dir() {
            config.dir = cwd.to_string_lossy().into_owned();
        }
    }
    let level = logging::Level::parse(config.loglevel.as_str()).unwrap_or(logging::Level::Notice);
    if let Err(e) = logging::init(&config.logfile, level) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    server::block_signals();
    // A placement that cannot be honoured is reported by `server::run`.
    let threads = server::executor_cpus(&config, &server::affinity_cpus()).map_or(0, |(t, _)| t);
    log!(Warning, "oO0OoO0OoO0Oo shardis is starting oO0OoO0OoO0Oo");
    log!(
        Warning,
        "shardis version={}, redis_version={}, bits=64, pid={}, threads={}, just started",
        env!("CARGO_PKG_VERSION"),
        REDIS_VERSION,
        std::process::id(),
        threads
    );
    if file.is_some() {
        log!(Warning, "Configuration loaded");
    } else {
        log!(
            Warning,
            "Warning: no config file specified, using the default config. In order to specify a config file use shardis-server /path/to/shardis.conf"
        );
    }
    let pidfile = config.pidfile.clone();
    if let Some(p) = &pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            log!(Warning, "Failed to write PID file: {}", e);
        }
    }
    let code = server::run(config, file);
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    std::process::exit(code);
}
