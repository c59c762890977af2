//! [`CompactBytes`]: the byte string keys and string values are stored as.
//!
//! Most keys and string values are short (`key:000000123456`, a counter, a
//! session id). Stored as `Bytes` each would cost 32 bytes in the table plus
//! a heap block, plus a shared header the first time a reply clones it. A
//! `CompactBytes` is 24 bytes and keeps up to [`INLINE_MAX`] bytes inside
//! itself (no heap block at all); longer strings are one exact-size boxed
//! slice. Stored bytes are always copied in, so nothing stored ever pins a
//! network read buffer.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// The longest string kept inline.
pub const INLINE_MAX: usize = 22;

/// An owned byte string, inline when short (see the module docs).
#[derive(Clone)]
pub enum CompactBytes {
    /// Up to [`INLINE_MAX`] bytes, inside the value.
    Inline {
        /// Bytes used in `buf`.
        len: u8,
        /// The bytes, then zeros.
        buf: [u8; INLINE_MAX],
    },
    /// Longer strings: one exact-size heap block.
    Heap(Box<[u8]>),
}

impl CompactBytes {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> CompactBytes {
        if b.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..b.len()].copy_from_slice(b);
            CompactBytes::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            CompactBytes::Heap(b.into())
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, buf } => &buf[..*len as usize],
            CompactBytes::Heap(b) => b,
        }
    }

    /// An owned `Bytes` copy (for replies and effects, which outlive the
    /// entry or cross cores).
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_slice())
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> CompactBytes {
        CompactBytes::new(b)
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, other: &CompactBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for CompactBytes {}

impl PartialEq<[u8]> for CompactBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<str> for CompactBytes {
    fn eq(&self, other: &str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<&str> for CompactBytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.as_slice().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        for n in [0, 1, INLINE_MAX, INLINE_MAX + 1, 1000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let c = CompactBytes::new(&v);
            assert_eq!(&c[..], &v[..]);
            assert_eq!(matches!(c, CompactBytes::Inline { .. }), n <= INLINE_MAX);
            assert_eq!(c.to_bytes(), Bytes::from(v));
        }
        assert_eq!(CompactBytes::new(b"k"), "k");
    }
}
