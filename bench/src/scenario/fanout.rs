//! `fanout`: a SET load on a master (flat out, or `--rate` per second) while
//! measuring, for each replica, how long a write takes to become visible there
//! and how far its acknowledged offset trails the master's.
//!
//! Propagation latency: a marker thread writes `shardis-bench:marker:<seq>`
//! (value: nanoseconds since the run began) on the master every
//! `--marker-interval-ms`; a poller per replica GETs marker `seq`, then
//! `seq + 1`, ... and records "first seen on the replica" minus "just before
//! the master was sent the SET". The replication stream is ordered, so each
//! marker is observed as soon as one poll after it lands; the resolution is
//! the poll interval plus one round trip.
//!
//! Offset lag: `INFO replication` on the master every `--info-interval-ms`,
//! `master_repl_offset` minus the replica's `offset=`. Replicas acknowledge
//! once a second (REPLCONF ACK), so this figure includes up to a second of
//! writes even for a replica that is fully caught up.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;

use super::link::{parse_master_info, Client, Reply, WriteLoad, WriteSpec};
use crate::cli::Common;
use crate::engine::new_histogram;

/// Flags of the `fanout` scenario.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Listening port of a replica of the master (`-h` host); repeat or comma-separate.
    #[arg(long = "replica-port", required = true, value_delimiter = ',')]
    pub replica_ports: Vec<u16>,

    /// Seconds of write load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Total SETs per second on the master; 0 writes as fast as it answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,

    /// Writer connections (each pipelines `-P` SETs).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub writers: u32,

    /// SETs go to random keys below this many (`key:<12 digits>`).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,

    /// Milliseconds between markers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub marker_interval_ms: u64,

    /// Microseconds a poller sleeps after a GET that did not find its marker.
    #[arg(long, default_value_t = 100)]
    pub poll_us: u64,

    /// Milliseconds between INFO replication samples on the master.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub info_interval_ms: u64,
}

const MARKER_PREFIX: &str = "shardis-bench:marker:";

/// What one replica's poller saw.
struct PollResult {
    port: u16,
    latency: Histogram<u64>,
    seen: u64,
}

/// Per-replica offset lag in bytes.
struct LagResult {
    hists: Vec<Histogram<u64>>,
    samples: u64,
    not_listed: u64,
}

/// Waits until the master lists every replica port as `state=online` and
/// each has acknowledged the offset the master had when they all were online,
/// so the run measures streaming, not a sync or an earlier backlog draining.
fn wait_online(master: &mut Client, ports: &[u16], timeout: Duration) -> io::Result<()> {
    let start = Instant::now();
    let mut target: Option<u64> = None;
    loop {
        let (offset, lines) = parse_master_info(&master.info("replication")?);
        let line = |p: &u16| lines.iter().find(|l| l.port == *p && l.state == "online");
        match target {
            None if ports.iter().all(|p| line(p).is_some()) => target = offset,
            Some(t) if ports.iter().all(|p| line(p).is_some_and(|l| l.offset >= t)) => {
                return Ok(())
            }
            _ => {}
        }
        if start.elapsed() > timeout {
            return Err(io::Error::other(format!(
                "replicas {ports:?} not online and caught up at the master after {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn join<T>(r: std::thread::Result<io::Result<T>>) -> io::Result<T> {
    r.map_err(|_| io::Error::other("scenario thread panicked"))?
}

/// Runs the scenario and prints its table (or CSV with `--csv`).
pub fn run(common: &Common, args: &FanoutArgs) -> io::Result<()> {
    let host = common.host.clone();
    let mut master = Client::connect(&host, common.port)?;
    let mut info_client = Client::connect(&host, common.port)?;
    let mut pollers = Vec::new();
    for &p in &args.replica_ports {
        let mut c = Client::connect(&host, p)?;
        let role = c.info("replication")?;
        if super::link::info_field(&role, "role") != Some("slave") {
            return Err(io::Error::other(format!(
                "port {p} is not a replica (INFO replication role is not slave)"
            )));
        }
        pollers.push((p, c));
    }

    wait_online(
        &mut info_client,
        &args.replica_ports,
        Duration::from_secs(60),
    )?;

    let base = Instant::now();
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let deadline = base + duration;
    let sent = Arc::new(AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));

    let load = WriteLoad::start(&WriteSpec {
        host: host.clone(),
        port: common.port,
        writers: args.writers as usize,
        pipeline: common.pipeline as usize,
        rate: args.rate,
        keys: args.keys,
        datasize: common.datasize,
    })?;

    let (marker_res, poll_res, lag_res) = std::thread::scope(|s| {
        let marker = {
            let sent = &sent;
            let writing = &writing;
            let every = Duration::from_millis(args.marker_interval_ms);
            s.spawn(move || -> io::Result<Histogram<u64>> {
                let mut ack = new_histogram();
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    let seq = sent.load(Ordering::Relaxed);
                    let t = base.elapsed().as_nanos() as u64;
                    let key = format!("{MARKER_PREFIX}{seq}");
                    let v = t.to_string();
                    match master.cmd(&[b"SET", key.as_bytes(), v.as_bytes()])? {
                        Reply::Error(e) => {
                            return Err(io::Error::other(format!("marker SET: {e}")))
                        }
                        _ => ack
                            .record((base.elapsed().as_nanos() as u64 - t).max(1))
                            .ok(),
                    };
                    sent.fetch_add(1, Ordering::Release);
                    next += every;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                writing.store(false, Ordering::Release);
                Ok(ack)
            })
        };
        let polls: Vec<_> = pollers
            .into_iter()
            .map(|(port, mut c)| {
                let sent = &sent;
                let writing = &writing;
                let poll = Duration::from_micros(args.poll_us);
                s.spawn(move || -> io::Result<PollResult> {
                    let mut res = PollResult {
                        port,
                        latency: new_histogram(),
                        seen: 0,
                    };
                    let mut seq = 0u64;
                    let mut drain_until: Option<Instant> = None;
                    loop {
                        let total = sent.load(Ordering::Acquire);
                        if seq >= total {
                            if !writing.load(Ordering::Acquire) {
                                break;
                            }
                            std::thread::sleep(poll);
                            continue;
                        }
                        if !writing.load(Ordering::Acquire) {
                            // Give stragglers 5 s after the load ends.
                            let until =
                                *drain_until.get_or_insert(Instant::now() + Duration::from_secs(5));
                            if Instant::now() > until {
                                break;
                            }
                        }
                        let key = format!("{MARKER_PREFIX}{seq}");
                        match c.cmd(&[b"GET", key.as_bytes()])? {
                            Reply::Bytes(v) => {
                                let now = base.elapsed().as_nanos() as u64;
                                let t: u64 = std::str::from_utf8(&v)
                                    .ok()
                                    .and_then(|s| s.parse().ok())
                                    .ok_or_else(|| {
                                        io::Error::other("marker value is not a number")
                                    })?;
                                res.latency.record(now.saturating_sub(t).max(1)).ok();
                                res.seen += 1;
                                seq += 1;
                            }
                            Reply::Nil => std::thread::sleep(poll),
                            other => {
                                return Err(io::Error::other(format!(
                                    "GET on replica {port}: {other:?}"
                                )))
                            }
                        }
                    }
                    Ok(res)
                })
            })
            .collect();
        let lag = {
            let writing = &writing;
            let ports = &args.replica_ports;
            let every = Duration::from_millis(args.info_interval_ms);
            s.spawn(move || -> io::Result<LagResult> {
                let mut res = LagResult {
                    hists: ports
                        .iter()
                        .map(|_| Histogram::new(3).expect("sigfig 3"))
                        .collect(),
                    samples: 0,
                    not_listed: 0,
                };
                while writing.load(Ordering::Acquire) {
                    let info = info_client.info("replication")?;
                    let (offset, lines) = parse_master_info(&info);
                    let offset = offset.ok_or_else(|| {
                        io::Error::other("master INFO replication has no master_repl_offset")
                    })?;
                    res.samples += 1;
                    for (h, port) in res.hists.iter_mut().zip(ports) {
                        match lines.iter().find(|l| l.port == *port) {
                            Some(l) => h.record(offset.saturating_sub(l.offset)).ok(),
                            None => {
                                res.not_listed += 1;
                                None
                            }
                        };
                    }
                    std::thread::sleep(every);
                }
                Ok(res)
            })
        };
        let m = join(marker.join());
        let p: io::Result<Vec<PollResult>> = polls.into_iter().map(|h| join(h.join())).collect();
        let l = join(lag.join());
        (m, p, l)
    });
    let totals = load.stop()?;
    let ack = marker_res?;
    let polls = poll_res?;
    let lag = lag_res?;
    let markers = sent.load(Ordering::Acquire);
    // Clean up the markers once the pollers are done (deletes replicate too).
    // One key per DEL: a multi-key DEL is cross-slot on a cluster-style server.
    let mut c = Client::connect(&host, common.port)?;
    for seq in 0..markers {
        c.cmd(&[b"DEL", format!("{MARKER_PREFIX}{seq}").as_bytes()])?;
    }

    let wps = totals.done as f64 / totals.elapsed.as_secs_f64();
    let ms = |ns: u64| ns as f64 / 1e6;
    if common.csv {
        println!("\"replica\",\"writes_per_sec\",\"markers\",\"seen\",\"p50_ms\",\"p90_ms\",\"p99_ms\",\"p999_ms\",\"max_ms\",\"lag_p50_bytes\",\"lag_p99_bytes\",\"lag_max_bytes\"");
    } else {
        println!(
            "FANOUT: {} SETs in {:.2} s ({:.0} SET/s{}, {} errors), {} markers every {} ms; master ack of a marker p50 {:.3} ms, p99 {:.3} ms",
            totals.done,
            totals.elapsed.as_secs_f64(),
            wps,
            if args.rate > 0 { format!(", target {}", args.rate) } else { ", flat out".into() },
            totals.errors,
            markers,
            args.marker_interval_ms,
            ms(ack.value_at_quantile(0.5)),
            ms(ack.value_at_quantile(0.99)),
        );
        println!("propagation latency = marker first seen on the replica - marker SET sent to the master");
        println!("offset lag = master_repl_offset - replica's acked offset ({} INFO samples; acks come about once a second)", lag.samples);
        println!();
        println!(
            "| replica | markers seen | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | lag p50 bytes | lag p99 bytes | lag max bytes |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for (p, l) in polls.iter().zip(&lag.hists) {
        let h = &p.latency;
        let (lp50, lp99, lmax) = if l.is_empty() {
            (0, 0, 0)
        } else {
            (l.value_at_quantile(0.5), l.value_at_quantile(0.99), l.max())
        };
        if common.csv {
            println!(
                "\"{}\",\"{:.0}\",\"{}\",\"{}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{}\",\"{}\",\"{}\"",
                p.port, wps, markers, p.seen,
                ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.9)), ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)), ms(h.max()), lp50, lp99, lmax
            );
        } else {
            println!(
                "| {} | {}/{} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} |",
                p.port,
                p.seen,
                markers,
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.9)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
                lp50,
                lp99,
                lmax
            );
        }
    }
    if lag.not_listed > 0 {
        eprintln!(
            "fanout: {} INFO samples did not list a replica (not attached to this master?)",
            lag.not_listed
        );
    }
    if polls.iter().any(|p| p.seen < markers) {
        eprintln!("fanout: some markers never reached a replica within 5 s of the end");
    }
    Ok(())
}
