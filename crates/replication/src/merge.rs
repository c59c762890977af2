//! The merge of the per-shard write logs into one command stream.
//!
//! Shards own disjoint keys, so their logs may interleave freely as long as each
//! shard's own order is kept. Multi-shard write commands are the exception: they
//! must appear once, at a point consistent with every involved shard. Each
//! involved shard logs `Acquire(tx)` when the transaction's key locks are taken
//! there and `Release(tx)` when they are released; the coordinator hands the
//! transaction's effects over separately ([`Merger::tx_effects`]).
//!
//! Rule: a shard's log is consumed freely, except that it stops at `Release(tx)`
//! until `tx` is emitted; `tx` is emitted once every involved shard has passed
//! its `Acquire(tx)` and the effects have arrived. `Abort(tx)` withdraws a
//! transaction that some of its shards had acquired (each logs one). Between `Acquire` and
//! `Release` on a shard no other entry touches the transaction's keys, so any
//! point inside that window is correct for that shard.
//!
//! Why this cannot wedge: if `tx1` waits on a shard stopped at `Release(tx2)`
//! (before that shard's `Acquire(tx1)`), then tx2 released there before tx1
//! acquired there, so tx2 executed before tx1. A cycle of waits would need a
//! cycle in execution time, which cannot exist. That takes one rule of every
//! coordinator: a transaction's `Acquire`s are all logged before any of its
//! `Release`s. The one-message path (`multi::run`) keeps it: each shard of
//! its chain logs its `Acquire` before passing the chain on, and the last
//! shard acquires before anyone releases.
//! A snapshot for full sync is the same mechanism with every shard involved.

use crate::encode_command;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use shardis_base::{DbIndex, Effect};
use std::collections::VecDeque;

pub use shardis_base::TxId;

/// One entry of a shard's write log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    /// Commands to propagate as they are, all in `db`, already in RESP: a
    /// shard encodes its own writes on its own core (see [`log_effect`]), so
    /// the merging executor only copies bytes.
    Commands {
        /// The db the commands run in.
        db: DbIndex,
        /// The commands, RESP-encoded back to back.
        resp: BytesMut,
        /// How many commands `resp` holds.
        count: u64,
    },
    /// The shard took `tx`'s locks; `parts` shards are involved in all.
    Acquire {
        /// Transaction.
        tx: TxId,
        /// Number of involved shards.
        parts: usize,
    },
    /// The shard released `tx`'s locks.
    Release {
        /// Transaction.
        tx: TxId,
    },
    /// The shard logged `Acquire(tx)` but `tx` did not go ahead: another
    /// shard refused its locks, so it changed nothing anywhere and logs
    /// nothing more (a coordinator's try that falls back to ordered locking).
    Abort {
        /// Transaction.
        tx: TxId,
    },
}

#[derive(Debug, Default)]
struct TxState {
    parts: usize,
    acquired: usize,
    released: usize,
    effects: Option<Vec<Effect>>,
    emitted: bool,
    /// Called back when emitted (e.g. the snapshot's stream offset).
    marker: bool,
}

/// What [`Merger::drain`] produced.
#[derive(Debug, Default)]
pub struct Drained {
    /// Stream bytes, in order.
    pub bytes: Bytes,
    /// Marker transactions emitted, with the stream length at their point
    /// (relative to the start of `bytes`).
    pub markers: Vec<(TxId, usize)>,
    /// Byte ranges of `bytes` that belong to replication only (PING,
    /// `REPLCONF GETACK`, from [`Merger::emit_raw`]): the append-only file
    /// skips them, as Redis feeds them to replicas and never to the AOF.
    pub raw: Vec<std::ops::Range<usize>>,
}

impl Drained {
    /// `range` of the bytes without the [`Drained::raw`] ranges: what the
    /// append-only file gets.
    pub fn without_raw(&self, range: std::ops::Range<usize>) -> Bytes {
        if self
            .raw
            .iter()
            .all(|r| r.end <= range.start || r.start >= range.end)
        {
            return self.bytes.slice(range);
        }
        let mut out = BytesMut::with_capacity(range.len());
        let mut at = range.start;
        for r in &self.raw {
            let (s, e) = (r.start.max(range.start), r.end.min(range.end));
            if s < e {
                out.extend_from_slice(&self.bytes[at..s]);
                at = e;
            }
        }
        out.extend_from_slice(&self.bytes[at..range.end]);
        out.freeze()
    }
}

impl LogEntry {
    /// The log entries this stands for: every command counts, and so does
    /// each marker.
    fn weight(&self) -> usize {
        match self {
            LogEntry::Commands { count, .. } => *count as usize,
            _ => 1,
        }
    }
}

/// Appends `e` to a shard's write log: to the last entry when that holds
/// commands of the same db, else as a new entry.
pub fn log_effect(log: &mut Vec<LogEntry>, e: &Effect) {
    if let Some(LogEntry::Commands { db, resp, count }) = log.last_mut() {
        if *db == e.db {
            encode_command(&e.args, resp);
            *count += 1;
            return;
        }
    }
    let mut resp = BytesMut::with_capacity(1024);
    encode_command(&e.args, &mut resp);
    log.push(LogEntry::Commands {
        db: e.db,
        resp,
        count: 1,
    });
}

/// Merges shard logs into one RESP stream.
#[derive(Debug)]
pub struct Merger {
    queues: Vec<VecDeque<LogEntry>>,
    txs: HashMap<TxId, TxState>,
    /// The db the stream has SELECTed, if any.
    db: Option<DbIndex>,
    out: BytesMut,
    markers: Vec<(TxId, usize)>,
    raw: Vec<std::ops::Range<usize>>,
}

impl Merger {
    /// A merger for `shards` logs.
    pub fn new(shards: usize) -> Merger {
        Merger {
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            txs: HashMap::new(),
            db: None,
            out: BytesMut::new(),
            markers: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// Appends entries from shard `shard`'s log, in its order.
    pub fn push(&mut self, shard: usize, entries: impl IntoIterator<Item = LogEntry>) {
        self.queues[shard].extend(entries);
    }

    /// The effects of transaction `tx` (empty if it changed nothing).
    pub fn tx_effects(&mut self, tx: TxId, effects: Vec<Effect>) {
        self.txs.entry(tx).or_default().effects = Some(effects);
    }

    /// Declares `tx` a marker with no effects of its own (a snapshot point): its
    /// stream position is reported by [`Merger::drain`].
    pub fn marker(&mut self, tx: TxId) {
        let t = self.txs.entry(tx).or_default();
        t.effects = Some(Vec::new());
        t.marker = true;
    }

    /// Forces a SELECT before the next command (a new replica attached).
    pub fn force_select(&mut self) {
        self.db = None;
    }

    /// Appends a command that belongs to no db (PING, REPLCONF GETACK).
    pub fn emit_raw(&mut self, args: &[&[u8]]) {
        let start = self.out.len();
        encode_command(args, &mut self.out);
        self.raw.push(start..self.out.len());
    }

    /// Commands and markers of shard `shard`'s log collected but not emitted
    /// yet (held back behind a transaction's `Release`).
    pub fn queued_on(&self, shard: usize) -> usize {
        self.queues[shard].iter().map(LogEntry::weight).sum()
    }

    /// Commands and markers waiting in the logs.
    pub fn queued(&self) -> usize {
        (0..self.queues.len()).map(|s| self.queued_on(s)).sum()
    }

    fn select(&mut self, db: DbIndex) {
        if self.db != Some(db) {
            let db_text = db.to_string();
            encode_command(&[b"SELECT".as_slice(), db_text.as_bytes()], &mut self.out);
            self.db = Some(db);
        }
    }

    fn emit(&mut self, e: &Effect) {
        self.select(e.db);
        encode_command(&e.args, &mut self.out);
    }

    /// Merges as far as the logs allow and returns the stream bytes produced.
    pub fn drain(&mut self) -> Drained {
        loop {
            let mut progress = false;
            for s in 0..self.queues.len() {
                while let Some(front) = self.queues[s].front() {
                    match front {
                        LogEntry::Commands { .. } => {
                            if let Some(LogEntry::Commands { db, resp, .. }) =
                                self.queues[s].pop_front()
                            {
                                self.select(db);
                                self.out.extend_from_slice(&resp);
                            }
                        }
                        LogEntry::Acquire { tx, parts } => {
                            let t = self.txs.entry(*tx).or_default();
                            t.parts = *parts;
                            t.acquired += 1;
                            self.queues[s].pop_front();
                        }
                        LogEntry::Abort { tx } => {
                            self.txs.remove(tx);
                            self.queues[s].pop_front();
                        }
                        LogEntry::Release { tx } => {
                            let tx = *tx;
                            let t = self.txs.entry(tx).or_default();
                            if !t.emitted {
                                break;
                            }
                            t.released += 1;
                            if t.released >= t.parts {
                                self.txs.remove(&tx);
                            }
                            self.queues[s].pop_front();
                        }
                    }
                    progress = true;
                }
            }
            let ready: Vec<TxId> = self
                .txs
                .iter()
                .filter(|(_, t)| {
                    !t.emitted && t.parts > 0 && t.acquired >= t.parts && t.effects.is_some()
                })
                .map(|(&id, _)| id)
                .collect();
            let mut ready = ready;
            ready.sort_unstable();
            for id in ready {
                let (effects, marker) = {
                    let t = self.txs.get_mut(&id).expect("ready tx");
                    t.emitted = true;
                    (t.effects.take().unwrap_or_default(), t.marker)
                };
                if marker {
                    self.markers.push((id, self.out.len()));
                    // A replica starting here knows no selected db.
                    self.db = None;
                }
                match effects.len() {
                    0 => {}
                    1 => self.emit(&effects[0]),
                    _ => {
                        // MULTI in the first effect's db, so a SELECT goes
                        // before it, as Redis 7.0's propagatePendingCommands
                        // sends a transaction.
                        self.select(effects[0].db);
                        encode_command(&[b"MULTI".as_slice()], &mut self.out);
                        for e in &effects {
                            self.emit(e);
                        }
                        encode_command(&[b"EXEC".as_slice()], &mut self.out);
                    }
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
        Drained {
            bytes: self.out.split().freeze(),
            markers: std::mem::take(&mut self.markers),
            raw: std::mem::take(&mut self.raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(db: usize, args: &[&str]) -> LogEntry {
        let db = DbIndex(db);
        let mut log = Vec::new();
        log_effect(
            &mut log,
            &Effect {
                db,
                args: args
                    .iter()
                    .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                    .collect(),
            },
        );
        log.pop().unwrap()
    }

    #[test]
    fn a_shards_commands_in_one_db_share_one_entry() {
        let e = |db: usize, w: &str| Effect {
            db: DbIndex(db),
            args: vec![Bytes::copy_from_slice(w.as_bytes())],
        };
        let mut log = Vec::new();
        for x in [e(0, "A"), e(0, "B"), e(1, "C"), e(0, "D")] {
            log_effect(&mut log, &x);
        }
        assert_eq!(log.len(), 3);
        let mut m = Merger::new(1);
        m.push(0, log);
        assert_eq!(m.queued_on(0), 4);
        let d = m.drain();
        assert_eq!(m.queued(), 0);
        assert_eq!(
            text(&d.bytes),
            "*2 $6 SELECT $1 0 *1 $1 A *1 $1 B *2 $6 SELECT $1 1 *1 $1 C *2 $6 SELECT $1 0 *1 $1 D "
        );
    }

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).replace("\r\n", " ")
    }

    #[test]
    fn raw_commands_are_marked_for_the_aof_to_skip() {
        let mut m = Merger::new(1);
        m.push(0, [eff(0, &["SET", "a", "1"])]);
        m.emit_raw(&[b"PING"]);
        m.push(0, [eff(0, &["DEL", "a"])]);
        let d = m.drain();
        assert_eq!(d.raw.len(), 1);
        assert_eq!(
            text(&d.without_raw(0..d.bytes.len())),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 *2 $3 DEL $1 a "
        );
        assert!(text(&d.bytes).contains("PING"));
    }

    #[test]
    fn selects_and_interleaves() {
        let mut m = Merger::new(2);
        m.push(0, [eff(0, &["SET", "a", "1"])]);
        m.push(1, [eff(1, &["SET", "b", "2"]), eff(1, &["DEL", "b"])]);
        let d = m.drain();
        assert_eq!(
            text(&d.bytes),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 *2 $6 SELECT $1 1 *3 $3 SET $1 b $1 2 *2 $3 DEL $1 b "
        );
    }

    #[test]
    fn transaction_waits_for_every_part_and_is_emitted_once() {
        let mut m = Merger::new(2);
        m.push(
            0,
            [
                eff(0, &["SET", "x", "before"]),
                LogEntry::Acquire {
                    tx: TxId(7),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(7) },
                eff(0, &["SET", "x", "after"]),
            ],
        );
        let d = m.drain();
        // Shard 1 has not acquired yet: the tx and what follows it on shard 0 wait.
        assert_eq!(
            text(&d.bytes),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 x $6 before "
        );
        m.push(
            1,
            [
                LogEntry::Acquire {
                    tx: TxId(7),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(7) },
            ],
        );
        assert!(m.drain().bytes.is_empty(), "effects not yet known");
        m.tx_effects(
            TxId(7),
            vec![Effect {
                db: DbIndex(0),
                args: vec![
                    Bytes::from("MSET"),
                    Bytes::from("x"),
                    Bytes::from("1"),
                    Bytes::from("y"),
                    Bytes::from("2"),
                ],
            }],
        );
        let d = m.drain();
        assert_eq!(
            text(&d.bytes),
            "*5 $4 MSET $1 x $1 1 $1 y $1 2 *3 $3 SET $1 x $5 after "
        );
        assert!(m.txs.is_empty());
    }

    #[test]
    fn an_aborted_transaction_is_forgotten() {
        let mut m = Merger::new(2);
        m.push(
            0,
            [
                LogEntry::Acquire {
                    tx: TxId(4),
                    parts: 2,
                },
                LogEntry::Abort { tx: TxId(4) },
                eff(0, &["SET", "a", "1"]),
            ],
        );
        m.push(1, [eff(0, &["SET", "b", "1"])]);
        let d = m.drain();
        assert_eq!(m.queued(), 0);
        assert!(m.txs.is_empty());
        assert_eq!(
            text(&d.bytes),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 *3 $3 SET $1 b $1 1 "
        );
    }

    #[test]
    fn a_chain_aborted_on_two_of_three_shards_is_forgotten() {
        // Shards 0 and 1 acquired tx 7, shard 2 refused: both log Abort,
        // in either order against each other's Acquire.
        let acquire = LogEntry::Acquire {
            tx: TxId(7),
            parts: 3,
        };
        for shard_1_first in [false, true] {
            let mut m = Merger::new(3);
            let first = [acquire.clone(), LogEntry::Abort { tx: TxId(7) }];
            if shard_1_first {
                m.push(1, first.clone());
                m.drain();
                m.push(0, first);
            } else {
                m.push(0, first.clone());
                m.push(1, first);
            }
            m.push(2, [eff(0, &["SET", "c", "1"])]);
            m.drain();
            assert_eq!(m.queued(), 0);
            assert!(m.txs.is_empty());
        }
    }

    #[test]
    fn one_message_transactions_crossing_on_two_shards_do_not_wedge() {
        // tx 1 is coordinated by shard 0, tx 2 by shard 1, keys disjoint:
        // each coordinator acquired at home, then the other shard acquired,
        // ran and released both parts' remote halves in one message.
        let mut m = Merger::new(2);
        m.push(
            0,
            [
                LogEntry::Acquire {
                    tx: TxId(1),
                    parts: 2,
                },
                LogEntry::Acquire {
                    tx: TxId(2),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(2) },
                LogEntry::Release { tx: TxId(1) },
            ],
        );
        m.push(
            1,
            [
                LogEntry::Acquire {
                    tx: TxId(2),
                    parts: 2,
                },
                LogEntry::Acquire {
                    tx: TxId(1),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(1) },
                LogEntry::Release { tx: TxId(2) },
            ],
        );
        for tx in 1..=2 {
            m.tx_effects(
                TxId(tx),
                vec![Effect {
                    db: DbIndex(0),
                    args: vec![Bytes::from(format!("T{tx}"))],
                }],
            );
        }
        let d = m.drain();
        assert_eq!(m.queued(), 0);
        assert_eq!(text(&d.bytes), "*2 $6 SELECT $1 0 *1 $2 T1 *1 $2 T2 ");
    }

    #[test]
    fn crossing_transactions_do_not_wedge() {
        // tx1 on shards 0,1; tx2 on shards 1,2; tx3 on shards 2,0, with logs that
        // physically interleave as execution allows (tx1 < tx2 < tx3 in time).
        let mut m = Merger::new(3);
        m.push(
            0,
            [
                LogEntry::Acquire {
                    tx: TxId(1),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(1) },
                LogEntry::Acquire {
                    tx: TxId(3),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(3) },
            ],
        );
        m.push(
            1,
            [
                LogEntry::Acquire {
                    tx: TxId(1),
                    parts: 2,
                },
                LogEntry::Acquire {
                    tx: TxId(2),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(1) },
                LogEntry::Release { tx: TxId(2) },
            ],
        );
        m.push(
            2,
            [
                LogEntry::Acquire {
                    tx: TxId(2),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(2) },
                LogEntry::Acquire {
                    tx: TxId(3),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(3) },
            ],
        );
        for tx in 1..=3 {
            m.tx_effects(
                TxId(tx),
                vec![Effect {
                    db: DbIndex(0),
                    args: vec![Bytes::from(format!("T{tx}"))],
                }],
            );
        }
        let d = m.drain();
        assert_eq!(m.queued(), 0);
        assert_eq!(
            text(&d.bytes),
            "*2 $6 SELECT $1 0 *1 $2 T1 *1 $2 T2 *1 $2 T3 "
        );
    }

    #[test]
    fn markers_report_their_position() {
        let mut m = Merger::new(2);
        m.marker(TxId(9));
        m.push(
            0,
            [
                eff(0, &["SET", "a", "1"]),
                LogEntry::Acquire {
                    tx: TxId(9),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(9) },
                eff(0, &["SET", "a", "2"]),
            ],
        );
        m.push(
            1,
            [
                LogEntry::Acquire {
                    tx: TxId(9),
                    parts: 2,
                },
                LogEntry::Release { tx: TxId(9) },
            ],
        );
        let d = m.drain();
        let (id, pos) = d.markers[0];
        assert_eq!(id, TxId(9));
        assert_eq!(
            text(&d.bytes.slice(..pos)),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 "
        );
    }
}
