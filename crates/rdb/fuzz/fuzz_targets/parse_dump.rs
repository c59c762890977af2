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
        let again = shardis_rdb::parse_dump_payload(&shardis_rdb::dump_payload(&v)).expect("re-parse");
        assert_eq!(format!("{again:?}"), format!("{v:?}"));
    }
});
