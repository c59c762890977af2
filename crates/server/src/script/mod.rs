//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! ```text
//!  connection ──EVAL──► eval(): numkeys, SHA1, shebang flags
//!                         │ dispatch(): declared keys all on one other shard?
//!                         │   then the whole run below moves there (one hop)
//!                         │ hold the running shard + every shard of a declared key
//!                         │ (lock_all, ascending; Acquire markers when replicating)
//!                         ▼
//!                       vm.rs (this executor's Lua) ──redis.call──► run.rs
//!                         │                      local shard: inline
//!                         │                      held remote shard: blocking hop
//!                         │                      unheld shard: undo, restart holding all
//!                         ▼
//!                       effects → one transaction in the replication stream
//!                       (MULTI/EXEC when more than one), locks released
//! ```
//!
//! Script bodies live in one process-wide registry (EVAL and SCRIPT LOAD add,
//! SCRIPT FLUSH clears and bumps an epoch); each executor compiles what it runs
//! into its own cache, so EVALSHA on any connection finds a script loaded on
//! another core. The registry's lock is taken only on a local cache miss.

pub mod busy;
pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod fiber;
pub mod functions;
pub mod libs;
pub mod run;
pub mod structlib;
pub mod vm;

use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use hashbrown::HashMap;
use shardis_base::ShardId;
use shardis_commands::{Command, CommandId};
use shardis_keyspace::DbIndex;
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Shebang flag `no-writes`.
pub const NO_WRITES: u32 = 1 << 0;
/// Shebang flag `allow-oom`.
pub const ALLOW_OOM: u32 = 1 << 1;
/// Shebang flag `allow-stale`.
pub const ALLOW_STALE: u32 = 1 << 2;
/// Shebang flag `no-cluster`.
pub const NO_CLUSTER: u32 = 1 << 3;
/// Shebang flag `allow-cross-slot-keys`.
pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;

/// Flag names in the order Redis lists them.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (NO_WRITES, "no-writes"),
    (ALLOW_OOM, "allow-oom"),
    (ALLOW_STALE, "allow-stale"),
    (NO_CLUSTER, "no-cluster"),
    (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
];

/// A script's id: the lower-case hex SHA1 of its body, as EVALSHA names it,
/// held inline (no allocation per EVALSHA).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScriptSha([u8; 40]);

impl ScriptSha {
    /// The id of `body`.
    pub fn of_body(body: &[u8]) -> ScriptSha {
        let digest = sha1_smol::Sha1::from(body).digest().bytes();
        let mut hex = [0u8; 40];
        for (i, b) in digest.iter().enumerate() {
            hex[2 * i] = b"0123456789abcdef"[(b >> 4) as usize];
            hex[2 * i + 1] = b"0123456789abcdef"[(b & 15) as usize];
        }
        ScriptSha(hex)
    }

    /// The id an EVALSHA argument names, lower-cased as Redis does; None when
    /// it cannot name any script (not 40 ASCII characters: Redis's NOSCRIPT).
    pub fn parse(arg: &[u8]) -> Option<ScriptSha> {
        let hex: [u8; 40] = arg.try_into().ok()?;
        if !hex.is_ascii() {
            return None;
        }
        Some(ScriptSha(hex.map(|b| b.to_ascii_lowercase())))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII bytes (see `of_body` and `parse`).
        std::str::from_utf8(&self.0).expect("ASCII script id")
    }
}

impl AsRef<str> for ScriptSha {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for ScriptSha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScriptSha({})", self.as_str())
    }
}

impl std::fmt::Display for ScriptSha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run executes: an EVAL script by SHA1 or a registered function.
pub enum Target {
    /// EVAL/EVALSHA.
    Eval(ScriptSha),
    /// FCALL: the function's name and callback.
    Function(String, mlua::Function),
}

/// Bumped by SCRIPT FLUSH; executors drop their compiled scripts when it moves.
static EPOCH: AtomicU64 = AtomicU64::new(0);

fn registry() -> &'static Mutex<HashMap<String, Bytes>> {
    static R: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Bytes of the script cache (SHA1 names and bodies), for MEMORY STATS's
/// `lua.caches`.
pub fn cache_bytes() -> usize {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.iter().map(|(sha, body)| sha.len() + body.len()).sum()
}

/// Number of cached scripts (MEMORY DOCTOR's "many scripts").
pub fn cache_len() -> usize {
    registry().lock().unwrap_or_else(|e| e.into_inner()).len()
}

thread_local! {
    static VM: RefCell<Option<vm::Vm>> = const { RefCell::new(None) };
}

/// Runs `f` with this executor's interpreter (built on first use, emptied
/// after a SCRIPT FLUSH).
fn with_vm<R>(f: impl FnOnce(&mut vm::Vm) -> R) -> Result<R, String> {
    VM.with(|cell| {
        // In use: a script paused on this core (busy), reached by a command
        // that passed the busy check before the pause began.
        let mut slot = cell.try_borrow_mut().map_err(|_| busy::text())?;
        if slot.is_none() {
            *slot = Some(vm::Vm::new().map_err(|e| format!("ERR {e}"))?);
        }
        let vm = slot.as_mut().expect("vm");
        let epoch = EPOCH.load(Ordering::Acquire);
        if vm.epoch != epoch {
            vm.flush(epoch);
        }
        Ok(f(vm))
    })
}

/// `busy-reply-threshold` in milliseconds.
fn busy_threshold(sh: &crate::shard::Shard) -> u64 {
    sh.shared
        .busy_reply_threshold
        .load(Ordering::Relaxed)
        .max(0) as u64
}

/// Redis's `script_oom`: over maxmemory with nothing left to evict.
fn over_maxmemory(sh: &crate::shard::Shard) -> bool {
    sh.oom_check(shardis_commands::get(CommandId::Set), false)
        .is_some()
}

/// Lower-case hex SHA1, as `redis.sha1hex` and script ids.
pub fn sha1hex(b: &[u8]) -> String {
    ScriptSha::of_body(b).to_string()
}

/// Parses a `#!lua flags=…` first line: the flags (None without a shebang) and
/// how many bytes to skip (the newline stays, so line numbers hold).
pub fn shebang(body: &[u8]) -> Result<(Option<u32>, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((None, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            flags |= match f {
                "no-writes" => NO_WRITES,
                "allow-oom" => ALLOW_OOM,
                "allow-stale" => ALLOW_STALE,
                "no-cluster" => NO_CLUSTER,
                "allow-cross-slot-keys" => ALLOW_CROSS_SLOT,
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            };
        }
    }
    Ok((Some(flags), end))
}

/// Compiles `body` on this executor unless it is cached; returns its flags.
fn ensure_compiled(sha: &ScriptSha, body: &[u8]) -> Result<Option<u32>, String> {
    with_vm(|vm| {
        if let Some(f) = vm.flags(sha) {
            return Ok(f);
        }
        let (flags, skip) = shebang(body)?;
        vm.compile(sha, body, skip, flags)?;
        Ok(flags)
    })?
}

/// A script ready to run: its id, flags and where KEYS end.
struct Resolved {
    sha: ScriptSha,
    flags: Option<u32>,
    ro_cmd: bool,
    numkeys: usize,
}

/// Checks numkeys, finds (or compiles) the script and checks its flags.
fn resolve(conn: &Conn, cmd: &'static Command, args: &[Bytes]) -> Result<Resolved, Reply> {
    let numkeys = match shardis_protocol::decode::parse_int(&args[2]) {
        Some(n) => n,
        None => return Err(Reply::error(errors::NOT_INTEGER)),
    };
    if numkeys > args.len() as i64 - 3 {
        return Err(Reply::error(errors::NUMKEYS_TOO_MANY));
    }
    if numkeys < 0 {
        return Err(Reply::error(errors::NUMKEYS_NEGATIVE));
    }
    let by_sha = matches!(cmd.id, CommandId::Evalsha | CommandId::EvalshaRo);
    let sha = if by_sha {
        match ScriptSha::parse(&args[1]) {
            Some(sha) => sha,
            None => return Err(Reply::error(crate::errors::NOSCRIPT)),
        }
    } else {
        ScriptSha::of_body(&args[1])
    };
    let flags = match with_vm(|vm| vm.flags(&sha)).map_err(Reply::Error)? {
        Some(f) => f,
        None => {
            let body = if by_sha {
                let found = registry()
                    .lock()
                    .ok()
                    .and_then(|r| r.get(sha.as_str()).cloned());
                match found {
                    Some(b) => b,
                    None => return Err(Reply::error(crate::errors::NOSCRIPT)),
                }
            } else {
                args[1].clone()
            };
            let f = ensure_compiled(&sha, &body).map_err(Reply::Error)?;
            if !by_sha {
                if let Ok(mut r) = registry().lock() {
                    r.entry(sha.to_string()).or_insert(body);
                }
            }
            f
        }
    };
    let ro_cmd = matches!(cmd.id, CommandId::EvalRo | CommandId::EvalshaRo);
    prepare(conn, flags, ro_cmd)?;
    Ok(Resolved {
        sha,
        flags,
        ro_cmd,
        numkeys: numkeys as usize,
    })
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
pub async fn eval(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Reply {
    fiber::waited().await;
    let s = match resolve(conn, cmd, args) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let keys = &args[3..3 + s.numkeys];
    let argv = &args[3 + s.numkeys..];
    dispatch(conn, Job::Eval(s.sha), s.flags, s.ro_cmd, keys, argv).await
}

/// What a run executes, named so that another executor can find it in its
/// own Lua state (a [`Target`] holds this executor's compiled function).
pub(crate) enum Job {
    /// EVAL/EVALSHA by SHA1 (the body is in the registry).
    Eval(ScriptSha),
    /// FCALL by function name.
    Function(String),
}

impl Job {
    /// This executor's [`Target`] for the job, compiling the script into this
    /// executor's cache if it was loaded on another core.
    fn target(self) -> Result<Target, Reply> {
        match self {
            Job::Eval(sha) => {
                if with_vm(|vm| vm.flags(&sha).is_none()).map_err(Reply::Error)? {
                    let body = registry()
                        .lock()
                        .ok()
                        .and_then(|r| r.get(sha.as_str()).cloned());
                    // SCRIPT FLUSH since the caller resolved it.
                    let Some(body) = body else {
                        return Err(Reply::error(crate::errors::NOSCRIPT));
                    };
                    ensure_compiled(&sha, &body).map_err(Reply::Error)?;
                }
                Ok(Target::Eval(sha))
            }
            Job::Function(name) => match functions::lookup(&name) {
                Ok(Some((cb, _))) => Ok(Target::Function(name, cb)),
                Ok(None) => Err(Reply::error(errors::FUNCTION_NOT_FOUND)),
                Err(e) => Err(Reply::Error(e)),
            },
        }
    }
}

/// What a run needs of the calling connection, so that it can run on
/// another executor.
#[derive(Clone)]
struct Caller {
    db: DbIndex,
    /// The master link (its scripts are not checked against ACL or OOM).
    master: bool,
    user: Option<std::sync::Arc<shardis_acl::User>>,
    track: Option<crate::tracking::Track>,
    client: u64,
    /// When the run starts (unix µs): the command's start on its own core.
    start_us: u64,
}

impl Caller {
    fn of(conn: &Conn) -> Caller {
        Caller {
            db: conn.db,
            master: conn.master_link,
            user: (!conn.master_link).then(|| conn.user.clone()),
            track: crate::tracking::caller(conn),
            client: conn.info.borrow().id,
            start_us: conn.cmd_start_us,
        }
    }
}

/// Runs a script where its keys are: when every declared key belongs to one
/// shard that is not this connection's, the whole run (locks, Lua, effects)
/// moves to that shard's executor in one hop, so its `redis.call`s are local
/// there instead of one hop each. Otherwise it runs here.
pub(crate) async fn dispatch(
    conn: &mut Conn,
    job: Job,
    flags: Option<u32>,
    ro_cmd: bool,
    keys: &[Bytes],
    argv: &[Bytes],
) -> Reply {
    let caller = Caller::of(conn);
    let shard = conn.shard.clone();
    let n = shard.shards();
    let home = keys.first().map(|k| crate::route::shard_of(k, n));
    let one_shard = home.is_some_and(|h| keys.iter().all(|k| crate::route::shard_of(k, n) == h));
    match home {
        Some(home) if one_shard && home != shard.id && !caller.master => {
            let (keys, argv) = (keys.to_vec(), argv.to_vec());
            shard
                .call_async(home, move |sh| async move {
                    // Its time starts here, after the hop.
                    let caller = Caller {
                        start_us: crate::shared::unix_us(),
                        ..caller
                    };
                    match job.target() {
                        Ok(target) => {
                            run_target(sh, caller, target, flags, ro_cmd, &keys, &argv).await
                        }
                        Err(r) => r,
                    }
                })
                .await
                .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
        }
        // Resolved on this executor a moment ago, with nothing run since:
        // an EVAL script is compiled here already.
        _ => match job {
            Job::Eval(sha) => {
                run_target(shard, caller, Target::Eval(sha), flags, ro_cmd, keys, argv).await
            }
            job => match job.target() {
                Ok(target) => run_target(shard, caller, target, flags, ro_cmd, keys, argv).await,
                Err(r) => r,
            },
        },
    }
}

/// A script inside EXEC, which already holds every shard: runs at once and
/// appends its effects to the transaction's.
pub async fn eval_held(
    conn: &mut Conn,
    cmd: &'static Command,
    args: &[Bytes],
    effects: &mut Vec<shardis_keyspace::Effect>,
) -> Reply {
    let (target, flags, ro_cmd, numkeys) =
        if matches!(cmd.id, CommandId::Fcall | CommandId::FcallRo) {
            let name = String::from_utf8_lossy(&args[1]).into_owned();
            let (cb, flags) = match functions::lookup(&name) {
                Ok(Some(f)) => f,
                Ok(None) => return Reply::error(errors::FUNCTION_NOT_FOUND),
                Err(e) => return Reply::Error(e),
            };
            let Some(nk) = shardis_protocol::decode::parse_int(&args[2]) else {
                return Reply::error(errors::BAD_NUMKEYS);
            };
            if nk > args.len() as i64 - 3 {
                return Reply::error(errors::NUMKEYS_TOO_MANY);
            }
            if nk < 0 {
                return Reply::error(errors::NUMKEYS_NEGATIVE);
            }
            let ro = cmd.id == CommandId::FcallRo;
            if let Err(r) = prepare(conn, Some(flags), ro) {
                return r;
            }
            (Target::Function(name, cb), Some(flags), ro, nk as usize)
        } else {
            match resolve(conn, cmd, args) {
                Ok(s) => (Target::Eval(s.sha), s.flags, s.ro_cmd, s.numkeys),
                Err(r) => return r,
            }
        };
    let keys = &args[3..3 + numkeys];
    let argv = &args[3 + numkeys..];
    let shard = conn.shard.clone();
    let all: Vec<ShardId> = ShardId::all(shard.shards()).collect();
    let caller = Caller::of(conn);
    let (reply, ctx) = run_once(
        &shard, &caller, &target, flags, ro_cmd, keys, argv, &all, None,
    )
    .await;
    effects.extend(ctx.effects);
    reply
}

/// One run of a script with `hold` held; returns the reply and the context.
/// The script runs on this executor's script stack (`fiber`), so past
/// `busy-reply-threshold` it pauses at each hook and the core serves its
/// other clients (`-BUSY`, SCRIPT KILL, SHUTDOWN NOSAVE).
#[allow(clippy::too_many_arguments)]
async fn run_once(
    shard: &Rc<crate::shard::Shard>,
    caller: &Caller,
    target: &Target,
    flags: Option<u32>,
    ro_cmd: bool,
    keys: &[Bytes],
    argv: &[Bytes],
    hold: &[ShardId],
    lazy: Option<&LazyHold>,
) -> (Reply, run::RunCtx) {
    let mut ctx = run::RunCtx::new(shard.clone(), caller.db, hold);
    ctx.read_only = ro_cmd || flags.is_some_and(|f| f & NO_WRITES != 0);
    ctx.legacy = flags.is_none();
    ctx.allow_oom = flags.is_some_and(|f| f & ALLOW_OOM != 0);
    ctx.oom_at_start = !caller.master && over_maxmemory(shard);
    ctx.master = caller.master;
    ctx.user = caller.user.clone();
    ctx.track = caller.track;
    ctx.client = caller.client;
    ctx.clock_us = caller.start_us;
    run::begin(ctx);
    let now = caller.start_us / 1000;
    let tracked = busy::start(now, matches!(target, Target::Function(..)));
    let threshold = busy_threshold(shard);
    // The hook of a run that is not tracked (another core's script is) only
    // pauses: `-BUSY` and SCRIPT KILL belong to the tracked one.
    // Named by a `ScriptSha` (no allocation per run) or a function's name.
    fn hook<N: AsRef<str> + 'static>(
        tracked: bool,
        threshold: u64,
        now: u64,
        name: N,
    ) -> impl Fn() -> Option<String> + 'static {
        move || {
            if tracked {
                busy::check(threshold, name.as_ref())
            } else {
                busy::check_untracked(threshold, now)
            }
        }
    }
    let r = fiber::run_then(
        || {
            if let Some(l) = lazy {
                l.take(shard);
            }
        },
        || match target {
            Target::Eval(sha) => with_vm(|vm| {
                vm.set_hook(busy::HOOK_EVERY, hook(tracked, threshold, now, *sha));
                let r = vm.run(sha, keys, argv);
                vm.remove_hook();
                r
            }),
            Target::Function(name, cb) => functions::with_vm(|vm| {
                vm.set_hook(
                    busy::HOOK_EVERY,
                    hook(tracked, threshold, now, name.clone()),
                );
                let r = vm.call_function(cb, name, keys, argv);
                vm.remove_hook();
                r
            }),
        },
    )
    .await;
    if tracked {
        busy::finish();
    }
    let ctx = run::end().expect("run context");
    let mut reply = r.unwrap_or_else(Reply::Error);
    if ctx.gone {
        reply = Reply::error(errors::SHUTTING_DOWN);
    }
    (reply, ctx)
}

/// Redis's checks before running a script that declares flags
/// (`scriptPrepareForRun`); legacy scripts are checked per call instead.
fn prepare(conn: &Conn, flags: Option<u32>, ro_cmd: bool) -> Result<(), Reply> {
    let Some(f) = flags else {
        return Ok(());
    };
    if conn.master_link {
        return Ok(());
    }
    let sh = &conn.shard;
    if f & NO_WRITES == 0 {
        if f & ALLOW_OOM == 0 && over_maxmemory(sh) {
            return Err(Reply::error(errors::OOM));
        }
        if sh.store.replica.get() && sh.shared.config().replica_read_only {
            return Err(Reply::error(errors::READONLY));
        }
        if ro_cmd {
            return Err(Reply::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
        let min = sh.shared.min_replicas_to_write.load(Ordering::Relaxed);
        if min > 0
            && !sh.store.replica.get()
            && (sh.shared.good_replicas.load(Ordering::Relaxed) as u64) < min
        {
            return Err(Reply::error(errors::NOREPLICAS));
        }
    }
    Ok(())
}

/// Runs a compiled script holding the shards it needs; returns its reply. The
/// effects are already on their way to replicas.
async fn run_target(
    shard: Rc<crate::shard::Shard>,
    caller: Caller,
    target: Target,
    flags: Option<u32>,
    ro_cmd: bool,
    keys: &[Bytes],
    argv: &[Bytes],
) -> Reply {
    let n = shard.shards();
    let local = keys
        .iter()
        .all(|k| crate::route::shard_of(k, n) == shard.id);
    // Every declared key is local, nothing holds this shard and no replica
    // needs the run's markers: the run starts without taking the shard's lock.
    // Until it first lets other tasks run (a busy pause, MIGRATE's wait) it is
    // one synchronous stretch nobody can interleave with, so the lock is taken
    // only then (`LazyHold`), or before rolling back for a restart. Locking and
    // releasing the shard was ~3% of EVALSHA's samples at -P 16.
    let mut hold: Vec<ShardId>;
    if local && !shard.logging() && shard.store.unlocked() {
        let lazy = LazyHold::default();
        let (r, ctx) = run_once(
            &shard,
            &caller,
            &target,
            flags,
            ro_cmd,
            keys,
            argv,
            &[shard.id],
            Some(&lazy),
        )
        .await;
        let restart = ctx.restart && !ctx.all;
        let mut effects = if restart {
            // Held while undoing, so no other client sees the half-run writes.
            lazy.take(&shard);
            run::rollback(&shard, ctx.undo).await;
            // Expiry deletions stay done: they go out with this attempt.
            ctx.kept
        } else {
            ctx.effects
        };
        if !effects.is_empty() {
            shard.log_effects(effects.drain(..));
        }
        lazy.release(&shard);
        if !restart {
            return r;
        }
        hold = ShardId::all(n).collect();
    } else {
        hold = keys
            .iter()
            .map(|k| crate::route::shard_of(k, n))
            .chain(std::iter::once(shard.id))
            .collect();
        hold.sort_unstable();
        hold.dedup();
    }
    let mut caller = caller;
    loop {
        let tx = shard.shared.next_tx();
        let marked = shard.logging();
        let want = crate::multi::whole_shards(hold.iter().copied());
        let (held, all) = crate::multi::acquire(&shard, tx, marked, true, want).await;
        let mut reply = Reply::error(errors::SHUTTING_DOWN);
        let mut effects = Vec::new();
        let mut again = false;
        if all {
            let (r, ctx) = run_once(
                &shard, &caller, &target, flags, ro_cmd, keys, argv, &hold, None,
            )
            .await;
            if ctx.restart && !ctx.all {
                run::rollback(&shard, ctx.undo).await;
                // Expiry deletions stay done: they go out with this attempt.
                effects = ctx.kept;
                again = true;
            } else {
                reply = r;
                effects = ctx.effects;
            }
        }
        release(&shard, tx, held, marked, &mut effects).await;
        if !again {
            return reply;
        }
        hold = ShardId::all(n).collect();
        caller.start_us = crate::shared::unix_us();
    }
}

/// The lock of a run that started on its own shard without one (see
/// `run_target`): taken at most once, when the run first needs it.
#[derive(Default)]
pub(crate) struct LazyHold {
    tx: std::cell::Cell<Option<shardis_replication::TxId>>,
}

impl LazyHold {
    /// Takes the whole shard now, if not yet taken.
    fn take(&self, shard: &crate::shard::Shard) {
        if self.tx.get().is_none() {
            let tx = shard.shared.next_tx();
            shard.store.lock_all_now(tx);
            self.tx.set(Some(tx));
        }
    }

    /// Releases what [`LazyHold::take`] took.
    fn release(&self, shard: &crate::shard::Shard) {
        if let Some(tx) = self.tx.take() {
            shard.store.unlock_all(tx);
        }
    }
}

/// Hands the run's effects to replication (one transaction) and releases
/// every held shard, even after an error.
async fn release(
    shard: &Rc<crate::shard::Shard>,
    tx: shardis_replication::TxId,
    held: crate::multi::Locks,
    marked: bool,
    effects: &mut Vec<shardis_keyspace::Effect>,
) {
    if marked {
        crate::multi::tx_effects(shard, tx, std::mem::take(effects)).await;
    } else if !effects.is_empty() {
        shard.log_effects(effects.drain(..));
    }
    crate::multi::release(shard, tx, marked, true, held).await;
}

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
pub async fn script(_conn: &mut Conn, args: &[Bytes]) -> Reply {
    fiber::waited().await;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity_ok = |exact: i32| {
        let n = args.len() as i32;
        if exact >= 0 {
            n == exact
        } else {
            n >= -exact
        }
    };
    let arity = match sub.as_str() {
        "load" => 3,
        "exists" => -3,
        "flush" => -2,
        "kill" => 2,
        "help" => 2,
        _ => return Reply::Error(errors::unknown_subcommand(&args[1], "SCRIPT")),
    };
    if !arity_ok(arity) {
        return Reply::Error(format!(
            "ERR wrong number of arguments for 'script|{sub}' command"
        ));
    }
    match sub.as_str() {
        "load" => {
            let body = args[2].clone();
            let sha = ScriptSha::of_body(&body);
            if let Err(e) = ensure_compiled(&sha, &body) {
                return Reply::Error(e);
            }
            if let Ok(mut r) = registry().lock() {
                r.entry(sha.to_string()).or_insert(body);
            }
            Reply::bulk_string(sha.to_string())
        }
        "exists" => {
            let r = registry().lock();
            let Ok(r) = r else {
                return Reply::error(errors::SHUTTING_DOWN);
            };
            Reply::Array(
                args[2..]
                    .iter()
                    .map(|s| {
                        let s = String::from_utf8_lossy(s).to_ascii_lowercase();
                        Reply::Integer(r.contains_key(&s) as i64)
                    })
                    .collect(),
            )
        }
        "flush" => {
            if args.len() > 3
                || (args.len() == 3
                    && !args[2].eq_ignore_ascii_case(b"sync")
                    && !args[2].eq_ignore_ascii_case(b"async"))
            {
                return Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            }
            if let Ok(mut r) = registry().lock() {
                r.clear();
            }
            EPOCH.fetch_add(1, Ordering::AcqRel);
            Reply::OK
        }
        "kill" => busy::kill(true),
        _ => Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::ScriptSha;

    #[test]
    fn script_ids_are_lower_case_hex_sha1_and_evalsha_names_them_in_any_case() {
        // redis-cli SCRIPT LOAD "return 1" on redis-server 7.0.15.
        let sha = ScriptSha::of_body(b"return 1");
        assert_eq!(sha.as_str(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(
            ScriptSha::parse(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"),
            Some(sha)
        );
        assert_eq!(
            ScriptSha::parse(b"e0e1f9fabfc9d4800c877a703b823ac0578ff8d"),
            None
        );
        assert_eq!(ScriptSha::parse("é".repeat(20).as_bytes()), None);
    }
}
