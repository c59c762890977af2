//! RDB persistence end to end: SAVE/BGSAVE and reload, point-in-time BGSAVE
//! under writes, save points, SHUTDOWN [NOSAVE], SIGTERM, and a crash during a
//! save leaving the previous dump intact.

mod common;

use common::{digest, wait_for, Server, TempDir};
use redis::Commands;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts a 2-thread server persisting to `dir/dump.rdb` with `extra` args
/// (which may override the `--save ""` the harness passes).
fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec![
        "--threads",
        "2",
        "--dir",
        dir.path(),
        "--dbfilename",
        "dump.rdb",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A field of INFO persistence, which must be there.
fn info_field(con: &mut redis::Connection, field: &str) -> String {
    common::info_field(con, "persistence", field)
        .unwrap_or_else(|| panic!("no {field} in INFO persistence"))
}

/// Waits for a BGSAVE to finish and checks it succeeded.
fn wait_bgsave(con: &mut redis::Connection, secs: u64) {
    assert!(
        wait_for(secs, || info_field(con, "rdb_bgsave_in_progress") == "0"),
        "BGSAVE still running after {secs} s"
    );
    assert_eq!(info_field(con, "rdb_last_bgsave_status"), "ok");
}

/// Every type, TTLs, and several databases.
fn populate(con: &mut redis::Connection) {
    for i in 0..200 {
        let _: () = con.set(format!("s:{i}"), format!("v{i}")).unwrap();
        let _: () = con.rpush(format!("l:{}", i % 7), i).unwrap();
        let _: () = con.sadd(format!("set:{}", i % 5), i).unwrap();
        let _: () = con.sadd("strset", format!("m{i}")).unwrap();
        let _: () = con
            .hset(format!("h:{}", i % 3), format!("f{i}"), i)
            .unwrap();
        let _: () = con
            .zadd(format!("z:{}", i % 4), format!("m{i}"), i as f64 / 3.0)
            .unwrap();
    }
    let _: () = con.set("int", 12345).unwrap();
    let _: () = con.set("big", "x".repeat(100_000)).unwrap();
    let _: () = con.expire("s:1", 10_000).unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg("l:3")
        .arg(50_000_000)
        .query(con)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(5).query(con).unwrap();
    let _: () = con.set("in-db-5", "five").unwrap();
    let _: () = con.hset("hash5", "a", "b").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(con).unwrap();
}

/// Whether the process has exited within `secs`.
fn exits_within(srv: &mut Server, secs: u64) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if let Some(st) = srv.child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn shutdown(con: &mut redis::Connection, args: &[&str]) {
    // On success SHUTDOWN replies nothing: the connection closes.
    let r: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg(args).query(con);
    assert!(r.is_err(), "SHUTDOWN {args:?} replied {r:?}");
}

#[test]
fn save_and_restart_keeps_digest() {
    let dir = TempDir::new("save");
    let before = {
        let srv = start(&dir, &[]);
        let mut con = srv.client();
        populate(&mut con);
        let d = digest(&mut con);
        assert_ne!(d, "0".repeat(40));
        let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
        assert_eq!(ok, "OK");
        d
    };
    assert!(dir.dump().exists());
    let srv = start(&dir, &[]);
    let mut con = srv.client();
    assert_eq!(digest(&mut con), before);
    let v: String = con.get("s:7").unwrap();
    assert_eq!(v, "v7");
    let ttl: i64 = con.ttl("s:1").unwrap();
    assert!(ttl > 9_000 && ttl <= 10_000, "ttl {ttl}");
    // BGSAVE of the reloaded data, and once more a restart.
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    wait_bgsave(&mut con, 20);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), before);
}

#[test]
fn bgsave_under_writes_is_point_in_time() {
    let dir = TempDir::new("pit");
    const PAD: usize = 100_000;
    let srv = start(&dir, &[]);
    let mut con = srv.client();
    // Padding so the snapshot takes a while to write.
    for batch in 0..PAD / 1000 {
        let mut cmd = redis::cmd("MSET");
        for i in batch * 1000..(batch + 1) * 1000 {
            cmd.arg(format!("pad:{i}")).arg(format!("{i:0>100}"));
        }
        let _: () = cmd.query(&mut con).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let mut w = srv.client();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _: () = redis::cmd("MSET")
                    .arg(format!("a:{n}"))
                    .arg(n)
                    .arg("last")
                    .arg(n)
                    .query(&mut w)
                    .unwrap();
                written.store(n, Ordering::Relaxed);
            }
        })
    };
    assert!(wait_for(20, || written.load(Ordering::Relaxed) >= 500));
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    let at_start = written.load(Ordering::Relaxed);
    wait_bgsave(&mut con, 60);
    let at_end = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(con);
    drop(srv);

    let srv = start(&dir, &[]);
    let mut con = srv.client();
    let last: u64 = con.get("last").unwrap();
    assert!(
        last + 1 >= at_start && last <= at_end,
        "last {last} outside the save window {at_start}..={at_end}"
    );
    let ids: Vec<u64> = (1..=last + 10).collect();
    for chunk in ids.chunks(1000) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("a:{i}")).collect();
        let vals: Vec<Option<u64>> = con.mget(&keys).unwrap();
        for (i, v) in chunk.iter().zip(vals) {
            if *i <= last {
                assert_eq!(v, Some(*i), "a:{i} with last {last}");
            } else {
                assert_eq!(v, None, "a:{i} present but last is {last}");
            }
        }
    }
    let size: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, PAD as u64 + last + 1, "stray keys in the dump");
}

#[test]
fn save_point_triggers_background_save() {
    let dir = TempDir::new("savepoint");
    let srv = start(&dir, &["--save", "1 1"]);
    let mut con = srv.client();
    assert!(!dir.dump().exists());
    let _: () = con.set("k", "v").unwrap();
    assert!(
        wait_for(15, || dir.dump().exists()),
        "no dump.rdb 15 s after a write with save point 1 1"
    );
    assert!(wait_for(10, || info_field(
        &mut con,
        "rdb_changes_since_last_save"
    ) == "0"));
    assert!(wait_for(5, || srv.logged("DB saved on disk")));
    drop(con);
    drop(srv);
    let srv = start(&dir, &[]);
    let v: String = srv.client().get("k").unwrap();
    assert_eq!(v, "v");
}

#[test]
fn shutdown_saves_with_save_points_and_nosave_does_not() {
    let dir = TempDir::new("shutdown");
    let mut srv = start(&dir, &["--save", "3600 1"]);
    let mut con = srv.client();
    populate(&mut con);
    let before = digest(&mut con);
    shutdown(&mut con, &[]);
    let st = exits_within(&mut srv, 20).expect("server still running after SHUTDOWN");
    assert!(st.success(), "{st:?}");
    assert!(
        dir.dump().exists(),
        "SHUTDOWN with save points wrote no dump"
    );
    assert!(srv.wait_logged("DB saved on disk"));
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), before);
    drop(srv);

    let dir = TempDir::new("nosave");
    let mut srv = start(&dir, &["--save", "3600 1"]);
    let mut con = srv.client();
    populate(&mut con);
    shutdown(&mut con, &["NOSAVE"]);
    let st = exits_within(&mut srv, 20).expect("server still running after SHUTDOWN NOSAVE");
    assert!(st.success(), "{st:?}");
    assert!(!dir.dump().exists(), "SHUTDOWN NOSAVE wrote a dump");
}

#[test]
fn sigterm_with_save_points_saves() {
    let dir = TempDir::new("sigterm");
    let mut srv = start(&dir, &["--save", "3600 1"]);
    let mut con = srv.client();
    populate(&mut con);
    let before = digest(&mut con);
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) },
        0
    );
    let st = exits_within(&mut srv, 20).expect("server still running after SIGTERM");
    assert!(st.success(), "{st:?}");
    assert!(wait_for(5, || srv
        .logged("Saving the final RDB snapshot before exiting.")));
    assert!(dir.dump().exists());
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), before);
}

#[test]
fn kill9_during_big_save_keeps_previous_dump() {
    let dir = TempDir::new("kill9");
    let mut srv = start(&dir, &[]);
    let mut con = srv.client();
    populate(&mut con);
    let before = digest(&mut con);
    let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    let saved = std::fs::read(dir.dump()).unwrap();
    // ~200 MB more, in 2 MB values, then a BGSAVE killed as soon as it starts.
    let blob = vec![b'z'; 2 << 20];
    for i in 0..100 {
        let _: () = con.set(format!("blob:{i}"), &blob[..]).unwrap();
    }
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    // Kill it mid-write: once its temp file has data.
    let writing = wait_for(10, || {
        leftover_temp_files(Path::new(dir.path()))
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    });
    srv.kill9();
    assert!(writing, "BGSAVE never started writing its temp file");
    assert_eq!(
        std::fs::read(dir.dump()).unwrap(),
        saved,
        "dump.rdb changed by a save that never finished"
    );
    let srv = start(&dir, &[]);
    let mut con = srv.client();
    assert_eq!(digest(&mut con), before);
    let blobs: i64 = con.exists("blob:0").unwrap();
    assert_eq!(blobs, 0);
}

/// `temp-*.rdb` files in `dir`.
fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("temp-"))
        })
        .collect()
}

/// SHUTDOWN NOSAVE during a BGSAVE leaves neither a temp file nor a new dump,
/// BGSAVE [SCHEDULE] during a save gets Redis's error, and `dir` is entered
/// (CONFIG GET dir answers the absolute path, as Redis does after its chdir).
#[test]
fn shutdown_nosave_during_bgsave_removes_the_temp_file() {
    let dir = TempDir::new("nosave-bgsave");
    let mut srv = start(&dir, &[]);
    let mut con = srv.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query(&mut con)
        .unwrap();
    let absolute = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(got, vec!["dir".to_string(), absolute.display().to_string()]);
    let blob = vec![b'q'; 2 << 20];
    for i in 0..100 {
        let _: () = con.set(format!("blob:{i}"), &blob[..]).unwrap();
    }
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    for args in [&[][..], &["SCHEDULE"][..]] {
        let err = redis::cmd("BGSAVE")
            .arg(args)
            .query::<String>(&mut con)
            .unwrap_err();
        assert_eq!(err.detail(), Some("Background save already in progress"));
    }
    shutdown(&mut con, &["NOSAVE"]);
    assert!(exits_within(&mut srv, 20).is_some(), "still running");
    assert!(srv.wait_logged("There is a child saving an .rdb. Killing it!"));
    assert_eq!(
        leftover_temp_files(Path::new(dir.path())),
        Vec::<PathBuf>::new()
    );
}

/// stop-writes-on-bgsave-error (default yes): after a failed BGSAVE, with save
/// points set, writes and PING get Redis's -MISCONF until a save succeeds.
#[test]
fn failed_bgsave_stops_writes_until_a_save_succeeds() {
    const MISCONF: &str =
        "Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.";
    let dir = TempDir::new("misconf");
    let sub = dir.0.join("gone");
    std::fs::create_dir_all(&sub).unwrap();
    let s = Server::start(&["--dir", sub.to_str().unwrap(), "--save", "3600 1"]);
    let mut c = s.client();
    let refused = |c: &mut redis::Connection, args: &[&str]| -> Option<String> {
        match redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(c) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "{} {}",
                e.code().unwrap_or_default(),
                e.detail().unwrap_or_default()
            )),
        }
    };
    let _: () = c.set("k", "v").unwrap();
    // The dump's directory disappears: the next BGSAVE cannot write.
    std::fs::remove_dir_all(&sub).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert!(wait_for(10, || info_field(
        &mut c,
        "rdb_last_bgsave_status"
    ) == "err"));
    for args in [&["SET", "k", "v2"][..], &["PING"]] {
        let e = refused(&mut c, args).expect("refused");
        assert!(
            e.starts_with(&format!("MISCONF {MISCONF}")),
            "{args:?}: {e}"
        );
    }
    let v: String = c.get("k").unwrap();
    assert_eq!(v, "v", "reads still work");
    // With stop-writes-on-bgsave-error no, writes are allowed again.
    let set_flag = |c: &mut redis::Connection, v: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("stop-writes-on-bgsave-error")
            .arg(v)
            .query(c)
            .unwrap();
    };
    set_flag(&mut c, "no");
    assert_eq!(refused(&mut c, &["SET", "k", "v3"]), None);
    set_flag(&mut c, "yes");
    assert!(refused(&mut c, &["SET", "k", "v4"]).is_some());
    // A successful save lifts it: SAVE, as Redis's rdbSave, and BGSAVE.
    std::fs::create_dir_all(&sub).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(refused(&mut c, &["SET", "k", "v5"]), None);
    std::fs::remove_dir_all(&sub).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert!(wait_for(10, || info_field(
        &mut c,
        "rdb_last_bgsave_status"
    ) == "err"));
    assert!(refused(&mut c, &["SET", "k", "v6"]).is_some());
    std::fs::create_dir_all(&sub).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    wait_bgsave(&mut c, 10);
    assert_eq!(refused(&mut c, &["SET", "k", "v7"]), None);
}
