//! FLUSHALL, FLUSHDB and SWAPDB hold every shard: no reader sees one half
//! done, and replicas receive them in the same place relative to every
//! shard's writes (digests equal under a concurrent write load).

mod common;

use common::{info_field, wait_for, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn flushall_is_never_seen_half_done_and_replicates_in_place() {
    let m = Server::start(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let port = m.port.to_string();
    let r = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    assert!(wait_for(20, || {
        let mut c = r.client();
        info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    }));
    // Keys on both shards, always written together.
    let keys: Vec<String> = (0..8).map(|i| format!("pair:{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, keys, port) = (stop.clone(), keys.clone(), m.port);
        std::thread::spawn(move || {
            let mut c = connect(port);
            let mut v = 0u64;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                let mut cmd = redis::cmd("MSET");
                for k in &keys {
                    cmd.arg(k).arg(v);
                }
                let _: () = cmd.query(&mut c).unwrap();
                // Single-key writes too: each shard's log runs on its own.
                let _: () = redis::cmd("SET")
                    .arg(&keys[0])
                    .arg(v)
                    .query(&mut c)
                    .unwrap();
                let _: () = redis::cmd("SET")
                    .arg(&keys[1])
                    .arg(v)
                    .query(&mut c)
                    .unwrap();
            }
        })
    };
    let reader = {
        let (stop, keys, port) = (stop.clone(), keys.clone(), m.port);
        std::thread::spawn(move || {
            let mut c = connect(port);
            let mut half = 0;
            while !stop.load(Ordering::Relaxed) {
                let vals: Vec<Option<u64>> =
                    redis::cmd("MGET").arg(&keys[2..]).query(&mut c).unwrap();
                let present = vals.iter().filter(|v| v.is_some()).count();
                if present != 0 && present != vals.len() {
                    half += 1;
                }
            }
            half
        })
    };
    let mut c = m.client();
    for i in 0..300 {
        let cmd = if i % 2 == 0 { "FLUSHALL" } else { "FLUSHDB" };
        let _: () = redis::cmd(cmd).query(&mut c).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), 0, "a reader saw a half-done flush");
    let mut mc = m.client();
    let mut rc = r.client();
    let digest = |c: &mut redis::Connection| -> String {
        redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
    };
    assert!(
        wait_for(30, || {
            info_field(&mut mc, "replication", "master_repl_offset")
                == info_field(&mut rc, "replication", "slave_repl_offset")
                && digest(&mut mc) == digest(&mut rc)
        }),
        "replica diverged after FLUSHALL under writes"
    );
    // Inside MULTI the flush is ordered with the transaction's own writes.
    let (a, b): (String, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("before")
        .arg(1)
        .ignore()
        .cmd("FLUSHALL")
        .cmd("SET")
        .arg("after")
        .arg(1)
        .query(&mut mc)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("OK", "OK"));
    assert!(wait_for(30, || digest(&mut mc) == digest(&mut rc)));
    let before: Option<String> = redis::cmd("GET").arg("before").query(&mut rc).unwrap();
    assert_eq!(before, None);
}
