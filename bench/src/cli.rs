//! Command-line flags. The top level mirrors redis-benchmark's everyday flags
//! (including `-h` for the host, so help is `--help` only); scenarios are
//! subcommands that share the connection flags.

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::report::Style;
use crate::scenario::fanout::FanoutArgs;
use crate::scenario::fullsync::FullsyncArgs;
use crate::scenario::mixed::MixedArgs;

/// shardis-benchmark: a RESP load generator with redis-benchmark's flags.
#[derive(Parser, Debug)]
#[command(name = "shardis-benchmark", version, disable_help_flag = true)]
pub struct Cli {
    /// Flags shared by the default suite and every scenario.
    #[command(flatten)]
    pub common: Common,

    /// Only run the comma-separated list of tests (e.g. `-t set,get`). The
    /// test names are the same as the ones produced as output.
    #[arg(short = 't', value_name = "tests")]
    pub tests: Option<String>,

    /// A scenario to run instead of the redis-benchmark test suite.
    #[command(subcommand)]
    pub scenario: Option<Scenario>,

    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
}

/// Connection and load flags, valid before or after a scenario name.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server hostname.
    #[arg(short = 'h', default_value = "127.0.0.1", global = true)]
    pub host: String,

    /// Server port.
    #[arg(short = 'p', default_value_t = 6379, global = true)]
    pub port: u16,

    /// Number of parallel connections.
    #[arg(short = 'c', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub clients: u32,

    /// Total number of requests.
    #[arg(short = 'n', default_value_t = 100_000, global = true)]
    pub requests: u64,

    /// Data size of SET/GET value in bytes.
    #[arg(short = 'd', default_value_t = 3, global = true)]
    pub datasize: usize,

    /// Use random keys for SET/GET/INCR, random values for SADD, random members
    /// and scores for ZADD: `__rand_int__` becomes a number in [0, keyspacelen).
    #[arg(short = 'r', value_name = "keyspacelen", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub keyspace: Option<u64>,

    /// Pipeline <numreq> requests.
    #[arg(short = 'P', default_value_t = 1, value_name = "numreq", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub pipeline: u32,

    /// Number of event-loop threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=500), global = true)]
    pub threads: u32,

    /// Quiet. Just show query/sec values.
    #[arg(short = 'q', global = true)]
    pub quiet: bool,

    /// Output in CSV format.
    #[arg(long, global = true)]
    pub csv: bool,

    /// Seed for the random generators (key choice, mixed-scenario choices).
    #[arg(long, default_value_t = 0x5eed, global = true)]
    pub seed: u64,
}

impl Common {
    /// The output style these flags ask for (`--csv` wins over `-q`).
    pub fn style(&self) -> Style {
        if self.csv {
            Style::Csv
        } else if self.quiet {
            Style::Quiet
        } else {
            Style::Full
        }
    }
}

/// Scenarios beyond the redis-benchmark suite.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Mixed GET/SET traffic over a fixed keyspace, uniform or Zipfian.
    #[command(disable_help_flag = true)]
    Mixed(MixedArgs),
    /// Writes on a master; per-replica propagation latency and offset lag.
    #[command(disable_help_flag = true)]
    Fanout(FanoutArgs),
    /// Time for a replica to full-sync under writes; master peak memory.
    #[command(disable_help_flag = true)]
    Fullsync(FullsyncArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::mixed::Dist;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shardis-benchmark").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_redis_benchmark() {
        let c = parse(&[]).unwrap();
        let m = &c.common;
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 6379));
        assert_eq!((m.clients, m.requests, m.datasize), (50, 100_000, 3));
        assert_eq!((m.pipeline, m.threads, m.keyspace), (1, 1, None));
        assert_eq!(m.style(), Style::Full);
        assert!(c.tests.is_none() && c.scenario.is_none());
    }

    #[test]
    fn redis_benchmark_flags() {
        let c = parse(&[
            "-h",
            "10.0.0.1",
            "-p",
            "7000",
            "-c",
            "8",
            "-n",
            "500",
            "-d",
            "64",
            "-r",
            "1000",
            "-P",
            "16",
            "-t",
            "set,get",
            "--threads",
            "2",
            "-q",
        ])
        .unwrap();
        let m = &c.common;
        assert_eq!((m.host.as_str(), m.port, m.clients), ("10.0.0.1", 7000, 8));
        assert_eq!((m.requests, m.datasize, m.keyspace), (500, 64, Some(1000)));
        assert_eq!((m.pipeline, m.threads), (16, 2));
        assert_eq!(c.tests.as_deref(), Some("set,get"));
        assert_eq!(m.style(), Style::Quiet);
        let c = parse(&["--csv", "-q"]).unwrap();
        assert_eq!(c.common.style(), Style::Csv);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse(&["-c", "0"]).is_err());
        assert!(parse(&["-P", "0"]).is_err());
        assert!(parse(&["-r", "0"]).is_err());
        assert!(parse(&["-p", "70000"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
    }

    #[test]
    fn mixed_scenario_with_shared_flags_anywhere() {
        let c = parse(&[
            "-p",
            "7001",
            "mixed",
            "--read-ratio",
            "0.5",
            "--dist",
            "uniform",
            "--keys",
            "10",
            "-c",
            "4",
        ])
        .unwrap();
        assert_eq!((c.common.port, c.common.clients), (7001, 4));
        let Some(Scenario::Mixed(m)) = c.scenario else {
            panic!("expected mixed");
        };
        assert_eq!(m.read_ratio, 0.5);
        assert_eq!(m.dist, Dist::Uniform);
        assert_eq!(m.keys, 10);

        let Some(Scenario::Mixed(m)) = parse(&["mixed"]).unwrap().scenario else {
            panic!("expected mixed");
        };
        assert_eq!((m.read_ratio, m.dist, m.keys), (0.9, Dist::Zipf, 100_000));
        assert!(parse(&["mixed", "--read-ratio", "1.5"]).is_err());
        assert!(parse(&["mixed", "--dist", "pareto"]).is_err());
        assert!(parse(&["mixed", "--keys", "0"]).is_err());
    }

    #[test]
    fn replication_scenarios() {
        let c = parse(&[
            "-p",
            "7000",
            "fanout",
            "--replica-port",
            "7001,7002",
            "--rate",
            "5000",
            "-P",
            "8",
        ])
        .unwrap();
        let Some(Scenario::Fanout(f)) = c.scenario else {
            panic!("expected fanout");
        };
        assert_eq!(f.replica_ports, [7001, 7002]);
        assert_eq!((f.rate, f.writers, c.common.pipeline), (5000, 4, 8));
        let c = parse(&["fanout", "--replica-port", "1", "--replica-port", "2"]).unwrap();
        let Some(Scenario::Fanout(f)) = c.scenario else {
            panic!("expected fanout");
        };
        assert_eq!(f.replica_ports, [1, 2]);
        assert!(parse(&["fanout"]).is_err(), "a replica port is required");

        let c = parse(&[
            "fullsync",
            "--replica-port",
            "7001",
            "--master-pid",
            "42",
            "--keys",
            "100000",
        ])
        .unwrap();
        let Some(Scenario::Fullsync(f)) = c.scenario else {
            panic!("expected fullsync");
        };
        assert_eq!(
            (f.replica_port, f.master_pid, f.keys, f.rate),
            (7001, 42, 100_000, 10_000)
        );
        assert!(parse(&["fullsync", "--replica-port", "7001"]).is_err());
    }

    #[test]
    fn dash_h_is_the_host_not_help() {
        let c = parse(&["mixed", "-h", "localhost"]).unwrap();
        assert_eq!(c.common.host, "localhost");
        assert_eq!(
            parse(&["--help"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
    }
}
