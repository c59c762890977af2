//! The order-statistic index of a sorted set: Redis's skiplist with spans
//! (`t_zset.c`), on an arena of nodes addressed by `u32` instead of pointers.
//! Ordered by (score, member); rank, select-by-rank and range seeks are
//! O(log n), walking on from a node is O(1) per step.

use bytes::Bytes;
use std::cmp::Ordering;

/// Redis's `ZSKIPLIST_MAXLEVEL`.
const MAX_LEVEL: usize = 32;
/// No node.
pub const NIL: u32 = u32::MAX;
/// The header node's index.
const HEAD: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Level {
    forward: u32,
    span: u32,
}

#[derive(Debug, Clone)]
struct Node {
    member: Bytes,
    score: f64,
    backward: u32,
    levels: Vec<Level>,
}

/// A score bound for range queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// `min` is exclusive.
    pub minex: bool,
    /// `max` is exclusive.
    pub maxex: bool,
}

impl ScoreRange {
    /// `v` is at or above the lower end.
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    /// `v` is at or below the upper end.
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    #[cfg(test)]
    /// True if `v` is inside the range.
    pub fn contains(&self, v: f64) -> bool {
        self.gte_min(v) && self.lte_max(v)
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[m`.
    Incl(Bytes),
    /// `(m`.
    Excl(Bytes),
}

/// A lexicographic range (ZRANGEBYLEX and friends).
#[derive(Debug, Clone, PartialEq)]
pub struct LexRange {
    /// Lower end.
    pub min: LexBound,
    /// Upper end.
    pub max: LexBound,
}

impl LexRange {
    /// `m` is at or above the lower end.
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(b) => m >= &b[..],
            LexBound::Excl(b) => m > &b[..],
        }
    }

    /// `m` is at or below the upper end.
    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }

    /// The range on its own holds nothing (the first half of zslIsInLexRange).
    fn is_empty(&self) -> bool {
        use LexBound::*;
        match (&self.min, &self.max) {
            (Max, _) | (_, Min) => true,
            (Min, _) | (_, Max) => false,
            (Incl(a), Incl(b)) => a > b,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a >= b,
        }
    }
}

/// The skiplist.
#[derive(Debug, Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    seed: u64,
}

impl Default for SkipList {
    fn default() -> SkipList {
        SkipList::new()
    }
}

fn cmp(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2)
        .unwrap_or(Ordering::Equal)
        .then_with(|| m1.cmp(m2))
}

impl SkipList {
    /// Bytes of the node arena and level vectors (MEMORY USAGE); members'
    /// heap blocks are shared with the zset's dict and not counted here.
    pub(crate) fn table_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.free.capacity() * 4
            + self
                .nodes
                .iter()
                .map(|n| n.levels.capacity() * std::mem::size_of::<Level>())
                .sum::<usize>()
    }

    /// An empty list.
    pub fn new() -> SkipList {
        SkipList {
            nodes: vec![Node {
                member: Bytes::new(),
                score: 0.0,
                backward: NIL,
                levels: vec![
                    Level {
                        forward: NIL,
                        span: 0
                    };
                    MAX_LEVEL
                ],
            }],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Number of elements.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Redis's zslRandomLevel: each level with probability 1/4.
    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64*: the level only needs to be unpredictable enough.
            self.seed ^= self.seed >> 12;
            self.seed ^= self.seed << 25;
            self.seed ^= self.seed >> 27;
            let r = self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
            if (r >> 32) & 0xffff >= 0xffff / 4 || level >= MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    fn fwd(&self, x: u32, i: usize) -> u32 {
        self.nodes[x as usize].levels[i].forward
    }

    fn span(&self, x: u32, i: usize) -> u32 {
        self.nodes[x as usize].levels[i].span
    }

    fn lv(&mut self, x: u32, i: usize) -> &mut Level {
        &mut self.nodes[x as usize].levels[i]
    }

    /// The score of node `x`.
    pub fn score(&self, x: u32) -> f64 {
        self.nodes[x as usize].score
    }

    /// The member of node `x`.
    pub fn member(&self, x: u32) -> &Bytes {
        &self.nodes[x as usize].member
    }

    /// The node after `x`, or [`NIL`].
    pub fn next(&self, x: u32) -> u32 {
        self.fwd(x, 0)
    }

    /// The node before `x`, or [`NIL`].
    pub fn prev(&self, x: u32) -> u32 {
        self.nodes[x as usize].backward
    }

    /// The first node, or [`NIL`].
    pub fn first(&self) -> u32 {
        self.fwd(HEAD, 0)
    }

    /// Adds an element known to be absent.
    pub fn insert(&mut self, score: f64, member: Bytes) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.fwd(x, i);
                if f == NIL || cmp(self.score(f), self.member(f), score, &member) != Ordering::Less
                {
                    break;
                }
                rank[i] += self.span(x, i);
                x = f;
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.lv(HEAD, i).span = self.len as u32;
            }
            self.level = level;
        }
        let node = Node {
            member,
            score,
            backward: if update[0] == HEAD { NIL } else { update[0] },
            levels: vec![
                Level {
                    forward: NIL,
                    span: 0
                };
                level
            ],
        };
        let new = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let u = update[i];
            let (uf, us) = (self.fwd(u, i), self.span(u, i));
            *self.lv(new, i) = Level {
                forward: uf,
                span: us - (rank[0] - rank[i]),
            };
            *self.lv(u, i) = Level {
                forward: new,
                span: rank[0] - rank[i] + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.lv(u, i).span += 1;
        }
        let f = self.fwd(new, 0);
        if f == NIL {
            self.tail = new;
        } else {
            self.nodes[f as usize].backward = new;
        }
        self.len += 1;
    }

    /// Removes an element; false if it was not there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || cmp(self.score(f), self.member(f), score, member) != Ordering::Less {
                    break;
                }
                x = f;
            }
            update[i] = x;
        }
        let x = self.fwd(x, 0);
        if x == NIL || self.score(x) != score || self.member(x)[..] != *member {
            return false;
        }
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.fwd(u, i) == x {
                let (xs, xf) = (self.span(x, i), self.fwd(x, i));
                let l = self.lv(u, i);
                l.span = l.span + xs - 1;
                l.forward = xf;
            } else {
                self.lv(u, i).span -= 1;
            }
        }
        let (f, b) = (self.fwd(x, 0), self.prev(x));
        if f == NIL {
            self.tail = b;
        } else {
            self.nodes[f as usize].backward = b;
        }
        while self.level > 1 && self.fwd(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let n = &mut self.nodes[x as usize];
        n.member = Bytes::new();
        n.levels = Vec::new();
        self.free.push(x);
        true
    }

    /// 1-based rank of an element present in the list (0 if absent).
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        let mut rank = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL
                    || cmp(self.score(f), self.member(f), score, member) == Ordering::Greater
                {
                    break;
                }
                rank += self.span(x, i) as usize;
                x = f;
            }
            if x != HEAD && self.member(x)[..] == *member {
                return rank;
            }
        }
        0
    }

    /// The node at 1-based `rank`, or [`NIL`].
    pub fn by_rank(&self, rank: usize) -> u32 {
        if rank == self.len && rank > 0 {
            return self.tail;
        }
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || traversed + self.span(x, i) as usize > rank {
                    break;
                }
                traversed += self.span(x, i) as usize;
                x = f;
            }
            if traversed == rank {
                return if x == HEAD { NIL } else { x };
            }
        }
        NIL
    }

    /// The 1-based rank of node `x`.
    pub fn rank_of(&self, x: u32) -> usize {
        self.rank(self.score(x), &self.member(x).clone())
    }

    /// Seeks the last node for which `before` holds (nodes are ordered, so
    /// `before` is true on a prefix). HEAD if none.
    fn last_where(&self, before: impl Fn(u32) -> bool) -> u32 {
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || !before(f) {
                    break;
                }
                x = f;
            }
        }
        x
    }

    /// The first node with a score in `r`, or [`NIL`].
    pub fn first_in_range(&self, r: &ScoreRange) -> u32 {
        if r.is_empty() {
            return NIL;
        }
        let x = self.next(self.last_where(|f| !r.gte_min(self.score(f))));
        if x != NIL && r.lte_max(self.score(x)) {
            x
        } else {
            NIL
        }
    }

    /// The last node with a score in `r`, or [`NIL`].
    pub fn last_in_range(&self, r: &ScoreRange) -> u32 {
        if r.is_empty() {
            return NIL;
        }
        let x = self.last_where(|f| r.lte_max(self.score(f)));
        if x != HEAD && r.gte_min(self.score(x)) {
            x
        } else {
            NIL
        }
    }

    /// Redis's zslIsInLexRange: the range is not empty, the last member is
    /// ≥ min and the first ≤ max. (With mixed scores members are not sorted,
    /// so this decides cases the descent alone would answer differently.)
    fn lex_overlaps(&self, r: &LexRange) -> bool {
        !r.is_empty()
            && self.tail != NIL
            && r.gte_min(self.member(self.tail))
            && r.lte_max(self.member(self.first()))
    }

    /// The first node with a member in `r`, or [`NIL`].
    pub fn first_in_lex(&self, r: &LexRange) -> u32 {
        if !self.lex_overlaps(r) {
            return NIL;
        }
        let x = self.next(self.last_where(|f| !r.gte_min(self.member(f))));
        if x != NIL && r.lte_max(self.member(x)) {
            x
        } else {
            NIL
        }
    }

    /// The last node with a member in `r`, or [`NIL`].
    pub fn last_in_lex(&self, r: &LexRange) -> u32 {
        if !self.lex_overlaps(r) {
            return NIL;
        }
        let x = self.last_where(|f| r.lte_max(self.member(f)));
        if x != HEAD && r.gte_min(self.member(x)) {
            x
        } else {
            NIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Rank, select and range seeks agree with a sorted Vec model through
        /// inserts and removals.
        #[test]
        fn matches_sorted_vec(ops in proptest::collection::vec((0u8..40, -5i8..5, any::<bool>()), 1..300)) {
            let mut sl = SkipList::new();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            for (m, s, add) in ops {
                let member = vec![b'a' + m % 26, m];
                let score = s as f64;
                let pos = model.iter().position(|(_, mm)| *mm == member);
                match (pos, add) {
                    (None, true) => {
                        sl.insert(score, Bytes::from(member.clone()));
                        model.push((score, member));
                    }
                    (Some(p), false) => {
                        let (os, om) = model.remove(p);
                        prop_assert!(sl.remove(os, &om));
                    }
                    _ => {}
                }
                model.sort_by(|a, b| cmp(a.0, &a.1, b.0, &b.1));
                prop_assert_eq!(sl.len(), model.len());
            }
            for (i, (s, m)) in model.iter().enumerate() {
                prop_assert_eq!(sl.rank(*s, m), i + 1);
                let x = sl.by_rank(i + 1);
                prop_assert_eq!(&sl.member(x)[..], &m[..]);
            }
            prop_assert_eq!(sl.by_rank(model.len() + 1), NIL);
            let mut walked = Vec::new();
            let mut x = sl.first();
            while x != NIL { walked.push(sl.member(x).to_vec()); x = sl.next(x); }
            prop_assert_eq!(walked, model.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>());
            for (min, max, minex, maxex) in [(-2.0, 2.0, false, false), (-2.0, 2.0, true, true), (1.0, 1.0, false, false), (3.0, -3.0, false, false)] {
                let r = ScoreRange { min, max, minex, maxex };
                let inside: Vec<usize> = (0..model.len()).filter(|&i| r.contains(model[i].0)).collect();
                let first = sl.first_in_range(&r);
                let last = sl.last_in_range(&r);
                match (inside.first(), inside.last()) {
                    (Some(&a), Some(&b)) => {
                        prop_assert_eq!(sl.rank_of(first), a + 1);
                        prop_assert_eq!(sl.rank_of(last), b + 1);
                    }
                    _ => { prop_assert_eq!(first, NIL); prop_assert_eq!(last, NIL); }
                }
            }
        }
    }
}
