//! The replica side's link to its master, as phases (Redis's `repl_state`).
//!
//! One enum instead of flags: `ROLE`, `INFO replication` and the handshake
//! timeout all read the same phase, so they cannot disagree.

/// Where a replica's link to its master stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPhase {
    /// Waiting to (re)connect.
    Connect,
    /// TCP connect in progress.
    Connecting,
    /// Connected: PING, AUTH, REPLCONF and PSYNC exchanged.
    Handshake,
    /// Receiving the full-sync payload.
    Transfer,
    /// Streaming commands.
    Connected,
}

impl LinkPhase {
    /// The state `ROLE` reports for a replica.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkPhase::Connect => "connect",
            LinkPhase::Connecting => "connecting",
            LinkPhase::Handshake => "handshake",
            LinkPhase::Transfer => "sync",
            LinkPhase::Connected => "connected",
        }
    }

    /// `master_link_status:up`.
    pub fn is_up(self) -> bool {
        self == LinkPhase::Connected
    }

    /// `master_sync_in_progress:1`.
    pub fn is_syncing(self) -> bool {
        self == LinkPhase::Transfer
    }

    /// The phases `repl-timeout` bounds from the last byte received before
    /// the stream starts: Redis's "Timeout connecting to the MASTER..." and
    /// "Timeout receiving bulk data from MASTER...".
    pub fn timeout_message(self) -> Option<&'static str> {
        match self {
            LinkPhase::Connecting | LinkPhase::Handshake => {
                Some("Timeout connecting to the MASTER...")
            }
            LinkPhase::Transfer => Some("Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."),
            LinkPhase::Connect | LinkPhase::Connected => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LinkPhase::*;

    #[test]
    fn role_names_are_redis_states() {
        let names: Vec<_> = [Connect, Connecting, Handshake, Transfer, Connected]
            .iter()
            .map(|p| p.role_name())
            .collect();
        assert_eq!(
            names,
            ["connect", "connecting", "handshake", "sync", "connected"]
        );
        assert!(Connected.is_up() && !Transfer.is_up());
        assert!(Transfer.is_syncing());
        assert!(Connected.timeout_message().is_none());
        assert!(Handshake.timeout_message().is_some());
    }
}
