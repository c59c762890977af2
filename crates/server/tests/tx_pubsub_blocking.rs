//! MULTI/EXEC/WATCH, Pub/Sub and blocking pops against the real binary with two
//! shards. `foo` (slot 12182) lives on shard 0 and `bar` (slot 5061) on shard 1.

mod common;

use common::{expect, send, wait_for, Server};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn exec_is_atomic_across_shards() {
    let srv = Server::start(&["--threads", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let mut c = srv.client();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (a, b): (i64, i64) = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg("foo")
                    .cmd("INCR")
                    .arg("bar")
                    .query(&mut c)
                    .unwrap();
                assert_eq!(a, b, "EXEC saw a partial transaction");
                n += 1;
            }
            n
        }));
    }
    let mut r = srv.client();
    // Counts, not a time: a loaded machine only makes it slower (foo counts
    // the transactions). The deadline turns a hang into a failure.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reads = 0;
    let mut done = 0;
    while (reads < 200 || done < 100) && Instant::now() < deadline {
        let (a, b): (Option<i64>, Option<i64>) = redis::cmd("MGET")
            .arg("foo")
            .arg("bar")
            .query(&mut r)
            .unwrap();
        assert_eq!(a, b, "reader saw half a transaction");
        reads += 1;
        done = a.unwrap_or(0);
    }
    stop.store(true, Ordering::Relaxed);
    let txs: i32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(reads >= 200 && txs >= 100, "reads {reads} txs {txs}");
}

#[test]
fn exec_replies_errors_and_aborts() {
    let srv = Server::start(&["--threads", "2"]);
    let mut s = srv.raw();
    send(&mut s, &["MULTI"]);
    send(&mut s, &["SET", "foo", "1"]);
    send(&mut s, &["LPUSH", "foo", "x"]);
    send(&mut s, &["INCR", "bar"]);
    send(&mut s, &["EXEC"]);
    expect(
        &mut s,
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n",
    );
    send(&mut s, &["MULTI"]);
    send(&mut s, &["INCR", "foo"]);
    send(&mut s, &["NOPE"]);
    send(&mut s, &["GET"]);
    send(&mut s, &["EXEC"]);
    expect(
        &mut s,
        "+OK\r\n+QUEUED\r\n-ERR unknown command 'NOPE', with args beginning with: \r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    send(&mut s, &["EXEC"]);
    send(&mut s, &["DISCARD"]);
    send(&mut s, &["MULTI"]);
    send(&mut s, &["MULTI"]);
    send(&mut s, &["WATCH", "foo"]);
    send(&mut s, &["BLPOP", "nolist", "0"]);
    send(&mut s, &["BRPOPLPUSH", "nolist", "bar", "0"]);
    send(&mut s, &["EXEC"]);
    expect(
        &mut s,
        "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n*-1\r\n$-1\r\n",
    );
}

#[test]
fn watch_aborts_when_a_watched_key_changes() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.client();
    let mut b = srv.client();
    // Untouched: EXEC runs.
    let _: () = redis::cmd("WATCH")
        .arg("foo")
        .arg("bar")
        .query(&mut a)
        .unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: () = redis::cmd("SET").arg("foo").arg("1").query(&mut a).unwrap();
    let r: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(r, Some(vec!["OK".to_string()]));
    // Written by another client (on the other shard): EXEC returns nil.
    let _: () = redis::cmd("WATCH")
        .arg("foo")
        .arg("bar")
        .query(&mut a)
        .unwrap();
    let _: () = redis::cmd("SET").arg("bar").arg("x").query(&mut b).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: () = redis::cmd("SET").arg("foo").arg("2").query(&mut a).unwrap();
    let r: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(r, None);
    let v: String = redis::cmd("GET").arg("foo").query(&mut b).unwrap();
    assert_eq!(v, "1");
    // Expired since WATCH counts as modified.
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("v")
        .arg("PX")
        .arg("100")
        .query(&mut b)
        .unwrap();
    let _: () = redis::cmd("WATCH").arg("foo").query(&mut a).unwrap();
    assert!(wait_for(5, || {
        let t: i64 = redis::cmd("PTTL").arg("foo").query(&mut b).unwrap();
        t == -2
    }));
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: () = redis::cmd("GET").arg("foo").query(&mut a).unwrap();
    let r: Option<Vec<Option<String>>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(r, None);
}

#[test]
fn pubsub_reaches_subscribers_on_every_core() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    send(&mut sub, &["SUBSCRIBE", "news"]);
    send(&mut sub, &["PSUBSCRIBE", "n*s"]);
    expect(
        &mut sub,
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$3\r\nn*s\r\n:2\r\n",
    );
    // Publishers on many connections, so both cores publish.
    for i in 0..8 {
        let mut p = srv.client();
        let n: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg(format!("m{i}"))
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 2);
        expect(
            &mut sub,
            &format!(
                "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nm{i}\r\n*4\r\n$8\r\npmessage\r\n$3\r\nn*s\r\n$4\r\nnews\r\n$2\r\nm{i}\r\n"
            ),
        );
    }
    let mut p = srv.client();
    let n: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .arg("other")
        .query(&mut p)
        .unwrap();
    assert_eq!(
        n,
        vec![
            redis::Value::BulkString(b"news".to_vec()),
            redis::Value::Int(1),
            redis::Value::BulkString(b"other".to_vec()),
            redis::Value::Int(0)
        ]
    );
    let pats: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut p).unwrap();
    assert_eq!(pats, 1);
    send(&mut sub, &["GET", "foo"]);
    send(&mut sub, &["PING"]);
    send(&mut sub, &["UNSUBSCRIBE"]);
    send(&mut sub, &["PUNSUBSCRIBE"]);
    send(&mut sub, &["UNSUBSCRIBE"]);
    send(&mut sub, &["PING"]);
    expect(
        &mut sub,
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n\
         *2\r\n$4\r\npong\r\n$0\r\n\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n\
         *3\r\n$12\r\npunsubscribe\r\n$3\r\nn*s\r\n:0\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n\
         +PONG\r\n",
    );
}

#[test]
fn pubsub_resp3_messages_are_pushes() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    send(&mut sub, &["HELLO", "3"]);
    // Skip the HELLO map: read until the subscribe push shows up.
    send(&mut sub, &["SUBSCRIBE", "ch"]);
    let want = b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(want) {
        let n = sub.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    for _ in 0..4 {
        let mut p = srv.client();
        let n: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg("hi")
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 1);
        expect(&mut sub, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }
    send(&mut sub, &["GET", "foo"]);
    expect(&mut sub, "_\r\n");
}

fn blocked_count(c: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    list.lines().filter(|l| l.contains(" flags=b ")).count()
}

#[test]
fn one_push_wakes_exactly_one_blocked_client_in_fifo_order() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let mut waiters = Vec::new();
    for i in 0..5 {
        let mut s = srv.raw();
        send(&mut s, &["BLPOP", "foo", "0"]);
        assert!(wait_for(5, || blocked_count(&mut c) == i + 1));
        waiters.push(s);
    }
    let _: i64 = redis::cmd("RPUSH")
        .arg("foo")
        .arg("e0")
        .query(&mut c)
        .unwrap();
    expect(&mut waiters[0], "*2\r\n$3\r\nfoo\r\n$2\r\ne0\r\n");
    assert!(wait_for(5, || blocked_count(&mut c) == 4));
    let len: i64 = redis::cmd("LLEN").arg("foo").query(&mut c).unwrap();
    assert_eq!(len, 0);
    // The rest are served in the order they blocked, one element each.
    let _: i64 = redis::cmd("RPUSH")
        .arg("foo")
        .arg(&["e1", "e2", "e3", "e4", "e5"])
        .query(&mut c)
        .unwrap();
    for (i, w) in waiters.iter_mut().enumerate().skip(1) {
        expect(w, &format!("*2\r\n$3\r\nfoo\r\n$2\r\ne{i}\r\n"));
    }
    let rest: Vec<String> = redis::cmd("LRANGE")
        .arg("foo")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(rest, vec!["e5"]);
}

#[test]
fn blocking_timeout_cross_shard_keys_and_blmove() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let start = Instant::now();
    let r: Option<Vec<String>> = redis::cmd("BLPOP")
        .arg("foo")
        .arg("bar")
        .arg("0.2")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, None);
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Blocked on keys of both shards; a push on either serves it once.
    let mut s = srv.raw();
    send(&mut s, &["BLPOP", "foo", "bar", "0"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let _: i64 = redis::cmd("RPUSH")
        .arg("bar")
        .arg("x")
        .query(&mut c)
        .unwrap();
    expect(&mut s, "*2\r\n$3\r\nbar\r\n$1\r\nx\r\n");
    assert!(wait_for(5, || blocked_count(&mut c) == 0));
    let _: i64 = redis::cmd("RPUSH")
        .arg("foo")
        .arg("y")
        .query(&mut c)
        .unwrap();
    let len: i64 = redis::cmd("LLEN").arg("foo").query(&mut c).unwrap();
    assert_eq!(len, 1, "a client that was served must not be served again");
    // BLMOVE from shard 0 to shard 1.
    let _: i64 = redis::cmd("DEL").arg("foo").query(&mut c).unwrap();
    send(&mut s, &["BLMOVE", "foo", "bar", "LEFT", "RIGHT", "0"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let _: i64 = redis::cmd("LPUSH")
        .arg("foo")
        .arg("v")
        .query(&mut c)
        .unwrap();
    expect(&mut s, "$1\r\nv\r\n");
    let dst: Vec<String> = redis::cmd("LRANGE")
        .arg("bar")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(dst, vec!["v"]);
    // BZPOPMIN wakes on ZADD.
    send(&mut s, &["BZPOPMIN", "zz", "0"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    let _: i64 = redis::cmd("ZADD")
        .arg("zz")
        .arg(1)
        .arg("m")
        .query(&mut c)
        .unwrap();
    expect(&mut s, "*3\r\n$2\r\nzz\r\n$1\r\nm\r\n$1\r\n1\r\n");
}

fn q(c: &mut redis::Connection, parts: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(parts[0]);
    for p in &parts[1..] {
        cmd.arg(*p);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{parts:?}: {e}"))
}

#[test]
fn blocked_clients_are_answered_when_their_command_can_never_succeed() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let mut s = srv.raw();
    // BRPOPLPUSH / BLMOVE whose destination holds a string, same shard and
    // across shards: WRONGTYPE, and the element stays in the source.
    for (src, dst) in [("foo", "bar"), ("{bar}src", "bar")] {
        q(&mut c, &["SET", dst, "x"]);
        send(&mut s, &["BRPOPLPUSH", src, dst, "0"]);
        assert!(wait_for(5, || blocked_count(&mut c) == 1));
        q(&mut c, &["RPUSH", src, "a"]);
        expect(
            &mut s,
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        );
        assert_eq!(
            q(&mut c, &["LLEN", src]),
            redis::Value::Int(1),
            "the element stays"
        );
        q(&mut c, &["DEL", src]);
    }
    // XREADGROUP: stream deleted, overwritten, renamed away, group destroyed,
    // FLUSHALL.
    let gone = "-UNBLOCKED the stream key no longer exists\r\n";
    let cases: [(&[&str], &str); 5] = [
        (&["DEL", "foo"], gone),
        (&["SET", "foo", "x"], gone),
        (&["RENAME", "foo", "bar"], gone),
        (
            &["XGROUP", "DESTROY", "foo", "g"],
            "-NOGROUP the consumer group this client was blocked on no longer exists\r\n",
        ),
        (&["FLUSHALL"], gone),
    ];
    for (change, reply) in cases {
        q(&mut c, &["DEL", "foo", "bar"]);
        q(&mut c, &["XGROUP", "CREATE", "foo", "g", "$", "MKSTREAM"]);
        send(
            &mut s,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "foo",
                ">",
            ],
        );
        assert!(wait_for(5, || blocked_count(&mut c) == 1));
        q(&mut c, change);
        expect(&mut s, reply);
        assert!(wait_for(5, || blocked_count(&mut c) == 0));
    }
    // XREAD (no group) stays blocked through a delete, as in Redis.
    send(&mut s, &["XREAD", "BLOCK", "0", "STREAMS", "foo", "$"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    q(&mut c, &["SET", "foo", "x"]);
    q(&mut c, &["FLUSHALL"]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(blocked_count(&mut c), 1);
    q(&mut c, &["XADD", "foo", "1-1", "f", "v"]);
    expect(
        &mut s,
        "*1\r\n*2\r\n$3\r\nfoo\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
    );
}

#[test]
fn client_unblock_answers_as_a_timeout_or_an_error() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    for key in ["foo", "bar"] {
        let mut s = srv.raw();
        send(&mut s, &["CLIENT", "ID"]);
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let id = String::from_utf8_lossy(&buf[1..n - 2]).into_owned();
        send(&mut s, &["BLPOP", key, "0"]);
        assert!(wait_for(5, || blocked_count(&mut c) == 1));
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
        assert!(list.contains(" flags=b "), "{list}");
        assert!(list.contains(" cmd=blpop "), "{list}");
        assert_eq!(q(&mut c, &["CLIENT", "UNBLOCK", &id]), redis::Value::Int(1));
        expect(&mut s, "*-1\r\n");
        assert_eq!(q(&mut c, &["CLIENT", "UNBLOCK", &id]), redis::Value::Int(0));
        send(&mut s, &["BLPOP", key, "0"]);
        assert!(wait_for(5, || blocked_count(&mut c) == 1));
        assert_eq!(
            q(&mut c, &["CLIENT", "UNBLOCK", &id, "ERROR"]),
            redis::Value::Int(1)
        );
        expect(&mut s, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
        // The connection stays usable.
        send(&mut s, &["PING"]);
        expect(&mut s, "+PONG\r\n");
        // WAIT with no replicas blocks until unblocked: the acks so far, or the error.
        for (how, reply) in [
            ("TIMEOUT", ":0\r\n"),
            (
                "ERROR",
                "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
            ),
        ] {
            send(&mut s, &["WAIT", "1", "0"]);
            assert!(wait_for(5, || blocked_count(&mut c) == 1));
            assert_eq!(
                q(&mut c, &["CLIENT", "UNBLOCK", &id, how]),
                redis::Value::Int(1)
            );
            expect(&mut s, reply);
            assert!(wait_for(5, || blocked_count(&mut c) == 0));
        }
    }
}

#[test]
fn a_blocked_command_is_counted_once_in_commandstats() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let calls = |c: &mut redis::Connection| -> String {
        let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
        info.lines()
            .find(|l| l.starts_with("cmdstat_blpop:"))
            .map(|l| l.split(',').next().unwrap().to_string())
            .unwrap_or_default()
    };
    // Timed out, served after blocking (keys of both shards), served at once.
    q(&mut c, &["BLPOP", "foo", "0.05"]);
    assert_eq!(calls(&mut c), "cmdstat_blpop:calls=1");
    let mut s = srv.raw();
    send(&mut s, &["BLPOP", "foo", "bar", "0"]);
    assert!(wait_for(5, || blocked_count(&mut c) == 1));
    q(&mut c, &["RPUSH", "bar", "x"]);
    expect(&mut s, "*2\r\n$3\r\nbar\r\n$1\r\nx\r\n");
    q(&mut c, &["RPUSH", "foo", "y"]);
    q(&mut c, &["BLPOP", "foo", "0"]);
    assert_eq!(calls(&mut c), "cmdstat_blpop:calls=3");
}

#[test]
fn sharded_pubsub_is_its_own_namespace_on_every_core() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    send(&mut sub, &["SSUBSCRIBE", "orders", "bills"]);
    send(&mut sub, &["SUBSCRIBE", "orders"]);
    expect(
        &mut sub,
        "*3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n\
         *3\r\n$10\r\nssubscribe\r\n$5\r\nbills\r\n:2\r\n\
         *3\r\n$9\r\nsubscribe\r\n$6\r\norders\r\n:1\r\n",
    );
    // Publishers on many connections, so both cores publish.
    for i in 0..8 {
        let mut p = srv.client();
        let n: i64 = redis::cmd("SPUBLISH")
            .arg("orders")
            .arg(format!("s{i}"))
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 1);
        expect(
            &mut sub,
            &format!("*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\ns{i}\r\n"),
        );
        let n: i64 = redis::cmd("PUBLISH")
            .arg("orders")
            .arg(format!("m{i}"))
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 1);
        expect(
            &mut sub,
            &format!("*3\r\n$7\r\nmessage\r\n$6\r\norders\r\n$2\r\nm{i}\r\n"),
        );
    }
    let mut p = srv.client();
    let n: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg("orders")
        .arg("news")
        .query(&mut p)
        .unwrap();
    assert_eq!(
        n,
        vec![
            redis::Value::BulkString(b"orders".to_vec()),
            redis::Value::Int(1),
            redis::Value::BulkString(b"news".to_vec()),
            redis::Value::Int(0)
        ]
    );
    let mut chans: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .query(&mut p)
        .unwrap();
    chans.sort();
    assert_eq!(chans, ["bills", "orders"]);
    assert_eq!(
        common::info_field(&mut p, "stats", "pubsubshard_channels").as_deref(),
        Some("2")
    );
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut p).unwrap();
    assert!(list.contains(" sub=1 psub=0 ssub=2 "), "{list}");
    send(&mut sub, &["SUNSUBSCRIBE", "orders", "bills"]);
    send(&mut sub, &["UNSUBSCRIBE"]);
    send(&mut sub, &["PING"]);
    expect(
        &mut sub,
        "*3\r\n$12\r\nsunsubscribe\r\n$6\r\norders\r\n:1\r\n\
         *3\r\n$12\r\nsunsubscribe\r\n$5\r\nbills\r\n:0\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$6\r\norders\r\n:0\r\n\
         +PONG\r\n",
    );
}

#[test]
fn sharded_pubsub_resp3_messages_are_pushes() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    send(&mut sub, &["HELLO", "3"]);
    send(&mut sub, &["SSUBSCRIBE", "ch"]);
    let want = b">3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n";
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(want) {
        let n = sub.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    for _ in 0..4 {
        let mut p = srv.client();
        let n: i64 = redis::cmd("SPUBLISH")
            .arg("ch")
            .arg("hi")
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 1);
        expect(&mut sub, ">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }
    // RESP3 has no subscribed context.
    send(&mut sub, &["GET", "foo"]);
    expect(&mut sub, "_\r\n");
}
