//! [`Log`]: a stream's entries, packed per node as Redis packs them.
//!
//! Redis keeps a stream in a radix tree of listpack nodes, and that shows
//! through: approximate (`~`) trimming removes whole nodes only, and XINFO
//! STREAM counts them. So the nodes here are Redis's: a node takes entries
//! until it has had `stream-node-max-entries` (deleted ones included) or its
//! modelled listpack size reaches `stream-node-max-bytes`, and goes when its
//! last live entry does. A node is one [`Pack`]:
//!
//! ```text
//! [master field count] [master field name]*  then per entry:
//! [header: flags u8, ms - node ms (varint), seq (varint)]
//!   flags & SAME_FIELDS: [value]*                (the master's fields)
//!   otherwise:           [pair count] [field, value]*
//! ```
//!
//! An entry with the node's first field names stores only its values, and
//! its id as a small delta, so a typical entry costs its values' bytes plus
//! a few. Deleted entries are cut out of the pack; the node model still
//! counts them, as Redis's deleted-flagged entries count.
//!
//! Depends on [`crate::pack`] and the RDB crate's [`StreamId`].

use crate::pack::{self, push_varint as put_varint, read_varint as get_varint, Pack};
use crate::stream::Fields;
use shardis_rdb::StreamId;
use std::collections::BTreeMap;

const SAME_FIELDS: u8 = 1;

/// One node: Redis's listpack node model plus the packed entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// Entries appended to it, deleted ones included.
    pub(crate) added: u32,
    /// Entries still live.
    pub(crate) live: u32,
    /// The last id appended.
    pub(crate) last: StreamId,
    /// Approximate size of Redis's listpack for this node, in bytes.
    pub(crate) bytes: usize,
    data: Pack,
}

/// A rough listpack size of one entry (Redis compares the node's listpack
/// bytes plus the new fields' lengths with `stream-node-max-bytes`).
fn entry_bytes(fields: &Fields) -> usize {
    fields.iter().map(|f| f.len() + 2).sum::<usize>() + 8
}

/// Decoded position of one entry inside a node.
struct At {
    id: StreamId,
    /// The header's position.
    start: pack::Pos,
    /// Items after the header.
    items: usize,
    /// Where the values (SAME_FIELDS) or the pairs start.
    body: pack::Pos,
    same: bool,
}

impl Node {
    /// The master field names' count and the first entry's position.
    fn master(&self) -> (usize, pack::Pos) {
        let p = &self.data;
        let first = p.first();
        let mut at = 0;
        let n = get_varint(p.get(first), &mut at) as usize;
        let mut pos = p.next(first);
        for _ in 0..n {
            pos = p.next(pos);
        }
        (n, pos)
    }

    /// Every entry's position, in order.
    fn walk(&self, base: StreamId) -> impl Iterator<Item = At> + '_ {
        let p = &self.data;
        let (nmaster, mut pos) = self.master();
        std::iter::from_fn(move || {
            if pos >= p.end() {
                return None;
            }
            let h = p.get(pos);
            let mut at = 1;
            let ms = base.ms + get_varint(h, &mut at);
            let seq = get_varint(h, &mut at);
            let same = h[0] & SAME_FIELDS != 0;
            let start = pos;
            let mut body = p.next(pos);
            let items = if same {
                nmaster
            } else {
                let mut at = 0;
                let n = get_varint(p.get(body), &mut at) as usize;
                body = p.next(body);
                2 * n + 1
            };
            pos = p.next(start);
            for _ in 0..items {
                pos = p.next(pos);
            }
            Some(At {
                id: StreamId { ms, seq },
                start,
                items,
                body,
                same,
            })
        })
    }

    /// The fields of the entry at `a`.
    fn fields(&self, a: &At) -> Fields {
        let p = &self.data;
        if a.same {
            let (n, _) = self.master();
            let mut name = p.next(p.first());
            let mut value = a.body;
            let mut items = Vec::with_capacity(2 * n);
            for _ in 0..n {
                items.push(p.get(name));
                items.push(p.get(value));
                name = p.next(name);
                value = p.next(value);
            }
            Fields::new(items)
        } else {
            let mut pos = a.body;
            let mut items = Vec::with_capacity(a.items - 1);
            for _ in 0..a.items - 1 {
                items.push(p.get(pos));
                pos = p.next(pos);
            }
            Fields::new(items)
        }
    }

    /// A new node whose master fields are `fields`' names.
    fn new(fields: &Fields) -> Node {
        let names: Vec<&[u8]> = fields.iter().step_by(2).collect();
        let mut count = Vec::new();
        put_varint(&mut count, names.len() as u64);
        let mut data = Pack::new();
        let mut items: Vec<&[u8]> = vec![&count];
        items.extend(names);
        data.push_back(&items);
        Node {
            added: 0,
            live: 0,
            last: StreamId { ms: 0, seq: 0 },
            bytes: 16 + entry_bytes(fields),
            data,
        }
    }

    /// Packs an entry at the end.
    fn push(&mut self, base: StreamId, id: StreamId, fields: &Fields) {
        let (n, _) = self.master();
        let p = &self.data;
        let mut same = fields.iter().count() == 2 * n;
        if same {
            let mut name = p.next(p.first());
            for f in fields.iter().step_by(2) {
                if p.get(name) != f {
                    same = false;
                    break;
                }
                name = p.next(name);
            }
        }
        let mut header = vec![if same { SAME_FIELDS } else { 0 }];
        put_varint(&mut header, id.ms - base.ms);
        put_varint(&mut header, id.seq);
        let mut count = Vec::new();
        let mut items: Vec<&[u8]> = vec![&header];
        if same {
            items.extend(fields.iter().skip(1).step_by(2));
        } else {
            put_varint(&mut count, (fields.iter().count() / 2) as u64);
            items.push(&count);
            items.extend(fields.iter());
        }
        self.data.push_back(&items);
    }
}

/// A stream's entries (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    nodes: BTreeMap<StreamId, Node>,
    len: usize,
}

impl Log {
    /// Live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no live entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of the nodes' packs and tree slots (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.nodes
            .values()
            .map(|n| n.data.heap_bytes() + std::mem::size_of::<(StreamId, Node)>())
            .sum()
    }

    /// The first live entry's id.
    pub fn first_id(&self) -> Option<StreamId> {
        let (&base, n) = self.nodes.iter().next()?;
        n.walk(base).next().map(|a| a.id)
    }

    /// The last live entry's id.
    pub fn last_id(&self) -> Option<StreamId> {
        let (&base, n) = self.nodes.iter().next_back()?;
        n.walk(base).last().map(|a| a.id)
    }

    /// The entry `id`'s fields.
    pub fn get(&self, id: StreamId) -> Option<Fields> {
        let (&base, n) = self.nodes.range(..=id).next_back()?;
        let a = n.walk(base).find(|a| a.id >= id).filter(|a| a.id == id)?;
        Some(n.fields(&a))
    }

    /// Entries with ids in `start..=end`, forward or reversed, decoded one
    /// node at a time.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (StreamId, Fields)> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        // The node holding `start` begins at or before it.
        let from = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(&k, _)| k);
        let nodes = self.nodes.range(from..=end);
        let decode = move |(&base, n): (&StreamId, &Node)| {
            let items: Vec<(StreamId, Fields)> = n
                .walk(base)
                .filter(|a| a.id >= start && a.id <= end)
                .map(|a| (a.id, n.fields(&a)))
                .collect();
            items
        };
        if rev {
            Box::new(nodes.rev().flat_map(move |e| decode(e).into_iter().rev()))
        } else {
            Box::new(nodes.flat_map(decode))
        }
    }

    /// Every entry, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (StreamId, Fields)> + '_> {
        self.range(
            StreamId { ms: 0, seq: 0 },
            StreamId {
                ms: u64::MAX,
                seq: u64::MAX,
            },
            false,
        )
    }

    /// Appends an entry whose id is above every other, to the last node or
    /// a new one when that is full (streamAppendItem).
    pub fn append(&mut self, id: StreamId, fields: Fields) {
        let l = pack::limits();
        let size = entry_bytes(&fields);
        let new_len: usize = fields.iter().map(|f| f.len()).sum();
        let fits = |n: &Node| {
            (l.stream_node_entries == 0 || (n.added as usize) < l.stream_node_entries)
                && (l.stream_node_bytes == 0 || n.bytes + new_len < l.stream_node_bytes)
        };
        match self.nodes.iter_mut().next_back() {
            Some((&base, n)) if fits(n) => {
                n.push(base, id, &fields);
                n.bytes += size;
                n.added += 1;
                n.live += 1;
                n.last = id;
            }
            _ => {
                let mut n = Node::new(&fields);
                n.push(id, id, &fields);
                // The master entry repeats the field names.
                n.bytes += size;
                n.added = 1;
                n.live = 1;
                n.last = id;
                self.nodes.insert(id, n);
            }
        }
        self.len += 1;
    }

    /// Removes the entry `id`; true if it was there. A node whose entries
    /// are all deleted goes, as in Redis.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&base, n)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(a) = n.walk(base).find(|a| a.id >= id).filter(|a| a.id == id) else {
            return false;
        };
        n.data.remove(a.start, 1 + a.items);
        n.live -= 1;
        if n.live == 0 {
            self.nodes.remove(&base);
        }
        self.len -= 1;
        true
    }

    /// Removes the first live entry.
    pub fn pop_first(&mut self) {
        if let Some(id) = self.first_id() {
            self.delete(id);
        }
    }

    /// The first node's first id and model.
    pub fn first_node(&self) -> Option<(StreamId, &Node)> {
        self.nodes.iter().next().map(|(&k, n)| (k, n))
    }

    /// Drops the first node whole; returns its live entries.
    pub fn drop_first_node(&mut self) -> usize {
        match self.nodes.pop_first() {
            Some((_, n)) => {
                self.len -= n.live as usize;
                n.live as usize
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn f(items: &[&str]) -> Fields {
        Fields::new(items.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn entries_round_trip_across_nodes_and_deletes() {
        let mut log = Log::default();
        let mut model = Vec::new();
        for i in 0..250u64 {
            let fields = if i % 7 == 0 {
                f(&["other", &i.to_string()])
            } else {
                f(&["name", &format!("v{i}"), "n", &(i * 3).to_string()])
            };
            let e = id(1000 + i / 3, i % 3);
            log.append(e, fields.clone());
            model.push((e, fields));
        }
        assert_eq!(log.node_count(), 3);
        assert_eq!(log.len(), 250);
        let all: Vec<_> = log.iter().collect();
        assert_eq!(all, model);
        assert!(log.delete(id(1001, 1)));
        assert!(!log.delete(id(1001, 1)));
        model.retain(|(e, _)| *e != id(1001, 1));
        let rev: Vec<_> = log.range(id(1000, 0), id(1010, 0), true).collect();
        let want: Vec<_> = model
            .iter()
            .filter(|(e, _)| *e <= id(1010, 0))
            .rev()
            .cloned()
            .collect();
        assert_eq!(rev, want);
        assert_eq!(log.get(id(1002, 2)), Some(model[7].1.clone()));
        assert_eq!(log.get(id(1001, 1)), None);
        assert_eq!(log.first_id(), Some(id(1000, 0)));
        assert_eq!(log.last_id(), Some(id(1083, 0)));
        assert_eq!(log.drop_first_node(), 99);
        assert_eq!(log.len(), 150);
        log.pop_first();
        assert_eq!(log.first_id(), Some(model[100].0));
    }
}
