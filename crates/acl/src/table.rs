//! Redis 7.0.15's ACL view of its commands: categories and key specs.
//!
//! The rows live in `generated.rs` (made by `tools/gen_table.py` from the
//! `COMMAND` reply of redis-server 7.0.15). The universe is every Redis
//! command, not only the ones shardis implements, so ACL rules written for
//! Redis load unchanged and `ACL LIST` describes users as Redis would.

use std::sync::OnceLock;

/// ACL category bits, in Redis's `ACL CAT` order.
pub mod cat {
    #![allow(missing_docs)]
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
}

/// Category names; bit `i` of a category mask is `CATEGORIES[i]`.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (case-insensitive), if it exists.
pub fn category(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// Key-spec flags, as Redis names them.
pub mod ks {
    #![allow(missing_docs)]
    pub const RO: u16 = 1 << 0;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;
}

/// Where a key spec starts looking.
#[derive(Debug, Clone, Copy)]
pub enum Begin {
    /// At a fixed argument index.
    Index(i32),
    /// After the first `keyword` found scanning from `startfrom` (negative:
    /// from the end, backwards).
    Keyword {
        /// The keyword, matched case-insensitively.
        keyword: &'static str,
        /// Scan start.
        startfrom: i32,
    },
    /// Only the command itself knows (SORT's STORE, MIGRATE's KEYS).
    Unknown,
}

/// How many keys a spec covers from its start.
#[derive(Debug, Clone, Copy)]
pub enum Find {
    /// Up to `lastkey` (negative: from the end), every `step`; `limit` divides
    /// the rest when `lastkey` is -1.
    Range {
        /// Last key relative to the start.
        lastkey: i32,
        /// Distance between keys.
        step: i32,
        /// Fraction of the remaining arguments that are keys.
        limit: i32,
    },
    /// A numkeys argument gives the count.
    Keynum {
        /// Index of numkeys relative to the start.
        keynumidx: i32,
        /// First key relative to the start.
        firstkey: i32,
        /// Distance between keys.
        step: i32,
    },
    /// Only the command itself knows.
    Unknown,
}

/// One Redis key spec.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Bitwise OR of [`ks`] flags.
    pub flags: u16,
    /// Where the search begins.
    pub begin: Begin,
    /// Which keys follow.
    pub find: Find,
}

/// One command (or `parent|sub` subcommand) as ACLs see it.
#[derive(Debug)]
pub struct CommandAcl {
    /// Full lower-case name (`get`, `config|get`).
    pub name: &'static str,
    /// Redis arity (argv counted from the command name, as for subcommands).
    pub arity: i32,
    /// Bitwise OR of [`cat`] bits.
    pub categories: u32,
    /// Runs before authentication; never denied by command rules.
    pub no_auth: bool,
    /// Has subcommands.
    pub container: bool,
    /// Key specs in Redis's order.
    pub key_specs: &'static [KeySpec],
}

pub use crate::generated::COMMANDS;

/// Index of `name` (full name, any case) in [`COMMANDS`].
pub fn lookup(name: &str) -> Option<usize> {
    let mut buf = [0u8; 64];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    COMMANDS.binary_search_by(|c| c.name.cmp(lower)).ok()
}

/// Index of subcommand `sub` of the command at `parent`, without allocating.
pub fn lookup_sub(parent: usize, sub: &[u8]) -> Option<usize> {
    let p = COMMANDS[parent].name;
    children(parent).iter().copied().find(|&i| {
        let rest = &COMMANDS[i].name[p.len() + 1..];
        rest.as_bytes().eq_ignore_ascii_case(sub)
    })
}

/// Indices of the subcommands of the command at `i`.
pub fn children(i: usize) -> &'static [usize] {
    static KIDS: OnceLock<Vec<Vec<usize>>> = OnceLock::new();
    let kids = KIDS.get_or_init(|| {
        let mut kids = vec![Vec::new(); COMMANDS.len()];
        for (j, c) in COMMANDS.iter().enumerate() {
            if let Some((parent, _)) = c.name.split_once('|') {
                if let Some(p) = lookup(parent) {
                    kids[p].push(j);
                }
            }
        }
        kids
    });
    &kids[i]
}

/// True if the entry at `i` is a subcommand.
pub fn is_sub(i: usize) -> bool {
    COMMANDS[i].name.contains('|')
}

/// `(position, key-spec flags)` of every key in `argv` for the command at
/// `id`, following Redis's key specs (getKeysUsingKeySpecs).
pub fn keys(id: usize, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    let cmd = &COMMANDS[id];
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for spec in cmd.key_specs {
        let first = match spec.begin {
            Begin::Index(i) => i as i64,
            Begin::Keyword { keyword, startfrom } => {
                let (start, end, dir) = if startfrom >= 0 {
                    (startfrom as i64, argc - 1, 1)
                } else {
                    (argc + startfrom as i64, 1, -1)
                };
                let mut found = None;
                let mut i = start;
                while (dir > 0 && i <= end) || (dir < 0 && i >= end) {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = Some(i + 1);
                        break;
                    }
                    i += dir;
                }
                match found {
                    Some(f) => f,
                    None => continue,
                }
            }
            Begin::Unknown => continue,
        };
        let (first, last, step) = match spec.find {
            Find::Range {
                lastkey,
                step,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit <= 1 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (first, last, step as i64)
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let at = first + keynumidx as i64;
                let Some(n) = argv
                    .get(at as usize)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|&n| n >= 0)
                else {
                    continue;
                };
                let f = first + firstkey as i64;
                (f, f + n * step as i64 - 1, step as i64)
            }
            Find::Unknown => continue,
        };
        let mut flags = spec.flags;
        // SET's spec is RW+ACCESS only because of its optional GET argument.
        if spec.flags & ks::VARIABLE_FLAGS != 0
            && cmd.name == "set"
            && !argv[3.min(argv.len())..]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"get"))
        {
            flags = ks::OW | ks::UPDATE;
        }
        let mut i = first;
        while i <= last && step > 0 {
            if i >= argc || i < 1 {
                break;
            }
            out.push((i as usize, flags));
            i += step;
        }
    }
    out
}

/// Channel arguments of a Pub/Sub command: `(position, is_pattern)`.
pub fn channels(id: usize, argv: &[&[u8]]) -> Vec<(usize, bool)> {
    match COMMANDS[id].name {
        "publish" | "spublish" if argv.len() > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argv.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argv.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        let get = lookup("GET").unwrap();
        assert_eq!(
            COMMANDS[get].categories,
            cat::READ | cat::STRING | cat::FAST
        );
        let cfg = lookup("config").unwrap();
        let cget = lookup_sub(cfg, b"GeT").unwrap();
        assert_eq!(COMMANDS[cget].name, "config|get");
        assert!(children(cfg).len() >= 5);
        assert!(COMMANDS[lookup("auth").unwrap()].no_auth);
    }

    #[test]
    fn key_specs_give_read_and_write_keys() {
        let k = |name: &str, argv: &[&[u8]]| keys(lookup(name).unwrap(), argv);
        assert_eq!(k("get", &[b"get", b"a"]), vec![(1, ks::RO | ks::ACCESS)]);
        assert_eq!(
            k("set", &[b"set", b"a", b"v"]),
            vec![(1, ks::OW | ks::UPDATE)]
        );
        assert_eq!(
            k("set", &[b"set", b"a", b"v", b"GET"])[0].1 & ks::ACCESS,
            ks::ACCESS
        );
        assert_eq!(
            k("mset", &[b"mset", b"a", b"1", b"b", b"2"])
                .iter()
                .map(|k| k.0)
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        let r = k("rename", &[b"rename", b"a", b"b"]);
        assert_eq!(r[0], (1, ks::RW | ks::ACCESS | ks::DELETE));
        assert_eq!(r[1], (2, ks::OW | ks::UPDATE));
        let z = k(
            "zunionstore",
            &[
                b"zunionstore",
                b"d",
                b"2",
                b"x",
                b"y",
                b"WEIGHTS",
                b"1",
                b"2",
            ],
        );
        assert_eq!(z.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 3, 4]);
        let b = k("blpop", &[b"blpop", b"a", b"b", b"0"]);
        assert_eq!(b.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 2]);
        let o = k("object|encoding", &[b"object", b"encoding", b"k"]);
        assert_eq!(o.iter().map(|k| k.0).collect::<Vec<_>>(), vec![2]);
    }
}
