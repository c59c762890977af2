//! The Redis RDB file format, version 10 (Redis 7.0), with no I/O.
//!
//! Where it sits: the server's snapshot code walks each shard's keys, converts
//! them to [`RdbValue`]s and feeds them to an [`RdbWriter`], which appends bytes
//! to a buffer the server flushes to a file or a replica socket between chunks.
//! On the other side, a loading server or a replica hands a received file to
//! [`RdbReader`] (or [`read_rdb`]) and converts the yielded [`RdbEntry`]s into
//! keyspace objects. DUMP/RESTORE use [`dump_payload`] and [`parse_dump_payload`].
//!
//! ```text
//!  shard ──values──► RdbWriter ──chunks──► server ──► file / replica socket
//!  file / master ──bytes──► server ──► RdbReader ──entries──► shards
//! ```
//!
//! The writer emits only the basic object types (string 0, list 1, set 2, hash 4,
//! zset_2 5, stream 19), which every Redis from 6.2 (streams: 7.0) loads. The
//! reader accepts everything Redis 7.0 and 7.2 write, including the packed
//! encodings.
//!
//! # Layout
//! - [`writer`]: the RDB writer and DUMP payload encoding.
//! - [`reader`]: the RDB reader and DUMP payload decoding.
//! - [`crc64`]: Redis's CRC-64/Jones.
//! - [`lzf`]: Redis's LZF compressor and decompressor.
//! - `packed`: ziplist, listpack, intset and zipmap blobs.
//!
//! It may depend on `shardis-base` only (for Redis's error texts). Sans-IO.

pub mod crc64;
mod error;
pub mod feed;
pub mod lzf;
mod packed;
pub mod reader;
pub mod writer;

use bytes::Bytes;

pub use error::{RdbError, Reason};
pub use feed::RdbFeed;
pub use reader::{
    parse_dump_payload, parse_functions_payload, read_rdb, AuxInfo, RdbFile, RdbItem, RdbReader,
};
pub use writer::{dump_payload, functions_payload, HeaderAux, RdbWriter, ReplAux, WriterOptions};

/// The RDB version this crate writes (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// The `redis-ver` aux field we write.
///
/// Tools that read RDB files (and Redis itself, in its load log) look at
/// `redis-ver` to know which dialect produced the file. We emit exactly the
/// Redis 7.0 format, so we claim the Redis version whose output we match byte
/// for byte, rather than a shardis version no tool knows.
pub const REDIS_VER: &str = "7.0.15";

/// A value as stored in an RDB file, independent of any in-memory encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    /// A string (any bytes).
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A set's members (no duplicates: Redis refuses to load them).
    Set(Vec<Bytes>),
    /// A hash's field/value pairs (no duplicate fields).
    Hash(Vec<(Bytes, Bytes)>),
    /// A sorted set's member/score pairs (no duplicate members, no NaN).
    ZSet(Vec<(Bytes, f64)>),
    /// A stream with its consumer groups.
    Stream(Box<RdbStream>),
}

/// One key as read from or written to an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbEntry {
    /// The logical database the key lives in.
    pub db: usize,
    /// The key.
    pub key: Bytes,
    /// Its value.
    pub value: RdbValue,
    /// Absolute expiry in Unix milliseconds, if the key has one.
    pub expire_at_ms: Option<u64>,
}

/// A stream entry id (`<ms>-<seq>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

/// A stream in plain form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RdbStream {
    /// Live entries in id order, each with its field/value pairs.
    pub entries: Vec<StreamEntry>,
    /// The last id ever generated (XADD's reference point; may exceed the last entry).
    pub last_id: StreamId,
    /// The first live entry's id (0-0 when empty).
    pub first_id: StreamId,
    /// The greatest id ever deleted.
    pub max_deleted_id: StreamId,
    /// How many entries were ever added.
    pub entries_added: u64,
    /// Consumer groups.
    pub groups: Vec<StreamGroup>,
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its id.
    pub id: StreamId,
    /// Field/value pairs in insertion order.
    pub fields: Vec<(Bytes, Bytes)>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGroup {
    /// Group name.
    pub name: Bytes,
    /// The last id delivered to the group.
    pub last_id: StreamId,
    /// Logical read counter; -1 when unknown (files older than RDB type 19).
    pub entries_read: i64,
    /// Pending entries list, in id order.
    pub pel: Vec<PendingEntry>,
    /// Consumers.
    pub consumers: Vec<StreamConsumer>,
}

/// An entry delivered to a group but not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry's id.
    pub id: StreamId,
    /// Last delivery time, Unix ms.
    pub delivery_time_ms: u64,
    /// Times delivered.
    pub delivery_count: u64,
}

/// A consumer in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Consumer name.
    pub name: Bytes,
    /// Last time it was seen, Unix ms.
    pub seen_time_ms: u64,
    /// Last time it read successfully, Unix ms (Redis 7.2; equal to `seen_time_ms` in older files).
    pub active_time_ms: u64,
    /// Ids of the group's pending entries owned by this consumer.
    pub pending: Vec<StreamId>,
}

/// Opcodes and object type bytes (src/rdb.h).
pub(crate) mod op {
    pub const TYPE_STRING: u8 = 0;
    pub const TYPE_LIST: u8 = 1;
    pub const TYPE_SET: u8 = 2;
    pub const TYPE_ZSET: u8 = 3;
    pub const TYPE_HASH: u8 = 4;
    pub const TYPE_ZSET_2: u8 = 5;
    pub const TYPE_MODULE_PRE_GA: u8 = 6;
    pub const TYPE_MODULE_2: u8 = 7;
    pub const TYPE_HASH_ZIPMAP: u8 = 9;
    pub const TYPE_LIST_ZIPLIST: u8 = 10;
    pub const TYPE_SET_INTSET: u8 = 11;
    pub const TYPE_ZSET_ZIPLIST: u8 = 12;
    pub const TYPE_HASH_ZIPLIST: u8 = 13;
    pub const TYPE_LIST_QUICKLIST: u8 = 14;
    pub const TYPE_STREAM_LISTPACKS: u8 = 15;
    pub const TYPE_HASH_LISTPACK: u8 = 16;
    pub const TYPE_ZSET_LISTPACK: u8 = 17;
    pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
    pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
    pub const TYPE_SET_LISTPACK: u8 = 20;
    pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;

    /// String encodings selected by the top bits `11` of a length byte.
    pub const ENC_INT8: u8 = 0;
    pub const ENC_INT16: u8 = 1;
    pub const ENC_INT32: u8 = 2;
    pub const ENC_LZF: u8 = 3;
}
