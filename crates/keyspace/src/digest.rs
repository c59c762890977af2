//! DEBUG DIGEST and DEBUG DIGEST-VALUE, bit for bit as Redis 7.0's debug.c
//! computes them (`computeDatasetDigest`, `xorObjectDigest`), so replication
//! tests can compare a shardis master with stock Redis replicas and back.
//!
//! Redis's dataset digest, for each non-empty db `j` in order, mixes
//! `htonl(j)` into the running digest and then XORs in SHA1 of every key's
//! own digest. XOR is order-free, so each shard computes its per-db parts
//! ([`Keyspace::db_digests`]), the server XORs the parts of all shards
//! ([`merge_db_digests`]) and applies the per-db mixing once ([`combine`]).

use crate::db::Slot;
use crate::errors;
use crate::rdbconv::to_rdb;
use crate::DbIndex;
use crate::{ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::reply::format_double;
use shardis_protocol::Reply;
use shardis_rdb::RdbValue;

/// A 20-byte SHA1-based digest.
pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// debug.c `xorDigest`: XORs SHA1(`data`) into `d`.
fn xor_digest(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

/// debug.c `mixDigest`: XORs SHA1(`data`) into `d`, then replaces `d` by its
/// own SHA1, so the order of mixes matters.
fn mix_digest(d: &mut Digest, data: &[u8]) {
    xor_digest(d, data);
    *d = sha1(&d[..]);
}

/// Redis's `OBJ_*` type codes, which the digest mixes in.
fn type_code(v: &RdbValue) -> u32 {
    match v {
        RdbValue::String(_) => 0,
        RdbValue::List(_) => 1,
        RdbValue::Set(_) => 2,
        RdbValue::ZSet(_) => 3,
        RdbValue::Hash(_) => 4,
        RdbValue::Stream(_) => 6,
    }
}

/// debug.c `xorObjectDigest` into `d`: the type, then the value (lists and
/// streams in order; sets, hashes and sorted sets order-free), then a marker
/// if the key has an expiry (its time is not part of the digest).
fn xor_object_digest(d: &mut Digest, v: &RdbValue, has_expire: bool) {
    mix_digest(d, &type_code(v).to_be_bytes());
    match v {
        RdbValue::String(s) => mix_digest(d, s),
        RdbValue::List(items) => items.iter().for_each(|i| mix_digest(d, i)),
        RdbValue::Set(members) => members.iter().for_each(|m| xor_digest(d, m)),
        RdbValue::ZSet(pairs) => {
            for (member, score) in pairs {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, member);
                // Redis 7.0 formats the score with "%.17g".
                mix_digest(&mut ele, format_double(*score).as_bytes());
                xor_digest(d, &ele);
            }
        }
        RdbValue::Hash(pairs) => {
            for (field, value) in pairs {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, field);
                mix_digest(&mut ele, value);
                xor_digest(d, &ele);
            }
        }
        RdbValue::Stream(s) => {
            // Entries only (ids as "ms.seq"); groups are not digested.
            for e in &s.entries {
                mix_digest(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (f, val) in &e.fields {
                    mix_digest(d, f);
                    mix_digest(d, val);
                }
            }
        }
    }
    if has_expire {
        xor_digest(d, b"!!expire!!");
    }
}

/// What DEBUG DIGEST-VALUE reports for a value (no key mixed in).
pub fn value_digest(v: &RdbValue, has_expire: bool) -> Digest {
    let mut d = [0; 20];
    xor_object_digest(&mut d, v, has_expire);
    d
}

/// One key's share of the dataset digest: SHA1 of (key mixed with its value).
fn key_share(key: &[u8], v: &RdbValue, has_expire: bool) -> Digest {
    let mut d = [0; 20];
    mix_digest(&mut d, key);
    xor_object_digest(&mut d, v, has_expire);
    sha1(&d)
}

fn slot_share(s: &Slot) -> Digest {
    key_share(&s.key, &to_rdb(&s.value), s.expire_at().is_some())
}

/// XORs per-db parts from several shards: a db is present if any shard has
/// keys in it.
pub fn merge_db_digests(shards: &[Vec<Option<Digest>>]) -> Vec<Option<Digest>> {
    let n = shards.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|j| {
            shards
                .iter()
                .filter_map(|s| s.get(j).copied().flatten())
                .reduce(|mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
                    a
                })
        })
        .collect()
}

/// Redis's final mixing over the per-db parts (`computeDatasetDigest`): 20
/// zero bytes for an empty dataset.
pub fn combine(per_db: &[Option<Digest>]) -> Digest {
    let mut d = [0u8; 20];
    for (j, part) in per_db.iter().enumerate() {
        if let Some(part) = part {
            mix_digest(&mut d, &(j as u32).to_be_bytes());
            d.iter_mut().zip(part).for_each(|(x, y)| *x ^= y);
        }
    }
    d
}

/// Lower-case hex, as DEBUG prints digests.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keyspace {
    /// This shard's part of DEBUG DIGEST, per db: `None` for an empty db,
    /// else the XOR of its keys' shares. Like Redis, keys whose TTL passed
    /// but that are not reclaimed yet count.
    pub fn db_digests(&self) -> Vec<Option<Digest>> {
        self.dbs
            .iter()
            .map(|d| {
                (!d.is_empty()).then(|| {
                    let mut acc = [0u8; 20];
                    for s in d.segments.iter().flat_map(|t| t.iter()) {
                        acc.iter_mut().zip(slot_share(s)).for_each(|(x, y)| *x ^= y);
                    }
                    acc
                })
            })
            .collect()
    }

    /// DEBUG DIGEST of this shard alone (the server combines shards with
    /// [`merge_db_digests`] and [`combine`]).
    pub fn digest(&self) -> Digest {
        combine(&self.db_digests())
    }

    /// DEBUG DIGEST-VALUE of `key` in `db`: zeros if absent. Like Redis it
    /// sees logically expired keys and does not touch or reclaim them.
    pub fn digest_value(&self, db: DbIndex, key: &[u8]) -> Digest {
        let hash = self.hash(key);
        self.dbs[db.get()]
            .segments
            .get(crate::db::segment_of(hash))
            .and_then(|t| t.find(hash, |s| s.key[..] == *key))
            .map_or([0; 20], |s| {
                value_digest(&to_rdb(&s.value), s.expire_at().is_some())
            })
    }
}

/// DEBUG DIGEST-VALUE key… and DEBUG DIGEST (this shard's dataset; the
/// server combines shards for a multi-shard DEBUG DIGEST).
pub(crate) fn debug(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"digest-value" => Reply::Array(
            args[2..]
                .iter()
                .map(|k| Reply::Status(hex(&ks.digest_value(ctx.db, k))))
                .collect(),
        ),
        b"digest" if args.len() == 2 => Reply::Status(hex(&ks.digest())),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "DEBUG")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    // Expected values below come from redis-server 7.0.15 (Debian), DEBUG
    // DIGEST / DEBUG DIGEST-VALUE on a unix socket.

    fn s(b: &str) -> Bytes {
        Bytes::copy_from_slice(b.as_bytes())
    }

    #[test]
    fn empty_dataset_is_zeros() {
        let t = T::new();
        assert_eq!(hex(&t.ks.digest()), "0".repeat(40));
        assert_eq!(
            hex(&t.ks.digest_value(DbIndex(0), b"missing")),
            "0".repeat(40)
        );
    }

    #[test]
    fn string_digests_match_redis() {
        let mut t = T::new();
        t.run("SET foo bar");
        t.run("SET a 1");
        assert_eq!(
            hex(&t.ks.digest()),
            "eca650d003acd224be77ecc5d97b796f6d41af97"
        );
        assert_eq!(
            t.run("DEBUG DIGEST-VALUE foo a missing"),
            Reply::Array(vec![
                Reply::Status("68467c70ae30376e7ce005bcc8827f5ba7fd67dc".into()),
                Reply::Status("b4fc66738120fba0b5aa500ab5c2bf89cea1c5da".into()),
                Reply::Status("0".repeat(40)),
            ])
        );
        t.ctx.db = DbIndex(3);
        t.run("SET x hello");
        t.run("SET e v EX 1000");
        assert_eq!(
            t.run("DEBUG DIGEST"),
            Reply::Status("e8990034722b7198491666020ec8c795903c03bb".into())
        );
        assert_eq!(
            hex(&t.ks.digest_value(DbIndex(3), b"x")),
            "36b23a1456b2dce2c3ed252c456761301dba8060"
        );
        assert_eq!(
            hex(&t.ks.digest_value(DbIndex(3), b"e")),
            "311b17018163335616e089f6b951c82c477335ac",
            "an expiry adds its marker"
        );
        t.ctx.db = DbIndex(6);
        t.run(&format!("SET big {}", "x".repeat(100)));
        t.run("SET neg -42");
        assert_eq!(
            hex(&t.ks.digest_value(DbIndex(6), b"big")),
            "6942b9b71aaff9a398b7a2f898756f5e28dd3cd1"
        );
        assert_eq!(
            hex(&t.ks.digest_value(DbIndex(6), b"neg")),
            "ce70a5674f228eaf3e2c2d01f6152e36f7e792a7"
        );
    }

    #[test]
    fn per_shard_parts_combine_to_the_whole() {
        let mut one = T::new();
        let mut a = T::new();
        let mut b = T::new();
        for (i, k) in ["foo", "a", "x", "e", "y", "z"].iter().enumerate() {
            let db = [0, 0, 3, 3, 7, 0][i];
            let line = format!("SET {k} v{i}");
            one.ctx.db = DbIndex(db);
            one.run(&line);
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            half.ctx.db = DbIndex(db);
            half.run(&line);
        }
        let merged = merge_db_digests(&[a.ks.db_digests(), b.ks.db_digests()]);
        assert_eq!(combine(&merged), one.ks.digest());
        assert_ne!(one.ks.digest(), [0; 20]);
    }

    #[test]
    fn other_types_match_redis() {
        // RPUSH l a b 123 (with foo and a in db 0, DEBUG DIGEST gave
        // 31bcd5c0771ad529ea82372f61ac3c761b2a3fc0).
        let list = RdbValue::List(vec![s("a"), s("b"), s("123")]);
        assert_eq!(
            hex(&value_digest(&list, false)),
            "89c604f28d33238a0c4a93e676d3be6fbcda6c71"
        );
        // HSET h f1 v1 f2 2
        let hash = RdbValue::Hash(vec![(s("f2"), s("2")), (s("f1"), s("v1"))]);
        assert_eq!(
            hex(&value_digest(&hash, false)),
            "fc076e867f7dbf566ea58172a151d82d78b8f845"
        );
        // SADD s m1 2 m3; SADD si 1 2 3 (intset)
        let set = RdbValue::Set(vec![s("m3"), s("m1"), s("2")]);
        assert_eq!(
            hex(&value_digest(&set, false)),
            "40fbb37ab8b41607e5093a527e01acc4b57920eb"
        );
        let intset = RdbValue::Set(vec![s("1"), s("2"), s("3")]);
        assert_eq!(
            hex(&value_digest(&intset, false)),
            "2a462a3f51a1db89738ebbeef0c47ce1bbc85246"
        );
        // ZADD z 1.5 a 2 b 0.1 c -3e-7 d 1e20 e inf f
        let zset = RdbValue::ZSet(vec![
            (s("d"), -3e-7),
            (s("c"), 0.1),
            (s("a"), 1.5),
            (s("b"), 2.0),
            (s("e"), 1e20),
            (s("f"), f64::INFINITY),
        ]);
        assert_eq!(
            hex(&value_digest(&zset, false)),
            "bd1e87381f4457a77ad6eb564ec59d2f5caa6d3e"
        );
    }

    #[test]
    fn dataset_digest_with_every_type_matches_redis() {
        // db 0: foo, a, l; db 3: x, e (EX 1000); db 5: h, s, z, as above.
        // Types the keyspace holds go in as keys; the others' shares are
        // XORed into the parts by hand (a shard holding them would).
        let mut t = T::new();
        let now = t.ctx.now_ms;
        let items = vec![
            (0, "foo", RdbValue::String(s("bar")), None),
            (0, "a", RdbValue::String(s("1")), None),
            (0, "l", RdbValue::List(vec![s("a"), s("b"), s("123")]), None),
            (3, "x", RdbValue::String(s("hello")), None),
            (3, "e", RdbValue::String(s("v")), Some(now + 1_000_000)),
            (
                5,
                "h",
                RdbValue::Hash(vec![(s("f1"), s("v1")), (s("f2"), s("2"))]),
                None,
            ),
            (5, "s", RdbValue::Set(vec![s("m1"), s("2"), s("m3")]), None),
            (
                5,
                "z",
                RdbValue::ZSet(vec![
                    (s("a"), 1.5),
                    (s("b"), 2.0),
                    (s("c"), 0.1),
                    (s("d"), -3e-7),
                    (s("e"), 1e20),
                    (s("f"), f64::INFINITY),
                ]),
                None,
            ),
        ];
        let mut by_hand = vec![None; 16];
        for (db, k, v, exp) in items {
            match crate::rdbconv::from_rdb(v.clone()) {
                Ok(value) => t.ks.put_entry(
                    DbIndex(db),
                    s(k),
                    crate::Entry {
                        value,
                        expire_at_ms: exp,
                    },
                    0,
                ),
                Err(_) => {
                    let part = by_hand[db].get_or_insert([0u8; 20]);
                    let share = key_share(k.as_bytes(), &v, exp.is_some());
                    part.iter_mut().zip(share).for_each(|(x, y)| *x ^= y);
                }
            }
        }
        let merged = merge_db_digests(&[t.ks.db_digests(), by_hand]);
        assert_eq!(
            hex(&combine(&merged)),
            "cf042fcd74d2e813b098817cbf91518bacba7608"
        );
    }
}
