//! The redis-benchmark 7.0 test list, with the same titles, commands and keys,
//! so numbers from the two tools can be put side by side.

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::engine::{Generator, Workload};
use crate::keys::Template;

/// One test of the suite.
pub struct TestDef {
    /// The title printed in reports (redis-benchmark's).
    pub title: &'static str,
    /// `-t` names that select it.
    pub selectors: &'static [&'static str],
    /// Command arguments; `$DATA` stands for the `-d` payload.
    pub args: &'static [&'static str],
}

const LRANGE_ALL: &[&str] = &[
    "lrange",
    "lrange_100",
    "lrange_300",
    "lrange_500",
    "lrange_600",
];

/// Every test, in redis-benchmark's order. PING_INLINE (empty args) is sent as
/// an inline command.
pub const TESTS: &[TestDef] = &[
    TestDef {
        title: "PING_INLINE",
        selectors: &["ping_inline", "ping"],
        args: &[],
    },
    TestDef {
        title: "PING_MBULK",
        selectors: &["ping_mbulk", "ping"],
        args: &["PING"],
    },
    TestDef {
        title: "SET",
        selectors: &["set"],
        args: &["SET", "key:__rand_int__", "$DATA"],
    },
    TestDef {
        title: "GET",
        selectors: &["get"],
        args: &["GET", "key:__rand_int__"],
    },
    TestDef {
        title: "INCR",
        selectors: &["incr"],
        args: &["INCR", "counter:__rand_int__"],
    },
    TestDef {
        title: "LPUSH",
        selectors: &["lpush"],
        args: &["LPUSH", "mylist", "$DATA"],
    },
    TestDef {
        title: "RPUSH",
        selectors: &["rpush"],
        args: &["RPUSH", "mylist", "$DATA"],
    },
    TestDef {
        title: "LPOP",
        selectors: &["lpop"],
        args: &["LPOP", "mylist"],
    },
    TestDef {
        title: "RPOP",
        selectors: &["rpop"],
        args: &["RPOP", "mylist"],
    },
    TestDef {
        title: "SADD",
        selectors: &["sadd"],
        args: &["SADD", "myset", "element:__rand_int__"],
    },
    TestDef {
        title: "HSET",
        selectors: &["hset"],
        args: &["HSET", "myhash", "element:__rand_int__", "$DATA"],
    },
    TestDef {
        title: "SPOP",
        selectors: &["spop"],
        args: &["SPOP", "myset"],
    },
    TestDef {
        title: "ZADD",
        selectors: &["zadd"],
        args: &["ZADD", "myzset", "$SCORE", "element:__rand_int__"],
    },
    TestDef {
        title: "ZPOPMIN",
        selectors: &["zpopmin"],
        args: &["ZPOPMIN", "myzset"],
    },
    TestDef {
        title: "LPUSH (needed to benchmark LRANGE)",
        selectors: LRANGE_ALL,
        args: &["LPUSH", "mylist", "$DATA"],
    },
    TestDef {
        title: "LRANGE_100 (first 100 elements)",
        selectors: &["lrange", "lrange_100"],
        args: &["LRANGE", "mylist", "0", "99"],
    },
    TestDef {
        title: "LRANGE_300 (first 300 elements)",
        selectors: &["lrange", "lrange_300"],
        args: &["LRANGE", "mylist", "0", "299"],
    },
    TestDef {
        title: "LRANGE_500 (first 450 elements)",
        selectors: &["lrange", "lrange_500"],
        args: &["LRANGE", "mylist", "0", "449"],
    },
    TestDef {
        title: "LRANGE_600 (first 600 elements)",
        selectors: &["lrange", "lrange_600"],
        args: &["LRANGE", "mylist", "0", "599"],
    },
    TestDef {
        title: "MSET (10 keys)",
        selectors: &["mset"],
        args: &[
            "MSET",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
            "key:__rand_int__",
            "$DATA",
        ],
    },
];

/// The tests a `-t` list selects, in suite order; every test without `-t`.
/// Unknown names are an error rather than silently running nothing.
pub fn select(list: Option<&str>) -> Result<Vec<&'static TestDef>, String> {
    let Some(list) = list else {
        return Ok(TESTS.iter().collect());
    };
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = names
        .iter()
        .find(|n| !TESTS.iter().any(|t| t.selectors.contains(&n.as_str())))
    {
        return Err(format!("unknown test '{bad}' in -t"));
    }
    let chosen: Vec<_> = TESTS
        .iter()
        .filter(|t| names.iter().any(|n| t.selectors.contains(&n.as_str())))
        .collect();
    if chosen.is_empty() {
        return Err("-t selects no test".into());
    }
    Ok(chosen)
}

/// Encodes a test's request; with `-r`, ZADD's score is random too.
pub fn template(test: &TestDef, data: &[u8], random_keys: bool) -> Template {
    if test.args.is_empty() {
        return Template::from_raw(b"PING\r\n".to_vec());
    }
    let args: Vec<&[u8]> = test
        .args
        .iter()
        .map(|&a| match a {
            "$DATA" => data,
            "$SCORE" if random_keys => b"__rand_int__".as_slice(),
            "$SCORE" => b"0".as_slice(),
            other => other.as_bytes(),
        })
        .collect();
    Template::from_args(&args)
}

/// One suite test as a workload: the same request over and over, with keys
/// randomised per request when `-r` is given.
pub struct SuiteWorkload {
    /// The encoded request.
    pub template: Template,
    /// `-r`: the keyspace length.
    pub keyspace: Option<u64>,
    /// Base seed; each connection derives its own stream.
    pub seed: u64,
}

impl Workload for SuiteWorkload {
    fn classes(&self) -> Vec<String> {
        vec![String::new()]
    }

    fn generator(&self, conn: usize) -> Box<dyn Generator> {
        Box::new(SuiteGen {
            template: self.template.clone(),
            keyspace: self.keyspace,
            rng: SmallRng::seed_from_u64(
                self.seed ^ (conn as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
        })
    }
}

struct SuiteGen {
    template: Template,
    keyspace: Option<u64>,
    rng: SmallRng,
}

impl Generator for SuiteGen {
    fn fill(&mut self, _first: u64, count: usize, out: &mut Vec<u8>, classes: &mut Vec<u8>) {
        for _ in 0..count {
            self.template.append(out, self.keyspace, &mut self.rng);
            classes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(list: Option<&str>) -> Vec<&'static str> {
        select(list).unwrap().iter().map(|t| t.title).collect()
    }

    #[test]
    fn selection_follows_suite_order() {
        assert_eq!(titles(Some("get,SET")), ["SET", "GET"]);
        assert_eq!(titles(Some("ping")), ["PING_INLINE", "PING_MBULK"]);
        assert_eq!(
            titles(Some("lrange_300")).len(),
            2,
            "LPUSH filler + LRANGE_300"
        );
        assert_eq!(titles(None).len(), TESTS.len());
        assert!(select(Some("sett")).is_err());
        assert!(select(Some(",")).is_err());
    }

    #[test]
    fn templates_match_redis_benchmark_commands() {
        let get = TESTS.iter().find(|t| t.title == "GET").unwrap();
        assert_eq!(
            template(get, b"xxx", false).bytes(),
            b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n"
        );
        let ping = &TESTS[0];
        assert_eq!(template(ping, b"", false).bytes(), b"PING\r\n");
        let zadd = TESTS.iter().find(|t| t.title == "ZADD").unwrap();
        let fixed = template(zadd, b"", false);
        assert!(memchr::memmem::find(fixed.bytes(), b"$1\r\n0\r\n").is_some());
        let random = template(zadd, b"", true);
        assert_eq!(
            memchr::memmem::find_iter(random.bytes(), b"__rand_int__").count(),
            2
        );
        let mset = TESTS.iter().find(|t| t.title == "MSET (10 keys)").unwrap();
        assert!(template(mset, b"abc", false)
            .bytes()
            .starts_with(b"*21\r\n$4\r\nMSET\r\n"));
    }

    #[test]
    fn generator_fills_count_requests() {
        let set = TESTS.iter().find(|t| t.title == "SET").unwrap();
        let w = SuiteWorkload {
            template: template(set, b"v", false),
            keyspace: Some(5),
            seed: 1,
        };
        let mut g = w.generator(0);
        let (mut out, mut classes) = (Vec::new(), Vec::new());
        g.fill(0, 3, &mut out, &mut classes);
        assert_eq!(classes, [0, 0, 0]);
        assert_eq!(
            memchr::memmem::find_iter(&out, b"*3\r\n$3\r\nSET\r\n").count(),
            3
        );
        assert!(memchr::memmem::find(&out, b"key:00000000000").is_some());
    }
}
