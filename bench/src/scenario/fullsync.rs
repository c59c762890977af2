//! `fullsync`: how long a replica takes to come online by full sync from a
//! master holding `--keys` keys while SETs continue, and the master's peak
//! memory meanwhile.
//!
//! Steps: preload keys `key:000000000000..` with one SET each (skipped with
//! `--keys 0`, or when the master already holds that many keys); start the
//! write load; send `REPLICAOF <master> <port>` to the already running replica
//! at `--replica-port`; poll its INFO replication until `master_link_status:up`
//! and `master_sync_in_progress:0`. Memory of the master's process tree
//! (`--master-pid` and its descendants: Redis forks a child for the RDB) is
//! sampled every `--sample-ms` from /proc: summed VmRSS, which counts pages a
//! fork child shares with its parent twice, and summed PSS, which does not.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use super::link::{info_field, mib, tree_mem, Client, TreeMem, WriteLoad, WriteSpec};
use crate::cli::Common;
use crate::report::Progress;

/// Flags of the `fullsync` scenario.
#[derive(Args, Debug, Clone)]
pub struct FullsyncArgs {
    /// Listening port of the server to turn into a replica (`-h` host).
    #[arg(long)]
    pub replica_port: u16,

    /// Pid of the master (memory of it and its children is sampled).
    #[arg(long)]
    pub master_pid: u32,

    /// Keys to hold on the master before the sync (preloaded if missing).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,

    /// SETs per second during the sync; 0 writes as fast as the master answers.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,

    /// Writer connections (each pipelines `-P` SETs).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub writers: u32,

    /// Milliseconds between memory samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_ms: u64,

    /// Seconds to wait for the replica to come online.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
}

/// Runs the scenario and prints one result (a table, or CSV with `--csv`).
pub fn run(common: &Common, args: &FullsyncArgs, progress: &mut Progress) -> io::Result<()> {
    let host = common.host.clone();
    let mut master = Client::connect(&host, common.port)?;
    let mut replica = Client::connect(&host, args.replica_port)?;

    let have = match master.cmd(&[b"DBSIZE"])? {
        super::link::Reply::Int(n) => n.max(0) as u64,
        other => return Err(io::Error::other(format!("DBSIZE: {other:?}"))),
    };
    if args.keys > 0 && have < args.keys {
        let cfg = super::load_config(common, args.keys, common.pipeline.max(64));
        let prefill = super::mixed::Prefill::new(common.datasize);
        let rows = super::run_rows(&cfg, &prefill, "PRELOAD", progress)?;
        eprintln!(
            "preloaded {} keys in {:.2} s",
            args.keys,
            rows[0].elapsed.as_secs_f64()
        );
    }
    let keys_before = match master.cmd(&[b"DBSIZE"])? {
        super::link::Reply::Int(n) => n,
        _ => -1,
    };
    let before = tree_mem(args.master_pid, true)?;

    let load = WriteLoad::start(&WriteSpec {
        host: host.clone(),
        port: common.port,
        writers: args.writers as usize,
        pipeline: common.pipeline as usize,
        rate: args.rate,
        keys: args.keys.max(1),
        datasize: common.datasize,
    })?;
    // A moment of steady writes first, so the sync starts under load.
    std::thread::sleep(Duration::from_millis(200));
    let writes_at_start = load.done();

    let done = AtomicBool::new(false);
    let timeout = Duration::from_secs_f64(args.timeout);
    let (sync, peak) = std::thread::scope(|s| {
        let sampler = s.spawn(|| -> io::Result<(TreeMem, TreeMem)> {
            // Peak RSS and peak PSS, each with the process count at that sample.
            let (mut rss_peak, mut pss_peak) = (TreeMem::default(), TreeMem::default());
            let every = Duration::from_millis(args.sample_ms);
            let mut i = 0u64;
            while !done.load(Ordering::Acquire) {
                // PSS walks the page tables; read it every 5th sample only.
                let m = tree_mem(args.master_pid, i.is_multiple_of(5))?;
                if m.rss > rss_peak.rss {
                    rss_peak = m;
                }
                if m.pss > pss_peak.pss {
                    pss_peak = m;
                }
                i += 1;
                std::thread::sleep(every);
            }
            Ok((rss_peak, pss_peak))
        });
        let sync = (|| -> io::Result<Duration> {
            let port = common.port.to_string();
            let t0 = Instant::now();
            if let super::link::Reply::Error(e) =
                replica.cmd(&[b"REPLICAOF", host.as_bytes(), port.as_bytes()])?
            {
                return Err(io::Error::other(format!("REPLICAOF: {e}")));
            }
            loop {
                let info = replica.info("replication")?;
                if info_field(&info, "master_link_status") == Some("up")
                    && info_field(&info, "master_sync_in_progress") != Some("1")
                {
                    return Ok(t0.elapsed());
                }
                if t0.elapsed() > timeout {
                    return Err(io::Error::other(format!(
                        "replica not online after {:.0} s",
                        timeout.as_secs_f64()
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })();
        done.store(true, Ordering::Release);
        let peak = sampler
            .join()
            .map_err(|_| io::Error::other("sampler thread panicked"))
            .and_then(|r| r);
        (sync, peak)
    });
    let writes_at_sync = load.done();
    let totals = load.stop()?;
    let sync = sync?;
    let (rss_peak, pss_peak) = peak?;
    let during = (writes_at_sync - writes_at_start) as f64 / sync.as_secs_f64();

    if common.csv {
        println!("\"keys\",\"sync_s\",\"writes_per_sec_during\",\"rss_before_mib\",\"rss_peak_mib\",\"pss_before_mib\",\"pss_peak_mib\",\"procs_at_peak\"");
        println!(
            "\"{}\",\"{:.3}\",\"{:.0}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\"",
            keys_before,
            sync.as_secs_f64(),
            during,
            mib(before.rss),
            mib(rss_peak.rss),
            mib(before.pss),
            mib(pss_peak.pss),
            rss_peak.procs
        );
    } else {
        println!(
            "FULLSYNC: replica :{} online {:.3} s after REPLICAOF; master held {} keys; {:.0} SET/s during the sync ({} SETs, {} errors in all)",
            args.replica_port,
            sync.as_secs_f64(),
            keys_before,
            during,
            totals.done,
            totals.errors
        );
        println!();
        println!(
            "| master pid {} tree | before MiB | peak MiB | processes at peak |",
            args.master_pid
        );
        println!("|---|---:|---:|---:|");
        println!(
            "| RSS (sum of VmRSS) | {} | {} | {} |",
            mib(before.rss),
            mib(rss_peak.rss),
            rss_peak.procs
        );
        println!(
            "| PSS (sum of Pss) | {} | {} | {} |",
            mib(before.pss),
            mib(pss_peak.pss),
            pss_peak.procs
        );
    }
    Ok(())
}
