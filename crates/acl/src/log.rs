//! ACL LOG: recent denials and failed AUTHs, grouped as Redis groups them.

use std::collections::VecDeque;

/// Why an entry was logged (`reason` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A command was denied.
    Command,
    /// A key was denied.
    Key,
    /// A channel was denied.
    Channel,
    /// AUTH failed.
    Auth,
}

impl Reason {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where it happened (`context` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A command sent directly.
    Toplevel,
    /// Inside MULTI/EXEC.
    Multi,
}

impl Context {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Times it happened (grouped within 60 s).
    pub count: u64,
    /// Why.
    pub reason: Reason,
    /// Where.
    pub context: Context,
    /// The command, key or channel name (`AUTH` for auth failures).
    pub object: Vec<u8>,
    /// The user it happened to.
    pub username: Vec<u8>,
    /// Unix milliseconds of the last occurrence.
    pub ctime_ms: u64,
    /// CLIENT LIST line of the last client.
    pub client_info: String,
}

/// Entries closer in time than this are grouped (ACL_LOG_GROUPING_MAX_TIME_DELTA).
const GROUPING_MS: u64 = 60_000;

/// The log, newest first.
#[derive(Debug, Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Adds `e`, or bumps a matching entry among the newest 10; keeps at most
    /// `max_len` entries.
    pub fn add(&mut self, e: Entry, max_len: usize) {
        let matching = self.entries.iter().take(10).position(|c| {
            c.reason == e.reason
                && c.context == e.context
                && c.ctime_ms.abs_diff(e.ctime_ms) <= GROUPING_MS
                && c.object == e.object
                && c.username == e.username
        });
        if let Some(i) = matching {
            let mut m = self.entries.remove(i).expect("index in range");
            m.count += 1;
            m.ctime_ms = e.ctime_ms;
            m.client_info = e.client_info;
            self.entries.push_front(m);
        } else {
            self.entries.push_front(e);
            self.entries.truncate(max_len);
        }
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }

    /// ACL LOG RESET.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
