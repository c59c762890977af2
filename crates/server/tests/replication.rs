//! Replication end to end: real processes on loopback, broken on purpose, then
//! compared by DEBUG DIGEST of the whole dataset.

mod common;
mod proxy;

use common::{
    cut_master, digest, free_port, gated_master, info_field, rdb_payload, read_until, wait_for,
    Server,
};
use proxy::Proxy;
use std::time::{Duration, Instant};

/// Waits until the replica has applied everything the master emitted, then
/// asserts both hold the same dataset.
fn assert_in_sync(master: &Server, replica: &Server) {
    let mut m = master.client();
    let mut r = replica.client();
    let synced = wait_for(30, || {
        let mo = info_field(&mut m, "replication", "master_repl_offset");
        let ro = info_field(&mut r, "replication", "slave_repl_offset");
        mo.is_some() && mo == ro && digest(&mut m) == digest(&mut r)
    });
    assert!(
        synced,
        "replica did not converge: master offset {:?} digest {}, replica offset {:?} digest {}\n--- master log\n{}\n--- replica log\n{}",
        info_field(&mut m, "replication", "master_repl_offset"),
        digest(&mut m),
        info_field(&mut r, "replication", "slave_repl_offset"),
        digest(&mut r),
        master.log_text(),
        replica.log_text()
    );
}

/// A four-shard master: MSET, DEL and MGET over three or four shards run
/// as chained one-message transactions, from several clients at once. The
/// merged stream places each once, so a replica ends with the same data.
#[test]
fn four_shard_master_replicates_chained_multi_shard_commands() {
    let master = Server::start(&["--threads", "4", "--repl-diskless-sync-delay", "0"]);
    let replica = replica_of(master.port, &[]);
    let mut r = replica.client();
    assert!(
        wait_for(30, || info_field(
            &mut r,
            "replication",
            "master_link_status"
        )
        .as_deref()
            == Some("up")),
        "replica did not connect"
    );
    let mut writers = Vec::new();
    for t in 0..6 {
        let mut c = master.client();
        writers.push(std::thread::spawn(move || {
            for i in 0..300 {
                let ks: Vec<String> = (0..6)
                    .map(|j| format!("r{}", (t * 5 + i + j * 11) % 60))
                    .collect();
                let mut mset = redis::cmd("MSET");
                for k in &ks {
                    mset.arg(k).arg(format!("{t}-{i}"));
                }
                let _: () = mset.query(&mut c).unwrap();
                let _: i64 = redis::cmd("DEL").arg(&ks[..3]).query(&mut c).unwrap();
                let _: Vec<Option<String>> = redis::cmd("MGET").arg(&ks).query(&mut c).unwrap();
            }
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_in_sync(&master, &replica);
}

fn replica_of(master_port: u16, extra: &[&str]) -> Server {
    let p = master_port.to_string();
    let mut args = vec![
        "--threads",
        "2",
        "--replicaof",
        "127.0.0.1",
        &p,
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn link_up(s: &Server) -> bool {
    let mut c = s.client();
    info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
}

#[test]
fn seed_scenario_master_two_replicas_and_manual_failover() {
    let mut master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    let _: () = redis::cmd("MSET")
        .arg("x")
        .arg(1)
        .arg("y")
        .arg(2)
        .query(&mut m)
        .unwrap();
    let slave1 = replica_of(master.port, &[]);
    let slave2 = replica_of(master.port, &[]);
    assert!(wait_for(20, || info_field(
        &mut m,
        "replication",
        "connected_slaves"
    )
    .as_deref()
        == Some("2")));
    let info: String = redis::cmd("INFO").arg("replication").query(&mut m).unwrap();
    for field in [
        "role:master",
        "slave0:ip=127.0.0.1",
        "master_failover_state:no-failover",
        "master_replid:",
        "master_replid2:",
        "second_repl_offset:",
        "repl_backlog_active:1",
        "repl_backlog_size:1048576",
        "repl_backlog_first_byte_offset:",
        "repl_backlog_histlen:",
    ] {
        assert!(info.contains(field), "missing {field} in\n{info}");
    }
    assert!(wait_for(10, || slave1.logged("Full resync from master:")));
    assert!(wait_for(10, || master
        .logged("Synchronization with replica 127.0.0.1:")));

    // Write on the master, read on the replicas; replicas refuse writes.
    let _: () = redis::cmd("SET")
        .arg("name")
        .arg("huangjinjie")
        .query(&mut m)
        .unwrap();
    let mut s1 = slave1.client();
    let mut s2 = slave2.client();
    assert!(wait_for(10, || redis::cmd("GET")
        .arg("name")
        .query::<Option<String>>(&mut s1)
        .ok()
        .flatten()
        .is_some()));
    let err = redis::cmd("SET")
        .arg("name2")
        .arg("ddddd")
        .query::<()>(&mut s1)
        .unwrap_err();
    assert_eq!(err.code(), Some("READONLY"));
    assert_eq!(
        err.detail(),
        Some("You can't write against a read only replica.")
    );
    assert_in_sync(&master, &slave1);
    assert_in_sync(&master, &slave2);

    // Stop the master: replicas keep retrying.
    master.kill9();
    assert!(wait_for(10, || slave1
        .count("Connecting to MASTER 127.0.0.1")
        >= 3));
    assert!(wait_for(10, || slave1
        .logged("Unable to connect to MASTER: Connection refused")));

    // Manual failover: slave1 becomes master, slave2 follows it with a partial resync.
    let digest_before = digest(&mut s2);
    let _: () = redis::cmd("SLAVEOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut s1)
        .unwrap();
    assert!(wait_for(10, || slave1.logged("MASTER MODE enabled")));
    let _: () = redis::cmd("SLAVEOF")
        .arg("127.0.0.1")
        .arg(slave1.port)
        .query(&mut s2)
        .unwrap();
    assert!(wait_for(10, || link_up(&slave2)));
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut s2)
        .unwrap();
    assert!(
        info.contains(&format!("master_port:{}", slave1.port)),
        "{info}"
    );
    assert!(info.contains("master_link_status:up"), "{info}");
    assert!(wait_for(10, || slave2
        .logged("Successful partial resynchronization with master.")));
    assert_eq!(
        slave2.count("Full resync from master"),
        1,
        "slave2 must not full-sync again"
    );
    let s1_info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut s1)
        .unwrap();
    assert!(s1_info.contains("second_repl_offset:"), "{s1_info}");
    assert!(wait_for(10, || slave1
        .logged("Partial resynchronization request from 127.0.0.1:")));
    assert_eq!(digest(&mut s2), digest_before, "data intact");
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("failover")
        .query(&mut s1)
        .unwrap();
    assert_in_sync(&slave1, &slave2);
    let v: String = redis::cmd("GET").arg("after").query(&mut s2).unwrap();
    assert_eq!(v, "failover");
}

#[test]
fn replicas_converge_under_concurrent_writes_during_full_sync() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    // A base dataset so the snapshot takes several chunks.
    for i in 0..200 {
        let mut p = redis::pipe();
        for j in 0..100 {
            let k = i * 100 + j;
            p.cmd("SET").arg(format!("k:{k}")).arg(k).ignore();
            p.cmd("RPUSH").arg(format!("l:{}", k % 97)).arg(k).ignore();
            p.cmd("HSET")
                .arg(format!("h:{}", k % 89))
                .arg(k)
                .arg(k)
                .ignore();
            p.cmd("SADD").arg(format!("s:{}", k % 83)).arg(k).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
    }
    // Streams with a consumer group: deliveries replicate as XCLAIM.
    for x in 0..13 {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(format!("x:{x}"))
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut m)
            .unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut c = master.client();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = (i * 7919 + w) % 30000;
                let _: () = redis::pipe()
                    .cmd("SET")
                    .arg(format!("k:{k}"))
                    .arg(i)
                    .ignore()
                    .cmd("INCR")
                    .arg(format!("ctr:{w}"))
                    .ignore()
                    .cmd("LPUSH")
                    .arg(format!("l:{}", k % 97))
                    .arg(i)
                    .ignore()
                    .cmd("HSET")
                    .arg(format!("h:{}", k % 89))
                    .arg("f")
                    .arg(i)
                    .ignore()
                    .cmd("SREM")
                    .arg(format!("s:{}", k % 83))
                    .arg(k)
                    .ignore()
                    .cmd("MSET")
                    .arg(format!("a:{k}"))
                    .arg(i)
                    .arg(format!("b:{k}"))
                    .arg(i)
                    .ignore()
                    .cmd("DEL")
                    .arg(format!("a:{}", k / 2))
                    .arg(format!("b:{}", k / 3))
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(format!("k:{}", k / 5))
                    .arg(1000)
                    .ignore()
                    .cmd("XADD")
                    .arg(format!("x:{}", k % 13))
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(150)
                    .arg("*")
                    .arg("i")
                    .arg(i)
                    .ignore()
                    .cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg(format!("c{w}"))
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS")
                    .arg(format!("x:{}", (k + 1) % 13))
                    .arg(">")
                    .ignore()
                    .query(&mut c)
                    .unwrap();
                i += 1;
            }
        }));
    }
    let r1 = replica_of(master.port, &[]);
    let r2 = replica_of(master.port, &["--threads", "1"]);
    assert!(wait_for(30, || link_up(&r1) && link_up(&r2)));
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_in_sync(&master, &r1);
    assert_in_sync(&master, &r2);
    // The digest covers stream entries only; the groups' pending entries too.
    let pending = |s: &Server| -> Vec<redis::Value> {
        let mut c = s.client();
        (0..13)
            .map(|x| {
                redis::cmd("XPENDING")
                    .arg(format!("x:{x}"))
                    .arg("g")
                    .query(&mut c)
                    .unwrap()
            })
            .collect()
    };
    let want = pending(&master);
    let converged = wait_for(10, || pending(&r1) == want && pending(&r2) == want);
    assert!(
        converged,
        "pending entries differ:\nmaster {want:?}\nr1     {:?}\nr2     {:?}",
        pending(&r1),
        pending(&r2)
    );
}

/// Cross-shard MSET, MGET and DEL on a few hot keys from clients
/// on every executor: most run in one message to the other shard, many find
/// a key locked and fall back to ordered locking (an `Abort` in the log);
/// with three shards, commands spanning two other shards take the ordered
/// path beside them. The replica must apply them in one order the master
/// agrees with.
#[test]
fn hot_cross_shard_writes_with_fallbacks_replicate_in_one_order() {
    for threads in ["2", "3"] {
        hot_cross_shard_writes(threads);
    }
}

fn hot_cross_shard_writes(threads: &str) {
    let master = Server::start(&["--threads", threads, "--repl-diskless-sync-delay", "0"]);
    let replica = replica_of(master.port, &["--threads", threads]);
    assert!(wait_for(30, || link_up(&replica)));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let mut c = master.client();
        writers.push(std::thread::spawn(move || {
            for i in 0..400u64 {
                let a = format!("hot:{}", (i + w) % 5);
                let b = format!("hot:{}", (i * 3 + w) % 7 + 5);
                let third = format!("hot:{}", (i * 5 + w) % 11);
                let _: () = redis::pipe()
                    .cmd("MSET")
                    .arg(&a)
                    .arg(format!("{w}-{i}"))
                    .arg(&b)
                    .arg(format!("{w}-{i}"))
                    .ignore()
                    .cmd("MSET")
                    .arg(&third)
                    .arg(i)
                    .arg(&a)
                    .arg(i)
                    .arg(&b)
                    .arg(i)
                    .ignore()
                    .cmd("MGET")
                    .arg(&b)
                    .arg(&a)
                    .ignore()
                    .cmd("DEL")
                    .arg(&b)
                    .arg(format!("hot:{}", (i + 2 * w) % 12))
                    .ignore()
                    .query(&mut c)
                    .unwrap();
            }
        }));
    }
    let done = wait_for(60, || writers.iter().all(|w| w.is_finished()));
    assert!(done, "hot cross-shard load did not finish: deadlock?");
    for w in writers {
        w.join().unwrap();
    }
    assert_in_sync(&master, &replica);
}

#[test]
fn link_cut_within_backlog_resyncs_partially_and_beyond_it_fully() {
    let master = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "65536",
    ]);
    let proxy = Proxy::start(master.port);
    let replica = replica_of(proxy.port, &["--repl-timeout", "2"]);
    assert!(wait_for(20, || link_up(&replica)));
    let mut m = master.client();
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("cut")
        .query(&mut m)
        .unwrap();
    assert_in_sync(&master, &replica);

    // A silent network for longer than repl-timeout, little written meanwhile.
    proxy.blackhole();
    let _: () = redis::cmd("SET")
        .arg("during")
        .arg("cut")
        .query(&mut m)
        .unwrap();
    assert!(
        wait_for(15, || !link_up(&replica)),
        "replica did not notice the dead link"
    );
    proxy.forward();
    assert!(wait_for(20, || link_up(&replica)));
    assert!(wait_for(10, || replica
        .logged("Successful partial resynchronization with master.")));
    assert_eq!(replica.count("Full resync from master"), 1);
    assert_in_sync(&master, &replica);

    // Cut again and write far more than the 64 KB backlog: a full resync follows.
    proxy.cut();
    assert!(wait_for(15, || !link_up(&replica)));
    let big = "x".repeat(1000);
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(&big)
            .query(&mut m)
            .unwrap();
    }
    proxy.forward();
    assert!(wait_for(30, || replica.count("Full resync from master") == 2));
    assert!(wait_for(10, || master.logged("for lack of backlog")));
    assert_in_sync(&master, &replica);
}

/// A continued stream carries no new SELECT: after a partial resync the
/// replica must apply it in the db the stream had selected (as Redis's cached
/// master client keeps its db), not in db 0.
#[test]
fn partial_resync_goes_on_in_the_selected_db() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let replica = replica_of(master.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    let mut m = master.client();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut m).unwrap();
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut m).unwrap();
    assert_in_sync(&master, &replica);
    let mut r = replica.client();
    let _: () = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "master"])
        .query(&mut r)
        .unwrap();
    assert!(wait_for(20, || replica
        .logged("Successful partial resynchronization with master.")));
    assert!(wait_for(20, || link_up(&replica)));
    let _: () = redis::cmd("SET").arg("b").arg("2").query(&mut m).unwrap();
    assert_in_sync(&master, &replica);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut r).unwrap();
    let b: Option<String> = redis::cmd("GET").arg("b").query(&mut r).unwrap();
    assert_eq!(b.as_deref(), Some("2"));
    assert_eq!(replica.count("Full resync from master"), 1);
}

fn stat(s: &Server, field: &str) -> i64 {
    let mut c = s.client();
    info_field(&mut c, "stats", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// A saved RDB carries the replication id and offset (Redis's `repl-id`,
/// `repl-offset`, `repl-stream-db`): a replica restarted from its own dump
/// continues with a partial resync, in the db its master's stream had
/// selected, even with writes made while it was down.
#[test]
fn replica_restarted_from_its_dump_resyncs_partially() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let dir = common::TempDir::new("replica-restart");
    let mut replica = replica_of(master.port, &["--dir", dir.path()]);
    let mut m = master.client();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut m).unwrap();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut m)
            .unwrap();
    }
    assert_in_sync(&master, &replica);
    // From several connections: they land on different executors, and a
    // save must take its history from the replication executor wherever it runs.
    for _ in 0..4 {
        let _: () = redis::cmd("SAVE").query(&mut replica.client()).unwrap();
    }
    replica.kill9();
    let _: () = redis::cmd("SET")
        .arg("while-down")
        .arg("1")
        .query(&mut m)
        .unwrap();
    let replica = replica_of(master.port, &["--dir", dir.path()]);
    assert!(wait_for(20, || replica
        .logged("Successful partial resynchronization with master.")));
    assert_in_sync(&master, &replica);
    assert_eq!(stat(&master, "sync_full"), 1);
    assert_eq!(stat(&master, "sync_partial_ok"), 1);
    let mut r = replica.client();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut r).unwrap();
    let v: Option<String> = redis::cmd("GET").arg("while-down").query(&mut r).unwrap();
    assert_eq!(v.as_deref(), Some("1"));
}

/// A master restarted from its own dump keeps the saved id as
/// `master_replid2` and goes on from the saved offset, so its replica
/// continues with a partial resync instead of a full one.
#[test]
fn master_restarted_from_its_dump_keeps_its_replica_partial() {
    let port = free_port();
    let dir = common::TempDir::new("master-restart");
    let args = [
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--dir",
        dir.path(),
    ];
    let master = Server::start_on(port, &args);
    let replica = replica_of(port, &[]);
    let mut m = master.client();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut m)
            .unwrap();
    }
    assert_in_sync(&master, &replica);
    let old_id = info_field(&mut m, "replication", "master_replid").unwrap();
    for _ in 0..4 {
        let _: () = redis::cmd("SAVE").query(&mut master.client()).unwrap();
    }
    drop(m);
    drop(master); // killed
    assert!(wait_for(10, || !link_up(&replica)));
    let master = Server::start_on(port, &args);
    let mut m = master.client();
    assert_eq!(
        info_field(&mut m, "replication", "master_replid2").as_deref(),
        Some(old_id.as_str())
    );
    assert!(wait_for(20, || replica
        .logged("Successful partial resynchronization with master.")));
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("restart")
        .query(&mut m)
        .unwrap();
    assert_in_sync(&master, &replica);
    assert_eq!(stat(&master, "sync_full"), 0);
    assert_eq!(stat(&master, "sync_partial_ok"), 1);
    assert_eq!(replica.count("Full resync from master"), 1);
}

#[test]
fn master_killed_and_restarted_replica_follows_the_new_history() {
    let port = free_port();
    let mut master = Server::start_on(port, &["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let replica = replica_of(port, &[]);
    let mut m = master.client();
    let _: () = redis::cmd("SET").arg("k").arg("v1").query(&mut m).unwrap();
    assert_in_sync(&master, &replica);
    master.kill9();
    assert!(wait_for(10, || !link_up(&replica)));
    // Restarted without persistence: a new, empty history the replica must adopt.
    let master = Server::start_on(port, &["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    let _: () = redis::cmd("SET").arg("k").arg("v2").query(&mut m).unwrap();
    assert!(wait_for(20, || link_up(&replica)));
    assert_in_sync(&master, &replica);
    let mut r = replica.client();
    let v: String = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    assert_eq!(v, "v2");
}

#[test]
fn replica_killed_mid_full_sync_leaves_master_healthy() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    let val = "v".repeat(2000);
    for i in 0..50 {
        let mut p = redis::pipe();
        for j in 0..200 {
            p.cmd("SET").arg(format!("k:{i}:{j}")).arg(&val).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
    }
    let mut doomed = replica_of(master.port, &[]);
    assert!(wait_for(10, || master.logged("asks for synchronization")));
    doomed.kill9();
    // The master keeps serving and a new replica syncs fully.
    let _: () = redis::cmd("SET")
        .arg("still")
        .arg("alive")
        .query(&mut m)
        .unwrap();
    let replica = replica_of(master.port, &[]);
    // The dead replica's sync may still be running; generous for loaded machines.
    assert!(wait_for(90, || link_up(&replica)));
    assert_in_sync(&master, &replica);
}

#[test]
fn failover_to_a_replica_switches_roles_without_losing_writes() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let r1 = replica_of(master.port, &[]);
    let r2 = replica_of(master.port, &[]);
    assert!(wait_for(20, || link_up(&r1) && link_up(&r2)));
    let mut m = master.client();
    for i in 0..500 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut m)
            .unwrap();
    }
    let err = redis::cmd("FAILOVER")
        .arg("TO")
        .arg("127.0.0.1")
        .arg(1)
        .query::<()>(&mut m)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("FAILOVER target HOST and PORT is not a replica.")
    );
    let _: () = redis::cmd("FAILOVER")
        .arg("TO")
        .arg("127.0.0.1")
        .arg(r1.port)
        .query(&mut m)
        .unwrap();
    // The old master follows r1, having lost nothing.
    assert!(wait_for(20, || link_up(&master)));
    let mut c1 = r1.client();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c1).unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    assert!(wait_for(10, || r1
        .logged("MASTER MODE enabled (failover request from")));
    assert!(wait_for(10, || master
        .logged("Successful partial resynchronization with master.")));
    let n: i64 = redis::cmd("DBSIZE").query(&mut c1).unwrap();
    assert_eq!(n, 500);
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("failover")
        .query(&mut c1)
        .unwrap();
    assert_in_sync(&r1, &master);
    let err = redis::cmd("SET")
        .arg("x")
        .arg("y")
        .query::<()>(&mut m)
        .unwrap_err();
    assert_eq!(err.code(), Some("READONLY"));
    // r2 was disconnected by the old master and follows it (chained) or resyncs.
    assert!(wait_for(20, || link_up(&r2)));
    let mut c2 = r2.client();
    assert!(wait_for(20, || redis::cmd("GET")
        .arg("after")
        .query::<Option<String>>(&mut c2)
        .unwrap()
        .is_some()));
}

#[test]
fn client_list_shows_the_master_link_and_replicas() {
    let master = Server::start(&["--threads", "2"]);
    let replica = replica_of(master.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    let mut m = master.client();
    let replicas: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("replica")
        .query(&mut m)
        .unwrap();
    assert_eq!(replicas.lines().count(), 1, "{replicas}");
    assert!(
        replicas.contains(" flags=S ") && replicas.contains(" cmd=psync "),
        "{replicas}"
    );
    let mut r = replica.client();
    let links: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("master")
        .query(&mut r)
        .unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(
        links.contains(&format!("addr=127.0.0.1:{} ", master.port))
            && links.contains(" flags=M ")
            && links.contains(" user=(superuser) "),
        "{links}"
    );
    // Normal clients do not include the links.
    let all: String = redis::cmd("CLIENT").arg("LIST").query(&mut r).unwrap();
    let normal: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut r)
        .unwrap();
    assert_eq!(all.lines().count(), normal.lines().count() + 1);
}

/// A replica's `omem` in the master's CLIENT LIST is the stream queued for it:
/// it grows while the replica does not read, and drains when it reads again.
#[test]
fn client_list_shows_what_is_queued_for_a_stalled_replica() {
    let master = Server::start(&["--threads", "2"]);
    let replica = replica_of(master.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    let mut m = master.client();
    let omem = |m: &mut redis::Connection| -> u64 {
        let line: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("replica")
            .query(m)
            .unwrap();
        let field = line
            .split(' ')
            .find_map(|f| f.strip_prefix("omem="))
            .unwrap_or_else(|| panic!("no omem in {line}"));
        field.parse().unwrap()
    };
    assert_eq!(omem(&mut m), 0);
    let pid = replica.child.id() as i32;
    // SAFETY: signals to the child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // More than the kernel's socket buffers hold on both ends.
    let value = vec![b'v'; 256 * 1024];
    for i in 0..160 {
        let _: () = redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(&value[..])
            .query(&mut m)
            .unwrap();
    }
    let queued = wait_for(20, || omem(&mut m) > 4 << 20);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(queued, "omem stayed at {}", omem(&mut m));
    assert!(wait_for(30, || omem(&mut m) == 0), "omem {}", omem(&mut m));
    assert_in_sync(&master, &replica);
}

/// `repl-backlog-ttl`: a master left without replicas frees its backlog after
/// the ttl and starts a new history (new replid, no replid2), as Redis's
/// replicationCron does; the next replica full-syncs and gets a new backlog.
#[test]
fn backlog_is_freed_after_repl_backlog_ttl_without_replicas() {
    let master = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-ttl",
        "1",
    ]);
    let mut m = master.client();
    let _: () = redis::cmd("SET").arg("k").arg("v1").query(&mut m).unwrap();
    let mut replica = replica_of(master.port, &[]);
    assert!(wait_for(30, || link_up(&replica)));
    let field = |c: &mut redis::Connection, f: &str| info_field(c, "replication", f).unwrap();
    assert_eq!(field(&mut m, "repl_backlog_active"), "1");
    let first_id = field(&mut m, "master_replid");
    replica.kill9();
    assert!(
        wait_for(20, || field(&mut m, "repl_backlog_active") == "0"),
        "backlog still active without replicas"
    );
    assert!(
        master.wait_logged("Replication backlog freed after 1 seconds without connected replicas.")
    );
    assert_ne!(field(&mut m, "master_replid"), first_id);
    assert_eq!(
        field(&mut m, "master_replid2"),
        "0000000000000000000000000000000000000000"
    );
    // Writes go on without a backlog; a new replica gets them all.
    let _: () = redis::cmd("SET").arg("k").arg("v2").query(&mut m).unwrap();
    let replica = replica_of(master.port, &[]);
    assert!(wait_for(30, || link_up(&replica)));
    assert_eq!(field(&mut m, "repl_backlog_active"), "1");
    assert_in_sync(&master, &replica);
}

#[test]
fn old_sync_and_rdb_only_get_the_payload_without_fullresync() {
    let srv = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("foo").arg("1").query(&mut c).unwrap();
    // SYNC: (newline keepalives, then) `$<len>` and the RDB, no `+FULLRESYNC`;
    // then the command stream.
    let mut s = srv.raw();
    common::send(&mut s, &["SYNC"]);
    let got = read_until(&mut s, |b| b.windows(5).any(|w| w == b"REDIS"));
    let start = got.iter().position(|&b| b != b'\n').unwrap();
    assert_eq!(got[start], b'$', "{:?}", String::from_utf8_lossy(&got));
    // (The RDB's binary bytes may hold a '+': only the reply line matters.)
    assert!(
        !got.windows(11).any(|w| w == b"+FULLRESYNC"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let _: () = redis::cmd("SET").arg("bar").arg("2").query(&mut c).unwrap();
    let got = read_until(&mut s, |b| b.windows(3).any(|w| w == b"bar"));
    assert!(got.windows(3).any(|w| w == b"bar"));
    // REPLCONF rdb-only 1 (redis-cli --rdb): the RDB, then the link closes.
    let mut s = srv.raw();
    common::send(&mut s, &["REPLCONF", "rdb-only", "1"]);
    common::expect(&mut s, "+OK\r\n");
    common::send(&mut s, &["SYNC"]);
    let got = read_until(&mut s, |_| false);
    let start = got.iter().position(|&b| b != b'\n').unwrap();
    assert_eq!(got[start], b'$');
    let header_end = start + got[start..].windows(2).position(|w| w == b"\r\n").unwrap();
    let len: usize = std::str::from_utf8(&got[start + 1..header_end])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(got.len(), header_end + 2 + len, "nothing after the RDB");
    assert!(got[header_end + 2..].starts_with(b"REDIS"));
    assert!(got.windows(3).any(|w| w == b"foo"), "the keys are in it");
    // rdb-filter-only functions (redis-cli --functions-rdb): no functions
    // exist here, so an RDB without keys.
    let mut s = srv.raw();
    common::send(&mut s, &["REPLCONF", "rdb-filter-only", "functions"]);
    common::expect(&mut s, "+OK\r\n");
    common::send(&mut s, &["REPLCONF", "rdb-only", "1"]);
    common::expect(&mut s, "+OK\r\n");
    common::send(&mut s, &["SYNC"]);
    let got = read_until(&mut s, |_| false);
    assert!(got.starts_with(b"$"), "{:?}", String::from_utf8_lossy(&got));
    let header_end = got.windows(2).position(|w| w == b"\r\n").unwrap();
    assert!(got[header_end + 2..].starts_with(b"REDIS"));
    assert!(!got.windows(3).any(|w| w == b"foo"), "no keys");
}

#[test]
fn a_replica_asking_during_a_diskless_sync_joins_it() {
    let port = free_port();
    let master = Server::start_on(port, &["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    // ~30 MB of RDB: more than the master queues for a replica that does
    // not read (4 MB) plus what the sockets buffer, so the sync stays open.
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(250_000)
        .arg("key")
        .arg(100)
        .query(&mut m)
        .unwrap();
    // A first replica that asks for a diskless sync, then does not read.
    let mut slow = master.raw();
    common::send(&mut slow, &["REPLCONF", "capa", "eof", "capa", "psync2"]);
    common::expect(&mut slow, "+OK\r\n");
    common::send(&mut slow, &["PSYNC", "?", "-1"]);
    assert!(master.wait_logged("Background RDB transfer started"));
    let _: () = redis::cmd("SET")
        .arg("written")
        .arg("during the sync")
        .query(&mut m)
        .unwrap();
    let replica = replica_of(port, &[]);
    assert!(master.wait_logged("joins the diskless RDB transfer in progress"));
    // Now the first replica reads: the transfer goes on for both.
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 16];
        slow.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        while matches!(slow.read(&mut buf), Ok(n) if n > 0) {}
    });
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("the join")
        .query(&mut m)
        .unwrap();
    assert_in_sync(&master, &replica);
    assert_eq!(master.count("Starting BGSAVE for SYNC"), 1);
    let mut r = replica.client();
    let v: String = redis::cmd("GET").arg("written").query(&mut r).unwrap();
    assert_eq!(v, "during the sync");
    drop(master);
    reader.join().unwrap();
}

/// A dataset with every kind of value, values larger than a network read,
/// expiring keys, several dbs and a function library.
fn varied_dataset(m: &mut redis::Connection) {
    for i in 0..40 {
        let mut p = redis::pipe();
        for j in 0..250 {
            let k = i * 250 + j;
            p.cmd("SET").arg(format!("k:{k}")).arg(k).ignore();
            p.cmd("RPUSH").arg(format!("l:{}", k % 97)).arg(k).ignore();
            p.cmd("HSET")
                .arg(format!("h:{}", k % 89))
                .arg(k)
                .arg(k)
                .ignore();
            p.cmd("SADD").arg(format!("s:{}", k % 83)).arg(k).ignore();
            p.cmd("ZADD")
                .arg(format!("z:{}", k % 79))
                .arg(k)
                .arg(k)
                .ignore();
        }
        let _: () = p.query(m).unwrap();
    }
    for i in 0..20 {
        let big = format!("{i}").repeat(200_000);
        let _: () = redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(big)
            .arg("EX")
            .arg(10_000)
            .query(m)
            .unwrap();
    }
    let _: () = redis::cmd("XADD")
        .arg("x")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(m)
        .unwrap();
    let _: () = redis::pipe()
        .cmd("SELECT")
        .arg(5)
        .ignore()
        .cmd("SET")
        .arg("in5")
        .arg("v")
        .ignore()
        .cmd("SELECT")
        .arg(0)
        .ignore()
        .query(m)
        .unwrap();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=feedlib\nredis.register_function{function_name='f1', callback=function() return 1 end, flags={'no-writes'}}")
        .query(m)
        .unwrap();
}

#[test]
fn diskless_load_parses_the_payload_as_it_streams() {
    // Both transfer forms: `$EOF:<mark>` (diskless sync) and `$<len>` (disk).
    for diskless_sync in ["yes", "no"] {
        let master = Server::start(&[
            "--threads",
            "2",
            "--repl-diskless-sync",
            diskless_sync,
            "--repl-diskless-sync-delay",
            "0",
        ]);
        let mut m = master.client();
        varied_dataset(&mut m);
        let replica = replica_of(master.port, &["--repl-diskless-load", "on-empty-db"]);
        assert_in_sync(&master, &replica);
        assert!(
            replica.wait_logged("MASTER <-> REPLICA sync: Finished with success"),
            "{}",
            replica.log_text()
        );
        let form = if diskless_sync == "yes" {
            "receiving streamed RDB from master with EOF to parser"
        } else {
            "bytes from master to parser"
        };
        assert!(replica.wait_logged(form), "{}", replica.log_text());
        let mut r = replica.client();
        let f: i64 = redis::cmd("FCALL_RO")
            .arg("f1")
            .arg(0)
            .query(&mut r)
            .unwrap();
        assert_eq!(f, 1);
        let ttl: i64 = redis::cmd("TTL").arg("big:3").query(&mut r).unwrap();
        assert!(ttl > 9000, "{ttl}");
        // Writes after the sync reach the replica through the stream that
        // followed the payload.
        let _: () = redis::cmd("SET")
            .arg("after")
            .arg("1")
            .query(&mut m)
            .unwrap();
        assert_in_sync(&master, &replica);
    }
}

#[test]
fn diskless_load_on_empty_db_receives_whole_when_the_replica_has_keys() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    varied_dataset(&mut m);
    let replica = Server::start(&["--threads", "2", "--repl-diskless-load", "on-empty-db"]);
    let mut r = replica.client();
    let _: () = redis::cmd("SET")
        .arg("mine")
        .arg("1")
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut r)
        .unwrap();
    assert_in_sync(&master, &replica);
    assert!(replica.wait_logged("receiving streamed RDB from master with EOF to disk"));
    assert!(!replica.logged("to parser"));
}

#[test]
fn diskless_load_cut_mid_transfer_leaves_the_replica_empty() {
    let master = Server::start(&["--threads", "2"]);
    let mut m = master.client();
    varied_dataset(&mut m);
    let payload = rdb_payload(&master);
    let (port, fake) = cut_master(payload.clone(), payload.len() * 2 / 3);
    let replica = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-load",
        "on-empty-db",
        "--replicaof",
        "127.0.0.1",
        &port.to_string(),
    ]);
    assert!(
        replica.wait_logged("receiving streamed RDB from master with EOF to parser"),
        "{}",
        replica.log_text()
    );
    fake.join().unwrap();
    assert!(
        replica.wait_logged("Connection with master lost"),
        "{}",
        replica.log_text()
    );
    // The half-loaded keys are gone: the replica is as empty as it was.
    let mut r = replica.client();
    assert!(wait_for(10, || {
        redis::cmd("DBSIZE").query::<i64>(&mut r).ok() == Some(0)
    }));
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(n, 0, "{}", replica.log_text());
    // Pointed at the real master, it then syncs whole.
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut r)
        .unwrap();
    assert_in_sync(&master, &replica);
}

#[test]
fn diskless_load_swapdb_replaces_the_old_data_only_when_the_load_completes() {
    let master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    varied_dataset(&mut m);
    let payload = rdb_payload(&master);

    let replica = Server::start(&["--threads", "2", "--repl-diskless-load", "swapdb"]);
    let mut r = replica.client();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("mine:{i}"))
            .arg(i)
            .query(&mut r)
            .unwrap();
    }
    // A transfer cut part-way: the loaded half is discarded, the old data stays.
    let (port, fake) = cut_master(payload.clone(), payload.len() / 2);
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query(&mut r)
        .unwrap();
    fake.join().unwrap();
    assert!(
        replica.wait_logged("MASTER <-> REPLICA sync: Discarding temporary DB in background"),
        "{}",
        replica.log_text()
    );
    assert!(wait_for(10, || {
        redis::cmd("DBSIZE").query::<i64>(&mut r).ok() == Some(100)
    }));
    let v: String = redis::cmd("GET").arg("mine:7").query(&mut r).unwrap();
    assert_eq!(v, "7");
    // A complete transfer is swapped in: the replica then equals its master.
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut r)
        .unwrap();
    assert_in_sync(&master, &replica);
    assert!(replica.wait_logged("MASTER <-> REPLICA sync: Swapping active DB with loaded DB"));
    assert!(replica.wait_logged("receiving streamed RDB from master with EOF to parser"));
    let f: i64 = redis::cmd("FCALL_RO")
        .arg("f1")
        .arg(0)
        .query(&mut r)
        .unwrap();
    assert_eq!(f, 1);
    assert_eq!(
        info_field(&mut r, "persistence", "async_loading").as_deref(),
        Some("0")
    );
}

#[test]
fn replicaof_during_a_transfer_leaves_the_data_alone() {
    let master = Server::start(&["--threads", "2"]);
    let mut m = master.client();
    varied_dataset(&mut m);
    let payload = rdb_payload(&master);
    let (go, gate) = std::sync::mpsc::channel();
    let (port, fake) = gated_master(payload.clone(), payload.len() / 2, gate);
    // repl-diskless-load disabled: the payload is received whole before the
    // data is flushed, so the transfer can be abandoned.
    let replica = Server::start(&["--threads", "2"]);
    let mut r = replica.client();
    let _: () = redis::cmd("SET")
        .arg("mine")
        .arg("1")
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query(&mut r)
        .unwrap();
    assert!(
        replica.wait_logged("receiving streamed RDB from master with EOF to disk"),
        "{}",
        replica.log_text()
    );
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .unwrap();
    // The rest of the payload arrives: the replica drops it and the link.
    go.send(()).unwrap();
    assert!(fake.join().unwrap(), "the replica kept the old link open");
    let v: String = redis::cmd("GET").arg("mine").query(&mut r).unwrap();
    assert_eq!(v, "1");
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(n, 1, "{}", replica.log_text());
    assert!(
        !replica.logged("Flushing old data"),
        "{}",
        replica.log_text()
    );
}

#[test]
fn a_replica_over_its_output_buffer_limit_is_dropped_then_resyncs() {
    let master = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--client-output-buffer-limit",
        "replica 1mb 0 0",
    ]);
    let proxy = Proxy::start(master.port);
    let replica = replica_of(proxy.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    // The replica stops reading: once the socket buffers are full the
    // master's queue for it grows past the 1 MB hard limit.
    proxy.stall();
    let mut m = master.client();
    let value = "v".repeat(1000);
    let dropped = wait_for(30, || {
        let mut p = redis::pipe();
        for i in 0..1000 {
            p.cmd("SET").arg(format!("k{i}")).arg(&value).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
        master.logged("scheduled to be closed ASAP for overcoming of output buffer limits.")
    });
    assert!(
        dropped,
        "{}\n---\n{}",
        master.log_text(),
        replica.log_text()
    );
    assert!(
        master.wait_logged("Connection with replica"),
        "{}",
        master.log_text()
    );
    proxy.forward();
    assert_in_sync(&master, &replica);
}

/// Waits until the server process has exited on its own.
fn exited(s: &mut Server, secs: u64) -> bool {
    wait_for(secs, || s.child.try_wait().ok().flatten().is_some())
}

#[test]
fn shutdown_waits_for_lagging_replicas_as_redis_does() {
    use std::io::Read;
    // A healthy replica: the shutdown goes at once, and the replica has it all.
    let mut master = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let replica = replica_of(master.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    let mut m = master.client();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut m)
            .unwrap();
    }
    let before = digest(&mut m);
    let mut s = master.raw();
    common::send(&mut s, &["SHUTDOWN"]);
    assert!(exited(&mut master, 20), "{}", master.log_text());
    assert!(master.wait_logged("1 of 1 replicas are in sync when shutting down."));
    let mut r = replica.client();
    assert_eq!(digest(&mut r), before);

    // A replica that stops reading: writes pause, reads go on, SHUTDOWN
    // ABORT calls it off (the blocked SHUTDOWN gets Redis's error), and a
    // second SHUTDOWN goes after shutdown-timeout with the lag logged.
    let mut master = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--shutdown-timeout",
        "1",
    ]);
    let proxy = Proxy::start(master.port);
    let replica = replica_of(proxy.port, &[]);
    assert!(wait_for(20, || link_up(&replica)));
    proxy.stall();
    let mut m = master.client();
    let _: () = redis::cmd("SET")
        .arg("late")
        .arg("1")
        .query(&mut m)
        .unwrap();
    let mut s = master.raw();
    common::send(&mut s, &["SHUTDOWN"]);
    assert!(master.wait_logged("Waiting for replicas before shutting down."));
    let v: String = redis::cmd("GET").arg("late").query(&mut m).unwrap();
    assert_eq!(v, "1");
    let mut w = master.raw();
    common::send(&mut w, &["SET", "paused", "1"]);
    w.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        w.read(&mut byte).is_err(),
        "a write ran during the shutdown wait"
    );
    let ok: String = redis::cmd("SHUTDOWN").arg("ABORT").query(&mut m).unwrap();
    assert_eq!(ok, "OK");
    common::expect(&mut s, "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    w.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    common::expect(&mut w, "+OK\r\n");
    assert!(master.wait_logged("Shutdown manually aborted."));
    let e = redis::cmd("SHUTDOWN")
        .arg("ABORT")
        .query::<String>(&mut m)
        .unwrap_err();
    assert!(e.to_string().contains("No shutdown in progress"), "{e}");
    // SHUTDOWN is `no-multi`: it never waits inside a transaction.
    let mut t = master.raw();
    common::send(&mut t, &["MULTI"]);
    common::expect(&mut t, "+OK\r\n");
    common::send(&mut t, &["SHUTDOWN"]);
    common::expect(&mut t, "-ERR Command not allowed inside a transaction\r\n");
    let mut s = master.raw();
    common::send(&mut s, &["SHUTDOWN"]);
    assert!(exited(&mut master, 20), "{}", master.log_text());
    assert!(
        master.wait_logged("Lagging replica")
            && master.wait_logged("0 of 1 replicas are in sync when shutting down."),
        "{}",
        master.log_text()
    );
}

/// A master that answers the handshake, sends `payload` as a diskless transfer,
/// and once `go` opens streams SETs as fast as the socket takes them until
/// `stop` is set: a stream that is always ready on the replica's side.
fn flooding_master(
    payload: Vec<u8>,
    go: std::sync::mpsc::Receiver<()>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        assert!(
            common::answer_until_psync(&mut s),
            "the replica hung up during the handshake"
        );
        let mark = "m".repeat(40);
        let mut out = common::fullresync_header(&mark);
        out.extend_from_slice(&payload);
        out.extend_from_slice(mark.as_bytes());
        s.write_all(&out).unwrap();
        if go.recv().is_err() {
            return;
        }
        // 1 MiB of SETs over 8192 keys, written again and again.
        let mut chunk = Vec::new();
        let value = "v".repeat(100);
        let mut i = 0;
        while chunk.len() < 1 << 20 {
            chunk.extend_from_slice(&common::cmd(&["SET", &format!("key:{}", i % 8192), &value]));
            i += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    (port, t)
}

#[test]
fn a_replica_applying_a_flat_out_stream_still_answers_its_clients() {
    // Before the master link yielded between rounds, a `--threads 1` replica
    // whose master's data was always ready answered no client until the
    // stream paused (INFO waited for a minute under redis-benchmark).
    let empty = Server::start(&[]);
    let payload = rdb_payload(&empty);
    drop(empty);
    let (go, gate) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (port, master) = flooding_master(payload, gate, stop.clone());
    let replica = Server::start(&["--threads", "1"]);
    let mut c = replica.client();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query(&mut c)
        .unwrap();
    assert!(
        wait_for(20, || {
            info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
        }),
        "the replica never finished its sync with the fake master"
    );
    go.send(()).unwrap();
    let offset = |c: &mut redis::Connection| -> u64 {
        info_field(c, "replication", "master_repl_offset")
            .unwrap()
            .parse()
            .unwrap()
    };
    // Let the flood build up, then time PINGs for two seconds while it runs.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let before = offset(&mut c);
    let mut worst = t0.elapsed();
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let t0 = Instant::now();
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
        worst = worst.max(t0.elapsed());
    }
    let after = offset(&mut c);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    master.join().unwrap();
    assert!(
        worst < Duration::from_secs(1),
        "a request waited {worst:?} while the replica applied its master's stream"
    );
    assert!(
        after > before + (1 << 20),
        "the stream was not flowing during the check: {before} -> {after}"
    );
}
