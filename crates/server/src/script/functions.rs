//! Redis Functions: FUNCTION LOAD/DELETE/FLUSH/LIST/STATS/KILL/HELP, FCALL and
//! FCALL_RO, `redis.register_function`.
//!
//! Libraries live in one process-wide registry (name → code and the functions
//! it registered). Each executor runs them in its own interpreter, separate from
//! EVAL's as in Redis, rebuilt from the registry when its epoch moves (a LOAD,
//! DELETE or FLUSH anywhere). FCALL runs like EVAL (same shard holding,
//! effects and busy handling), with the keys and arguments passed to the
//! callback. FUNCTION LOAD/DELETE/FLUSH/RESTORE are replicated as commands;
//! RDB files and full syncs carry the libraries as `FUNCTION2` records.

use super::vm::{fail, Vm};
use super::{ALLOW_CROSS_SLOT, ALLOW_OOM, ALLOW_STALE, NO_CLUSTER, NO_WRITES};
use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use hashbrown::HashMap;
use mlua::{Function, Lua, MultiValue, Value};
use shardis_commands::{Command, CommandId};
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// One function a library registered, as FUNCTION LIST shows it.
#[derive(Clone, Debug)]
pub struct FnMeta {
    /// Function name.
    pub name: String,
    /// `description`, if given.
    pub description: Option<String>,
    /// Flag bits (the shebang flag constants).
    pub flags: u32,
}

/// What `redis.register_function` collected while a library loaded.
pub struct Registered {
    /// Name, description and flags.
    pub meta: FnMeta,
    /// The callback.
    pub callback: Function,
}

/// A loaded library.
#[derive(Clone, Debug)]
struct Library {
    code: Bytes,
    functions: Vec<FnMeta>,
}

fn libraries() -> &'static Mutex<BTreeMap<String, Library>> {
    static L: OnceLock<Mutex<BTreeMap<String, Library>>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Bytes the loaded libraries keep (names, code, function names), for
/// MEMORY STATS's `functions.caches`.
pub fn cache_bytes() -> usize {
    let libs = libraries().lock().unwrap_or_else(|e| e.into_inner());
    libs.iter()
        .map(|(name, l)| {
            name.len()
                + l.code.len()
                + l.functions
                    .iter()
                    .map(|f| f.name.len() + f.description.as_ref().map_or(0, |d| d.len()))
                    .sum::<usize>()
        })
        .sum()
}

/// Bumped whenever the set of libraries changes.
static EPOCH: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static COLLECT: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
    static FN_VM: RefCell<Option<FnVm>> = const { RefCell::new(None) };
}

/// This executor's functions interpreter and its callbacks by name.
struct FnVm {
    vm: Vm,
    funcs: HashMap<String, (Function, u32)>,
    epoch: u64,
}

/// Starts collecting `redis.register_function` calls.
pub fn begin_registering() {
    COLLECT.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// Stops collecting and returns what was registered.
pub fn end_registering() -> Vec<Registered> {
    COLLECT.with(|c| c.borrow_mut().take().unwrap_or_default())
}

const NAME_ERR: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn lua_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(n) => Some(super::convert::lua_number_string(*n as f64)),
        Value::Number(n) => Some(super::convert::lua_number_string(*n)),
        _ => None,
    }
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=…, callback=…, flags=…, description=…}`.
pub fn register(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let v: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match v.as_slice() {
        [Value::Table(t)] => {
            let mut name = None;
            let mut callback = None;
            let mut flags = 0u32;
            let mut description = None;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, val) = pair?;
                let key =
                    match &k {
                        Value::String(s) => s.to_string_lossy(),
                        _ => return fail(
                            lua,
                            "named argument key given to redis.register_function is not a string",
                        ),
                    };
                match key.as_str() {
                    "function_name" => match lua_text(&val) {
                        Some(s) => name = Some(s),
                        None => return fail(lua, "function_name argument given to redis.register_function must be a string"),
                    },
                    "description" => match lua_text(&val) {
                        Some(s) => description = Some(s),
                        None => return fail(lua, "description argument given to redis.register_function must be a string"),
                    },
                    "callback" => match val {
                        Value::Function(f) => callback = Some(f),
                        _ => return fail(lua, "callback argument given to redis.register_function must be a function"),
                    },
                    "flags" => {
                        let Value::Table(ft) = val else {
                            return fail(lua, "flags argument to redis.register_function must be a table representing function flags");
                        };
                        for i in 1..=ft.raw_len() {
                            let f: Value = ft.raw_get(i)?;
                            flags |= match lua_text(&f).as_deref() {
                                Some("no-writes") => NO_WRITES,
                                Some("allow-oom") => ALLOW_OOM,
                                Some("allow-stale") => ALLOW_STALE,
                                Some("no-cluster") => NO_CLUSTER,
                                Some("allow-cross-slot-keys") => ALLOW_CROSS_SLOT,
                                _ => return fail(lua, "unknown flag given"),
                            };
                        }
                    }
                    _ => return fail(lua, "unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return fail(
                    lua,
                    "redis.register_function must get a function name argument",
                );
            };
            let Some(callback) = callback else {
                return fail(lua, "redis.register_function must get a callback argument");
            };
            (name, callback, flags, description)
        }
        [n, cb] => {
            let Some(name) = lua_text(n) else {
                return fail(
                    lua,
                    "first argument to redis.register_function must be a string",
                );
            };
            let Value::Function(cb) = cb else {
                return fail(
                    lua,
                    "second argument to redis.register_function must be a function",
                );
            };
            (name, cb.clone(), 0, None)
        }
        _ => return fail(lua, "wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return fail(lua, NAME_ERR);
    }
    let dup = COLLECT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(list) = c.as_mut() else {
            return Some("redis.register_function can only be called on FUNCTION LOAD command");
        };
        if list.iter().any(|r| r.meta.name == name) {
            return Some("Function already exists in the library");
        }
        list.push(Registered {
            meta: FnMeta {
                name: name.clone(),
                description: description.clone(),
                flags,
            },
            callback: callback.clone(),
        });
        None
    });
    match dup {
        Some(msg) => fail(lua, msg),
        None => Ok((true, Value::Nil)),
    }
}

/// `#!lua name=<lib>`: the library name and the bytes to skip.
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[2..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix("name=") {
            Some(n) => {
                if name.is_some() {
                    return Err(
                        "ERR Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(n.to_string());
            }
            None => return Err(format!("ERR Invalid metadata value given: {part}")),
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err(format!("ERR {NAME_ERR}"));
    }
    Ok((name, end))
}

/// Runs `f` with this executor's functions interpreter, rebuilt from the
/// registry if a library changed since.
fn with_fn_vm<R>(f: impl FnOnce(&mut FnVm) -> R) -> Result<R, String> {
    FN_VM.with(|cell| {
        // In use: a function paused on this core (busy), reached by a command
        // that passed the busy check before the pause began.
        let mut slot = cell.try_borrow_mut().map_err(|_| super::busy::text())?;
        let epoch = EPOCH.load(Ordering::Acquire);
        if slot.as_ref().is_none_or(|v| v.epoch != epoch) {
            let vm = Vm::new().map_err(|e| format!("ERR {e}"))?;
            let libs = libraries().lock().map_err(|e| e.to_string())?.clone();
            let mut funcs = HashMap::new();
            for lib in libs.values() {
                let (_, skip) = metadata(&lib.code)?;
                for r in vm.load_library(&lib.code, skip)? {
                    funcs.insert(r.meta.name, (r.callback, r.meta.flags));
                }
            }
            *slot = Some(FnVm { vm, funcs, epoch });
        }
        Ok(f(slot.as_mut().expect("functions vm")))
    })
}

/// Runs `f` with the functions interpreter (the busy hook and the run itself).
pub fn with_vm<R>(f: impl FnOnce(&Vm) -> R) -> Result<R, String> {
    with_fn_vm(|v| f(&v.vm))
}

/// The callback of function `name` on this executor.
pub fn lookup(name: &str) -> Result<Option<(Function, u32)>, String> {
    with_fn_vm(|v| v.funcs.get(name).cloned())
}

/// FCALL / FCALL_RO.
pub async fn fcall(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Reply {
    super::fiber::waited().await;
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let flags = match lookup(&name) {
        Ok(Some((_, flags))) => flags,
        Ok(None) => return Reply::error(errors::FUNCTION_NOT_FOUND),
        Err(e) => return Reply::Error(e),
    };
    let Some(numkeys) = shardis_protocol::decode::parse_int(&args[2]) else {
        return Reply::error(errors::BAD_NUMKEYS);
    };
    if numkeys > args.len() as i64 - 3 {
        return Reply::error(errors::NUMKEYS_TOO_MANY);
    }
    if numkeys < 0 {
        return Reply::error(errors::NUMKEYS_NEGATIVE);
    }
    let ro_cmd = cmd.id == CommandId::FcallRo;
    if let Err(r) = super::prepare(conn, Some(flags), ro_cmd) {
        return r;
    }
    let nk = numkeys as usize;
    super::dispatch(
        conn,
        super::Job::Function(name),
        Some(flags),
        ro_cmd,
        &args[3..3 + nk],
        &args[3 + nk..],
    )
    .await
}

/// Every library's code, for an RDB snapshot.
pub fn library_codes() -> Vec<Bytes> {
    libraries()
        .lock()
        .map(|l| l.values().map(|x| x.code.clone()).collect())
        .unwrap_or_default()
}

/// Checks `codes` and makes them the loaded libraries: `replace` them all
/// (an RDB load), or add them to the current ones, replacing same-named
/// libraries when `replace_same` (FUNCTION RESTORE).
fn install(codes: Vec<Bytes>, flush: bool, replace_same: bool) -> Result<(), String> {
    let mut next = if flush {
        BTreeMap::new()
    } else {
        libraries().lock().map(|l| l.clone()).unwrap_or_default()
    };
    let vm = Vm::new().map_err(|e| format!("ERR {e}"))?;
    for code in codes {
        let (name, skip) = metadata(&code)?;
        if next.contains_key(&name) && !replace_same {
            return Err(format!("ERR Library {name} already exists"));
        }
        let registered = vm.load_library(&code, skip)?;
        if registered.is_empty() {
            return Err(errors::NO_FUNCTIONS.into());
        }
        for r in &registered {
            let clash = next
                .iter()
                .filter(|(lib, _)| **lib != name)
                .any(|(_, l)| l.functions.iter().any(|f| f.name == r.meta.name));
            if clash {
                return Err(format!("ERR Function {} already exists", r.meta.name));
            }
        }
        let functions = registered.into_iter().map(|r| r.meta).collect();
        next.insert(name, Library { code, functions });
    }
    if let Ok(mut l) = libraries().lock() {
        *l = next;
    }
    bump();
    Ok(())
}

/// The libraries of an RDB file replace the loaded ones.
pub fn replace_all(codes: Vec<Bytes>) -> Result<(), String> {
    if codes.is_empty() && libraries().lock().map(|l| l.is_empty()).unwrap_or(true) {
        return Ok(());
    }
    install(codes, true, false).map_err(|e| format!("Failed loading library: {e}"))
}

fn bump() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// Replicates a FUNCTION command that changed the libraries.
fn propagate(conn: &mut Conn, args: &[Bytes]) {
    if conn.master_link {
        return;
    }
    conn.propagate(shardis_keyspace::Effect {
        db: conn.db,
        args: args.to_vec(),
    });
    conn.shard.counters().dirty.fetch_add(1, Ordering::Relaxed);
}

/// FUNCTION <subcommand>.
pub async fn function(conn: &mut Conn, args: &[Bytes]) -> Reply {
    super::fiber::waited().await;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "load" => -3,
        "delete" => 3,
        "flush" => -2,
        "list" => -2,
        "stats" | "kill" | "help" | "dump" => 2,
        "restore" => -3,
        _ => return Reply::Error(errors::unknown_subcommand(&args[1], "FUNCTION")),
    };
    let n = args.len() as i32;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return Reply::Error(format!(
            "ERR wrong number of arguments for 'function|{sub}' command"
        ));
    }
    match sub.as_str() {
        "load" => load(conn, args),
        "delete" => {
            let name = String::from_utf8_lossy(&args[2]).into_owned();
            let removed = libraries().lock().map(|mut l| l.remove(&name).is_some());
            if !matches!(removed, Ok(true)) {
                return Reply::error("ERR Library not found");
            }
            bump();
            propagate(conn, args);
            Reply::OK
        }
        "flush" => {
            if args.len() > 3
                || (args.len() == 3
                    && !args[2].eq_ignore_ascii_case(b"sync")
                    && !args[2].eq_ignore_ascii_case(b"async"))
            {
                return Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            }
            if let Ok(mut l) = libraries().lock() {
                l.clear();
            }
            bump();
            propagate(conn, args);
            Reply::OK
        }
        "list" => list(args),
        "stats" => {
            let (libs, fns) = libraries()
                .lock()
                .map(|l| {
                    (
                        l.len(),
                        l.values().map(|x| x.functions.len()).sum::<usize>(),
                    )
                })
                .unwrap_or((0, 0));
            Reply::Map(vec![
                (Reply::bulk(b"running_script"), Reply::Nil),
                (
                    Reply::bulk(b"engines"),
                    Reply::Map(vec![(
                        Reply::bulk(b"LUA"),
                        Reply::Map(vec![
                            (Reply::bulk(b"libraries_count"), Reply::Integer(libs as i64)),
                            (Reply::bulk(b"functions_count"), Reply::Integer(fns as i64)),
                        ]),
                    )]),
                ),
            ])
        }
        "kill" => super::busy::kill(false),
        "dump" => {
            let codes = library_codes();
            let refs: Vec<&[u8]> = codes.iter().map(|c| c.as_ref()).collect();
            Reply::Bulk(Bytes::from(shardis_rdb::functions_payload(&refs)))
        }
        "restore" => {
            let (flush, replace) = match args.get(3) {
                None => (false, false),
                Some(p) if args.len() == 4 => {
                    if p.eq_ignore_ascii_case(b"flush") {
                        (true, false)
                    } else if p.eq_ignore_ascii_case(b"append") {
                        (false, false)
                    } else if p.eq_ignore_ascii_case(b"replace") {
                        (false, true)
                    } else {
                        return Reply::error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
                    }
                }
                Some(_) => {
                    return Reply::Error(format!(
                        "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                        String::from_utf8_lossy(&args[1])
                    ))
                }
            };
            let Some(codes) = shardis_rdb::parse_functions_payload(&args[2]) else {
                return Reply::error(errors::DUMP_PAYLOAD_INVALID);
            };
            match install(codes, flush, replace) {
                Ok(()) => {
                    propagate(conn, args);
                    Reply::OK
                }
                Err(e) => Reply::Error(e),
            }
        }
        _ => Reply::Array(HELP.iter().map(|l| Reply::Status(l.to_string())).collect()),
    }
}

fn load(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if args[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return Reply::Error(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(&args[i])
            ));
        }
        i += 1;
    }
    let code = args[args.len() - 1].clone();
    let (name, skip) = match metadata(&code) {
        Ok(x) => x,
        Err(e) => return Reply::Error(e),
    };
    let existing = libraries().lock().map(|l| l.clone()).unwrap_or_default();
    if existing.contains_key(&name) && !replace {
        return Reply::Error(format!("ERR Library '{name}' already exists"));
    }
    // Load in a scratch interpreter: a failed load leaves nothing behind.
    let registered = match Vm::new()
        .map_err(|e| format!("ERR {e}"))
        .and_then(|vm| vm.load_library(&code, skip))
    {
        Ok(r) => r,
        Err(e) => return Reply::Error(e),
    };
    if registered.is_empty() {
        return Reply::error(errors::NO_FUNCTIONS);
    }
    for r in &registered {
        let clash = existing
            .iter()
            .filter(|(lib, _)| **lib != name)
            .any(|(_, l)| l.functions.iter().any(|f| f.name == r.meta.name));
        if clash {
            return Reply::Error(format!("ERR Function {} already exists", r.meta.name));
        }
    }
    let functions = registered.into_iter().map(|r| r.meta).collect();
    if let Ok(mut l) = libraries().lock() {
        l.insert(name.clone(), Library { code, functions });
    }
    bump();
    propagate(conn, args);
    Reply::bulk_string(name)
}

fn list(args: &[Bytes]) -> Reply {
    let mut pattern: Option<Bytes> = None;
    let mut code = false;
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") {
            code = true;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") {
            let Some(p) = args.get(i + 1) else {
                return Reply::error("ERR library name argument was not given");
            };
            if pattern.is_some() {
                return Reply::error("ERR Unknown argument libraryname");
            }
            pattern = Some(p.clone());
            i += 1;
        } else {
            return Reply::Error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&args[i])
            ));
        }
        i += 1;
    }
    let libs = libraries().lock().map(|l| l.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (name, lib) in libs {
        if let Some(p) = &pattern {
            if !shardis_keyspace::glob::glob_match(p, name.as_bytes(), false) {
                continue;
            }
        }
        let functions = lib
            .functions
            .iter()
            .map(|f| {
                let flags = super::FLAG_NAMES
                    .iter()
                    .filter(|(bit, _)| f.flags & bit != 0)
                    .map(|(_, n)| Reply::Status(n.to_string()))
                    .collect();
                Reply::Map(vec![
                    (Reply::bulk(b"name"), Reply::bulk_string(f.name.clone())),
                    (
                        Reply::bulk(b"description"),
                        f.description.clone().map_or(Reply::Nil, Reply::bulk_string),
                    ),
                    (Reply::bulk(b"flags"), Reply::Set(flags)),
                ])
            })
            .collect();
        let mut entry = vec![
            (Reply::bulk(b"library_name"), Reply::bulk_string(name)),
            (Reply::bulk(b"engine"), Reply::bulk(b"LUA")),
            (Reply::bulk(b"functions"), Reply::Array(functions)),
        ];
        if code {
            entry.push((Reply::bulk(b"library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(entry));
    }
    Reply::Array(out)
}

const HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];
