//! Workloads. Each scenario is a module that turns its flags into one or more
//! [`Workload`](crate::engine::Workload) runs and returns report rows; the engine
//! and the output formats are shared.
//!
//! - [`suite`]: the redis-benchmark test list (`-t set,get,...`).
//! - [`mixed`]: GET/SET mix over a uniform or Zipfian keyspace.
//! - [`fanout`]: replication propagation latency and offset lag under writes.
//! - [`fullsync`]: full-sync time and master peak memory under writes.
//! - [`link`]: the blocking client, write load and /proc readings those two share.

pub mod fanout;
pub mod fullsync;
pub mod link;
pub mod mixed;
pub mod suite;

use std::io;

use crate::cli::Common;
use crate::engine::{self, LoadConfig, Workload};
use crate::report::{Progress, Row};

/// Builds the engine configuration from the shared flags, with `requests`
/// overriding `-n` (for preload phases).
pub fn load_config(common: &Common, requests: u64, pipeline: u32) -> LoadConfig {
    LoadConfig {
        host: common.host.clone(),
        port: common.port,
        clients: common.clients as usize,
        requests,
        pipeline: pipeline as usize,
        threads: common.threads as usize,
    }
}

/// Runs one workload with live progress and returns a row per workload class,
/// titled `<title>` for a single class or `<title> <class>` otherwise.
pub fn run_rows(
    cfg: &LoadConfig,
    workload: &dyn Workload,
    title: &str,
    progress: &mut Progress,
) -> io::Result<Vec<Row>> {
    let classes = workload.classes();
    let result = engine::run(cfg, workload, |s, t| progress.tick(title, s, t))?;
    progress.clear();
    if let Some(e) = &result.first_error {
        eprintln!("{title}: {} error replies; first: {e}", result.errors);
    }
    let single = classes.len() == 1;
    let mut rows: Vec<Row> = classes
        .into_iter()
        .zip(&result.hists)
        .map(|(class, hist)| Row {
            title: if single {
                title.to_string()
            } else {
                format!("{title} {class}")
            },
            errors: if single { result.errors } else { 0 },
            hist: hist.clone(),
            elapsed: result.elapsed,
        })
        .collect();
    if !single {
        rows.push(Row {
            title: format!("{title} all"),
            hist: result.total(),
            elapsed: result.elapsed,
            errors: result.errors,
        });
    }
    Ok(rows)
}
