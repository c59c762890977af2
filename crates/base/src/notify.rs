//! The classes of `notify-keyspace-events` (Redis's `notify.c`) and their
//! string form: parsed by the config, tested by the keyspace when a command
//! produces events.

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME…).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a read found no key (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (no modules here, but the class is accepted and shown).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key was created (not part of `A`).
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a class string (`"KEA"`, `"Kx"`…) as Redis's
/// `keyspaceEventsStringToFlags`; `None` on an unknown character.
pub fn parse_flags(classes: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for c in classes {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The canonical class string CONFIG GET shows (Redis's
/// `keyspaceEventsFlagsToString`).
pub fn format_flags(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The flags a shard puts in [`ExecContext::notify_flags`]: 0 unless some
/// channel (`K` or `E`) is on, so commands test one word.
pub fn effective(flags: u32) -> u32 {
    if flags & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_strings_round_trip_like_redis() {
        assert_eq!(parse_flags(b""), Some(0));
        assert_eq!(parse_flags(b"x!"), None);
        assert_eq!(format_flags(parse_flags(b"KEA").unwrap()), "AKE");
        assert_eq!(format_flags(parse_flags(b"Elg$").unwrap()), "g$lE");
        assert_eq!(format_flags(parse_flags(b"g$lshzxetd").unwrap()), "A");
        assert_eq!(format_flags(parse_flags(b"mnKx").unwrap()), "xnKm");
        assert_eq!(format_flags(parse_flags(b"An").unwrap()), "A");
        assert_eq!(effective(parse_flags(b"A").unwrap()), 0);
        assert_eq!(effective(KEYSPACE | SET), KEYSPACE | SET);
    }
}
