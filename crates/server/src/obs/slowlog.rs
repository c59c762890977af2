//! SLOWLOG: commands slower than `slowlog-log-slower-than`.
//!
//! Each shard keeps its own ring of at most `slowlog-max-len` entries for the
//! commands its connections ran; ids come from one process-wide counter, so
//! SLOWLOG GET merges the rings newest-first into one logical log.

use bytes::Bytes;
use shardis_protocol::Reply;
use std::collections::VecDeque;

/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
const MAX_ARGC: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique, increasing id.
    pub id: u64,
    /// Unix time (seconds) when it was logged.
    pub time: u64,
    /// Execution time in microseconds.
    pub usec: u64,
    /// Arguments, trimmed as Redis trims them.
    pub args: Vec<Bytes>,
    /// Client address (`ip:port`).
    pub addr: String,
    /// Client name.
    pub name: String,
}

impl Entry {
    /// The SLOWLOG GET element: id, time, duration, args, addr, name.
    pub fn reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::Integer(self.id as i64),
            Reply::Integer(self.time as i64),
            Reply::Integer(self.usec as i64),
            Reply::Array(self.args.iter().cloned().map(Reply::Bulk).collect()),
            Reply::Bulk(Bytes::from(self.addr.clone())),
            Reply::Bulk(Bytes::from(self.name.clone())),
        ])
    }
}

/// One shard's ring, newest first.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
}

impl SlowLog {
    /// Adds an entry and trims the ring to `max_len`.
    pub fn push(&mut self, entry: Entry, max_len: usize) {
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    /// Entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// SLOWLOG RESET.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Arguments as Redis stores them in an entry: at most 32 (the last one saying
/// how many more there were), each at most 128 bytes plus how many more.
pub fn trim_args(args: &[Bytes]) -> Vec<Bytes> {
    let keep = args.len().min(MAX_ARGC);
    (0..keep)
        .map(|j| {
            if keep != args.len() && j == keep - 1 {
                Bytes::from(format!("... ({} more arguments)", args.len() - keep + 1))
            } else if args[j].len() > MAX_STRING {
                let mut s = args[j][..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", args[j].len() - MAX_STRING).as_bytes(),
                );
                Bytes::from(s)
            } else {
                args[j].clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_like_redis() {
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let t = trim_args(&many);
        assert_eq!(t.len(), 32);
        assert_eq!(t[31], Bytes::from("... (9 more arguments)"));
        assert_eq!(t[30], Bytes::from("30"));
        let long = vec![Bytes::from("set"), Bytes::from(vec![b'x'; 200])];
        let t = trim_args(&long);
        assert_eq!(&t[1][..128], &[b'x'; 128][..]);
        assert_eq!(&t[1][128..], b"... (72 more bytes)");
        let exact: Vec<Bytes> = (0..32).map(|i| Bytes::from(i.to_string())).collect();
        assert_eq!(trim_args(&exact), exact);
    }

    #[test]
    fn ring_keeps_newest() {
        let mut log = SlowLog::default();
        for id in 0..5 {
            let e = Entry {
                id,
                time: 0,
                usec: 0,
                args: vec![],
                addr: String::new(),
                name: String::new(),
            };
            log.push(e, 3);
        }
        let ids: Vec<u64> = log.entries().map(|e| e.id).collect();
        assert_eq!(ids, vec![4, 3, 2]);
    }
}
