//! Replication logic with no I/O: the merged stream, the backlog, the PSYNC
//! accept/refuse decision, and the timing rules for replicas (`policy`).
//!
//! Where it sits: every shard appends [`LogEntry`]s to its own write log. The
//! replication role (one executor) feeds those logs into a [`Merger`], which
//! emits ONE Redis command stream with ONE offset; the bytes go into the
//! [`Backlog`] (for PSYNC) and to every replica socket. The server crate owns the
//! sockets and the timing; everything here is plain data in, bytes out.
//!
//! ```text
//!  shard 0 log ─┐
//!  shard 1 log ─┼─► Merger ──► RESP bytes ──► Backlog (PSYNC +CONTINUE)
//!  shard N log ─┘     ▲                  └──► replicas (shared Bytes)
//!   coordinator ──────┘ TxEffects (multi-shard commands, emitted once)
//! ```
//!
//! It may depend on `shardis-base` only (the write record, identities, RESP encoding).
//! Sans-IO: time comes in as an argument.

pub mod backlog;
pub mod link;
pub mod merge;
pub mod policy;
pub mod psync;

pub use backlog::Backlog;
pub use link::{LinkError, LinkPhase};
pub use merge::{log_effect, LogEntry, Merger, TxId};
pub use policy::{BacklogVerdict, OutputLimit};
pub use psync::{decide, PsyncDecision, ReplId, ReplIds};

pub use shardis_base::encode_command;
