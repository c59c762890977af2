//! The error texts the keyspace replies with are shardis's one table,
//! [`shardis_base::errors`]; this module adds the step from a text to a reply.

use shardis_protocol::Reply;

pub use shardis_base::errors::*;

/// The reply for one of the table's texts.
pub fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}
