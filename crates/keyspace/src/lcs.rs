//! LCS: the longest common subsequence of two strings (Redis 7.0's
//! `lcsCommand`), with its LEN, IDX, MINMATCHLEN and WITHMATCHLEN forms.
//!
//! The table is the textbook O(|a|·|b|) dynamic programme Redis builds; the
//! walk back from the bottom-right corner yields the subsequence and the
//! matched ranges in the order (from the end of the strings) Redis emits them.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

/// Redis refuses a table larger than `proto-max-bulk-len` (512 MB by default).
const MAX_TABLE_BYTES: u64 = crate::string::MAX_STRING_LEN as u64;

/// One matched range: `(a_start, a_end, b_start, b_end)`, inclusive.
pub type Range = (u32, u32, u32, u32);

/// What the walk back produces.
#[derive(Debug, PartialEq)]
pub struct Lcs {
    /// The subsequence itself.
    pub seq: Vec<u8>,
    /// Its length.
    pub len: u32,
    /// Matched ranges, last first, filtered by `min_match_len`.
    pub ranges: Vec<Range>,
}

/// Computes the LCS of `a` and `b`; ranges shorter than `min_match_len` are
/// dropped (0 keeps every range). Errors are Redis's texts.
pub fn compute(a: &[u8], b: &[u8], min_match_len: u64) -> Result<Lcs, &'static str> {
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err("ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > MAX_TABLE_BYTES {
        return Err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let len = t[alen * w + blen];
    let mut seq = vec![0u8; len as usize];
    let mut ranges = Vec::new();
    let mut idx = len as usize;
    // `alen` as the start marks "no range open", as in Redis.
    let unset = alen as u32;
    let (mut as_, mut ae, mut bs, mut be) = (unset, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            seq[idx - 1] = a[i - 1];
            let (ii, jj) = (i as u32, j as u32);
            if as_ == unset {
                (as_, ae, bs, be) = (ii - 1, ii - 1, jj - 1, jj - 1);
            } else if as_ == ii && bs == jj {
                // Contiguous with the open range: extend it backwards.
                as_ -= 1;
                bs -= 1;
            } else {
                emit = true;
            }
            if as_ == 0 || bs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if as_ != unset {
                emit = true;
            }
        }
        if emit {
            let match_len = ae.wrapping_sub(as_).wrapping_add(1);
            if min_match_len == 0 || match_len as u64 >= min_match_len {
                ranges.push((as_, ae, bs, be));
            }
            as_ = unset;
        }
    }
    Ok(Lcs { seq, len, ranges })
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
pub fn lcs(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let mut strs: [Option<Result<Bytes, ()>>; 2] = [None, None];
    for (slot, key) in strs.iter_mut().zip(&args[1..3]) {
        *slot = ks
            .find(ctx, db, key, Lookup::Read)
            .map(|f| f.slot.value.as_str().map(|s| s.to_bytes()).ok_or(()));
    }
    if strs.iter().any(|s| matches!(s, Some(Err(())))) {
        return err("ERR The specified keys must contain string values");
    }
    let [a, b] = strs.map(|s| s.and_then(Result::ok).unwrap_or_default());
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j][..];
        let more = j + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"idx") {
            getidx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            getlen = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && more {
            minmatchlen = match parse_i64(&args[j + 1]) {
                Ok(n) => n.max(0),
                Err(e) => return e,
            };
            j += 1;
        } else {
            return err(errors::SYNTAX);
        }
        j += 1;
    }
    if getlen && getidx {
        return err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let r = match compute(&a, &b, minmatchlen as u64) {
        Ok(r) => r,
        Err(e) => return err(e),
    };
    if getidx {
        let matches = r
            .ranges
            .iter()
            .map(|&(as_, ae, bs, be)| {
                let mut m = vec![
                    Reply::Array(vec![Reply::Integer(as_ as i64), Reply::Integer(ae as i64)]),
                    Reply::Array(vec![Reply::Integer(bs as i64), Reply::Integer(be as i64)]),
                ];
                if withmatchlen {
                    m.push(Reply::Integer((ae - as_ + 1) as i64));
                }
                Reply::Array(m)
            })
            .collect();
        Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Integer(r.len as i64)),
        ])
    } else if getlen {
        Reply::Integer(r.len as i64)
    } else {
        Reply::Bulk(Bytes::from(r.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::{compute, errors, Reply};
    use crate::testutil::*;

    #[test]
    fn redis_doc_example() {
        let r = compute(b"ohmytext", b"mynewtext", 0).unwrap();
        assert_eq!(r.seq, b"mytext");
        assert_eq!(r.len, 6);
        assert_eq!(r.ranges, vec![(4, 7, 5, 8), (2, 3, 0, 1)]);
        let r = compute(b"ohmytext", b"mynewtext", 4).unwrap();
        assert_eq!(r.ranges, vec![(4, 7, 5, 8)]);
    }

    #[test]
    fn empty_and_disjoint() {
        assert_eq!(compute(b"", b"abc", 0).unwrap().len, 0);
        let r = compute(b"abc", b"xyz", 0).unwrap();
        assert_eq!((r.len, r.ranges.len()), (0, 0));
    }

    #[test]
    fn command_forms() {
        let mut t = T::new();
        t.run("SET key1 ohmytext");
        t.run("SET key2 mynewtext");
        assert_eq!(t.run("LCS key1 key2"), bulk("mytext"));
        assert_eq!(t.run("LCS key1 key2 LEN"), int(6));
        assert_eq!(t.run("LCS key1 nokey"), bulk(""));
        assert_eq!(
            t.run("LCS key1 key2 LEN IDX"),
            err("ERR If you want both the length and indexes, please just use IDX.")
        );
        assert_eq!(t.run("LCS key1 key2 MINMATCHLEN"), err(errors::SYNTAX));
        assert_eq!(
            t.run("LCS key1 key2 MINMATCHLEN x"),
            err(errors::NOT_INTEGER)
        );
        t.run("LPUSH l a");
        assert_eq!(
            t.run("LCS key1 l"),
            err("ERR The specified keys must contain string values")
        );
        let Reply::Map(m) = t.run("LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN") else {
            panic!("map expected");
        };
        assert_eq!(m[1], (bulk("len"), int(6)));
    }
}
