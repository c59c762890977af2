//! One executor's write log: the entries its shard's runs left for the
//! replication role (effects and transaction markers), and the signal that
//! wakes whoever takes them (the pump on the home shard, the shipper on the
//! others, both in `repl.rs`, above).
//!
//! It may use the process-wide counters and the replication crate's entry
//! types, nothing else of the server.

use crate::shared::ShardCounters;
use shardis_keyspace::Effect;
use shardis_replication::LogEntry;
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::Duration;

/// A shard's write log (empty and off while nothing replicates: no replica,
/// no AOF, or this server is a replica).
#[derive(Default)]
pub struct WriteLog {
    /// The entries waiting to be taken (None: replication is off).
    pub entries: RefCell<Option<Vec<LogEntry>>>,
    /// Wakes the replication pump or shipper when something is logged.
    pub signal: PumpSignal,
}

impl WriteLog {
    /// True if replication consumes this log.
    pub fn on(&self) -> bool {
        self.entries.borrow().is_some()
    }

    /// Appends effects if replication consumes the log, counting them in
    /// `counters.logged` and waking the taker.
    pub fn effects(&self, counters: &ShardCounters, effects: impl Iterator<Item = Effect>) {
        if let Some(log) = self.entries.borrow_mut().as_mut() {
            let mut n = 0;
            for e in effects {
                shardis_replication::log_effect(log, &e);
                n += 1;
            }
            if n > 0 {
                ShardCounters::add_release(&counters.logged, n);
                self.signal.kick();
            }
        }
    }

    /// Appends a transaction marker if replication consumes the log.
    pub fn marker(&self, counters: &ShardCounters, entry: LogEntry) {
        if let Some(log) = self.entries.borrow_mut().as_mut() {
            log.push(entry);
            ShardCounters::add_release(&counters.logged, 1);
            self.signal.kick();
        }
    }

    /// Takes what the log holds (nothing when it is off).
    pub fn take(&self) -> Vec<LogEntry> {
        self.entries
            .borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// Wake-on-write. On shard 0 it wakes the pump; on every other shard, that
/// shard's [`crate::repl::shipper`]. `requested` is the newest ship request from shard 0
/// ([`crate::repl::settle`]) the shard has seen.
#[derive(Default)]
pub struct PumpSignal {
    due: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    pub(crate) requested: Cell<u64>,
    /// Bumped on every shard each time its write log is dropped (turning
    /// into a replica), so a shipment still on its way from before is
    /// told from one made after.
    pub(crate) epoch: Cell<u64>,
}

impl PumpSignal {
    /// The write log was dropped: later shipments belong to a new epoch.
    pub fn new_log_epoch(&self) {
        self.epoch.set(self.epoch.get() + 1);
    }

    /// There is work: wakes the pump (shard 0) or the shipper.
    pub fn kick(&self) {
        self.due.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until kicked.
    pub(crate) async fn kicked(&self) {
        std::future::poll_fn(|cx| {
            if self.due.replace(false) {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until kicked or `period` passed.
    pub(crate) async fn wait(&self, period: Duration) {
        futures_lite::future::or(self.kicked(), async {
            glommio::timer::sleep(period).await;
        })
        .await;
        self.due.set(false);
    }
}
