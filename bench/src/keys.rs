//! Request templates and key generation, following redis-benchmark: commands are
//! RESP-encoded once, and with `-r N` every `__rand_int__` in them is overwritten
//! in place with a random 12-digit, zero-padded number below N before each send.

use rand::Rng;

/// The placeholder redis-benchmark randomises; it is exactly 12 bytes, the width
/// of the number that replaces it.
pub const RAND_PLACEHOLDER: &[u8] = b"__rand_int__";

pub use shardis_base::encode_command;

/// A pre-encoded request with the offsets of its placeholders.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    rand_at: Vec<usize>,
}

impl Template {
    /// Builds a template from raw request bytes (already RESP or inline).
    pub fn from_raw(bytes: Vec<u8>) -> Template {
        let rand_at = memchr::memmem::find_iter(&bytes, RAND_PLACEHOLDER).collect();
        Template { bytes, rand_at }
    }

    /// Builds a template from command arguments.
    pub fn from_args<A: AsRef<[u8]>>(args: &[A]) -> Template {
        let mut bytes = Vec::new();
        encode_command(args, &mut bytes);
        Template::from_raw(bytes)
    }

    /// The encoded request as it is before randomisation.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Appends one copy to `out`; with a keyspace (`-r`), every placeholder in the
    /// copy gets its own random number, as redis-benchmark does per request.
    pub fn append<R: Rng>(&self, out: &mut Vec<u8>, keyspace: Option<u64>, rng: &mut R) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(n) = keyspace {
            for &at in &self.rand_at {
                let r = rng.gen_range(0..n);
                write_padded12(&mut out[base + at..base + at + 12], r);
            }
        }
    }
}

/// Writes `n` as exactly 12 zero-padded decimal digits (the low 12 digits, as
/// redis-benchmark does for keyspaces larger than 10^12).
pub fn write_padded12(dst: &mut [u8], mut n: u64) {
    for d in dst[..12].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `prefix` followed by the 12-digit form of `n`: the key names
/// redis-benchmark's `-r` produces (`key:000000000042`).
pub fn push_key(out: &mut Vec<u8>, prefix: &[u8], n: u64) {
    out.extend_from_slice(prefix);
    let at = out.len();
    out.extend_from_slice(&[0; 12]);
    write_padded12(&mut out[at..], n);
}

/// redis-benchmark's payload generator (an LCG seeded with 1234), so values have
/// the same bytes as the reference tool's, not a run of one character.
pub fn benchmark_data(len: usize) -> Vec<u8> {
    let mut state: u32 = 1234;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b'0' + ((state >> 16) & 63) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn encodes_resp() {
        let mut out = Vec::new();
        encode_command(&["SET", "k", ""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn padded_digits() {
        let mut b = [0u8; 12];
        write_padded12(&mut b, 42);
        assert_eq!(&b, b"000000000042");
        write_padded12(&mut b, 1_234_567_890_123);
        assert_eq!(&b, b"234567890123");
        let mut v = b"x".to_vec();
        push_key(&mut v, b"key:", 7);
        assert_eq!(v, b"xkey:000000000007");
    }

    #[test]
    fn without_keyspace_placeholder_stays() {
        let t = Template::from_args(&["GET", "key:__rand_int__"]);
        let mut out = Vec::new();
        t.append(&mut out, None, &mut SmallRng::seed_from_u64(1));
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n");
    }

    #[test]
    fn keyspace_replaces_every_placeholder_within_range() {
        let t = Template::from_args(&["MSET", "key:__rand_int__", "v", "key:__rand_int__", "v"]);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let mut out = Vec::new();
            t.append(&mut out, Some(10), &mut rng);
            assert_eq!(out.len(), t.bytes().len());
            assert!(memchr::memmem::find(&out, RAND_PLACEHOLDER).is_none());
            for at in memchr::memmem::find_iter(&out, b"key:") {
                let digits = std::str::from_utf8(&out[at + 4..at + 16]).unwrap();
                let n: u64 = digits.parse().unwrap();
                assert!(n < 10, "{digits}");
                seen.insert(n);
            }
        }
        assert_eq!(seen.len(), 10, "all of the keyspace is reached");
    }

    #[test]
    fn data_matches_redis_benchmark() {
        // Read back from redis-server 7.0.15 after `redis-benchmark -t set -n 1 -d 10`.
        assert_eq!(benchmark_data(10), b"VXKeHogKgJ");
    }
}
