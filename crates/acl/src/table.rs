//! Redis 7.0.15's ACL view of its commands: categories and key specs.
//!
//! The rows are the command table's ([`shardis_commands::meta::TABLE`],
//! generated from redis-server 7.0.15's `COMMAND` and `COMMAND DOCS`). The
//! universe is every Redis command, not only the ones shardis implements, so
//! ACL rules written for Redis load unchanged and `ACL LIST` describes users
//! as Redis would. An ACL command id is an index in that table.

pub use shardis_commands::meta::{
    cat, category, children, is_sub, ks, lookup, lookup_sub, Begin, Find, KeySpec,
    Meta as CommandAcl, CATEGORIES, TABLE as COMMANDS,
};

/// `(position, key-spec flags)` of every key in `argv` for the command at
/// `id`, as Redis finds them (getKeysFromCommandWithSpecs).
pub fn keys(id: usize, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    shardis_commands::meta::keys(&COMMANDS[id], argv)
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
        assert!(COMMANDS[lookup("auth").unwrap()].no_auth());
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
