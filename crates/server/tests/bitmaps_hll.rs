//! Bitmaps and HyperLogLog on the real binary, where their keys live on
//! different shards (`{a}` and `{b}` hash to different cores with two
//! threads), and through replication.

mod common;

use common::{digest, wait_for, Server};

/// Sets bit `i` of `buf` (Redis numbering: most significant bit first).
fn set_bit(buf: &mut Vec<u8>, i: usize) {
    if buf.len() <= i / 8 {
        buf.resize(i / 8 + 1, 0);
    }
    buf[i / 8] |= 0x80 >> (i % 8);
}

#[test]
fn bitop_across_shards_matches_a_local_computation() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in (0..400).step_by(3) {
        let _: i64 = redis::cmd("SETBIT")
            .arg("{a}x")
            .arg(i)
            .arg(1)
            .query(&mut c)
            .unwrap();
        set_bit(&mut x, i);
    }
    for i in (0..200).step_by(5) {
        let _: i64 = redis::cmd("SETBIT")
            .arg("{b}y")
            .arg(i)
            .arg(1)
            .query(&mut c)
            .unwrap();
        set_bit(&mut y, i);
    }
    let byte = |v: &Vec<u8>, j: usize| v.get(j).copied().unwrap_or(0);
    let n = x.len().max(y.len());
    type ByteOp = fn(u8, u8) -> u8;
    let cases: [(&str, ByteOp); 3] = [
        ("AND", |a, b| a & b),
        ("OR", |a, b| a | b),
        ("XOR", |a, b| a ^ b),
    ];
    for (op, f) in cases {
        let len: usize = redis::cmd("BITOP")
            .arg(op)
            .arg("{c}dest")
            .arg("{a}x")
            .arg("{b}y")
            .query(&mut c)
            .unwrap();
        assert_eq!(len, n);
        let got: Vec<u8> = redis::cmd("GET").arg("{c}dest").query(&mut c).unwrap();
        let want: Vec<u8> = (0..n).map(|j| f(byte(&x, j), byte(&y, j))).collect();
        assert_eq!(got, want, "BITOP {op}");
    }
    let _: usize = redis::cmd("BITOP")
        .arg("NOT")
        .arg("{b}dest")
        .arg("{a}x")
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("{b}dest").query(&mut c).unwrap();
    assert_eq!(got, x.iter().map(|b| !b).collect::<Vec<u8>>());
    // An empty result deletes the destination wherever it lives.
    let len: usize = redis::cmd("BITOP")
        .arg("OR")
        .arg("{b}dest")
        .arg("{a}none")
        .arg("{c}none")
        .query(&mut c)
        .unwrap();
    assert_eq!(len, 0);
    let exists: i64 = redis::cmd("EXISTS").arg("{b}dest").query(&mut c).unwrap();
    assert_eq!(exists, 0);
    let _: () = redis::cmd("LPUSH")
        .arg("{b}list")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let e = redis::cmd("BITOP")
        .arg("OR")
        .arg("{c}dest")
        .arg("{a}x")
        .arg("{b}list")
        .query::<usize>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
}

#[test]
fn pfmerge_and_pfcount_across_shards_agree_with_one_hll() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let a: Vec<String> = (0..3000).map(|i| format!("e{i}")).collect();
    let b: Vec<String> = (2000..4000).map(|i| format!("e{i}")).collect();
    let _: i64 = redis::cmd("PFADD")
        .arg("{a}h")
        .arg(&a)
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("PFADD")
        .arg("{b}h")
        .arg(&b)
        .query(&mut c)
        .unwrap();
    // The same elements in one HyperLogLog on one shard.
    let _: i64 = redis::cmd("PFADD")
        .arg("{c}all")
        .arg(&a)
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("PFADD")
        .arg("{c}all")
        .arg(&b)
        .query(&mut c)
        .unwrap();
    let all: i64 = redis::cmd("PFCOUNT").arg("{c}all").query(&mut c).unwrap();
    let union: i64 = redis::cmd("PFCOUNT")
        .arg("{a}h")
        .arg("{b}h")
        .arg("{d}none")
        .query(&mut c)
        .unwrap();
    assert_eq!(union, all);
    assert!((3800..4200).contains(&all), "estimate {all} for 4000");
    let ok: String = redis::cmd("PFMERGE")
        .arg("{d}m")
        .arg("{a}h")
        .arg("{b}h")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let merged: i64 = redis::cmd("PFCOUNT").arg("{d}m").query(&mut c).unwrap();
    assert_eq!(merged, all);
    // Registers are a per-register maximum: identical whatever the order.
    let regs = |c: &mut redis::Connection, k: &str| -> Vec<i64> {
        redis::cmd("PFDEBUG").arg("GETREG").arg(k).query(c).unwrap()
    };
    assert_eq!(regs(&mut c, "{d}m"), regs(&mut c, "{c}all"));
    // The sources are untouched by the merge.
    let ca: i64 = redis::cmd("PFCOUNT").arg("{a}h").query(&mut c).unwrap();
    let mut local = srv.client();
    let _: i64 = redis::cmd("PFADD")
        .arg("{a}copy")
        .arg(&a)
        .query(&mut local)
        .unwrap();
    let cc: i64 = redis::cmd("PFCOUNT")
        .arg("{a}copy")
        .query(&mut local)
        .unwrap();
    assert_eq!(ca, cc);
    let _: () = redis::cmd("SET")
        .arg("{b}str")
        .arg("not an hll")
        .query(&mut c)
        .unwrap();
    let e = redis::cmd("PFMERGE")
        .arg("{d}m")
        .arg("{a}h")
        .arg("{b}str")
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
}

#[test]
fn replica_converges_on_bitmap_and_hll_writes() {
    let master = Server::start(&["--threads", "2"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    let mut r = replica.client();
    assert!(
        wait_for(30, || {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
            info.contains("master_link_status:up")
        }),
        "replica never linked"
    );
    let mut m = master.client();
    for i in 0..50 {
        let k = if i % 2 == 0 { "{a}bits" } else { "{b}bits" };
        let _: i64 = redis::cmd("SETBIT")
            .arg(k)
            .arg(i * 37)
            .arg(1)
            .query(&mut m)
            .unwrap();
        let _: redis::Value = redis::cmd("BITFIELD")
            .arg("{a}bf")
            .arg("OVERFLOW")
            .arg("SAT")
            .arg("INCRBY")
            .arg("i5")
            .arg(format!("#{}", i % 7))
            .arg(i * 3 - 40)
            .query(&mut m)
            .unwrap();
        let els: Vec<String> = (0..60).map(|j| format!("{i}-{j}")).collect();
        let hk = if i % 2 == 0 { "{a}h" } else { "{b}h" };
        let _: i64 = redis::cmd("PFADD").arg(hk).arg(&els).query(&mut m).unwrap();
        // A refreshed cached count is a write Redis propagates.
        let _: i64 = redis::cmd("PFCOUNT").arg(hk).query(&mut m).unwrap();
    }
    let _: usize = redis::cmd("BITOP")
        .arg("XOR")
        .arg("{c}x")
        .arg("{a}bits")
        .arg("{b}bits")
        .query(&mut m)
        .unwrap();
    let _: String = redis::cmd("PFMERGE")
        .arg("{c}m")
        .arg("{a}h")
        .arg("{b}h")
        .query(&mut m)
        .unwrap();
    let _: i64 = redis::cmd("PFDEBUG")
        .arg("TODENSE")
        .arg("{a}h")
        .query(&mut m)
        .unwrap();
    assert!(
        wait_for(30, || digest(&mut m) == digest(&mut r)),
        "replica did not converge: {} vs {}",
        digest(&mut m),
        digest(&mut r)
    );
    for k in ["{a}h", "{b}h", "{c}m", "{c}x", "{a}bf"] {
        let want: Vec<u8> = redis::cmd("GET").arg(k).query(&mut m).unwrap();
        let got: Vec<u8> = redis::cmd("GET").arg(k).query(&mut r).unwrap();
        assert_eq!(got, want, "{k}");
    }
}
