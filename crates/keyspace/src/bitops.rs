//! The bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO, with Redis 7.0's argument order, ranges and
//! overflow rules.
//!
//! Bits are numbered from the most significant bit of the first byte, as in
//! Redis. Writes grow the string with zero bytes up to the highest bit they
//! touch; a string holding an integer is turned into its bytes first.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::string::MAX_STRING_LEN;
use crate::value::{StrValue, Value};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::decode::parse_int;
use shardis_protocol::Reply;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// `proto-max-bulk-len`: bit offsets must address a byte below it.
static PROTO_MAX_BULK_LEN: AtomicU64 = AtomicU64::new(MAX_STRING_LEN as u64);

/// Applies `proto-max-bulk-len` (at start and on CONFIG SET).
pub fn set_proto_max_bulk_len(n: i64) {
    PROTO_MAX_BULK_LEN.store(n.max(0) as u64, Ordering::Relaxed);
}

/// Parses a bit offset (`getBitOffsetFromArgument`). With `bits` > 0 a
/// `#N` offset means `N * bits`. The replica applying its master's stream is
/// not held to the size limit, as in Redis.
fn bit_offset(obey_master: bool, raw: &[u8], bits: u32) -> Result<u64, Reply> {
    let hash = bits > 0 && raw.first() == Some(&b'#');
    let n = parse_int(&raw[hash as usize..])
        .ok_or_else(|| err(crate::errors::BIT_OFFSET_NOT_INTEGER))?;
    // Redis multiplies in C `long long`; wrapping reproduces its overflow.
    let n = if hash { n.wrapping_mul(bits as i64) } else { n };
    if n < 0 || (!obey_master && (n >> 3) as u64 >= PROTO_MAX_BULK_LEN.load(Ordering::Relaxed)) {
        return Err(err(crate::errors::BIT_OFFSET_NOT_INTEGER));
    }
    Ok(n as u64)
}

/// The string at `key` for a bit write, grown with zeros so bit `maxbit`
/// exists, created if missing (`lookupStringForBitCommand`). Returns the
/// buffer and whether it was created or grew.
fn string_for_write<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
    maxbit: u64,
) -> Result<(&'a mut Vec<u8>, bool), Reply> {
    let db = ctx.db;
    let need = (maxbit >> 3) as usize + 1;
    let exists = match ks.find(ctx, db, key, Lookup::Write) {
        None => false,
        Some(f) if f.slot.value.as_str().is_none() => return Err(err(errors::WRONGTYPE)),
        Some(_) => true,
    };
    if !exists {
        let v = Value::String(StrValue::Raw(Box::new(vec![0u8; need])));
        ks.insert_new(ctx, db, key, v, None);
    }
    let f = ks
        .find(ctx, db, key, Lookup::Write)
        .expect("found or inserted above");
    let s = f.slot.value.as_str_mut().expect("checked to be a string");
    let buf = s.make_raw();
    let mut grew = !exists;
    if buf.len() < need {
        buf.resize(need, 0);
        grew = true;
    }
    Ok((buf, grew))
}

/// SETBIT key offset value
pub fn setbit(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(ctx.obey_master, &args[2], 0) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match parse_int(&args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return err(crate::errors::BIT_NOT_INTEGER),
    };
    let (buf, grew) = match string_for_write(ks, ctx, &args[1], offset) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let old = (buf[byte] & mask != 0) as u8;
    if grew || old != on {
        if on == 1 {
            buf[byte] |= mask;
        } else {
            buf[byte] &= !mask;
        }
        ctx.notify(crate::notify::STRING, "setbit", &args[1]);
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
    }
    Reply::Integer(old as i64)
}

/// GETBIT key offset
pub fn getbit(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(ctx.obey_master, &args[2], 0) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let db = ctx.db;
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::Read) else {
        return Reply::Integer(0);
    };
    let Some(s) = f.slot.value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let byte = (offset >> 3) as usize;
        let set = b
            .get(byte)
            .is_some_and(|&x| x & (1 << (7 - (offset & 7))) != 0);
        Reply::Integer(set as i64)
    })
}

/// Set bits in `b`.
pub fn popcount(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")).count_ones() as u64)
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|x| x.count_ones() as u64)
        .sum::<u64>();
    n
}

/// Set bits of `b` in the inclusive bit range `from..=to` (within `b`).
fn popcount_bits(b: &[u8], from: u64, to: u64) -> u64 {
    let (fb, tb) = ((from >> 3) as usize, (to >> 3) as usize);
    let mut n = popcount(&b[fb..=tb]);
    // Take away the bits of the edge bytes that lie outside the range.
    let head = !(0xffu8 >> (from & 7));
    let tail = (0xffu16 >> ((to & 7) + 1)) as u8;
    n -= (b[fb] & head).count_ones() as u64;
    n -= (b[tb] & tail).count_ones() as u64;
    n
}

/// First bit equal to `bit` in the inclusive bit range `from..=to` of `b`.
fn find_bit(b: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let (fb, tb) = ((from >> 3) as usize, (to >> 3) as usize);
    let skip = if bit { 0x00 } else { 0xff };
    for (i, &x) in b[fb..=tb].iter().enumerate() {
        if x == skip {
            continue;
        }
        let base = ((fb + i) as u64) << 3;
        let lo = if i == 0 { from & 7 } else { 0 };
        let hi = if fb + i == tb { to & 7 } else { 7 };
        for k in lo..=hi {
            if ((x >> (7 - k)) & 1 == 1) == bit {
                return Some(base + k);
            }
        }
    }
    None
}

/// Range arguments in bytes or bits, normalised as BITCOUNT and BITPOS do:
/// negative indexes count from the end, then both are clamped into the
/// string. `None` for an empty range.
fn clamp_range(mut start: i64, mut end: i64, totlen: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    (start <= end).then_some((start, end))
}

/// `BYTE` or `BIT` (case-insensitive): whether the unit is bits.
fn unit_is_bit(a: &[u8]) -> Result<bool, Reply> {
    if a.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if a.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(err(errors::SYNTAX))
    }
}

/// BITCOUNT key [start end [BYTE|BIT]]
pub fn bitcount(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    // Redis 7.0 looks the key up before it reads the range: a missing key
    // answers 0 whatever the other arguments are.
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::Read) else {
        return Reply::Integer(0);
    };
    let Some(s) = f.slot.value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        let (from, to) = match args.len() {
            2 if len == 0 => return Reply::Integer(0),
            2 => (0, (len as u64) * 8 - 1),
            4 | 5 => {
                let (start, end) = match (parse_i64(&args[2]), parse_i64(&args[3])) {
                    (Ok(s), Ok(e)) => (s, e),
                    (Err(e), _) | (_, Err(e)) => return e,
                };
                if start < 0 && end < 0 && start > end {
                    return Reply::Integer(0);
                }
                let bit = match args.get(4).map(|a| unit_is_bit(a)) {
                    Some(Err(e)) => return e,
                    Some(Ok(bit)) => bit,
                    None => false,
                };
                let total = if bit { len << 3 } else { len };
                match clamp_range(start, end, total) {
                    None => return Reply::Integer(0),
                    Some((s, e)) if bit => (s as u64, e as u64),
                    Some((s, e)) => ((s as u64) << 3, ((e as u64) << 3) + 7),
                }
            }
            _ => return err(errors::SYNTAX),
        };
        Reply::Integer(popcount_bits(b, from, to) as i64)
    })
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let bit = match parse_i64(&args[2]) {
        Ok(0) => false,
        Ok(1) => true,
        Ok(_) => return err("ERR The bit argument must be 1 or 0."),
        Err(e) => return e,
    };
    let db = ctx.db;
    // A missing key is an endless run of zeros.
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::Read) else {
        return Reply::Integer(if bit { -1 } else { 0 });
    };
    let Some(s) = f.slot.value.as_str() else {
        return err(errors::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        let mut end_given = false;
        let range = match args.len() {
            3 => {
                clamp_range(0, len - 1, len).map(|(s, e)| ((s as u64) << 3, ((e as u64) << 3) + 7))
            }
            4..=6 => {
                let start = match parse_i64(&args[3]) {
                    Ok(s) => s,
                    Err(e) => return e,
                };
                let unit_bit = match args.get(5).map(|a| unit_is_bit(a)) {
                    Some(Err(e)) => return e,
                    Some(Ok(b)) => b,
                    None => false,
                };
                let end = match args.get(4) {
                    Some(a) => match parse_i64(a) {
                        Ok(e) => {
                            end_given = true;
                            e
                        }
                        Err(e) => return e,
                    },
                    None if unit_bit => (len << 3) + 7,
                    None => len - 1,
                };
                let total = if unit_bit { len << 3 } else { len };
                clamp_range(start, end, total).map(|(s, e)| {
                    if unit_bit {
                        (s as u64, e as u64)
                    } else {
                        ((s as u64) << 3, ((e as u64) << 3) + 7)
                    }
                })
            }
            _ => return err(errors::SYNTAX),
        };
        let Some((from, to)) = range else {
            return Reply::Integer(-1);
        };
        match find_bit(b, bit, from, to) {
            Some(p) => Reply::Integer(p as i64),
            // Past an implicit end the string counts as zero-padded, so a
            // clear bit is "found" just after it; an explicit end forbids that.
            None if !bit && !end_given => Reply::Integer(to as i64 + 1),
            None => Reply::Integer(-1),
        }
    })
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
pub fn bitop(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    #[derive(PartialEq, Clone, Copy)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let name = &args[1][..];
    let op = if name.eq_ignore_ascii_case(b"and") {
        Op::And
    } else if name.eq_ignore_ascii_case(b"or") {
        Op::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        Op::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        Op::Not
    } else {
        return err(errors::SYNTAX);
    };
    if op == Op::Not && args.len() != 4 {
        return err("ERR BITOP NOT must be called with a single source key.");
    }
    let db = ctx.db;
    // First the lookups (stats, lazy expiry, type checks), then the sources
    // are read in place: nothing is copied but integers, which are formatted.
    for key in &args[3..] {
        if let Some(f) = ks.find(ctx, db, key, Lookup::Read) {
            if f.slot.value.as_str().is_none() {
                return err(errors::WRONGTYPE);
            }
        }
    }
    let res = {
        let srcs: Vec<Cow<'_, [u8]>> = args[3..]
            .iter()
            .map(|k| match ks.peek(ctx, db, k).and_then(Value::as_str) {
                None => Cow::Borrowed(&[][..]),
                Some(StrValue::Str(b)) => Cow::Borrowed(&b[..]),
                Some(StrValue::Raw(v)) => Cow::Borrowed(&v[..]),
                Some(s @ StrValue::Int(_)) => Cow::Owned(s.with_bytes(<[u8]>::to_vec)),
            })
            .collect();
        let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
        let byte_at = |s: &[u8], j: usize| s.get(j).copied().unwrap_or(0);
        let mut res = vec![0u8; maxlen];
        for (j, out) in res.iter_mut().enumerate() {
            let mut acc = byte_at(&srcs[0], j);
            match op {
                Op::Not => acc = !acc,
                Op::And => srcs[1..].iter().for_each(|s| acc &= byte_at(s, j)),
                Op::Or => srcs[1..].iter().for_each(|s| acc |= byte_at(s, j)),
                Op::Xor => srcs[1..].iter().for_each(|s| acc ^= byte_at(s, j)),
            }
            *out = acc;
        }
        res
    };
    let dst = &args[2];
    if res.is_empty() {
        // An empty result deletes the destination.
        if ks.delete(ctx, db, dst) {
            ctx.notify(crate::notify::GENERIC, "del", dst);
            ctx.stats.dirty += 1;
            ctx.propagate_as_sent(args);
        }
        return Reply::Integer(0);
    }
    let maxlen = res.len();
    // Like SET: any old value and TTL of the destination go.
    let existed = ks.delete(ctx, db, dst);
    ks.insert_replacing(
        ctx,
        db,
        dst,
        Value::String(StrValue::Raw(Box::new(res))),
        None,
        existed,
    );
    ctx.notify(crate::notify::STRING, "set", dst);
    ctx.stats.dirty += 1;
    ctx.propagate_as_sent(args);
    Reply::Integer(maxlen as i64)
}

/// A BITFIELD integer type: signedness and width (1..=64 signed, 1..=63 unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    /// Two's-complement signed.
    pub signed: bool,
    /// Width in bits.
    pub bits: u32,
}

/// What BITFIELD does when INCRBY or SET leaves the type's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Wrap around (modular arithmetic); the default.
    Wrap,
    /// Saturate at the minimum or maximum.
    Sat,
    /// Do nothing and reply nil.
    Fail,
}

fn field_type(raw: &[u8]) -> Result<FieldType, Reply> {
    let signed = match raw.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err(crate::errors::BITFIELD_BAD_TYPE)),
    };
    match parse_int(&raw[1..]) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok(FieldType {
            signed,
            bits: n as u32,
        }),
        _ => Err(err(crate::errors::BITFIELD_BAD_TYPE)),
    }
}

/// Reads `bits` bits at bit `offset` of `b` as an unsigned number; bytes
/// past the end read as zero.
pub fn get_unsigned(b: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let o = offset + j;
        let byte = b.get((o >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | ((byte >> (7 - (o & 7))) & 1) as u64;
    }
    v
}

/// Reads a two's-complement field, sign-extended.
pub fn get_signed(b: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(b, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Writes the low `bits` bits of `v` at bit `offset`; `b` must be long enough.
pub fn set_field(b: &mut [u8], offset: u64, bits: u32, v: u64) {
    for j in 0..bits as u64 {
        let o = offset + j;
        let mask = 1u8 << (7 - (o & 7));
        let byte = &mut b[(o >> 3) as usize];
        if (v >> (bits as u64 - 1 - j)) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// `value + incr` for an unsigned field: `None` if in range, otherwise the
/// value the overflow mode stores (`Some(None)` for FAIL).
pub fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<u64>> {
    let max = (1u64 << bits) - 1;
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let limit = if value > max || (incr > 0 && incr > maxincr) {
        max
    } else if incr < 0 && incr < minincr {
        0
    } else {
        return None;
    };
    Some(match mode {
        Overflow::Wrap => Some(value.wrapping_add(incr as u64) & max),
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    })
}

/// `value + incr` for a signed field, as [`unsigned_overflow`].
pub fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let limit = if value > max
        || (bits != 64 && incr > maxincr)
        || (value >= 0 && incr > 0 && incr > maxincr)
    {
        max
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        min
    } else {
        return None;
    };
    Some(match mode {
        Overflow::Wrap => {
            let mut c = (value as u64).wrapping_add(incr as u64);
            if bits < 64 {
                let high = u64::MAX << bits;
                if c & (1 << (bits - 1)) != 0 {
                    c |= high;
                } else {
                    c &= !high;
                }
            }
            Some(c as i64)
        }
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    Incrby,
}

struct Field {
    op: FieldOp,
    ty: FieldType,
    offset: u64,
    arg: i64,
    overflow: Overflow,
}

/// BITFIELD key [GET type offset | SET type offset value |
/// INCRBY type offset increment | OVERFLOW WRAP|SAT|FAIL] ...; with
/// `read_only`, BITFIELD_RO (GET only).
pub fn bitfield(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    read_only: bool,
) -> Reply {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut writes = false;
    let mut highest = 0u64;
    let mut j = 2;
    while j < args.len() {
        let rest = args.len() - j - 1;
        let sub = &args[j][..];
        let op = if sub.eq_ignore_ascii_case(b"get") && rest >= 2 {
            FieldOp::Get
        } else if sub.eq_ignore_ascii_case(b"set") && rest >= 3 {
            FieldOp::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && rest >= 3 {
            FieldOp::Incrby
        } else if sub.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            let m = &args[j + 1][..];
            overflow = if m.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if m.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if m.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return err(errors::SYNTAX);
        };
        let ty = match field_type(&args[j + 1]) {
            Ok(t) => t,
            Err(e) => return e,
        };
        let offset = match bit_offset(ctx.obey_master, &args[j + 2], ty.bits) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let mut arg = 0;
        if op != FieldOp::Get {
            writes = true;
            highest = highest.max(offset + ty.bits as u64 - 1);
            arg = match parse_i64(&args[j + 3]) {
                Ok(v) => v,
                Err(e) => return e,
            };
        }
        fields.push(Field {
            op,
            ty,
            offset,
            arg,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    let db = ctx.db;
    if !writes {
        let found = ks.find(ctx, db, &args[1], Lookup::Read);
        let value = match &found {
            None => None,
            Some(f) => match f.slot.value.as_str() {
                Some(s) => Some(s),
                None => return err(errors::WRONGTYPE),
            },
        };
        let read = |b: &[u8]| {
            Reply::Array(
                fields
                    .iter()
                    .map(|f| Reply::Integer(read_field(b, f.ty, f.offset)))
                    .collect(),
            )
        };
        return match value {
            Some(s) => s.with_bytes(read),
            None => read(&[]),
        };
    }
    if read_only {
        return err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let (buf, grew) = match string_for_write(ks, ctx, &args[1], highest) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut changes = 0u64;
    let mut out = Vec::with_capacity(fields.len());
    for f in &fields {
        let bits = f.ty.bits;
        if f.op == FieldOp::Get {
            out.push(Reply::Integer(read_field(buf, f.ty, f.offset)));
            continue;
        }
        let (reply, old, new) = if f.ty.signed {
            let old = get_signed(buf, f.offset, bits);
            let (base, incr) = match f.op {
                FieldOp::Incrby => (old, f.arg),
                _ => (f.arg, 0),
            };
            let new = match signed_overflow(base, incr, bits, f.overflow) {
                None => base.wrapping_add(incr),
                Some(Some(v)) => v,
                Some(None) => {
                    out.push(Reply::Nil);
                    continue;
                }
            };
            let reply = if f.op == FieldOp::Incrby { new } else { old };
            (reply, old as u64, new as u64)
        } else {
            let old = get_unsigned(buf, f.offset, bits);
            let (base, incr) = match f.op {
                FieldOp::Incrby => (old, f.arg),
                _ => (f.arg as u64, 0),
            };
            let new = match unsigned_overflow(base, incr, bits, f.overflow) {
                None => base.wrapping_add(incr as u64),
                Some(Some(v)) => v,
                Some(None) => {
                    out.push(Reply::Nil);
                    continue;
                }
            };
            let reply = if f.op == FieldOp::Incrby { new } else { old };
            (reply as i64, old, new)
        };
        out.push(Reply::Integer(reply));
        set_field(buf, f.offset, bits, new);
        if grew || old != new {
            changes += 1;
        }
    }
    if changes > 0 {
        ctx.notify(crate::notify::STRING, "setbit", &args[1]);
        ctx.stats.dirty += changes;
        ctx.propagate_as_sent(args);
    }
    Reply::Array(out)
}

fn read_field(b: &[u8], ty: FieldType, offset: u64) -> i64 {
    if ty.signed {
        get_signed(b, offset, ty.bits)
    } else {
        get_unsigned(b, offset, ty.bits) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bulk, err, int, T};
    use proptest::prelude::*;

    #[test]
    fn setbit_getbit() {
        let mut t = T::new();
        assert_eq!(t.run("SETBIT k 7 1"), int(0));
        assert_eq!(t.run("GET k"), bulk("\x01"));
        assert_eq!(t.run("SETBIT k 7 1"), int(1));
        assert_eq!(
            t.effects(),
            vec!["SETBIT k 7 1"],
            "an unchanged bit is not propagated"
        );
        assert_eq!(t.run("GETBIT k 7"), int(1));
        assert_eq!(t.run("GETBIT k 100"), int(0));
        assert_eq!(t.run("GETBIT nope 0"), int(0));
        assert_eq!(
            t.run("SETBIT k -1 1"),
            err(crate::errors::BIT_OFFSET_NOT_INTEGER)
        );
        assert_eq!(
            t.run("SETBIT k 4294967296 1"),
            err(crate::errors::BIT_OFFSET_NOT_INTEGER)
        );
        assert_eq!(
            t.run("SETBIT k 4294967295 2"),
            err(crate::errors::BIT_NOT_INTEGER)
        );
        assert_eq!(t.run("SETBIT k 1 a"), err(crate::errors::BIT_NOT_INTEGER));
        t.run("SET n 1");
        assert_eq!(t.run("GETBIT n 2"), int(1), "'1' is 0x31");
        assert_eq!(t.run("SETBIT n 7 0"), int(1));
        assert_eq!(t.run("GET n"), bulk("0"));
        t.run("LPUSH l a");
        assert_eq!(t.run("SETBIT l 0 1"), err(errors::WRONGTYPE));
        assert_eq!(t.run("GETBIT l 0"), err(errors::WRONGTYPE));
    }

    #[test]
    fn bitcount_and_bitpos_ranges() {
        let mut t = T::new();
        t.run("SET s foobar");
        assert_eq!(t.run("BITCOUNT s"), int(26));
        assert_eq!(t.run("BITCOUNT s 1 1"), int(6));
        assert_eq!(t.run("BITCOUNT s 5 30 BIT"), int(17));
        assert_eq!(t.run("BITCOUNT s -1 -2 nonsense"), int(0));
        assert_eq!(t.run("BITCOUNT s 0 1 nonsense"), err(errors::SYNTAX));
        assert_eq!(t.run("BITCOUNT nope x y"), int(0));
        let raw = |t: &mut T, k: &'static str, v: &'static [u8]| {
            t.run_args(vec!["SET".into(), k.into(), Bytes::from_static(v)])
        };
        raw(&mut t, "z", b"\xff\xf0\x00");
        assert_eq!(t.run("BITPOS z 0"), int(12));
        assert_eq!(t.run("BITPOS z 1 2"), int(-1));
        raw(&mut t, "ones", b"\xff");
        assert_eq!(t.run("BITPOS ones 0"), int(8), "zero-padded on the right");
        assert_eq!(
            t.run("BITPOS ones 0 0 -1"),
            int(-1),
            "unless the end is given"
        );
        assert_eq!(t.run("BITPOS nope 0"), int(0));
        assert_eq!(t.run("BITPOS nope 1"), int(-1));
        assert_eq!(
            t.run("BITPOS z 2"),
            err("ERR The bit argument must be 1 or 0.")
        );
    }

    #[test]
    fn bitop_ops() {
        let mut t = T::new();
        t.run("SET a abc");
        t.run("SET b a");
        assert_eq!(t.run("BITOP AND d a b"), int(3));
        assert_eq!(t.run("GET d"), Reply::bulk(b"a\0\0"));
        assert_eq!(
            t.run("BITOP NOT d a b"),
            err("ERR BITOP NOT must be called with a single source key.")
        );
        assert_eq!(t.run("BITOP NOT d nope"), int(0));
        assert_eq!(t.run("EXISTS d"), int(0));
        assert_eq!(t.run("BITOP nand d a"), err(errors::SYNTAX));
    }

    #[test]
    fn propagates_only_changes() {
        let mut t = T::new();
        t.run("BITOP OR d nope");
        t.run("BITFIELD k GET u8 0");
        t.run("SETBIT k 3 0");
        t.run("SETBIT k 3 0");
        assert_eq!(t.effects(), vec!["SETBIT k 3 0"], "the key was created");
        // As in Redis: a BITFIELD whose writes all fail creates the key
        // but sends nothing.
        assert_eq!(
            t.run("BITFIELD f OVERFLOW FAIL SET u2 0 9"),
            Reply::Array(vec![Reply::Nil])
        );
        assert_eq!(t.run("EXISTS f"), int(1));
        t.run("BITFIELD k SET u8 0 0");
        assert!(t.effects().is_empty());
        t.run("BITOP NOT d k");
        t.run("BITOP AND d nope");
        assert_eq!(t.effects(), vec!["BITOP NOT d k", "BITOP AND d nope"]);
    }

    #[test]
    fn bitfield_examples() {
        let mut t = T::new();
        assert_eq!(
            t.run("BITFIELD k INCRBY i5 100 1 GET u4 0"),
            Reply::Array(vec![int(1), int(0)])
        );
        assert_eq!(
            t.run("BITFIELD k OVERFLOW SAT SET u8 #1 300 OVERFLOW FAIL INCRBY u2 0 4"),
            Reply::Array(vec![int(0), Reply::Nil])
        );
        assert_eq!(t.run("BITFIELD k GET u8 8"), Reply::Array(vec![int(255)]));
        assert_eq!(
            t.run("BITFIELD_RO k SET u8 0 1"),
            err("ERR BITFIELD_RO only supports the GET subcommand")
        );
        assert_eq!(
            t.run("BITFIELD k GET u64 0"),
            err(crate::errors::BITFIELD_BAD_TYPE)
        );
    }

    proptest! {
        /// WRAP is arithmetic modulo 2^bits, SAT clamps, FAIL refuses
        /// exactly when the true result is out of range.
        #[test]
        fn signed_overflow_semantics(bits in 1u32..=64, v in any::<i64>(), incr in any::<i64>()) {
            let (min, max) = if bits == 64 { (i64::MIN as i128, i64::MAX as i128) } else {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            };
            let v = ((v as i128 - min).rem_euclid(max - min + 1) + min) as i64;
            let exact = v as i128 + incr as i128;
            let inside = (min..=max).contains(&exact);
            prop_assert_eq!(signed_overflow(v, incr, bits, Overflow::Fail).is_none(), inside);
            let wrapped = ((exact - min).rem_euclid(max - min + 1) + min) as i64;
            let w = signed_overflow(v, incr, bits, Overflow::Wrap).map_or(exact as i64, |x| x.unwrap());
            prop_assert_eq!(w, wrapped);
            let s = signed_overflow(v, incr, bits, Overflow::Sat).map_or(exact as i64, |x| x.unwrap());
            prop_assert_eq!(s as i128, exact.clamp(min, max));
        }

        #[test]
        fn unsigned_overflow_semantics(bits in 1u32..=63, v in any::<u64>(), incr in any::<i64>()) {
            let max = (1i128 << bits) - 1;
            let v = v & max as u64;
            let exact = v as i128 + incr as i128;
            let inside = (0..=max).contains(&exact);
            prop_assert_eq!(unsigned_overflow(v, incr, bits, Overflow::Fail).is_none(), inside);
            let w = unsigned_overflow(v, incr, bits, Overflow::Wrap).map_or(exact as u64, |x| x.unwrap());
            prop_assert_eq!(w as i128, exact.rem_euclid(max + 1));
            let s = unsigned_overflow(v, incr, bits, Overflow::Sat).map_or(exact as u64, |x| x.unwrap());
            prop_assert_eq!(s as i128, exact.clamp(0, max));
        }

        /// A field written and read back at any offset keeps its value and
        /// leaves the neighbouring bits alone.
        #[test]
        fn fields_round_trip(bits in 1u32..=64, offset in 0u64..64, v in any::<u64>(), fill in any::<u8>()) {
            let mut buf = vec![fill; 17];
            let before = buf.clone();
            set_field(&mut buf, offset, bits, v);
            let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
            prop_assert_eq!(get_unsigned(&buf, offset, bits), v & mask);
            for o in (0..offset).chain(offset + bits as u64..136) {
                prop_assert_eq!(get_unsigned(&buf, o, 1), get_unsigned(&before, o, 1));
            }
        }
    }
}
