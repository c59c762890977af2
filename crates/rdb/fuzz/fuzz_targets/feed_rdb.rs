//! An RDB fed in pieces must give exactly what the whole-file reader gives:
//! the same items, the same error (reason and offset), and no end when the
//! whole file is cut short. The first byte picks the piece size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_rdb::{RdbFeed, RdbItem, RdbReader};

fuzz_target!(|input: &[u8]| {
    let Some((&size, data)) = input.split_first() else {
        return;
    };
    let size = (size as usize % 64) + 1;
    let mut whole_items = Vec::new();
    let mut whole_err = None;
    match RdbReader::new(data) {
        Ok(reader) => {
            for item in reader {
                match item {
                    Ok(i) => whole_items.push(i),
                    Err(e) => {
                        whole_err = Some(e);
                        break;
                    }
                }
            }
        }
        Err(e) => whole_err = Some(e),
    }

    let mut feed = RdbFeed::new();
    let mut fed_items: Vec<RdbItem> = Vec::new();
    let mut fed_err = None;
    let pieces: Vec<&[u8]> = data.chunks(size).collect();
    'outer: for (i, piece) in pieces.iter().enumerate() {
        feed.extend(piece);
        if i + 1 == pieces.len() {
            feed.all_received();
        }
        loop {
            match feed.next_item() {
                Ok(Some(item)) => fed_items.push(item),
                Ok(None) => break,
                Err(e) => {
                    fed_err = Some(e);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(fed_items, whole_items);
    match whole_err {
        None => assert!(feed.finished() || data.is_empty()),
        Some(e) if e.is_truncated() => {
            assert!(fed_err.is_none() && !feed.finished());
        }
        Some(e) => assert_eq!(fed_err, Some(e)),
    }
});
