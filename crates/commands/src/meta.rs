//! Redis 7.0.15's own description of its commands: the types of the generated
//! [`TABLE`] (one [`Meta`] per command and subcommand, as `COMMAND INFO` and
//! `COMMAND DOCS` print them) and the lookups and key extraction that read it.
//!
//! The universe here is every Redis command, implemented or not: ACL rules
//! name commands shardis lacks, and `ACL CAT` lists them as Redis does. What
//! clients may run and what `COMMAND` shows is the implemented subset
//! ([`crate::COMMANDS`]).

pub use crate::generated::{COUNT, TABLE};

/// ACL category bits, in Redis's `ACL CAT` order (also COMMAND INFO's order).
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

    /// Names in the order Redis prints them (bit `i` is `NAMES[i]`).
    pub const NAMES: &[&str] = &[
        "RO",
        "RW",
        "OW",
        "RM",
        "access",
        "update",
        "insert",
        "delete",
        "not_key",
        "incomplete",
        "variable_flags",
    ];
}

/// Argument flags of COMMAND DOCS.
pub mod arg {
    #![allow(missing_docs)]
    pub const OPTIONAL: u8 = 1 << 0;
    pub const MULTIPLE: u8 = 1 << 1;
    pub const MULTIPLE_TOKEN: u8 = 1 << 2;

    /// Names in the order Redis prints them (bit `i` is `NAMES[i]`).
    pub const NAMES: &[&str] = &["optional", "multiple", "multiple_token"];
}

/// Command doc flags of COMMAND DOCS.
pub mod doc {
    #![allow(missing_docs)]
    pub const DEPRECATED: u8 = 1 << 0;
    pub const SYSCMD: u8 = 1 << 1;

    /// Names in the order Redis prints them (bit `i` is `NAMES[i]`).
    pub const NAMES: &[&str] = &["deprecated", "syscmd"];
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
    /// Up to `lastkey` (negative: from the end), every `keystep`; `limit`
    /// divides the rest when `lastkey` is -1.
    Range {
        /// Last key relative to the start.
        lastkey: i32,
        /// Distance between keys.
        keystep: i32,
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
        keystep: i32,
    },
    /// Only the command itself knows.
    Unknown,
}

/// One Redis key spec.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Free-text notes, when Redis has some.
    pub notes: Option<&'static str>,
    /// Bitwise OR of [`ks`] flags.
    pub flags: u16,
    /// Where the search begins.
    pub begin: Begin,
    /// Which keys follow.
    pub find: Find,
}

/// The type of a documented argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ArgType {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    Oneof,
    Block,
}

impl ArgType {
    /// The name COMMAND DOCS prints.
    pub fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::Oneof => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One documented argument (a tree: `oneof` and `block` have children).
#[derive(Debug)]
pub struct Arg {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub kind: ArgType,
    /// Index of the key spec that covers it, or -1.
    pub key_spec_index: i32,
    /// The literal token that introduces it.
    pub token: Option<&'static str>,
    /// Summary.
    pub summary: Option<&'static str>,
    /// Version that added it.
    pub since: Option<&'static str>,
    /// Version that deprecated it.
    pub deprecated_since: Option<&'static str>,
    /// Bitwise OR of [`arg`] flags.
    pub flags: u8,
    /// Children of a `oneof` or `block`.
    pub arguments: &'static [Arg],
}

/// What COMMAND DOCS says about a command.
#[derive(Debug)]
pub struct Doc {
    /// One-line summary.
    pub summary: Option<&'static str>,
    /// Version that added it.
    pub since: Option<&'static str>,
    /// Group (`string`, `generic`, …).
    pub group: &'static str,
    /// Time complexity.
    pub complexity: Option<&'static str>,
    /// Bitwise OR of [`doc`] flags.
    pub doc_flags: u8,
    /// Version that deprecated it.
    pub deprecated_since: Option<&'static str>,
    /// What replaces it.
    pub replaced_by: Option<&'static str>,
    /// `(version, change)` pairs.
    pub history: Option<&'static [(&'static str, &'static str)]>,
    /// Argument tree.
    pub arguments: Option<&'static [Arg]>,
}

/// One Redis command or subcommand, as COMMAND INFO and COMMAND DOCS show it.
#[derive(Debug)]
pub struct Meta {
    /// Full lower-case name (`get`, `config|get`).
    pub name: &'static str,
    /// Index of the parent command in [`TABLE`], for a subcommand.
    pub parent: Option<usize>,
    /// Redis arity (argv counted from the command name, as for subcommands).
    pub arity: i32,
    /// Bitwise OR of [`crate::flags`].
    pub flags: u32,
    /// Legacy first key.
    pub first_key: i32,
    /// Legacy last key.
    pub last_key: i32,
    /// Legacy key step.
    pub step: i32,
    /// Bitwise OR of [`cat`] bits.
    pub categories: u32,
    /// Command tips (`nondeterministic_output`, …).
    pub tips: &'static [&'static str],
    /// Key specs in Redis's order.
    pub key_specs: &'static [KeySpec],
    /// Indices in [`TABLE`] of the subcommands, for a container.
    pub subcommands: Option<&'static [usize]>,
    /// COMMAND DOCS.
    pub doc: Doc,
}

impl Meta {
    /// True if the command has subcommands.
    pub fn is_container(&self) -> bool {
        self.subcommands.is_some()
    }

    /// True if `n` arguments (including the command and subcommand names)
    /// satisfy the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        let n = n as i64;
        let a = self.arity as i64;
        if a >= 0 {
            n == a
        } else {
            n >= -a
        }
    }

    /// True if it runs before authentication.
    pub fn no_auth(&self) -> bool {
        self.flags & crate::flags::NO_AUTH != 0
    }

    /// The subcommand name without the parent (`get` for `config|get`).
    pub fn short_name(&self) -> &'static str {
        match self.name.split_once('|') {
            Some((_, s)) => s,
            None => self.name,
        }
    }
}

/// Index of `name` (full name, any case) in [`TABLE`].
pub fn lookup(name: &str) -> Option<usize> {
    let mut buf = [0u8; 64];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    TABLE.binary_search_by(|c| c.name.cmp(lower)).ok()
}

/// Index of subcommand `sub` (any case) of the command at `parent`.
pub fn lookup_sub(parent: usize, sub: &[u8]) -> Option<usize> {
    children(parent)
        .iter()
        .copied()
        .find(|&i| TABLE[i].short_name().as_bytes().eq_ignore_ascii_case(sub))
}

/// Indices of the subcommands of the command at `i`.
pub fn children(i: usize) -> &'static [usize] {
    TABLE[i].subcommands.unwrap_or(&[])
}

/// True if the entry at `i` is a subcommand.
pub fn is_sub(i: usize) -> bool {
    TABLE[i].parent.is_some()
}

/// Const lookup by full lower-case name, for tables built at compile time.
pub(crate) const fn const_lookup(name: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < COUNT {
        if const_eq(TABLE[i].name.as_bytes(), name) {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub(crate) const fn const_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// True if the command has key arguments (Redis's `doesCommandHaveKeys`: a
/// key spec that is not `not_key`; no implemented command relies on a
/// key-extraction function alone).
pub fn has_keys(m: &Meta) -> bool {
    m.key_specs.iter().any(|s| s.flags & ks::NOT_KEY == 0)
}

/// `(position, key-spec flags)` of every key in `argv` (argv\[0\] is the
/// command name; for a subcommand argv\[1\] is its name), as Redis's
/// `getKeysFromCommandWithSpecs` finds them: the key specs when they are
/// reliable and match the arguments, else the command's own key function.
/// Empty when the arguments hold no valid keys.
pub fn keys(m: &Meta, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    let variable = m
        .key_specs
        .iter()
        .any(|s| s.flags & ks::VARIABLE_FLAGS != 0);
    if has_keys(m) && !variable {
        if let Some(k) = keys_from_specs(m, argv, false) {
            return k;
        }
    }
    keys_by_function(m.name, argv)
}

/// Every key the specs can find, skipping specs that do not fit the arguments
/// or that only the command knows (Redis's `GET_KEYSPEC_RETURN_PARTIAL`):
/// what routing needs for a command whose keys no simpler rule describes.
pub fn keys_partial(m: &Meta, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    keys_from_specs(m, argv, true).unwrap_or_default()
}

/// Redis's `getKeysUsingKeySpecs` (`not_key` skipped). Without `partial`,
/// `None` when a spec does not fit the arguments; with it, such specs are
/// skipped.
fn keys_from_specs(m: &Meta, argv: &[&[u8]], partial: bool) -> Option<Vec<(usize, u16)>> {
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for spec in m.key_specs {
        if spec.flags & ks::NOT_KEY != 0 {
            continue;
        }
        let first = match spec.begin {
            Begin::Index(i) => i as i64,
            Begin::Keyword { keyword, startfrom } => {
                let sf = startfrom as i64;
                let start = if sf > 0 { sf } else { argc + sf };
                let end = if sf > 0 { argc - 1 } else { 1 };
                let mut found = 0;
                let mut i = start;
                // As in Redis, the scan stops before `end` itself.
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            Begin::Unknown if partial => continue,
            Begin::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            Find::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (first, last, keystep as i64)
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + keynumidx as i64;
                let n = if keynumidx as i64 >= argc || at >= argc {
                    None
                } else {
                    parse_ll(argv[at as usize]).filter(|&n| n >= 0)
                };
                let Some(n) = n else {
                    if partial {
                        continue;
                    }
                    return None;
                };
                let f = first + firstkey as i64;
                (f, f + n - 1, keystep as i64)
            }
            Find::Unknown if partial => continue,
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            if partial {
                continue;
            }
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, spec.flags));
            i += step;
        }
        if spec.flags & ks::INCOMPLETE != 0 && !partial {
            return None;
        }
    }
    Some(out)
}

/// The key functions (`getkeys_proc`) of the implemented commands that have
/// one: used when the specs have variable flags (SET) or do not fit.
fn keys_by_function(name: &str, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    match name {
        // Redis's sortGetKeys: the sorted key, read, and the last STORE
        // destination, overwritten; LIMIT's, GET's and BY's arguments skipped.
        "sort" => {
            let mut out = vec![(1, ks::RO | ks::ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argv.len() {
                let a = argv[i];
                if a.eq_ignore_ascii_case(b"limit") {
                    i += 2;
                } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
                    i += 1;
                } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argv.len() {
                    store = Some(i + 1);
                }
                i += 1;
            }
            out.extend(store.map(|p| (p, ks::OW | ks::UPDATE)));
            out
        }
        "set" => {
            let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            let flags = if get {
                ks::RW | ks::ACCESS | ks::UPDATE
            } else {
                ks::OW | ks::UPDATE
            };
            vec![(1, flags)]
        }
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            numkeys_function(None, 1, 2, argv)
        }
        "blmpop" | "bzmpop" => numkeys_function(None, 2, 3, argv),
        // Redis's migrateGetKeys: the key argument, or everything after KEYS
        // (the options before it skipped with their arguments); none when KEYS
        // comes with a non-empty key, which the command answers as an error.
        "migrate" if argv.len() > 3 => {
            let flags = ks::RW | ks::ACCESS | ks::DELETE;
            let (mut first, mut num) = (3, 1);
            if argv.len() > 6 {
                let mut i = 6;
                while i < argv.len() {
                    let a = argv[i];
                    if a.eq_ignore_ascii_case(b"keys") {
                        if argv[3].is_empty() {
                            first = i + 1;
                            num = argv.len() - first;
                        } else {
                            num = 0;
                        }
                        break;
                    }
                    if a.eq_ignore_ascii_case(b"auth") {
                        i += 1;
                    } else if a.eq_ignore_ascii_case(b"auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            (first..first + num).map(|i| (i, flags)).collect()
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => numkeys_function(Some(1), 2, 3, argv),
        "xread" | "xreadgroup" => {
            let mut pos = None;
            let mut i = 1;
            while i < argv.len() {
                let a = argv[i];
                if a.eq_ignore_ascii_case(b"block") || a.eq_ignore_ascii_case(b"count") {
                    i += 1;
                } else if a.eq_ignore_ascii_case(b"group") {
                    i += 2;
                } else if a.eq_ignore_ascii_case(b"noack") {
                } else if a.eq_ignore_ascii_case(b"streams") {
                    pos = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(pos) = pos else { return Vec::new() };
            let n = argv.len() - pos - 1;
            if n == 0 || !n.is_multiple_of(2) {
                return Vec::new();
            }
            (pos + 1..pos + 1 + n / 2).map(|i| (i, 0)).collect()
        }
        _ => Vec::new(),
    }
}

/// Redis's `genericGetKeys`: numkeys read with `atoi`, keys flagged 0, the
/// destination (if any) last.
fn numkeys_function(
    store: Option<usize>,
    count_at: usize,
    first: usize,
    argv: &[&[u8]],
) -> Vec<(usize, u16)> {
    let Some(raw) = argv.get(count_at) else {
        return Vec::new();
    };
    let num = atoi(raw);
    if num < 1 || num > argv.len() as i64 - first as i64 {
        return Vec::new();
    }
    let mut v: Vec<(usize, u16)> = (0..num as usize).map(|i| (first + i, 0)).collect();
    if let Some(s) = store {
        v.push((s, 0));
    }
    v
}

/// C's `atoi`: leading spaces, a sign, then digits up to the first non-digit.
fn atoi(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = i < b.len() && b[i] == b'-';
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.wrapping_mul(10).wrapping_add((b[i] - b'0') as i64);
        i += 1;
    }
    // atoi returns an int: wrap as the C conversion does on this platform.
    let n = n as i32 as i64;
    if neg {
        -n
    } else {
        n
    }
}

/// Redis's `string2ll`: a strict decimal i64.
fn parse_ll(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 || b[0] == b'+' || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if b == b"-0" || (b.len() > 2 && b[0] == b'-' && b[1] == b'0') {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str, argv: &[&[u8]]) -> Vec<(usize, u16)> {
        keys(&TABLE[lookup(name).unwrap()], argv)
    }

    #[test]
    fn table_is_sorted_and_linked() {
        assert!(TABLE.windows(2).all(|w| w[0].name < w[1].name));
        let get = &TABLE[lookup("GET").unwrap()];
        assert_eq!(get.categories, cat::READ | cat::STRING | cat::FAST);
        let cfg = lookup("config").unwrap();
        let cget = lookup_sub(cfg, b"GeT").unwrap();
        assert_eq!(TABLE[cget].name, "config|get");
        assert_eq!(TABLE[cget].parent, Some(cfg));
        assert!(TABLE[lookup("auth").unwrap()].no_auth());
        for (i, m) in TABLE.iter().enumerate() {
            for &c in children(i) {
                assert_eq!(TABLE[c].parent, Some(i), "{}", m.name);
            }
            assert_eq!(const_lookup(m.name.as_bytes()), Some(i));
        }
    }

    #[test]
    fn keys_follow_specs_and_functions() {
        assert_eq!(k("get", &[b"get", b"a"]), vec![(1, ks::RO | ks::ACCESS)]);
        assert_eq!(
            k("set", &[b"set", b"a", b"v"]),
            vec![(1, ks::OW | ks::UPDATE)]
        );
        assert_eq!(
            k("set", &[b"set", b"a", b"v", b"get"]),
            vec![(1, ks::RW | ks::ACCESS | ks::UPDATE)]
        );
        let pos = |v: Vec<(usize, u16)>| v.into_iter().map(|k| k.0).collect::<Vec<_>>();
        assert_eq!(
            pos(k("mset", &[b"mset", b"a", b"1", b"b", b"2"])),
            vec![1, 3]
        );
        let z = &[
            b"zunionstore" as &[u8],
            b"d",
            b"2",
            b"x",
            b"y",
            b"WEIGHTS",
            b"1",
            b"2",
        ];
        assert_eq!(pos(k("zunionstore", z)), vec![1, 3, 4]);
        // A numkeys that does not parse strictly falls back to atoi.
        let z = &[b"zunionstore" as &[u8], b"d", b"2x", b"x", b"y"];
        assert_eq!(k("zunionstore", z), vec![(3, 0), (4, 0), (1, 0)]);
        assert!(k("zunionstore", &[b"zunionstore", b"d", b"3", b"x", b"y"]).is_empty());
        assert_eq!(pos(k("blpop", &[b"blpop", b"a", b"b", b"0"])), vec![1, 2]);
        // MIGRATE: the key argument, or what follows KEYS (Redis's
        // migrateGetKeys, after the incomplete KEYS spec); AUTH/AUTH2 take
        // their arguments with them.
        let m = |a: &[&str]| {
            let argv: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
            k("migrate", &argv)
        };
        let rw = ks::RW | ks::ACCESS | ks::DELETE;
        assert_eq!(m(&["migrate", "h", "1", "k", "0", "1"]), vec![(3, rw)]);
        assert_eq!(
            pos(m(&["migrate", "h", "1", "", "0", "1", "KEYS", "a", "b"])),
            vec![7, 8]
        );
        assert_eq!(
            m(&["migrate", "h", "1", "", "0", "1", "auth", "keys", "keys", "a"]),
            vec![(9, rw)]
        );
        assert!(m(&["migrate", "h", "1", "k", "0", "1", "keys", "a"]).is_empty());
        assert_eq!(pos(m(&["migrate", "h", "1", "keys", "0", "1"])), vec![3]);
        let x = &[
            b"xread" as &[u8],
            b"COUNT",
            b"1",
            b"STREAMS",
            b"a",
            b"b",
            b"0",
            b"0",
        ];
        assert_eq!(pos(k("xread", x)), vec![4, 5]);
        let o = k("object|encoding", &[b"object", b"encoding", b"k"]);
        assert_eq!(pos(o), vec![2]);
        assert_eq!(atoi(b" -12abc"), -12);
        assert_eq!(parse_ll(b"012"), None);
    }
}
