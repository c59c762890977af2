//! Arbitrary bytes, limits and read sizes into the request decoder: it must
//! never panic, never consume more than it was given, and never return an
//! empty request. The first 10 bytes choose the limits and the chunking.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shardis_protocol::{DecodeLimits, RequestDecoder};

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (head, input) = data.split_at(10);
    let raw = i64::from_le_bytes(head[..8].try_into().unwrap());
    // Small limits are the interesting ones; keep a share of large and negative
    // ones. Like Redis, the decoder reserves a big bulk's declared length as soon
    // as its header arrives, so limits above 16 MB would only exercise malloc.
    let max_bulk_len = match head[8] & 3 {
        0 => 16 * 1024 * 1024,
        1 if raw < 0 => raw,
        1 => raw % (16 * 1024 * 1024),
        _ => raw.rem_euclid(128),
    };
    let limits = DecodeLimits { max_bulk_len };
    let mut d = RequestDecoder::new(head[8] & 4 == 0);
    let step = (head[9] as usize % 17) + 1;
    let mut buf = BytesMut::new();
    let (mut fed, mut consumed) = (0usize, 0usize);
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let before = buf.len();
            let r = d.decode(&mut buf, &limits);
            assert!(buf.len() <= before);
            consumed += before - buf.len();
            assert!(consumed <= fed, "consumed {consumed} > fed {fed}");
            match r {
                Ok(Some(args)) => assert!(!args.is_empty()),
                Ok(None) => break,
                Err(e) => {
                    let m = e.message();
                    assert!(m.starts_with("ERR Protocol error: "), "{m}");
                    return;
                }
            }
        }
        if head[8] & 8 != 0 {
            // Some connections authenticate mid-stream.
            d.set_authenticated(true);
        }
    }
});
