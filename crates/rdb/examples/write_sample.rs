//! Writes a sample RDB file (and DUMP payloads) covering every type the writer
//! emits, for testdata/interop-check.sh to load into the real redis-server.
//!
//! Usage: `write_sample OUT_DIR` → `OUT_DIR/sample.rdb`, `OUT_DIR/dump-*.bin`.

use bytes::Bytes;
use shardis_rdb::{
    dump_payload, HeaderAux, PendingEntry, RdbStream, RdbValue, RdbWriter, ReplAux, StreamConsumer,
    StreamEntry, StreamGroup, StreamId, WriterOptions,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sample_stream() -> RdbStream {
    let id = |ms, seq| StreamId { ms, seq };
    // 250 entries: several listpack nodes, mixed same/different field sets.
    let entries: Vec<StreamEntry> = (1..=250u64)
        .map(|i| StreamEntry {
            id: id(1000 + i / 3, i % 3),
            fields: if i % 7 == 0 {
                vec![(b("other"), b(&format!("v{i}")))]
            } else {
                vec![
                    (b("n"), b(&i.to_string())),
                    (b("name"), b(&format!("item-{i}"))),
                ]
            },
        })
        .collect();
    let last = entries.last().map(|e| e.id).unwrap_or_default();
    let p1 = entries[0].id;
    let p2 = entries[1].id;
    RdbStream {
        first_id: entries[0].id,
        last_id: last,
        max_deleted_id: id(0, 0),
        entries_added: entries.len() as u64,
        groups: vec![StreamGroup {
            name: b("g1"),
            last_id: p2,
            entries_read: 2,
            pel: vec![
                PendingEntry {
                    id: p1,
                    delivery_time_ms: 1_700_000_000_000,
                    delivery_count: 1,
                },
                PendingEntry {
                    id: p2,
                    delivery_time_ms: 1_700_000_000_500,
                    delivery_count: 3,
                },
            ],
            consumers: vec![
                StreamConsumer {
                    name: b("alice"),
                    seen_time_ms: 1_700_000_000_000,
                    active_time_ms: 1_700_000_000_000,
                    pending: vec![p1],
                },
                StreamConsumer {
                    name: b("bob"),
                    seen_time_ms: 1_700_000_000_500,
                    active_time_ms: 1_700_000_000_500,
                    pending: vec![p2],
                },
            ],
        }],
        entries,
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: write_sample OUT_DIR");
    let far = Some(4_102_444_800_000); // 2100-01-01
    let db0: Vec<(&str, RdbValue, Option<u64>)> = vec![
        ("str:plain", RdbValue::String(b("hello world")), None),
        ("str:int", RdbValue::String(b("-123456")), None),
        ("str:bigint", RdbValue::String(b("12345678901234567")), None),
        (
            "str:lzf",
            RdbValue::String(b(&"abcdefgh".repeat(100))),
            None,
        ),
        (
            "str:bin",
            RdbValue::String(Bytes::from_static(b"\x00\xff\r\n")),
            None,
        ),
        ("str:exp", RdbValue::String(b("soon")), far),
        (
            "list",
            RdbValue::List((0..1000).map(|i| b(&format!("e{i}"))).collect()),
            None,
        ),
        (
            "set",
            RdbValue::Set((0..300).map(|i| b(&i.to_string())).collect()),
            None,
        ),
        ("set:small", RdbValue::Set(vec![b("a"), b("b")]), None),
        (
            "hash",
            RdbValue::Hash(
                (0..200)
                    .map(|i| (b(&format!("f{i}")), b(&format!("v{i}"))))
                    .collect(),
            ),
            far,
        ),
        (
            "zset",
            RdbValue::ZSet(vec![
                (b("a"), 1.5),
                (b("b"), f64::INFINITY),
                (b("c"), f64::NEG_INFINITY),
                (b("d"), -0.25),
            ]),
            None,
        ),
        ("stream", RdbValue::Stream(Box::new(sample_stream())), None),
        ("stream:empty", RdbValue::Stream(Box::default()), None),
    ];
    let db5: Vec<(&str, RdbValue, Option<u64>)> =
        vec![("in-db-5", RdbValue::String(b("five")), None)];

    let mut out: Vec<u8> = Vec::new();
    let mut w = RdbWriter::new(WriterOptions::default());
    let aux = HeaderAux {
        ctime: 1_700_000_000,
        used_mem: 1 << 20,
        repl: Some(ReplAux {
            stream_db: 0,
            repl_id: "a".repeat(40),
            repl_offset: 12345,
        }),
        aof_base: false,
    };
    w.header(&mut out, &aux);
    for (db, keys) in [(0usize, &db0), (5, &db5)] {
        let expires = keys.iter().filter(|k| k.2.is_some()).count() as u64;
        w.select_db(&mut out, db, keys.len() as u64, expires);
        for (k, v, exp) in keys {
            w.entry(&mut out, k.as_bytes(), v, *exp);
        }
    }
    w.finish(&mut out);
    std::fs::write(format!("{dir}/sample.rdb"), &out).expect("write sample.rdb");
    for (k, v, _) in &db0 {
        let name = k.replace(':', "-");
        std::fs::write(format!("{dir}/dump-{name}.bin"), dump_payload(v)).expect("write dump");
    }
    println!("wrote {dir}/sample.rdb ({} bytes)", out.len());
}
