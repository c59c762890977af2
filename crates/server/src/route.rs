//! Which shard owns a key: Redis Cluster's slot function, so hash tags co-locate keys.

use shardis_base::ShardId;

/// True if the connection runs the command itself rather than routing it by
/// key: commands without keys, and MEMORY's subcommands other than USAGE
/// (the table gives MEMORY one key position, argument 2, for USAGE).
pub fn keyless(cmd: &shardis_commands::Command, args: &[bytes::Bytes]) -> bool {
    matches!(cmd.keys, shardis_commands::KeySpec::None)
        || (cmd.id == shardis_commands::CommandId::Memory
            && !args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"usage")))
}

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC16-CCITT (XMODEM) of every byte value, built at compile time: one
/// lookup per key byte instead of eight shift-and-xor steps (every keyed
/// command routes through it when there are several shards).
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for slots.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// The slot of a key: only the `{tag}` is hashed when the key has a non-empty one.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = match memchr_open(key) {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) & (SLOTS - 1)
}

fn memchr_open(key: &[u8]) -> Option<usize> {
    key.iter().position(|&c| c == b'{')
}

/// The shard that owns `key` among `shards`.
pub fn shard_of(key: &[u8], shards: usize) -> ShardId {
    if shards == 1 {
        ShardId(0)
    } else {
        ShardId(slot(key) as usize % shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_cluster_keyslot() {
        // Values from CLUSTER KEYSLOT on a real Redis.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(slot(b"foo{{bar}}zap"), crc16(b"{bar") & 16383);
        assert_eq!(crc16(b"123456789"), 0x31c3);
    }
}
