//! Redis-format log lines: `<pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <level> <message>`.
//!
//! Operators grep for Redis's texts, so messages elsewhere copy them verbatim.
//! The sink is a file or stdout, shared by all executors behind a mutex: logging
//! is rare and never on the data path.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// Log levels in Redis's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `.`
    Debug = 0,
    /// `-`
    Verbose = 1,
    /// `*`
    Notice = 2,
    /// `#`
    Warning = 3,
}

impl Level {
    fn mark(self) -> char {
        match self {
            Level::Debug => '.',
            Level::Verbose => '-',
            Level::Notice => '*',
            Level::Warning => '#',
        }
    }

    /// Parses a `loglevel` value.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "verbose" => Level::Verbose,
            "notice" => Level::Notice,
            "warning" => Level::Warning,
            _ => return None,
        })
    }
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Notice as u8);
/// 'C' while starting, then 'M' (master) or 'S' (replica).
static ROLE: AtomicU8 = AtomicU8::new(b'C');
static SINK: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Sends log lines to `path` (appending), or stdout when empty.
pub fn init(path: &str, level: Level) -> std::io::Result<()> {
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
    if !path.is_empty() {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
    Ok(())
}

/// Changes the minimum level (CONFIG SET loglevel).
pub fn set_level(level: Level) {
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Sets the role letter: 'M' for a master, 'S' for a replica.
pub fn set_role(role: u8) {
    ROLE.store(role, Ordering::Relaxed);
}

/// Writes one line if `level` passes the filter.
pub fn log(level: Level, msg: &str) {
    if (level as u8) < MIN_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let line = format!(
        "{}:{} {} {} {}\n",
        std::process::id(),
        ROLE.load(Ordering::Relaxed) as char,
        timestamp(),
        level.mark(),
        msg
    );
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// `26 Nov 2026 11:52:00.123` in local time, as Redis prints it.
fn timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    #[allow(unsafe_code)]
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

/// `log!(Notice, "…", args)`.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        $crate::logging::log($crate::logging::Level::$level, &format!($($arg)*))
    };
}
