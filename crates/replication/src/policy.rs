//! Redis's timing rules for a master's replicas, as plain functions of state
//! and time (replication.c's `replicationCron` and networking.c's
//! `checkClientOutputBufferLimits`). No clock is read here: the caller passes
//! `now`, so the rules are tested with made-up instants, and the server only
//! carries out the verdicts (closing a link, freeing the backlog, sending a
//! PING).

use std::time::{Duration, Instant};

/// `client-output-buffer-limit replica <hard> <soft> <soft-seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputLimit {
    /// Bytes at which the link is closed at once (0: none).
    pub hard: u64,
    /// Bytes that must not stay reached for longer than `soft_seconds` (0: none).
    pub soft: u64,
    /// How long the soft limit may stay reached.
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Whether a replica with `queued` bytes waiting must be closed.
    /// `soft_since` is when the soft limit was first seen reached, kept by the
    /// caller per replica; this updates it. As Redis: a limit is reached at
    /// `>=` its bytes, and the soft limit closes the link only once it has
    /// stayed reached for more than `soft_seconds` whole seconds.
    pub fn exceeded(&self, queued: u64, soft_since: &mut Option<Instant>, now: Instant) -> bool {
        let hard = self.hard > 0 && queued >= self.hard;
        let mut soft = self.soft > 0 && queued >= self.soft;
        if soft {
            match *soft_since {
                // The first time it is seen reached.
                None => {
                    *soft_since = Some(now);
                    soft = false;
                }
                Some(since) => {
                    if whole_seconds(now, since) <= self.soft_seconds {
                        soft = false;
                    }
                }
            }
        } else {
            *soft_since = None;
        }
        soft || hard
    }
}

/// What [`backlog_ttl`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacklogVerdict {
    /// Keep the backlog.
    Keep,
    /// Free it and start a new history (new replication id, no id2).
    Free,
}

/// `repl-backlog-ttl`: a master with no replica for more than `ttl` seconds
/// frees its backlog; a replica keeps it (PSYNC2), and 0 never frees it.
/// `no_replicas_since` is kept by the caller: set when the last replica
/// left, cleared while any is connected.
pub fn backlog_ttl(
    replicas: usize,
    no_replicas_since: &mut Option<Instant>,
    ttl_seconds: u64,
    is_replica: bool,
    has_backlog: bool,
    now: Instant,
) -> BacklogVerdict {
    if replicas > 0 {
        *no_replicas_since = None;
        return BacklogVerdict::Keep;
    }
    let since = *no_replicas_since.get_or_insert(now);
    if ttl_seconds == 0 || is_replica || !has_backlog {
        return BacklogVerdict::Keep;
    }
    if whole_seconds(now, since) > ttl_seconds {
        BacklogVerdict::Free
    } else {
        BacklogVerdict::Keep
    }
}

/// `repl-timeout` on the master's side: an online replica whose last
/// `REPLCONF ACK` is more than `timeout_seconds` old is disconnected.
pub fn replica_timed_out(last_ack: Instant, timeout_seconds: u64, now: Instant) -> bool {
    now.saturating_duration_since(last_ack) > Duration::from_secs(timeout_seconds)
}

/// `min-replicas-max-lag`: a replica counts as good while its last ACK is at
/// most `max_lag_seconds` whole seconds old.
pub fn replica_good(last_ack: Instant, max_lag_seconds: u64, now: Instant) -> bool {
    whole_seconds(now, last_ack) <= max_lag_seconds
}

/// `repl-ping-replica-period`: whether the master's stream is due a PING.
pub fn ping_due(last_ping: Instant, period_seconds: u64, now: Instant) -> bool {
    now.saturating_duration_since(last_ping) >= Duration::from_secs(period_seconds.max(1))
}

/// Whole seconds from `since` to `now` (Redis compares `server.unixtime`s).
fn whole_seconds(now: Instant, since: Instant) -> u64 {
    now.saturating_duration_since(since).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn hard_limit_closes_at_once_at_its_size() {
        let t0 = Instant::now();
        let l = OutputLimit {
            hard: 100,
            soft: 0,
            soft_seconds: 0,
        };
        let mut since = None;
        assert!(!l.exceeded(99, &mut since, t0));
        assert!(l.exceeded(100, &mut since, t0));
        assert_eq!(since, None);
    }

    #[test]
    fn soft_limit_must_stay_reached_longer_than_its_seconds() {
        let t0 = Instant::now();
        let l = OutputLimit {
            hard: 0,
            soft: 50,
            soft_seconds: 2,
        };
        let mut since = None;
        assert!(!l.exceeded(50, &mut since, t0), "first seen");
        assert_eq!(since, Some(t0));
        assert!(
            !l.exceeded(60, &mut since, at(t0, 2_999)),
            "2 s: not more than 2"
        );
        assert!(l.exceeded(60, &mut since, at(t0, 3_000)));
        // Dropping below resets the clock.
        let mut since = Some(t0);
        assert!(!l.exceeded(49, &mut since, at(t0, 5_000)));
        assert_eq!(since, None);
        assert!(!l.exceeded(55, &mut since, at(t0, 6_000)));
        assert_eq!(since, Some(at(t0, 6_000)));
    }

    #[test]
    fn zero_soft_seconds_closes_on_the_second_sighting_a_second_later() {
        let t0 = Instant::now();
        let l = OutputLimit {
            hard: 0,
            soft: 10,
            soft_seconds: 0,
        };
        let mut since = None;
        assert!(!l.exceeded(10, &mut since, t0));
        assert!(!l.exceeded(10, &mut since, at(t0, 999)));
        assert!(l.exceeded(10, &mut since, at(t0, 1_000)));
    }

    #[test]
    fn backlog_is_freed_only_past_the_ttl_without_replicas_on_a_master() {
        let t0 = Instant::now();
        let mut since = None;
        assert_eq!(
            backlog_ttl(1, &mut since, 10, false, true, t0),
            BacklogVerdict::Keep
        );
        assert_eq!(since, None);
        assert_eq!(
            backlog_ttl(0, &mut since, 10, false, true, t0),
            BacklogVerdict::Keep
        );
        assert_eq!(since, Some(t0));
        assert_eq!(
            backlog_ttl(0, &mut since, 10, false, true, at(t0, 10_999)),
            BacklogVerdict::Keep
        );
        assert_eq!(
            backlog_ttl(0, &mut since, 10, false, true, at(t0, 11_000)),
            BacklogVerdict::Free
        );
        // A replica keeps its backlog; 0 never frees; no backlog, nothing to free.
        for (ttl, replica, has) in [(10, true, true), (0, false, true), (10, false, false)] {
            let mut since = Some(t0);
            assert_eq!(
                backlog_ttl(0, &mut since, ttl, replica, has, at(t0, 60_000)),
                BacklogVerdict::Keep
            );
        }
    }

    #[test]
    fn timeouts_lag_and_ping_period() {
        let t0 = Instant::now();
        assert!(!replica_timed_out(t0, 60, at(t0, 60_000)));
        assert!(replica_timed_out(t0, 60, at(t0, 60_001)));
        assert!(replica_good(t0, 10, at(t0, 10_999)));
        assert!(!replica_good(t0, 10, at(t0, 11_000)));
        assert!(!ping_due(t0, 10, at(t0, 9_999)));
        assert!(ping_due(t0, 10, at(t0, 10_000)));
        // A period of 0 is treated as 1 s (Redis refuses 0 at CONFIG SET).
        assert!(ping_due(t0, 0, at(t0, 1_000)));
        // An instant before `since` (clock taken on another thread) is 0 s.
        assert!(replica_good(at(t0, 5), 0, t0));
    }
}
