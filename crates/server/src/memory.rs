//! maxmemory: one global limit, eviction by every shard from its own keys.
//!
//! ```text
//!  alloc.rs: process-wide byte count ──► used_memory
//!                                           │  minus replica output buffers
//!                                           ▼  (not counted, as in Redis)
//!  client command on shard S ──► S.perform_evictions(): while over maxmemory,
//!                                S evicts its own best candidate (evict.rs)
//!                                and logs `DEL key` for the replicas
//!  every shard's cron ─────────► the same, so idle shards shed memory too
//! ```
//!
//! A command runs its eviction step on the shard that owns its keys, so shards
//! evict in proportion to the writes they receive. Commands that are not
//! single-shard (multi-shard writes, EXEC, queuing inside MULTI) run it on the
//! connection's own shard. When eviction cannot get under the limit (the
//! policy finds nothing to evict), `denyoom` commands get Redis's OOM error.
//! Replicas never evict (`replica-ignore-maxmemory yes`): they wait for their
//! master's DELs.

use crate::shard::Shard;
use crate::shared::Shared;
use shardis_commands::{flags, Command, CommandId};
use shardis_keyspace::evict::Policy;
use shardis_keyspace::DbIndex;
use shardis_protocol::Reply;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long one eviction step may run (Redis: 500 µs at the default
/// `maxmemory-eviction-tenacity`); the cron continues where it stopped.
const EVICTION_TIME_LIMIT: Duration = Duration::from_micros(500);

/// Outcome of an eviction step (Redis's `EVICT_OK/RUNNING/FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evict {
    /// Under the limit (or no limit, or a replica).
    Ok,
    /// Still over, but keys are being evicted (time budget reached).
    Running,
    /// Over the limit with nothing the policy may evict.
    Fail,
}

/// Memory counted against `maxmemory`: the allocator's count minus replica
/// output buffers (Redis's `freeMemoryGetNotCountedMemory`).
pub fn counted_memory(shared: &Shared) -> u64 {
    crate::alloc::used_memory().saturating_sub(shared.not_counted_memory.load(Ordering::Relaxed))
}

/// True if `cmd` is refused when memory cannot be freed (Redis's
/// `is_denyoom_command`, plus anything queued inside MULTI except the
/// commands that end it).
fn rejected_on_oom(cmd: &Command, in_multi: bool, exec_denyoom: bool) -> bool {
    use CommandId as C;
    if cmd.has(flags::DENYOOM) || (cmd.id == C::Exec && exec_denyoom) {
        return true;
    }
    in_multi && !matches!(cmd.id, C::Exec | C::Discard | C::Quit | C::Reset)
}

impl Shard {
    /// Redis's `performEvictions`, shared by the shards: over `maxmemory`,
    /// this shard evicts its own keys until the process is under the limit,
    /// the policy finds nothing, or the time budget is spent. A shard holding
    /// clearly less than its share of the evictable keys leaves the work to
    /// the others (their commands and crons), so eviction follows where the
    /// data is. `Fail` only when no shard has anything to evict.
    pub fn perform_evictions(&self) -> Evict {
        let max = self.shared.maxmemory.load(Ordering::Relaxed);
        if max == 0 || self.store.replica.get() || counted_memory(&self.shared) <= max {
            return Evict::Ok;
        }
        // Nothing changes the dataset during a client pause (Redis's
        // isSafeToPerformEvictions).
        if crate::limits::clients_paused(&self.shared) {
            return Evict::Ok;
        }
        self.store.refresh_eviction_config();
        if self.store.keyspace.borrow().eviction_config().policy == Policy::NoEviction {
            return Evict::Fail;
        }
        let mine = self.store.publish_evictable();
        let total: u64 = self
            .shared
            .stats
            .iter()
            .map(|c| c.evictable_keys.load(Ordering::Relaxed))
            .sum();
        if total == 0 {
            return Evict::Fail;
        }
        // Lean: below 90% of the average share.
        if mine * 10 * self.shards() as u64 <= total * 9 {
            return Evict::Running;
        }
        // Keys captured by a running snapshot free nothing until it ends:
        // evict at the pace of commands then, not a whole time budget each.
        let budget = if self.shared.snapshot_running.load(Ordering::Relaxed) {
            1
        } else {
            usize::MAX
        };
        let start = Instant::now();
        let shared = self.shared.clone();
        let status = self.with_ctx(DbIndex(0), |ks, ctx| {
            let mut evicted = 0usize;
            loop {
                if counted_memory(&shared) <= max {
                    return Evict::Ok;
                }
                if !ks.evict_one(ctx) {
                    return Evict::Running;
                }
                evicted += 1;
                if evicted >= budget
                    || (evicted.is_multiple_of(16) && start.elapsed() > EVICTION_TIME_LIMIT)
                {
                    return Evict::Running;
                }
            }
        });
        let left = self.store.publish_evictable();
        if status == Evict::Running && left == 0 && total == mine {
            // This shard held all the evictable keys and they are gone.
            return Evict::Fail;
        }
        status
    }

    /// The maxmemory step before a client command: evicts, and returns the
    /// OOM error if `cmd` must be refused.
    pub fn oom_check(&self, cmd: &Command, in_multi: bool) -> Option<Reply> {
        self.oom_check_exec(cmd, in_multi, false)
    }

    /// [`Shard::oom_check`] where EXEC counts as `denyoom` if its queue holds
    /// a `denyoom` command (`exec_denyoom`).
    pub fn oom_check_exec(
        &self,
        cmd: &Command,
        in_multi: bool,
        exec_denyoom: bool,
    ) -> Option<Reply> {
        if self.shared.maxmemory.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let failed = self.perform_evictions() == Evict::Fail;
        (failed && rejected_on_oom(cmd, in_multi, exec_denyoom))
            .then(|| Reply::error(crate::errors::OOM))
    }
}

/// After CONFIG SET maxmemory: Redis's warning when the new limit is below
/// the current usage, then an eviction step here (the other shards' crons
/// follow within a tick).
pub fn maxmemory_set(shard: &Shard) {
    let max = shard.shared.maxmemory.load(Ordering::Relaxed);
    if max == 0 {
        return;
    }
    let used = counted_memory(&shard.shared);
    if max < used {
        crate::log!(
            Warning,
            "WARNING: the new maxmemory value set via CONFIG SET ({}) is smaller than the current memory usage ({}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy.",
            max,
            used
        );
    }
    shard.perform_evictions();
}
