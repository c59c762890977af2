//! The RESP wire codec, with no I/O.
//!
//! Where it sits: the server's connection tasks feed socket bytes into a
//! [`RequestDecoder`] and get owned argument vectors back; command code produces
//! [`Reply`] values that [`Reply::encode`] writes in RESP2 or RESP3. Nothing here
//! knows about sockets, shards or commands.
//!
//! # Layout
//! - [`decode`]: requests (multibulk and inline), with Redis's limits and its exact
//!   `Protocol error` texts.
//! - [`reply`]: the reply value and its RESP2/RESP3 encoding.
//!
//! It may depend on nothing of shardis's own. Sans-IO.

pub mod decode;
pub mod reply;

pub use decode::{DecodeLimits, ProtocolError, RequestDecoder};
pub use reply::{Protocol, Reply};
