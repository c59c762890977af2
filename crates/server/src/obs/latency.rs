//! The latency monitor (LATENCY LATEST/HISTORY/RESET/DOCTOR) and the
//! per-command latency histograms behind LATENCY HISTOGRAM and INFO latencystats.
//!
//! Event series follow Redis's latency.c: one sample per second per event
//! (the worst of that second), the last 160 samples, and the all-time max.
//! Histograms follow Redis's `latency-tracking`: nanoseconds from 1 ns to 1 s
//! at 2 significant figures, allocated the first time a command runs.
//! Every shard keeps its own; queries merge them (series by second, taking the
//! worst; histograms by adding).

use hdrhistogram::Histogram;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const SERIES_LEN: usize = 160;
/// Histogram bounds in nanoseconds, as Redis's `LATENCY_HISTOGRAM_{MIN,MAX}_VALUE`.
const HIST_MIN_NS: u64 = 1;
const HIST_MAX_NS: u64 = 1_000_000_000;

/// One sample: unix second and the worst latency (ms) seen in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix time, seconds.
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

/// One event's samples, oldest first, and the all-time max.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Samples, oldest first, at most [`SERIES_LEN`].
    pub samples: std::collections::VecDeque<Sample>,
    /// Worst latency ever recorded (ms).
    pub max: u64,
}

impl Series {
    /// Adds a sample; a second sample in the same second keeps the worse one.
    pub fn add(&mut self, time: u64, latency: u64) {
        self.max = self.max.max(latency);
        if let Some(last) = self.samples.back_mut() {
            if last.time == time {
                last.latency = last.latency.max(latency);
                return;
            }
        }
        if self.samples.len() == SERIES_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { time, latency });
    }

    /// Merges another shard's series for the same event.
    pub fn merge(&mut self, other: &Series) {
        self.max = self.max.max(other.max);
        let mut all: Vec<Sample> = self
            .samples
            .drain(..)
            .chain(other.samples.iter().copied())
            .collect();
        all.sort_by_key(|s| s.time);
        for s in all {
            let max = self.max;
            self.add(s.time, s.latency);
            self.max = max;
        }
    }
}

/// One shard's latency state.
#[derive(Default)]
pub struct Latency {
    /// Event series in first-seen order.
    pub events: Vec<(&'static str, Series)>,
    /// Per-command histograms, indexed by row of the command table
    /// (`shardis_commands::meta::TABLE`: subcommands apart, as in Redis;
    /// None until first use).
    histograms: Vec<Option<Box<Histogram<u64>>>>,
}

impl Latency {
    /// Records one call of command `id` that took `usec`.
    pub fn record_command(&mut self, id: usize, usec: u64) {
        if self.histograms.len() <= id {
            self.histograms
                .resize_with(shardis_commands::meta::COUNT.max(id + 1), || None);
        }
        let h = self.histograms[id].get_or_insert_with(|| Box::new(new_histogram()));
        // Saturating: values outside the bounds clamp, as Redis clamps them.
        h.saturating_record((usec.saturating_mul(1000)).clamp(HIST_MIN_NS, HIST_MAX_NS));
    }

    /// Records an event sample of `ms` at unix second `now`.
    pub fn add_sample(&mut self, event: &'static str, now: u64, ms: u64) {
        match self.events.iter_mut().find(|(e, _)| *e == event) {
            Some((_, s)) => s.add(now, ms),
            None => {
                let mut s = Series::default();
                s.add(now, ms);
                self.events.push((event, s));
            }
        }
    }

    /// Forgets the named events (all when `None`); returns how many existed.
    pub fn reset_events(&mut self, names: Option<&[String]>) -> Vec<&'static str> {
        let mut gone = Vec::new();
        self.events.retain(|(e, _)| {
            let drop = names.is_none_or(|n| n.iter().any(|x| x == e));
            if drop {
                gone.push(*e);
            }
            !drop
        });
        gone
    }

    /// Copies of the histograms that exist, by command id.
    pub fn histograms(&self) -> Vec<(usize, Histogram<u64>)> {
        self.histograms
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, (**h).clone())))
            .collect()
    }

    /// CONFIG RESETSTAT.
    pub fn reset_histograms(&mut self) {
        self.histograms.clear();
    }
}

/// An empty histogram with Redis's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(HIST_MIN_NS, HIST_MAX_NS, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant figures are valid"))
    })
}

/// Adds per-shard histograms by command id.
pub fn merge_histograms(
    per_shard: Vec<Vec<(usize, Histogram<u64>)>>,
) -> Vec<(usize, Histogram<u64>)> {
    let mut out: Vec<(usize, Histogram<u64>)> = Vec::new();
    for shard in per_shard {
        for (id, h) in shard {
            match out.iter_mut().find(|(i, _)| *i == id) {
                Some((_, acc)) => {
                    let _ = acc.add(&h);
                }
                None => out.push((id, h)),
            }
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}

/// Merges per-shard event series by name, keeping first-seen order.
pub fn merge_events(per_shard: Vec<Vec<(&'static str, Series)>>) -> Vec<(&'static str, Series)> {
    let mut out: Vec<(&'static str, Series)> = Vec::new();
    for shard in per_shard {
        for (e, s) in shard {
            match out.iter_mut().find(|(n, _)| *n == e) {
                Some((_, acc)) => acc.merge(&s),
                None => out.push((e, s)),
            }
        }
    }
    out
}

/// `%f` then trailing zeros trimmed, as Redis prints a percentile label.
pub fn percentile_label(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

/// One INFO latencystats line.
pub fn info_line(name: &str, h: &Histogram<u64>, percentiles: &[f64]) -> String {
    let parts: Vec<String> = percentiles
        .iter()
        .map(|&p| {
            format!(
                "p{}={:.3}",
                percentile_label(p),
                h.value_at_percentile(p) as f64 / 1000.0
            )
        })
        .collect();
    format!("latency_percentiles_usec_{name}:{}\r\n", parts.join(","))
}

/// LATENCY HISTOGRAM's buckets: (µs, cumulative count) at powers of two from
/// 1024 ns, empty steps skipped (Redis's `fillCommandCDF`).
pub fn cdf(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cumulative = 0u64;
    for v in h.iter_log(1024, 2.0) {
        let before = cumulative;
        cumulative += v.count_since_last_iteration();
        if cumulative > before {
            out.push((v.value_iterated_to() / 1000, cumulative));
        }
    }
    out
}

/// LATENCY GRAPH: Redis's sparkline of an event's samples (latency.c's
/// `latencyCommandGenSparkeline` with sparkline.c's renderer: 80 columns,
/// 4 rows, filled, each column labelled vertically with its age).
pub fn graph(event: &str, s: &Series, now: u64) -> String {
    let samples: Vec<(u64, String)> = s
        .samples
        .iter()
        .map(|x| {
            let elapsed = now.saturating_sub(x.time);
            let label = if elapsed < 60 {
                format!("{elapsed}s")
            } else if elapsed < 3600 {
                format!("{}m", elapsed / 60)
            } else if elapsed < 86400 {
                format!("{}h", elapsed / 3600)
            } else {
                format!("{}d", elapsed / 86400)
            };
            (x.latency, label)
        })
        .collect();
    let min = samples.iter().map(|x| x.0).min().unwrap_or(0);
    let max = samples.iter().map(|x| x.0).max().unwrap_or(0);
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n{}\n",
        s.max,
        "-".repeat(80)
    );
    for (i, chunk) in samples.chunks(80).enumerate() {
        if i != 0 {
            out.push('\n');
        }
        sparkline_rows(&mut out, chunk, 4, min as f64, max as f64);
    }
    out
}

/// sparkline.c's `sparklineRenderRange` with `SPARKLINE_FILL`.
fn sparkline_rows(out: &mut String, samples: &[(u64, String)], rows: usize, min: f64, max: f64) {
    const FILL: [char; 3] = ['_', 'o', '#'];
    const LABEL_MARGIN_TOP: usize = 1;
    let steps = (FILL.len() * rows) as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let mut row = 0;
    loop {
        let mut more = false;
        let mut chars = vec![' '; samples.len()];
        for (j, (value, label)) in samples.iter().enumerate() {
            let relval = *value as f64 - min;
            let step = (((relval * steps as f64) / relmax) as i64).clamp(0, steps - 1);
            if row < rows {
                more = true;
                let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                if (0..FILL.len() as i64).contains(&idx) {
                    chars[j] = FILL[idx as usize];
                } else if idx >= FILL.len() as i64 {
                    chars[j] = '|';
                }
            } else {
                if row - rows < LABEL_MARGIN_TOP {
                    more = true;
                    break;
                }
                let at = row - rows - LABEL_MARGIN_TOP;
                if let Some(c) = label.chars().nth(at) {
                    more = true;
                    chars[j] = c;
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        out.extend(chars);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeps_the_worst() {
        let mut s = Series::default();
        s.add(10, 5);
        s.add(10, 9);
        s.add(10, 3);
        s.add(11, 1);
        assert_eq!(
            s.samples.iter().copied().collect::<Vec<_>>(),
            vec![
                Sample {
                    time: 10,
                    latency: 9
                },
                Sample {
                    time: 11,
                    latency: 1
                }
            ]
        );
        assert_eq!(s.max, 9);
        for t in 0..200 {
            s.add(100 + t, 1);
        }
        assert_eq!(s.samples.len(), SERIES_LEN);
    }

    #[test]
    fn merge_takes_worst_per_second() {
        let mut a = Series::default();
        a.add(1, 5);
        a.add(3, 2);
        let mut b = Series::default();
        b.add(1, 7);
        b.add(2, 1);
        a.merge(&b);
        let v: Vec<(u64, u64)> = a.samples.iter().map(|s| (s.time, s.latency)).collect();
        assert_eq!(v, vec![(1, 7), (2, 1), (3, 2)]);
        assert_eq!(a.max, 7);
    }

    #[test]
    fn graph_matches_redis() {
        // Samples and output taken from redis-server 7.0.15 (LATENCY HISTORY / GRAPH).
        let mut s = Series::default();
        for (t, ms) in [
            (1795707114, 151),
            (1795707117, 252),
            (1795707118, 123),
            (1795707119, 405),
        ] {
            s.add(t, ms);
        }
        assert_eq!(
            graph("command", &s, 1795707119),
            format!(
                "command - high 405 ms, low 123 ms (all time high 405 ms)\n{}\n   #\n   |\n # |\no|_|\n    \n5210\nssss\n",
                "-".repeat(80)
            )
        );
    }

    #[test]
    fn labels_and_percentiles() {
        assert_eq!(percentile_label(50.0), "50");
        assert_eq!(percentile_label(99.9), "99.9");
        let mut l = Latency::default();
        for _ in 0..10 {
            l.record_command(3, 8);
        }
        let h = &l.histograms()[0].1;
        let line = info_line("set", h, &[50.0, 99.0, 99.9]);
        assert!(
            line.starts_with("latency_percentiles_usec_set:p50=8.0"),
            "{line}"
        );
        assert_eq!(cdf(h), vec![(8, 10)]);
    }
}
