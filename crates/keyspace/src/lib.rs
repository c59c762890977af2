//! One shard's keyspace: the databases it owns and every command that runs on
//! them, with no I/O.
//!
//! Where it sits: each executor in the server owns one [`Keyspace`] (`!Sync`, never
//! shared). The server routes a command to the shard that owns its keys and calls
//! [`Keyspace::execute`] there; the reply goes back to the client and the
//! command's *effect* (what Redis would propagate, see [`Effect`]) is appended to
//! [`ExecContext::effects`] for the shard's write log. Commands whose keys live on
//! several shards are run by the server on a temporary keyspace assembled from
//! owned copies of the entries ([`Keyspace::clone_entry`], [`Keyspace::put_entry`]),
//! so every command here can assume all its keys are local.
//!
//! Time comes in as `now_ms` (Unix milliseconds), so tests control the clock.
