//! The append-only file end to end: the multi-part directory, kill -9 with
//! writers running (nothing acknowledged is lost), digests across restarts,
//! a torn last command (`aof-load-truncated`), a pre-7.0 single-file AOF, and
//! rewrites under writes.

mod common;

use common::{digest, info_field, wait_for, Server, TempDir};
use redis::Commands;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "2", "--dir", dir.path(), "--appendonly", "yes"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn manifest(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.aof_dir().join("appendonly.aof.manifest")).unwrap()
}

/// Writes of every kind, on keys spread over both shards.
fn varied_writes(c: &mut redis::Connection) {
    for i in 0..200 {
        let _: () = c.set(format!("s{i}"), format!("v{i}")).unwrap();
    }
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2", "c", "3", "d", "4"])
        .query(c)
        .unwrap();
    let _: i64 = c.incr("n", 5).unwrap();
    let _: i64 = c.rpush("list", &["x", "y", "z"]).unwrap();
    let _: i64 = c.sadd("set", &["m1", "m2"]).unwrap();
    let _: i64 = c.hset("hash", "f", "v").unwrap();
    let _: i64 = c.zadd("zset", "m", 1.5).unwrap();
    let _: () = redis::cmd("SET")
        .arg(&["ttl", "v", "EX", "1000"])
        .query(c)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(c).unwrap();
    let _: () = c.set("in3", "x").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    let _: Vec<redis::Value> = redis::pipe()
        .atomic()
        .set("t1", "a")
        .set("t2", "b")
        .incr("n", 1)
        .query(c)
        .unwrap();
    let _: i64 = c.del(&["s1", "s2", "s3"]).unwrap();
    let _: String = c.rename("s4", "renamed").unwrap();
}

#[test]
fn a_multi_part_aof_is_written_and_loaded_after_kill_9() {
    for policy in ["everysec", "always", "no"] {
        let dir = TempDir::new(policy);
        let mut s = start(&dir, &["--appendfsync", policy]);
        let mut c = s.client();
        varied_writes(&mut c);
        let before = digest(&mut c);
        assert_eq!(
            manifest(&dir),
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        s.kill9();
        let s = start(&dir, &["--appendfsync", policy]);
        let mut c = s.client();
        assert_eq!(digest(&mut c), before, "{policy}");
        assert!(s.wait_logged("DB loaded from append only file"));
        assert!(s.wait_logged("Opening AOF incr file appendonly.aof.1.incr.aof on server start"));
        let ttl: i64 = c.ttl("ttl").unwrap();
        assert!(ttl > 900, "{ttl}");
    }
}

#[test]
fn kill_9_under_writers_loses_no_acknowledged_write() {
    for policy in ["always", "everysec"] {
        let dir = TempDir::new(&format!("writers-{policy}"));
        let mut s = start(&dir, &["--appendfsync", policy]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let mut c = s.client();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut acked = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        match c.incr::<_, _, i64>(format!("counter:{w}"), 1) {
                            Ok(v) => acked = v,
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<i64> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let s = start(&dir, &["--appendfsync", policy]);
        let mut c = s.client();
        for (w, a) in acked.iter().enumerate() {
            let got: Option<i64> = c.get(format!("counter:{w}")).unwrap();
            let got = got.unwrap_or(0);
            // Everything acknowledged is there; at most the one write in
            // flight at the kill is there too.
            assert!(
                got >= *a && got <= a + 1,
                "{policy} writer {w}: acked {a}, loaded {got}"
            );
            assert!(*a > 0, "{policy}: writer {w} made no progress");
        }
    }
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Starts the binary expecting it to fail; returns its output.
fn start_fails(dir: &TempDir, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args([
            "--port",
            "0",
            "--save",
            "",
            "--threads",
            "2",
            "--dir",
            dir.path(),
        ])
        .args(["--appendonly", "yes"])
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs a server on `dir` that sets one key and is killed with SIGKILL;
/// returns its DEBUG DIGEST and its incr file.
fn one_key_then_kill9(dir: &TempDir) -> (String, PathBuf) {
    let mut s = start(dir, &[]);
    let mut c = s.client();
    let _: () = c.set("kept", "1").unwrap();
    let before = digest(&mut c);
    s.kill9();
    (before, dir.aof_dir().join("appendonly.aof.1.incr.aof"))
}

#[test]
fn a_torn_last_command_is_truncated_or_refused_per_aof_load_truncated() {
    let dir = TempDir::new("torn");
    let (before, incr) = one_key_then_kill9(&dir);
    let good_len = std::fs::metadata(&incr).unwrap().len();
    append(&incr, b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r");
    let out = start_fails(&dir, &["--aof-load-truncated", "no"]);
    assert!(
        out.contains(
            "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
        ),
        "{out}"
    );
    let s = start(&dir, &[]);
    assert!(s.wait_logged(
        "!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"
    ));
    assert!(s.wait_logged(&format!(
        "!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {good_len} !!!"
    )));
    assert!(s.wait_logged(
        "AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"
    ));
    let mut c = s.client();
    assert_eq!(digest(&mut c), before);
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good_len);
}

#[test]
fn an_unfinished_multi_at_the_end_is_reverted() {
    let dir = TempDir::new("multi");
    let (before, incr) = one_key_then_kill9(&dir);
    append(
        &incr,
        b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r\n1\r\n",
    );
    let s = start(&dir, &[]);
    assert!(s.wait_logged(
        "Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"
    ));
    let mut c = s.client();
    assert_eq!(digest(&mut c), before);
}

#[test]
fn a_pre_7_single_file_aof_is_migrated_and_loaded() {
    let dir = TempDir::new("old");
    std::fs::write(
        dir.0.join("appendonly.aof"),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$5\r\nstyle\r\n#TS:1700000000\r\n*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n",
    )
    .unwrap();
    let s = start(&dir, &[]);
    assert!(s.wait_logged(
        "Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."
    ));
    let mut c = s.client();
    let v: String = c.get("old").unwrap();
    assert_eq!(v, "style");
    let l: Vec<String> = c.lrange("l", 0, -1).unwrap();
    assert_eq!(l, ["a"]);
    assert!(manifest(&dir).starts_with("file appendonly.aof seq 1 type b\n"));
    assert!(!dir.0.join("appendonly.aof").exists());
}

#[test]
fn with_appendonly_the_dump_file_is_not_loaded() {
    let dir = TempDir::new("rdb-ignored");
    {
        let s = Server::start(&["--dir", dir.path()]);
        let mut c = s.client();
        let _: () = c.set("from_rdb", "1").unwrap();
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    }
    let s = start(&dir, &[]);
    let mut c = s.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
    assert!(s.wait_logged("Creating AOF base file appendonly.aof.1.base.rdb on server start"));
}

fn rewrite_done(c: &mut redis::Connection, rewrites: u64) -> bool {
    info_field(c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
        && info_field(c, "persistence", "aof_rewrites")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= rewrites)
}

fn files(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.aof_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `write(connection, writer, i)` for i = 0, 1, … on 3 clients of `s`
/// while a BGREWRITEAOF runs (started once they write, waited for up to
/// `secs`, then more writes), and checks it succeeded.
fn rewrite_under_writes(
    s: &Server,
    c: &mut redis::Connection,
    secs: u64,
    write: fn(&mut redis::Connection, usize, u64),
) {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let mut c = s.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    write(&mut c, w, i);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r: String = redis::cmd("BGREWRITEAOF").query(c).unwrap();
    assert_eq!(r, "Background append only file rewriting started");
    assert!(wait_for(secs, || rewrite_done(c, 1)));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        info_field(c, "persistence", "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
}

/// After one rewrite the manifest names the second base (`.rdb` or `.aof`)
/// and incr file, and the first generation's files are gone.
fn only_second_generation(dir: &TempDir, base_ext: &str) {
    let base = format!("appendonly.aof.2.base.{base_ext}");
    assert_eq!(
        manifest(dir),
        format!("file {base} seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n")
    );
    assert_eq!(
        files(dir),
        [
            base.as_str(),
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
}

/// Kills `s` with SIGKILL and starts a server on `dir` again, which must load
/// the same data set (DEBUG DIGEST); returns that server.
fn kill9_and_restart(mut s: Server, dir: &TempDir) -> Server {
    let before = digest(&mut s.client());
    s.kill9();
    let s = start(dir, &[]);
    assert_eq!(digest(&mut s.client()), before);
    s
}

#[test]
fn bgrewriteaof_under_writes_switches_files_and_loses_nothing() {
    let dir = TempDir::new("rewrite");
    let s = start(&dir, &["--appendfsync", "always"]);
    let mut c = s.client();
    varied_writes(&mut c);
    rewrite_under_writes(&s, &mut c, 20, |c, w, i| {
        let _: () = c.set(format!("w{w}:{}", i % 500), i).unwrap();
        let _: i64 = c.incr(format!("count{w}"), 1).unwrap();
    });
    only_second_generation(&dir, "rdb");
    kill9_and_restart(s, &dir);
}

#[test]
fn a_failed_rewrite_leaves_the_old_files_usable() {
    let dir = TempDir::new("rewrite-fails");
    let s = start(&dir, &[]);
    let mut c = s.client();
    varied_writes(&mut c);
    // The temp base cannot be created: a directory holds its name.
    let pid = s.child.id();
    std::fs::create_dir(dir.0.join(format!("temp-rewriteaof-bg-{pid}.aof"))).unwrap();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert!(wait_for(20, || rewrite_done(&mut c, 1)));
    assert_eq!(
        info_field(&mut c, "persistence", "aof_last_bgrewrite_status").as_deref(),
        Some("err")
    );
    assert!(s.wait_logged("Background AOF rewrite terminated with error"));
    let _: () = c.set("after", "failure").unwrap();
    kill9_and_restart(s, &dir);
}

#[test]
fn config_set_appendonly_yes_starts_the_aof_with_a_rewrite() {
    let dir = TempDir::new("runtime");
    let s = Server::start(&["--threads", "2", "--dir", dir.path()]);
    let mut c = s.client();
    varied_writes(&mut c);
    assert_eq!(
        info_field(&mut c, "persistence", "aof_enabled").as_deref(),
        Some("0")
    );
    assert_eq!(info_field(&mut c, "persistence", "aof_current_size"), None);
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "appendonly", "yes"])
        .query(&mut c)
        .unwrap();
    assert!(wait_for(20, || rewrite_done(&mut c, 1)));
    let _: () = c.set("after", "enable").unwrap();
    assert_eq!(
        info_field(&mut c, "persistence", "aof_enabled").as_deref(),
        Some("1")
    );
    let size: u64 = info_field(&mut c, "persistence", "aof_current_size")
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0);
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let s = kill9_and_restart(s, &dir);
    let mut c = s.client();
    // And off again: the files stay, writes no longer go there.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "appendonly", "no"])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        info_field(&mut c, "persistence", "aof_enabled").as_deref(),
        Some("0")
    );
}

#[test]
fn every_kind_of_write_replies_with_always_and_survives_kill_9() {
    let dir = TempDir::new("kinds");
    let s = start(&dir, &["--appendfsync", "always"]);
    let mut c = s.client();
    varied_writes(&mut c);
    // Multi-shard transactions, scripts, whole-database commands, blocking pops.
    let _: Vec<redis::Value> = redis::pipe()
        .atomic()
        .set("x1", "a")
        .set("y2", "b")
        .cmd("MSET")
        .arg(&["p", "1", "q", "2"])
        .query(&mut c)
        .unwrap();
    let _: redis::Value = redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], 'e'); return redis.call('INCR', KEYS[2])")
        .arg(2)
        .arg("ev1")
        .arg("ev2")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(5).query(&mut c).unwrap();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(5).query(&mut c).unwrap();
    let _: i64 = c.sadd("src", &["1", "2"]).unwrap();
    let _: i64 = redis::cmd("SORT")
        .arg(&["src", "BY", "nosort", "STORE", "sorted"])
        .query(&mut c)
        .unwrap();
    let _: bool = c.expire("s10", 1000).unwrap();
    let mut b = s.client();
    let waiter = std::thread::spawn(move || {
        let r: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&["queue", "10"])
            .query(&mut b)
            .unwrap();
        r
    });
    std::thread::sleep(Duration::from_millis(100));
    let _: i64 = c.rpush("queue", &["job", "left"]).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap().1, "job");
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    varied_writes(&mut c);
    kill9_and_restart(s, &dir);
}

#[test]
fn a_replica_keeps_its_own_aof_restarted_after_its_full_sync() {
    let master = Server::start(&["--threads", "2"]);
    let mut m = master.client();
    varied_writes(&mut m);
    let dir = TempDir::new("replica");
    let port = master.port.to_string();
    let mut r = start(&dir, &["--replicaof", "127.0.0.1", &port]);
    let mut rc = r.client();
    assert!(wait_for(20, || r
        .count("Background AOF rewrite finished successfully")
        >= 1));
    let _: () = m.set("after", "sync").unwrap();
    let _: Vec<redis::Value> = redis::pipe()
        .atomic()
        .set("t3", "a")
        .incr("n", 1)
        .query(&mut m)
        .unwrap();
    let want = digest(&mut m);
    assert!(wait_for(20, || digest(&mut rc) == want));
    // The replica's AOF is written as its link applies the stream.
    std::thread::sleep(Duration::from_millis(300));
    r.kill9();
    let r = start(&dir, &[]);
    let mut rc = r.client();
    assert_eq!(digest(&mut rc), want);
}

// ------------------------------------------------- aof-use-rdb-preamble no

/// Keys of every type (collections past the 64 items a rewrite puts in one
/// command), streams with groups, pending entries and consumers without any,
/// empty streams, TTLs, a function library, several dbs.
fn every_type(c: &mut redis::Connection) {
    varied_writes(c);
    let q = |c: &mut redis::Connection, args: &[&str]| {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap();
    };
    let items: Vec<String> = (0..150).map(|i| format!("item{i}")).collect();
    let _: i64 = c.rpush("biglist", &items).unwrap();
    let _: i64 = c.sadd("bigset", &items).unwrap();
    let _: i64 = c
        .sadd("intset", (0..100).map(|i| i * 7).collect::<Vec<_>>())
        .unwrap();
    let pairs: Vec<(String, String)> = (0..130)
        .map(|i| (format!("f{i}"), format!("v{i}")))
        .collect();
    let _: () = c.hset_multiple("bighash", &pairs).unwrap();
    let scores: Vec<(f64, String)> = (0..140)
        .map(|i| (i as f64 * 1.1 - 50.0, format!("m{i}")))
        .collect();
    let _: i64 = c.zadd_multiple("bigzset", &scores).unwrap();
    q(
        c,
        &[
            "ZADD", "bigzset", "-inf", "low", "inf", "high", "0.1", "tenth",
        ],
    );
    q(c, &["SET", "bin", "\u{0}\r\n\u{ff}"]);
    // Streams.
    for i in 1..=8 {
        q(
            c,
            &[
                "XADD",
                "st",
                &format!("{i}-1"),
                "f",
                &i.to_string(),
                "g",
                "x",
            ],
        );
    }
    q(c, &["XDEL", "st", "8-1"]);
    q(c, &["XGROUP", "CREATE", "st", "g1", "0"]);
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "st",
            ">",
        ],
    );
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "st",
            ">",
        ],
    );
    q(c, &["XACK", "st", "g1", "2-1"]);
    q(
        c,
        &[
            "XCLAIM",
            "st",
            "g1",
            "carol",
            "0",
            "4-1",
            "RETRYCOUNT",
            "9",
            "TIME",
            "1700000000000",
        ],
    );
    q(c, &["XGROUP", "CREATECONSUMER", "st", "g1", "idle"]);
    q(c, &["XGROUP", "CREATE", "st", "g2", "$"]);
    q(
        c,
        &["XGROUP", "CREATE", "st", "g3", "3-1", "ENTRIESREAD", "3"],
    );
    q(
        c,
        &["XGROUP", "CREATE", "emptystream", "g", "$", "MKSTREAM"],
    );
    q(c, &["XADD", "drained", "5-5", "f", "v"]);
    q(c, &["XDEL", "drained", "5-5"]);
    // TTLs on several types, and keys in other dbs.
    q(c, &["PEXPIREAT", "biglist", "4102444800000"]);
    q(c, &["EXPIRE", "bighash", "100000"]);
    q(c, &["EXPIRE", "st", "100000"]);
    q(c, &["FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"]);
    q(c, &["SELECT", "7"]);
    q(c, &["RPUSH", "l7", "a", "b"]);
    q(c, &["SET", "ttl7", "v", "PX", "90000000"]);
    q(c, &["SELECT", "0"]);
}

/// What must survive a restart beyond DEBUG DIGEST (which leaves out stream
/// groups, TTLs and functions): XINFO STREAM FULL without the consumers'
/// seen-times (Redis sets them when loading), PEXPIRETIMEs, FUNCTION LIST.
fn state(c: &mut redis::Connection) -> String {
    fn scrub(v: &redis::Value) -> String {
        match v {
            redis::Value::Array(items) => {
                let mut out = Vec::new();
                let mut skip = false;
                for it in items {
                    if skip {
                        out.push("<time>".to_string());
                        skip = false;
                        continue;
                    }
                    skip = matches!(it, redis::Value::BulkString(b) if b == b"seen-time");
                    out.push(scrub(it));
                }
                format!("[{}]", out.join(" "))
            }
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }
    let mut out = vec![digest(c)];
    for key in ["st", "emptystream", "drained"] {
        let v: redis::Value = redis::cmd("XINFO")
            .arg(&["STREAM", key, "FULL"])
            .query(c)
            .unwrap();
        out.push(scrub(&v));
    }
    for key in ["biglist", "bighash", "st", "ttl", "s5"] {
        let t: i64 = redis::cmd("PEXPIRETIME").arg(key).query(c).unwrap();
        out.push(format!("{key}:{t}"));
    }
    let f: redis::Value = redis::cmd("FUNCTION").arg("LIST").query(c).unwrap();
    out.push(scrub(&f));
    let _: () = redis::cmd("SELECT").arg(7).query(c).unwrap();
    let t: i64 = redis::cmd("PEXPIRETIME").arg("ttl7").query(c).unwrap();
    out.push(format!("ttl7:{t} {}", digest(c)));
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    out.join("\n")
}

fn base_file(dir: &TempDir, name: &str) -> Vec<u8> {
    std::fs::read(dir.aof_dir().join(name)).unwrap()
}

#[test]
fn without_the_rdb_preamble_a_rewrite_under_writes_writes_commands_and_survives_kill_9() {
    let dir = TempDir::new("cmdbase");
    let no = ["--aof-use-rdb-preamble", "no"];
    let mut s = start(&dir, &no);
    let mut c = s.client();
    // Redis's start-up base of an empty data set: an empty file.
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(base_file(&dir, "appendonly.aof.1.base.aof").is_empty());
    every_type(&mut c);
    // Writers on every type while the snapshot is walked (their first
    // touches copy pre-images the base must show as of the barrier).
    rewrite_under_writes(&s, &mut c, 30, |c, w, i| {
        let _: () = c.set(format!("w{w}:{}", i % 300), i).unwrap();
        let _: i64 = c.rpush(format!("wl{w}"), i).unwrap();
        let _: i64 = c.hset(format!("wh{w}"), i % 100, i).unwrap();
        let _: i64 = c.zadd(format!("wz{w}"), i % 90, i as f64 / 3.0).unwrap();
        let _: String = redis::cmd("XADD")
            .arg(&[format!("wx{w}"), "*".into(), "i".into(), i.to_string()])
            .query(c)
            .unwrap();
        let _: i64 = c.sadd("bigset", format!("w{w}-{}", i % 50)).unwrap();
    });
    only_second_generation(&dir, "aof");
    let base = base_file(&dir, "appendonly.aof.2.base.aof");
    assert!(
        base.starts_with(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n"),
        "{:?}",
        &base[..40]
    );
    let text = String::from_utf8_lossy(&base);
    for needle in [
        "\r\nSELECT\r\n$1\r\n7\r\n",
        "*66\r\n$5\r\nRPUSH\r\n$7\r\nbiglist\r\n",
        "*130\r\n$5\r\nHMSET\r\n$7\r\nbighash\r\n",
        "\r\nXCLAIM\r\n$2\r\nst\r\n$2\r\ng1\r\n$5\r\ncarol\r\n$1\r\n0\r\n$3\r\n4-1\r\n$4\r\nTIME\r\n$13\r\n1700000000000\r\n$10\r\nRETRYCOUNT\r\n$1\r\n9\r\n$6\r\nJUSTID\r\n$5\r\nFORCE\r\n",
        "\r\nXGROUP\r\n$14\r\nCREATECONSUMER\r\n$2\r\nst\r\n$2\r\ng1\r\n$4\r\nidle\r\n",
        "\r\nXSETID\r\n$2\r\nst\r\n$3\r\n8-1\r\n$12\r\nENTRIESADDED\r\n$1\r\n8\r\n$12\r\nMAXDELETEDID\r\n$3\r\n8-1\r\n",
        "\r\nPEXPIREAT\r\n$7\r\nbiglist\r\n$13\r\n4102444800000\r\n",
    ] {
        assert!(text.contains(needle), "no {needle:?} in the base");
    }
    let before = state(&mut c);
    s.kill9();
    // Loading does not depend on the setting: the file says what it is.
    let s = start(&dir, &[]);
    assert!(s.wait_logged("DB loaded from base file appendonly.aof.2.base.aof"));
    let mut c = s.client();
    assert_eq!(state(&mut c), before);
}

#[test]
fn config_set_aof_use_rdb_preamble_switches_the_next_base() {
    let dir = TempDir::new("preamble-set");
    let mut s = Server::start(&["--threads", "2", "--dir", dir.path()]);
    let mut c = s.client();
    let get = |c: &mut redis::Connection| -> Vec<String> {
        redis::cmd("CONFIG")
            .arg(&["GET", "aof-use-rdb-preamble"])
            .query(c)
            .unwrap()
    };
    let set = |c: &mut redis::Connection, k: &str, v: &str| {
        let _: () = redis::cmd("CONFIG").arg(&["SET", k, v]).query(c).unwrap();
    };
    assert_eq!(get(&mut c), ["aof-use-rdb-preamble", "yes"]);
    set(&mut c, "aof-use-rdb-preamble", "no");
    assert_eq!(get(&mut c), ["aof-use-rdb-preamble", "no"]);
    let e = redis::cmd("CONFIG")
        .arg(&["SET", "aof-use-rdb-preamble", "maybe"])
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        (e.code(), e.detail()),
        (
            Some("ERR"),
            Some("CONFIG SET failed (possibly related to argument 'aof-use-rdb-preamble') - argument must be 'yes' or 'no'")
        )
    );
    every_type(&mut c);
    // Enabling the AOF: its first rewrite writes the command form.
    set(&mut c, "appendonly", "yes");
    assert!(wait_for(20, || rewrite_done(&mut c, 1)));
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(base_file(&dir, "appendonly.aof.1.base.aof").starts_with(b"*"));
    // With timestamps, the base opens with one.
    set(&mut c, "aof-timestamp-enabled", "yes");
    let _: () = c.set("between", "1").unwrap();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert!(wait_for(20, || rewrite_done(&mut c, 2)));
    let base = base_file(&dir, "appendonly.aof.2.base.aof");
    let first = base.split(|&b| b == b'\n').next().unwrap();
    assert!(
        first.starts_with(b"#TS:") && first.ends_with(b"\r"),
        "{first:?}"
    );
    assert!(base[first.len() + 1..].starts_with(b"*"));
    // Back to an RDB base.
    set(&mut c, "aof-use-rdb-preamble", "yes");
    let _: () = c.set("between", "2").unwrap();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert!(wait_for(20, || rewrite_done(&mut c, 3)));
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert!(base_file(&dir, "appendonly.aof.3.base.rdb").starts_with(b"REDIS"));
    let before = state(&mut c);
    s.kill9();
    let s = start(&dir, &[]);
    let mut c = s.client();
    assert_eq!(state(&mut c), before);
}

/// An AOF directory redis-server 7.0.15 wrote with `aof-use-rdb-preamble no`
/// and `aof-timestamp-enabled yes` (a rewrite, then two writes).
#[test]
fn a_command_form_base_written_by_redis_loads() {
    let dir = TempDir::new("redis-cmdbase");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/redis-7.0.15-command-aof");
    std::fs::create_dir_all(dir.aof_dir()).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.aof_dir().join(f.file_name())).unwrap();
    }
    let s = start(&dir, &[]);
    assert!(s.wait_logged("DB loaded from base file appendonly.aof.2.base.aof"));
    assert!(s.wait_logged("DB loaded from incr file appendonly.aof.2.incr.aof"));
    let mut c = s.client();
    // redis-server's DEBUG DIGEST before its shutdown.
    assert_eq!(digest(&mut c), "8a4397784890f8fb933800ba064c5eb97b3af8eb");
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&["x", "g", "-", "+", "10"])
        .query(&mut c)
        .unwrap();
    let redis::Value::Array(p) = pending else {
        panic!("{pending:?}")
    };
    assert_eq!(p.len(), 1);
    let redis::Value::Array(e) = &p[0] else {
        panic!("{p:?}")
    };
    assert_eq!(e[0], redis::Value::BulkString(b"1-1".to_vec()));
    assert_eq!(e[1], redis::Value::BulkString(b"carol".to_vec()));
    assert_eq!(e[3], redis::Value::Int(7));
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg(&["CONSUMERS", "x", "g"])
        .query(&mut c)
        .unwrap();
    assert_eq!(consumers.len(), 3);
    let t: i64 = redis::cmd("PEXPIRETIME").arg("s1").query(&mut c).unwrap();
    assert_eq!(t, 4102444800000);
    let n: i64 = redis::cmd("FCALL").arg(&["f", "0"]).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let h: i64 = c.hlen("bh").unwrap();
    assert_eq!(h, 66);
}

#[test]
fn debug_loadaof_reloads_the_files_and_propagates_nothing() {
    let dir = TempDir::new("loadaof");
    let s = start(&dir, &[]);
    let mut c = s.client();
    varied_writes(&mut c);
    let before = digest(&mut c);
    let size = |c: &mut redis::Connection| -> u64 {
        info_field(c, "persistence", "aof_current_size")
            .unwrap()
            .parse()
            .unwrap()
    };
    // The writes reach the file before the reload reads it.
    let written = size(&mut c);
    let _: () = redis::cmd("DEBUG").arg("LOADAOF").query(&mut c).unwrap();
    assert!(s.wait_logged("Append Only File loaded by DEBUG LOADAOF"));
    assert!(s.wait_logged("DB loaded from incr file appendonly.aof.1.incr.aof"));
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save").as_deref(),
        Some("0")
    );
    // Nothing loaded went to the file again; new writes still do.
    assert_eq!(size(&mut c), written);
    let _: () = c.set("after", "1").unwrap();
    assert!(wait_for(5, || size(&mut c) > written));
    drop(c);
    drop(s);
    let s = start(&dir, &[]);
    let mut c = s.client();
    let _: () = c.del("after").unwrap();
    assert_eq!(digest(&mut c), before);
}

#[test]
fn debug_loadaof_with_no_aof_exits_as_redis_does() {
    // Redis 7.0.15 finds no AOF to load and calls exit(1).
    let dir = TempDir::new("loadaof-none");
    let mut s = Server::start(&["--dir", dir.path()]);
    let mut c = s.client();
    let _: () = c.set("k", "v").unwrap();
    let r: redis::RedisResult<()> = redis::cmd("DEBUG").arg("LOADAOF").query(&mut c);
    assert!(r.is_err());
    let status = s.exited_within(10).expect("the server exits");
    assert_eq!(status.code(), Some(1));
}
