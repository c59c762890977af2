//! Randomized topology changes under write load, as Redis's own psync2 test
//! does: five servers, one master, the others replicas or replicas of
//! replicas; every round a random server is promoted and the others are
//! re-pointed at random already-placed servers, while a client runs
//! `INCR x` on whichever server is master. Afterwards every server must hold
//! the same data, and after the initial full syncs every resync must have
//! been partial. Seeded; `SHARDIS_CHAOS_SEEDS=a,b,c` runs other seeds.

mod common;

use common::{info_field, wait_for, Server};
use std::time::{Duration, Instant};

fn field_i64(c: &mut redis::Connection, section: &str, field: &str) -> i64 {
    info_field(c, section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// xorshift64*: a tiny deterministic generator for the topology.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

const NODES: usize = 5;

/// `x` on a server; `None` while it cannot answer (`-LOADING` during a
/// replica's full sync, as Redis answers).
fn x_of(c: &mut redis::Connection) -> Option<i64> {
    redis::cmd("GET")
        .arg("x")
        .query::<Option<i64>>(c)
        .ok()
        .map(|v| v.unwrap_or(0))
}

/// One run of Redis's psync2 scenario: `cycles` new layouts, each followed
/// by a write load with replication links killed at random.
fn run_seed(seed: u64, cycles: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let servers: Vec<Server> = (0..NODES)
        .map(|_| {
            Server::start(&[
                "--threads",
                "2",
                "--repl-diskless-sync-delay",
                "0",
                "--repl-backlog-size",
                "64mb",
            ])
        })
        .collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let mut c: Vec<redis::Connection> = servers.iter().map(|s| s.client()).collect();
    let mut counter = 0i64;
    let mut master = 0;
    let dump = || {
        for (i, s) in servers.iter().enumerate() {
            for l in s.log.lock().unwrap().iter().rev().take(25).rev() {
                eprintln!("node {i} ({}): {l}", s.port);
            }
        }
    };
    let converge = |c: &mut [redis::Connection], counter: i64, what: &str| {
        for (j, conn) in c.iter_mut().enumerate() {
            if !wait_for(30, || x_of(conn) == Some(counter)) {
                dump();
            }
            assert!(
                x_of(conn) == Some(counter),
                "seed {seed}: node {j} has x = {:?} after {what}, want {counter}",
                x_of(conn)
            );
        }
    };
    for cycle in 0..cycles {
        // 1) A new master (a failover).
        master = rng.below(NODES);
        let _: () = redis::cmd("SLAVEOF")
            .arg(&["NO", "ONE"])
            .query(&mut c[master])
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg(&["SET", "repl-ping-replica-period", "1"])
            .query(&mut c[master])
            .unwrap();
        // 2) Every other server replicates from a random placed one.
        let mut used = vec![master];
        while used.len() < NODES {
            let next = loop {
                let n = rng.below(NODES);
                if !used.contains(&n) {
                    break n;
                }
            };
            let upstream = used[rng.below(used.len())];
            let _: () = redis::cmd("SLAVEOF")
                .arg("127.0.0.1")
                .arg(ports[upstream])
                .query(&mut c[next])
                .unwrap();
            used.push(next);
        }
        // 3) One write reaches everybody.
        let _: i64 = redis::cmd("INCR").arg("x").query(&mut c[master]).unwrap();
        counter += 1;
        converge(&mut c, counter, &format!("cycle {cycle}'s layout"));
        // 4) Load while replication links are killed at random.
        let until = Instant::now() + Duration::from_millis(800);
        let mut next_kill = Instant::now() + Duration::from_millis(rng.below(300) as u64);
        while Instant::now() < until {
            let _: i64 = redis::cmd("INCR").arg("x").query(&mut c[master]).unwrap();
            counter += 1;
            if Instant::now() >= next_kill {
                next_kill = Instant::now() + Duration::from_millis(rng.below(300) as u64);
                let victim = rng.below(NODES);
                if victim != master {
                    let _: i64 = redis::cmd("CLIENT")
                        .arg(&["KILL", "TYPE", "master"])
                        .query(&mut c[victim])
                        .unwrap();
                }
            }
        }
        // 5) Everybody converges, at the master's offset.
        converge(&mut c, counter, &format!("cycle {cycle}'s load"));
        let moff = field_i64(&mut c[master], "replication", "master_repl_offset");
        for (j, conn) in c.iter_mut().enumerate() {
            assert!(
                wait_for(30, || field_i64(conn, "replication", "master_repl_offset")
                    >= moff),
                "seed {seed}: node {j} stuck behind offset {moff}"
            );
        }
        // 6) Put the old master down so it generates no more stream before
        // the next switch (as Redis's test does: otherwise its PINGs give
        // some replicas more history and a full sync is legitimately needed).
        if cycle + 1 < cycles {
            let _: () = redis::cmd("SLAVEOF")
                .arg(&["127.0.0.1", "0"])
                .query(&mut c[master])
                .unwrap();
        }
    }
    let digest = |c: &mut redis::Connection| -> String {
        redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
    };
    let want = digest(&mut c[master]);
    for (j, conn) in c.iter_mut().enumerate() {
        assert!(
            wait_for(30, || digest(conn) == want),
            "seed {seed}: node {j} digest differs from the master's"
        );
    }
    let full: i64 = c
        .iter_mut()
        .map(|conn| field_i64(conn, "stats", "sync_full"))
        .sum();
    if full != (NODES - 1) as i64 {
        for (i, s) in servers.iter().enumerate() {
            for l in s.log.lock().unwrap().iter() {
                if l.contains("not accepted") || l.contains("Full resync") {
                    eprintln!("node {i} ({}): {l}", s.port);
                }
            }
        }
    }
    assert_eq!(
        full,
        (NODES - 1) as i64,
        "seed {seed}: full syncs beyond the initial ones"
    );
}

#[test]
fn topology_shuffles_under_incr_load_keep_every_server_equal() {
    let seeds: Vec<u64> = match std::env::var("SHARDIS_CHAOS_SEEDS") {
        Ok(s) => s.split(',').filter_map(|v| v.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    };
    for seed in seeds {
        run_seed(seed, 6);
    }
}
