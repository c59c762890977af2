//! DUMP payload parsing; the footer CRC is recomputed so mutations reach the value parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shardis_rdb::parse_dump_payload(data);
    let mut p = data.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    if let Ok(v) = shardis_rdb::parse_dump_payload(&p) {
        // Whatever parsed must survive our own encoder and decoder.
        let again =
            shardis_rdb::parse_dump_payload(&shardis_rdb::dump_payload(&v)).expect("re-parse");
        assert_eq!(
            format!("{:?}", unordered(again)),
            format!("{:?}", unordered(as_redis_7_0(v)))
        );
    }
});

/// Sets and sorted sets compared without their order: the encoder writes an
/// intset and a listpack zset sorted (loaders rely on it), whatever order a
/// corrupt payload had.
fn unordered(v: shardis_rdb::RdbValue) -> shardis_rdb::RdbValue {
    match v {
        shardis_rdb::RdbValue::Set(mut items) => {
            items.sort();
            shardis_rdb::RdbValue::Set(items)
        }
        shardis_rdb::RdbValue::ZSet(mut pairs) => {
            pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            shardis_rdb::RdbValue::ZSet(pairs)
        }
        other => other,
    }
}

/// What survives a write in Redis 7.0's format: a 7.2 stream's consumer
/// active-time has no place there and reads back as the seen-time.
fn as_redis_7_0(mut v: shardis_rdb::RdbValue) -> shardis_rdb::RdbValue {
    if let shardis_rdb::RdbValue::Stream(s) = &mut v {
        for c in s.groups.iter_mut().flat_map(|g| g.consumers.iter_mut()) {
            c.active_time_ms = c.seen_time_ms;
        }
    }
    v
}
