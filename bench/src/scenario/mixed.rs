//! `mixed`: GET/SET traffic over `--keys` keys named like redis-benchmark's `-r`
//! keys (`key:000000000042`), chosen uniformly or Zipfian (hot keys first), with
//! `--read-ratio` of the requests being GETs. The keyspace is preloaded with SETs
//! first (unless `--no-prefill`) so reads hit real values.

use std::io;

use clap::{Args, ValueEnum};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cli::Common;
use crate::engine::{Generator, Workload};
use crate::keys::{benchmark_data, push_key};
use crate::report::{Progress, Row};
use crate::zipf::{KeyDist, Zipf};

/// Flags of the `mixed` scenario.
#[derive(Args, Debug, Clone)]
pub struct MixedArgs {
    /// Fraction of requests that are GETs (the rest are SETs).
    #[arg(long, default_value_t = 0.9, value_parser = parse_ratio)]
    pub read_ratio: f64,

    /// How keys are chosen.
    #[arg(long, value_enum, default_value_t = Dist::Zipf)]
    pub dist: Dist,

    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,

    /// Skew of the Zipfian distribution: P(rank k) ~ 1/k^theta, theta > 0.
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,

    /// Do not preload the keyspace before measuring.
    #[arg(long)]
    pub no_prefill: bool,
}

/// Key popularity distributions.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dist {
    /// Zipfian: a few keys take most of the traffic.
    Zipf,
    /// Every key equally likely.
    Uniform,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between 0 and 1, got {v}"))
    }
}

/// The request classes, in the order of the class bytes the generator emits.
const GET: u8 = 0;
const SET: u8 = 1;

/// The mixed workload's shared description.
pub struct MixedWorkload {
    dist: KeyDist,
    read_ratio: f64,
    value: Vec<u8>,
    seed: u64,
}

impl MixedWorkload {
    /// Prepares the distribution (the Zipf set-up is O(keys)).
    pub fn new(args: &MixedArgs, datasize: usize, seed: u64) -> Result<MixedWorkload, String> {
        let dist = match args.dist {
            Dist::Uniform => KeyDist::Uniform { n: args.keys },
            Dist::Zipf => KeyDist::Zipf(Zipf::new(args.keys, args.zipf_theta)?),
        };
        Ok(MixedWorkload {
            dist,
            read_ratio: args.read_ratio,
            value: benchmark_data(datasize),
            seed,
        })
    }
}

impl Workload for MixedWorkload {
    fn classes(&self) -> Vec<String> {
        vec!["GET".into(), "SET".into()]
    }

    fn generator(&self, conn: usize) -> Box<dyn Generator> {
        Box::new(MixedGen {
            dist: self.dist.clone(),
            read_ratio: self.read_ratio,
            value: self.value.clone(),
            rng: SmallRng::seed_from_u64(
                self.seed ^ (conn as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
        })
    }
}

struct MixedGen {
    dist: KeyDist,
    read_ratio: f64,
    value: Vec<u8>,
    rng: SmallRng,
}

impl Generator for MixedGen {
    fn fill(&mut self, _first: u64, count: usize, out: &mut Vec<u8>, classes: &mut Vec<u8>) {
        for _ in 0..count {
            let key = self.dist.sample(&mut self.rng);
            if self.rng.gen::<f64>() < self.read_ratio {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$16\r\n");
                push_key(out, b"key:", key);
                out.extend_from_slice(b"\r\n");
                classes.push(GET);
            } else {
                push_set(out, key, &self.value);
                classes.push(SET);
            }
        }
    }
}

/// Appends `SET key:<n> <value>`.
fn push_set(out: &mut Vec<u8>, key: u64, value: &[u8]) {
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
    push_key(out, b"key:", key);
    out.extend_from_slice(format!("\r\n${}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Loads keys 0..n in order, one SET each.
pub struct Prefill {
    value: Vec<u8>,
}

impl Prefill {
    /// SETs with redis-benchmark's `datasize`-byte value.
    pub fn new(datasize: usize) -> Prefill {
        Prefill {
            value: benchmark_data(datasize),
        }
    }
}

impl Workload for Prefill {
    fn classes(&self) -> Vec<String> {
        vec!["SET".into()]
    }

    fn generator(&self, _conn: usize) -> Box<dyn Generator> {
        Box::new(PrefillGen {
            value: self.value.clone(),
        })
    }
}

struct PrefillGen {
    value: Vec<u8>,
}

impl Generator for PrefillGen {
    fn fill(&mut self, first: u64, count: usize, out: &mut Vec<u8>, classes: &mut Vec<u8>) {
        for key in first..first + count as u64 {
            push_set(out, key, &self.value);
            // Prefill reports a single class.
            classes.push(0);
        }
    }
}

/// Runs the scenario: the preload (not reported), then the measured mix.
pub fn run(common: &Common, args: &MixedArgs, progress: &mut Progress) -> io::Result<Vec<Row>> {
    let workload = MixedWorkload::new(args, common.datasize, common.seed)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if !args.no_prefill {
        let cfg = super::load_config(common, args.keys, common.pipeline.max(64));
        let prefill = Prefill {
            value: benchmark_data(common.datasize),
        };
        let rows = super::run_rows(&cfg, &prefill, "PREFILL", progress)?;
        eprintln!(
            "prefilled {} keys in {:.2} s",
            args.keys,
            rows[0].elapsed.as_secs_f64()
        );
    }
    let cfg = super::load_config(common, common.requests, common.pipeline);
    let title = format!("MIXED {:?} r={}", args.dist, args.read_ratio).to_uppercase();
    super::run_rows(&cfg, &workload, &title, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardis_base::reply::scan;

    fn args(read_ratio: f64, dist: Dist) -> MixedArgs {
        MixedArgs {
            read_ratio,
            dist,
            keys: 100,
            zipf_theta: 0.99,
            no_prefill: false,
        }
    }

    /// Splits a request buffer into commands, reusing the reply reader
    /// (a multibulk request is a valid RESP array).
    fn commands(mut buf: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        while !buf.is_empty() {
            let (len, _) = scan(buf).unwrap().unwrap();
            v.push(&buf[..len]);
            buf = &buf[len..];
        }
        v
    }

    #[test]
    fn ratio_and_classes_agree_with_the_bytes() {
        let w = MixedWorkload::new(&args(0.9, Dist::Uniform), 3, 1).unwrap();
        let mut g = w.generator(0);
        let (mut out, mut classes) = (Vec::new(), Vec::new());
        g.fill(0, 10_000, &mut out, &mut classes);
        let cmds = commands(&out);
        assert_eq!(cmds.len(), 10_000);
        for (c, &k) in cmds.iter().zip(&classes) {
            let expect: &[u8] = if k == GET {
                b"*2\r\n$3\r\nGET"
            } else {
                b"*3\r\n$3\r\nSET"
            };
            assert!(c.starts_with(expect));
            assert!(memchr::memmem::find(c, b"$16\r\nkey:000000000").is_some());
        }
        let gets = classes.iter().filter(|&&k| k == GET).count();
        assert!((8_800..9_200).contains(&gets), "{gets}");
    }

    #[test]
    fn extremes() {
        for (ratio, class) in [(1.0, GET), (0.0, SET)] {
            let w = MixedWorkload::new(&args(ratio, Dist::Zipf), 3, 1).unwrap();
            let (mut out, mut classes) = (Vec::new(), Vec::new());
            w.generator(3).fill(0, 1000, &mut out, &mut classes);
            assert!(classes.iter().all(|&k| k == class));
        }
    }

    #[test]
    fn prefill_writes_each_key_once_in_order() {
        let mut g = Prefill {
            value: b"v".to_vec(),
        }
        .generator(0);
        let (mut out, mut classes) = (Vec::new(), Vec::new());
        g.fill(98, 2, &mut out, &mut classes);
        assert_eq!(
            classes,
            [0, 0],
            "one class: {:?}",
            Prefill { value: vec![] }.classes()
        );
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000098\r\n$1\r\nv\r\n\
              *3\r\n$3\r\nSET\r\n$16\r\nkey:000000000099\r\n$1\r\nv\r\n"
        );
    }

    #[test]
    fn ratio_flag_is_checked() {
        assert!(parse_ratio("0.3").is_ok());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("x").is_err());
    }
}
