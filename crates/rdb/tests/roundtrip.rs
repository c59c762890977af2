//! Write → read round trips (proptest) for files and DUMP payloads.

use bytes::Bytes;
use proptest::prelude::*;
use shardis_rdb::{
    dump_payload, parse_dump_payload, read_rdb, HeaderAux, PendingEntry, RdbEntry, RdbStream,
    RdbValue, RdbWriter, ReplAux, StreamConsumer, StreamEntry, StreamGroup, StreamId,
    WriterOptions,
};

fn bytes_strategy() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        // Integer-looking strings exercise the int encodings and their edge cases.
        any::<i64>().prop_map(|i| Bytes::from(i.to_string())),
        prop::sample::select(vec![
            "0",
            "-0",
            "007",
            "+1",
            "",
            "2147483648",
            "-2147483649"
        ])
        .prop_map(|s| Bytes::from_static(s.as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from),
        // Repetitive and long: LZF and multi-byte lengths.
        (prop::collection::vec(any::<u8>(), 1..6), 1..3000usize).prop_map(|(pat, n)| Bytes::from(
            pat.iter().cycle().take(n).copied().collect::<Vec<u8>>()
        )),
    ]
}

fn stream_strategy() -> impl Strategy<Value = RdbStream> {
    let fields = prop::collection::vec((bytes_strategy(), bytes_strategy()), 1..4);
    (
        prop::collection::vec((0u64..3, 0u64..3, fields), 0..300),
        any::<u64>(),
    )
        .prop_map(|(steps, added)| {
            let mut id = StreamId { ms: 1, seq: 0 };
            let entries: Vec<StreamEntry> = steps
                .into_iter()
                .map(|(dms, dseq, fields)| {
                    id = if dms == 0 {
                        StreamId {
                            ms: id.ms,
                            seq: id.seq + 1 + dseq,
                        }
                    } else {
                        StreamId {
                            ms: id.ms + dms,
                            seq: dseq,
                        }
                    };
                    StreamEntry { id, fields }
                })
                .collect();
            let pel: Vec<PendingEntry> = entries
                .iter()
                .step_by(3)
                .map(|e| PendingEntry {
                    id: e.id,
                    delivery_time_ms: e.id.ms * 10,
                    delivery_count: e.id.seq,
                })
                .collect();
            let mine: Vec<StreamId> = pel.iter().map(|p| p.id).collect();
            RdbStream {
                first_id: entries.first().map(|e| e.id).unwrap_or_default(),
                last_id: entries.last().map(|e| e.id).unwrap_or_default(),
                max_deleted_id: StreamId { ms: 0, seq: 7 },
                entries_added: added,
                groups: vec![StreamGroup {
                    name: Bytes::from_static(b"g"),
                    last_id: id,
                    entries_read: -1,
                    pel,
                    consumers: vec![StreamConsumer {
                        name: Bytes::from_static(b"c"),
                        seen_time_ms: 5,
                        active_time_ms: 5,
                        pending: mine,
                    }],
                }],
                entries,
            }
        })
}

fn value_strategy() -> impl Strategy<Value = RdbValue> {
    prop_oneof![
        bytes_strategy().prop_map(RdbValue::String),
        prop::collection::vec(bytes_strategy(), 0..20).prop_map(RdbValue::List),
        prop::collection::vec(bytes_strategy(), 0..20).prop_map(RdbValue::Set),
        prop::collection::vec((bytes_strategy(), bytes_strategy()), 0..20).prop_map(RdbValue::Hash),
        prop::collection::vec(
            (
                bytes_strategy(),
                prop_oneof![
                    any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
                    Just(f64::INFINITY),
                    Just(-0.0)
                ]
            ),
            0..20
        )
        .prop_map(RdbValue::ZSet),
        stream_strategy().prop_map(|s| RdbValue::Stream(Box::new(s))),
    ]
}

fn entries_strategy() -> impl Strategy<Value = Vec<RdbEntry>> {
    prop::collection::vec(
        (
            0usize..4,
            bytes_strategy(),
            value_strategy(),
            prop::option::of(0u64..u64::MAX / 2),
        ),
        0..12,
    )
    .prop_map(|mut v| {
        v.sort_by_key(|e| e.0);
        v.into_iter()
            .map(|(db, key, value, expire_at_ms)| RdbEntry {
                db,
                key,
                value,
                expire_at_ms,
            })
            .collect()
    })
}

fn write_file(entries: &[RdbEntry], opts: WriterOptions, chunked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut flushed = Vec::new();
    let mut w = RdbWriter::new(opts);
    let aux = HeaderAux {
        ctime: 1_700_000_000,
        used_mem: 99,
        repl: Some(ReplAux {
            stream_db: 2,
            repl_id: "f".repeat(40),
            repl_offset: 1 << 40,
        }),
        aof_base: false,
    };
    w.header(&mut out, &aux);
    let mut db = None;
    for e in entries {
        if db != Some(e.db) {
            db = Some(e.db);
            w.select_db(&mut out, e.db, 0, 0);
        }
        w.entry(&mut out, &e.key, &e.value, e.expire_at_ms);
        if chunked {
            // A server flushes finished chunks while writing continues.
            flushed.append(&mut out);
        }
    }
    w.finish(&mut out);
    flushed.append(&mut out);
    flushed
}

/// Sets have no order (an intset is written sorted) and a sorted set's is
/// its scores' (a listpack is written in that order): compare them sorted.
fn unordered(v: &RdbValue) -> RdbValue {
    match v {
        RdbValue::Set(items) => {
            let mut items = items.clone();
            items.sort();
            RdbValue::Set(items)
        }
        RdbValue::ZSet(pairs) => {
            let mut pairs = pairs.clone();
            pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            RdbValue::ZSet(pairs)
        }
        other => other.clone(),
    }
}

fn unordered_entries(entries: &[RdbEntry]) -> Vec<RdbEntry> {
    entries
        .iter()
        .map(|e| RdbEntry {
            value: unordered(&e.value),
            ..e.clone()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn file_round_trip(entries in entries_strategy(), compression: bool, chunked: bool) {
        let data = write_file(&entries, WriterOptions { compression, checksum: true }, chunked);
        let f = read_rdb(&data).unwrap();
        prop_assert_eq!(unordered_entries(&f.entries), unordered_entries(&entries));
        let info = f.aux_info();
        prop_assert_eq!(info.redis_ver.as_deref(), Some("7.0.15"));
        prop_assert_eq!(info.repl_offset, Some(1 << 40));
        prop_assert_eq!(info.repl_stream_db, Some(2));
        prop_assert_eq!(info.repl_id, Some("f".repeat(40)));
    }

    #[test]
    fn dump_round_trip(v in value_strategy()) {
        let payload = dump_payload(&v);
        prop_assert_eq!(unordered(&parse_dump_payload(&payload).unwrap()), unordered(&v));
    }
}

#[test]
fn checksum_off_writes_zero_trailer() {
    let e = RdbEntry {
        db: 0,
        key: Bytes::from_static(b"k"),
        value: RdbValue::String(Bytes::from_static(b"v")),
        expire_at_ms: None,
    };
    let data = write_file(
        std::slice::from_ref(&e),
        WriterOptions {
            compression: true,
            checksum: false,
        },
        false,
    );
    assert_eq!(&data[data.len() - 8..], &[0; 8]);
    assert_eq!(read_rdb(&data).unwrap().entries, vec![e.clone()]);
    let with = write_file(&[e], WriterOptions::default(), false);
    assert_eq!(&with[..with.len() - 8], &data[..data.len() - 8]);
    assert_ne!(&with[with.len() - 8..], &[0; 8]);
}

/// Fuzzer find (parse_dump): a Redis 7.2 stream (type 21) carries a consumer
/// active-time that Redis 7.0's layout (type 19, what DUMP writes) has no
/// room for; it must read back as the seen-time, everything else unchanged.
#[test]
fn stream_7_2_consumer_active_time_reads_back_as_seen_time() {
    let body: &[u8] = &[
        21, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 10, 10,
        10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 116, 116, 116, 116, 0, 0, 7, 0, 248, 255, 0, 0, 0, 0, 0, 0,
        16,
    ];
    let mut payload = body.to_vec();
    payload.extend_from_slice(&10u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let RdbValue::Stream(mut original) = parse_dump_payload(&payload).unwrap() else {
        panic!("not a stream");
    };
    let consumer = &original.groups[2].consumers[1];
    assert_ne!(consumer.active_time_ms, consumer.seen_time_ms);
    let again = parse_dump_payload(&dump_payload(&RdbValue::Stream(original.clone()))).unwrap();
    for c in original
        .groups
        .iter_mut()
        .flat_map(|g| g.consumers.iter_mut())
    {
        c.active_time_ms = c.seen_time_ms;
    }
    assert_eq!(again, RdbValue::Stream(original));
}

/// Fuzzer find (parse_dump): an intset stored out of order (as a corrupt or
/// hand-made payload may be) is written back sorted; it must read back as
/// the same set.
#[test]
fn unsorted_intset_is_written_back_sorted() {
    let mut p = vec![11, 14, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 49, 3, 0];
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    let v = parse_dump_payload(&p).unwrap();
    let again = parse_dump_payload(&dump_payload(&v)).unwrap();
    assert_eq!(
        again,
        RdbValue::Set(vec![
            Bytes::from_static(b"1"),
            Bytes::from_static(b"3"),
            Bytes::from_static(b"12546"),
        ])
    );
    assert_eq!(unordered(&again), unordered(&v));
}
