//! End-to-end tests of the server core against the real binary.

mod common;

use common::{read_n, roundtrip, wait_for, Server};
use redis::Value;
use std::io::Write;

#[test]
fn ping_set_get_and_errors() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let mut raw = srv.raw();
    let r = roundtrip(&mut raw, b"*2\r\n$3\r\nFOO\r\n$1\r\na\r\n", 64);
    assert_eq!(
        r,
        b"-ERR unknown command 'FOO', with args beginning with: 'a' \r\n"
    );
    let r = roundtrip(&mut raw, b"*1\r\n$3\r\nGET\r\n", 50);
    assert_eq!(r, b"-ERR wrong number of arguments for 'get' command\r\n");
    let r = roundtrip(&mut raw, b"PING\r\n", 7);
    assert_eq!(r, b"+PONG\r\n");
}

#[test]
fn pipeline_of_10000_over_every_shard_keeps_order() {
    let srv = Server::start(&["--threads", "2"]);
    let mut raw = srv.raw();
    let mut req = Vec::new();
    let mut expected = Vec::new();
    for i in 0..5000 {
        let k = format!("key:{i}");
        let v = format!("v{i}");
        req.extend(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .bytes(),
        );
        req.extend(format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len()).bytes());
        expected.extend(b"+OK\r\n");
        expected.extend(format!("${}\r\n{v}\r\n", v.len()).bytes());
    }
    raw.write_all(&req).unwrap();
    let got = read_n(&mut raw, expected.len());
    assert_eq!(got, expected);
    let mut c = srv.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 5000);
}

#[test]
fn malformed_input_gets_protocol_error_and_close_without_hurting_others() {
    let srv = Server::start(&["--threads", "2"]);
    let mut good = srv.client();
    let mut bad = srv.raw();
    let r = roundtrip(&mut bad, b"*1\r\n$4294967296\r\n", 100);
    assert_eq!(r, b"-ERR Protocol error: invalid bulk length\r\n");
    let mut bad = srv.raw();
    let r = roundtrip(&mut bad, b"*1\r\n+PING\r\n", 100);
    assert_eq!(r, b"-ERR Protocol error: expected '$', got '+'\r\n");
    let mut bad = srv.raw();
    let r = roundtrip(&mut bad, b"*abc\r\n", 100);
    assert_eq!(r, b"-ERR Protocol error: invalid multibulk length\r\n");
    // Disconnect in the middle of a command.
    let mut half = srv.raw();
    half.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$10\r\nabc")
        .unwrap();
    drop(half);
    let pong: String = redis::cmd("PING").query(&mut good).unwrap();
    assert_eq!(pong, "PONG");
    let x: Option<String> = redis::cmd("GET").arg("x").query(&mut good).unwrap();
    assert_eq!(x, None);
}

#[test]
fn hello_switches_to_resp3() {
    let srv = Server::start(&[]);
    let mut raw = srv.raw();
    raw.write_all(b"HELLO 3\r\n").unwrap();
    let r = read_n(&mut raw, 1);
    assert_eq!(r, b"%");
    let mut raw = srv.raw();
    let r = roundtrip(&mut raw, b"HELLO 4\r\n", 36);
    assert_eq!(
        r,
        b"-NOPROTO unsupported protocol version\r\n"[..36].to_vec()
    );
}

#[test]
fn requirepass_gates_commands() {
    let srv = Server::start(&["--requirepass", "s3cret"]);
    let mut raw = srv.raw();
    let r = roundtrip(&mut raw, b"GET a\r\n", 34);
    assert_eq!(r, b"-NOAUTH Authentication required.\r\n");
    let r = roundtrip(&mut raw, b"AUTH nope\r\n", 68);
    assert_eq!(
        r,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let r = roundtrip(&mut raw, b"AUTH s3cret\r\n", 5);
    assert_eq!(r, b"+OK\r\n");
}

#[test]
fn mset_is_atomic_across_shards() {
    mset_is_atomic(2, 8);
}

/// Four shards: an MSET over all of them takes the chained one-message path
/// (each shard locks, passes on, runs after the shards after it), and no
/// MGET sees half of one.
#[test]
fn mset_is_atomic_across_four_shards() {
    mset_is_atomic(4, 16);
}

/// Writers MSET `n_keys` keys to one value each time while a reader MGETs
/// them all: every read must see one MSET's values.
fn mset_is_atomic(threads: usize, n_keys: usize) {
    let threads = threads.to_string();
    let srv = Server::start(&["--threads", &threads]);
    let keys: Vec<String> = (0..n_keys).map(|i| format!("atomic:{i}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut c = srv.client();
        let keys = keys.clone();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let val = format!("{w}-{i}");
                let mut cmd = redis::cmd("MSET");
                for k in &keys {
                    cmd.arg(k).arg(&val);
                }
                let _: () = cmd.query(&mut c).unwrap();
                i += 1;
            }
        }));
    }
    let mut r = srv.client();
    // A count of reads, not a time: a loaded machine only makes it slower. The
    // deadline is there so a hang fails instead of waiting forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut reads = 0;
    while reads < 300 && std::time::Instant::now() < deadline {
        let vals: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut r).unwrap();
        if vals[0].is_some() {
            assert!(
                vals.iter().all(|v| v == &vals[0]),
                "torn MSET observed: {vals:?}"
            );
        }
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(reads, 300, "only {reads} MGETs answered in 60 s");
}

#[test]
fn all_to_all_cross_shard_load_does_not_deadlock() {
    let srv = Server::start(&["--threads", "2"]);
    let mut workers = Vec::new();
    for t in 0..16 {
        let mut c = srv.client();
        workers.push(std::thread::spawn(move || {
            for i in 0..300 {
                let a = format!("a:{}", (t * 7 + i) % 50);
                let b = format!("b:{}", (t * 13 + i) % 50);
                let _: () = redis::cmd("MSET")
                    .arg(&a)
                    .arg(i)
                    .arg(&b)
                    .arg(t)
                    .query(&mut c)
                    .unwrap();
                let _: Vec<Option<String>> =
                    redis::cmd("MGET").arg(&b).arg(&a).query(&mut c).unwrap();
                let _: i64 = redis::cmd("DEL").arg(&b).arg(&a).query(&mut c).unwrap();
                let _: () = redis::cmd("SET").arg(&a).arg("x").query(&mut c).unwrap();
                let _: redis::RedisResult<()> = redis::cmd("RENAME").arg(&a).arg(&b).query(&mut c);
            }
        }));
    }
    let done = wait_for(60, || workers.iter().all(|w| w.is_finished()));
    assert!(done, "cross-shard load did not finish: deadlock?");
    for w in workers {
        w.join().unwrap();
    }
}

/// Four shards, commands over three and four of them from many clients at
/// once, chained one-message runs meeting ordered ones (RENAME, and any
/// chain that found a lock taken): all finish, and the counts add up.
#[test]
fn chained_multi_shard_commands_do_not_deadlock() {
    let srv = Server::start(&["--threads", "4"]);
    let mut workers = Vec::new();
    for t in 0..12 {
        let mut c = srv.client();
        workers.push(std::thread::spawn(move || {
            for i in 0..200 {
                let ks: Vec<String> = (0..5)
                    .map(|j| format!("k{}", (t * 3 + i + j * 7) % 40))
                    .collect();
                let mut mset = redis::cmd("MSET");
                for k in &ks {
                    mset.arg(k).arg(t);
                }
                let _: () = mset.query(&mut c).unwrap();
                let vals: Vec<Option<String>> = redis::cmd("MGET").arg(&ks).query(&mut c).unwrap();
                assert_eq!(vals.len(), 5);
                let n: i64 = redis::cmd("EXISTS").arg(&ks).query(&mut c).unwrap();
                assert!((0..=5).contains(&n));
                let _: i64 = redis::cmd("DEL").arg(&ks[..3]).query(&mut c).unwrap();
                let _: redis::RedisResult<()> =
                    redis::cmd("RENAME").arg(&ks[3]).arg(&ks[4]).query(&mut c);
            }
        }));
    }
    let done = wait_for(60, || workers.iter().all(|w| w.is_finished()));
    assert!(done, "cross-shard load did not finish: deadlock?");
    for w in workers {
        w.join().unwrap();
    }
    // With no writer left, a count over every key is exact.
    let mut c = srv.client();
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let present: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut c).unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(present, dbsize);
}

#[test]
fn rename_and_copy_across_shards_keep_ttl() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    // Find two keys on different shards: with 2 shards, slot parity decides.
    let _: () = redis::cmd("SET")
        .arg("src")
        .arg("hello")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    for dst in ["dst1", "dst2", "dst3", "dst4"] {
        let _: () = redis::cmd("RENAME")
            .arg("src")
            .arg(dst)
            .query(&mut c)
            .unwrap();
        let v: String = redis::cmd("GET").arg(dst).query(&mut c).unwrap();
        assert_eq!(v, "hello");
        let ttl: i64 = redis::cmd("TTL").arg(dst).query(&mut c).unwrap();
        assert!(ttl > 90 && ttl <= 100);
        let gone: bool = redis::cmd("EXISTS").arg("src").query(&mut c).unwrap();
        assert!(!gone);
        let _: () = redis::cmd("RENAME")
            .arg(dst)
            .arg("src")
            .query(&mut c)
            .unwrap();
    }
    let copied: i64 = redis::cmd("COPY")
        .arg("src")
        .arg("copy:x")
        .query(&mut c)
        .unwrap();
    assert_eq!(copied, 1);
    let v: String = redis::cmd("GET").arg("copy:x").query(&mut c).unwrap();
    assert_eq!(v, "hello");
    let err = redis::cmd("RENAME")
        .arg("nokey")
        .arg("x")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    assert_eq!(err.detail(), Some("no such key"));
}

#[test]
fn scan_visits_every_key_on_every_shard() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    for i in 0..1000 {
        let _: () = redis::cmd("SET")
            .arg(format!("scan:{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut c)
            .unwrap();
        seen.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 1000);
    let keys: Vec<String> = redis::cmd("KEYS").arg("scan:1?").query(&mut c).unwrap();
    assert_eq!(keys.len(), 10);
}

#[test]
fn expired_keys_are_reclaimed_without_access() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("tmp:{i}"))
            .arg(i)
            .arg("PX")
            .arg(50)
            .query(&mut c)
            .unwrap();
    }
    let reclaimed = wait_for(10, || {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        n == 0
    });
    assert!(reclaimed, "active expiry did not reclaim keys");
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(info.contains("expired_keys:200"), "{info}");
}

#[test]
fn bad_config_directive_stops_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args(["--port", "0", "--no-such-directive", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR"), "{err}");
    assert!(
        err.contains("Bad directive or wrong number of arguments"),
        "{err}"
    );
}

#[test]
fn sigterm_and_shutdown_end_the_process_cleanly() {
    let mut srv = Server::start(&["--threads", "2"]);
    // SAFETY-free: use the kill command.
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(srv.child.id().to_string())
        .status()
        .unwrap();
    let exited = wait_for(10, || matches!(srv.child.try_wait(), Ok(Some(_))));
    assert!(exited);
    assert!(srv.child.wait().unwrap().success());
    assert!(srv.wait_logged("Received SIGTERM scheduling shutdown..."));

    let mut srv = Server::start(&[]);
    let mut raw = srv.raw();
    raw.write_all(b"SHUTDOWN NOSAVE\r\n").unwrap();
    let exited = wait_for(10, || matches!(srv.child.try_wait(), Ok(Some(_))));
    assert!(exited);
}

#[test]
fn client_list_and_kill() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.client();
    let mut b = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("victim")
        .query(&mut b)
        .unwrap();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut b).unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut a).unwrap();
    assert!(list.contains("name=victim"), "{list}");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut a)
        .unwrap();
    assert_eq!(killed, 1);
    let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut b);
    assert!(r.is_err());
    let v: Value = redis::cmd("CLIENT").arg("GETNAME").query(&mut a).unwrap();
    assert_eq!(v, Value::Nil);
}

/// `field` of INFO `section`, as text.
fn info_value(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from INFO {section}"))
        .to_string()
}

/// instantaneous_ops_per_sec and the kbps fields follow the load, as Redis's
/// 100 ms samples do: non-zero while a client works, back to 0 once it stops.
#[test]
fn instantaneous_rates_follow_the_load() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        let mut load = srv.client();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: () = redis::cmd("SET")
                    .arg("k")
                    .arg("v")
                    .query(&mut load)
                    .unwrap();
            }
        })
    };
    let busy = wait_for(10, || {
        info_value(&mut con, "stats", "instantaneous_ops_per_sec") != "0"
            && info_value(&mut con, "stats", "instantaneous_input_kbps") != "0.00"
            && info_value(&mut con, "stats", "instantaneous_output_kbps") != "0.00"
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
    assert!(busy, "instantaneous rates stayed 0 under load");
    // Only this connection's INFO calls remain: at most 50 a second.
    let idle = wait_for(10, || {
        info_value(&mut con, "stats", "instantaneous_ops_per_sec")
            .parse::<u64>()
            .unwrap()
            < 200
    });
    assert!(
        idle,
        "instantaneous_ops_per_sec did not fall after the load"
    );
}

#[test]
fn enable_debug_command_gates_debug() {
    // The test harness passes `yes`; a later directive overrides it.
    let refused = "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
    for (setting, allowed) in [("no", false), ("local", true), ("yes", true)] {
        let srv = Server::start(&["--enable-debug-command", setting]);
        let mut c = srv.client();
        let r: redis::RedisResult<String> = redis::cmd("DEBUG").arg("SLEEP").arg(0).query(&mut c);
        match r {
            Ok(ok) => assert!(allowed && ok == "OK", "{setting}: {ok}"),
            Err(e) => assert!(
                !allowed && e.to_string().contains(refused),
                "{setting}: {e}"
            ),
        }
    }
}

#[test]
fn debug_tooling_subcommands() {
    let srv = Server::start(&["--threads", "2"]);
    let mut s = srv.raw();
    let mut check = |parts: &[&str], want: &str| {
        common::send(&mut s, parts);
        common::expect(&mut s, want);
    };
    check(&["DEBUG", "ERROR", "oops here"], "-oops here\r\n");
    check(
        &["DEBUG", "Protocol"],
        "-ERR unknown subcommand or wrong number of arguments for 'Protocol'. Try DEBUG HELP.\r\n",
    );
    // RESP2 forms, then RESP3.
    check(
        &["DEBUG", "PROTOCOL", "bignum"],
        "$37\r\n1234567999999999999999999999999999999\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "map"],
        "*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "push"],
        "-ERR RESP2 is not supported by this command\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "verbatim"],
        "$25\r\nThis is a verbatim\nstring\r\n",
    );
    common::send(&mut s, &["HELLO", "3"]);
    let _ = read_n(&mut s, 1);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut sink = [0u8; 4096];
    s.set_nonblocking(true).unwrap();
    let _ = std::io::Read::read(&mut s, &mut sink);
    s.set_nonblocking(false).unwrap();
    let mut check = |parts: &[&str], want: &str| {
        common::send(&mut s, parts);
        common::expect(&mut s, want);
    };
    check(
        &["DEBUG", "PROTOCOL", "bignum"],
        "(1234567999999999999999999999999999999\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "map"],
        "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
    );
    check(&["DEBUG", "PROTOCOL", "set"], "~3\r\n:0\r\n:1\r\n:2\r\n");
    check(&["DEBUG", "PROTOCOL", "double"], ",3.141\r\n");
    check(&["DEBUG", "PROTOCOL", "null"], "_\r\n");
    check(&["DEBUG", "PROTOCOL", "true"], "#t\r\n");
    check(
        &["DEBUG", "PROTOCOL", "attrib"],
        "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "push"],
        ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "verbatim"],
        "=29\r\ntxt:This is a verbatim\nstring\r\n",
    );
    check(
        &["DEBUG", "PROTOCOL", "nope"],
        "-ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false\r\n",
    );

    // SET-ACTIVE-EXPIRE 0 leaves expired keys in place (DBSIZE counts them).
    let mut c = srv.client();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut c)
        .unwrap();
    for k in ["foo", "bar"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("v")
            .arg("PX")
            .arg(1)
            .query(&mut c)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert!(wait_for(5, || redis::cmd("DBSIZE")
        .query::<i64>(&mut c)
        .unwrap()
        == 0));

    // CHANGE-REPL-ID: a new master_replid, no replid2.
    let replid = |c: &mut redis::Connection| -> String {
        let info: String = redis::cmd("INFO").arg("replication").query(c).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("master_replid:"))
            .unwrap()
            .to_string()
    };
    let before = replid(&mut c);
    let _: () = redis::cmd("DEBUG")
        .arg("CHANGE-REPL-ID")
        .query(&mut c)
        .unwrap();
    let after = replid(&mut c);
    assert_ne!(before, after);
    assert_eq!(after.len(), 40);
}

#[test]
fn info_memory_has_redis_lazyfree_fields() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    assert!(
        info.contains(
            "active_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n"
        ),
        "{info}"
    );
}

#[test]
fn client_reply_off_and_skip_drop_replies() {
    let srv = Server::start(&["--threads", "2"]);
    let mut s = srv.raw();
    let seq: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "foo", "1"],
        &["GET", "foo"],
        &["CLIENT", "REPLY", "FOO"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "foo"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "foo"],
        &["SET", "bar", "2"],
        &["CLIENT", "REPLY", "SKIP"],
        &["MGET", "foo", "bar"],
        &["GET", "bar"],
        &["CLIENT", "REPLY", "OFF"],
        &["RESET"],
        &["PING"],
        &["CLIENT", "REPLY", "BAD"],
    ];
    // Pipelined in one write (one round, keys on both shards), as redis-server answers it.
    let bytes: Vec<u8> = seq.iter().flat_map(|c| common::cmd(c)).collect();
    s.write_all(&bytes).unwrap();
    let want = "+OK\r\n$1\r\n1\r\n+OK\r\n$1\r\n2\r\n+RESET\r\n+PONG\r\n-ERR syntax error\r\n";
    assert_eq!(String::from_utf8_lossy(&read_n(&mut s, want.len())), want);
    // One command per write: same result.
    let mut s = srv.raw();
    for c in seq {
        s.write_all(&common::cmd(c)).unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&read_n(&mut s, want.len())), want);
}

/// `Cpus_allowed_list` of each thread of `pid` whose name starts with `shard-`.
fn shard_thread_cpus(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = t.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("shard-") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        if let Some(l) = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")) {
            out.push(l["Cpus_allowed_list:".len()..].trim().to_string());
        }
    }
    out
}

#[test]
fn executors_float_unless_server_cpulist_pins_them() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let first: String = mask.chars().take_while(|c| c.is_ascii_digit()).collect();

    // Default: not pinned, as Redis's threads; every executor may use the whole mask.
    let srv = Server::start(&["--threads", "2"]);
    let cpus = shard_thread_cpus(srv.child.id());
    assert!(!cpus.is_empty());
    assert!(cpus.iter().all(|c| *c == mask), "{cpus:?} vs {mask}");
    drop(srv);

    // server_cpulist: executor i on the i-th listed CPU; threads defaults to the list's length.
    let srv = Server::start(&["--server_cpulist", &first]);
    let cpus = shard_thread_cpus(srv.child.id());
    assert!(cpus.contains(&first), "{cpus:?}");
    assert!(cpus.iter().all(|c| *c == first || *c == mask), "{cpus:?}");
    let mut c = srv.client();
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(info.contains("shards:1\r\n"), "{info}");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("server_cpulist")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec!["server_cpulist".to_string(), first.clone()]);
    drop(srv);

    // What cannot be honoured stops the start, with the reason.
    for (args, why) in [
        (
            vec!["--server_cpulist", "1023"],
            "server_cpulist names CPU 1023, which this process may not run on",
        ),
        (
            vec!["--server_cpulist", first.as_str(), "--threads", "2"],
            "threads 2 needs as many CPUs in server_cpulist, which lists 1",
        ),
        (vec!["--server_cpulist", "0-"], "Invalid CPU list '0-'"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardis-server"))
            .args(["--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(why), "{args:?}: {text}");
    }
}
