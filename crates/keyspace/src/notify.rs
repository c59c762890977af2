//! Keyspace notifications (Redis's `notify.c`): the event classes of
//! `notify-keyspace-events`, their string form, and the events a command run
//! produces.
//!
//! A command records `(class, event, db, key)` in [`ExecContext::events`]
//! through [`ExecContext::notify`], which is one flag test when notifications
//! are off. The server turns each event into Redis's two messages
//! (`__keyspace@<db>__:<key>` → event, `__keyevent@<db>__:<event>` → key) and
//! delivers them to subscribers on every core.

use crate::DbIndex;
use crate::ExecContext;
use bytes::Bytes;

pub use shardis_base::notify::*;

/// One keyspace event, as `notifyKeyspaceEvent` receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The db of the key.
    pub db: DbIndex,
    /// The event name (`set`, `expired`, `rename_from`…).
    pub event: &'static str,
    /// The key.
    pub key: Bytes,
}

impl ExecContext {
    /// Records `event` on `key` in the selected db if class `class` is on.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        let db = self.db;
        self.notify_db(class, event, db, key);
    }

    /// [`ExecContext::notify`] for a key of db `db`.
    #[inline]
    pub fn notify_db(&mut self, class: u32, event: &'static str, db: DbIndex, key: &[u8]) {
        if self.notify_flags & class != 0 {
            self.events.push(Event {
                db,
                event,
                key: Bytes::copy_from_slice(key),
            });
        }
    }
}
