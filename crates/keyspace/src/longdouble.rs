//! Software x87 `long double` (64-bit mantissa, 15-bit exponent) for
//! INCRBYFLOAT, which Redis computes as `strtold` + `+` + `%.17Lf`.
//!
//! f64 would give visibly different answers (`INCRBYFLOAT k 0.1` must print
//! `0.1`, and `1e308 + 1e308` is finite in long double), so values are kept as
//! mantissa × 2^exp and every step is rounded exactly (half to even) with a
//! small big-integer helper. Only what INCRBYFLOAT needs is here: parse, add,
//! format.

use std::cmp::Ordering;

/// Exponent of the lowest mantissa bit of the smallest subnormal.
const MIN_LSB_EXP: i64 = -16445;
/// Values at or above 2^16384 overflow to infinity.
const MAX_BITS: i64 = 16384;
/// Redis rejects longer inputs (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// An x87 extended-precision value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LongDouble {
    /// `(-1)^neg × mant × 2^exp`; `mant` has at most 64 significant bits.
    Finite { neg: bool, mant: u64, exp: i64 },
    /// ±infinity.
    Inf(bool),
    /// Not a number.
    NaN,
}

impl LongDouble {
    /// The exact value of an integer.
    pub(crate) fn from_i64(v: i64) -> LongDouble {
        LongDouble::Finite {
            neg: v < 0,
            mant: v.unsigned_abs(),
            exp: 0,
        }
    }

    /// True for NaN and the infinities.
    pub(crate) fn is_nan_or_inf(&self) -> bool {
        !matches!(self, LongDouble::Finite { .. })
    }

    /// Redis's `string2ld`: `strtold` that must consume everything, with no
    /// leading space, no overflow, no underflow to zero, and no NaN.
    pub(crate) fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS || s[0].is_ascii_whitespace() || s[0] == 0x0b {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Inf(neg));
        }
        let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            parse_hex(&body[2..], neg)?
        } else {
            parse_dec(body, neg)?
        };
        match v {
            // ERANGE: overflow, or a non-zero input that rounded to zero.
            LongDouble::Inf(_) => None,
            _ => Some(v),
        }
    }

    /// IEEE addition, rounded to nearest even.
    pub(crate) fn add(self, other: LongDouble) -> LongDouble {
        use LongDouble::*;
        match (self, other) {
            (NaN, _) | (_, NaN) => NaN,
            (Inf(a), Inf(b)) => {
                if a == b {
                    Inf(a)
                } else {
                    NaN
                }
            }
            (Inf(a), _) | (_, Inf(a)) => Inf(a),
            (
                Finite {
                    neg: n1,
                    mant: m1,
                    exp: e1,
                },
                Finite {
                    neg: n2,
                    mant: m2,
                    exp: e2,
                },
            ) => {
                if m1 == 0 && m2 == 0 {
                    return Finite {
                        neg: n1 && n2,
                        mant: 0,
                        exp: 0,
                    };
                }
                if m2 == 0 {
                    return self;
                }
                if m1 == 0 {
                    return other;
                }
                let e = e1.min(e2);
                let a = Big::from_u64(m1).shl((e1 - e) as usize);
                let b = Big::from_u64(m2).shl((e2 - e) as usize);
                if n1 == n2 {
                    round(n1, a.add(&b), e, false)
                } else {
                    match a.cmp(&b) {
                        Ordering::Equal => Finite {
                            neg: false,
                            mant: 0,
                            exp: 0,
                        },
                        Ordering::Greater => round(n1, a.sub(&b), e, false),
                        Ordering::Less => round(n2, b.sub(&a), e, false),
                    }
                }
            }
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare `.`) trimmed and `-0` shown as
    /// `0`: Redis's `ld2string(…, LD_STR_HUMAN)`.
    pub(crate) fn to_human(self) -> String {
        let LongDouble::Finite { neg, mant, exp } = self else {
            // INCRBYFLOAT refuses these before formatting.
            return match self {
                LongDouble::Inf(true) => "-inf".into(),
                LongDouble::Inf(false) => "inf".into(),
                _ => "nan".into(),
            };
        };
        let scaled = Big::from_u64(mant).mul(&Big::pow10(17));
        let n = if exp >= 0 {
            scaled.shl(exp as usize)
        } else {
            let sh = (-exp) as usize;
            let mut q = scaled.shr(sh);
            let half = scaled.bit(sh - 1);
            let sticky = scaled.any_below(sh - 1);
            if half && (sticky || q.bit(0)) {
                q = q.add(&Big::from_u64(1));
            }
            q
        };
        let mut digits = n.to_decimal();
        if digits.len() < 18 {
            digits = format!("{}{}", "0".repeat(18 - digits.len()), digits);
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

/// Rounds `big × 2^exp` (plus a sticky bit below it) to a long double.
fn round(neg: bool, big: Big, exp: i64, sticky_in: bool) -> LongDouble {
    if big.is_zero() {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    let bl = big.bit_len() as i64;
    let mut shift = bl - 64;
    if exp + shift < MIN_LSB_EXP {
        shift = MIN_LSB_EXP - exp;
    }
    let (mut mant, mut e) = if shift <= 0 {
        (big.shl((-shift) as usize).to_u64(), exp + shift)
    } else {
        let sh = shift as usize;
        let q = big.shr(sh);
        let half = big.bit(sh - 1);
        let sticky = sticky_in || big.any_below(sh - 1);
        let mut m = q.to_u64();
        let mut e = exp + shift;
        if half && (sticky || m & 1 == 1) {
            match m.checked_add(1) {
                Some(v) => m = v,
                None => {
                    m = 1 << 63;
                    e += 1;
                }
            }
        }
        (m, e)
    };
    if mant == 0 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    // Normalise trailing zeros away so equal values compare equal.
    let tz = mant.trailing_zeros() as i64;
    mant >>= tz;
    e += tz;
    if e + (64 - mant.leading_zeros() as i64) > MAX_BITS {
        return LongDouble::Inf(neg);
    }
    LongDouble::Finite { neg, mant, exp: e }
}

fn parse_dec(s: &[u8], neg: bool) -> Option<LongDouble> {
    let mut i = 0;
    let mut digits = Big::from_u64(0);
    let mut ndigits = 0usize;
    let mut exp10: i64 = 0;
    let mut seen_dot = false;
    let mut any = false;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                any = true;
                if ndigits > 0 || c != b'0' {
                    digits.mul_small(10);
                    digits.add_small((c - b'0') as u32);
                    ndigits += 1;
                }
                if seen_dot {
                    exp10 -= 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'e' {
        let mut j = i + 1;
        let eneg = match s.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut e: i64 = 0;
        while j < s.len() && s[j].is_ascii_digit() {
            e = (e * 10 + (s[j] - b'0') as i64).min(1_000_000);
            j += 1;
        }
        if j == start {
            // strtold stops before the 'e', leaving garbage: Redis refuses it.
            return None;
        }
        exp10 += if eneg { -e } else { e };
        i = j;
    }
    if i != s.len() {
        return None;
    }
    if digits.is_zero() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let magnitude = exp10 + ndigits as i64;
    if magnitude > 4934 {
        return Some(LongDouble::Inf(neg));
    }
    if magnitude < -4952 {
        // Underflows to zero: strtold's ERANGE, refused like overflow.
        return Some(LongDouble::Inf(neg));
    }
    let v = if exp10 >= 0 {
        round(neg, digits.mul(&Big::pow10(exp10 as usize)), 0, false)
    } else {
        let p = Big::pow10((-exp10) as usize);
        let s = (p.bit_len() as i64 - digits.bit_len() as i64 + 66).max(0) as usize;
        let (q, r) = digits.shl(s).divrem(&p);
        round(neg, q, -(s as i64), !r.is_zero())
    };
    match v {
        LongDouble::Finite { mant: 0, .. } => Some(LongDouble::Inf(neg)),
        v => Some(v),
    }
}

fn parse_hex(s: &[u8], neg: bool) -> Option<LongDouble> {
    let mut i = 0;
    let mut m = Big::from_u64(0);
    let mut exp2: i64 = 0;
    let mut seen_dot = false;
    let mut any = false;
    while i < s.len() {
        let c = s[i];
        if let Some(d) = (c as char).to_digit(16) {
            any = true;
            if m.bit_len() < 200 {
                m.mul_small(16);
                m.add_small(d);
                if seen_dot {
                    exp2 -= 4;
                }
            } else if !seen_dot {
                // Digits past our precision still scale the value.
                exp2 += 4;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let mut j = i + 1;
        let eneg = match s.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut e: i64 = 0;
        while j < s.len() && s[j].is_ascii_digit() {
            e = (e * 10 + (s[j] - b'0') as i64).min(1_000_000);
            j += 1;
        }
        if j == start {
            return None;
        }
        exp2 += if eneg { -e } else { e };
        i = j;
    }
    if i != s.len() {
        return None;
    }
    if m.is_zero() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    if exp2 + m.bit_len() as i64 > MAX_BITS + 1 {
        return Some(LongDouble::Inf(neg));
    }
    if exp2 + (m.bit_len() as i64) < MIN_LSB_EXP - 2 {
        return Some(LongDouble::Inf(neg));
    }
    match round(neg, m, exp2, false) {
        LongDouble::Finite { mant: 0, .. } => Some(LongDouble::Inf(neg)),
        v => Some(v),
    }
}

/// A little-endian unsigned big integer; just enough for exact rounding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn pow10(k: usize) -> Big {
        let mut b = Big::from_u64(1);
        for _ in 0..k / 9 {
            b.mul_small(1_000_000_000);
        }
        for _ in 0..k % 9 {
            b.mul_small(10);
        }
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|w| (w >> (i % 32)) & 1 == 1)
    }

    /// True if any bit below position `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let (w, b) = (i / 32, i % 32);
        self.0.iter().take(w).any(|&x| x != 0)
            || (b > 0 && self.0.get(w).is_some_and(|&x| x & ((1u32 << b) - 1) != 0))
    }

    fn to_u64(&self) -> u64 {
        debug_assert!(self.bit_len() <= 64);
        self.0.first().copied().unwrap_or(0) as u64
            | (self.0.get(1).copied().unwrap_or(0) as u64) << 32
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for w in &mut self.0 {
            let v = *w as u64 * m as u64 + carry;
            *w = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for w in &mut self.0 {
            if carry == 0 {
                break;
            }
            let v = *w as u64 + carry;
            *w = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul(&self, o: &Big) -> Big {
        let mut r = vec![0u32; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let v = r[i + j] as u64 + a as u64 * b as u64 + carry;
                r[i + j] = v as u32;
                carry = v >> 32;
            }
            r[i + o.0.len()] = carry as u32;
        }
        let mut b = Big(r);
        b.trim();
        b
    }

    fn shl(&self, n: usize) -> Big {
        if self.is_zero() {
            return self.clone();
        }
        let (words, bits) = (n / 32, n % 32);
        let mut r = vec![0u32; words];
        if bits == 0 {
            r.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &w in &self.0 {
                r.push((w << bits) | carry);
                carry = w >> (32 - bits);
            }
            r.push(carry);
        }
        let mut b = Big(r);
        b.trim();
        b
    }

    fn shr(&self, n: usize) -> Big {
        let (words, bits) = (n / 32, n % 32);
        if words >= self.0.len() {
            return Big(Vec::new());
        }
        let src = &self.0[words..];
        let mut r = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> bits;
            let hi = if bits > 0 {
                src.get(i + 1).map_or(0, |&h| h << (32 - bits))
            } else {
                0
            };
            r.push(lo | hi);
        }
        let mut b = Big(r);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut r = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = self.0.get(i).copied().unwrap_or(0) as u64
                + o.0.get(i).copied().unwrap_or(0) as u64
                + carry;
            r.push(v as u32);
            carry = v >> 32;
        }
        r.push(carry as u32);
        let mut b = Big(r);
        b.trim();
        b
    }

    /// `self - o`, requires `self >= o`.
    fn sub(&self, o: &Big) -> Big {
        let mut r = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = if v < 0 {
                v += 1 << 32;
                1
            } else {
                0
            };
            r.push(v as u32);
        }
        let mut b = Big(r);
        b.trim();
        b
    }

    /// Quotient and remainder by shift-and-subtract; the quotients needed
    /// here are under 70 bits, so this is a handful of big subtractions.
    fn divrem(&self, d: &Big) -> (Big, Big) {
        if self.cmp(d) == Ordering::Less {
            return (Big(Vec::new()), self.clone());
        }
        let qbits = self.bit_len() - d.bit_len();
        let mut rem = self.clone();
        let mut q = Big(vec![0; qbits / 32 + 1]);
        for i in (0..=qbits).rev() {
            let ds = d.shl(i);
            if rem.cmp(&ds) != Ordering::Less {
                rem = rem.sub(&ds);
                q.0[i / 32] |= 1 << (i % 32);
            }
        }
        q.trim();
        (q, rem)
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut chunks = Vec::new();
        let mut n = self.0.clone();
        while !n.is_empty() {
            let mut rem = 0u64;
            for w in n.iter_mut().rev() {
                let v = (rem << 32) | *w as u64;
                *w = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while n.last() == Some(&0) {
                n.pop();
            }
            chunks.push(rem as u32);
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn incr(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        a.add(b).to_human()
    }

    /// Expected values from redis-server 7.0.15 on x86-64.
    #[test]
    fn matches_redis_incrbyfloat() {
        assert_eq!(incr("0", "0.1"), "0.1");
        assert_eq!(incr("0.1", "1.0e-5"), "0.10001");
        assert_eq!(incr("0", "5.0e3"), "5000");
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
        assert_eq!(incr("0", "-0"), "0");
        assert_eq!(incr("3", "-3"), "0");
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("1", "0.00000000000000001"), "1.00000000000000001");
        assert_eq!(
            incr("0", "1e308"),
            "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048"
        );
        assert_eq!(
            incr("1e308", "1e308"),
            "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"
        );
        assert_eq!(incr("0x10", "0x1p-1"), "16.5");
    }

    #[test]
    fn parse_rules() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "nan", "1e99999", "1e-99999", "1.2.3", "--1", "0x",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in [
            "1",
            "-1.5",
            "+2",
            ".5",
            "5.",
            "1e10",
            "1E-3",
            "inf",
            "-Infinity",
            "0e-99999",
            "0x1.8p1",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
        let inf = LongDouble::parse(b"inf").unwrap();
        assert!(LongDouble::from_i64(1).add(inf).is_nan_or_inf());
        let big = LongDouble::parse(b"1e4932").unwrap();
        assert!(big.add(big).is_nan_or_inf(), "overflows past the x87 range");
    }
}
