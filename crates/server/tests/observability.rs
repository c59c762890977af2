//! SLOWLOG, LATENCY, MONITOR, INFO latencystats/errorstats and CLIENT LIST
//! against the real binary with two shards. `foo` (slot 12182) lives on
//! shard 0 and `bar` (slot 5061) on shard 1, so every test touches both.

mod common;

use common::{cmd, wait_for, Server};
use redis::Value;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// Sends one command on a raw socket and reads a one-line reply (a raw socket
/// sends nothing else, unlike client libraries that announce themselves).
fn call(s: &mut std::net::TcpStream, parts: &[&str]) -> String {
    s.write_all(&cmd(parts)).unwrap();
    let mut rd = BufReader::new(s.try_clone().unwrap());
    let mut l = String::new();
    rd.read_line(&mut l).unwrap();
    l
}

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).unwrap()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn slowlog_merges_every_executor_with_unique_ids() {
    let srv = Server::start(&["--threads", "2"]);
    let mut admin = srv.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("0")
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut admin)
        .unwrap();
    // Several connections (the kernel spreads them over both executors), each
    // writing keys of both shards (run inline on one, batched to the other).
    for i in 0..8 {
        let mut c = srv.client();
        let _: () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("c{i}"))
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("SET").arg("foo").arg(i).query(&mut c).unwrap();
        let _: () = redis::cmd("SET").arg("bar").arg(i).query(&mut c).unwrap();
    }
    let all: Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut admin)
        .unwrap();
    let entries = items(&all);
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut admin).unwrap();
    assert_eq!(
        len as usize,
        entries.len() + 1,
        "SLOWLOG GET itself is logged"
    );
    let ids: Vec<i64> = entries.iter().map(|e| int(&items(e)[0])).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(ids, sorted, "ids must be unique and newest first");
    let sets: Vec<&Value> = entries
        .iter()
        .filter(|e| text(&items(&items(e)[3])[0]) == "SET")
        .collect();
    assert_eq!(sets.len(), 16);
    for e in &sets {
        let f = items(e);
        let key = text(&items(&f[3])[1]);
        assert!(key == "foo" || key == "bar");
        assert!(text(&f[4]).starts_with("127.0.0.1:"));
        assert!(text(&f[5]).starts_with('c'), "client name recorded");
    }
    // The newest entry comes first; COUNT limits.
    let two: Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(2)
        .query(&mut admin)
        .unwrap();
    assert_eq!(items(&two).len(), 2);
    // GET -1 and LEN were logged after the entries read above.
    assert_eq!(int(&items(&items(&two)[0])[0]), ids[0] + 2);
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut admin)
        .unwrap();
    // RESET itself is logged afterwards, as in Redis.
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut admin).unwrap();
    assert!(len <= 1, "{len}");
}

#[test]
fn slowlog_trims_and_redacts() {
    let srv = Server::start(&["--threads", "2", "--slowlog-log-slower-than", "0"]);
    let mut c = srv.client();
    let big = "x".repeat(200);
    let _: () = redis::cmd("SET")
        .arg("bar")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("foo");
    for i in 0..40 {
        rpush.arg(i);
    }
    let _: i64 = rpush.query(&mut c).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("AUTH").arg("secret").query(&mut c);
    let got: Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(3)
        .query(&mut c)
        .unwrap();
    let e = items(&got);
    let auth: Vec<String> = items(&items(&e[0])[3]).iter().map(text).collect();
    assert_eq!(auth, vec!["AUTH", "(redacted)"]);
    let push: Vec<String> = items(&items(&e[1])[3]).iter().map(text).collect();
    assert_eq!(push.len(), 32);
    assert_eq!(push[31], "... (11 more arguments)");
    let set: Vec<String> = items(&items(&e[2])[3]).iter().map(text).collect();
    assert_eq!(set[2], format!("{}... (72 more bytes)", &big[..128]));
    let err = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-2)
        .query::<Value>(&mut c)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("count should be greater than or equal to -1")
    );
}

#[test]
fn debug_sleep_shows_in_slowlog_and_latency_monitor() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    for (k, v) in [
        ("slowlog-log-slower-than", "100000"),
        ("latency-monitor-threshold", "50"),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("SET").arg("foo").arg("1").query(&mut c).unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.2")
        .query(&mut c)
        .unwrap();
    let got: Value = redis::cmd("SLOWLOG").arg("GET").query(&mut c).unwrap();
    // SET (fast) is not there; under load another command might be, so find DEBUG.
    let f = items(&got)
        .iter()
        .map(items)
        .find(|f| text(&items(&f[3])[0]) == "DEBUG")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(items(&got)
        .iter()
        .all(|e| text(&items(&items(e)[3])[0]) != "SET"));
    assert!(int(&f[2]) >= 200_000);
    let args: Vec<String> = items(&f[3]).iter().map(text).collect();
    assert_eq!(args, vec!["DEBUG", "SLEEP", "0.2"]);

    // Under load other commands may cross 50 ms too: look for DEBUG SLEEP's sample.
    let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    let row = items(&latest)
        .iter()
        .map(items)
        .find(|r| text(&r[0]) == "command")
        .unwrap_or_else(|| panic!("{latest:?}"));
    assert!(int(&row[3]) >= 200, "{latest:?}");
    let hist: Value = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("command")
        .query(&mut c)
        .unwrap();
    assert!(
        items(&hist).iter().any(|s| int(&items(s)[1]) >= 200),
        "{hist:?}"
    );
    let graph: String = redis::cmd("LATENCY")
        .arg("GRAPH")
        .arg("command")
        .query(&mut c)
        .unwrap();
    assert!(graph.starts_with("command - high "), "{graph}");
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut c).unwrap();
    assert!(
        doctor.starts_with("Dave, I have observed latency spikes"),
        "{doctor}"
    );
    assert!(doctor.contains(". command: "), "{doctor}");
    let n: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert!(n >= 1);
    let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert!(items(&latest).is_empty());
}

#[test]
fn monitor_sees_every_executor_with_redis_formatting() {
    let srv = Server::start(&["--threads", "2"]);
    let mut mon = srv.raw();
    mon.write_all(&cmd(&["MONITOR"])).unwrap();
    let mut rd = BufReader::new(mon.try_clone().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    // Clients (spread over both executors by the kernel) on keys of both shards.
    let mut clients: Vec<std::net::TcpStream> = (0..6).map(|_| srv.raw()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let key = if i % 2 == 0 { "foo" } else { "bar" };
        let v = format!("a \"b\"\n\u{e9}{i}");
        assert_eq!(call(c, &["SET", key, &v]), "+OK\r\n");
    }
    assert_eq!(call(&mut clients[0], &["SELECT", "3"]), "+OK\r\n");
    call(&mut clients[1], &["AUTH", "pw"]);
    call(&mut clients[1], &["CONFIG", "SET", "hz", "10"]); // admin: hidden
    call(&mut clients[1], &["NOPE"]); // rejected: hidden
    assert_eq!(call(&mut clients[1], &["PING"]), "+PONG\r\n");
    let mut seen = Vec::new();
    while seen.len() < 9 {
        let mut l = String::new();
        rd.read_line(&mut l).unwrap();
        seen.push(l);
    }
    for (i, l) in seen[..6].iter().enumerate() {
        let key = if i % 2 == 0 { "foo" } else { "bar" };
        let (ts, rest) = l[1..].split_once(' ').unwrap();
        assert!(l.starts_with('+') && l.ends_with("\r\n"));
        let (secs, micros) = ts.split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{l}");
        assert!(rest.starts_with("[0 127.0.0.1:"), "{l}");
        assert!(
            rest.ends_with(&format!(
                "] \"SET\" \"{key}\" \"a \\\"b\\\"\\n\\xc3\\xa9{i}\"\r\n"
            )),
            "{l}"
        );
    }
    assert!(seen[6].contains("[3 127.0.0.1:") && seen[6].ends_with("\"SELECT\" \"3\"\r\n"));
    assert!(
        seen[7].ends_with("\"AUTH\" \"(redacted)\"\r\n"),
        "{}",
        seen[7]
    );
    assert!(seen[8].ends_with("\"PING\"\r\n"), "{}", seen[8]);
    // The monitor shows as flags=O, and RESET ends monitoring.
    let mut c = srv.client();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(list.contains("flags=O"), "{list}");
    assert!(list.contains("cmd=client|list"), "{list}");
}

#[test]
fn latencystats_errorstats_and_resetstat() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    for _ in 0..5 {
        let _: () = redis::cmd("SET").arg("foo").arg("v").query(&mut c).unwrap();
        let _: () = redis::cmd("SET").arg("bar").arg("v").query(&mut c).unwrap();
    }
    let lat = info(&mut c, "latencystats");
    let set = lat
        .lines()
        .find(|l| l.starts_with("latency_percentiles_usec_set:"))
        .unwrap_or_else(|| panic!("{lat}"));
    let fields: Vec<&str> = set.split(':').nth(1).unwrap().split(',').collect();
    assert_eq!(fields.len(), 3);
    for (f, p) in fields.iter().zip(["p50=", "p99=", "p99.9="]) {
        assert!(f.starts_with(p), "{set}");
        let v: f64 = f[p.len()..].parse().unwrap();
        assert!(v > 0.0);
    }
    let hist: Value = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .arg("set")
        .query(&mut c)
        .unwrap();
    let h = items(&hist);
    assert_eq!(text(&h[0]), "set");
    assert_eq!(text(&items(&h[1])[0]), "calls");
    assert_eq!(int(&items(&h[1])[1]), 10);

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-tracking-info-percentiles")
        .arg("99.9 50")
        .query(&mut c)
        .unwrap();
    let lat = info(&mut c, "latencystats");
    assert!(lat.contains("latency_percentiles_usec_set:p99.9="), "{lat}");

    // Errors: a WRONGTYPE on each shard, an unknown command, an arity error
    // (after a reset: the client library's CLIENT SETINFO counted as errors).
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert!(wait_for(5, || !info(&mut c, "errorstats").contains("errorstat_")));
    let mut raw = srv.raw();
    assert_eq!(call(&mut raw, &["LPUSH", "l{foo}", "x"]), ":1\r\n");
    assert_eq!(call(&mut raw, &["LPUSH", "l{bar}", "x"]), ":1\r\n");
    assert!(call(&mut raw, &["GET", "l{foo}"]).starts_with("-WRONGTYPE "));
    assert!(call(&mut raw, &["GET", "l{bar}"]).starts_with("-WRONGTYPE "));
    assert!(call(&mut raw, &["NOPE"]).starts_with("-ERR unknown command"));
    assert!(call(&mut raw, &["GET"]).starts_with("-ERR wrong number"));
    // An error inside EXEC's reply counts too, as in Redis.
    assert_eq!(call(&mut raw, &["MULTI"]), "+OK\r\n");
    assert_eq!(call(&mut raw, &["GET", "l{foo}"]), "+QUEUED\r\n");
    raw.write_all(&cmd(&["EXEC"])).unwrap();
    let mut rd = BufReader::new(raw.try_clone().unwrap());
    let mut l = String::new();
    rd.read_line(&mut l).unwrap();
    assert_eq!(l, "*1\r\n");
    l.clear();
    rd.read_line(&mut l).unwrap();
    assert!(l.starts_with("-WRONGTYPE"));
    let es = info(&mut c, "errorstats");
    assert!(es.contains("errorstat_WRONGTYPE:count=3\r\n"), "{es}");
    assert!(es.contains("errorstat_ERR:count=2\r\n"), "{es}");
    let stats = info(&mut c, "stats");
    assert!(stats.contains("total_error_replies:5\r\n"), "{stats}");
    let cs = info(&mut c, "commandstats");
    let get = cs.lines().find(|l| l.starts_with("cmdstat_get:")).unwrap();
    assert!(get.ends_with("rejected_calls=1,failed_calls=3"), "{get}");

    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert!(wait_for(5, || {
        let es = info(&mut c, "errorstats");
        let lat = info(&mut c, "latencystats");
        !es.contains("errorstat_") && !lat.contains("usec_set:")
    }));
}

#[test]
fn client_list_types() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let mut sub = srv.raw();
    sub.write_all(&cmd(&["SUBSCRIBE", "ch"])).unwrap();
    let mut rd = BufReader::new(sub.try_clone().unwrap());
    let mut l = String::new();
    while !l.starts_with(':') {
        l.clear();
        rd.read_line(&mut l).unwrap();
    }
    let normal: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut c)
        .unwrap();
    assert_eq!(normal.lines().count(), 1, "{normal}");
    let pubsub: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    assert!(
        pubsub.contains("sub=1") && pubsub.contains("cmd=subscribe"),
        "{pubsub}"
    );
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains(" cmd=client|info "), "{info}");
    let _ = Duration::from_secs(0);
}

#[test]
fn slowlog_logs_a_transactions_commands_not_exec() {
    let srv = Server::start(&["--threads", "2", "--slowlog-log-slower-than", "0"]);
    let mut raw = srv.raw();
    assert_eq!(call(&mut raw, &["MULTI"]), "+OK\r\n");
    assert_eq!(call(&mut raw, &["SET", "foo", "1"]), "+QUEUED\r\n");
    assert_eq!(call(&mut raw, &["SET", "bar", "2"]), "+QUEUED\r\n");
    raw.write_all(&cmd(&["EXEC"])).unwrap();
    let mut c = srv.client();
    assert!(wait_for(5, || {
        redis::cmd("GET")
            .arg("bar")
            .query::<Option<String>>(&mut c)
            .unwrap()
            == Some("2".into())
    }));
    let got: Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut c)
        .unwrap();
    let firsts: Vec<String> = items(&got)
        .iter()
        .map(|e| {
            let a: Vec<String> = items(&items(e)[3]).iter().map(text).collect();
            a.join(" ")
        })
        .filter(|a| !a.starts_with("CLIENT") && !a.starts_with("GET"))
        .collect();
    assert_eq!(firsts, vec!["SET bar 2", "SET foo 1", "MULTI"]);
}
