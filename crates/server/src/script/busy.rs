//! Scripts that run past `busy-reply-threshold` (alias `lua-time-limit`):
//! other clients get `-BUSY`, SCRIPT KILL stops a script that has not written,
//! `-UNKILLABLE` one that has.
//!
//! These flags are process-wide atomics that every connection reads (one
//! relaxed load per command). A busy script pauses on its own stack at each
//! hook (`fiber::pause`), so connections of its own core are served too.

use bytes::Bytes;
use shardis_commands::{lookup, CommandId};
use shardis_protocol::Reply;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Start (unix ms) of the tracked running script, 0 when none.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// The tracked script ran past the threshold.
static BUSY: AtomicBool = AtomicBool::new(false);
/// SCRIPT KILL asked the tracked script to stop.
static KILL: AtomicBool = AtomicBool::new(false);
/// The tracked script has written (it can no longer be killed).
static WROTE: AtomicBool = AtomicBool::new(false);
/// The tracked script is a function (FCALL), not an EVAL script.
static FUNCTION: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This executor runs the tracked script.
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

/// Lua instructions between two checks (Redis's count hook uses the same).
pub const HOOK_EVERY: u32 = 100_000;

/// Starts tracking a script (a function when `function`) on this executor;
/// false if another one is tracked.
pub fn start(now_ms: u64, function: bool) -> bool {
    let ok = STARTED
        .compare_exchange(0, now_ms.max(1), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok();
    if ok {
        BUSY.store(false, Ordering::Relaxed);
        KILL.store(false, Ordering::Relaxed);
        WROTE.store(false, Ordering::Relaxed);
        FUNCTION.store(function, Ordering::Relaxed);
        TRACKED.with(|t| t.set(true));
    }
    ok
}

/// Stops tracking the script of this executor.
pub fn finish() {
    if TRACKED.with(|t| t.replace(false)) {
        BUSY.store(false, Ordering::Relaxed);
        KILL.store(false, Ordering::Relaxed);
        WROTE.store(false, Ordering::Relaxed);
        STARTED.store(0, Ordering::Release);
    }
}

/// The tracked script wrote to the dataset.
pub fn wrote() {
    if TRACKED.with(|t| t.get()) {
        WROTE.store(true, Ordering::Relaxed);
    }
}

/// The count hook of the tracked script: marks it busy past `threshold_ms`
/// and then pauses it at every call; returns the kill error once SCRIPT KILL
/// or FUNCTION KILL asked for it.
pub fn check(threshold_ms: u64, name: &str) -> Option<String> {
    let started = STARTED.load(Ordering::Relaxed);
    if !BUSY.load(Ordering::Relaxed)
        && crate::shared::unix_ms().saturating_sub(started) >= threshold_ms
    {
        BUSY.store(true, Ordering::Relaxed);
        crate::log!(
            Warning,
            "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: {}.",
            crate::shared::unix_ms().saturating_sub(started),
            name
        );
    }
    // SCRIPT KILL, FUNCTION KILL and SHUTDOWN NOSAVE arrive during pauses.
    if BUSY.load(Ordering::Relaxed) && !KILL.load(Ordering::Relaxed) {
        super::fiber::pause();
    }
    KILL.load(Ordering::Relaxed)
        .then(|| "Script killed by user with SCRIPT KILL...".to_string())
}

/// The count hook of a script run while another one is tracked (a second
/// core's script): no `-BUSY` for it, but past `threshold_ms` it pauses, so
/// its core still serves what does not need its shards.
pub fn check_untracked(threshold_ms: u64, started: u64) -> Option<String> {
    if crate::shared::unix_ms().saturating_sub(started) >= threshold_ms {
        super::fiber::pause();
    }
    None
}

/// The `-BUSY` text for the tracked script's kind.
pub fn text() -> String {
    if FUNCTION.load(Ordering::Relaxed) {
        crate::errors::BUSY_FUNCTION
    } else {
        crate::errors::BUSY_SCRIPT
    }
    .to_string()
}

fn busy_error() -> Reply {
    Reply::Error(text())
}

/// True while a script is past the threshold (the per-command check).
pub fn active() -> bool {
    BUSY.load(Ordering::Relaxed)
}

/// Waits until no script is busy (our master's stream waits so while busy).
pub async fn wait_idle() {
    while active() {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// While busy: the `-BUSY` reply for a command that may not run now.
pub fn reject(args: &[Bytes]) -> Option<Reply> {
    let cmd = lookup(&args[0])?;
    let allowed = match cmd.id {
        CommandId::Hello
        | CommandId::Reset
        | CommandId::Auth
        | CommandId::Replconf
        | CommandId::Quit
        | CommandId::Watch
        | CommandId::Discard
        | CommandId::Multi
        | CommandId::Unwatch => true,
        // Redis's shutdownCommand refuses all but NOSAVE while busy.
        CommandId::Shutdown => args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave")),
        CommandId::Script => args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"kill")),
        // FUNCTION STATS answers only while a function (not an EVAL) is busy.
        CommandId::Function => args.get(1).is_some_and(|s| {
            s.eq_ignore_ascii_case(b"kill")
                || (s.eq_ignore_ascii_case(b"stats") && FUNCTION.load(Ordering::Relaxed))
        }),
        _ => false,
    };
    (!allowed).then(busy_error)
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL (Redis's `scriptKill`).
pub fn kill(eval: bool) -> Reply {
    if !BUSY.load(Ordering::Relaxed) {
        return Reply::error("NOTBUSY No scripts in execution right now.");
    }
    if WROTE.load(Ordering::Relaxed) {
        return Reply::error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
    }
    if eval == FUNCTION.load(Ordering::Relaxed) {
        // SCRIPT KILL of a function, FUNCTION KILL of an EVAL script.
        return busy_error();
    }
    KILL.store(true, Ordering::Relaxed);
    Reply::OK
}
