//! The PSYNC decision (Redis 7.0 `masterTryPartialResynchronization`): a small
//! function of the request, the two replication ids and the backlog window.

use crate::backlog::Backlog;
pub use shardis_base::ReplId;

/// The master's replication identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplIds {
    /// `master_replid`.
    pub replid: ReplId,
    /// `master_replid2`: the previous id (after a promotion), or 40 zeros.
    pub replid2: ReplId,
    /// `second_repl_offset`: up to which offset `replid2` is valid (-1 if none).
    pub second_offset: i64,
}

impl ReplIds {
    /// A fresh identity with no history.
    pub fn new(replid: ReplId) -> ReplIds {
        ReplIds {
            replid,
            replid2: ReplId::none(),
            second_offset: -1,
        }
    }

    /// Promotion (REPLICAOF NO ONE): the old id becomes id2, valid up to
    /// `master_offset + 1`, so replicas of the old master can continue.
    pub fn shift(&mut self, new_replid: ReplId, master_offset: i64) {
        self.replid2 = std::mem::replace(&mut self.replid, new_replid);
        self.second_offset = master_offset + 1;
    }

    /// Forgets id2 (`clearReplicationId2`).
    pub fn clear_second(&mut self) {
        self.replid2 = ReplId::none();
        self.second_offset = -1;
    }
}

/// What to answer a `PSYNC <replid> <offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsyncDecision {
    /// `+CONTINUE <replid>` and stream from `offset`.
    Continue {
        /// First offset to send.
        offset: i64,
        /// Bytes of backlog that will be sent.
        backlog_len: i64,
    },
    /// `+FULLRESYNC`; `reason` is the log line Redis writes (None for `PSYNC ? -1`).
    FullResync {
        /// Redis's log text explaining why.
        reason: Option<String>,
    },
}

/// Decides a PSYNC request from a replica named `replica` (for log texts).
pub fn decide(
    ids: &ReplIds,
    backlog: Option<&Backlog>,
    req_replid: &str,
    req_offset: i64,
    replica: &str,
) -> PsyncDecision {
    let same_id = ids.replid.is(req_replid);
    let old_id_ok = ids.replid2.is(req_replid) && req_offset <= ids.second_offset;
    if !same_id && !old_id_ok {
        let reason = if req_replid.starts_with('?') {
            format!("Full resync requested by replica {replica}")
        } else if !ids.replid2.is(req_replid) {
            format!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are '{}' and '{}')",
                req_replid, ids.replid, ids.replid2
            )
        } else {
            format!(
                "Partial resynchronization not accepted: Requested offset for second ID was {}, but I can reply up to {}",
                req_offset, ids.second_offset
            )
        };
        return PsyncDecision::FullResync {
            reason: Some(reason),
        };
    }
    match backlog {
        Some(b) if b.can_serve(req_offset) => PsyncDecision::Continue {
            offset: req_offset,
            backlog_len: b.master_offset() - req_offset + 1,
        },
        _ => {
            let mut reason = format!(
                "Unable to partial resync with replica {replica} for lack of backlog (Replica request was: {req_offset})."
            );
            if backlog.is_some_and(|b| req_offset > b.master_offset()) {
                reason.push_str(&format!(
                    "\nWarning: replica {replica} tried to PSYNC with an offset that is greater than the master replication offset."
                ));
            }
            PsyncDecision::FullResync {
                reason: Some(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ids() -> ReplIds {
        ReplIds {
            replid: ReplId::from_text("a".repeat(40)),
            replid2: ReplId::from_text("b".repeat(40)),
            second_offset: 101,
        }
    }

    #[test]
    fn continue_within_backlog() {
        let mut b = Backlog::new(1024, 90);
        b.append(Bytes::from(vec![0u8; 20])); // offsets 91..=110
        assert_eq!(
            decide(&ids(), Some(&b), &"a".repeat(40), 100, "r"),
            PsyncDecision::Continue {
                offset: 100,
                backlog_len: 11
            }
        );
        assert_eq!(
            decide(&ids(), Some(&b), &"a".repeat(40), 111, "r"),
            PsyncDecision::Continue {
                offset: 111,
                backlog_len: 0
            }
        );
        // The old id is good up to second_offset.
        assert!(matches!(
            decide(&ids(), Some(&b), &"b".repeat(40), 101, "r"),
            PsyncDecision::Continue { .. }
        ));
    }

    #[test]
    fn refusals_log_like_redis() {
        let b = Backlog::new(1024, 0);
        let PsyncDecision::FullResync { reason: Some(r) } =
            decide(&ids(), Some(&b), &"c".repeat(40), 1, "r")
        else {
            panic!()
        };
        assert!(r.starts_with("Partial resynchronization not accepted: Replication ID mismatch (Replica asked for 'cccc"));
        let PsyncDecision::FullResync { reason: Some(r) } =
            decide(&ids(), Some(&b), &"b".repeat(40), 102, "r")
        else {
            panic!()
        };
        assert_eq!(r, "Partial resynchronization not accepted: Requested offset for second ID was 102, but I can reply up to 101");
        let PsyncDecision::FullResync { reason: Some(r) } = decide(&ids(), Some(&b), "?", -1, "r")
        else {
            panic!()
        };
        assert_eq!(r, "Full resync requested by replica r");
        let PsyncDecision::FullResync { reason: Some(r) } =
            decide(&ids(), None, &"a".repeat(40), 5, "r")
        else {
            panic!()
        };
        assert!(r.starts_with(
            "Unable to partial resync with replica r for lack of backlog (Replica request was: 5)."
        ));
    }

    #[test]
    fn promotion_keeps_old_id() {
        let mut i = ReplIds::new(ReplId::from_text("a".repeat(40)));
        i.shift(ReplId::from_text("n".repeat(40)), 500);
        assert_eq!(i.replid2.as_str(), "a".repeat(40));
        assert_eq!(i.second_offset, 501);
    }
}
