//! Output: live progress, redis-benchmark's per-test formats (full, `-q`,
//! `--csv`) and the closing summary table.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::engine::Shared;
use std::sync::atomic::Ordering;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A block per test and a summary table at the end.
    Full,
    /// One line per test (`-q`).
    Quiet,
    /// redis-benchmark's CSV (`--csv`).
    Csv,
}

/// One reported line of results.
pub struct Row {
    /// Test title, e.g. `SET` or `MSET (10 keys)`.
    pub title: String,
    /// Latencies in nanoseconds.
    pub hist: Histogram<u64>,
    /// Wall time of the run the row belongs to.
    pub elapsed: Duration,
    /// Error replies among the requests.
    pub errors: u64,
}

impl Row {
    /// Completed requests per second.
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.hist.len() as f64 / secs
        } else {
            0.0
        }
    }

    fn ms_at(&self, q: f64) -> f64 {
        ms(self.hist.value_at_quantile(q))
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The CSV header line, byte for byte redis-benchmark's.
pub const CSV_HEADER: &str =
    "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"";

/// One CSV line in redis-benchmark's format.
pub fn csv_line(r: &Row) -> String {
    format!(
        "\"{}\",\"{:.2}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\"",
        r.title,
        r.rps(),
        r.hist.mean() / 1e6,
        ms(r.hist.min()),
        r.ms_at(0.50),
        r.ms_at(0.95),
        r.ms_at(0.99),
        ms(r.hist.max()),
    )
}

/// The `-q` line: `SET: 123.45 requests per second, p50=0.295 msec`.
pub fn quiet_line(r: &Row) -> String {
    format!(
        "{}: {:.2} requests per second, p50={:.3} msec",
        r.title,
        r.rps(),
        r.ms_at(0.50)
    )
}

/// The full per-test block (redis-benchmark's header and summary, without its
/// long percentile listing).
pub fn full_block(r: &Row, clients: usize, datasize: usize, threads: usize) -> String {
    let mut s = format!("====== {} ======\n", r.title);
    s += &format!(
        "  {} requests completed in {:.2} seconds\n",
        r.hist.len(),
        r.elapsed.as_secs_f64()
    );
    s += &format!("  {clients} parallel clients\n  {datasize} bytes payload\n");
    s += &format!("  threads: {threads}\n");
    if r.errors > 0 {
        s += &format!("  error replies: {}\n", r.errors);
    }
    s += "\nSummary:\n";
    s += &format!("  throughput summary: {:.2} requests per second\n", r.rps());
    s += "  latency summary (msec):\n";
    s += &format!(
        "    {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "avg", "min", "p50", "p95", "p99", "p99.9", "max"
    );
    s += &format!(
        "    {:9.3} {:9.3} {:9.3} {:9.3} {:9.3} {:9.3} {:9.3}\n",
        r.hist.mean() / 1e6,
        ms(r.hist.min()),
        r.ms_at(0.50),
        r.ms_at(0.95),
        r.ms_at(0.99),
        r.ms_at(0.999),
        ms(r.hist.max())
    );
    s
}

/// The closing table over all tests of the invocation.
pub fn summary_table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.title.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "{:<w$}  {:>12}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>6}\n",
        "test", "rps", "avg_ms", "p50_ms", "p99_ms", "p99.9_ms", "max_ms", "errors"
    );
    for r in rows {
        s += &format!(
            "{:<w$}  {:>12.2}  {:>8.3}  {:>8.3}  {:>8.3}  {:>8.3}  {:>8.3}  {:>6}\n",
            r.title,
            r.rps(),
            r.hist.mean() / 1e6,
            r.ms_at(0.50),
            r.ms_at(0.99),
            r.ms_at(0.999),
            ms(r.hist.max()),
            r.errors
        );
    }
    s
}

/// Prints live progress to stderr: a self-overwriting line on a terminal, a
/// plain line per second otherwise (so logs stay readable). Nothing with `--csv`.
pub struct Progress {
    style: Style,
    tty: bool,
    last_finished: u64,
    last_latency: u64,
    last_at: Duration,
    last_line: Duration,
    printed: usize,
}

impl Progress {
    /// A progress printer for one output style.
    pub fn new(style: Style) -> Progress {
        Progress {
            style,
            tty: std::io::stderr().is_terminal(),
            last_finished: 0,
            last_latency: 0,
            last_at: Duration::ZERO,
            last_line: Duration::ZERO,
            printed: 0,
        }
    }

    /// Called by the engine about every 250 ms during a run.
    pub fn tick(&mut self, title: &str, shared: &Shared, elapsed: Duration) {
        if self.style == Style::Csv {
            return;
        }
        let finished = shared.finished.load(Ordering::Relaxed);
        let latency = shared.latency_ns.load(Ordering::Relaxed);
        let dt = elapsed.saturating_sub(self.last_at).as_secs_f64();
        let d_fin = finished - self.last_finished;
        let rps = if dt > 0.0 { d_fin as f64 / dt } else { 0.0 };
        let overall = finished as f64 / elapsed.as_secs_f64().max(1e-9);
        let avg = |lat: u64, n: u64| {
            if n > 0 {
                lat as f64 / n as f64 / 1e6
            } else {
                0.0
            }
        };
        let line = format!(
            "{title}: rps={rps:.1} (overall: {overall:.1}) avg_msec={:.3} (overall: {:.3})",
            avg(latency - self.last_latency, d_fin),
            avg(latency, finished)
        );
        self.last_finished = finished;
        self.last_latency = latency;
        self.last_at = elapsed;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let pad = self.printed.saturating_sub(line.len());
            let _ = write!(err, "\r{line}{:pad$}", "");
            self.printed = line.len();
        } else if elapsed.saturating_sub(self.last_line) >= Duration::from_secs(1) {
            self.last_line = elapsed;
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Wipes the progress line before the results are printed, and starts
    /// over for the next run.
    pub fn clear(&mut self) {
        if self.tty && self.printed > 0 {
            let _ = write!(std::io::stderr(), "\r{:w$}\r", "", w = self.printed);
        }
        *self = Progress::new(self.style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::new_histogram;

    fn row() -> Row {
        let mut hist = new_histogram();
        for us in [100u64, 200, 300, 400] {
            hist.record(us * 1000).unwrap();
        }
        Row {
            title: "SET".into(),
            hist,
            elapsed: Duration::from_millis(2),
            errors: 0,
        }
    }

    #[test]
    fn csv_matches_redis_benchmark_shape() {
        assert!(CSV_HEADER.starts_with("\"test\",\"rps\",\"avg_latency_ms\""));
        assert_eq!(
            csv_line(&row()),
            "\"SET\",\"2000.00\",\"0.250\",\"0.100\",\"0.200\",\"0.400\",\"0.400\",\"0.400\""
        );
    }

    #[test]
    fn quiet_line_format() {
        assert_eq!(
            quiet_line(&row()),
            "SET: 2000.00 requests per second, p50=0.200 msec"
        );
    }

    #[test]
    fn table_has_a_row_per_test() {
        let t = summary_table(&[row(), row()]);
        assert_eq!(t.lines().count(), 3);
        assert!(t.lines().nth(1).unwrap().starts_with("SET "));
    }
}
