//! Arguments cut from the input (0xFF-separated) are encoded as a multibulk
//! request and fed back in fuzzer-chosen chunks: the decoder must return exactly
//! them and consume every byte. The first byte chooses the read size.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardis_protocol::{DecodeLimits, RequestDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let reqs: Vec<Vec<Bytes>> = rest
        .split(|&b| b == 0xFE)
        .map(|r| r.split(|&b| b == 0xFF).map(Bytes::copy_from_slice).collect())
        .collect();
    let mut wire = Vec::new();
    for r in &reqs {
        wire.extend_from_slice(format!("*{}\r\n", r.len()).as_bytes());
        for a in r {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
    }
    let mut d = RequestDecoder::new(true);
    let limits = DecodeLimits::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for chunk in wire.chunks(step as usize + 1) {
        buf.extend_from_slice(chunk);
        while let Some(args) = d.decode(&mut buf, &limits).expect("valid request") {
            got.push(args);
        }
    }
    assert!(buf.is_empty());
    assert!(!d.in_request());
    assert_eq!(got, reqs);
});
