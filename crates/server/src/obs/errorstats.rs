//! INFO errorstats: error replies counted by their code (the first word).

/// Distinct codes kept (Redis's `ERROR_STATS_NUMBER`); later new codes are not tracked.
const MAX_CODES: usize = 128;

/// One shard's error counters, in first-seen order.
#[derive(Debug, Default, Clone)]
pub struct ErrorStats {
    /// `(code, count)`.
    pub codes: Vec<(String, u64)>,
}

impl ErrorStats {
    /// Counts one error reply with message `msg` (without the leading `-`).
    pub fn count(&mut self, msg: &str) {
        let code = code_of(msg);
        if let Some((_, n)) = self.codes.iter_mut().find(|(c, _)| c == code) {
            *n += 1;
        } else if self.codes.len() < MAX_CODES {
            self.codes.push((code.to_string(), 1));
        }
    }
}

/// The error code Redis counts: the text before the first space if that space
/// is within the first 32 bytes, otherwise `ERR`.
pub fn code_of(msg: &str) -> &str {
    let head = &msg.as_bytes()[..msg.len().min(32)];
    match head.iter().position(|&b| b == b' ') {
        Some(0) | None => "ERR",
        Some(i) => &msg[..i],
    }
}

/// Adds per-shard counters by code (first-seen order over shards).
pub fn merge(per_shard: Vec<ErrorStats>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for s in per_shard {
        for (code, n) in s.codes {
            match out.iter_mut().find(|(c, _)| *c == code) {
                Some((_, acc)) => *acc += n,
                None => out.push((code, n)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(code_of("WRONGTYPE Operation against a key"), "WRONGTYPE");
        assert_eq!(code_of("ERR syntax error"), "ERR");
        assert_eq!(code_of("NOAUTH Authentication required."), "NOAUTH");
        assert_eq!(code_of("NOSPACEATALL"), "ERR");
        let mut s = ErrorStats::default();
        s.count("ERR a");
        s.count("WRONGTYPE b");
        s.count("ERR c");
        assert_eq!(s.codes, vec![("ERR".into(), 2), ("WRONGTYPE".into(), 1)]);
    }
}
