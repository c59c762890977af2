//! What stock Redis Sentinel reads from and sends to a monitored server, each
//! checked against redis-server 7.0.15's replies: `replica-serve-stale-data no`
//! (MASTERDOWN, and Sentinel's promotion transaction still running), the INFO
//! fields Sentinel parses, and the CLIENT KILL types its promotion sends. The
//! whole failover with three stock sentinels is `.ci/checks/37-sentinel.sh`.

mod common;

use common::{expect, gated_master, info_field, rdb_payload, send, wait_for, Server};
use std::io::Read;

const MASTERDOWN: &str =
    "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";

/// One reply line, without its CRLF.
fn read_line(s: &mut std::net::TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned()
}

/// A replica whose master never answers: a listener this test holds and never
/// accepts on (the link stays in its handshake; a closed port could be taken
/// by another test's server).
fn stale_replica(extra: &[&str]) -> (Server, std::net::TcpListener) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let mut args = vec!["--threads", "2", "--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(extra);
    (Server::start(&args), silent)
}

#[test]
fn stale_replica_answers_masterdown_to_data_commands_only() {
    let (r, _silent) = stale_replica(&["--replica-serve-stale-data", "no"]);
    let mut s = r.raw();
    // Commands without the `stale` flag (PING included, as in Redis 7.0).
    for c in [
        &["GET", "k"][..],
        &["PING"],
        &["DBSIZE"],
        &["SCAN", "0"],
        &["EXISTS", "a", "b"],
    ] {
        send(&mut s, c);
        expect(&mut s, MASTERDOWN);
    }
    // A write is refused as a write first, as Redis checks READONLY before staleness.
    send(&mut s, &["SET", "k", "v"]);
    expect(
        &mut s,
        "-READONLY You can't write against a read only replica.\r\n",
    );
    // What Sentinel and operators need keeps working.
    send(&mut s, &["ECHO", "x"]);
    expect(&mut s, "$1\r\nx\r\n");
    send(&mut s, &["CLIENT", "SETNAME", "sentinel-1-cmd"]);
    expect(&mut s, "+OK\r\n");
    send(&mut s, &["PUBLISH", "__sentinel__:hello", "x"]);
    expect(&mut s, ":0\r\n");
    send(&mut s, &["CONFIG", "GET", "replica-serve-stale-data"]);
    expect(
        &mut s,
        "*2\r\n$24\r\nreplica-serve-stale-data\r\n$2\r\nno\r\n",
    );
    let mut c = r.client();
    assert_eq!(
        info_field(&mut c, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    // Inside MULTI the refusal flags the transaction.
    send(&mut s, &["MULTI"]);
    expect(&mut s, "+OK\r\n");
    send(&mut s, &["GET", "k"]);
    expect(&mut s, MASTERDOWN);
    send(&mut s, &["EXEC"]);
    expect(
        &mut s,
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    // Back to serving stale data.
    send(
        &mut s,
        &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
    );
    expect(&mut s, "+OK\r\n");
    send(&mut s, &["GET", "k"]);
    expect(&mut s, "$-1\r\n");
}

#[test]
fn sentinel_promotion_runs_on_a_stale_replica() {
    let (r, _silent) = stale_replica(&["--replica-serve-stale-data", "no"]);
    let mut s = r.raw();
    // Sentinel's promotion of a replica whose master died, verbatim.
    for (c, want) in [
        (&["MULTI"][..], "+OK\r\n"),
        (&["SLAVEOF", "NO", "ONE"], "+QUEUED\r\n"),
        (&["CLIENT", "KILL", "TYPE", "normal"], "+QUEUED\r\n"),
        (&["CLIENT", "KILL", "TYPE", "pubsub"], "+QUEUED\r\n"),
        (&["EXEC"], "*3\r\n+OK\r\n:0\r\n:0\r\n"),
        (&["GET", "k"], "$-1\r\n"),
        (&["PING"], "+PONG\r\n"),
    ] {
        send(&mut s, c);
        expect(&mut s, want);
    }
}

#[test]
fn info_fields_sentinel_reads() {
    let m = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let port = m.port.to_string();
    let r = Server::start(&[
        "--threads",
        "2",
        "--replicaof",
        "127.0.0.1",
        &port,
        "--replica-announce-ip",
        "10.9.8.7",
        "--replica-announce-port",
        "6390",
        "--replica-priority",
        "0",
        "--replica-announced",
        "no",
    ]);
    let mut mc = m.client();
    let mut rc = r.client();
    assert!(wait_for(30, || info_field(
        &mut rc,
        "replication",
        "master_link_status"
    )
    .as_deref()
        == Some("up")));
    // The master lists the replica under its announced address.
    assert!(wait_for(30, || {
        info_field(&mut mc, "replication", "slave0")
            .is_some_and(|l| l.starts_with("ip=10.9.8.7,port=6390,state=online,"))
    }));
    assert_eq!(
        info_field(&mut rc, "replication", "slave_priority").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&mut rc, "replication", "replica_announced").as_deref(),
        Some("0")
    );
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "replica-announced", "yes"])
        .query(&mut rc)
        .unwrap();
    assert_eq!(
        info_field(&mut rc, "replication", "replica_announced").as_deref(),
        Some("1")
    );
    // min_slaves_good_slaves follows connected_slaves, only while min-replicas-to-write is on.
    assert_eq!(
        info_field(&mut mc, "replication", "min_slaves_good_slaves"),
        None
    );
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "min-replicas-to-write", "1"])
        .query(&mut mc)
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut mc)
        .unwrap();
    assert!(
        info.contains("connected_slaves:1\r\nmin_slaves_good_slaves:1\r\nslave0:"),
        "{info}"
    );
    // run_id is 40 hex characters, as Sentinel checks.
    let run_id = info_field(&mut mc, "server", "run_id").unwrap();
    assert!(run_id.len() == 40 && run_id.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn client_kill_types_sentinel_sends_spare_the_caller() {
    let m = Server::start(&["--threads", "2"]);
    let mut sub = m.raw();
    send(&mut sub, &["SUBSCRIBE", "__sentinel__:hello"]);
    expect(
        &mut sub,
        "*3\r\n$9\r\nsubscribe\r\n$18\r\n__sentinel__:hello\r\n:1\r\n",
    );
    let _other = m.client();
    let mut s = m.raw();
    let mut c = m.client();
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    // Two other normal clients (the caller is skipped), then the subscriber.
    send(&mut s, &["CLIENT", "KILL", "TYPE", "normal"]);
    expect(&mut s, ":2\r\n");
    send(&mut s, &["CLIENT", "KILL", "TYPE", "pubsub"]);
    expect(&mut s, ":1\r\n");
    send(&mut s, &["PING"]);
    expect(&mut s, "+PONG\r\n");
}

#[test]
fn replica_answers_loading_while_it_loads_the_masters_rdb() {
    let m = Server::start(&["--threads", "2"]);
    let mut c = m.client();
    let value = "x".repeat(64);
    for b in 0..20 {
        let mut mset = redis::cmd("MSET");
        for j in 0..2000 {
            mset.arg(format!("k{b}:{j}")).arg(&value);
        }
        let _: () = mset.query(&mut c).unwrap();
    }
    // A master that stops half-way through the payload until told to go on:
    // the replica, parsing as it receives (on-empty-db), is loading all that
    // time, so -LOADING is certain to be seen rather than sampled.
    let payload = rdb_payload(&m);
    let (go, gate) = std::sync::mpsc::channel();
    let (port, fake) = gated_master(payload.clone(), payload.len() / 2, gate);
    let port = port.to_string();
    let r = Server::start(&[
        "--threads",
        "2",
        "--repl-diskless-load",
        "on-empty-db",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let mut s = r.raw();
    assert!(wait_for(20, || {
        send(&mut s, &["PING"]);
        read_line(&mut s) == "-LOADING Redis is loading the dataset in memory"
    }));
    let mut info = r.client();
    assert_eq!(
        info_field(&mut info, "persistence", "loading").as_deref(),
        Some("1")
    );
    // Commands flagged `loading` still run.
    send(&mut s, &["CONFIG", "GET", "maxmemory"]);
    expect(&mut s, "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    go.send(()).unwrap();
    assert!(wait_for(20, || {
        send(&mut s, &["PING"]);
        read_line(&mut s) == "+PONG"
    }));
    let n: i64 = redis::cmd("DBSIZE").query(&mut info).unwrap();
    assert_eq!(n, 40_000);
    assert_eq!(
        info_field(&mut info, "persistence", "loading").as_deref(),
        Some("0")
    );
    // The fake master has no stream to give: the replica then drops it.
    drop(r);
    let _ = fake.join();
}

/// Sentinel skips replicas whose link has been down too long, reading
/// `master_link_down_since_seconds`: -1 before any link (Redis's "down since
/// ever"), then the time since an established link was lost, kept when the
/// replica is re-pointed while down.
#[test]
fn master_link_down_since_seconds_as_redis_counts_it() {
    let (r, _silent) = stale_replica(&[]);
    let mut c = r.client();
    let down = |c: &mut redis::Connection| {
        info_field(c, "replication", "master_link_down_since_seconds")
            .and_then(|v| v.parse::<i64>().ok())
    };
    assert_eq!(down(&mut c), Some(-1));
    let mut m = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let port = m.port.to_string();
    let _: () = redis::cmd("REPLICAOF")
        .arg(&["127.0.0.1", &port])
        .query(&mut c)
        .unwrap();
    assert!(wait_for(30, || info_field(
        &mut c,
        "replication",
        "master_link_status"
    )
    .as_deref()
        == Some("up")));
    assert_eq!(down(&mut c), None);
    m.kill9();
    assert!(wait_for(30, || down(&mut c).is_some_and(|s| s >= 2)));
    // Re-pointed while down: the count goes on.
    let silent2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port2 = silent2.local_addr().unwrap().port().to_string();
    let _: () = redis::cmd("REPLICAOF")
        .arg(&["127.0.0.1", &port2])
        .query(&mut c)
        .unwrap();
    assert!(down(&mut c).is_some_and(|s| s >= 2));
    // A master turned replica starts from "never".
    let _: () = redis::cmd("REPLICAOF")
        .arg(&["NO", "ONE"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg(&["127.0.0.1", &port2])
        .query(&mut c)
        .unwrap();
    assert_eq!(down(&mut c), Some(-1));
}
