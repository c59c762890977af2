//! [`IntSet`]: sorted distinct integers in the narrowest width that holds
//! them all (2, 4 or 8 bytes each), as Redis's intset keeps them.
//!
//! One exact-size block: a width byte, then the values little-endian. Adding
//! a value that needs a wider type widens every value (never narrows back,
//! as in Redis). Lookups are binary searches; inserts and removals move the
//! tail, which the `set-max-intset-entries` limit keeps short.

/// Sorted distinct integers (see the module docs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IntSet(Box<[u8]>);

impl std::fmt::Debug for IntSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

fn width_for(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

fn read(b: &[u8], w: usize) -> i64 {
    match w {
        2 => i16::from_le_bytes([b[0], b[1]]) as i64,
        4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        _ => i64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
    }
}

impl IntSet {
    /// Bytes per value (2 when empty).
    fn width(&self) -> usize {
        self.0.first().map_or(2, |&w| w as usize)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len().saturating_sub(1) / self.width()
    }

    /// True with no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the block (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// Value `i` in ascending order.
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        read(&self.0[1 + i * w..], w)
    }

    /// `Ok(position)` of `v`, or `Err(where it would go)`.
    pub fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// True if `v` is a member.
    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false if it was there.
    pub fn insert(&mut self, v: i64) -> bool {
        let Err(pos) = self.search(v) else {
            return false;
        };
        let w = self.width().max(width_for(v));
        let n = self.len();
        let mut out = Vec::with_capacity(1 + (n + 1) * w);
        out.push(w as u8);
        for (i, x) in self.iter().enumerate() {
            if i == pos {
                out.extend_from_slice(&v.to_le_bytes()[..w]);
            }
            out.extend_from_slice(&x.to_le_bytes()[..w]);
        }
        if pos == n {
            out.extend_from_slice(&v.to_le_bytes()[..w]);
        }
        self.0 = out.into_boxed_slice();
        true
    }

    /// Removes the value at `pos` and returns it.
    pub fn remove_at(&mut self, pos: usize) -> i64 {
        let w = self.width();
        let v = self.get(pos);
        let start = 1 + pos * w;
        let mut out = Vec::with_capacity(self.0.len() - w);
        out.extend_from_slice(&self.0[..start]);
        out.extend_from_slice(&self.0[start + w..]);
        self.0 = out.into_boxed_slice();
        v
    }

    /// Every value, ascending.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_keeps_order_and_removes() {
        let mut s = IntSet::default();
        assert_eq!((s.len(), s.heap_bytes()), (0, 0));
        for v in [5, -3, 1000, 5, 7] {
            s.insert(v);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-3, 5, 7, 1000]);
        assert_eq!(s.heap_bytes(), 1 + 4 * 2);
        s.insert(70_000);
        assert_eq!(s.heap_bytes(), 1 + 5 * 4);
        s.insert(i64::MIN);
        assert_eq!(s.heap_bytes(), 1 + 6 * 8);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![i64::MIN, -3, 5, 7, 1000, 70_000]
        );
        assert_eq!(s.search(7), Ok(3));
        assert_eq!(s.search(6), Err(3));
        assert_eq!(s.remove_at(0), i64::MIN);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-3, 5, 7, 1000, 70_000]);
        assert!(s.contains(70_000) && !s.contains(i64::MIN));
    }
}
