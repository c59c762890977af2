//! RDB persistence: SAVE/BGSAVE to disk from fork-free snapshots, loading at
//! start-up and for full syncs, save points and the shutdown save.
//!
//! A save takes every shard at once (the same barrier a full sync uses) so the
//! file is one point in time across shards, then each shard serializes its keys
//! in chunks while it keeps serving; writes to not-yet-saved keys keep their
//! pre-image. The file is written to a temp name, fsynced and renamed.

use crate::shard::Shard;
use crate::shared::unix_ms;
use bytes::Bytes;
use shardis_base::ShardId;
use shardis_keyspace::DbIndex;
use shardis_keyspace::Entry;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Claims the one snapshot slot (one snapshot at a time, as Redis has one child).
pub fn try_claim(shard: &Shard) -> bool {
    shard
        .shared
        .snapshot_running
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Waits for the snapshot slot.
pub async fn claim(shard: &Shard) {
    while !try_claim(shard) {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// Frees the snapshot slot.
pub fn release(shard: &Shard) {
    shard.shared.snapshot_running.store(false, Ordering::SeqCst);
}

/// Starts a snapshot on every shard at one point in time (no replication marker).
pub async fn begin_snapshot(shard: &Rc<Shard>) {
    let n = shard.shards();
    let tx = shard.shared.next_tx();
    for s in 0..n {
        let _ = shard
            .call_async(
                ShardId(s),
                move |sh| async move { sh.store.lock_all(tx).await },
            )
            .await;
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
            .call(ShardId(s), move |sh| sh.store.unlock_all(tx))
            .await;
    }
}

/// The dump file path from `dir` and `dbfilename`.
pub fn dump_path(shard: &Shard) -> std::path::PathBuf {
    let c = shard.shared.config();
    std::path::Path::new(&c.dir).join(&c.dbfilename)
}

/// Where a save writes before the atomic rename: `temp-<pid>.rdb` beside the dump.
pub fn temp_path(shard: &Shard) -> std::path::PathBuf {
    dump_path(shard).with_file_name(format!("temp-{}.rdb", std::process::id()))
}

/// Writes a snapshot of the whole dataset to the dump file. The caller holds
/// the snapshot slot.
pub async fn save(shard: &Rc<Shard>) -> Result<(), String> {
    let started = Instant::now();
    let path = dump_path(shard);
    let tmp = temp_path(shard);
    let mut file = std::fs::File::create(&tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {e}",
            tmp.display(),
            cwd()
        )
    })?;
    let dirty_before = shard.shared.total(|c| &c.dirty);
    let repl = crate::repl::save_snapshot(shard).await;
    let mut failed: Option<String> = None;
    let ok = crate::repl::produce_rdb(
        shard,
        repl,
        crate::repl::SAVE_STEP,
        |chunk: Bytes| match file.write_all(&chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(format!("Write error saving DB on disk: {e}"));
                false
            }
        },
        || true,
    )
    .await;
    if !ok || failed.is_some() {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed.unwrap_or_else(|| "snapshot aborted".into()));
    }
    file.sync_all()
        .map_err(|e| format!("Write error saving DB on disk: {e}"))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "Error moving temp DB file {} on the final destination {} (in server root dir {}): {e}",
            tmp.display(),
            path.display(),
            cwd()
        )
    })?;
    let p = &shard.shared.persistence;
    p.lock()
        .unwrap_or_else(|e| e.into_inner())
        .saved(dirty_before, started.elapsed());
    shard
        .shared
        .bgsave_failed
        .store(false, std::sync::atomic::Ordering::Relaxed);
    crate::log!(Notice, "DB saved on disk");
    Ok(())
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// What INFO persistence and LASTSAVE report.
#[derive(Debug, Default)]
pub struct Persistence {
    /// Unix seconds of the last successful save.
    pub last_save: u64,
    /// `dirty` counter value at the last save.
    pub dirty_at_save: u64,
    /// A BGSAVE is running.
    pub bgsave_in_progress: bool,
    /// When the running BGSAVE began.
    pub bgsave_started: Option<Instant>,
    /// Outcome of the last BGSAVE.
    pub last_bgsave_ok: bool,
    /// Seconds the last BGSAVE took (-1: none yet).
    pub last_bgsave_secs: i64,
    /// Saves done.
    pub saves: u64,
    /// Keys loaded by the last load.
    pub last_load_keys: u64,
    /// Keys expired by the last load.
    pub last_load_expired: u64,
}

impl Persistence {
    fn saved(&mut self, dirty_before: u64, took: Duration) {
        self.last_save = unix_ms() / 1000;
        self.dirty_at_save = dirty_before;
        self.saves += 1;
        self.last_bgsave_secs = took.as_secs() as i64;
        // As Redis's rdbSave: any successful save (SAVE too) clears the error.
        self.last_bgsave_ok = true;
    }
}

/// BGSAVE: saves in the background; the caller already holds the slot.
pub fn spawn_bgsave(shard: &Rc<Shard>) {
    let s = shard.clone();
    {
        let mut p = s
            .shared
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.bgsave_in_progress = true;
        p.bgsave_started = Some(Instant::now());
    }
    crate::log!(
        Notice,
        "Background saving started by pid {}",
        std::process::id()
    );
    glommio::spawn_local(async move {
        let r = save(&s).await;
        release(&s);
        let mut p = s
            .shared
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.bgsave_in_progress = false;
        p.bgsave_started = None;
        p.last_bgsave_ok = r.is_ok();
        s.shared
            .bgsave_failed
            .store(r.is_err(), std::sync::atomic::Ordering::Relaxed);
        match r {
            Ok(()) => crate::log!(Notice, "Background saving terminated with success"),
            Err(e) => {
                crate::log!(Warning, "{}", e);
                crate::log!(Warning, "Background saving error");
            }
        }
    })
    .detach();
}

/// Loads an RDB image into the shards. `as_master` drops keys that are already
/// expired (a replica keeps them until its master deletes them). Returns
/// (keys loaded, keys expired).
///
/// Streams: each key is installed in batches while the file is parsed, so the
/// parsed dataset never sits in memory whole. As in Redis, a file that turns
/// out corrupt part-way leaves the keys before the fault loaded; callers
/// flush or exit.
pub async fn load_rdb_bytes(
    shard: &Rc<Shard>,
    data: &[u8],
    as_master: bool,
) -> Result<(u64, u64), String> {
    load_rdb_prefix(shard, data, as_master)
        .await
        .map(|(loaded, expired, _)| (loaded, expired))
}

/// [`load_rdb_bytes`] for an RDB that may be followed by more bytes (an
/// AOF's RDB preamble): also returns where the RDB ended.
pub async fn load_rdb_prefix(
    shard: &Rc<Shard>,
    data: &[u8],
    as_master: bool,
) -> Result<(u64, u64, usize), String> {
    let mut reader = shardis_rdb::RdbReader::new(data).map_err(|e| e.to_string())?;
    let mut loader = Loader::new(shard, as_master);
    while let Some(item) = reader.next_item().map_err(|e| e.to_string())? {
        loader.item(item).await?;
    }
    let (loaded, expired) = loader.finish().await?;
    Ok((loaded, expired, reader.offset()))
}

/// Installs an RDB's items as they are parsed, whether from a whole file or
/// from a transfer still arriving (a replica's diskless load): keys go to
/// their shards in batches of 1024, a bounded number in flight, so a slow
/// shard cannot make the file pile up in its queue; function libraries
/// replace the current ones at the end.
pub(crate) struct Loader<'a> {
    shard: &'a Rc<Shard>,
    as_master: bool,
    /// Install into each shard's staged dataset (`Shard::staged`).
    staged: bool,
    header: shardis_rdb::RdbFile,
    header_logged: bool,
    databases: usize,
    now: u64,
    per_shard: Vec<Vec<shardis_rdb::RdbEntry>>,
    pending: std::collections::VecDeque<crate::shard::Pending<Result<(), String>>>,
    functions: Vec<Bytes>,
    loaded: u64,
    expired: u64,
}

impl<'a> Loader<'a> {
    /// A loader into the shards of `shard`'s server. `as_master` drops keys
    /// that are already expired (a replica keeps them until its master
    /// deletes them).
    pub(crate) fn new(shard: &'a Rc<Shard>, as_master: bool) -> Loader<'a> {
        let n = shard.shards();
        Loader {
            shard,
            as_master,
            staged: false,
            header: shardis_rdb::RdbFile::default(),
            header_logged: false,
            databases: shard.store.keyspace.borrow().databases(),
            now: unix_ms(),
            per_shard: (0..n).map(|_| Vec::new()).collect(),
            pending: std::collections::VecDeque::new(),
            functions: Vec::new(),
            loaded: 0,
            expired: 0,
        }
    }

    /// Installs keys into each shard's staged dataset, which must exist,
    /// instead of the live one.
    pub(crate) fn into_staged(mut self) -> Loader<'a> {
        self.staged = true;
        self
    }

    /// Takes one parsed item.
    pub(crate) async fn item(&mut self, item: shardis_rdb::RdbItem) -> Result<(), String> {
        let e = match item {
            shardis_rdb::RdbItem::Aux(k, v) => {
                self.header.aux.push((k, v));
                return Ok(());
            }
            shardis_rdb::RdbItem::Function(code) => {
                self.functions.push(code);
                return Ok(());
            }
            shardis_rdb::RdbItem::Entry(e) => e,
            _ => return Ok(()),
        };
        self.log_header();
        if e.db >= self.databases {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting",
                self.databases
            ));
        }
        if self.as_master && e.expire_at_ms.is_some_and(|t| t < self.now) {
            self.expired += 1;
            return Ok(());
        }
        self.loaded += 1;
        let s = crate::route::shard_of(&e.key, self.per_shard.len());
        self.per_shard[s.get()].push(e);
        if self.per_shard[s.get()].len() >= 1024 {
            let batch = std::mem::take(&mut self.per_shard[s.get()]);
            self.post(s, batch).await?;
            while self.pending.len() > 4 * self.per_shard.len() {
                if let Some(p) = self.pending.pop_front() {
                    p.wait().await.map_err(|_| "shard gone")??;
                }
            }
        }
        Ok(())
    }

    async fn post(&mut self, s: ShardId, batch: Vec<shardis_rdb::RdbEntry>) -> Result<(), String> {
        let staged = self.staged;
        self.pending.push_back(
            self.shard
                .post(s, move |sh| {
                    if staged {
                        match sh.store.staged.borrow_mut().as_mut() {
                            Some(ks) => install_into(ks, batch),
                            None => Err("the staged dataset is gone".into()),
                        }
                    } else {
                        install_into(&mut sh.store.keyspace.borrow_mut(), batch)
                    }
                })
                .await
                .map_err(|_| "shard gone")?,
        );
        Ok(())
    }

    fn log_header(&mut self) {
        if !self.header_logged {
            self.header_logged = true;
            log_header(&self.header.aux_info());
        }
    }

    /// After the file's end: installs what is left and the libraries;
    /// returns (keys loaded, keys expired).
    pub(crate) async fn finish(mut self) -> Result<(u64, u64), String> {
        self.log_header();
        for s in 0..self.per_shard.len() {
            let batch = std::mem::take(&mut self.per_shard[s]);
            if !batch.is_empty() {
                self.post(ShardId(s), batch).await?;
            }
        }
        for p in std::mem::take(&mut self.pending) {
            p.wait().await.map_err(|_| "shard gone")??;
        }
        // The file's libraries replace the current ones (a full sync brings the
        // master's).
        crate::script::functions::replace_all(std::mem::take(&mut self.functions))?;
        let mut p = self
            .shard
            .shared
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.last_load_keys = self.loaded;
        p.last_load_expired = self.expired;
        Ok((self.loaded, self.expired))
    }
}

/// Redis's log lines for the aux fields at the head of an RDB.
fn log_header(aux: &shardis_rdb::AuxInfo) {
    if let Some(v) = &aux.redis_ver {
        crate::log!(Notice, "Loading RDB produced by version {}", v);
    }
    if let Some(ct) = aux.ctime {
        let age = (unix_ms() / 1000) as i64 - ct;
        crate::log!(Notice, "RDB age {} seconds", age.max(0));
    }
    if let Some(mem) = aux.used_mem {
        crate::log!(
            Notice,
            "RDB memory usage when created {:.2} Mb",
            mem as f64 / (1024.0 * 1024.0)
        );
    }
    if aux.aof_base.is_some_and(|b| b != 0) {
        crate::log!(Notice, "RDB is base AOF");
    }
}

fn install_into(
    ks: &mut shardis_keyspace::Keyspace,
    batch: Vec<shardis_rdb::RdbEntry>,
) -> Result<(), String> {
    let now = crate::shared::unix_ms();
    for e in batch {
        let value = shardis_keyspace::rdbconv::from_rdb(e.value)?;
        ks.put_entry(
            DbIndex(e.db),
            e.key,
            Entry {
                value,
                expire_at_ms: e.expire_at_ms,
            },
            now,
        );
    }
    Ok(())
}

/// The aux fields at the head of an RDB image (empty if it does not parse).
fn header_aux(data: &[u8]) -> shardis_rdb::AuxInfo {
    let mut file = shardis_rdb::RdbFile::default();
    if let Ok(mut reader) = shardis_rdb::RdbReader::new(data) {
        while let Ok(Some(shardis_rdb::RdbItem::Aux(k, v))) = reader.next_item() {
            file.aux.push((k, v));
        }
    }
    file.aux_info()
}

/// Loads the dump file at start-up, if there is one.
pub async fn load_at_startup(shard: &Rc<Shard>) -> Result<(), String> {
    let path = dump_path(shard);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("Fatal error loading the DB: {e}. Exiting.")),
    };
    let started = Instant::now();
    // A replica keeps keys its master has not deleted yet, expired or not.
    let as_master = shard.shared.config().replicaof.is_none();
    let (loaded, expired) = load_rdb_bytes(shard, &data, as_master)
        .await
        .map_err(|e| format!("Fatal error loading the DB: {e}. Exiting."))?;
    crate::repl::restore_saved_history(shard, &header_aux(&data)).await;
    crate::log!(
        Notice,
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded,
        expired
    );
    crate::log!(
        Notice,
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    shard
        .shared
        .persistence
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_save = unix_ms() / 1000;
    Ok(())
}

/// Checks the save points (Redis's serverCron): BGSAVE when `changes` writes
/// happened within `seconds`.
pub fn check_save_points(shard: &Rc<Shard>) {
    let points = shard.shared.config().save.clone();
    if points.is_empty() {
        return;
    }
    let dirty = shard.shared.total(|c| &c.dirty);
    let (since, last) = {
        let p = shard
            .shared
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (dirty.saturating_sub(p.dirty_at_save), p.last_save)
    };
    let now = unix_ms() / 1000;
    for (secs, changes) in points {
        if since >= changes && now.saturating_sub(last) >= secs {
            if try_claim(shard) {
                crate::log!(Notice, "{} changes in {} seconds. Saving...", changes, secs);
                spawn_bgsave(shard);
            }
            return;
        }
    }
}
