//! Keyspace notifications (`notify-keyspace-events`): the messages a
//! subscriber receives, on any core, for writes and expiry on any core.
//! The full per-command comparison with redis-server is
//! `tests/differential/notify.py` (`.ci/checks/22-notify.sh`).

mod common;

use common::{expect, send, Server};

/// A `pmessage` push as RESP2 bytes.
fn pmessage(pattern: &str, channel: &str, payload: &str) -> String {
    format!(
        "*4\r\n$8\r\npmessage\r\n${}\r\n{pattern}\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        pattern.len(),
        channel.len(),
        payload.len()
    )
}

fn psubscribe(s: &mut std::net::TcpStream, pattern: &str) {
    send(s, &["PSUBSCRIBE", pattern]);
    expect(
        s,
        &format!(
            "*3\r\n$10\r\npsubscribe\r\n${}\r\n{pattern}\r\n:1\r\n",
            pattern.len()
        ),
    );
}

#[test]
fn writes_on_every_core_reach_a_subscriber_in_order() {
    // Set at start: parsed from the command line like redis.conf.
    let srv = Server::start(&["--threads", "2", "--notify-keyspace-events", "KEA"]);
    let mut sub = srv.raw();
    psubscribe(&mut sub, "__key*@0__:*");
    // Keys k0..k7 land on both shards; each write is made from a fresh
    // connection, so both cores run commands too.
    for i in 0..8 {
        let key = format!("k{i}");
        let mut c = srv.client();
        let _: () = redis::cmd("SET").arg(&key).arg("v").query(&mut c).unwrap();
        let _: i64 = redis::cmd("LPUSH")
            .arg(format!("l{i}"))
            .arg("x")
            .query(&mut c)
            .unwrap();
        let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
        let l = format!("l{i}");
        let mut want = String::new();
        for (k, ev) in [(&key, "set"), (&l, "lpush"), (&key, "del")] {
            want += &pmessage("__key*@0__:*", &format!("__keyspace@0__:{k}"), ev);
            want += &pmessage("__key*@0__:*", &format!("__keyevent@0__:{ev}"), k);
        }
        expect(&mut sub, &want);
    }
}

#[test]
fn expired_keys_are_announced_from_both_cores() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "Ex"])
        .query(&mut c)
        .unwrap();
    let mut sub = srv.raw();
    psubscribe(&mut sub, "__keyevent@*__:expired");
    // One key per shard ({a} and {b} hash to different shards of two): the
    // first is left to the active expire cycle, the second is read soon
    // after its time (lazy expiry, unless the cycle got there first: both
    // announce it the same way).
    let _: () = redis::cmd("SET")
        .arg(&["x{a}", "v", "PX", "30"])
        .query(&mut c)
        .unwrap();
    expect(
        &mut sub,
        &pmessage("__keyevent@*__:expired", "__keyevent@0__:expired", "x{a}"),
    );
    let _: () = redis::cmd("SET")
        .arg(&["y{b}", "v", "PX", "30"])
        .query(&mut c)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let v: Option<String> = redis::cmd("GET").arg("y{b}").query(&mut c).unwrap();
    assert_eq!(v, None);
    expect(
        &mut sub,
        &pmessage("__keyevent@*__:expired", "__keyevent@0__:expired", "y{b}"),
    );
}

#[test]
fn nothing_is_published_while_off_and_config_get_is_canonical() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let mut sub = srv.raw();
    psubscribe(&mut sub, "__key*__:*");
    for k in ["a", "b", "c", "d"] {
        let _: () = redis::cmd("SET").arg(&[k, "v"]).query(&mut c).unwrap();
    }
    // Classes without K or E publish nothing either.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "g$"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg(&["a", "w"]).query(&mut c).unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg(&["__keyspace@0__:marker", "m"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    // The marker is the first message: no event came before it.
    expect(
        &mut sub,
        &pmessage("__key*__:*", "__keyspace@0__:marker", "m"),
    );
    for (set, shown) in [
        ("KEA", "AKE"),
        ("Elg$", "g$lE"),
        ("AnKEm", "AKEm"),
        ("", ""),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg(&["SET", "notify-keyspace-events", set])
            .query(&mut c)
            .unwrap();
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg(&["GET", "notify-keyspace-events"])
            .query(&mut c)
            .unwrap();
        assert_eq!(
            got,
            vec!["notify-keyspace-events".to_string(), shown.to_string()]
        );
    }
    let e = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "KEx!"])
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        "{e}"
    );
}

#[test]
fn evicted_keys_are_announced() {
    let srv = Server::start(&["--threads", "2", "--notify-keyspace-events", "Ee"]);
    let mut c = srv.client();
    let mut sub = srv.raw();
    psubscribe(&mut sub, "__keyevent@0__:evicted");
    let value = vec![b'x'; 1000];
    for i in 0..2000 {
        let _: () = redis::cmd("SET")
            .arg(format!("e{i}"))
            .arg(&value)
            .query(&mut c)
            .unwrap();
    }
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .to_string();
    let used: u64 = used.parse().unwrap();
    for (k, v) in [
        ("maxmemory-policy", "allkeys-random".to_string()),
        ("maxmemory", (used - 500_000).to_string()),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(&mut c)
            .unwrap();
    }
    // Writes now evict: the first evicted key is announced (which key is random).
    let _: () = redis::cmd("SET")
        .arg("new")
        .arg(&value)
        .query(&mut c)
        .unwrap();
    let head = "*4\r\n$8\r\npmessage\r\n$22\r\n__keyevent@0__:evicted\r\n$22\r\n__keyevent@0__:evicted\r\n$";
    expect(&mut sub, head);
}

#[test]
fn restore_announces_new_then_restore() {
    let srv = Server::start(&["--threads", "2", "--notify-keyspace-events", "KEA"]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg(&["src", "v"]).query(&mut c).unwrap();
    let dump: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut c).unwrap();
    let mut sub = srv.raw();
    psubscribe(&mut sub, "__keyspace@0__:dst");
    let _: () = redis::cmd("RESTORE")
        .arg("dst")
        .arg(0)
        .arg(&dump)
        .query(&mut c)
        .unwrap();
    // REPLACE deletes then adds, as Redis's dbDelete + dbAdd: no `del`.
    let _: () = redis::cmd("RESTORE")
        .arg("dst")
        .arg(0)
        .arg(&dump)
        .arg("REPLACE")
        .query(&mut c)
        .unwrap();
    let p = "__keyspace@0__:dst";
    let mut want = String::new();
    for _ in 0..2 {
        // `new` is not in A: only `restore` (class g).
        want += &pmessage(p, p, "restore");
    }
    expect(&mut sub, &want);
}
