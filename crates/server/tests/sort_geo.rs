//! SORT with BY/GET patterns whose keys live on other shards, GEO searches
//! that store across shards, and their replication, on the real binary.

mod common;

use common::{digest, wait_for, Server};

/// The ids sorted, their weights and objects spread over every shard: ids
/// 0..20, weight `w_<id>` = (7 * id) mod 20, object `o_<id>`, hash `h_<id>`.
fn load(c: &mut redis::Connection) {
    let ids: Vec<i64> = (0..20).collect();
    let _: () = redis::cmd("RPUSH").arg("ids").arg(&ids).query(c).unwrap();
    for id in ids {
        let _: () = redis::cmd("MSET")
            .arg(format!("w_{id}"))
            .arg((7 * id) % 20)
            .arg(format!("o_{id}"))
            .arg(format!("obj{id}"))
            .query(c)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("h_{id}"))
            .arg("name")
            .arg(format!("n{id}"))
            .query(c)
            .unwrap();
    }
}

/// The ids in weight order, as SORT ids BY w_* must return them.
fn by_weight() -> Vec<i64> {
    let mut ids: Vec<i64> = (0..20).collect();
    ids.sort_by_key(|id| (7 * id) % 20);
    ids
}

#[test]
fn sort_by_and_get_read_keys_on_every_shard() {
    let srv = Server::start(&["--threads", "4"]);
    let mut c = srv.client();
    load(&mut c);
    let sorted: Vec<i64> = redis::cmd("SORT")
        .arg(&["ids", "BY", "w_*"])
        .query(&mut c)
        .unwrap();
    assert_eq!(sorted, by_weight());
    let got: Vec<Option<String>> = redis::cmd("SORT")
        .arg(&[
            "ids",
            "BY",
            "w_*",
            "DESC",
            "LIMIT",
            "0",
            "5",
            "GET",
            "#",
            "GET",
            "o_*",
            "GET",
            "h_*->name",
            "GET",
            "nokey_*",
        ])
        .query(&mut c)
        .unwrap();
    let mut want = Vec::new();
    for id in by_weight().into_iter().rev().take(5) {
        want.push(Some(id.to_string()));
        want.push(Some(format!("obj{id}")));
        want.push(Some(format!("n{id}")));
        want.push(None);
    }
    assert_eq!(got, want);
    // STORE to a key on whatever shard it hashes to, then read it back.
    let n: i64 = redis::cmd("SORT")
        .arg(&[
            "ids",
            "BY",
            "h_*->name",
            "ALPHA",
            "GET",
            "o_*",
            "STORE",
            "dest",
        ])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 20);
    let stored: Vec<String> = redis::cmd("LRANGE")
        .arg(&["dest", "0", "-1"])
        .query(&mut c)
        .unwrap();
    let mut names: Vec<i64> = (0..20).collect();
    names.sort_by_key(|id| format!("n{id}"));
    assert_eq!(
        stored,
        names
            .iter()
            .map(|id| format!("obj{id}"))
            .collect::<Vec<_>>()
    );
    // Inside MULTI: the transaction's later SORT sees its earlier write.
    let (first, second): (Vec<i64>, Vec<i64>) = redis::pipe()
        .atomic()
        .cmd("SORT")
        .arg(&["ids", "BY", "w_*", "LIMIT", "0", "1"])
        .cmd("SET")
        .arg(&["w_0", "100"])
        .ignore()
        .cmd("SORT")
        .arg(&["ids", "BY", "w_*", "LIMIT", "0", "1"])
        .query(&mut c)
        .unwrap();
    // 7 * 3 mod 20 = 1: after w_0 moves to 100, id 3 weighs least.
    assert_eq!((first, second), (vec![0], vec![3]));
    let last: Vec<i64> = redis::cmd("SORT")
        .arg(&["ids", "BY", "w_*", "DESC", "LIMIT", "0", "1"])
        .query(&mut c)
        .unwrap();
    assert_eq!(last, vec![0]);
}

#[test]
fn sort_with_patterns_never_sees_half_an_mset() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let ids: Vec<i64> = (0..10).collect();
    let _: () = redis::cmd("RPUSH")
        .arg("ids")
        .arg(&ids)
        .query(&mut c)
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut w = srv.client();
    let stop2 = stop.clone();
    // One writer sets every weight to the same generation in one MSET.
    let writer = std::thread::spawn(move || {
        let mut gen = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let mut cmd = redis::cmd("MSET");
            for id in 0..10 {
                cmd.arg(format!("w_{id}")).arg(gen);
            }
            let _: () = cmd.query(&mut w).unwrap();
            gen += 1;
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut reads = 0;
    while reads < 200 && std::time::Instant::now() < deadline {
        let got: Vec<Option<String>> = redis::cmd("SORT")
            .arg(&["ids", "BY", "w_*", "GET", "w_*"])
            .query(&mut c)
            .unwrap();
        assert!(
            got.iter().all(|v| v == &got[0]),
            "SORT saw a torn MSET: {got:?}"
        );
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(reads, 200, "only {reads} SORTs answered in 60 s");
}

fn offset(c: &mut redis::Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg("replication").query(c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.to_string()))
}

#[test]
fn geo_and_sort_stores_replicate() {
    let master = Server::start(&["--threads", "2"]);
    let p = master.port.to_string();
    let replica = Server::start(&[
        "--threads",
        "2",
        "--replicaof",
        "127.0.0.1",
        &p,
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut m = master.client();
    let mut r = replica.client();
    assert!(wait_for(30, || offset(&mut r, "master_link_status")
        .as_deref()
        == Some("up")));
    load(&mut m);
    let _: i64 = redis::cmd("GEOADD")
        .arg(&[
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ])
        .query(&mut m)
        .unwrap();
    let _: i64 = redis::cmd("GEORADIUS")
        .arg(&["Sicily", "15", "37", "200", "km", "STOREDIST", "near"])
        .query(&mut m)
        .unwrap();
    let _: i64 = redis::cmd("GEOSEARCHSTORE")
        .arg(&[
            "box",
            "Sicily",
            "FROMMEMBER",
            "Palermo",
            "BYBOX",
            "400",
            "400",
            "km",
        ])
        .query(&mut m)
        .unwrap();
    let _: i64 = redis::cmd("SORT")
        .arg(&[
            "ids",
            "BY",
            "w_*",
            "GET",
            "o_*",
            "GET",
            "h_*->name",
            "STORE",
            "sorted",
        ])
        .query(&mut m)
        .unwrap();
    let synced = wait_for(30, || {
        let mo = offset(&mut m, "master_repl_offset");
        mo.is_some()
            && mo == offset(&mut r, "slave_repl_offset")
            && digest(&mut m) == digest(&mut r)
    });
    assert!(synced, "replica did not converge");
    let near: Vec<(String, String)> = redis::cmd("ZRANGE")
        .arg(&["near", "0", "-1", "WITHSCORES"])
        .query(&mut r)
        .unwrap();
    assert_eq!(near.len(), 2);
    let sorted: i64 = redis::cmd("LLEN").arg("sorted").query(&mut r).unwrap();
    assert_eq!(sorted, 40);
}
