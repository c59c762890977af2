//! maxmemory against the real server: every eviction policy, the OOM error,
//! evictions reaching a replica as DEL, OBJECT IDLETIME/FREQ.
//!
//! Limits are set relative to the server's own `used_memory` after start
//! (connections and the keyspace's fixed tables count, as in Redis).

mod common;

use common::{roundtrip, wait_for, Server};
use redis::Connection;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn info_field(c: &mut Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn used(c: &mut Connection) -> u64 {
    info_field(c, "memory", "used_memory")
        .unwrap()
        .parse()
        .unwrap()
}

fn evicted(c: &mut Connection) -> u64 {
    info_field(c, "stats", "evicted_keys")
        .unwrap()
        .parse()
        .unwrap()
}

fn config_set(c: &mut Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

fn dbsize(c: &mut Connection) -> u64 {
    redis::cmd("DBSIZE").query(c).unwrap()
}

/// Writes `keys` with 1 KB values in pipelines of 100 (`ttl`: EX seconds);
/// returns how many were written by pipelines without an error reply.
fn fill(c: &mut Connection, prefix: &str, keys: std::ops::Range<u64>, ttl: Option<u64>) -> u64 {
    fill_errors(c, prefix, keys, ttl).0
}

/// [`fill`], also returning the error replies.
fn fill_errors(
    c: &mut Connection,
    prefix: &str,
    keys: std::ops::Range<u64>,
    ttl: Option<u64>,
) -> (u64, Vec<String>) {
    let value = vec![b'x'; 1000];
    let mut ok = 0;
    let mut errors = Vec::new();
    let keys: Vec<u64> = keys.collect();
    for chunk in keys.chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            let cmd = p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value[..]);
            if let Some(t) = ttl {
                cmd.arg("EX").arg(t + i);
            }
        }
        // The client fails the whole pipeline on the first error reply.
        match p.query::<Vec<redis::Value>>(c) {
            Ok(replies) => ok += replies.len() as u64,
            Err(e) => errors.push(format!(
                "{} {}",
                e.code().unwrap_or_default(),
                e.detail().unwrap_or_default()
            )),
        }
    }
    (ok, errors)
}

fn exists(c: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(c).unwrap() == 1
}

#[test]
fn noeviction_refuses_denyoom_writes_with_redis_error() {
    let s = Server::start(&[]);
    let mut c = s.client();
    fill(&mut c, "k", 0..2000, None);
    let u = used(&mut c);
    config_set(&mut c, "maxmemory", &(u / 2).to_string());
    assert!(wait_for(5, || s
        .logged("WARNING: the new maxmemory value set via CONFIG SET")));
    let mut raw = s.raw();
    let want = format!("-{OOM}\r\n");
    let got = roundtrip(
        &mut raw,
        b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n",
        want.len(),
    );
    assert_eq!(String::from_utf8_lossy(&got), want);
    // Reads and deletes still run; nothing was evicted.
    let got = roundtrip(&mut raw, b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n", 1009);
    assert!(got.starts_with(b"$1000\r\n"));
    let got = roundtrip(&mut raw, b"*2\r\n$3\r\nDEL\r\n$2\r\nk1\r\n", 4);
    assert_eq!(&got, b":1\r\n");
    // Inside MULTI the refusal aborts the transaction, as in Redis.
    let got = roundtrip(&mut raw, b"*1\r\n$5\r\nMULTI\r\n", 5);
    assert_eq!(&got, b"+OK\r\n");
    let got = roundtrip(&mut raw, b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);
    let abort = "-EXECABORT Transaction discarded because of previous errors.\r\n";
    let got = roundtrip(&mut raw, b"*1\r\n$4\r\nEXEC\r\n", abort.len());
    assert_eq!(String::from_utf8_lossy(&got), abort);
    assert_eq!(evicted(&mut c), 0);
    assert_eq!(dbsize(&mut c), 1999);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    for f in [
        "used_memory_human:",
        "used_memory_rss:",
        "used_memory_peak:",
        "maxmemory_human:",
        "maxmemory_policy:noeviction",
        "mem_fragmentation_ratio:",
        "mem_allocator:",
    ] {
        assert!(info.contains(f), "{f} missing in {info}");
    }
    // Lifting the limit lets writes through again.
    config_set(&mut c, "maxmemory", "0");
    let _: () = redis::cmd("SET").arg("a").arg("b").query(&mut c).unwrap();
}

#[test]
fn allkeys_lru_keeps_the_recently_used_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    config_set(&mut c, "maxmemory-policy", "allkeys-lru");
    fill(&mut c, "hot", 0..50, None);
    fill(&mut c, "cold", 0..3000, None);
    // The LRU clock ticks in seconds: let the cold keys age, then touch the hot ones.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    for i in 0..50 {
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("hot{i}"))
            .query(&mut c)
            .unwrap();
    }
    let u = used(&mut c);
    config_set(&mut c, "maxmemory", &u.to_string());
    // New writes, with the hot set read between batches (as a cache's hot set is).
    let mut written = 0;
    for batch in 0..10 {
        written += fill(&mut c, "new", batch * 100..(batch + 1) * 100, None);
        for i in 0..50 {
            let _: Option<Vec<u8>> = redis::cmd("GET")
                .arg(format!("hot{i}"))
                .query(&mut c)
                .unwrap();
        }
    }
    assert_eq!(written, 1000, "allkeys-lru never refuses writes");
    assert!(evicted(&mut c) > 500, "evicted {}", evicted(&mut c));
    assert!(dbsize(&mut c) < 4050);
    let hot_left = (0..50)
        .filter(|i| exists(&mut c, &format!("hot{i}")))
        .count();
    assert_eq!(hot_left, 50, "the recently used keys survive");
    assert!(used(&mut c) <= u + 200_000, "{} > {u}", used(&mut c));
}

#[test]
fn allkeys_random_and_lfu_evict_under_the_limit() {
    for policy in ["allkeys-random", "allkeys-lfu"] {
        let s = Server::start(&["--maxmemory-policy", policy]);
        let mut c = s.client();
        fill(&mut c, "a", 0..2000, None);
        let u = used(&mut c);
        config_set(&mut c, "maxmemory", &u.to_string());
        assert_eq!(fill(&mut c, "b", 0..2000, None), 2000, "{policy}");
        assert!(evicted(&mut c) >= 1000, "{policy}: {}", evicted(&mut c));
        assert!(dbsize(&mut c) < 3000, "{policy}");
    }
}

#[test]
fn volatile_policies_only_evict_keys_with_a_ttl() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let s = Server::start(&["--maxmemory-policy", policy]);
        let mut c = s.client();
        fill(&mut c, "p", 0..1000, None);
        fill(&mut c, "v", 0..1000, Some(10_000));
        let u = used(&mut c);
        config_set(&mut c, "maxmemory", &u.to_string());
        let written = fill(&mut c, "q", 0..600, None);
        assert_eq!(written, 600, "{policy}");
        assert!(evicted(&mut c) >= 300, "{policy}: {}", evicted(&mut c));
        let persistent_left = (0..1000)
            .filter(|i| exists(&mut c, &format!("p{i}")))
            .count();
        assert_eq!(persistent_left, 1000, "{policy} evicted a key without TTL");
        // Once no key with a TTL is left, writes get OOM.
        let mut refused = Vec::new();
        for round in 0..50 {
            let (_, errors) = fill_errors(&mut c, &format!("r{round}-"), 0..200, None);
            if !errors.is_empty() {
                refused = errors;
                break;
            }
        }
        assert_eq!(refused.first().map(|e| e.as_str()), Some(OOM), "{policy}");
        let vol_left = (0..1000)
            .filter(|i| exists(&mut c, &format!("v{i}")))
            .count();
        assert_eq!(vol_left, 0, "{policy}");
    }
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiries_first() {
    let s = Server::start(&["--maxmemory-policy", "volatile-ttl"]);
    let mut c = s.client();
    // TTLs 10000 + i seconds: v0 expires first.
    fill(&mut c, "v", 0..2000, Some(10_000));
    let u = used(&mut c);
    config_set(&mut c, "maxmemory", &u.to_string());
    fill(&mut c, "p", 0..700, None);
    let ev = evicted(&mut c);
    assert!(ev >= 300, "evicted {ev}");
    let left: Vec<u64> = (0..2000)
        .filter(|i| exists(&mut c, &format!("v{i}")))
        .collect();
    // Sampled, so not exact: the far expiries all survive, the near ones mostly go.
    assert!(left.iter().filter(|&&i| i >= 1500).count() == 500);
    let near_left = left.iter().filter(|&&i| i < 200).count();
    assert!(
        near_left < 100,
        "{near_left} of the 200 nearest expiries survived"
    );
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let err = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("k")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("An LFU maxmemory policy is not selected, access frequency not tracked."));
    assert!(wait_for(5, || {
        redis::cmd("OBJECT")
            .arg("IDLETIME")
            .arg("k")
            .query::<i64>(&mut c)
            .unwrap()
            >= 1
    }));
    let _: () = redis::cmd("TOUCH").arg("k").query(&mut c).unwrap();
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert!(idle <= 1, "TOUCH resets the idle time");
    config_set(&mut c, "maxmemory-policy", "allkeys-lfu");
    let _: () = redis::cmd("SET").arg("f").arg("v").query(&mut c).unwrap();
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("f")
        .query(&mut c)
        .unwrap();
    assert_eq!(freq, 5, "LFU_INIT_VAL");
    for _ in 0..300 {
        let _: Option<String> = redis::cmd("GET").arg("f").query(&mut c).unwrap();
    }
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("f")
        .query(&mut c)
        .unwrap();
    assert!((8..40).contains(&freq), "freq {freq} after 300 hits");
    let err = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("f")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("An LFU maxmemory policy is selected, idle time not tracked."));
    let cfg: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("lfu-*")
        .query(&mut c)
        .unwrap();
    assert_eq!(cfg.len(), 4);
    assert!(cfg.windows(2).any(|w| w == ["lfu-log-factor", "10"]));
    assert!(cfg.windows(2).any(|w| w == ["lfu-decay-time", "1"]));
}

#[test]
fn evictions_reach_the_replica_as_del_and_replicas_do_not_evict() {
    let master = Server::start(&["--maxmemory-policy", "allkeys-random"]);
    let replica = Server::start(&[
        "--replicaof",
        "127.0.0.1",
        &master.port.to_string(),
        "--maxmemory-policy",
        "allkeys-random",
    ]);
    let mut m = master.client();
    let mut r = replica.client();
    assert!(wait_for(20, || info_field(
        &mut r,
        "replication",
        "master_link_status"
    )
    .as_deref()
        == Some("up")));
    fill(&mut m, "a", 0..2000, None);
    let u = used(&mut m);
    config_set(&mut m, "maxmemory", &u.to_string());
    // The replica's own limit is far below its usage: it must not evict.
    config_set(&mut r, "maxmemory", "1");
    assert_eq!(fill(&mut m, "b", 0..1500, None), 1500);
    assert!(evicted(&mut m) > 500);
    let digest =
        |c: &mut Connection| -> String { redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap() };
    assert!(
        wait_for(20, || dbsize(&mut r) == dbsize(&mut m)
            && digest(&mut r) == digest(&mut m)),
        "replica did not converge: {} vs {} keys",
        dbsize(&mut r),
        dbsize(&mut m)
    );
    assert_eq!(evicted(&mut r), 0);
}

/// An empty two-shard server is lean (issue 15: ≤ 2 MiB, as Redis's ~1 MiB),
/// so a small `maxmemory` set at start-up takes writes from the first key.
#[test]
fn small_maxmemory_from_start_takes_writes_then_evicts() {
    let s = Server::start(&[
        "--threads",
        "2",
        "--maxmemory",
        "20mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    let mut c = s.client();
    let empty = used(&mut c);
    assert!(empty <= 2 << 20, "empty server uses {empty} bytes");
    // 30 MB of values into a 20 MB limit: every write accepted, old keys evicted.
    assert_eq!(fill(&mut c, "k", 0..30_000, None), 30_000);
    assert!(evicted(&mut c) > 0);
    let u = used(&mut c);
    assert!(u <= 21 << 20, "used_memory {u} far above the 20 MB limit");
    assert!(dbsize(&mut c) > 10_000, "evicted far too much");

    // noeviction: writes succeed until the limit, then Redis's OOM error.
    let s = Server::start(&["--threads", "2", "--maxmemory", "20mb"]);
    let mut c = s.client();
    let (ok, errors) = fill_errors(&mut c, "k", 0..30_000, None);
    assert!(ok >= 10_000, "only {ok} writes before the first OOM");
    assert!(errors
        .iter()
        .any(|e| e.contains("command not allowed when used memory")));
}
