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

/// Why a replica's link to its master ended. [`LinkError::log_line`] is the
/// warning Redis logs for it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// REPLICAOF or a promotion replaced the link: nothing to log.
    Superseded,
    /// The master closed the streaming link (logged as it happened, as
    /// Redis's `freeClient` of its master logs it).
    StreamClosed,
    /// `repl-timeout` passed in silence during the handshake or the
    /// transfer: the phase names the timeout ([`LinkPhase::timeout_message`]).
    TimedOut,
    /// No data nor PING for `repl-timeout` while streaming.
    StreamTimedOut,
    /// The master closed the connection before the stream began.
    ConnectionLost,
    /// A socket error during the handshake or transfer (the OS's text).
    SyncSocket(String),
    /// The streaming socket could not be registered with the reactor.
    RegisterSocket(String),
    /// Writing `REPLCONF ACK` failed.
    AckWrite(String),
    /// PING was answered with an error.
    PingRefused(String),
    /// AUTH was answered with an error.
    AuthRefused(String),
    /// PSYNC's reply was neither `+FULLRESYNC` nor `+CONTINUE`.
    UnexpectedPsyncReply(String),
    /// The payload header did not start with `$`.
    BadPayloadHeader(String),
    /// The payload length was not a number.
    BadPayloadLength(String),
    /// The payload did not load (why).
    LoadFailed(String),
    /// The stream broke RESP.
    Protocol(String),
}

impl LinkError {
    /// The line Redis logs (as a warning) when the link ended so, in
    /// `phase`; None when there is nothing (more) to log.
    pub fn log_line(&self, phase: LinkPhase) -> Option<String> {
        Some(match self {
            LinkError::Superseded | LinkError::StreamClosed => return None,
            LinkError::TimedOut => return phase.timeout_message().map(str::to_string),
            LinkError::StreamTimedOut => "MASTER timeout: no data nor PING received...".into(),
            LinkError::ConnectionLost => "Connection with master lost.".into(),
            LinkError::SyncSocket(e) => format!("Error condition on socket for SYNC: {e}"),
            LinkError::RegisterSocket(e) => {
                format!("Error registering the master link's socket: {e}")
            }
            LinkError::AckWrite(e) => format!("Error writing ACK to MASTER: {e}"),
            LinkError::PingRefused(r) => format!("Error reply to PING from master: '{r}'"),
            LinkError::AuthRefused(r) => format!("Unable to AUTH to MASTER: {r}"),
            LinkError::UnexpectedPsyncReply(r) => {
                format!("Unexpected reply to PSYNC from master: {r}")
            }
            LinkError::BadPayloadHeader(h) => format!(
                "Bad protocol from MASTER, the first byte is not '$' (we received '{h}'), are you sure the host and port are right?"
            ),
            LinkError::BadPayloadLength(l) => format!("Bad RDB length from MASTER: {l}"),
            LinkError::LoadFailed(why) => {
                format!("Failed trying to load the MASTER synchronization DB from socket: {why}")
            }
            LinkError::Protocol(m) => format!("Protocol error from MASTER: {m}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::LinkPhase::*;
    use super::*;

    #[test]
    fn link_errors_log_redis_lines_and_timeouts_name_their_phase() {
        assert_eq!(LinkError::Superseded.log_line(Handshake), None);
        assert_eq!(LinkError::StreamClosed.log_line(Connected), None);
        assert_eq!(
            LinkError::TimedOut.log_line(Handshake).as_deref(),
            Some("Timeout connecting to the MASTER...")
        );
        assert!(LinkError::TimedOut
            .log_line(Transfer)
            .is_some_and(|l| l.starts_with("Timeout receiving bulk data from MASTER...")));
        assert_eq!(
            LinkError::AuthRefused("-WRONGPASS x".into())
                .log_line(Handshake)
                .as_deref(),
            Some("Unable to AUTH to MASTER: -WRONGPASS x")
        );
        assert_eq!(
            LinkError::LoadFailed("Connection with master lost.".into())
                .log_line(Transfer)
                .as_deref(),
            Some("Failed trying to load the MASTER synchronization DB from socket: Connection with master lost.")
        );
    }

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
