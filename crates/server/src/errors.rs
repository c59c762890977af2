//! The error texts the server replies with: shardis's one table,
//! [`shardis_base::errors`], under the server's name for it.

pub use shardis_base::errors::*;
