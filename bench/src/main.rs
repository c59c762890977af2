//! shardis-benchmark: a RESP load generator with redis-benchmark's everyday
//! flags, used to measure shardis-server against redis-server in the same run.
//!
//! Where it sits: outside the server entirely. It speaks RESP over TCP to any
//! Redis-compatible server; `bench/server-core.sh` drives the reference
//! redis-benchmark, this tool adds scenarios that redis-benchmark lacks.
//!
//! # Layout
//! - [`cli`]: flags (redis-benchmark's, plus scenario subcommands).
//! - [`engine`]: the multi-threaded mio event loop that sends and times requests.
//! - [`keys`]: request templates, `__rand_int__` keys, payload bytes.
//! - [`zipf`]: uniform and Zipfian key distributions.
//! - [`scenario`]: workloads, one module each (`suite`, `mixed`, `fanout`, `fullsync`).
//! - [`report`]: progress, per-test output, CSV and the summary table.
//!
//! Replies are read with `shardis_base::reply` (the allocation-free `scan`) and
//! requests encoded with `shardis_base::encode_command`, as shardis-cli does.

mod cli;
mod engine;
mod keys;
mod report;
mod scenario;
mod zipf;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Scenario};
use report::{Progress, Row, Style};
use scenario::suite;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardis-benchmark: {e}");
            ExitCode::FAILURE
        }
    }
}

fn no_tests(cli: &Cli) -> io::Result<()> {
    if cli.tests.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "-t selects suite tests; it does not apply to a scenario",
        ));
    }
    Ok(())
}

fn run(cli: &Cli) -> io::Result<()> {
    let common = &cli.common;
    let style = common.style();
    let mut progress = Progress::new(style);
    // The replication scenarios print their own tables and CSV.
    if style == Style::Csv
        && !matches!(
            cli.scenario,
            Some(Scenario::Fanout(_)) | Some(Scenario::Fullsync(_))
        )
    {
        println!("{}", report::CSV_HEADER);
    }
    let mut all: Vec<Row> = Vec::new();
    let mut emit = |rows: Vec<Row>| {
        for r in &rows {
            match style {
                Style::Csv => println!("{}", report::csv_line(r)),
                Style::Quiet => println!("{}", report::quiet_line(r)),
                Style::Full => println!(
                    "{}",
                    report::full_block(
                        r,
                        common.clients as usize,
                        common.datasize,
                        common.threads as usize
                    )
                ),
            }
        }
        all.extend(rows);
    };

    match &cli.scenario {
        None => {
            let tests = suite::select(cli.tests.as_deref())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let data = keys::benchmark_data(common.datasize);
            let cfg = scenario::load_config(common, common.requests, common.pipeline);
            for test in tests {
                let workload = suite::SuiteWorkload {
                    template: suite::template(test, &data, common.keyspace.is_some()),
                    keyspace: common.keyspace,
                    seed: common.seed,
                };
                emit(scenario::run_rows(
                    &cfg,
                    &workload,
                    test.title,
                    &mut progress,
                )?);
            }
        }
        Some(Scenario::Mixed(args)) => {
            no_tests(cli)?;
            emit(scenario::mixed::run(common, args, &mut progress)?);
        }
        // The replication scenarios print their own tables.
        Some(Scenario::Fanout(args)) => {
            no_tests(cli)?;
            return scenario::fanout::run(common, args);
        }
        Some(Scenario::Fullsync(args)) => {
            no_tests(cli)?;
            return scenario::fullsync::run(common, args, &mut progress);
        }
    }
    if style == Style::Full {
        print!("{}", report::summary_table(&all));
    }
    Ok(())
}
