//! Replication in Redis's own failure scenarios: role changes with blocked
//! clients, promotions inside MULTI, links killed from the replica side,
//! min-replicas-to-write, the handshake states, and writable replicas.
//! Each test reproduces the scenario first and compares `DEBUG DIGEST`.

mod common;

use common::{digest, expect, info_field, send, wait_for, Server};
use std::io::Read;

fn stat(s: &Server, field: &str) -> i64 {
    let mut c = s.client();
    info_field(&mut c, "stats", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// Waits until `replica` applied everything `master` emitted and both hold
/// the same dataset.
fn assert_in_sync(master: &Server, replica: &Server) {
    let mut m = master.client();
    let mut r = replica.client();
    let synced = wait_for(30, || {
        let mo = info_field(&mut m, "replication", "master_repl_offset");
        let ro = info_field(&mut r, "replication", "slave_repl_offset");
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
            && mo.is_some()
            && mo == ro
            && digest(&mut m) == digest(&mut r)
    });
    if !synced {
        let keys = ["x", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
        let mv: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut m).unwrap();
        let rv: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut r).unwrap();
        eprintln!("master {mv:?}\nreplica {rv:?}");
    }
    assert!(
        synced,
        "replica did not converge: master offset {:?} digest {}, replica offset {:?} digest {}",
        info_field(&mut m, "replication", "master_repl_offset"),
        digest(&mut m),
        info_field(&mut r, "replication", "slave_repl_offset"),
        digest(&mut r)
    );
}

fn master() -> Server {
    Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"])
}

fn blocked_clients(s: &Server) -> i64 {
    let mut c = s.client();
    info_field(&mut c, "clients", "blocked_clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

const UNBLOCKED: &str = "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";

/// Reads the reply, then asserts the server closed the connection.
fn expect_then_closed(s: &mut std::net::TcpStream, want: &str) {
    expect(s, want);
    let mut b = [0u8; 16];
    assert!(
        matches!(s.read(&mut b), Ok(0) | Err(_)),
        "connection left open"
    );
}

#[test]
fn blocked_clients_are_unblocked_when_the_master_becomes_a_replica() {
    let a = master();
    let b = master();
    let mut bc = b.client();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "s", "g", "$", "MKSTREAM"])
        .query(&mut bc)
        .unwrap();
    // Keys on both shards, a stream group, and a WAIT with no replica.
    let mut blpop = b.raw();
    send(&mut blpop, &["BLPOP", "foo", "0"]);
    let mut brpop = b.raw();
    send(&mut brpop, &["BRPOP", "bar", "other", "0"]);
    let mut xrg = b.raw();
    send(
        &mut xrg,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let mut wait = b.raw();
    send(&mut wait, &["WAIT", "1", "0"]);
    // WAIT counts as a blocked client, as in Redis.
    assert!(wait_for(10, || blocked_clients(&b) == 4));
    let port = a.port.to_string();
    let _: () = redis::cmd("SLAVEOF")
        .arg("127.0.0.1")
        .arg(&port)
        .query(&mut bc)
        .unwrap();
    expect_then_closed(&mut blpop, UNBLOCKED);
    expect_then_closed(&mut brpop, UNBLOCKED);
    expect_then_closed(&mut xrg, UNBLOCKED);
    expect_then_closed(&mut wait, UNBLOCKED);
    let mut ac = a.client();
    let _: () = redis::cmd("RPUSH")
        .arg(&["foo", "a", "b", "c"])
        .query(&mut ac)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&["bar", "x"])
        .query(&mut ac)
        .unwrap();
    assert_in_sync(&a, &b);
    let len: i64 = redis::cmd("LLEN").arg("foo").query(&mut bc).unwrap();
    assert_eq!(len, 3);
    assert_eq!(blocked_clients(&b), 0);
}

#[test]
fn replicaof_runs_inside_multi() {
    let a = master();
    let b = master();
    let mut bc = b.client();
    let port = a.port.to_string();
    let (r1, r2): (String, String) = redis::pipe()
        .atomic()
        .cmd("CLIENT")
        .arg(&["PAUSE", "1000", "WRITE"])
        .cmd("SLAVEOF")
        .arg("127.0.0.1")
        .arg(&port)
        .query(&mut bc)
        .unwrap();
    assert_eq!((r1.as_str(), r2.as_str()), ("OK", "OK"));
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut bc).unwrap();
    let mut ac = a.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut ac).unwrap();
    assert_in_sync(&a, &b);
    // Promotion as Sentinel sends it, minus CONFIG REWRITE (no config file).
    let (r1, _r2, _r3): (String, i64, i64) = redis::pipe()
        .atomic()
        .cmd("REPLICAOF")
        .arg(&["NO", "ONE"])
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal"])
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query(&mut bc)
        .unwrap();
    assert_eq!(r1, "OK");
    assert_eq!(
        info_field(&mut bc, "replication", "role").as_deref(),
        Some("master")
    );
    let _: () = redis::cmd("SET").arg("k2").arg("v").query(&mut bc).unwrap();
}

/// A background writer that INCRs keys on every shard until dropped.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            let mut n = 0u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let mut p = redis::pipe();
                for k in 0..8 {
                    p.cmd("INCR").arg(format!("counter:{k}")).ignore();
                }
                // Errors (READONLY after a role change) end the load.
                if p.query::<()>(&mut c).is_err() {
                    break;
                }
                n += 8;
            }
            n
        });
        Load {
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

fn link_up(s: &Server) -> bool {
    let mut c = s.client();
    info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
}

#[test]
fn killing_the_master_link_from_the_replica_resyncs_partially() {
    for (diskless, load) in [
        ("yes", "disabled"),
        ("no", "on-empty-db"),
        ("yes", "swapdb"),
    ] {
        let m = Server::start(&[
            "--threads",
            "2",
            "--repl-diskless-sync-delay",
            "0",
            "--repl-diskless-sync",
            diskless,
            // The load outruns the default 1 MB during the 2 s stall below.
            "--repl-backlog-size",
            "256mb",
        ]);
        let port = m.port.to_string();
        let r = Server::start(&[
            "--threads",
            "2",
            "--repl-diskless-load",
            load,
            "--replicaof",
            "127.0.0.1",
            &port,
        ]);
        assert!(wait_for(20, || link_up(&r)));
        let load = Load::start(m.port);
        let mut rc = r.client();
        let master_addr = format!("127.0.0.1:{}", m.port);
        // The old form names the master's address.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let ok: String = redis::cmd("CLIENT")
            .arg("KILL")
            .arg(&master_addr)
            .query(&mut rc)
            .unwrap();
        assert_eq!(ok, "OK");
        assert!(wait_for(20, || stat(&m, "sync_partial_ok") == 1));
        assert!(wait_for(20, || link_up(&r)));
        let n: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "master"])
            .query(&mut rc)
            .unwrap();
        assert_eq!(n, 1);
        assert!(wait_for(20, || stat(&m, "sync_partial_ok") == 2));
        assert!(wait_for(20, || link_up(&r)));
        // As Redis's own test does: the kill and a stall in one transaction.
        let _: () = redis::pipe()
            .atomic()
            .cmd("CLIENT")
            .arg(&["KILL", "TYPE", "master"])
            .ignore()
            .cmd("DEBUG")
            .arg(&["SLEEP", "2"])
            .ignore()
            .query(&mut rc)
            .unwrap();
        assert!(
            wait_for(20, || stat(&m, "sync_partial_ok") == 3),
            "diskless={diskless}: sync_partial_ok {} sync_full {}",
            stat(&m, "sync_partial_ok"),
            stat(&m, "sync_full")
        );
        assert!(wait_for(20, || link_up(&r)));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(load.stop() > 0);
        assert_in_sync(&m, &r);
        assert_eq!(stat(&m, "sync_full"), 1, "diskless={diskless}");
        assert_eq!(stat(&m, "sync_partial_ok"), 3, "diskless={diskless}");
    }
}

#[test]
fn min_replicas_to_write_counts_a_replica_at_once() {
    let m = master();
    let port = m.port.to_string();
    let r = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(20, || link_up(&r)));
    let mut mc = m.client();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "min-replicas-to-write", "1"])
        .query(&mut mc)
        .unwrap();
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut mc).unwrap();
    // Two required, one connected: refused with Redis's error.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "min-replicas-to-write", "2"])
        .query(&mut mc)
        .unwrap();
    let err = redis::cmd("SET")
        .arg("a")
        .arg("2")
        .query::<()>(&mut mc)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOREPLICAS"));
    // Ignored on a (writable) replica, as in Redis.
    let mut rc = r.client();
    let _: () = redis::cmd("CONFIG")
        .arg(&[
            "SET",
            "min-replicas-to-write",
            "3",
            "replica-read-only",
            "no",
        ])
        .query(&mut rc)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("local")
        .arg("1")
        .query(&mut rc)
        .unwrap();
}

#[test]
fn diskless_sync_starts_when_max_replicas_are_waiting() {
    // A 30 s delay that max-replicas 2 cuts short once both replicas wait:
    // they share one snapshot.
    let m = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "30",
        "--repl-diskless-sync-max-replicas",
        "2",
    ]);
    let mut mc = m.client();
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2", "c", "3"])
        .query(&mut mc)
        .unwrap();
    let port = m.port.to_string();
    let r1 = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(10, || m.logged("asks for synchronization")));
    // One waiting replica of two: the delay still runs.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!link_up(&r1));
    let r2 = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(10, || link_up(&r1) && link_up(&r2)));
    assert_eq!(m.count("Starting BGSAVE for SYNC"), 1);
    assert_in_sync(&m, &r1);
    assert_in_sync(&m, &r2);
}

fn role(s: &Server) -> (String, i64) {
    let mut c = s.client();
    let v: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).unwrap();
    let state = match &v[3] {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("ROLE state {other:?}"),
    };
    let offset = match &v[4] {
        redis::Value::Int(n) => *n,
        other => panic!("ROLE offset {other:?}"),
    };
    (state, offset)
}

#[test]
fn role_shows_the_handshake_and_a_silent_master_times_out() {
    // A "master" that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(12);
        while std::time::Instant::now() < until {
            if let Ok((s, _)) = silent.accept() {
                held.push(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        held.len()
    });
    let r = Server::start(&["--repl-timeout", "1", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(20, || role(&r) == ("handshake".into(), -1)));
    assert!(wait_for(20, || r.logged("Timeout connecting to the MASTER...")));
    assert!(wait_for(20, || r.count("Connecting to MASTER") >= 2));
    assert!(accepted.join().unwrap() >= 2);
    // Nobody listens: the link waits to reconnect.
    assert!(wait_for(20, || role(&r).0 == "connect"));
    // A real master: connected, with its offset.
    let m = master();
    let mut rc = r.client();
    let mport = m.port.to_string();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(&mport)
        .query(&mut rc)
        .unwrap();
    assert!(wait_for(20, || role(&r).0 == "connected"));
    assert!(role(&r).1 >= 0);
}

#[test]
fn sentinel_promotion_in_multi_rewrites_the_config_file() {
    let m = master();
    let dir = std::env::temp_dir().join(format!("shardis-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("replica.conf");
    std::fs::write(
        &conf,
        format!(
            "# written by hand\nthreads 2\nreplicaof 127.0.0.1 {}\n# keep me\nhz 10\n",
            m.port
        ),
    )
    .unwrap();
    let dir_s = dir.to_string_lossy().into_owned();
    let r = Server::start_with_conf(conf.to_str().unwrap(), &["--dir", &dir_s]);
    assert!(wait_for(20, || link_up(&r)));
    let mut rc = r.client();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "hz", "20"])
        .query(&mut rc)
        .unwrap();
    // Exactly what Sentinel sends to promote a replica.
    let replies: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("SLAVEOF")
        .arg(&["NO", "ONE"])
        .cmd("CONFIG")
        .arg("REWRITE")
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal"])
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query(&mut rc)
        .unwrap();
    assert_eq!(replies.len(), 4);
    assert_eq!(
        info_field(&mut rc, "replication", "role").as_deref(),
        Some("master")
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# written by hand\nthreads 2\n"), "{text}");
    assert!(text.contains("# keep me\nhz 20\n"), "{text}");
    assert!(!text.contains("replicaof"), "{text}");
    assert!(text.contains(&format!("dir \"{dir_s}\"")), "{text}");
    // Re-pointed at the master: the rewrite names it again.
    let port = m.port.to_string();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(&port)
        .query(&mut rc)
        .unwrap();
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut rc).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains(&format!("replicaof 127.0.0.1 {port}")),
        "{text}"
    );
    drop(r);
    // The rewritten file starts a replica of the same master.
    let r = Server::start_with_conf(conf.to_str().unwrap(), &[]);
    assert!(wait_for(20, || link_up(&r)));
    let mut rc = r.client();
    assert_eq!(info_field(&mut rc, "server", "hz").as_deref(), Some("20"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_writable_replica_expires_the_keys_its_clients_gave_a_ttl() {
    let m = master();
    let port = m.port.to_string();
    let r = Server::start(&[
        "--threads",
        "2",
        "--replica-read-only",
        "no",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    assert!(wait_for(20, || link_up(&r)));
    let mut rc = r.client();
    // Keys on both shards, with every way of giving a TTL.
    let mut p = redis::pipe();
    for i in 0..20 {
        p.cmd("SET")
            .arg(format!("local:{i}"))
            .arg("v")
            .arg("PX")
            .arg(100)
            .ignore();
    }
    p.cmd("SET").arg("later").arg("v").ignore();
    p.cmd("PEXPIRE").arg("later").arg(100).ignore();
    p.cmd("SET").arg("kept").arg("v").ignore();
    let _: () = p.query(&mut rc).unwrap();
    let dbsize = |c: &mut redis::Connection| -> i64 { redis::cmd("DBSIZE").query(c).unwrap() };
    assert_eq!(dbsize(&mut rc), 22);
    assert!(wait_for(10, || dbsize(&mut rc) == 1));
    let kept: Option<String> = redis::cmd("GET").arg("kept").query(&mut rc).unwrap();
    assert_eq!(kept.as_deref(), Some("v"));
    // The master's own TTL keys are still the master's to expire.
    let mut mc = m.client();
    let _: () = redis::cmd("SET")
        .arg(&["from-master", "v", "PX", "100000"])
        .query(&mut mc)
        .unwrap();
    assert!(wait_for(10, || dbsize(&mut rc) == 2));
}

fn signal(s: &Server, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(s.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

#[test]
fn failover_to_a_lagging_replica_under_load_loses_no_acknowledged_write() {
    let m = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "256mb",
    ]);
    let port = m.port.to_string();
    let lagging = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    let other = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(20, || link_up(&lagging) && link_up(&other)));
    // The load: pipelined INCRs over keys on both shards; `x` counts the
    // acknowledged rounds.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let load = {
        let (stop, acked, mport) = (stop.clone(), acked.clone(), m.port);
        std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{mport}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut p = redis::pipe();
                for k in 0..8 {
                    p.cmd("INCR").arg(format!("k{k}")).ignore();
                }
                p.cmd("INCR").arg("x");
                match p.query::<(i64,)>(&mut c) {
                    Ok((x,)) => acked.store(x, std::sync::atomic::Ordering::SeqCst),
                    // READONLY once the roles switched: the load is over.
                    Err(_) => break,
                }
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&lagging, "STOP");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    signal(&lagging, "CONT");
    let mut mc = m.client();
    let lport = lagging.port.to_string();
    let ok: String = redis::cmd("FAILOVER")
        .arg(&["TO", "127.0.0.1", &lport, "TIMEOUT", "20000"])
        .query(&mut mc)
        .unwrap();
    assert_eq!(ok, "OK");
    assert!(wait_for(30, || {
        info_field(&mut mc, "replication", "role").as_deref() == Some("slave")
            && info_field(&mut mc, "replication", "master_failover_state").as_deref()
                == Some("no-failover")
    }));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    let mut oc = other.client();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(&lport)
        .query(&mut oc)
        .unwrap();
    for (name, s) in [
        ("old master", &m),
        ("new master", &lagging),
        ("other", &other),
    ] {
        if std::env::var("SHARDIS_TEST_LOGS").is_ok() {
            for l in s.log.lock().unwrap().iter() {
                eprintln!("{name}: {l}");
            }
        }
    }
    assert_in_sync(&lagging, &m);
    assert_in_sync(&lagging, &other);
    let mut lc = lagging.client();
    let x: i64 = redis::cmd("GET").arg("x").query(&mut lc).unwrap();
    let last = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        x >= last,
        "acknowledged x={last} but the new master has {x}"
    );
    // Both old nodes continued with partial resyncs.
    assert_eq!(stat(&lagging, "sync_full"), 0);
    assert_eq!(stat(&lagging, "sync_partial_ok"), 2);
}

#[test]
fn failover_timeout_and_abort_return_to_no_failover() {
    let m = master();
    let port = m.port.to_string();
    let r = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(20, || link_up(&r)));
    let mut mc = m.client();
    let state = |c: &mut redis::Connection| info_field(c, "replication", "master_failover_state");
    // A stopped replica never acknowledges: TIMEOUT aborts.
    signal(&r, "STOP");
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut mc).unwrap();
    let rport = r.port.to_string();
    let _: () = redis::cmd("FAILOVER")
        .arg(&["TO", "127.0.0.1", &rport, "TIMEOUT", "300"])
        .query(&mut mc)
        .unwrap();
    assert!(wait_for(10, || m
        .logged("aborted: Replica never caught up before timeout")));
    assert!(wait_for(10, || state(&mut mc).as_deref() == Some("no-failover")));
    let _: () = redis::cmd("SET").arg("b").arg("1").query(&mut mc).unwrap();
    // ABORT while waiting.
    let _: () = redis::cmd("FAILOVER").query(&mut mc).unwrap();
    assert_eq!(state(&mut mc).as_deref(), Some("waiting-for-sync"));
    let _: () = redis::cmd("FAILOVER").arg("ABORT").query(&mut mc).unwrap();
    assert!(wait_for(10, || state(&mut mc).as_deref() == Some("no-failover")));
    assert!(wait_for(10, || m.logged("aborted: Failover manually aborted")));
    let _: () = redis::cmd("SET").arg("c").arg("1").query(&mut mc).unwrap();
    // FORCE fails over when the timeout passes, with Redis's log line.
    let _: () = redis::cmd("FAILOVER")
        .arg(&["TO", "127.0.0.1", &rport, "FORCE", "TIMEOUT", "300"])
        .query(&mut mc)
        .unwrap();
    assert!(wait_for(10, || m.logged(&format!(
        "FAILOVER to 127.0.0.1:{rport} time out exceeded, failing over."
    ))));
    signal(&r, "CONT");
    assert!(wait_for(20, || state(&mut mc).as_deref() == Some("no-failover")));
}
