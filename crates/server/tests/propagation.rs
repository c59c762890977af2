//! What a replica receives, read raw from the master's stream by a fake
//! replica (`PSYNC ? -1`, the RDB skipped): one command's several effects
//! arrive wrapped in MULTI … EXEC, as Redis 7.0's propagatePendingCommands
//! sends them; a single effect, and a transaction with one write, are not; a
//! command split across shards goes out once, as the client sent it.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection that did `PSYNC ? -1` and skipped the snapshot.
struct FakeReplica {
    s: TcpStream,
    buf: Vec<u8>,
}

impl FakeReplica {
    fn attach(srv: &Server) -> FakeReplica {
        let mut s = srv.raw();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.write_all(b"PSYNC ? -1\r\n").unwrap();
        let mut r = FakeReplica { s, buf: Vec::new() };
        let line = r.line();
        assert!(line.starts_with("+FULLRESYNC "), "{line}");
        // Newlines keep the link alive while the snapshot is prepared.
        let header = loop {
            let l = r.line();
            if !l.is_empty() {
                break l;
            }
        };
        if let Some(mark) = header.strip_prefix("$EOF:") {
            let mark = mark.as_bytes().to_vec();
            let at = r.fill_until(|b| find(b, &mark).map(|i| i + mark.len()));
            r.buf.drain(..at);
        } else {
            let n: usize = header[1..].parse().unwrap();
            r.fill_until(|b| (b.len() >= n).then_some(n));
            r.buf.drain(..n);
        }
        r
    }

    fn fill_until(&mut self, mut done: impl FnMut(&[u8]) -> Option<usize>) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(n) = done(&self.buf) {
                return n;
            }
            assert!(Instant::now() < deadline, "timed out: {:?}", self.text());
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("master closed the link"),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(_) => {}
            }
        }
    }

    fn line(&mut self) -> String {
        let end = self.fill_until(|b| {
            if b.first() == Some(&b'\n') {
                return Some(1);
            }
            find(b, b"\r\n").map(|i| i + 2)
        });
        let l: Vec<u8> = self.buf.drain(..end).collect();
        String::from_utf8_lossy(&l).trim_end().to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).replace("\r\n", " ")
    }

    /// Reads until the stream (CRLFs as spaces, PINGs dropped) ends with `tail`.
    fn stream_until(&mut self, tail: &str) -> String {
        let ping = "*1 $4 PING ";
        let tail = tail.to_string();
        self.fill_until(|b| {
            let t = String::from_utf8_lossy(b)
                .replace("\r\n", " ")
                .replace(ping, "");
            t.ends_with(&tail).then_some(0)
        });
        let t = self.text().replace(ping, "");
        self.buf.clear();
        t
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn several_effects_of_one_command_are_wrapped_in_multi_exec() {
    let srv = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut r = FakeReplica::attach(&srv);
    let mut c = srv.client();
    let q = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap()
    };
    // One effect: as it is.
    q(&mut c, &["SADD", "s", "1", "2", "3"]);
    // SPOP with a count: one SREM per member, wrapped.
    q(&mut c, &["SPOP", "s", "2"]);
    let t = r.stream_until("*1 $4 EXEC ");
    let want = "*2 $6 SELECT $1 0 *5 $4 SADD $1 s $1 1 $1 2 $1 3 *1 $5 MULTI *3 $4 SREM $1 s ";
    assert!(t.starts_with(want), "{t}");
    assert_eq!(t.matches("SREM").count(), 2, "{t}");
    // A transaction with one write goes out alone; with two, wrapped, each
    // command in its db and EXEC without a SELECT of its own.
    q(&mut c, &["MULTI"]);
    q(&mut c, &["SET", "a", "1"]);
    q(&mut c, &["GET", "a"]);
    q(&mut c, &["EXEC"]);
    q(&mut c, &["MULTI"]);
    q(&mut c, &["SET", "a", "2"]);
    q(&mut c, &["SELECT", "3"]);
    q(&mut c, &["SET", "b", "1"]);
    q(&mut c, &["EXEC"]);
    q(&mut c, &["SELECT", "0"]);
    assert_eq!(
        r.stream_until("*1 $4 EXEC "),
        "*3 $3 SET $1 a $1 1 *1 $5 MULTI *3 $3 SET $1 a $1 2 *2 $6 SELECT $1 3 \
         *3 $3 SET $1 b $1 1 *1 $4 EXEC "
    );
    // XREADGROUP … NOACK creating its consumer: XGROUP CREATECONSUMER and
    // the group's new last id, wrapped.
    q(&mut c, &["XADD", "x", "1-1", "f", "v"]);
    q(&mut c, &["XGROUP", "CREATE", "x", "g", "0"]);
    q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "NOACK",
            "STREAMS",
            "x",
            ">",
        ],
    );
    assert_eq!(
        r.stream_until("*1 $4 EXEC "),
        "*2 $6 SELECT $1 0 *5 $4 XADD $1 x $3 1-1 $1 f $1 v \
         *5 $6 XGROUP $6 CREATE $1 x $1 g $1 0 \
         *1 $5 MULTI *5 $6 XGROUP $14 CREATECONSUMER $1 x $1 g $2 c1 \
         *7 $6 XGROUP $5 SETID $1 x $1 g $3 1-1 $11 ENTRIESREAD $1 1 *1 $4 EXEC "
    );
}

#[test]
fn the_expire_cycle_sends_plain_dels() {
    // Redis 7.0 expires keys in its cron with `propagate_no_multi`: each DEL
    // goes out alone, however many keys one cycle expires.
    let srv = Server::start(&["--threads", "1", "--repl-diskless-sync-delay", "0"]);
    let mut r = FakeReplica::attach(&srv);
    let mut c = srv.client();
    for k in ["p", "q", "r", "t"] {
        let _: () = redis::cmd("SET")
            .arg(&[k, "v", "PX", "30"])
            .query(&mut c)
            .unwrap();
    }
    let mut dels = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dels.matches("DEL").count() < 4 {
        assert!(Instant::now() < deadline, "{dels}");
        dels += &r.stream_until(" ");
    }
    assert!(!dels.contains("MULTI"), "{dels}");
    for k in ["p", "q", "r", "t"] {
        assert!(dels.contains(&format!("*2 $3 DEL $1 {k} ")), "{dels}");
    }
}

#[test]
fn publish_and_spublish_reach_replicas() {
    let srv = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut r = FakeReplica::attach(&srv);
    let mut c = srv.client();
    let _: i64 = redis::cmd("SPUBLISH")
        .arg("sch")
        .arg("m1")
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("m2")
        .query(&mut c)
        .unwrap();
    let t = r.stream_until("*3 $7 PUBLISH $2 ch $2 m2 ");
    assert!(
        t.contains("*3 $8 SPUBLISH $3 sch $2 m1 *3 $7 PUBLISH"),
        "{t}"
    );
}

#[test]
fn a_transactions_server_commands_replicate_in_their_place() {
    // FLUSHALL and PUBLISH inside EXEC go out between the writes around
    // them, inside the transaction's MULTI … EXEC, as from Redis.
    let srv = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut r = FakeReplica::attach(&srv);
    let mut c = srv.client();
    let q = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap()
    };
    q(&mut c, &["MULTI"]);
    q(&mut c, &["SET", "a", "1"]);
    q(&mut c, &["PUBLISH", "ch", "m"]);
    q(&mut c, &["FLUSHALL"]);
    q(&mut c, &["SET", "b", "2"]);
    q(&mut c, &["EXEC"]);
    assert_eq!(
        r.stream_until("*1 $4 EXEC "),
        "*2 $6 SELECT $1 0 *1 $5 MULTI *3 $3 SET $1 a $1 1 *3 $7 PUBLISH $2 ch $1 m \
         *1 $8 FLUSHALL *3 $3 SET $1 b $1 2 *1 $4 EXEC "
    );
}

#[test]
fn a_command_split_across_shards_replicates_as_sent() {
    // k1 and k3 live on one core, k2 on the other: the parts run on both,
    // and the stream carries the one MSET (and DEL) the client sent, as
    // Redis's does, not a part per shard inside MULTI … EXEC.
    let srv = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut r = FakeReplica::attach(&srv);
    let mut c = srv.client();
    let q = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap()
    };
    q(&mut c, &["MSET", "k1", "v1", "k2", "v2", "k3", "v3"]);
    q(&mut c, &["DEL", "k1", "k2", "absent"]);
    q(&mut c, &["SET", "end", "1"]);
    assert_eq!(
        r.stream_until("*3 $3 SET $3 end $1 1 "),
        "*2 $6 SELECT $1 0 *7 $4 MSET $2 k1 $2 v1 $2 k2 $2 v2 $2 k3 $2 v3 \
         *4 $3 DEL $2 k1 $2 k2 $6 absent *3 $3 SET $3 end $1 1 "
    );
}
