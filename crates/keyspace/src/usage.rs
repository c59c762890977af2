//! MEMORY USAGE: an estimate of the bytes one key costs, from shardis's own
//! structures (slot, inline or boxed key, value headers by capacity, element
//! heap blocks), sampled as Redis's `objectComputeSize` samples: the first
//! `samples` elements' average size times the element count (`samples` 0:
//! every element).

use crate::db::Slot;
use crate::value::{StrValue, Value};
use bytes::Bytes;
use std::mem::size_of;

/// Redis's `OBJ_COMPUTE_SIZE_DEF_SAMPLES`.
pub const DEFAULT_SAMPLES: usize = 5;

/// A heap block of `n` bytes as the allocator serves it (8-byte classes for
/// small blocks; nothing for an empty one).
fn block(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 7) & !7
    }
}

/// The heap block behind a stored `Bytes` (copied in, so it owns its block).
fn bytes_heap(b: &[u8]) -> usize {
    block(b.len())
}

/// Average of `f` over the first `samples` items, times `len`.
fn sampled<I: Iterator>(
    iter: I,
    len: usize,
    samples: usize,
    f: impl Fn(I::Item) -> usize,
) -> usize {
    let mut n = 0usize;
    let mut sum = 0usize;
    for item in iter.take(samples) {
        sum += f(item);
        n += 1;
    }
    if n == 0 {
        0
    } else {
        (sum as f64 / n as f64 * len as f64) as usize
    }
}

/// Bytes owned by the value beyond its 24 inline bytes.
pub fn value_bytes(v: &Value, samples: usize) -> usize {
    let samples = if samples == 0 { usize::MAX } else { samples };
    match v {
        Value::String(StrValue::Int(_)) => 0,
        Value::String(StrValue::Str(b)) => match b {
            crate::compact::CompactBytes::Inline { .. } => 0,
            crate::compact::CompactBytes::Heap(h) => block(h.len()),
        },
        Value::String(StrValue::Raw(v)) => block(size_of::<Vec<u8>>()) + block(v.capacity()),
        Value::List(l) => block(size_of::<crate::list::List>()) + l.heap_bytes(),
        Value::Hash(h) => {
            let header = block(size_of::<crate::hash::Hash>());
            match &**h {
                crate::hash::Hash::Listpack(p) => header + block(p.heap_bytes()),
                crate::hash::Hash::Table(t) => {
                    header
                        + block(size_of::<hashbrown::HashMap<Bytes, Bytes>>())
                        + t.capacity() * (size_of::<(Bytes, Bytes)>() + 1)
                        + sampled(h.iter(), h.len(), samples, |(f, v)| {
                            bytes_heap(f) + bytes_heap(v)
                        })
                }
            }
        }
        Value::Set(s) => {
            let header = block(size_of::<crate::set::SetValue>());
            match &**s {
                crate::set::SetValue::Ints(v) => header + block(v.heap_bytes()),
                crate::set::SetValue::Pack(p) => header + block(p.heap_bytes()),
                crate::set::SetValue::Hash(d) => {
                    header
                        + block(size_of::<crate::members::Dict<()>>())
                        + d.table_bytes()
                        + sampled(d.iter(), d.len(), samples, |(m, _)| bytes_heap(m))
                }
            }
        }
        Value::ZSet(z) if z.is_pack() => {
            block(size_of::<crate::zset::ZSetValue>()) + block(z.table_bytes())
        }
        Value::ZSet(z) => {
            block(size_of::<crate::zset::ZSetValue>())
                + z.table_bytes()
                + sampled(z.iter(), z.len(), samples, |(m, _)| bytes_heap(&m))
        }
        Value::Stream(s) => {
            // The packed nodes, whole (they are what the entries cost).
            let entries = s.entries.heap_bytes();
            let groups: usize = s
                .groups
                .iter()
                .take(samples)
                .map(|(name, g)| {
                    bytes_heap(name)
                        + size_of::<crate::stream::Group>()
                        + g.pel.len()
                            * (size_of::<shardis_rdb::StreamId>()
                                + size_of::<crate::stream::Nack>())
                        + g.consumers
                            .iter()
                            .map(|(c, cons)| {
                                bytes_heap(c)
                                    + size_of::<crate::stream::Consumer>()
                                    + cons.pel.len() * size_of::<shardis_rdb::StreamId>()
                            })
                            .sum::<usize>()
                })
                .sum();
            let groups = if s.groups.is_empty() {
                0
            } else {
                groups * s.groups.len() / s.groups.len().min(samples)
            };
            block(size_of::<crate::stream::Stream>()) + entries + groups
        }
    }
}

/// Bytes one key costs in its db's table (MEMORY STATS's
/// `overhead.hashtable.main`): its boxed slot, the table's pointer to it and
/// the table's control byte.
pub const SLOT_BYTES: usize = ((size_of::<Slot>() + 7) & !7) + size_of::<Box<Slot>>() + 1;

/// Bytes one key with a TTL costs in the TTL index (`overhead.hashtable.expires`):
/// its copy of the key, the expiry and the position index entry.
pub const TTL_BYTES: usize =
    size_of::<(crate::compact::CompactBytes, u64)>() + size_of::<u32>() + 1;

/// MEMORY USAGE of a key: its table slot, its key's heap block and its value.
pub fn key_usage(slot: &Slot, samples: usize) -> usize {
    let key = match &slot.key {
        crate::compact::CompactBytes::Inline { .. } => 0,
        crate::compact::CompactBytes::Heap(h) => block(h.len()),
    };
    // The slot plus its hash table control byte.
    SLOT_BYTES + key + value_bytes(&slot.value, samples)
}
