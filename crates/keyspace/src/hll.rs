//! HyperLogLog: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST, on strings
//! laid out byte for byte as Redis 7.0 lays them out, so a HyperLogLog moves
//! between shardis and redis-server (DUMP/RESTORE, RDB, replication) as is.
//!
//! # Layout (Redis's `hyperloglog.c` format)
//! A 16-byte header: `HYLL`, the encoding (0 dense, 1 sparse), three zero
//! bytes, and the cached cardinality as 8 little-endian bytes whose top bit
//! set means "stale". Then 16384 registers of 6 bits:
//! - dense: 12288 bytes, register `i` at bit `6*i`, least significant bits
//!   first;
//! - sparse: run-length opcodes, `00xxxxxx` ZERO (1..64 zero registers),
//!   `01xxxxxx yyyyyyyy` XZERO (1..16384), `1vvvvvxx` VAL (value 1..32 repeated
//!   1..4 times). A new HyperLogLog is sparse; it turns dense when a register
//!   needs a value above 32 or the string would outgrow `hll-sparse-max-bytes`.
//!
//! Elements are hashed with MurmurHash64A (seed `0xadc83b19`): the low 14 bits
//! pick the register, the run of zeros above them (plus one) is its candidate
//! value. The estimate is Ertl's improved estimator, as Redis computes it.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::value::{StrValue, Value};
use crate::{ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;
use std::sync::atomic::{AtomicUsize, Ordering};

const P: u32 = 14;
const Q: u32 = 64 - P;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
const REGISTER_MAX: u8 = 63;
/// Header bytes.
pub const HDR: usize = 16;
/// Size of a dense HyperLogLog string.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
const SEED: u64 = 0xadc8_3b19;

/// A HyperLogLog whose sparse opcodes do not cover exactly 16384 registers.
pub const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// `hll-sparse-max-bytes`: the largest sparse string before it turns dense.
static SPARSE_MAX_BYTES: AtomicUsize = AtomicUsize::new(3000);

/// Applies `hll-sparse-max-bytes` (at start and on CONFIG SET); it is one
/// value for the whole process, as in Redis.
pub fn set_sparse_max_bytes(n: u64) {
    SPARSE_MAX_BYTES.store(n.min(usize::MAX as u64) as usize, Ordering::Relaxed);
}

fn sparse_max_bytes() -> usize {
    SPARSE_MAX_BYTES.load(Ordering::Relaxed)
}

/// The sparse representation is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash2, 64-bit (MurmurHash64A), reading 8-byte blocks little-endian
/// as Redis does on every architecture.
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut blocks = key.chunks_exact(8);
    for b in blocks.by_ref() {
        let mut k = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register `ele` maps to and the value it offers (the length of the
/// `0…01` pattern above the index bits).
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Register `i` of dense registers `r`.
pub fn dense_get(r: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = r[byte] as u32;
    let b1 = r.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

/// Sets register `i` of dense registers `r` to `v` (at most 63).
pub fn dense_set(r: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = v as u32;
    r[byte] &= !((REGISTER_MAX as u32) << fb) as u8;
    r[byte] |= (v << fb) as u8;
    if let Some(b1) = r.get_mut(byte + 1) {
        *b1 &= !((REGISTER_MAX as u32) >> (8 - fb)) as u8;
        *b1 |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` to `v` if it is lower; true if it changed.
fn dense_raise(r: &mut [u8], i: usize, v: u8) -> bool {
    if v > dense_get(r, i) {
        dense_set(r, i, v);
        true
    } else {
        false
    }
}

/// One sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` zero registers (ZERO if one byte, XZERO if two).
    Zero { len: usize, wide: bool },
    /// `len` registers of value `val`.
    Val { val: u8, len: usize },
}

impl Op {
    fn at(b: &[u8], p: usize) -> Op {
        let x = b[p];
        if x & 0x80 != 0 {
            Op::Val {
                val: ((x >> 2) & 0x1f) + 1,
                len: (x & 3) as usize + 1,
            }
        } else if x & 0x40 == 0 {
            Op::Zero {
                len: (x & 0x3f) as usize + 1,
                wide: false,
            }
        } else {
            // A truncated XZERO reads the missing byte as 0, as Redis reads
            // the sds terminator.
            let lo = b.get(p + 1).copied().unwrap_or(0) as usize;
            Op::Zero {
                len: ((((x & 0x3f) as usize) << 8) | lo) + 1,
                wide: true,
            }
        }
    }

    fn size(self) -> usize {
        match self {
            Op::Zero { wide: true, .. } => 2,
            _ => 1,
        }
    }

    fn len(self) -> usize {
        match self {
            Op::Zero { len, .. } | Op::Val { len, .. } => len,
        }
    }
}

fn val_op(val: u8, len: usize) -> u8 {
    0x80 | ((val - 1) << 2) | (len as u8 - 1)
}

/// Zero run opcodes for `len` registers (ZERO up to 64, else XZERO).
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq.push(0x40 | (l >> 8) as u8);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push(len as u8 - 1);
    }
}

/// A new, empty HyperLogLog: sparse, all XZERO, cached count 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2 * REGISTERS.div_ceil(SPARSE_XZERO_MAX_LEN));
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_zeros(&mut v, n);
        left -= n;
    }
    v
}

/// Whether `b` looks like a HyperLogLog (Redis's `isHLLObjectOrReply`).
pub fn is_hll(b: &[u8]) -> bool {
    b.len() >= HDR
        && &b[..4] == b"HYLL"
        && b[4] <= SPARSE
        && (b[4] != DENSE || b.len() == DENSE_SIZE)
}

fn invalidate(h: &mut [u8]) {
    h[15] |= 0x80;
}

/// Rewrites a sparse HyperLogLog as dense, keeping the header (cached
/// count included). Does nothing to a dense one.
pub fn sparse_to_dense(h: &mut Vec<u8>) -> Result<(), Corrupt> {
    if h[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&h[..HDR]);
    dense[4] = DENSE;
    let (mut p, mut idx) = (HDR, 0usize);
    while p < h.len() {
        let op = Op::at(h, p);
        // Debian's 7.0.15 carries the CVE-2025-32023 fix: a run past the
        // last register is corruption, whatever its kind.
        if idx + op.len() > REGISTERS {
            return Err(Corrupt);
        }
        if let Op::Val { val, len } = op {
            for i in idx..idx + len {
                dense_set(&mut dense[HDR..], i, val);
            }
        }
        idx += op.len();
        p += op.size();
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *h = dense;
    Ok(())
}

/// Raises register `index` of a sparse HyperLogLog to `count`, splitting
/// and re-merging opcodes in place as Redis does (so the bytes match), or
/// turning it dense when needed. `Ok(true)` if a register changed.
fn sparse_set(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(h, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = h.len();
    let (mut p, mut first, mut prev, mut op) = (HDR, 0usize, None, None);
    while p < end {
        let o = Op::at(h, p);
        if index < first + o.len() {
            op = Some(o);
            break;
        }
        prev = Some(p);
        p += o.size();
        first += o.len();
    }
    let Some(op) = op else {
        return Err(Corrupt);
    };
    // Step 2: the trivial updates, then the general split.
    match op {
        Op::Val { val, .. } if val >= count => return Ok(false),
        Op::Val { len: 1, .. }
        | Op::Zero {
            len: 1,
            wide: false,
        } => {
            h[p] = val_op(count, 1);
        }
        _ => {
            let last = first + op.len() - 1;
            let mut seq = Vec::with_capacity(5);
            match op {
                Op::Zero { .. } => {
                    if index != first {
                        push_zeros(&mut seq, index - first);
                    }
                    seq.push(val_op(count, 1));
                    if index != last {
                        push_zeros(&mut seq, last - index);
                    }
                }
                Op::Val { val, .. } => {
                    if index != first {
                        seq.push(val_op(val, index - first));
                    }
                    seq.push(val_op(count, 1));
                    if index != last {
                        seq.push(val_op(val, last - index));
                    }
                }
            }
            let old = op.size();
            if seq.len() > old && h.len() + (seq.len() - old) > sparse_max_bytes() {
                return promote(h, index, count);
            }
            h.splice(p..p + old, seq);
        }
    }
    // Step 3: merge adjacent VAL opcodes of equal value, scanning at most
    // five opcodes from the one before the change.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < h.len() && scan > 0 {
        scan -= 1;
        match Op::at(h, p) {
            Op::Zero { wide, .. } => {
                p += if wide { 2 } else { 1 };
                continue;
            }
            Op::Val { val, len } => {
                if p + 1 < h.len() {
                    if let Op::Val { val: v2, len: l2 } = Op::at(h, p + 1) {
                        if v2 == val && len + l2 <= SPARSE_VAL_MAX_LEN {
                            h[p + 1] = val_op(val, len + l2);
                            h.remove(p);
                            continue;
                        }
                    }
                }
                p += 1;
            }
        }
    }
    invalidate(h);
    Ok(true)
}

fn promote(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    sparse_to_dense(h)?;
    let changed = dense_raise(&mut h[HDR..], index, count);
    debug_assert!(changed, "a promotion always changes a register");
    Ok(changed)
}

/// Adds one element; `Ok(true)` if a register changed.
pub fn add(h: &mut Vec<u8>, ele: &[u8]) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    match h[4] {
        DENSE => Ok(dense_raise(&mut h[HDR..], index, count)),
        SPARSE => sparse_set(h, index, count),
        _ => Err(Corrupt),
    }
}

/// Histogram of register values of a HyperLogLog string (`invalid` if its
/// sparse opcodes do not cover exactly every register).
fn histogram(h: &[u8]) -> ([u32; 64], bool) {
    let mut histo = [0u32; 64];
    if h[4] == DENSE {
        let r = &h[HDR..];
        for i in 0..REGISTERS {
            histo[dense_get(r, i) as usize] += 1;
        }
        return (histo, false);
    }
    let (mut p, mut idx) = (HDR, 0usize);
    while p < h.len() {
        let op = Op::at(h, p);
        let v = match op {
            Op::Zero { .. } => 0,
            Op::Val { val, .. } => val as usize,
        };
        histo[v] += op.len() as u32;
        idx += op.len();
        p += op.size();
    }
    (histo, idx != REGISTERS)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a register histogram (Ertl's estimator,
/// evaluated in the same order as Redis so the rounding agrees).
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as i64 as u64
}

/// The estimate of a HyperLogLog string.
pub fn count(h: &[u8]) -> Result<u64, Corrupt> {
    let (histo, invalid) = histogram(h);
    if invalid {
        return Err(Corrupt);
    }
    Ok(estimate(&histo))
}

/// The estimate of registers held one per byte (the union PFCOUNT builds).
pub fn count_raw(max: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &v in max {
        histo[v as usize] += 1;
    }
    estimate(&histo)
}

/// `max[i] = max(max[i], register i of h)` for every register.
pub fn merge(max: &mut [u8], h: &[u8]) -> Result<(), Corrupt> {
    if h[4] == DENSE {
        let r = &h[HDR..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(r, i));
        }
        return Ok(());
    }
    let (mut p, mut i) = (HDR, 0usize);
    while p < h.len() {
        let op = Op::at(h, p);
        if i + op.len() > REGISTERS {
            return Err(Corrupt);
        }
        if let Op::Val { val, len } = op {
            for m in &mut max[i..i + len] {
                *m = (*m).max(val);
            }
        }
        i += op.len();
        p += op.size();
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The cached cardinality, if it is valid.
fn cached(h: &[u8]) -> Option<u64> {
    (h[15] & 0x80 == 0).then(|| u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")))
}

/// Looks up a string that must be a HyperLogLog. `Ok(None)` if missing.
fn hll_value<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    mode: Lookup,
) -> Result<Option<&'a mut StrValue>, Reply> {
    let db = ctx.db;
    let Some(f) = ks.find(ctx, db, key, mode) else {
        return Ok(None);
    };
    let Some(s) = f.slot.value.as_str_mut() else {
        return Err(err(errors::WRONGTYPE));
    };
    // An integer-encoded string is never a HyperLogLog.
    let ok = !matches!(s, StrValue::Int(_)) && s.with_bytes(is_hll);
    if !ok {
        return Err(err(crate::errors::NOT_HLL));
    }
    Ok(Some(s))
}

/// PFADD key [element ...]
pub fn pfadd(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let mut updated = 0u64;
    match hll_value(ks, ctx, &args[1], Lookup::Write) {
        Err(e) => return e,
        Ok(Some(_)) => {}
        Ok(None) => {
            let v = Value::String(StrValue::Raw(Box::new(new_sparse())));
            ks.insert_new(ctx, db, &args[1], v, None);
            updated += 1;
        }
    }
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::Write) else {
        unreachable!("checked or inserted above");
    };
    let h = f.slot.value.as_str_mut().expect("a string").make_raw();
    for ele in &args[2..] {
        match add(h, ele) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(Corrupt) => return err(CORRUPT),
        }
    }
    if updated > 0 {
        invalidate(h);
        ctx.notify(crate::notify::STRING, "pfadd", &args[1]);
        ctx.stats.dirty += updated;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer((updated > 0) as i64)
}

/// PFCOUNT key [key ...]
pub fn pfcount(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        // The union's estimate; nothing is written.
        let mut max = vec![0u8; REGISTERS];
        for key in &args[1..] {
            match hll_value(ks, ctx, key, Lookup::Read) {
                Err(e) => return e,
                Ok(None) => {}
                Ok(Some(s)) => {
                    if s.with_bytes(|b| merge(&mut max, b)).is_err() {
                        return err(CORRUPT);
                    }
                }
            }
        }
        return Reply::Integer(count_raw(&max) as i64);
    }
    let h = match hll_value(ks, ctx, &args[1], Lookup::Read) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) => s,
    };
    // Redis unshares the value (making it `raw`) before it reads the cache.
    let h = h.make_raw();
    if let Some(card) = cached(h) {
        return Reply::Integer(card as i64);
    }
    let Ok(card) = count(h) else {
        return err(CORRUPT);
    };
    // Storing the count changes the string: it counts as a write and goes
    // to replicas, as in Redis.
    h[8..16].copy_from_slice(&card.to_le_bytes());
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    Reply::Integer(card as i64)
}

/// PFMERGE destkey [sourcekey ...]
pub fn pfmerge(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let mut max = vec![0u8; REGISTERS];
    let mut use_dense = false;
    // The destination is merged too: it is args[1].
    for key in &args[1..] {
        match hll_value(ks, ctx, key, Lookup::Read) {
            Err(e) => return e,
            Ok(None) => {}
            Ok(Some(s)) => {
                let r = s.with_bytes(|b| {
                    use_dense |= b[4] == DENSE;
                    merge(&mut max, b)
                });
                if r.is_err() {
                    return err(CORRUPT);
                }
            }
        }
    }
    let db = ctx.db;
    if ks.find(ctx, db, &args[1], Lookup::Write).is_none() {
        let v = Value::String(StrValue::Raw(Box::new(new_sparse())));
        ks.insert_new(ctx, db, &args[1], v, None);
    }
    let f = ks
        .find(ctx, db, &args[1], Lookup::Write)
        .expect("found or inserted above");
    let h = f
        .slot
        .value
        .as_str_mut()
        .expect("checked to be a string")
        .make_raw();
    if use_dense && sparse_to_dense(h).is_err() {
        return err(CORRUPT);
    }
    for (i, &v) in max.iter().enumerate() {
        if v == 0 {
            continue;
        }
        if h[4] == DENSE {
            dense_raise(&mut h[HDR..], i, v);
        } else {
            // Like Redis, a broken destination is left as it is here.
            let _ = sparse_set(h, i, v);
        }
    }
    invalidate(h);
    // Redis reports a merge as a mass PFADD.
    ctx.notify(crate::notify::STRING, "pfadd", &args[1]);
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    Reply::OK
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
pub fn pfdebug(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let h = match hll_value(ks, ctx, &args[2], Lookup::Write) {
        Err(e) => return e,
        Ok(None) => return err("ERR The specified key does not exist"),
        Ok(Some(s)) => s.make_raw(),
    };
    let sub = &args[1][..];
    if sub.eq_ignore_ascii_case(b"getreg") {
        if h[4] == SPARSE {
            if sparse_to_dense(h).is_err() {
                return err(CORRUPT);
            }
            ctx.stats.dirty += 1;
            ctx.propagate_as_sent(args);
        }
        let r = &h[HDR..];
        Reply::Array(
            (0..REGISTERS)
                .map(|i| Reply::Integer(dense_get(r, i) as i64))
                .collect(),
        )
    } else if sub.eq_ignore_ascii_case(b"decode") {
        {
            if h[4] != SPARSE {
                return err("ERR HLL encoding is not sparse");
            }
            let mut out = String::new();
            let mut p = HDR;
            while p < h.len() {
                let op = Op::at(h, p);
                if !out.is_empty() {
                    out.push(' ');
                }
                match op {
                    Op::Zero { len, wide: false } => out.push_str(&format!("z:{len}")),
                    Op::Zero { len, wide: true } => out.push_str(&format!("Z:{len}")),
                    Op::Val { val, len } => out.push_str(&format!("v:{val},{len}")),
                }
                p += op.size();
            }
            Reply::Bulk(Bytes::from(out))
        }
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        Reply::Simple(if h[4] == DENSE { "dense" } else { "sparse" })
    } else if sub.eq_ignore_ascii_case(b"todense") {
        if h[4] != SPARSE {
            return Reply::Integer(0);
        }
        if sparse_to_dense(h).is_err() {
            return err(CORRUPT);
        }
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
        Reply::Integer(1)
    } else {
        Reply::Error(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// PFSELFTEST: Redis's self-test of the register layout and of the
/// estimator (dense and sparse must agree; errors within bounds). Slow by
/// design: ten million additions.
pub fn selftest() -> Reply {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // Test 1: every register keeps its value and leaves its neighbours alone.
    let mut dense = vec![0u8; DENSE_SIZE];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = rng.gen::<u8>() & REGISTER_MAX;
            *b = r;
            dense_set(&mut dense[HDR..], i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let v = dense_get(&dense[HDR..], i);
            if v != b {
                return Reply::Error(format!(
                    "ERR TESTFAILED Register {i} should be {b} but is {v}"
                ));
            }
        }
    }
    // Test 2: the estimate of dense and sparse copies fed the same elements.
    dense.fill(0);
    dense[..4].copy_from_slice(b"HYLL");
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed: u64 = rng.gen();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_ne_bytes();
        add(&mut dense, &ele).ok();
        if add(&mut sparse, &ele).is_err() {
            return Reply::error("ERR TESTFAILED sparse representation corrupted");
        }
        if j != checkpoint {
            continue;
        }
        if (j as usize) < sparse_max_bytes() / 2 && sparse[4] != SPARSE {
            return Reply::error("ERR TESTFAILED sparse encoding not used");
        }
        let d = count(&dense).unwrap_or(0);
        if Ok(d) != count(&sparse) {
            return Reply::error("ERR TESTFAILED dense/sparse disagree");
        }
        let abserr = (checkpoint as i64 - d as i64).unsigned_abs();
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        // Collisions make a larger error at 10 statistically likely.
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Reply::Error(format!(
                "ERR TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Reply::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bulk, err, int, T};
    use proptest::prelude::*;

    #[test]
    fn murmur_matches_redis() {
        // Values from redis-server 7.0.15 (PFADD one element, PFDEBUG GETREG).
        let (i, c) = pattern(b"a");
        let mut h = new_sparse();
        assert!(add(&mut h, b"a").unwrap());
        sparse_to_dense(&mut h).unwrap();
        assert_eq!(dense_get(&h[HDR..], i), c);
    }

    #[test]
    fn new_hll_is_sparse_xzero() {
        let h = new_sparse();
        assert_eq!(h.len(), 18);
        assert_eq!(&h[HDR..], &[0x7f, 0xff]);
        assert_eq!(count(&h), Ok(0));
        assert!(is_hll(&h));
    }

    #[test]
    fn commands() {
        let mut t = T::new();
        assert_eq!(t.run("PFADD h"), int(1));
        assert_eq!(t.run("PFADD h"), int(0));
        assert_eq!(t.run("PFADD h a b c"), int(1));
        assert_eq!(t.run("PFADD h a b c"), int(0));
        assert_eq!(t.run("PFCOUNT h"), int(3));
        assert_eq!(t.run("PFDEBUG ENCODING h"), Reply::Simple("sparse"));
        assert_eq!(t.run("PFADD h2 c d"), int(1));
        assert_eq!(t.run("PFCOUNT h h2 nope"), int(4));
        assert_eq!(t.run("PFMERGE h3 h h2"), Reply::OK);
        assert_eq!(t.run("PFCOUNT h3"), int(4));
        assert_eq!(t.run("PFDEBUG TODENSE h3"), int(1));
        assert_eq!(t.run("PFDEBUG TODENSE h3"), int(0));
        assert_eq!(t.run("PFCOUNT h3"), int(4));
        assert_eq!(
            t.run("PFDEBUG DECODE h3"),
            err("ERR HLL encoding is not sparse")
        );
        assert_eq!(
            t.run("PFDEBUG ENCODING nope"),
            err("ERR The specified key does not exist")
        );
        assert_eq!(
            t.run("PFDEBUG FOO h"),
            err("ERR Unknown PFDEBUG subcommand 'FOO'")
        );
        t.run("SET s hello");
        assert_eq!(t.run("PFADD s a"), err(crate::errors::NOT_HLL));
        assert_eq!(t.run("PFCOUNT s"), err(crate::errors::NOT_HLL));
        t.run("SET n 1");
        assert_eq!(t.run("PFCOUNT n"), err(crate::errors::NOT_HLL));
        t.run("LPUSH l a");
        assert_eq!(t.run("PFCOUNT l"), err(errors::WRONGTYPE));
        // A sparse HLL whose opcodes cover too few registers.
        t.run_args(vec![
            "SET".into(),
            "bad".into(),
            Bytes::from_static(b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xfe"),
        ]);
        assert_eq!(t.run("PFCOUNT bad"), err(CORRUPT));
        assert_eq!(t.run("GET nope"), Reply::Nil);
        let _ = bulk("");
    }

    #[test]
    fn propagates_what_redis_propagates() {
        let mut t = T::new();
        t.run("PFADD h a b");
        t.run("PFADD h a");
        assert_eq!(t.effects(), vec!["PFADD h a b"], "no change, nothing sent");
        t.run("PFCOUNT h");
        t.run("PFCOUNT h");
        assert_eq!(
            t.effects(),
            vec!["PFCOUNT h"],
            "only the cache refresh is sent"
        );
        t.run("PFCOUNT h nope");
        t.run("PFDEBUG ENCODING h");
        assert!(t.effects().is_empty());
        t.run("PFDEBUG TODENSE h");
        t.run("PFDEBUG TODENSE h");
        t.run("PFDEBUG GETREG h");
        assert_eq!(t.effects(), vec!["PFDEBUG TODENSE h"]);
        t.run("PFMERGE m h");
        assert_eq!(t.effects(), vec!["PFMERGE m h"]);
    }

    #[test]
    fn promotes_past_sparse_max_bytes() {
        let mut h = new_sparse();
        let mut n = 0u64;
        while h[4] == SPARSE {
            add(&mut h, &n.to_le_bytes()).unwrap();
            n += 1;
            assert!(h.len() <= 3000 || h[4] == DENSE);
        }
        assert_eq!(h.len(), DENSE_SIZE);
    }

    proptest! {
        /// Sparse and dense copies fed the same elements hold the same
        /// registers and the same estimate.
        #[test]
        fn sparse_and_dense_agree(elems in proptest::collection::vec(any::<u64>(), 0..3000)) {
            let mut sparse = new_sparse();
            let mut dense = new_sparse();
            sparse_to_dense(&mut dense).unwrap();
            for e in &elems {
                let a = add(&mut sparse, &e.to_le_bytes()).unwrap();
                let b = add(&mut dense, &e.to_le_bytes()).unwrap();
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(count(&sparse).unwrap(), count(&dense).unwrap());
            let mut m1 = vec![0u8; REGISTERS];
            let mut m2 = vec![0u8; REGISTERS];
            merge(&mut m1, &sparse).unwrap();
            merge(&mut m2, &dense).unwrap();
            prop_assert_eq!(&m1, &m2);
            prop_assert_eq!(count_raw(&m1), count(&dense).unwrap());
        }
    }
}
