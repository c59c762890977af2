//! The compact blob encodings Redis stores inside RDB strings: ziplist, listpack,
//! intset and zipmap (decoding), plus a listpack encoder for writing streams.
//!
//! Decoders walk the whole blob and check every length against the blob's end,
//! so a corrupt blob yields an error, never an out-of-bounds read.

use bytes::Bytes;

/// One element of a ziplist or listpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    pub(crate) fn to_bytes(self) -> Bytes {
        match self {
            Elem::Str(s) => Bytes::copy_from_slice(s),
            Elem::Int(i) => Bytes::from(i.to_string()),
        }
    }

    pub(crate) fn as_int(self) -> Option<i64> {
        match self {
            Elem::Int(i) => Some(i),
            Elem::Str(s) => std::str::from_utf8(s).ok()?.parse().ok(),
        }
    }

    pub(crate) fn as_f64(self) -> Option<f64> {
        match self {
            Elem::Int(i) => Some(i as f64),
            Elem::Str(s) => parse_f64(s),
        }
    }
}

/// Parses a score the way Redis writes them (`%.17g`, `inf`, `-inf`, `nan`).
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

type R<T> = Result<T, &'static str>;

fn get(b: &[u8], at: usize, n: usize) -> R<&[u8]> {
    b.get(at..at.checked_add(n).ok_or("length overflow")?)
        .ok_or("element runs past the end of the blob")
}

fn le_int(b: &[u8]) -> i64 {
    // Sign-extend a little-endian integer of 1..=8 bytes.
    let mut v: u64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as u64) << (8 * i);
    }
    let bits = 8 * b.len() as u32;
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

/// Decodes a ziplist (RDB types 10, 12, 13, 14).
pub(crate) fn ziplist(b: &[u8]) -> R<Vec<Elem<'_>>> {
    if b.len() < 11 {
        return Err("ziplist header too short");
    }
    let zlbytes = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if zlbytes != b.len() {
        return Err("ziplist size does not match its blob");
    }
    let count = u16::from_le_bytes([b[8], b[9]]) as usize;
    let mut out = Vec::with_capacity(count.min(b.len()));
    let mut p = 10;
    loop {
        let first = *b.get(p).ok_or("ziplist without terminator")?;
        if first == 0xff {
            break;
        }
        // prevlen: 1 byte, or 0xfe followed by 4 bytes.
        p += if first == 0xfe { 5 } else { 1 };
        let enc = *b.get(p).ok_or("ziplist entry truncated")?;
        match enc >> 6 {
            0 => {
                let n = (enc & 0x3f) as usize;
                out.push(Elem::Str(get(b, p + 1, n)?));
                p += 1 + n;
            }
            1 => {
                let lo = *get(b, p + 1, 1)?.first().unwrap_or(&0) as usize;
                let n = (((enc & 0x3f) as usize) << 8) | lo;
                out.push(Elem::Str(get(b, p + 2, n)?));
                p += 2 + n;
            }
            2 => {
                if enc != 0x80 {
                    return Err("bad ziplist string encoding");
                }
                let l = get(b, p + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                out.push(Elem::Str(get(b, p + 5, n)?));
                p += 5 + n;
            }
            _ => {
                let width = match enc {
                    0xc0 => 2,
                    0xd0 => 4,
                    0xe0 => 8,
                    0xf0 => 3,
                    0xfe => 1,
                    0xf1..=0xfd => 0,
                    _ => return Err("bad ziplist integer encoding"),
                };
                if width == 0 {
                    out.push(Elem::Int((enc & 0x0f) as i64 - 1));
                } else {
                    out.push(Elem::Int(le_int(get(b, p + 1, width)?)));
                }
                p += 1 + width;
            }
        }
    }
    if p + 1 != b.len() {
        return Err("ziplist terminator is not at its end");
    }
    if count != u16::MAX as usize && count != out.len() {
        return Err("ziplist entry count mismatch");
    }
    Ok(out)
}

/// Size of a listpack back-length field for an entry of `l` bytes.
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Decodes a listpack (RDB types 15-21 and quicklist2 nodes).
pub(crate) fn listpack(b: &[u8]) -> R<Vec<Elem<'_>>> {
    if b.len() < 7 {
        return Err("listpack header too short");
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return Err("listpack size does not match its blob");
    }
    let count = u16::from_le_bytes([b[4], b[5]]) as usize;
    let mut out = Vec::with_capacity(count.min(b.len()));
    let mut p = 6;
    loop {
        let enc = *b.get(p).ok_or("listpack without terminator")?;
        if enc == 0xff {
            break;
        }
        let (elem, len) = if enc & 0x80 == 0 {
            (Elem::Int((enc & 0x7f) as i64), 1)
        } else if enc & 0xc0 == 0x80 {
            let n = (enc & 0x3f) as usize;
            (Elem::Str(get(b, p + 1, n)?), 1 + n)
        } else if enc & 0xe0 == 0xc0 {
            let lo = get(b, p + 1, 1)?[0] as i64;
            let u = (((enc & 0x1f) as i64) << 8) | lo;
            (Elem::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2)
        } else if enc & 0xf0 == 0xe0 {
            let lo = get(b, p + 1, 1)?[0] as usize;
            let n = (((enc & 0x0f) as usize) << 8) | lo;
            (Elem::Str(get(b, p + 2, n)?), 2 + n)
        } else {
            match enc {
                0xf0 => {
                    let l = get(b, p + 1, 4)?;
                    let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    (Elem::Str(get(b, p + 5, n)?), 5 + n)
                }
                0xf1 => (Elem::Int(le_int(get(b, p + 1, 2)?)), 3),
                0xf2 => (Elem::Int(le_int(get(b, p + 1, 3)?)), 4),
                0xf3 => (Elem::Int(le_int(get(b, p + 1, 4)?)), 5),
                0xf4 => (Elem::Int(le_int(get(b, p + 1, 8)?)), 9),
                _ => return Err("bad listpack encoding"),
            }
        };
        out.push(elem);
        p = p
            .checked_add(len + backlen_size(len))
            .ok_or("listpack entry too long")?;
    }
    if p + 1 != b.len() {
        return Err("listpack terminator is not at its end");
    }
    if count != u16::MAX as usize && count != out.len() {
        return Err("listpack entry count mismatch");
    }
    Ok(out)
}

/// Decodes an intset (RDB type 11) into its members.
pub(crate) fn intset(b: &[u8]) -> R<Vec<i64>> {
    if b.len() < 8 {
        return Err("intset header too short");
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("bad intset encoding");
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(b.len()) {
        return Err("intset size does not match its blob");
    }
    Ok(b[8..].chunks_exact(width).map(le_int).collect())
}

/// Decodes a zipmap (RDB type 9, written by Redis < 2.6) into field/value pairs.
pub(crate) fn zipmap(b: &[u8]) -> R<Vec<(&[u8], &[u8])>> {
    fn len_at(b: &[u8], p: &mut usize) -> R<Option<usize>> {
        let first = *b.get(*p).ok_or("zipmap without terminator")?;
        match first {
            0xff => Ok(None),
            0xfe => {
                let l = get(b, *p + 1, 4)?;
                *p += 5;
                Ok(Some(u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize))
            }
            n => {
                *p += 1;
                Ok(Some(n as usize))
            }
        }
    }
    let mut p = 1; // the first byte is a (capped) entry count
    let mut out = Vec::new();
    while let Some(klen) = len_at(b, &mut p)? {
        let key = get(b, p, klen)?;
        p += klen;
        let vlen = len_at(b, &mut p)?.ok_or("zipmap ends after a key")?;
        let free = *b.get(p).ok_or("zipmap entry truncated")? as usize;
        let value = get(b, p + 1, vlen)?;
        p += 1 + vlen + free;
        out.push((key, value));
    }
    if p + 1 != b.len() {
        return Err("zipmap terminator is not at its end");
    }
    Ok(out)
}

/// Builds a listpack the way Redis's `lpAppend`/`lpAppendInteger` do.
pub(crate) struct ListpackBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackBuilder {
    pub(crate) fn new() -> Self {
        ListpackBuilder {
            buf: vec![0; 6],
            count: 0,
        }
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        // Back-length (lpEncodeBacklen): 7-bit groups, most significant first and
        // without the continuation bit, so it can be read right to left.
        let n = backlen_size(l);
        let mut v = l as u64;
        let mut bytes = [0u8; 5];
        for i in (0..n).rev() {
            bytes[i] = (v & 127) as u8 | if i == 0 { 0 } else { 128 };
            v >>= 7;
        }
        self.buf.extend_from_slice(&bytes[..n]);
        self.count += 1;
    }

    /// Appends a string, as an integer when it is one (as `lpAppend` does).
    pub(crate) fn push_str(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(i) = crate::writer::canonical_i64(s) {
                return self.push_int(i);
            }
        }
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    /// Appends an integer in the smallest encoding.
    pub(crate) fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if i16::try_from(v).is_ok() {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Entries so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes so far (header included, terminator not).
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(u16::MAX as usize) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip_all_encodings() {
        let mut lp = ListpackBuilder::new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            8388607,
            -8388608,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ];
        for i in ints {
            lp.push_int(i);
        }
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 200];
        lp.push_str(b"hello");
        lp.push_str(&mid);
        lp.push_str(&long);
        lp.push_str(b"12");
        let blob = lp.finish();
        let elems = listpack(&blob).unwrap();
        let mut want: Vec<Elem> = ints.iter().map(|&i| Elem::Int(i)).collect();
        want.extend([
            Elem::Str(b"hello"),
            Elem::Str(&mid),
            Elem::Str(&long),
            Elem::Int(12),
        ]);
        assert_eq!(elems, want);
    }

    #[test]
    fn intset_and_bad_blobs() {
        let mut b = vec![2, 0, 0, 0, 2, 0, 0, 0];
        b.extend_from_slice(&(-5i16).to_le_bytes());
        b.extend_from_slice(&7i16.to_le_bytes());
        assert_eq!(intset(&b).unwrap(), vec![-5, 7]);
        assert!(intset(&b[..11]).is_err());
        assert!(listpack(&[7, 0, 0, 0, 0, 0, 0xff]).unwrap().is_empty());
        assert!(listpack(&[7, 0, 0, 0, 1, 0, 0xff]).is_err());
        assert!(ziplist(&[11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xff]).is_ok());
    }
}
