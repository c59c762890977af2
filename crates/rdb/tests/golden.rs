//! Golden files written by the real redis-server 7.0.15 (see testdata/make-golden.sh):
//! exact contents, encodings used, truncation and corruption behaviour.

use bytes::Bytes;
use shardis_rdb::{
    dump_payload, parse_dump_payload, read_rdb, RdbEntry, RdbError, RdbFile, RdbReader, RdbValue,
    Reason, StreamId,
};

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn bs(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| b(s)).collect()
}

fn find<'a>(f: &'a RdbFile, key: &str) -> &'a RdbEntry {
    f.entries
        .iter()
        .find(|e| e.key.as_ref() == key.as_bytes())
        .unwrap_or_else(|| panic!("key {key} missing"))
}

fn value<'a>(f: &'a RdbFile, key: &str) -> &'a RdbValue {
    &find(f, key).value
}

/// The object type byte Redis wrote before `key` (keys here are < 64 bytes, so
/// the key is stored as one length byte plus the bytes).
fn type_byte(data: &[u8], key: &str) -> u8 {
    let mut pat = vec![key.len() as u8];
    pat.extend_from_slice(key.as_bytes());
    let at = data
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .expect("key in file");
    data[at - 1]
}

fn sorted(mut v: Vec<Bytes>) -> Vec<Bytes> {
    v.sort();
    v
}

fn set_of(v: &RdbValue) -> Vec<Bytes> {
    match v {
        RdbValue::Set(s) => sorted(s.clone()),
        other => panic!("not a set: {other:?}"),
    }
}

fn hash_of(v: &RdbValue) -> Vec<(Bytes, Bytes)> {
    match v {
        RdbValue::Hash(h) => {
            let mut h = h.clone();
            h.sort();
            h
        }
        other => panic!("not a hash: {other:?}"),
    }
}

#[test]
fn small_encodings() {
    let data = golden("small.rdb");
    let f = read_rdb(&data).unwrap();
    assert_eq!(f.version, 10);
    let info = f.aux_info();
    assert_eq!(info.redis_ver.as_deref(), Some("7.0.15"));
    assert!(info.ctime.unwrap() > 1_600_000_000);
    assert!(info.used_mem.unwrap() > 0);
    assert_eq!(info.aof_base, Some(0));
    assert_eq!(f.entries.len(), 17);

    for (k, v) in [
        ("str:plain", "hello world"),
        ("str:int8", "-12"),
        ("str:int16", "1234"),
        ("str:int32", "1234567"),
        ("str:bigint", "12345678901234"),
        ("str:empty", ""),
    ] {
        assert_eq!(value(&f, k), &RdbValue::String(b(v)), "{k}");
    }
    assert_eq!(
        value(&f, "str:lzf"),
        &RdbValue::String(b(&"abcdefgh".repeat(20)))
    );
    assert_eq!(
        value(&f, "list:small"),
        &RdbValue::List(bs(&["a", "b", "3", "-4", &"x".repeat(100)]))
    );
    assert_eq!(
        set_of(value(&f, "set:int")),
        sorted(bs(&["1", "2", "3", "-100", "70000", "5000000000"]))
    );
    assert_eq!(set_of(value(&f, "set:str")), bs(&["apple", "banana"]));
    assert_eq!(
        hash_of(value(&f, "hash:small")),
        vec![(b("f1"), b("v1")), (b("f2"), b("2")), (b("f3"), b("-3000"))]
    );
    assert_eq!(
        value(&f, "zset:small"),
        &RdbValue::ZSet(vec![
            (b("minf"), f64::NEG_INFINITY),
            (b("one"), 1.0),
            (b("two"), 2.5),
            (b("big"), 1e300)
        ])
    );
    let far = Some(4_102_444_800_000);
    assert_eq!(find(&f, "exp:ms").expire_at_ms, far);
    assert_eq!(find(&f, "exp:hash").expire_at_ms, far);
    assert_eq!(find(&f, "str:plain").expire_at_ms, None);
    assert_eq!(find(&f, "db3:key").db, 3);
    assert_eq!(find(&f, "db3:list").db, 3);
    assert_eq!(find(&f, "db15:key").db, 15);
    assert_eq!(find(&f, "str:plain").db, 0);

    // The file really exercises the compact encodings.
    assert_eq!(type_byte(&data, "list:small"), 18); // quicklist2 of listpacks
    assert_eq!(type_byte(&data, "set:int"), 11); // intset
    assert_eq!(type_byte(&data, "hash:small"), 16); // listpack
    assert_eq!(type_byte(&data, "zset:small"), 17); // listpack
    let lzf_key = b"\x07str:lzf\xc3";
    assert!(
        data.windows(lzf_key.len()).any(|w| w == lzf_key),
        "LZF-encoded string"
    );
}

#[test]
fn large_encodings() {
    let data = golden("large.rdb");
    let f = read_rdb(&data).unwrap();
    assert_eq!(f.entries.len(), 6);
    let nums: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let nums: Vec<&str> = nums.iter().map(String::as_str).collect();
    assert_eq!(value(&f, "list:big"), &RdbValue::List(bs(&nums)));
    assert_eq!(set_of(value(&f, "set:big")), sorted(bs(&nums[..10])));
    let ms: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    let ms: Vec<&str> = ms.iter().map(String::as_str).collect();
    assert_eq!(set_of(value(&f, "set:strbig")), sorted(bs(&ms)));
    let pairs: Vec<(Bytes, Bytes)> = (1..=10)
        .map(|i| (b(&format!("f{i}")), b(&format!("v{i}"))))
        .collect();
    let mut pairs = pairs;
    pairs.sort();
    assert_eq!(hash_of(value(&f, "hash:big")), pairs);
    match value(&f, "zset:big") {
        RdbValue::ZSet(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.1.total_cmp(&b.1));
            let want: Vec<(Bytes, f64)> = (1..=10)
                .map(|i| (b(&format!("m{i}")), i as f64 + 0.5))
                .collect();
            assert_eq!(z, want);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        value(&f, "list:plain"),
        &RdbValue::List(bs(&["small", &"P".repeat(200), "tail"]))
    );
    assert_eq!(type_byte(&data, "list:big"), 18);
    assert_eq!(type_byte(&data, "list:plain"), 18);
    assert_eq!(type_byte(&data, "set:big"), 2);
    assert_eq!(type_byte(&data, "hash:big"), 4);
    assert_eq!(type_byte(&data, "zset:big"), 5);
}

#[test]
fn stream_with_groups() {
    let data = golden("stream.rdb");
    let f = read_rdb(&data).unwrap();
    assert_eq!(type_byte(&data, "st"), 19);
    let RdbValue::Stream(s) = value(&f, "st") else {
        panic!("not a stream")
    };
    let id = |ms, seq| StreamId { ms, seq };
    let ids: Vec<StreamId> = s.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![id(1, 1), id(2, 0), id(3, 5), id(4, 0)]);
    assert_eq!(
        s.entries[0].fields,
        vec![(b("name"), b("alice")), (b("age"), b("30"))]
    );
    assert_eq!(
        s.entries[1].fields,
        vec![
            (b("name"), b("carol")),
            (b("age"), b("32")),
            (b("extra"), b("yes"))
        ]
    );
    assert_eq!(s.entries[2].fields, vec![(b("other"), b("field"))]);
    assert_eq!(
        s.entries[3].fields,
        vec![(b("name"), b("dave")), (b("age"), b("33"))]
    );
    assert_eq!(s.last_id, id(4, 0));
    assert_eq!(s.first_id, id(1, 1));
    assert_eq!(s.max_deleted_id, id(1, 2));
    assert_eq!(s.entries_added, 5);
    assert_eq!(s.groups.len(), 2);
    let g = s.groups.iter().find(|g| g.name.as_ref() == b"grp").unwrap();
    assert_eq!(g.last_id, id(2, 0));
    let pel: Vec<(StreamId, u64)> = g.pel.iter().map(|p| (p.id, p.delivery_count)).collect();
    assert_eq!(pel, vec![(id(1, 1), 1), (id(2, 0), 1), (id(3, 5), 4)]);
    assert_eq!(g.pel[2].delivery_time_ms, 1_700_000_000_000);
    let c1 = g
        .consumers
        .iter()
        .find(|c| c.name.as_ref() == b"c1")
        .unwrap();
    assert_eq!(c1.pending, vec![id(1, 1), id(2, 0)]);
    assert!(c1.seen_time_ms > 1_600_000_000_000);
    let c2 = g
        .consumers
        .iter()
        .find(|c| c.name.as_ref() == b"c2")
        .unwrap();
    assert_eq!(c2.pending, vec![id(3, 5)]);
    let e = s
        .groups
        .iter()
        .find(|g| g.name.as_ref() == b"empty")
        .unwrap();
    assert_eq!(e.last_id, id(4, 0));
    assert!(e.pel.is_empty() && e.consumers.is_empty());

    let RdbValue::Stream(empty) = value(&f, "st:empty") else {
        panic!("not a stream")
    };
    assert!(empty.entries.is_empty());
    assert_eq!(empty.entries_added, 1);
    assert!(empty.last_id.ms > 0);
}

#[test]
fn uncompressed_without_checksum() {
    let data = golden("nocompress-nochecksum.rdb");
    assert_eq!(&data[data.len() - 8..], &[0; 8]);
    let f = read_rdb(&data).unwrap();
    assert_eq!(f.entries.len(), 1);
    assert_eq!(
        value(&f, "long"),
        &RdbValue::String(b(&"abcdefgh".repeat(20)))
    );
}

#[test]
fn dump_payloads_from_redis() {
    let s = b(&"abcdefgh".repeat(20));
    assert_eq!(
        parse_dump_payload(&golden("dump-s.bin")).unwrap(),
        RdbValue::String(s.clone())
    );
    assert_eq!(
        parse_dump_payload(&golden("dump-n.bin")).unwrap(),
        RdbValue::String(b("42"))
    );
    assert_eq!(
        parse_dump_payload(&golden("dump-l.bin")).unwrap(),
        RdbValue::List(bs(&["a", "b", "c"]))
    );
    assert_eq!(
        parse_dump_payload(&golden("dump-h.bin")).unwrap(),
        RdbValue::Hash(vec![(b("f"), b("v"))])
    );
    assert_eq!(
        parse_dump_payload(&golden("dump-i.bin")).unwrap(),
        RdbValue::Set(bs(&["1", "2", "3"]))
    );
    assert_eq!(
        parse_dump_payload(&golden("dump-z.bin")).unwrap(),
        RdbValue::ZSet(vec![(b("a"), 1.0), (b("b"), 2.0)])
    );
    // Strings (including the LZF one) serialize to exactly Redis's bytes.
    assert_eq!(dump_payload(&RdbValue::String(s)), golden("dump-s.bin"));
    assert_eq!(
        dump_payload(&RdbValue::String(b("42"))),
        golden("dump-n.bin")
    );
}

#[test]
fn dump_footer_is_verified() {
    let good = golden("dump-l.bin");
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let e = parse_dump_payload(&bad_crc).unwrap_err();
    assert_eq!(e.reason, Reason::DumpFooter);
    assert_eq!(
        e.restore_reply(),
        "ERR DUMP payload version or checksum are wrong"
    );

    // A newer RDB version with a valid CRC is refused as Redis 7.0 does.
    let mut newer = good[..good.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        parse_dump_payload(&newer).unwrap_err().reason,
        Reason::DumpFooter
    );

    // Valid footer, garbage value: Bad data format.
    let mut junk = vec![0x0e, 0x01];
    junk.extend_from_slice(&10u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &junk);
    junk.extend_from_slice(&crc.to_le_bytes());
    let e = parse_dump_payload(&junk).unwrap_err();
    assert_eq!(e.restore_reply(), "ERR Bad data format");
    assert!(parse_dump_payload(&[1, 2, 3]).is_err());
}

const FILES: [&str; 4] = [
    "small.rdb",
    "large.rdb",
    "stream.rdb",
    "nocompress-nochecksum.rdb",
];

#[test]
fn every_prefix_is_an_error_with_offset() {
    for name in FILES {
        let data = golden(name);
        for cut in 0..data.len() {
            let e: RdbError = read_rdb(&data[..cut]).expect_err("prefix must fail");
            assert!(
                e.offset <= cut,
                "{name}[..{cut}]: offset {} past end",
                e.offset
            );
            assert!(e.is_truncated() || cut < 9, "{name}[..{cut}]: {e}");
        }
    }
    for k in ["s", "n", "l", "h", "i", "z"] {
        let data = golden(&format!("dump-{k}.bin"));
        for cut in 0..data.len() {
            assert!(parse_dump_payload(&data[..cut]).is_err());
        }
    }
}

#[test]
fn checksum_mismatch_is_reported() {
    let mut data = golden("small.rdb");
    let n = data.len();
    data[n - 3] ^= 0x40;
    let e = read_rdb(&data).unwrap_err();
    assert_eq!(e.offset, n - 8);
    assert!(matches!(e.reason, Reason::Checksum { .. }));
}

#[test]
fn flipped_bytes_never_panic() {
    for name in FILES {
        let data = golden(name);
        for i in 0..data.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut d = data.clone();
                d[i] ^= mask;
                // Either outcome is fine; only a panic would fail the test. The
                // checksum must catch every flip in a checksummed body.
                let r = read_rdb(&d);
                if name != "nocompress-nochecksum.rdb" && i >= 9 && i < data.len() - 8 {
                    assert!(r.is_err(), "{name}: flip at {i} went unnoticed");
                }
            }
        }
    }
}

#[test]
fn reader_resumes_after_truncation() {
    // Feed a file in growing pieces, as a replica receiving it would.
    let data = golden("small.rdb");
    let mut items = Vec::new();
    let (mut offset, mut db, mut version) = (0usize, 0usize, 0u32);
    let mut have = 9;
    loop {
        let slice = &data[..have];
        let mut r = if offset == 0 {
            match RdbReader::new(slice) {
                Ok(r) => r,
                Err(e) if e.is_truncated() => {
                    have += 1;
                    continue;
                }
                Err(e) => panic!("{e}"),
            }
        } else {
            RdbReader::resume(slice, offset, version, db)
        };
        version = r.version();
        let mut finished = false;
        loop {
            match r.next_item() {
                Ok(Some(i)) => items.push(i),
                Ok(None) => {
                    finished = true;
                    break;
                }
                Err(e) if e.is_truncated() => break,
                Err(e) => panic!("{e}"),
            }
        }
        offset = r.offset();
        db = r.db();
        if finished {
            break;
        }
        have = (have + 37).min(data.len());
    }
    let whole: Vec<_> = RdbReader::new(&data)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items, whole);
}
