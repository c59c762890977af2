//! The one error type of the crate: what went wrong and at which byte.

use std::fmt;

/// A corrupt, truncated or unsupported input, with the offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    /// Byte offset into the input at which the offending item starts (or where input ran out).
    pub offset: usize,
    /// What is wrong there.
    pub reason: Reason,
}

/// Why the input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The input ended before the item was complete (a streaming caller may wait for more).
    Truncated,
    /// The file does not start with `REDIS` and four digits.
    BadMagic,
    /// An RDB version this reader does not understand (it reads 1..=11).
    UnsupportedVersion(u32),
    /// The CRC64 trailer does not match the content.
    Checksum {
        /// The CRC64 stored in the file.
        stored: u64,
        /// The CRC64 computed over the content.
        computed: u64,
    },
    /// An opcode or object type byte that Redis 7.0/7.2 never writes.
    UnknownType(u8),
    /// Module values and module aux data need the module; shardis has none.
    ModuleData,
    /// The value is malformed; the text says how.
    Corrupt(&'static str),
    /// A DUMP payload whose footer (version or CRC64) does not verify.
    DumpFooter,
}

impl RdbError {
    pub(crate) fn new(offset: usize, reason: Reason) -> Self {
        RdbError { offset, reason }
    }

    pub(crate) fn corrupt(offset: usize, what: &'static str) -> Self {
        RdbError::new(offset, Reason::Corrupt(what))
    }

    /// True when more input could make this parse succeed.
    pub fn is_truncated(&self) -> bool {
        self.reason == Reason::Truncated
    }

    /// The exact Redis 7.0 RESTORE error reply for this failure (without the leading `-`).
    pub fn restore_reply(&self) -> &'static str {
        match self.reason {
            Reason::DumpFooter => shardis_base::errors::DUMP_PAYLOAD_INVALID,
            _ => shardis_base::errors::BAD_DATA_FORMAT,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Truncated => f.write_str("unexpected end of input"),
            Reason::BadMagic => f.write_str("wrong signature trying to load DB from file"),
            Reason::UnsupportedVersion(v) => write!(f, "can't handle RDB format version {v}"),
            Reason::Checksum { stored, computed } => write!(
                f,
                "wrong RDB checksum: stored {stored:#018x}, computed {computed:#018x}"
            ),
            Reason::UnknownType(t) => write!(f, "unknown RDB type or opcode {t}"),
            Reason::ModuleData => f.write_str("module data not supported"),
            Reason::Corrupt(what) => write!(f, "corrupt RDB: {what}"),
            Reason::DumpFooter => f.write_str("DUMP payload version or checksum are wrong"),
        }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for RdbError {}
