//! INFO's `instantaneous_*` rates, sampled as Redis samples them.
//!
//! Redis's serverCron reads each counter every 100 ms, turns the change into a
//! per-second rate and keeps the last 16 rates; INFO shows their mean. Shard 0's
//! cron does the same over the counters summed across shards.

use std::time::Instant;

/// Rates kept per metric (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;

/// The metrics INFO reports as instantaneous rates.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    /// Commands processed (`instantaneous_ops_per_sec`).
    Commands = 0,
    /// Bytes read from clients (`instantaneous_input_kbps`).
    NetInput = 1,
    /// Bytes written to clients (`instantaneous_output_kbps`).
    NetOutput = 2,
}

const METRICS: usize = 3;

#[derive(Debug, Default, Clone)]
struct Track {
    last_reading: u64,
    last_at: Option<Instant>,
    rates: [u64; SAMPLES],
    next: usize,
}

/// The sampled rates, written by shard 0's cron and read by INFO.
#[derive(Debug, Default)]
pub struct Instantaneous {
    tracks: [Track; METRICS],
}

impl Instantaneous {
    /// Records `reading` (a monotonic total) for `metric` at `now`.
    pub fn sample(&mut self, metric: Metric, reading: u64, now: Instant) {
        let t = &mut self.tracks[metric as usize];
        if let Some(at) = t.last_at {
            let ms = now.duration_since(at).as_millis() as u64;
            let delta = reading.saturating_sub(t.last_reading);
            t.rates[t.next] = (delta * 1000).checked_div(ms).unwrap_or(0);
            t.next = (t.next + 1) % SAMPLES;
        }
        t.last_reading = reading;
        t.last_at = Some(now);
    }

    /// The mean of the last 16 per-second rates of `metric`.
    pub fn per_second(&self, metric: Metric) -> u64 {
        self.tracks[metric as usize].rates.iter().sum::<u64>() / SAMPLES as u64
    }

    /// A byte metric in KiB/s, as Redis prints `instantaneous_*_kbps` (`%.2f`).
    pub fn kbps(&self, metric: Metric) -> String {
        format!("{:.2}", self.per_second(metric) as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn mean_of_the_last_sixteen_rates() {
        let mut m = Instantaneous::default();
        let t0 = Instant::now();
        m.sample(Metric::Commands, 0, t0);
        assert_eq!(m.per_second(Metric::Commands), 0);
        // 100 commands per 100 ms for 16 samples: 1000/s.
        for i in 1..=16u32 {
            m.sample(
                Metric::Commands,
                100 * i as u64,
                t0 + Duration::from_millis(100) * i,
            );
        }
        assert_eq!(m.per_second(Metric::Commands), 1000);
        // Idle for 8 samples: half the window is 0.
        for i in 17..=24u32 {
            m.sample(Metric::Commands, 1600, t0 + Duration::from_millis(100) * i);
        }
        assert_eq!(m.per_second(Metric::Commands), 500);
        m.sample(Metric::NetInput, 0, t0);
        m.sample(Metric::NetInput, 2048 * 16, t0 + Duration::from_secs(1));
        assert_eq!(m.kbps(Metric::NetInput), "2.00");
    }
}
