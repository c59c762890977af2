//! The append-only file: Redis 7.0's multi-part AOF (a directory with a
//! manifest, one base file and incremental files), fed by the merged
//! replication stream, loaded at start-up, rewritten from fork-free snapshots.
//!
//! ```text
//!  shard logs ──pump──► Merger ──► bytes ──► backlog / replicas
//!                                      └──► (without PING/GETACK) ──► AOF buffer ──write──► incr file
//!                                                                        └─ fsync: always (awaited, one per pump cycle), everysec (background), no
//! ```
//!
//! The AOF is a second sink of the stream replicas get (docs/replication.md),
//! so it holds exactly what Redis would propagate. The pump writes each cycle's
//! bytes; with `appendfsync always` it then awaits one `fdatasync` before the
//! next cycle, so every client and shard that wrote in that cycle shares it
//! (group commit). A reply waits until the AOF holds its write
//! ([`wait_durable`]): each shard counts the entries it logs, the pump
//! publishes how many of each shard's entries are written (and, with
//! `always`, fsynced), and a connection that ran commands compares the two
//! before writing its replies.
//!
//! A replica writes the commands it applies from its master (its shards do
//! not log: the link forwards the master's bytes), minus PING and REPLCONF.
//!
//! Rewrites (BGREWRITEAOF, `auto-aof-rewrite-*`, enabling the AOF at run time,
//! after a replica's full sync) take a point-in-time snapshot at a barrier in
//! the stream, exactly as a full sync does: the bytes after the barrier go to a
//! new incremental file, the snapshot becomes the new base ([`rewrite`]: an
//! RDB with `aof-base:1`, or commands with `aof-use-rdb-preamble no`), and the
//! manifest is replaced atomically (temp file, fsync, rename, fsync of the
//! directory). Only then are the old files deleted.

pub mod manifest;
pub mod parse;
mod rewrite;

use crate::shard::Shard;
use crate::shared::{strerror, unix_ms};
use bytes::{Bytes, BytesMut};
use manifest::Manifest;
use shardis_base::ShardId;
use shardis_keyspace::DbIndex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before the reply.
    Always,
    /// Once a second, in the background.
    Everysec,
    /// Left to the kernel.
    No,
}

impl Fsync {
    fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

/// The AOF settings, read once per use.
#[derive(Debug, Clone)]
pub struct AofConfig {
    /// `dir`.
    pub dir: PathBuf,
    /// `appenddirname`.
    pub dirname: String,
    /// `appendfilename`.
    pub filename: String,
    /// `appendfsync`.
    pub fsync: Fsync,
    /// `aof-timestamp-enabled`.
    pub timestamps: bool,
    /// `aof-load-truncated`.
    pub load_truncated: bool,
    /// `aof-use-rdb-preamble`.
    pub rdb_preamble: bool,
    /// `aof-disable-auto-gc`.
    pub disable_auto_gc: bool,
    /// `auto-aof-rewrite-percentage`.
    pub auto_pct: u64,
    /// `auto-aof-rewrite-min-size`.
    pub auto_min: u64,
    /// `no-appendfsync-on-rewrite`.
    pub no_fsync_on_rewrite: bool,
}

impl AofConfig {
    /// Reads the settings.
    pub fn read(shard: &Shard) -> AofConfig {
        let c = shard.shared.config();
        AofConfig {
            dir: PathBuf::from(&c.dir),
            dirname: c.appenddirname.clone(),
            filename: c.appendfilename.clone(),
            fsync: Fsync::parse(&c.appendfsync),
            timestamps: c.aof_timestamp_enabled,
            load_truncated: c.aof_load_truncated,
            rdb_preamble: c.aof_use_rdb_preamble,
            disable_auto_gc: c.aof_disable_auto_gc,
            auto_pct: c.auto_aof_rewrite_percentage,
            auto_min: c.auto_aof_rewrite_min_size,
            no_fsync_on_rewrite: c.no_appendfsync_on_rewrite,
        }
    }

    /// The AOF directory.
    pub fn aof_dir(&self) -> PathBuf {
        self.dir.join(&self.dirname)
    }
}

/// The open AOF (`appendonly yes`).
pub struct Aof {
    /// The AOF directory.
    pub dir: PathBuf,
    /// `appendfilename` when it was opened.
    pub filename: String,
    /// What the directory holds.
    pub manifest: Manifest,
    /// The incremental file being written.
    file: Arc<std::fs::File>,
    /// Bytes not yet written (Redis's `aof_buf`).
    buf: BytesMut,
    /// Size of the incremental file.
    pub incr_size: u64,
    /// Size of the incremental file covered by an fsync.
    fsynced_size: u64,
    /// `aof_current_size`.
    pub current_size: u64,
    /// `aof_base_size` (`aof_rewrite_base_size`).
    pub base_size: u64,
    last_fsync_sec: u64,
    /// A background fsync is running (`aof_pending_bio_fsync`).
    pub fsync_in_progress: Arc<AtomicBool>,
    postponed_since: Option<u64>,
    /// What a cycle whose write was postponed covers: published once the
    /// buffer is written (by a later cycle or the pump's tick).
    held_covered: Option<Vec<u64>>,
    /// `aof_delayed_fsync`.
    pub delayed_fsync: u64,
    /// The last write failed: Redis's strerror text (writes get -MISCONF).
    pub write_error: Option<String>,
    last_error_log: u64,
    /// `aof_cur_timestamp` for `#TS:` annotations.
    ts: u64,
    /// The db the file has SELECTed, for commands a replica applies.
    link_db: Option<DbIndex>,
    /// Enabled at run time and waiting for its first rewrite: the stream
    /// before the rewrite's barrier is dropped (the new base holds it), and
    /// the file is the temporary incr file, renamed when the rewrite ends.
    pending_first_rewrite: bool,
    /// The running rewrite's barrier reached the file.
    barrier_passed: bool,
    /// The new incr file could not be opened at the barrier.
    barrier_failed: bool,
}

/// Process-wide AOF state (INFO reads it; shard 0 writes it).
pub struct AofState {
    /// The AOF being written, if `appendonly` is on and started.
    pub open: Option<Aof>,
    /// `appendonly yes` is waiting for its first rewrite (Redis's AOF_WAIT_REWRITE).
    pub wait_rewrite: bool,
    /// A rewrite runs.
    pub rewrite_in_progress: bool,
    /// A rewrite waits for the snapshot slot.
    pub rewrite_scheduled: bool,
    /// When the running rewrite started.
    pub rewrite_started: Option<Instant>,
    /// Seconds the last rewrite took (-1: none).
    pub last_rewrite_secs: i64,
    /// The last rewrite succeeded.
    pub last_rewrite_ok: bool,
    /// Rewrites started.
    pub rewrites: u64,
    /// Consecutive failed rewrites (auto rewrites back off).
    pub consecutive_failures: u32,
    /// When an automatic rewrite may be tried again after failures, and the
    /// delay that gave it (minutes; Redis's `aofRewriteLimited`).
    next_auto_try: Option<(u64, u64)>,
}

impl Default for AofState {
    fn default() -> AofState {
        AofState {
            open: None,
            wait_rewrite: false,
            rewrite_in_progress: false,
            rewrite_scheduled: false,
            rewrite_started: None,
            last_rewrite_secs: -1,
            last_rewrite_ok: true,
            rewrites: 0,
            consecutive_failures: 0,
            next_auto_try: None,
        }
    }
}

fn state(shard: &Shard) -> std::sync::MutexGuard<'_, AofState> {
    shard.shared.aof.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_sec() -> u64 {
    unix_ms() / 1000
}

/// The manifest could not be written (the reason is logged).
#[derive(Debug)]
pub struct ManifestWriteFailed;

/// Writes `text` to the manifest atomically: temp file, fsync, rename, fsync
/// of the directory (Redis's `writeAofManifestFile`, same log lines).
pub fn write_manifest(dir: &Path, filename: &str, m: &Manifest) -> Result<(), ManifestWriteFailed> {
    let tmp_name = manifest::temp_manifest_name(filename);
    let name = manifest::manifest_name(filename);
    let tmp = dir.join(&tmp_name);
    let mut f = match std::fs::File::create(&tmp) {
        Ok(f) => f,
        Err(e) => {
            crate::log!(
                Warning,
                "Can't open the AOF manifest file {}: {}",
                tmp_name,
                strerror(&e)
            );
            return Err(ManifestWriteFailed);
        }
    };
    if let Err(e) = f.write_all(m.render().as_bytes()) {
        crate::log!(
            Warning,
            "Error trying to write the temporary AOF manifest file {}: {}",
            tmp_name,
            strerror(&e)
        );
        return Err(ManifestWriteFailed);
    }
    if let Err(e) = f.sync_data() {
        crate::log!(
            Warning,
            "Fail to fsync the temp AOF file {}: {}.",
            tmp_name,
            strerror(&e)
        );
        return Err(ManifestWriteFailed);
    }
    if let Err(e) = std::fs::rename(&tmp, dir.join(&name)) {
        crate::log!(
            Warning,
            "Error trying to rename the temporary AOF manifest file {} into {}: {}",
            tmp_name,
            name,
            strerror(&e)
        );
        return Err(ManifestWriteFailed);
    }
    if let Err(e) = fsync_dir(dir) {
        crate::log!(
            Warning,
            "Fail to fsync AOF directory {}: {}.",
            dir.join(&name).display(),
            strerror(&e)
        );
        return Err(ManifestWriteFailed);
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn open_append(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl Aof {
    /// Appends stream bytes to the buffer, with a `#TS:` annotation first when
    /// the second changed and `aof-timestamp-enabled` is on.
    fn append(&mut self, bytes: &[u8], timestamps: bool) {
        if bytes.is_empty() || self.pending_first_rewrite && !self.barrier_passed {
            return;
        }
        if timestamps {
            let now = now_sec();
            if self.ts < now {
                self.ts = now;
                self.buf
                    .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Redis's `flushAppendOnlyFile`, write part: returns false when the write
    /// was postponed (everysec with an fsync still running) or failed.
    fn write_buffer(&mut self, policy: Fsync, force: bool) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let syncing = self.fsync_in_progress.load(Ordering::Acquire);
        if policy == Fsync::Everysec && !force && syncing {
            let now = now_sec();
            match self.postponed_since {
                None => {
                    self.postponed_since = Some(now);
                    return false;
                }
                Some(t) if now.saturating_sub(t) < 2 => return false,
                Some(_) => {
                    self.delayed_fsync += 1;
                    crate::log!(Notice, "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis.");
                }
            }
        }
        self.postponed_since = None;
        let mut written = 0usize;
        let mut error = None;
        while written < self.buf.len() {
            match (&*self.file).write(&self.buf[written..]) {
                Ok(0) => {
                    error = Some(std::io::Error::from_raw_os_error(libc::ENOSPC));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            let can_log = now_sec().saturating_sub(self.last_error_log) > 30;
            if can_log {
                self.last_error_log = now_sec();
            }
            let mut reason = strerror(&e);
            if written > 0 {
                if can_log {
                    crate::log!(
                        Warning,
                        "Short write while writing to the AOF file: (nwritten={}, expected={})",
                        written,
                        self.buf.len()
                    );
                }
                // Remove the partial command so the file stays loadable.
                if self.file.set_len(self.incr_size).is_ok() {
                    written = 0;
                } else if can_log {
                    crate::log!(Warning, "Could not remove short write from the append-only file.  Redis may refuse to load the AOF the next time it starts.  ftruncate: {}", reason);
                }
                reason = strerror(&std::io::Error::from_raw_os_error(libc::ENOSPC));
            } else if can_log {
                crate::log!(Warning, "Error writing to the AOF file: {}", reason);
            }
            if policy == Fsync::Always {
                crate::log!(Warning, "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                std::process::exit(1);
            }
            self.write_error = Some(reason);
            if written > 0 {
                let _ = self.buf.split_to(written);
                self.incr_size += written as u64;
                self.current_size += written as u64;
            }
            return false;
        }
        if self.write_error.take().is_some() {
            crate::log!(
                Warning,
                "AOF write error looks solved, Redis can write again."
            );
        }
        self.incr_size += written as u64;
        self.current_size += written as u64;
        self.buf.clear();
        true
    }

    /// Starts a background fsync if everysec says so (at most once a second).
    fn maybe_background_fsync(&mut self) {
        let now = now_sec();
        if self.fsynced_size == self.incr_size || now <= self.last_fsync_sec {
            return;
        }
        if self.fsync_in_progress.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last_fsync_sec = now;
        self.fsynced_size = self.incr_size;
        let file = self.file.clone();
        let busy = self.fsync_in_progress.clone();
        glommio::spawn_local(async move {
            let _ = glommio::executor()
                .spawn_blocking(move || file.sync_data())
                .await;
            busy.store(false, Ordering::Release);
        })
        .detach();
    }

    /// The rewrite's barrier reached the file: what follows goes to a new
    /// incremental file (or, for a first rewrite, starts being kept).
    fn at_barrier(&mut self) {
        if self.pending_first_rewrite {
            self.barrier_passed = true;
            return;
        }
        if self.switch_incr().is_ok() {
            self.barrier_passed = true;
        } else {
            // Keep writing the old file; the rewrite fails and the files stay usable.
            self.barrier_failed = true;
        }
    }

    /// Opens the next incremental file and records it in the manifest
    /// (Redis's `openNewIncrAofForAppend`); the old file is fsynced in the
    /// background.
    fn switch_incr(&mut self) -> Result<(), ()> {
        let mut m = self.manifest.clone();
        let name = m.new_incr(&self.filename);
        let file = match open_append(&self.dir.join(&name), true) {
            Ok(f) => f,
            Err(e) => {
                crate::log!(
                    Warning,
                    "Can't open the append-only file {}: {}",
                    name,
                    strerror(&e)
                );
                return Err(());
            }
        };
        write_manifest(&self.dir, &self.filename, &m).map_err(|_| ())?;
        crate::log!(
            Notice,
            "Creating AOF incr file {} on background rewrite",
            name
        );
        let old = std::mem::replace(&mut self.file, Arc::new(file));
        glommio::spawn_local(async move {
            let _ = glommio::executor()
                .spawn_blocking(move || old.sync_data())
                .await;
        })
        .detach();
        self.manifest = m;
        self.incr_size = 0;
        self.fsynced_size = 0;
        self.link_db = None;
        Ok(())
    }
}

// ------------------------------------------------------------------ loading

/// How loading one file ended (Redis's AOF_OK, AOF_EMPTY, AOF_TRUNCATED, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadResult {
    Ok,
    Empty,
    Truncated,
    NotExist,
    OpenErr,
    Failed,
}

/// A connection that applies commands read from a file as the master link
/// applies its master's stream (writes allowed, replies dropped). Conn needs
/// a socket; a loopback pair serves, and nothing is ever sent on it.
async fn loader_conn(shard: &Rc<Shard>) -> Result<crate::conn::Conn, String> {
    let l = glommio::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("Can't create the AOF loading client: {e}"))?;
    let addr = l
        .local_addr()
        .map_err(|e| format!("Can't create the AOF loading client: {e}"))?;
    let client = glommio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("Can't create the AOF loading client: {e}"))?;
    let _server = l
        .accept()
        .await
        .map_err(|e| format!("Can't create the AOF loading client: {e}"))?;
    let client = crate::net::Socket::from_glommio(client)
        .map_err(|e| format!("Can't create the AOF loading client: {e}"))?;
    let info = Rc::new(std::cell::RefCell::new(
        crate::client::ClientInfo::master_link(std::os::fd::AsRawFd::as_raw_fd(&client)),
    ));
    let mut conn = crate::conn::Conn::new(shard.clone(), client, info, true);
    conn.master_link = true;
    Ok(conn)
}

/// Loads one AOF file (Redis's `loadSingleAppendOnlyFile`): an RDB part if
/// the file starts with `REDIS`, then commands.
async fn load_single(shard: &Rc<Shard>, cfg: &AofConfig, path: &Path, name: &str) -> LoadResult {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::log!(
                Warning,
                "The append log file {} doesn't exist: {}",
                name,
                strerror(&e)
            );
            return LoadResult::NotExist;
        }
        Err(e) => {
            crate::log!(
                Warning,
                "Fatal error: can't open the append log file {} for reading: {}",
                name,
                strerror(&e)
            );
            return LoadResult::OpenErr;
        }
    };
    if data.is_empty() {
        return LoadResult::Empty;
    }
    let mut pos = 0usize;
    if data.starts_with(b"REDIS") {
        let old_style = name == cfg.filename;
        if old_style {
            crate::log!(Notice, "Reading RDB preamble from AOF file...");
        } else {
            crate::log!(Notice, "Reading RDB base file on AOF loading...");
        }
        match crate::persist::load_rdb_prefix(shard, &data, true).await {
            Ok((_, _, end)) => pos = end,
            Err(e) => {
                crate::log!(Warning, "{}", e);
                if old_style {
                    crate::log!(
                        Warning,
                        "Error reading the RDB preamble of the AOF file {}, AOF loading aborted",
                        name
                    );
                } else {
                    crate::log!(
                        Warning,
                        "Error reading the RDB base file {}, AOF loading aborted",
                        name
                    );
                }
                return LoadResult::Failed;
            }
        }
        if old_style {
            crate::log!(Notice, "Reading the remaining AOF tail...");
        }
    }
    let mut conn = match loader_conn(shard).await {
        Ok(c) => c,
        Err(e) => {
            crate::log!(Warning, "{}", e);
            return LoadResult::Failed;
        }
    };
    let mut reader = parse::Reader::new(&data, pos);
    let mut valid_up_to = pos;
    let mut valid_before_multi = pos;
    let mut in_multi = false;
    let mut round: Vec<Vec<Bytes>> = Vec::new();
    let end = loop {
        match reader.next_item() {
            parse::Item::Command(args, next) => {
                if shardis_commands::lookup(&args[0]).is_none() {
                    crate::log!(
                        Warning,
                        "Unknown command '{}' reading the append only file {}",
                        String::from_utf8_lossy(&args[0]),
                        name
                    );
                    return LoadResult::Failed;
                }
                if args[0].eq_ignore_ascii_case(b"multi") {
                    valid_before_multi = valid_up_to;
                    in_multi = true;
                } else if args[0].eq_ignore_ascii_case(b"exec")
                    || args[0].eq_ignore_ascii_case(b"discard")
                {
                    in_multi = false;
                }
                round.push(args);
                valid_up_to = next;
                if round.len() >= 1024 {
                    conn.process(&mut round).await;
                    conn.wbuf.clear();
                }
            }
            other => break other,
        }
    };
    if !round.is_empty() {
        conn.process(&mut round).await;
        conn.wbuf.clear();
    }
    match end {
        parse::Item::Eof if !in_multi => return LoadResult::Ok,
        parse::Item::Eof => {
            crate::log!(
                Warning,
                "Revert incomplete MULTI/EXEC transaction in AOF file {}",
                name
            );
            valid_up_to = valid_before_multi;
        }
        parse::Item::Format => {
            crate::log!(Warning, "Bad file format reading the append only file {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>", name);
            return LoadResult::Failed;
        }
        _ => {}
    }
    // An unexpected end of file (Redis's uxeof).
    if cfg.load_truncated {
        crate::log!(
            Warning,
            "!!! Warning: short read while loading the AOF file {}!!!",
            name
        );
        crate::log!(
            Warning,
            "!!! Truncating the AOF {} at offset {} !!!",
            name,
            valid_up_to
        );
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(valid_up_to as u64));
        match truncated {
            Ok(()) => {
                crate::log!(
                    Warning,
                    "AOF {} loaded anyway because aof-load-truncated is enabled",
                    name
                );
                return LoadResult::Truncated;
            }
            Err(e) => crate::log!(
                Warning,
                "Error truncating the AOF file {}: {}",
                name,
                strerror(&e)
            ),
        }
    }
    crate::log!(Warning, "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.", name);
    LoadResult::Failed
}

/// Reads the manifest from the AOF directory (empty when there is none).
fn read_manifest(cfg: &AofConfig) -> Result<Manifest, String> {
    let dir = cfg.aof_dir();
    let path = dir.join(manifest::manifest_name(&cfg.filename));
    if !dir.is_dir() || !path.exists() {
        return Ok(Manifest::default());
    }
    let text = std::fs::read(&path).map_err(|e| {
        format!(
            "Fatal error: can't open the AOF manifest file {} for reading: {}",
            path.display(),
            strerror(&e)
        )
    })?;
    Manifest::parse(&text).map_err(|e| {
        crate::log!(Warning, "\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
        if let Some((n, line)) = &e.line {
            crate::log!(Warning, "Reading the manifest file, at line {}\n", n);
            crate::log!(Warning, ">>> '{}'\n", line);
        }
        format!("{}\n", e.message)
    })
}

/// Moves a pre-7.0 single-file AOF (`dir/appendonly.aof`) into the AOF
/// directory as its base (Redis's `aofUpgradePrepare`).
fn upgrade(cfg: &AofConfig, m: &mut Manifest) -> Result<(), String> {
    let dir = cfg.aof_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {}",
            cfg.dirname,
            strerror(&e)
        )
    })?;
    m.base = Some(manifest::FileInfo {
        name: cfg.filename.clone(),
        seq: 1,
        kind: b'b',
    });
    m.base_seq = 1;
    write_manifest(&dir, &cfg.filename, m).map_err(|_| String::new())?;
    std::fs::rename(cfg.dir.join(&cfg.filename), dir.join(&cfg.filename)).map_err(|e| {
        format!(
            "Error trying to move the old AOF file {} into dir {}: {}",
            cfg.filename,
            cfg.dirname,
            strerror(&e)
        )
    })?;
    crate::log!(
        Notice,
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        cfg.filename,
        cfg.dirname
    );
    Ok(())
}

/// Loads the AOF at start-up (Redis's `loadAppendOnlyFiles`). Returns the
/// manifest read, for [`start`]; an error is fatal.
pub async fn load_at_startup(shard: &Rc<Shard>) -> Result<Manifest, String> {
    let cfg = AofConfig::read(shard);
    let started = Instant::now();
    let mut m = read_manifest(&cfg)?;
    let old = cfg.dir.join(&cfg.filename);
    if old.is_file() {
        let dir = cfg.aof_dir();
        let only_old_base = m.base.as_ref().is_some_and(|b| b.name == cfg.filename)
            && m.incr.is_empty()
            && !dir.join(&cfg.filename).exists();
        if !dir.is_dir() || (m.base.is_none() && m.incr.is_empty()) || only_old_base {
            upgrade(&cfg, &mut m)?;
        }
    }
    if load_files(shard, &cfg, &m).await? {
        crate::log!(
            Notice,
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(m)
}

/// Loads the files `m` lists, base first (Redis's `loadAppendOnlyFiles`).
/// `Ok(false)` when there was nothing to load (no files, or all empty).
async fn load_files(shard: &Rc<Shard>, cfg: &AofConfig, m: &Manifest) -> Result<bool, String> {
    if m.base.is_none() && m.incr.is_empty() {
        return Ok(false);
    }
    let dir = cfg.aof_dir();
    let mut total = 0u64;
    for f in m.load_order() {
        match std::fs::metadata(dir.join(&f.name)) {
            Ok(md) => total += md.len(),
            Err(e) => {
                crate::log!(
                    Warning,
                    "Unable to obtain the AOF file {} length. stat: {}",
                    f.name,
                    strerror(&e)
                );
                return Err(String::new());
            }
        }
    }
    if total == 0 {
        return Ok(false);
    }
    let files: Vec<(String, bool)> = m
        .load_order()
        .map(|f| (f.name.clone(), f.kind == b'b'))
        .collect();
    let count = files.len();
    for (i, (name, is_base)) in files.iter().enumerate() {
        let last = i + 1 == count;
        let t = Instant::now();
        let mut r = load_single(shard, cfg, &dir.join(name), name).await;
        if r == LoadResult::Empty && !is_base {
            r = LoadResult::Ok;
        }
        if r == LoadResult::Ok || (r == LoadResult::Truncated && last) {
            crate::log!(
                Notice,
                "DB loaded from {} file {}: {:.3} seconds",
                if *is_base { "base" } else { "incr" },
                name,
                t.elapsed().as_secs_f64()
            );
        }
        if r == LoadResult::Truncated && !last {
            crate::log!(
                Warning,
                "Fatal error: the truncated file is not the last file"
            );
            return Err(String::new());
        }
        if matches!(
            r,
            LoadResult::OpenErr | LoadResult::Failed | LoadResult::NotExist
        ) {
            return Err(String::new());
        }
    }
    Ok(true)
}

/// DEBUG LOADAOF (on shard 0), as Redis 7.0.15 does it: the AOF's pending
/// writes go to the file, every db is emptied, and the files the manifest on
/// disk lists are loaded again. A load that fails (or finds no AOF at all)
/// exits the process, as Redis's `exit(1)` does. Meanwhile other clients get
/// `-LOADING` (Redis's thread is blocked), and nothing loaded is propagated:
/// the shards' write logs are off until the load ends.
pub async fn debug_loadaof(shard: &Rc<Shard>) {
    if is_open(shard) {
        crate::repl::settle(shard).await;
        if let Some(aof) = state(shard).open.as_mut() {
            aof.write_buffer(Fsync::Everysec, true);
        }
    }
    shard.shared.loading.store(true, Ordering::SeqCst);
    let logging: Vec<bool> = shard
        .broadcast(|s| {
            let was = s.write_log.entries.borrow_mut().take().is_some();
            s.store.keyspace.borrow_mut().flush_all();
            was
        })
        .await
        .unwrap_or_default();
    let cfg = AofConfig::read(shard);
    let loaded = match read_manifest(&cfg) {
        Ok(m) => load_files(shard, &cfg, &m).await,
        Err(e) => Err(e),
    };
    match loaded {
        Ok(true) => {}
        Ok(false) => {
            // Redis: an empty AOF loads as empty; no AOF at all is fatal.
            let m = read_manifest(&cfg).unwrap_or_default();
            if m.base.is_none() && m.incr.is_empty() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            if !e.is_empty() {
                crate::log!(Warning, "{}", e);
            }
            std::process::exit(1);
        }
    }
    let _ = shard
        .broadcast(move |s| {
            if logging.get(s.id.get()).copied().unwrap_or(false) {
                *s.write_log.entries.borrow_mut() = Some(Vec::new());
            }
        })
        .await;
    // Redis's `server.dirty = 0`: the load is no change to save.
    let dirty = shard.shared.total(|c| &c.dirty);
    shard
        .shared
        .persistence
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .dirty_at_save = dirty;
    shard.shared.loading.store(false, Ordering::SeqCst);
    crate::log!(Warning, "Append Only File loaded by DEBUG LOADAOF");
}

// ------------------------------------------------------------------ writing

/// Turns on every shard's write log (the AOF consumes the stream even with
/// no replica). Not on a replica: its link feeds the AOF.
async fn enable_logging(shard: &Rc<Shard>) {
    let _ = shard
        .broadcast(|s| {
            if !s.store.replica.get() {
                let mut log = s.write_log.entries.borrow_mut();
                if log.is_none() {
                    *log = Some(Vec::new());
                }
            }
        })
        .await;
}

/// Opens the AOF after start-up loading (Redis's `aofOpenIfNeededOnServerStart`):
/// a base file for an empty start, the last incr file (or a new one), the
/// manifest persisted; then history files are removed.
pub async fn start(shard: &Rc<Shard>, mut m: Manifest) -> Result<(), String> {
    let cfg = AofConfig::read(shard);
    let dir = cfg.aof_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {}",
            cfg.dirname,
            strerror(&e)
        )
    })?;
    let had_incr = !m.incr.is_empty();
    let loaded = m.base.is_some() || had_incr;
    if !loaded {
        let base = m.new_base(&cfg.filename, cfg.rdb_preamble);
        rewrite::write_base(shard, &cfg, &dir.join(&base)).await?;
        crate::log!(Notice, "Creating AOF base file {} on server start", base);
    }
    let name = match m.incr.last() {
        Some(f) => f.name.clone(),
        None => m.new_incr(&cfg.filename),
    };
    let file = open_append(&dir.join(&name), false)
        .map_err(|e| format!("Can't open the append-only file {}: {}", name, strerror(&e)))?;
    write_manifest(&dir, &cfg.filename, &m).map_err(|_| String::new())?;
    let incr_size = file_size(&dir.join(&name));
    // As Redis: the sizes count from what was loaded (nothing for a fresh AOF).
    let (base_size, current) = if loaded {
        (
            m.base.as_ref().map_or(0, |b| file_size(&dir.join(&b.name))),
            m.load_order().map(|f| file_size(&dir.join(&f.name))).sum(),
        )
    } else {
        (0, 0)
    };
    crate::log!(
        Notice,
        "{} AOF incr file {} on server start",
        if had_incr { "Opening" } else { "Creating" },
        name
    );
    let mut aof = Aof {
        dir,
        filename: cfg.filename.clone(),
        manifest: m,
        file: Arc::new(file),
        buf: BytesMut::new(),
        incr_size,
        fsynced_size: incr_size,
        current_size: current,
        base_size,
        last_fsync_sec: now_sec(),
        fsync_in_progress: Arc::new(AtomicBool::new(false)),
        postponed_since: None,
        held_covered: None,
        delayed_fsync: 0,
        write_error: None,
        last_error_log: 0,
        ts: 0,
        link_db: None,
        pending_first_rewrite: false,
        barrier_passed: false,
        barrier_failed: false,
    };
    delete_history(&mut aof, &cfg);
    state(shard).open = Some(aof);
    shard.shared.aof_on.store(true, Ordering::SeqCst);
    enable_logging(shard).await;
    Ok(())
}

/// Removes history files and persists the manifest (Redis's `aofDelHistoryFiles`).
fn delete_history(aof: &mut Aof, cfg: &AofConfig) {
    if cfg.disable_auto_gc || aof.manifest.history.is_empty() {
        return;
    }
    for f in std::mem::take(&mut aof.manifest.history) {
        crate::log!(
            Notice,
            "Removing the history file {} in the background",
            f.name
        );
        let _ = std::fs::remove_file(aof.dir.join(&f.name));
    }
    let _ = write_manifest(&aof.dir, &aof.filename, &aof.manifest);
}

/// What the pump hands over each cycle: stream pieces for the AOF (a piece
/// flagged `true` ends at a rewrite barrier: the next piece goes to a new
/// incremental file) and, per shard, how many logged entries the pieces cover.
pub struct Cycle {
    /// Stream bytes without replication-only commands.
    pub pieces: Vec<(Bytes, bool)>,
    /// Per shard: entries logged that these bytes (or earlier ones) hold.
    pub covered: Vec<u64>,
}

/// The pump's AOF step: buffer, write, and fsync per policy; then publish
/// what the file covers and wake the replies that wait for it.
pub async fn feed(shard: &Rc<Shard>, cycle: Cycle) {
    let mut sync_now = None;
    {
        let (policy, timestamps, no_fsync_rewrite) = {
            let c = shard.shared.config();
            (
                Fsync::parse(&c.appendfsync),
                c.aof_timestamp_enabled,
                c.no_appendfsync_on_rewrite,
            )
        };
        let mut st = state(shard);
        let rewriting = st.rewrite_in_progress;
        let Some(aof) = st.open.as_mut() else {
            drop(st);
            publish_covered(shard, &cycle.covered);
            return;
        };
        for (bytes, switch) in &cycle.pieces {
            if !bytes.is_empty() {
                aof.append(bytes, timestamps);
                // The merger's SELECTs are what the file follows now.
                aof.link_db = None;
            }
            if *switch {
                aof.write_buffer(policy, true);
                aof.at_barrier();
            }
        }
        let written = aof.write_buffer(policy, false);
        shard
            .shared
            .aof_write_failed
            .store(aof.write_error.is_some(), Ordering::Relaxed);
        // Redis's delayed-fsync rule postponed the write (a background fsync
        // is still running): Redis replies anyway, so a kill -9 then loses
        // acknowledged writes. Here replies wait, without blocking the core,
        // until a later cycle writes the buffer; this cycle covers nothing new.
        // (After a write error they are released, as Redis replies then too.)
        if !written && aof.write_error.is_none() {
            aof.held_covered = Some(cycle.covered);
            return;
        }
        aof.held_covered = None;
        if !(no_fsync_rewrite && rewriting) {
            match policy {
                Fsync::Always if aof.fsynced_size != aof.incr_size => {
                    sync_now = Some((aof.file.clone(), aof.incr_size));
                }
                Fsync::Everysec => aof.maybe_background_fsync(),
                _ => {}
            }
        }
    }
    if let Some((file, size)) = sync_now {
        let f = file.clone();
        let r = glommio::executor()
            .spawn_blocking(move || f.sync_data())
            .await;
        if let Err(e) = r {
            crate::log!(
                Warning,
                "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                strerror(&e)
            );
            std::process::exit(1);
        }
        let mut st = state(shard);
        if let Some(aof) = st.open.as_mut() {
            if Arc::ptr_eq(&aof.file, &file) {
                aof.fsynced_size = aof.fsynced_size.max(size);
                aof.last_fsync_sec = now_sec();
            }
        }
    }
    publish_covered(shard, &cycle.covered);
}

/// Records that shard `s`'s first `covered[s]` logged entries are in the AOF
/// and wakes the executors whose connections wait for that.
fn publish_covered(shard: &Rc<Shard>, covered: &[u64]) {
    for (s, &c) in covered.iter().enumerate() {
        shard.shared.stats[s]
            .aof_covered
            .fetch_max(c, Ordering::SeqCst);
    }
    for s in 0..shard.shards() {
        if shard.shared.stats[s]
            .aof_waiting
            .swap(false, Ordering::SeqCst)
        {
            if s == shard.id.get() {
                wake_waiters(shard);
            } else {
                let job: crate::shard::Job = Box::new(|sh| wake_waiters(sh));
                if let Err(Some(job)) = shard.try_send_job(ShardId(s), job) {
                    // A full queue: the wake-up waits for room, never dropped.
                    let sh = shard.clone();
                    glommio::spawn_local(async move {
                        let _ = sh.send_job(ShardId(s), job).await;
                    })
                    .detach();
                }
            }
        }
    }
}

fn wake_waiters(shard: &Shard) {
    for w in shard.aof_waiters.borrow_mut().drain(..) {
        w.wake();
    }
}

/// True when every entry any shard logged so far is in the AOF.
fn durable(shard: &Shard, targets: &[u64]) -> bool {
    targets
        .iter()
        .enumerate()
        .all(|(s, &t)| shard.shared.stats[s].aof_covered.load(Ordering::SeqCst) >= t)
}

/// Before a connection writes its replies: waits until the AOF holds (and,
/// with `always`, has fsynced) every write logged so far, its own and those it
/// may have observed, as Redis writes the AOF before any reply.
pub async fn wait_durable(shard: &Rc<Shard>) {
    let targets: Vec<u64> = shard
        .shared
        .stats
        .iter()
        .map(|c| c.logged.load(Ordering::Acquire))
        .collect();
    // No timer: every change that can end the wait (the file covering more,
    // the AOF stopping) goes through `publish_covered`, which wakes this
    // shard's waiters by a job that is never dropped. The flag and the
    // coverage are SeqCst on both sides, so a wait that registers just as
    // coverage moves is either seen as durable here or woken there.
    std::future::poll_fn(|cx| {
        if durable(shard, &targets)
            || !shard.shared.aof_on.load(Ordering::SeqCst)
            || shard.store.replica.get()
            || shard.shared.exiting.load(Ordering::SeqCst)
        {
            return std::task::Poll::Ready(());
        }
        shard.aof_waiters.borrow_mut().push(cx.waker().clone());
        shard.shared.stats[shard.id.get()]
            .aof_waiting
            .store(true, Ordering::SeqCst);
        // Coverage may have moved before the flag was up.
        if durable(shard, &targets) {
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    })
    .await
}

/// A replica's AOF: the commands its link applied this round (PING and
/// REPLCONF excluded), with our own SELECTs.
pub fn feed_link(shard: &Rc<Shard>, cmds: &[Vec<Bytes>], db_at_start: DbIndex) {
    if cmds.is_empty() {
        return;
    }
    let (policy, timestamps) = {
        let c = shard.shared.config();
        (Fsync::parse(&c.appendfsync), c.aof_timestamp_enabled)
    };
    let mut st = state(shard);
    let Some(aof) = st.open.as_mut() else { return };
    if aof.pending_first_rewrite && !aof.barrier_passed {
        return;
    }
    let mut db = db_at_start;
    let mut out = BytesMut::new();
    for args in cmds {
        if args[0].eq_ignore_ascii_case(b"select") && args.len() == 2 {
            if let Some(n) = std::str::from_utf8(&args[1])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                db = DbIndex(n);
            }
            continue;
        }
        if aof.link_db != Some(db) {
            let d = db.to_string();
            shardis_replication::encode_command(&[b"SELECT".as_slice(), d.as_bytes()], &mut out);
            aof.link_db = Some(db);
        }
        shardis_replication::encode_command(args, &mut out);
    }
    aof.append(&out, timestamps);
    aof.write_buffer(policy, false);
    shard
        .shared
        .aof_write_failed
        .store(aof.write_error.is_some(), Ordering::Relaxed);
    match policy {
        // The master link's replies are not sent; an inline fsync keeps
        // the promise without a reply to hold back.
        Fsync::Always if aof.fsynced_size != aof.incr_size && aof.file.sync_data().is_ok() => {
            aof.fsynced_size = aof.incr_size;
        }
        Fsync::Everysec => aof.maybe_background_fsync(),
        _ => {}
    }
}

/// The pump's idle step (every cycle): retries a postponed or failed write
/// and runs everysec's fsync when writes stopped (Redis's serverCron flush).
pub fn tick(shard: &Rc<Shard>) {
    let mut held = None;
    {
        let mut st = state(shard);
        if let Some(aof) = st.open.as_mut() {
            let policy = Fsync::parse(&shard.shared.config().appendfsync);
            let written = aof.write_buffer(policy, false);
            shard
                .shared
                .aof_write_failed
                .store(aof.write_error.is_some(), Ordering::Relaxed);
            if policy == Fsync::Everysec {
                aof.maybe_background_fsync();
            }
            if written || aof.write_error.is_some() {
                held = aof.held_covered.take();
            }
        }
    }
    if let Some(covered) = held {
        publish_covered(shard, &covered);
    }
    cron_rewrite(shard);
}

/// INFO persistence's AOF fields, as Redis 7.0 prints them (the size block
/// only while `appendonly` is on).
pub fn info(shard: &Shard) -> String {
    let enabled = shard.shared.config().appendonly;
    let st = state(shard);
    let mut out = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        st.open.is_some() as u8,
        st.rewrite_in_progress as u8,
        st.rewrite_scheduled as u8,
        st.last_rewrite_secs,
        st.rewrite_started
            .map_or(-1, |t| t.elapsed().as_secs() as i64),
        if st.last_rewrite_ok { "ok" } else { "err" },
        st.rewrites,
        st.consecutive_failures,
        if st.open.as_ref().is_some_and(|a| a.write_error.is_some()) {
            "err"
        } else {
            "ok"
        },
    );
    if enabled {
        let a = st.open.as_ref();
        out.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:{}\r\naof_delayed_fsync:{}\r\n",
            a.map_or(0, |a| a.current_size),
            a.map_or(0, |a| a.base_size),
            st.rewrite_scheduled as u8,
            a.map_or(0, |a| a.buf.len()),
            a.map_or(0, |a| a.fsync_in_progress.load(Ordering::Relaxed) as u8),
            a.map_or(0, |a| a.delayed_fsync),
        ));
    }
    out
}

/// True while the AOF is written (or waits for its first rewrite).
pub fn is_open(shard: &Shard) -> bool {
    state(shard).open.is_some()
}

/// Shutdown: the buffer written and the file fsynced (Redis's prepareForShutdown).
pub fn flush_for_shutdown(shard: &Shard) {
    let mut st = state(shard);
    if let Some(aof) = st.open.as_mut() {
        crate::log!(Notice, "Calling fsync() on the AOF file.");
        aof.write_buffer(Fsync::Everysec, true);
        let _ = aof.file.sync_data();
    }
}

/// `-MISCONF` while the last AOF write failed (Redis's `writeCommandsDeniedByDiskError`).
pub fn write_error(shard: &Shard) -> Option<String> {
    if !shard.shared.aof_on.load(Ordering::Relaxed) {
        return None;
    }
    state(shard)
        .open
        .as_ref()
        .and_then(|a| a.write_error.clone())
        .map(|e| format!("MISCONF Errors writing to the AOF file: {e}"))
}

// ------------------------------------------------------------------ rewrite

/// BGREWRITEAOF (on shard 0).
pub fn bgrewriteaof(shard: &Rc<Shard>) -> shardis_protocol::Reply {
    use shardis_protocol::Reply;
    {
        let mut st = state(shard);
        if st.rewrite_in_progress {
            return Reply::error(crate::errors::AOF_REWRITE_RUNNING);
        }
        if shard.shared.snapshot_running.load(Ordering::SeqCst) {
            st.rewrite_scheduled = true;
            st.consecutive_failures = 0;
            return Reply::Simple("Background append only file rewriting scheduled");
        }
    }
    if start_rewrite(shard) {
        Reply::Simple("Background append only file rewriting started")
    } else {
        Reply::error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information.")
    }
}

/// Starts a rewrite now if the snapshot slot is free (Redis's
/// `rewriteAppendOnlyFileBackground`); false if it could not start.
fn start_rewrite(shard: &Rc<Shard>) -> bool {
    let cfg = AofConfig::read(shard);
    if !crate::persist::try_claim(shard) {
        return false;
    }
    if let Err(e) = std::fs::create_dir_all(cfg.aof_dir()) {
        crate::log!(
            Warning,
            "Can't open or create append-only dir {}: {}",
            cfg.dirname,
            strerror(&e)
        );
        crate::persist::release(shard);
        state(shard).last_rewrite_ok = false;
        return false;
    }
    {
        let mut st = state(shard);
        st.rewrite_in_progress = true;
        st.rewrite_scheduled = false;
        st.rewrite_started = Some(Instant::now());
        st.rewrites += 1;
        if let Some(aof) = st.open.as_mut() {
            aof.barrier_passed = false;
            aof.barrier_failed = false;
        }
    }
    crate::log!(
        Notice,
        "Background append only file rewriting started by pid {}",
        std::process::id()
    );
    let s = shard.clone();
    glommio::spawn_local(async move { rewrite(s, cfg).await }).detach();
    true
}

/// The rewrite's barrier: a point in the stream where the snapshot starts
/// and, with the AOF on, the incremental file changes.
async fn take_barrier(shard: &Rc<Shard>) -> Result<(), String> {
    let open = state(shard).open.is_some();
    if open && shard.logging() {
        // The same barrier a full sync takes: every shard held at once, a
        // marker logged on each, the snapshot started while they are held.
        let n = shard.shards();
        let tx = shard.shared.next_tx();
        {
            let mut repl = shard.repl().borrow_mut();
            repl.merger.marker(tx);
            repl.aof_marker = Some(tx);
        }
        for s in 0..n {
            shard
                .call_async(ShardId(s), move |sh| async move {
                    sh.store.lock_all(tx).await;
                    sh.log_marker(shardis_replication::LogEntry::Acquire { tx, parts: n });
                })
                .await
                .map_err(|_| "shutting down")?;
        }
        let now = unix_ms();
        for s in 0..n {
            let _ = shard
                .call(ShardId(s), move |sh| {
                    let _ = sh.store.keyspace.borrow_mut().snapshot_begin(now);
                })
                .await;
        }
        for s in 0..n {
            let _ = shard
                .call(ShardId(s), move |sh| {
                    sh.log_marker(shardis_replication::LogEntry::Release { tx });
                    sh.store.unlock_all(tx);
                })
                .await;
        }
        // The pump switches the file where the merger passes the marker.
        loop {
            {
                let st = state(shard);
                match st.open.as_ref() {
                    None => return Ok(()),
                    Some(a) if a.barrier_failed => {
                        return Err("Can't open a new incr AOF at the rewrite barrier".into())
                    }
                    Some(a) if a.barrier_passed => return Ok(()),
                    Some(_) => {}
                }
            }
            if shard.shared.shutting_down() {
                return Err("shutting down".into());
            }
            shard.write_log.signal.kick();
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }
    if open {
        // A replica: its link applies the master's stream in rounds and
        // takes the snapshot between two of them.
        if shard.repl().borrow().link_up() {
            let (tx, rx) = glommio::channels::oneshot::oneshot();
            shard.repl().borrow_mut().aof_snapshot_request = Some(tx);
            rx.await.map_err(|_| "the master link ended")?;
        } else {
            crate::persist::begin_snapshot(shard).await;
            link_barrier(shard);
        }
        let st = state(shard);
        if st.open.as_ref().is_some_and(|a| a.barrier_failed) {
            return Err("Can't open a new incr AOF at the rewrite barrier".into());
        }
        return Ok(());
    }
    crate::persist::begin_snapshot(shard).await;
    Ok(())
}

/// On a replica, right after the link took the rewrite's snapshot between
/// two rounds: the commands of the next round go to the new file.
pub fn link_barrier(shard: &Shard) {
    let mut st = state(shard);
    if let Some(aof) = st.open.as_mut() {
        let policy = Fsync::parse(&shard.shared.config().appendfsync);
        aof.write_buffer(policy, true);
        aof.at_barrier();
    }
}

/// The temp name of a first rewrite's incremental file (Redis's `getTempIncrAofName`).
fn temp_incr_name(filename: &str) -> String {
    format!("temp-{filename}.incr")
}

/// A rewrite, after its start: barrier, snapshot into a temp base, then the
/// manifest switch (Redis's child plus `backgroundRewriteDoneHandler`).
async fn rewrite(shard: Rc<Shard>, cfg: AofConfig) {
    let pid = std::process::id();
    let tmp_name = format!("temp-rewriteaof-bg-{pid}.aof");
    let tmp = cfg.dir.join(&tmp_name);
    let produced: Result<(), String> = async {
        take_barrier(&shard).await?;
        let mut file = std::fs::File::create(&tmp).map_err(|e| {
            format!(
                "Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {}",
                strerror(&e)
            )
        })?;
        rewrite::produce_base(&shard, &cfg, &mut file).await?;
        file.sync_all().map_err(|e| {
            format!(
                "Write error writing append only file on disk: {}",
                strerror(&e)
            )
        })
    }
    .await;
    crate::persist::release(&shard);
    let ok = match produced {
        Ok(()) => {
            crate::log!(
                Notice,
                "Successfully created the temporary AOF base file {}",
                tmp_name
            );
            crate::log!(Notice, "Background AOF rewrite terminated with success");
            finish(&shard, &cfg, &tmp, &tmp_name)
        }
        Err(e) => {
            if !e.is_empty() {
                crate::log!(Warning, "{}", e);
            }
            crate::log!(Warning, "Background AOF rewrite terminated with error");
            false
        }
    };
    let _ = std::fs::remove_file(&tmp);
    let mut st = state(&shard);
    st.rewrite_in_progress = false;
    st.last_rewrite_secs = st
        .rewrite_started
        .take()
        .map_or(-1, |t| t.elapsed().as_secs() as i64);
    st.last_rewrite_ok = ok;
    if ok {
        st.consecutive_failures = 0;
    } else {
        st.consecutive_failures += 1;
        let waiting = st.open.as_ref().is_some_and(|a| a.pending_first_rewrite);
        if waiting {
            // Enabling the AOF retries until a rewrite succeeds, as Redis does.
            if let Some(a) = st.open.as_mut() {
                a.barrier_passed = false;
                a.buf.clear();
                let _ = a.file.set_len(0);
                a.incr_size = 0;
                a.fsynced_size = 0;
            }
            st.rewrite_scheduled = true;
        }
    }
}

/// The manifest switch after a successful rewrite; false if it failed (the
/// old files stay in force).
fn finish(shard: &Rc<Shard>, cfg: &AofConfig, tmp: &Path, tmp_name: &str) -> bool {
    let dir = cfg.aof_dir();
    let mut st = state(shard);
    let mut m = match st.open.as_ref() {
        Some(a) => a.manifest.clone(),
        None => match read_manifest(cfg) {
            Ok(m) => m,
            Err(e) => {
                crate::log!(Warning, "{}", e);
                return false;
            }
        },
    };
    // Named for what it holds: aof-use-rdb-preamble when the rewrite started.
    let base = m.new_base(&cfg.filename, cfg.rdb_preamble);
    let base_path = dir.join(&base);
    if let Err(e) = std::fs::rename(tmp, &base_path) {
        crate::log!(
            Warning,
            "Error trying to rename the temporary AOF base file {} into {}: {}",
            tmp_name,
            base_path.display(),
            strerror(&e)
        );
        return false;
    }
    crate::log!(
        Notice,
        "Successfully renamed the temporary AOF base file {} into {}",
        tmp_name,
        base
    );
    let first = st.open.as_ref().is_some_and(|a| a.pending_first_rewrite);
    let mut new_incr = None;
    if first {
        let temp = temp_incr_name(&cfg.filename);
        let name = m.new_incr(&cfg.filename);
        if let Err(e) = std::fs::rename(dir.join(&temp), dir.join(&name)) {
            crate::log!(
                Warning,
                "Error trying to rename the temporary AOF incr file {} into {}: {}",
                dir.join(&temp).display(),
                dir.join(&name).display(),
                strerror(&e)
            );
            let _ = std::fs::remove_file(&base_path);
            return false;
        }
        crate::log!(
            Notice,
            "Successfully renamed the temporary AOF incr file {} into {}",
            temp,
            name
        );
        new_incr = Some(dir.join(&name));
    }
    m.incr_to_history(st.open.is_some());
    if write_manifest(&dir, &cfg.filename, &m).is_err() {
        let _ = std::fs::remove_file(&base_path);
        if let Some(p) = new_incr {
            let _ = std::fs::remove_file(p);
        }
        return false;
    }
    let base_size = file_size(&base_path);
    match st.open.as_mut() {
        Some(aof) => {
            aof.manifest = m;
            aof.current_size = base_size + aof.incr_size;
            aof.base_size = aof.current_size;
            aof.pending_first_rewrite = false;
            delete_history(aof, cfg);
        }
        None => {
            if !cfg.disable_auto_gc && !m.history.is_empty() {
                for f in std::mem::take(&mut m.history) {
                    crate::log!(
                        Notice,
                        "Removing the history file {} in the background",
                        f.name
                    );
                    let _ = std::fs::remove_file(dir.join(&f.name));
                }
                let _ = write_manifest(&dir, &cfg.filename, &m);
            }
        }
    }
    if first {
        shard.shared.aof_on.store(true, Ordering::SeqCst);
    }
    drop(st);
    crate::log!(Notice, "Background AOF rewrite finished successfully");
    true
}

/// `CONFIG SET appendonly yes` at run time (Redis's `startAppendOnly`): the
/// AOF starts with a rewrite; until it ends, writes go to a temporary incr
/// file that the rewrite renames into the manifest.
pub async fn start_at_runtime(shard: &Rc<Shard>) -> bool {
    let cfg = AofConfig::read(shard);
    if state(shard).open.is_some() {
        return true;
    }
    let manifest = match read_manifest(&cfg) {
        Ok(m) => m,
        Err(e) => {
            crate::log!(Warning, "{}", e);
            return false;
        }
    };
    let dir = cfg.aof_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        crate::log!(
            Warning,
            "Can't open or create append-only dir {}: {}",
            cfg.dirname,
            strerror(&e)
        );
        return false;
    }
    let temp = temp_incr_name(&cfg.filename);
    let file = match open_append(&dir.join(&temp), true) {
        Ok(f) => f,
        Err(e) => {
            crate::log!(
                Warning,
                "Can't open the append-only file {}: {}",
                temp,
                strerror(&e)
            );
            return false;
        }
    };
    enable_logging(shard).await;
    let busy = shard.shared.snapshot_running.load(Ordering::SeqCst);
    {
        let mut st = state(shard);
        st.open = Some(Aof {
            dir,
            filename: cfg.filename.clone(),
            manifest,
            file: Arc::new(file),
            buf: BytesMut::new(),
            incr_size: 0,
            fsynced_size: 0,
            current_size: 0,
            base_size: 0,
            last_fsync_sec: now_sec(),
            fsync_in_progress: Arc::new(AtomicBool::new(false)),
            postponed_since: None,
            held_covered: None,
            delayed_fsync: 0,
            write_error: None,
            last_error_log: 0,
            ts: 0,
            link_db: None,
            pending_first_rewrite: true,
            barrier_passed: false,
            barrier_failed: false,
        });
        if busy || st.rewrite_in_progress {
            st.rewrite_scheduled = true;
            crate::log!(Warning, "AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
            return true;
        }
    }
    if !start_rewrite(shard) {
        crate::log!(Warning, "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error.");
        state(shard).open = None;
        return false;
    }
    true
}

/// `CONFIG SET appendonly no` (Redis's `stopAppendOnly`): the buffer is
/// written and fsynced, the file closed; a first rewrite still pending is
/// dropped with its temp file.
pub fn stop(shard: &Rc<Shard>) {
    let mut st = state(shard);
    let Some(mut aof) = st.open.take() else {
        return;
    };
    shard.shared.aof_on.store(false, Ordering::SeqCst);
    shard
        .shared
        .aof_write_failed
        .store(false, Ordering::Relaxed);
    aof.write_buffer(Fsync::Everysec, true);
    if let Err(e) = aof.file.sync_data() {
        crate::log!(Warning, "Fail to fsync the AOF file: {}", strerror(&e));
    }
    if aof.pending_first_rewrite {
        let _ = std::fs::remove_file(aof.dir.join(temp_incr_name(&aof.filename)));
        st.rewrite_scheduled = false;
    }
    drop(st);
    // Connections waiting for the file go on.
    publish_covered(shard, &[]);
}

/// Starts a scheduled rewrite once the snapshot slot is free, and
/// `auto-aof-rewrite-percentage`'s rewrite (Redis's serverCron checks).
fn cron_rewrite(shard: &Rc<Shard>) {
    let (scheduled, auto) = {
        let mut st = state(shard);
        if st.rewrite_in_progress || shard.shared.snapshot_running.load(Ordering::SeqCst) {
            return;
        }
        let auto = match st.open.as_ref() {
            Some(a) if !a.pending_first_rewrite => {
                let c = shard.shared.config();
                let (pct, min) = (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size);
                drop(c);
                let base = a.base_size.max(1);
                let growth = (a.current_size * 100 / base) as i64 - 100;
                (pct > 0 && a.current_size > min && growth >= pct as i64).then_some(growth)
            }
            _ => None,
        };
        let auto = match auto {
            Some(g) if !rewrite_limited(&mut st) => Some(g),
            _ => None,
        };
        (st.rewrite_scheduled, auto)
    };
    if scheduled {
        start_rewrite(shard);
    } else if let Some(growth) = auto {
        crate::log!(
            Notice,
            "Starting automatic rewriting of AOF on {}% growth",
            growth
        );
        start_rewrite(shard);
    }
}

/// Redis's `aofRewriteLimited`: after 3 failures in a row, automatic
/// rewrites wait 1, 2, 4, … up to 60 minutes.
fn rewrite_limited(st: &mut AofState) -> bool {
    let (time, delay) = st.next_auto_try.unwrap_or((0, 0));
    if st.consecutive_failures < 3 {
        st.next_auto_try = None;
        return false;
    }
    let now = now_sec();
    if time != 0 {
        if now < time {
            return true;
        }
        st.next_auto_try = Some((0, delay));
        return false;
    }
    let delay = if delay == 0 { 1 } else { (delay * 2).min(60) };
    st.next_auto_try = Some((now + delay * 60, delay));
    crate::log!(
        Warning,
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        delay
    );
    true
}
