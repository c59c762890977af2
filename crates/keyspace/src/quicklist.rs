//! [`List`]: a list value as a chain of [`Pack`] nodes (Redis's quicklist).
//!
//! Each node holds as many items as `list-max-listpack-size` allows (a
//! count when positive, else a byte budget of 4 KiB << (-n - 1)), so a list
//! costs about its items' bytes plus two per item, whatever its length. An
//! item too big for any node gets a node of its own, as in Redis. Pushing and
//! popping at either end touch one end node; indexing walks the nodes by
//! their counts. Nodes are never merged back after removals (Redis merges
//! neighbours on some deletes; the order and replies are the same).
//!
//! Depends on [`crate::pack`] only.

use crate::pack::{self, Pack};
use bytes::Bytes;
use std::collections::VecDeque;

/// Redis's `SIZE_SAFETY_LIMIT`: a node stops growing past 8 KiB even when
/// the limit is a count.
const SIZE_SAFETY_LIMIT: usize = 8192;

/// A list value: head first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct List {
    nodes: VecDeque<Pack>,
    len: usize,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(Bytes::copy_from_slice))
            .finish()
    }
}

/// Whether a node of `node` may take one more item of `item` bytes.
fn fits(node: &Pack, item: usize) -> bool {
    let fill = pack::limits().list_size;
    let grown = node.heap_bytes() + pack::entry_size(item);
    if fill >= 0 {
        node.len() < fill.max(1) as usize && grown <= SIZE_SAFETY_LIMIT
    } else {
        let shift = (-fill - 1).clamp(0, 4);
        grown <= 4096 << shift
    }
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// A list of `items`, head first.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> List {
        let mut l = List::new();
        for it in items {
            l.push_back(it);
        }
        l
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no items (never stored: empty lists are deleted).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (DEBUG QUICKLIST, MEMORY USAGE).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of the nodes' blocks and of the node ring (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Pack>()
            + self.nodes.iter().map(|n| n.heap_bytes()).sum::<usize>()
    }

    /// Appends `item`.
    pub fn push_back(&mut self, item: &[u8]) {
        match self.nodes.back_mut() {
            Some(n) if fits(n, item.len()) => n.push_back(&[item]),
            _ => {
                self.nodes.reserve_exact(1);
                self.nodes.push_back(Pack::from_items([item]));
            }
        }
        self.len += 1;
    }

    /// Prepends `item`.
    pub fn push_front(&mut self, item: &[u8]) {
        match self.nodes.front_mut() {
            Some(n) if fits(n, item.len()) => n.push_front(&[item]),
            _ => {
                self.nodes.reserve_exact(1);
                self.nodes.push_front(Pack::from_items([item]));
            }
        }
        self.len += 1;
    }

    /// Removes and returns the first item.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let n = self.nodes.front_mut()?;
        let at = n.first();
        let item = Bytes::copy_from_slice(n.get(at));
        n.remove(at, 1);
        if n.is_empty() {
            self.nodes.pop_front();
        }
        self.len -= 1;
        Some(item)
    }

    /// Removes and returns the last item.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        let n = self.nodes.back_mut()?;
        let at = n.last().expect("nodes are never empty");
        let item = Bytes::copy_from_slice(n.get(at));
        n.remove(at, 1);
        if n.is_empty() {
            self.nodes.pop_back();
        }
        self.len -= 1;
        Some(item)
    }

    /// The node holding item `i` and the item's index in it.
    fn locate(&self, mut i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        if i >= self.len / 2 {
            // Nearer the tail: count from there.
            let mut from_end = self.len - 1 - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if from_end < n.len() {
                    return Some((k, n.len() - 1 - from_end));
                }
                from_end -= n.len();
            }
            unreachable!("len counts every node");
        }
        for (k, n) in self.nodes.iter().enumerate() {
            if i < n.len() {
                return Some((k, i));
            }
            i -= n.len();
        }
        unreachable!("len counts every node")
    }

    /// The position of item `j` inside node `n` (from the nearer end).
    fn pos_in(n: &Pack, j: usize) -> pack::Pos {
        if j <= n.len() / 2 {
            n.nth(j).expect("j < node len")
        } else {
            let mut p = n.last().expect("nodes are never empty");
            for _ in 0..n.len() - 1 - j {
                p = n.prev(p).expect("j < node len");
            }
            p
        }
    }

    /// Item `i` (0 = head).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (k, j) = self.locate(i)?;
        let n = &self.nodes[k];
        Some(n.get(List::pos_in(n, j)))
    }

    /// Replaces item `i` (which must exist).
    pub fn set(&mut self, i: usize, item: &[u8]) {
        let (k, j) = self.locate(i).expect("i < len");
        let n = &mut self.nodes[k];
        let p = List::pos_in(n, j);
        n.replace(p, item);
    }

    /// Inserts `item` so that it becomes item `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, item: &[u8]) {
        if i == 0 {
            return self.push_front(item);
        }
        if i == self.len {
            return self.push_back(item);
        }
        let (k, j) = self.locate(i).expect("i < len");
        let n = &mut self.nodes[k];
        if fits(n, item.len()) {
            let p = List::pos_in(n, j);
            n.insert(p, &[item]);
        } else {
            // Split the full node at the insertion point, as Redis does.
            let items: Vec<&[u8]> = n.iter().collect();
            let (head, tail) = items.split_at(j);
            let mut head = Pack::from_items(head.iter().copied());
            head.push_back(&[item]);
            let tail = Pack::from_items(tail.iter().copied());
            self.nodes[k] = head;
            self.nodes.insert(k + 1, tail);
        }
        self.len += 1;
    }

    /// Every item, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator + '_ {
        Items {
            list: self,
            front: (0, self.nodes.front().map_or(0, |n| n.first())),
            back: (self.nodes.len(), 0),
            left: self.len,
        }
    }

    /// Items `start..=end` (both inside the list), head first.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (k, j) = self.locate(start).unwrap_or((self.nodes.len(), 0));
        let front = match self.nodes.get(k) {
            Some(n) => (k, List::pos_in(n, j)),
            None => (k, 0),
        };
        Items {
            list: self,
            front,
            back: (self.nodes.len(), 0),
            left: self.len - start.min(self.len),
        }
        .take(end + 1 - start)
    }

    /// Keeps the items for which `keep` (called head first, once each)
    /// returns true; returns how many were removed. A node that loses
    /// items is rebuilt once.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
        let mut removed = 0;
        let mut k = 0;
        while k < self.nodes.len() {
            let n = &self.nodes[k];
            let kept: Vec<&[u8]> = n.iter().filter(|e| keep(e)).collect();
            if kept.len() == n.len() {
                k += 1;
                continue;
            }
            removed += n.len() - kept.len();
            if kept.is_empty() {
                self.nodes.remove(k);
            } else {
                let rebuilt = Pack::from_items(kept);
                self.nodes[k] = rebuilt;
                k += 1;
            }
        }
        self.len -= removed;
        removed
    }

    /// Keeps only items `start..=end` (inside the list): whole nodes go at
    /// once, a boundary node loses its outside part in one edit.
    pub fn trim(&mut self, start: usize, end: usize) {
        let mut back = self.len - 1 - end;
        while back > 0 {
            let n = self.nodes.back_mut().expect("items remain");
            if n.len() <= back {
                back -= n.len();
                self.nodes.pop_back();
            } else {
                let at = n.nth(n.len() - back).expect("inside the node");
                n.remove(at, back);
                back = 0;
            }
        }
        let mut front = start;
        while front > 0 {
            let n = self.nodes.front_mut().expect("items remain");
            if n.len() <= front {
                front -= n.len();
                self.nodes.pop_front();
            } else {
                let at = n.first();
                n.remove(at, front);
                front = 0;
            }
        }
        self.len = end + 1 - start;
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.len = 0;
    }
}

/// Items of a [`List`] between two cursors (node index, position).
struct Items<'a> {
    list: &'a List,
    front: (usize, pack::Pos),
    /// One past the last item: (node index, position) with `(nodes, 0)`
    /// meaning the end.
    back: (usize, pack::Pos),
    left: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (mut k, mut p) = self.front;
        let mut n = &self.list.nodes[k];
        if p >= n.end() {
            k += 1;
            n = &self.list.nodes[k];
            p = n.first();
        }
        self.front = (k, n.next(p));
        self.left -= 1;
        Some(n.get(p))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Items<'_> {}

impl DoubleEndedIterator for Items<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (mut k, p) = self.back;
        let prev = if k < self.list.nodes.len() {
            self.list.nodes[k].prev(p)
        } else {
            None
        };
        let (k, p) = match prev {
            Some(p) => (k, p),
            None => {
                k -= 1;
                let n = &self.list.nodes[k];
                (k, n.last().expect("nodes are never empty"))
            }
        };
        self.back = (k, p);
        self.left -= 1;
        Some(self.list.nodes[k].get(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn behaves_like_a_deque_across_many_nodes() {
        let mut l = List::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let item = |i: usize| format!("item-{i:05}-{}", "x".repeat(i % 300)).into_bytes();
        for i in 0..3000 {
            let it = item(i);
            match i % 5 {
                0 | 1 => {
                    l.push_back(&it);
                    model.push_back(it);
                }
                2 => {
                    l.push_front(&it);
                    model.push_front(it);
                }
                3 => {
                    let at = (i * 7) % (model.len() + 1);
                    l.insert(at, &it);
                    model.insert(at, it);
                }
                _ => {
                    if i % 10 == 4 {
                        assert_eq!(l.pop_front().map(|b| b.to_vec()), model.pop_front());
                    } else {
                        assert_eq!(l.pop_back().map(|b| b.to_vec()), model.pop_back());
                    }
                }
            }
        }
        assert!(l.node_count() > 10);
        assert_eq!(l.len(), model.len());
        assert_eq!(items(&l), Vec::from(model.clone()));
        let rev: Vec<Vec<u8>> = l.iter().rev().map(|b| b.to_vec()).collect();
        assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
        for i in [0, 1, model.len() / 2, model.len() - 1] {
            assert_eq!(l.get(i).unwrap(), &model[i][..]);
            let got: Vec<Vec<u8>> = l
                .range(i, (i + 20).min(model.len() - 1))
                .map(|b| b.to_vec())
                .collect();
            let want: Vec<Vec<u8>> = model
                .range(i..=(i + 20).min(model.len() - 1))
                .cloned()
                .collect();
            assert_eq!(got, want);
        }
        l.set(5, b"five");
        model[5] = b"five".to_vec();
        let removed = l.retain(|e| e.len() % 3 != 0);
        let before = model.len();
        model.retain(|e| e.len() % 3 != 0);
        assert_eq!(removed, before - model.len());
        l.trim(3, 100);
        let model: Vec<Vec<u8>> = model.into_iter().skip(3).take(98).collect();
        assert_eq!(items(&l), model);
        assert_eq!(l.len(), 98);
    }

    #[test]
    fn an_item_too_big_for_a_node_gets_its_own() {
        let big = vec![b'b'; 10_000];
        let mut l = List::from_items([&b"a"[..], &big, b"c"]);
        assert_eq!(l.node_count(), 3);
        assert_eq!(l.get(1).unwrap().len(), 10_000);
        assert_eq!(l.pop_back().unwrap(), Bytes::from_static(b"c"));
        assert_eq!(l.pop_back().unwrap().len(), 10_000);
        assert_eq!(l.node_count(), 1);
    }
}
