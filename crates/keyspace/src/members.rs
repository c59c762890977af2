//! Member collections shared by sets and sorted sets: [`Dict`], an
//! insertion-indexed hash map (O(1) lookup, O(1) random pick, O(1) removal by
//! swapping with the last entry), and the SSCAN/ZSCAN cursor walk over it.

use crate::errors::{self, err};
use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};
use rand::Rng;
use shardis_protocol::Reply;
use std::hash::BuildHasher;

/// A map from member to `V`: a dense vector of entries plus a hash index of
/// positions (index-map style).
#[derive(Clone, Default)]
pub struct Dict<V> {
    entries: Vec<(Bytes, V)>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<V: std::fmt::Debug> std::fmt::Debug for Dict<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<V> Dict<V> {
    /// Bytes of the dict's own tables (entries vector and hash index, by
    /// capacity), without the members' heap blocks (MEMORY USAGE).
    pub fn table_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Bytes, V)>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// An empty dict with room for `n` entries.
    pub fn with_capacity(n: usize) -> Dict<V> {
        Dict {
            entries: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Position of `key`, if present.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hash(key), |&i| entries[i as usize].0[..] == *key)
            .map(|&i| i as usize)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// True if `key` is present.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.position(key).is_some()
    }

    /// Adds `key` (copied) with `v`, or replaces the value of an existing key.
    /// True if the key is new.
    pub fn insert(&mut self, key: &[u8], v: V) -> bool {
        if let Some(i) = self.position(key) {
            self.entries[i].1 = v;
            return false;
        }
        self.insert_unique(Bytes::copy_from_slice(key), v);
        true
    }

    /// Adds a key known to be absent, keeping the given `Bytes` (the caller
    /// owns it: never a slice of a network buffer).
    pub fn insert_unique(&mut self, key: Bytes, v: V) {
        let hash = self.hash(&key);
        let i = self.entries.len() as u32;
        self.entries.push((key, v));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(&entries[j as usize].0[..]));
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.position(key)?;
        Some(self.swap_remove_index(i).1)
    }

    /// Removes the entry at position `i`; the last entry takes its place.
    pub fn swap_remove_index(&mut self, i: usize) -> (Bytes, V) {
        let entries = &self.entries;
        let hash = self.hash(&entries[i].0);
        if let Ok(e) = self.index.find_entry(hash, |&j| j as usize == i) {
            e.remove();
        }
        let last = self.entries.len() - 1;
        let out = self.entries.swap_remove(i);
        if i != last {
            let moved = self.hash(&self.entries[i].0);
            if let Some(p) = self.index.find_mut(moved, |&j| j as usize == last) {
                *p = i as u32;
            }
        }
        out
    }

    /// The entry at position `i`.
    pub fn at(&self, i: usize) -> (&Bytes, &V) {
        let (k, v) = &self.entries[i];
        (k, v)
    }

    /// A uniformly random position (the dict must not be empty).
    pub fn random_index(&self, rng: &mut impl Rng) -> usize {
        rng.gen_range(0..self.entries.len())
    }

    /// Every entry, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// One SSCAN/ZSCAN step from `cursor` visiting up to `count` entries.
    /// Returns (next cursor, first visited position, positions visited).
    ///
    /// The walk goes from the last position down: cursor `c` means
    /// "positions below `c` are left" (0 starts at the end). A removal moves
    /// the last entry into the hole, so an entry not yet visited can only move
    /// into the unvisited part or be visited twice, never skipped; new entries
    /// land at the end, which SCAN need not return. That is Redis's guarantee.
    pub fn scan_range(&self, cursor: u64, count: usize) -> (u64, std::ops::Range<usize>) {
        let len = self.entries.len();
        let hi = if cursor == 0 {
            len
        } else {
            (cursor.min(len as u64)) as usize
        };
        let lo = hi.saturating_sub(count.max(1));
        (lo as u64, lo..hi)
    }
}

impl<V: PartialEq> PartialEq for Dict<V> {
    fn eq(&self, other: &Dict<V>) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// The options of SSCAN/ZSCAN (HSCAN's too).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanArgs {
    /// The cursor.
    pub cursor: u64,
    /// COUNT (default 10).
    pub count: usize,
    /// MATCH, unless absent or `*`.
    pub pattern: Option<Bytes>,
}

/// Redis's `parseScanCursorOrReply`: `strtoul` semantics (an empty string is
/// 0, a leading `-` wraps, leading spaces or trailing junk are errors).
pub fn parse_cursor(raw: &[u8]) -> Result<u64, Reply> {
    let invalid = || err(errors::INVALID_CURSOR);
    let (neg, digits) = match raw.first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    if raw.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { n.wrapping_neg() } else { n })
}

/// Parses the options after the cursor (`args[3..]`) as `scanGenericCommand`
/// does for a key's collection (TYPE is a syntax error there).
pub fn parse_scan_options(cursor: u64, opts: &[Bytes]) -> Result<ScanArgs, Reply> {
    let mut out = ScanArgs {
        cursor,
        count: 10,
        pattern: None,
    };
    let mut i = 0;
    while i < opts.len() {
        let more = opts.len() - i >= 2;
        if more && opts[i].eq_ignore_ascii_case(b"count") {
            let n = crate::parse_i64(&opts[i + 1])?;
            if n < 1 {
                return Err(err(errors::SYNTAX));
            }
            out.count = n as usize;
        } else if more && opts[i].eq_ignore_ascii_case(b"match") {
            let p = &opts[i + 1];
            out.pattern = (p[..] != *b"*").then(|| p.clone());
        } else {
            return Err(err(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(out)
}

/// True if `member` passes the MATCH filter.
pub fn scan_match(pattern: &Option<Bytes>, member: &[u8]) -> bool {
    pattern
        .as_ref()
        .is_none_or(|p| crate::glob::glob_match(p, member, false))
}

/// The reply of a collection scan: `[cursor, [items…]]`.
pub fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::bulk_string(cursor.to_string()),
        Reply::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn dict_basics() {
        let mut d: Dict<i32> = Dict::default();
        assert!(d.insert(b"a", 1));
        assert!(d.insert(b"b", 2));
        assert!(!d.insert(b"a", 3));
        assert_eq!(d.get(b"a"), Some(&3));
        assert_eq!(d.remove(b"a"), Some(3));
        assert_eq!(d.remove(b"a"), None);
        assert_eq!(d.len(), 1);
        assert_eq!(d.at(0).0, &Bytes::from_static(b"b"));
    }

    #[test]
    fn cursor_parsing_is_strtoul() {
        assert_eq!(parse_cursor(b"").unwrap(), 0);
        assert_eq!(parse_cursor(b"12").unwrap(), 12);
        assert_eq!(parse_cursor(b"-1").unwrap(), u64::MAX);
        assert_eq!(parse_cursor(b"+5").unwrap(), 5);
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"1x").is_err());
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert_eq!(
            parse_scan_options(0, &[Bytes::from("count"), Bytes::from("0")]),
            Err(err(errors::SYNTAX))
        );
        assert_eq!(
            parse_scan_options(0, &[Bytes::from("count")]),
            Err(err(errors::SYNTAX))
        );
        assert_eq!(
            parse_scan_options(0, &[Bytes::from("match"), Bytes::from("*")])
                .unwrap()
                .pattern,
            None
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The dict's index stays consistent, and a scan returns every entry
        /// present for the whole walk while others are added and removed.
        #[test]
        fn scan_returns_every_stable_member(
            stable in 0usize..300,
            churn in proptest::collection::vec((0usize..400, any::<bool>()), 0..200),
            count in 1usize..40,
        ) {
            let mut d: Dict<()> = Dict::default();
            for i in 0..stable {
                d.insert(format!("s{i}").as_bytes(), ());
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            let mut ops = churn.into_iter();
            loop {
                let (next, range) = d.scan_range(cursor, count);
                seen.extend(range.map(|i| d.at(i).0.clone()));
                for (n, add) in ops.by_ref().take(10) {
                    let k = format!("c{n}");
                    if add { d.insert(k.as_bytes(), ()); } else { d.remove(k.as_bytes()); }
                }
                if next == 0 { break; }
                cursor = next;
            }
            for i in 0..stable {
                let k = format!("s{i}");
                prop_assert!(seen.contains(k.as_bytes()), "missing {}", k);
            }
            for i in 0..d.len() {
                let k = d.at(i).0.clone();
                prop_assert_eq!(d.position(&k), Some(i));
            }
        }
    }
}
