//! Encodings Redis 7.0.15 reads but no longer writes (so no golden file can come
//! from it): hand-built ziplist, zipmap, quicklist v1, text-score zsets, and the
//! 7.2 additions (set listpack, stream type 21). Byte layouts follow src/rdb.c,
//! ziplist.c, zipmap.c and listpack.c.

use bytes::Bytes;
use shardis_rdb::crc64::crc64;
use shardis_rdb::{
    dump_payload, parse_dump_payload, read_rdb, PendingEntry, RdbError, RdbStream, RdbValue,
    StreamConsumer, StreamEntry, StreamGroup, StreamId,
};

fn bs(items: &[&str]) -> Vec<Bytes> {
    items
        .iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

/// A ziplist of short strings (< 64 bytes, prevlen < 254).
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0u8;
    let mut tail = 10u32;
    for it in items {
        tail = 10 + body.len() as u32;
        let start = body.len();
        body.push(prev);
        body.push(it.len() as u8);
        body.extend_from_slice(it);
        prev = (body.len() - start) as u8;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&(10 + body.len() as u32 + 1).to_le_bytes());
    zl.extend_from_slice(&tail.to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xff);
    zl
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 64);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// An RDB v9 file (checksum 0, i.e. unchecked) with the given (type, key, body) entries.
fn file(entries: &[(u8, &str, Vec<u8>)]) -> Vec<u8> {
    let mut f = b"REDIS0009".to_vec();
    for (t, k, body) in entries {
        f.push(*t);
        string(&mut f, k.as_bytes());
        f.extend_from_slice(body);
    }
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    f
}

fn blob(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    string(&mut v, b);
    v
}

fn read_one(t: u8, body: Vec<u8>) -> Result<RdbValue, RdbError> {
    read_rdb(&file(&[(t, "k", body)])).map(|mut f| f.entries.remove(0).value)
}

#[test]
fn ziplist_with_integer_encodings() {
    // "a", 5 (immediate 4-bit), 300 (int16), written by hand.
    let zl = [
        20u8, 0, 0, 0, 15, 0, 0, 0, 3, 0, 0, 1, b'a', 3, 0xf6, 2, 0xc0, 0x2c, 0x01, 0xff,
    ];
    assert_eq!(
        read_one(10, blob(&zl)).unwrap(),
        RdbValue::List(bs(&["a", "5", "300"]))
    );
}

#[test]
fn ziplist_types_and_quicklist_v1() {
    let zl1 = ziplist(&[b"a", b"b"]);
    let zl2 = ziplist(&[b"c"]);
    let mut ql = vec![2u8];
    ql.extend(blob(&zl1));
    ql.extend(blob(&zl2));
    assert_eq!(
        read_one(14, ql).unwrap(),
        RdbValue::List(bs(&["a", "b", "c"]))
    );
    assert_eq!(
        read_one(13, blob(&ziplist(&[b"f", b"v", b"g", b"w"]))).unwrap(),
        RdbValue::Hash(vec![
            (Bytes::from("f"), Bytes::from("v")),
            (Bytes::from("g"), Bytes::from("w"))
        ])
    );
    assert_eq!(
        read_one(12, blob(&ziplist(&[b"m", b"1.5", b"n", b"-inf"]))).unwrap(),
        RdbValue::ZSet(vec![
            (Bytes::from("m"), 1.5),
            (Bytes::from("n"), f64::NEG_INFINITY)
        ])
    );
    assert!(
        read_one(13, blob(&ziplist(&[b"f"]))).is_err(),
        "odd hash ziplist"
    );
}

#[test]
fn zipmap_with_free_bytes() {
    // count, "f" -> "v" (2 free bytes), "key" -> "" , end.
    let zm = [
        2u8, 1, b'f', 1, 2, b'v', b'x', b'x', 3, b'k', b'e', b'y', 0, 0, 0xff,
    ];
    assert_eq!(
        read_one(9, blob(&zm)).unwrap(),
        RdbValue::Hash(vec![
            (Bytes::from("f"), Bytes::from("v")),
            (Bytes::from("key"), Bytes::new())
        ])
    );
}

#[test]
fn zset_with_text_scores() {
    let mut body = vec![3u8];
    string(&mut body, b"a");
    body.extend_from_slice(&[3, b'1', b'.', b'5']);
    string(&mut body, b"b");
    body.push(254);
    string(&mut body, b"c");
    body.push(255);
    assert_eq!(
        read_one(3, body).unwrap(),
        RdbValue::ZSet(vec![
            (Bytes::from("a"), 1.5),
            (Bytes::from("b"), f64::INFINITY),
            (Bytes::from("c"), f64::NEG_INFINITY)
        ])
    );
    let mut nan = vec![1u8];
    string(&mut nan, b"a");
    nan.push(253);
    assert!(read_one(3, nan).is_err(), "Redis refuses NaN scores");
}

#[test]
fn set_listpack_from_7_2() {
    // "x" (6-bit string) and 5 (7-bit uint), each followed by its back-length.
    let lp = [12u8, 0, 0, 0, 2, 0, 0x81, b'x', 2, 0x05, 1, 0xff];
    assert_eq!(
        read_one(20, blob(&lp)).unwrap(),
        RdbValue::Set(bs(&["x", "5"]))
    );
}

fn refooter(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn stream_types_15_and_21() {
    let id = |ms, seq| StreamId { ms, seq };
    let entry = StreamEntry {
        id: id(1, 1),
        fields: vec![(Bytes::from("f"), Bytes::from("v"))],
    };
    let plain = RdbStream {
        entries: vec![entry.clone()],
        last_id: id(1, 1),
        first_id: id(1, 1),
        max_deleted_id: id(0, 0),
        entries_added: 1,
        groups: vec![],
    };
    // Type 19 ends with: length, last id, first id, max deleted id, entries added, groups.
    let p19 = dump_payload(&RdbValue::Stream(Box::new(plain.clone())));
    let body = &p19[..p19.len() - 10];
    assert_eq!(&body[body.len() - 9..], &[1, 1, 1, 1, 1, 0, 0, 1, 0]);
    // Type 15 has only length, last id and groups.
    let mut b15 = body[..body.len() - 9].to_vec();
    b15.extend_from_slice(&[1, 1, 1, 0]);
    b15[0] = 15;
    assert_eq!(
        parse_dump_payload(&refooter(&b15)).unwrap(),
        RdbValue::Stream(Box::new(plain.clone()))
    );

    // Type 21 adds each consumer's active time after its seen time.
    let mut grouped = plain;
    grouped.groups = vec![StreamGroup {
        name: Bytes::from("g"),
        last_id: id(1, 1),
        entries_read: 1,
        pel: vec![PendingEntry {
            id: id(1, 1),
            delivery_time_ms: 10,
            delivery_count: 2,
        }],
        consumers: vec![StreamConsumer {
            name: Bytes::from("c"),
            seen_time_ms: 20,
            active_time_ms: 20,
            pending: vec![id(1, 1)],
        }],
    }];
    let p19 = dump_payload(&RdbValue::Stream(Box::new(grouped.clone())));
    let body = &p19[..p19.len() - 10];
    // The consumer block closes the body: name (2), seen (8), pel count (1), id (16).
    let split = body.len() - 17;
    assert_eq!(&body[split - 8..split], &20u64.to_le_bytes());
    let mut b21 = body[..split].to_vec();
    b21.extend_from_slice(&30u64.to_le_bytes());
    b21.extend_from_slice(&body[split..]);
    b21[0] = 21;
    grouped.groups[0].consumers[0].active_time_ms = 30;
    assert_eq!(
        parse_dump_payload(&refooter(&b21)).unwrap(),
        RdbValue::Stream(Box::new(grouped))
    );
}

#[test]
fn module_data_and_unknown_types_are_refused() {
    let e = read_one(7, vec![0]).unwrap_err();
    assert_eq!(e.to_string(), "at offset 12: module data not supported");
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(&[247, 0]);
    assert_eq!(
        read_rdb(&f).unwrap_err().reason,
        shardis_rdb::Reason::ModuleData
    );
    assert!(matches!(
        read_one(8, vec![0]).unwrap_err().reason,
        shardis_rdb::Reason::UnknownType(8)
    ));
    assert!(matches!(
        read_rdb(b"REDIS0012\xff").unwrap_err().reason,
        shardis_rdb::Reason::UnsupportedVersion(12)
    ));
}

#[test]
fn functions_are_yielded() {
    let mut f = b"REDIS0010".to_vec();
    f.push(245);
    string(
        &mut f,
        b"#!lua name=lib\nredis.register_function('f', function() return 1 end)"[..40].as_ref(),
    );
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    let rf = read_rdb(&f).unwrap();
    assert_eq!(rf.functions.len(), 1);
    assert!(rf.functions[0].starts_with(b"#!lua name=lib"));
}
