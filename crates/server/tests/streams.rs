//! Streams against the real binary with two shards: entries, consumer groups,
//! XREAD/XREADGROUP BLOCK woken by XADD from another core, and persistence.
//! `foo` (slot 12182) lives on shard 0 and `bar` (slot 5061) on shard 1.

mod common;

use common::{digest, expect, send, wait_for, Server};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends one command and checks the exact reply bytes.
fn check(s: &mut TcpStream, parts: &[&str], want: &str) {
    send(s, parts);
    expect(s, want);
}

fn blocked_count(c: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    list.lines().filter(|l| l.contains(" flags=b ")).count()
}

/// `*1 [key, [[id, [f, v]]]]` as XREAD replies it for one entry.
fn one_entry(key: &str, id: &str, f: &str, v: &str) -> String {
    format!(
        "*1\r\n*2\r\n${}\r\n{key}\r\n*1\r\n*2\r\n${}\r\n{id}\r\n*2\r\n${}\r\n{f}\r\n${}\r\n{v}\r\n",
        key.len(),
        id.len(),
        f.len(),
        v.len()
    )
}

#[test]
fn entries_groups_pending_and_claims() {
    let srv = Server::start(&["--threads", "2"]);
    let mut s = srv.raw();
    check(&mut s, &["XADD", "foo", "1-1", "a", "1"], "$3\r\n1-1\r\n");
    check(&mut s, &["XADD", "foo", "1-*", "b", "2"], "$3\r\n1-2\r\n");
    check(
        &mut s,
        &["XADD", "foo", "1-0", "c", "3"],
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n",
    );
    check(&mut s, &["XLEN", "foo"], ":2\r\n");
    check(
        &mut s,
        &["XRANGE", "foo", "(1-1", "+"],
        "*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    check(&mut s, &["TYPE", "foo"], "+stream\r\n");
    check(&mut s, &["XGROUP", "CREATE", "foo", "g", "0"], "+OK\r\n");
    check(
        &mut s,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "foo",
            ">",
        ],
        &one_entry("foo", "1-1", "a", "1"),
    );
    check(
        &mut s,
        &["XPENDING", "foo", "g"],
        "*4\r\n:1\r\n$3\r\n1-1\r\n$3\r\n1-1\r\n*1\r\n*2\r\n$5\r\nalice\r\n$1\r\n1\r\n",
    );
    check(
        &mut s,
        &["XCLAIM", "foo", "g", "bob", "0", "1-1", "JUSTID"],
        "*1\r\n$3\r\n1-1\r\n",
    );
    check(&mut s, &["XACK", "foo", "g", "1-1", "1-2"], ":1\r\n");
    check(
        &mut s,
        &["XPENDING", "foo", "g"],
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n",
    );
    check(
        &mut s,
        &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "foo", ">"],
        "-NOGROUP No such key 'foo' or consumer group 'nog' in XREADGROUP with GROUP option\r\n",
    );
    // Keyspace commands: RENAME across shards keeps the stream and its groups.
    check(&mut s, &["RENAME", "foo", "bar"], "+OK\r\n");
    check(&mut s, &["XLEN", "bar"], ":2\r\n");
    check(&mut s, &["XINFO", "GROUPS", "foo"], "-ERR no such key\r\n");
    check(
        &mut s,
        &["XINFO", "GROUPS", "bar"],
        "*1\r\n*12\r\n$4\r\nname\r\n$1\r\ng\r\n$9\r\nconsumers\r\n:2\r\n$7\r\npending\r\n:0\r\n\
         $17\r\nlast-delivered-id\r\n$3\r\n1-1\r\n$12\r\nentries-read\r\n:1\r\n$3\r\nlag\r\n:1\r\n",
    );
    check(&mut s, &["SET", "str", "x"], "+OK\r\n");
    check(
        &mut s,
        &["XADD", "str", "*", "a", "1"],
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
}

#[test]
fn xread_block_is_woken_by_xadd_from_another_core() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let _: String = redis::cmd("XADD")
        .arg("foo")
        .arg("1-0")
        .arg("old")
        .arg("x")
        .query(&mut c)
        .unwrap();
    // `$` means after what is there now; one waiter per shard's key, and one
    // waiting on both keys (a multi-shard read).
    let mut on_foo = srv.raw();
    send(&mut on_foo, &["XREAD", "BLOCK", "0", "STREAMS", "foo", "$"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let mut on_both = srv.raw();
    send(
        &mut on_both,
        &["XREAD", "BLOCK", "0", "STREAMS", "bar", "foo", "$", "$"],
    );
    assert!(wait_for(5, || blocked_count(&mut c) == 2));
    let _: String = redis::cmd("XADD")
        .arg("bar")
        .arg("5-0")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    expect(&mut on_both, &one_entry("bar", "5-0", "f", "v"));
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let _: String = redis::cmd("XADD")
        .arg("foo")
        .arg("2-0")
        .arg("new")
        .arg("y")
        .query(&mut c)
        .unwrap();
    expect(&mut on_foo, &one_entry("foo", "2-0", "new", "y"));
    // A consumer group reader blocked with `>` gets the next entry, and it
    // is pending for it.
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("bar")
        .arg("g")
        .arg("$")
        .query(&mut c)
        .unwrap();
    let mut reader = srv.raw();
    send(
        &mut reader,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "r",
            "BLOCK",
            "0",
            "STREAMS",
            "bar",
            ">",
        ],
    );
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let _: String = redis::cmd("XADD")
        .arg("bar")
        .arg("6-0")
        .arg("g")
        .arg("1")
        .query(&mut c)
        .unwrap();
    expect(&mut reader, &one_entry("bar", "6-0", "g", "1"));
    let pending: (i64, String, String, Vec<(String, String)>) = redis::cmd("XPENDING")
        .arg("bar")
        .arg("g")
        .query(&mut c)
        .unwrap();
    assert_eq!(pending.0, 1);
    assert_eq!(pending.3, vec![("r".to_string(), "1".to_string())]);
    // A timeout replies the null array.
    let start = Instant::now();
    let mut t = srv.raw();
    check(
        &mut t,
        &["XREAD", "BLOCK", "200", "STREAMS", "foo", "$"],
        "*-1\r\n",
    );
    assert!(start.elapsed() >= Duration::from_millis(190));
    check(
        &mut t,
        &["XREAD", "BLOCK", "-1", "STREAMS", "foo", "$"],
        "-ERR timeout is negative\r\n",
    );
}

#[test]
fn streams_survive_debug_reload_with_the_same_digest() {
    // DEBUG RELOAD writes dump.rdb: keep it out of the source tree.
    let dir = std::env::temp_dir().join(format!("shardis-streams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let srv = Server::start(&["--threads", "2", "--dir", dir.to_str().unwrap()]);
    let mut c = srv.client();
    for key in ["foo", "bar"] {
        for i in 1..=150 {
            let _: String = redis::cmd("XADD")
                .arg(key)
                .arg(format!("{i}-0"))
                .arg("field")
                .arg(i)
                .query(&mut c)
                .unwrap();
        }
        let _: i64 = redis::cmd("XDEL")
            .arg(key)
            .arg("7-0")
            .query(&mut c)
            .unwrap();
        let _: String = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg("g")
            .arg("0")
            .query(&mut c)
            .unwrap();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("alice")
            .arg("COUNT")
            .arg(10)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query(&mut c)
            .unwrap();
    }
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("empty")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut c)
        .unwrap();
    let before = digest(&mut c);
    let groups_before: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("foo")
        .query(&mut c)
        .unwrap();
    let pending_before: redis::Value = redis::cmd("XPENDING")
        .arg("bar")
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(digest(&mut c), before);
    let groups_after: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("foo")
        .query(&mut c)
        .unwrap();
    assert_eq!(groups_after, groups_before);
    let pending_after: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg("bar")
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(pending_after.len(), 10, "{pending_before:?}");
    assert_eq!(pending_after[0].0, "1-0");
    let len: i64 = redis::cmd("XLEN").arg("empty").query(&mut c).unwrap();
    assert_eq!(len, 0);
    // DUMP/RESTORE carries the stream too.
    let dump: Vec<u8> = redis::cmd("DUMP").arg("foo").query(&mut c).unwrap();
    let _: String = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(dump)
        .query(&mut c)
        .unwrap();
    let a: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("foo")
        .arg("copy")
        .query(&mut c)
        .unwrap();
    assert_eq!(a[0], a[1]);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
