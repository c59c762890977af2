//! ACL users, rules and permission checks, as Redis 7.0.15 has them.
//!
//! Where it sits: a plain library (no I/O, no clock). The server keeps one
//! [`Users`] set in an `Arc` that it swaps on every change (ACL SETUSER,
//! DELUSER, LOAD, `requirepass`); connections cache the `Arc<User>` they
//! authenticated as and call [`User::check`] before running a command, so the
//! data path takes no lock.
//!
//! ```text
//!  ACL SETUSER ──► Users (copy, apply, swap Arc) ──epoch──► conn: Arc<User>
//!                                                            │ check(cmd, argv)
//!                                                            ▼
//!                                                  Ok / Denied::{Command,Key,Channel}
//! ```
//!
//! # Layout
//! - [`table`]: every Redis command and subcommand with its ACL categories
//!   and key specs (the command table's rows, `shardis-commands`), key and
//!   channel extraction.
//! - [`user`]: one user: modifiers (`on`, `>pass`, `~pattern`, `+@read` …),
//!   checks, and the `ACL LIST`/`GETUSER` description.
//! - [`users`]: the user set, all-or-nothing SETUSER, the ACL file format.
//! - [`log`]: ACL LOG entries and grouping.
//!
//! It may depend on `shardis-commands` (categories and key specs of every Redis command)
//! and `shardis-base` (glob matching, error texts), nothing else of shardis's own. Sans-IO.

pub mod log;
pub mod table;
pub mod user;
pub mod users;

pub use log::{Context, Entry, Log, Reason};
pub use user::{hash_password, Denied, RuleError, User};
pub use users::Users;

#[cfg(test)]
mod tests;
