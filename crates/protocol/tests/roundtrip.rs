//! Property tests for the request decoder: RESP multibulk and inline requests
//! survive any chunking of the byte stream, and arbitrary bytes never panic it
//! nor make it consume bytes it was not given.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shardis_protocol::{DecodeLimits, ProtocolError, RequestDecoder};

/// Encodes one request the way clients do: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` each.
fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `input` to a fresh decoder in pieces cut at `cuts` (sorted offsets),
/// decoding after every piece, the way a connection does after every read.
fn decode_chunked(
    input: &[u8],
    cuts: &[usize],
    limits: &DecodeLimits,
) -> (Vec<Vec<Bytes>>, Option<ProtocolError>, usize) {
    let mut d = RequestDecoder::new(true);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for end in bounds {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            let r = d.decode(&mut buf, limits);
            assert!(buf.len() <= before, "decoder grew the buffer's contents");
            consumed += before - buf.len();
            assert!(consumed <= fed, "consumed {consumed} of {fed} bytes fed");
            match r {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "empty request returned");
                    out.push(args);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e), consumed),
            }
        }
    }
    (out, None, consumed)
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Mostly short, with every byte value (CR, LF, '$', '*' inside payloads).
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), 0..3000),
    ]
}

fn request() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 1..8)
}

/// An inline word: no whitespace, no quotes, no NUL (sdssplitargs splits on those).
fn inline_word() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("separator or quote", |&b| {
            !(b.is_ascii_whitespace() || b == 0 || b == b'"' || b == b'\'' || b == 0x0b)
        }),
        1..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn multibulk_roundtrip_any_chunking(
        reqs in proptest::collection::vec(request(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut input = Vec::new();
        for r in &reqs {
            input.extend_from_slice(&multibulk(r));
        }
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        let (got, err, consumed) = decode_chunked(&input, &cuts, &DecodeLimits::default());
        prop_assert_eq!(err, None);
        prop_assert_eq!(consumed, input.len());
        let want: Vec<Vec<Bytes>> = reqs
            .iter()
            .map(|r| r.iter().map(|a| Bytes::copy_from_slice(a)).collect())
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn byte_at_a_time_roundtrip(req in request()) {
        let input = multibulk(&req);
        let cuts: Vec<usize> = (0..input.len()).collect();
        let (got, err, consumed) = decode_chunked(&input, &cuts, &DecodeLimits::default());
        prop_assert_eq!(err, None);
        prop_assert_eq!(consumed, input.len());
        prop_assert_eq!(got.len(), 1);
        let want: Vec<Bytes> = req.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        prop_assert_eq!(&got[0], &want);
    }

    #[test]
    fn inline_roundtrip_any_chunking(
        lines in proptest::collection::vec(
            (proptest::collection::vec(inline_word(), 1..6), " {1,3}", any::<bool>()),
            1..5,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut input = Vec::new();
        for (words, sep, crlf) in &lines {
            // A leading '*' would make the line a multibulk header instead.
            prop_assume!(words[0][0] != b'*');
            input.extend_from_slice(&words.join(sep.as_bytes()));
            input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        let (got, err, consumed) = decode_chunked(&input, &cuts, &DecodeLimits::default());
        prop_assert_eq!(err, None);
        prop_assert_eq!(consumed, input.len());
        let want: Vec<Vec<Bytes>> = lines
            .iter()
            .map(|(w, _, _)| w.iter().map(|a| Bytes::copy_from_slice(a)).collect())
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_overconsume(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        max_bulk_len in prop_oneof![Just(512 * 1024 * 1024i64), 0..64i64, any::<i64>()],
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        // The checks are the asserts inside decode_chunked.
        decode_chunked(&input, &cuts, &DecodeLimits { max_bulk_len });
    }

    #[test]
    fn protocolish_bytes_never_panic_or_overconsume(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
                Just(b"\r".to_vec()), Just(b"\n".to_vec()), Just(b"\"".to_vec()),
                Just(b"'".to_vec()), Just(b"\\x4".to_vec()), Just(b" ".to_vec()),
                "-?[0-9]{1,3}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..4),
            ],
            0..64,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        authenticated in any::<bool>(),
    ) {
        let input = pieces.concat();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        decode_chunked(&input, &cuts, &DecodeLimits { max_bulk_len: 64 });
        // Also unauthenticated, whole.
        let mut d = RequestDecoder::new(authenticated);
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = d.decode(&mut buf, &DecodeLimits::default()) {}
        prop_assert!(buf.len() <= input.len());
    }
}

/// A request whose multibulk count promises more than arrives stays pending
/// without consuming the partial argument: the next read completes it.
#[test]
fn partial_request_is_resumed() {
    let mut d = RequestDecoder::new(true);
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nab"[..]);
    assert_eq!(d.decode(&mut buf, &DecodeLimits::default()), Ok(None));
    assert!(d.in_request());
    assert_eq!(d.pending_bulk(), Some(5));
    buf.extend_from_slice(b"cde\r\n");
    assert_eq!(
        d.decode(&mut buf, &DecodeLimits::default()),
        Ok(Some(vec![Bytes::from("GET"), Bytes::from("abcde")]))
    );
    assert!(buf.is_empty());
}
