//! One executor's Lua interpreter: the sandbox Redis 7.0 gives scripts, the
//! `redis` library, and the compiled-script cache.
//!
//! The sandbox: only Redis's globals exist (no `os`, `io`, `print`, `dofile`,
//! `require`, …); reading an unknown global and writing any global raise
//! Redis's errors. Redis does this with read-only tables patched into its Lua;
//! here `_G` is an empty table whose metatable reads from a hidden table of the
//! real globals and refuses writes, and each library is an empty proxy of the
//! same kind.

use super::convert::{err_table, error_text, format_g, lua_to_reply, reply_to_lua};
use super::run::{self, CallOutcome};
use bytes::Bytes;
use hashbrown::HashMap;
use mlua::{ChunkMode, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use shardis_protocol::Reply;
use std::cell::RefCell;
use std::rc::Rc;

/// Lua code run once per interpreter; its chunk name marks frames the error
/// handler skips.
const PRELUDE: &str = r#"
local getinfo, B, take_pending = ...
local setmetatable, error, tostring, type, xpcall = setmetatable, error, tostring, type, xpcall
local function handler(err)
  local lvl = 2
  local i = getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == '=shardis') do
    lvl = lvl + 1
    i = getinfo(lvl, 'nSl')
  end
  if type(err) ~= 'table' then
    local m, positioned = take_pending()
    if m then
      if positioned and i then m = i.short_src .. ':' .. i.currentline .. ': ' .. m end
      err = m
    end
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
-- Redis 7.0's pcall hands back an error table's message, not the table.
local orig_pcall = pcall
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
pcall = function(...) return pcall_result(orig_pcall(...)) end
local function run(f)
  return xpcall(f, handler)
end
local function readonly()
  error("Attempt to modify a readonly table", 2)
end
local function protect(t)
  return setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
end
local function strict_index(T)
  return function(_, k)
    local v = T[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end
end
-- FUNCTION LOAD sees only `redis` with the library API (Redis 7.0).
local function load_index(api)
  local redis = setmetatable({}, {__index = strict_index(api), __newindex = readonly, __metatable = false})
  return strict_index({redis = redis})
end
-- FCALL: the callback gets KEYS and ARGV as arguments.
local function call_fn(cb, keys, args)
  return xpcall(function() return cb(keys, args) end, handler)
end
return handler, run, protect, strict_index(B), readonly, load_index, call_fn
"#;

/// Libraries exposed to scripts as read-only proxies.
const LIBS: &[&str] = &[
    "redis",
    "string",
    "table",
    "math",
    "coroutine",
    "cjson",
    "cmsgpack",
    "struct",
    "bit",
];

/// Base functions Redis 7.0 does not give scripts.
const REMOVED: &[&str] = &[
    "print", "dofile", "loadfile", "setfenv", "getfenv", "require", "module", "newproxy",
    "package", "os", "io", "debug",
];

thread_local! {
    /// The Lua-side message of the last error raised from Rust (a hook or a
    /// library): mlua raises its own error object, and the error handler
    /// swaps it for this text, as Redis's C code would have raised.
    static PENDING: std::cell::RefCell<Option<(String, bool)>> = const { std::cell::RefCell::new(None) };
}

/// An error a library function raises (`luaL_error`): the handler prefixes
/// the script's position (`user_script:1: `).
pub fn lua_error(msg: impl Into<String>) -> mlua::Error {
    let msg = msg.into();
    PENDING.with(|p| *p.borrow_mut() = Some((msg.clone(), true)));
    mlua::Error::RuntimeError(msg)
}

fn take_pending() -> (Option<String>, bool) {
    match PENDING.with(|p| p.borrow_mut().take()) {
        Some((m, positioned)) => (Some(m), positioned),
        None => (None, false),
    }
}

/// A compiled script.
pub struct Compiled {
    /// The chunk, ready to call.
    pub func: Function,
    /// Shebang flags (None: a script without a shebang, Redis's legacy mode).
    pub flags: Option<u32>,
}

/// One executor's interpreter.
pub struct Vm {
    lua: Lua,
    /// The real globals, behind the read-only `_G`.
    backing: Table,
    /// The error handler a script runs under (Redis's `__redis__err__handler`).
    handler: Function,
    run: Function,
    scripts: HashMap<super::ScriptSha, Compiled>,
    /// The registry epoch the cache belongs to (SCRIPT FLUSH bumps it).
    pub epoch: u64,
    /// `_G`'s metatable: its `__index` is switched while a library loads.
    mt: Table,
    global_index: Function,
    load_index: Function,
    call_fn: Function,
    /// The count the Lua hook is installed with (0: not installed yet).
    hook_every: std::cell::Cell<u32>,
}

impl Vm {
    /// Builds the sandboxed interpreter.
    pub fn new() -> mlua::Result<Vm> {
        // The debug library is opened for the error handler only (it reads
        // the failing line); scripts never see it.
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let lua = &lua;
        let g = lua.globals();
        let debug: Table = g.get("debug")?;
        let getinfo: Function = debug.get("getinfo")?;
        let backing = lua.create_table()?;
        let prelude = lua
            .load(PRELUDE)
            .set_name("=shardis")
            .set_mode(ChunkMode::Text)
            .into_function()?;
        let (handler, run, protect, global_index, readonly, load_index, call_fn): (
            Function,
            Function,
            Function,
            Function,
            Function,
            Function,
            Function,
        ) = prelude.call((
            getinfo,
            backing.clone(),
            lua.create_function(|_, ()| Ok(take_pending()))?,
        ))?;
        let redis = redis_table(lua)?;
        // The library API FUNCTION LOAD gets instead of the globals.
        let api = lua.create_table()?;
        for name in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
        ] {
            api.raw_set(name, redis.raw_get::<Value>(name)?)?;
        }
        api.raw_set(
            "register_function",
            raising(
                lua,
                lua.create_function(|lua, args: MultiValue| super::functions::register(lua, args))?,
            )?,
        )?;
        let load_index: Function = load_index.call(api)?;
        g.raw_set("redis", redis)?;
        super::libs::register(lua, &g)?;
        for name in REMOVED {
            g.raw_set(*name, Value::Nil)?;
        }
        g.raw_set("__redis__err__handler", handler.clone())?;
        // Move every global into the backing table and protect the libraries.
        let pairs: Vec<(Value, Value)> = g.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
        for (k, v) in pairs {
            g.raw_set(k.clone(), Value::Nil)?;
            let v = match (&k, v) {
                (Value::String(s), Value::Table(t)) if LIBS.contains(&&*s.to_string_lossy()) => {
                    Value::Table(protect.call::<Table>(t)?)
                }
                (_, v) => v,
            };
            backing.raw_set(k, v)?;
        }
        backing.raw_set("_G", g.clone())?;
        let mt = lua.create_table()?;
        mt.raw_set("__index", global_index.clone())?;
        mt.raw_set("__newindex", readonly)?;
        mt.raw_set("__metatable", false)?;
        g.set_metatable(Some(mt.clone()));
        Ok(Vm {
            lua: lua.clone(),
            backing,
            handler,
            run,
            scripts: HashMap::new(),
            epoch: 0,
            mt,
            global_index,
            load_index,
            call_fn,
            hook_every: std::cell::Cell::new(0),
        })
    }

    /// Forgets every compiled script (SCRIPT FLUSH).
    pub fn flush(&mut self, epoch: u64) {
        self.scripts.clear();
        self.epoch = epoch;
        self.lua.gc_collect().ok();
    }

    /// True if `sha` is compiled here.
    pub fn has(&self, sha: &super::ScriptSha) -> bool {
        self.scripts.contains_key(sha)
    }

    /// The flags of a compiled script.
    pub fn flags(&self, sha: &super::ScriptSha) -> Option<Option<u32>> {
        self.scripts.get(sha).map(|c| c.flags)
    }

    /// Compiles `body` (shebang already parsed into `flags`, `skip` bytes
    /// long) under `sha`. Errors are Redis's reply texts.
    pub fn compile(
        &mut self,
        sha: &super::ScriptSha,
        body: &[u8],
        skip: usize,
        flags: Option<u32>,
    ) -> Result<(), String> {
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("ERR Error compiling script (new function): {msg}")
            })?;
        self.scripts.insert(*sha, Compiled { func, flags });
        Ok(())
    }

    /// Runs compiled script `sha` with KEYS and ARGV. Returns the reply.
    pub fn run(&self, sha: &super::ScriptSha, keys: &[Bytes], argv: &[Bytes]) -> Reply {
        let Some(c) = self.scripts.get(sha) else {
            return Reply::error(crate::errors::NOSCRIPT);
        };
        take_pending();
        // As Redis's C does it: KEYS and ARGV are built with the raw API
        // (mlua's per-value calls each open their own protected call), the
        // script runs under `lua_pcall` with the error handler (no Lua
        // wrapper frame, no `xpcall`), and KEYS/ARGV are cleared again,
        // leaving `(ok, value)`.
        // SAFETY: only the Lua C API on the interpreter's own state; the
        // stack holds the three arguments below. A Lua error (out of memory)
        // long-jumps to exec_raw's protected call with no Rust destructor
        // pending here (`keys` and `argv` are borrowed).
        let r = unsafe {
            self.lua
                .exec_raw::<(bool, Value)>((&self.backing, &self.handler, &c.func), |l| {
                    use mlua::ffi;
                    // Stack: 1 backing, 2 handler, 3 func.
                    for (name, items) in [(c"KEYS", keys), (c"ARGV", argv)] {
                        ffi::lua_createtable(l, items.len() as i32, 0);
                        for (i, b) in items.iter().enumerate() {
                            ffi::lua_pushlstring(l, b.as_ptr() as *const _, b.len());
                            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                        }
                        ffi::lua_pushstring(l, name.as_ptr());
                        ffi::lua_insert(l, -2);
                        ffi::lua_rawset(l, 1);
                    }
                    ffi::lua_pushvalue(l, 3);
                    let ok = ffi::lua_pcall(l, 0, 1, 2) == 0;
                    for name in [c"KEYS", c"ARGV"] {
                        ffi::lua_pushstring(l, name.as_ptr());
                        ffi::lua_pushnil(l);
                        ffi::lua_rawset(l, 1);
                    }
                    // Leave only (ok, value).
                    for _ in 0..3 {
                        ffi::lua_remove(l, 1);
                    }
                    ffi::lua_pushboolean(l, ok as i32);
                    ffi::lua_insert(l, 1);
                })
        };
        match r {
            Ok((true, v)) => lua_to_reply(&v, run::resp3()),
            Ok((false, Value::Table(t))) => error_reply(&t, sha.as_str()),
            Ok((false, v)) => Reply::Error(format!(
                "ERR Error running script {sha}, {:.100}",
                value_text(&v)
            )),
            Err(e) => Reply::Error(
                format!("ERR Error running script f_{sha}, {e}").replace(['\r', '\n'], " "),
            ),
        }
    }

    /// Runs a library's code (FUNCTION LOAD) with only the library API
    /// visible; returns the functions it registered or Redis's error text.
    pub fn load_library(
        &self,
        body: &[u8],
        skip: usize,
    ) -> Result<Vec<super::functions::Registered>, String> {
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("ERR Error compiling function: {msg}")
            })?;
        self.mt
            .raw_set("__index", self.load_index.clone())
            .map_err(|e| e.to_string())?;
        super::functions::begin_registering();
        take_pending();
        let r = self.run.call::<(bool, Value)>(func);
        let registered = super::functions::end_registering();
        self.mt
            .raw_set("__index", self.global_index.clone())
            .map_err(|e| e.to_string())?;
        match r {
            Ok((true, _)) => Ok(registered),
            Ok((false, Value::Table(t))) => {
                let msg = match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => s.to_string_lossy(),
                    _ => "ERR unknown error".into(),
                };
                Err(format!("ERR Error registering functions: {msg}"))
            }
            Ok((false, v)) => Err(format!(
                "ERR Error registering functions: {}",
                value_text(&v)
            )),
            Err(e) => Err(format!("ERR Error registering functions: {e}")),
        }
    }

    /// Calls a registered function (FCALL) with KEYS and ARGV as arguments.
    pub fn call_function(
        &self,
        cb: &Function,
        name: &str,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> Reply {
        let lua = &self.lua;
        let args = (|| -> mlua::Result<(Table, Table)> {
            Ok((string_array(lua, keys)?, string_array(lua, argv)?))
        })();
        let (k, a) = match args {
            Ok(x) => x,
            Err(e) => return Reply::Error(format!("ERR {e}")),
        };
        take_pending();
        match self.call_fn.call::<(bool, Value)>((cb.clone(), k, a)) {
            Ok((true, v)) => lua_to_reply(&v, run::resp3()),
            Ok((false, Value::Table(t))) => error_reply(&t, name),
            Ok((false, v)) => Reply::Error(format!(
                "ERR Error running script {name}, {:.100}",
                value_text(&v)
            )),
            Err(e) => Reply::Error(
                format!("ERR Error running script {name}, {e}").replace(['\r', '\n'], " "),
            ),
        }
    }

    /// Sets the check the hook runs every `n` VM instructions (busy-script
    /// checks) for the run about to start.
    ///
    /// A raw `lua_sethook` rather than mlua's: Lua 5.1 copies a thread's hook
    /// to the coroutines it creates, which is how Redis's hook reaches a loop
    /// inside `coroutine.wrap`; mlua's hook switches itself off on any thread
    /// but the one it was set on. The Lua hook is installed once per
    /// interpreter and stays (between runs it finds no check and returns):
    /// setting it costs a protected call, which per run was 5% of an EVALSHA.
    pub fn set_hook(&self, n: u32, f: impl Fn() -> Option<String> + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Rc::new(f)));
        KILLED.with(|k| *k.borrow_mut() = None);
        if self.hook_every.get() == n {
            return;
        }
        self.hook_every.set(n);
        HOOK_EVERY.with(|e| e.set(n));
        // SAFETY: sets a hook on the interpreter's own state, from its thread.
        let _ = unsafe {
            self.lua.exec_raw::<()>((), |l| {
                mlua::ffi::lua_sethook(
                    l,
                    Some(count_hook),
                    mlua::ffi::LUA_MASKCOUNT,
                    n as std::os::raw::c_int,
                );
            })
        };
    }

    /// Ends the run's check (the Lua hook stays, finding nothing to do).
    pub fn remove_hook(&self) {
        HOOK.with(|h| *h.borrow_mut() = None);
        KILLED.with(|k| *k.borrow_mut() = None);
    }
}

/// A busy-script check: the kill error once the script must stop.
type Check = Rc<dyn Fn() -> Option<String>>;

thread_local! {
    /// The check the count hook runs (`set_hook`), None between runs.
    static HOOK: RefCell<Option<Check>> = const { RefCell::new(None) };
    /// The kill error once the check returned it: every later line raises it.
    static KILLED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The count the hooks of this executor's interpreters use.
    static HOOK_EVERY: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The count hook (any Lua thread of the interpreter).
unsafe extern "C-unwind" fn count_hook(
    l: *mut mlua::ffi::lua_State,
    _ar: *mut mlua::ffi::lua_Debug,
) {
    // Cloned out, so no borrow is held while the check pauses the script.
    let Some(check) = HOOK.with(|h| h.borrow().clone()) else {
        return;
    };
    let Some(msg) = check() else {
        return;
    };
    drop(check);
    // As Redis after a kill: from now on every line of the script raises the
    // error, so a loop around `pcall` cannot swallow it for good.
    KILLED.with(|k| *k.borrow_mut() = Some(msg.clone()));
    // SAFETY: `l` is the running thread, in a count hook.
    unsafe {
        mlua::ffi::lua_sethook(l, Some(line_hook), mlua::ffi::LUA_MASKLINE, 0);
        raise(l, msg)
    }
}

/// The line hook after a kill: raises the kill error on every line of the
/// script (our own Lua, the error handler and the `pcall` wrapper, runs on).
unsafe extern "C-unwind" fn line_hook(l: *mut mlua::ffi::lua_State, ar: *mut mlua::ffi::lua_Debug) {
    let Some(msg) = KILLED.with(|k| k.borrow().clone()) else {
        // The kill is over (a later run, or a coroutine left over from the
        // killed one): back to the count hook every run relies on.
        let every = HOOK_EVERY.with(|e| e.get());
        // SAFETY: `l` is the running thread.
        unsafe {
            mlua::ffi::lua_sethook(
                l,
                Some(count_hook),
                mlua::ffi::LUA_MASKCOUNT,
                every as std::os::raw::c_int,
            )
        };
        return;
    };
    // SAFETY: `ar` is the hook's activation record; `source` is set by "S".
    let ours = unsafe {
        mlua::ffi::lua_getinfo(l, c"S".as_ptr(), ar) != 0
            && !(*ar).source.is_null()
            && std::ffi::CStr::from_ptr((*ar).source).to_bytes() == b"=shardis"
    };
    if ours {
        return;
    }
    // SAFETY: `l` is the running thread, in a hook.
    unsafe { raise(l, msg) }
}

/// Raises `msg` as is (no position), as Redis's hook does.
///
/// # Safety
/// `l` must be the running Lua thread; no Rust value with a destructor may be
/// alive in the caller (the error long-jumps out).
unsafe fn raise(l: *mut mlua::ffi::lua_State, msg: String) -> ! {
    PENDING.with(|p| *p.borrow_mut() = Some((msg.clone(), false)));
    // SAFETY: see above; `msg` is copied into Lua, then dropped before the jump.
    unsafe {
        mlua::ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        drop(msg);
        mlua::ffi::lua_error(l)
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        _ => "execution failure".into(),
    }
}

/// The reply for a script that raised `t` (`{err=…, source=…, line=…}`).
fn error_reply(t: &Table, sha: &str) -> Reply {
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        Ok(Value::Number(n)) => super::convert::lua_number_string(n),
        Ok(Value::Integer(n)) => n.to_string(),
        _ => "(null)".into(),
    };
    let source = match t.raw_get::<Value>("source") {
        Ok(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    let line = match t.raw_get::<Value>("line") {
        Ok(Value::Integer(n)) => Some(n),
        Ok(Value::Number(n)) => Some(n as i64),
        _ => None,
    };
    let mut out = msg.strip_prefix('-').unwrap_or(&msg).to_string();
    if let (Some(s), Some(l)) = (source, line) {
        out.push_str(&format!(" script: {sha}, on {s}:{l}."));
    }
    Reply::Error(out.replace(['\r', '\n'], " "))
}

fn string_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(b)?)?;
    }
    Ok(t)
}

thread_local! {
    /// What `redis.call`'s C body leaves for the general conversion
    /// ([`convert_left`]): a reply other than a bulk string, integer or nil,
    /// or a refusal.
    static LEFT: RefCell<Option<CallOutcome>> = const { RefCell::new(None) };
    /// The bulk reply being pushed: kept here, not on the C body's frame, so
    /// that an out-of-memory error long-jumping out of the push skips no
    /// destructor.
    static BULK: RefCell<Bytes> = const { RefCell::new(Bytes::new()) };
}

/// The C body of `redis.call` and `redis.pcall` (`luaRedisGenericCommand`):
/// leaves `(ok, value)` on the stack. Arguments are read straight off the
/// Lua stack (strings as they are, numbers formatted with %.17g, not Lua's
/// lossy %.14g) and the common replies (bulk, integer, nil) are pushed
/// directly; everything else goes through [`convert_left`], the closure's
/// upvalue. Going through mlua for every call (a value handle per argument,
/// a protected call per string) cost more than the command itself.
///
/// # Safety
/// Called by Lua as a C closure whose upvalue 1 is [`convert_left`]'s
/// function. No Rust value with a destructor is alive across a Lua API call
/// that can raise.
unsafe fn call_body(l: *mut mlua::ffi::lua_State) -> i32 {
    use mlua::ffi;
    let outcome = {
        // SAFETY: `l` is the running state; lua_type, lua_tolstring on a
        // string and lua_tonumber never raise.
        let n = unsafe { ffi::lua_gettop(l) };
        let mut argv: Vec<Bytes> = Vec::with_capacity(n.max(0) as usize);
        let mut refused =
            (n == 0).then_some("Please specify at least one argument for this redis lib call");
        for i in 1..=n {
            if refused.is_some() {
                break;
            }
            match unsafe { ffi::lua_type(l, i) } {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = unsafe { ffi::lua_tolstring(l, i, &mut len) };
                    // SAFETY: Lua keeps the string alive while it is on the stack.
                    let b = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
                    argv.push(Bytes::copy_from_slice(b));
                }
                ffi::LUA_TNUMBER => {
                    let v = unsafe { ffi::lua_tonumber(l, i) };
                    argv.push(Bytes::from(format_g(v, 17)));
                }
                _ => refused = Some("Lua redis lib command arguments must be strings or integers"),
            }
        }
        match refused {
            Some(msg) => CallOutcome::Error(msg.to_string()),
            None => run::call(argv),
        }
    };
    let resp3 = run::resp3();
    // SAFETY: only pushes on the running state; what they need is in
    // thread-locals or plain values (see the function's safety note).
    unsafe {
        match outcome {
            CallOutcome::Reply(Reply::Bulk(b)) => {
                let (p, len) = BULK.with(|slot| {
                    let mut slot = slot.borrow_mut();
                    *slot = b;
                    (slot.as_ptr(), slot.len())
                });
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushlstring(l, p as *const _, len);
                BULK.with(|slot| *slot.borrow_mut() = Bytes::new());
            }
            CallOutcome::Reply(Reply::Integer(n)) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushnumber(l, n as ffi::lua_Number);
            }
            CallOutcome::Reply(Reply::Nil | Reply::NilArray) => {
                ffi::lua_pushboolean(l, 1);
                if resp3 {
                    ffi::lua_pushnil(l);
                } else {
                    ffi::lua_pushboolean(l, 0);
                }
            }
            other => {
                LEFT.with(|left| *left.borrow_mut() = Some(other));
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
                ffi::lua_call(l, 0, 2);
            }
        }
    }
    2
}

/// `redis.call`'s body: `(ok, value)`.
unsafe extern "C-unwind" fn call_fn(l: *mut mlua::ffi::lua_State) -> i32 {
    // SAFETY: see `call_body`.
    unsafe { call_body(l) }
}

/// `redis.pcall`: the value only (an error reply is returned, not raised).
unsafe extern "C-unwind" fn pcall_fn(l: *mut mlua::ffi::lua_State) -> i32 {
    // SAFETY: see `call_body`.
    unsafe {
        call_body(l);
        mlua::ffi::lua_remove(l, -2);
    }
    1
}

/// The general half of `redis.call`: converts what [`call_body`] left.
/// Returns `(true, reply)` or `(false, {err=…})`.
fn convert_left(lua: &Lua) -> mlua::Result<(bool, Value)> {
    let Some(outcome) = LEFT.with(|left| left.borrow_mut().take()) else {
        return fail(lua, "ERR no reply to convert");
    };
    match outcome {
        CallOutcome::Reply(r) => {
            let resp3 = run::resp3();
            if let Reply::Error(_) = r {
                let v = reply_to_lua(lua, r, resp3)?;
                Ok((false, v))
            } else {
                Ok((true, reply_to_lua(lua, r, resp3)?))
            }
        }
        CallOutcome::Error(msg) => fail(lua, &msg),
    }
}

/// A C closure running `body` with [`convert_left`] as its upvalue.
fn call_closure(lua: &Lua, body: mlua::ffi::lua_CFunction) -> mlua::Result<Function> {
    let left = lua.create_function(|lua, ()| convert_left(lua))?;
    // SAFETY: the closure's one upvalue is the function pushed as the argument.
    unsafe {
        lua.exec_raw::<Function>(left, |l| {
            mlua::ffi::lua_pushcclosure(l, body, 1);
        })
    }
}

/// A command's arguments from Lua values (`luaArgsToRedisArgv`): strings, and
/// numbers formatted with %.17g (not Lua's lossy %.14g); None for other types.
fn lua_argv(values: &[Value]) -> Option<Vec<Bytes>> {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(n) => Some(Bytes::from(format_g(*n as f64, 17))),
            Value::Number(n) => Some(Bytes::from(format_g(*n, 17))),
            _ => None,
        })
        .collect()
}

/// The `redis` table.
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("call", raising(lua, call_closure(lua, call_fn)?)?)?;
    t.raw_set("pcall", call_closure(lua, pcall_fn)?)?;
    t.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            match v.as_slice() {
                [Value::String(s)] => {
                    let s = s.to_string_lossy();
                    let raw = if s.starts_with('-') {
                        s
                    } else {
                        format!("-{s}")
                    };
                    err_table(lua, &error_text(&raw))
                }
                _ => err_table(lua, crate::errors::LUA_WRONG_ARGS),
            }
        })?,
    )?;
    t.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| {
            let v: Vec<Value> = args.into_iter().collect();
            match v.as_slice() {
                [Value::String(s)] => {
                    let t = lua.create_table()?;
                    t.raw_set("ok", s.clone())?;
                    Ok(t)
                }
                _ => err_table(lua, crate::errors::LUA_WRONG_ARGS),
            }
        })?,
    )?;
    t.raw_set(
        "sha1hex",
        raising(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                if v.len() != 1 {
                    return fail(lua, "wrong number of arguments");
                }
                let bytes: Vec<u8> = match &v[0] {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(n) => super::convert::lua_number_string(*n as f64).into_bytes(),
                    Value::Number(n) => super::convert::lua_number_string(*n).into_bytes(),
                    _ => Vec::new(),
                };
                Ok((
                    true,
                    Value::String(lua.create_string(super::sha1hex(&bytes))?),
                ))
            })?,
        )?,
    )?;
    t.raw_set(
        "log",
        raising(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                if v.len() < 2 {
                    return fail(lua, "redis.log() requires two arguments or more.");
                }
                let level = match &v[0] {
                    Value::Integer(n) => *n,
                    Value::Number(n) => *n as i64,
                    Value::String(s) => {
                        match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                            Some(n) => n as i64,
                            None => {
                                return fail(lua, "First argument must be a number (log level).")
                            }
                        }
                    }
                    _ => return fail(lua, "First argument must be a number (log level)."),
                };
                let level = match level {
                    0 => crate::logging::Level::Debug,
                    1 => crate::logging::Level::Verbose,
                    2 => crate::logging::Level::Notice,
                    3 => crate::logging::Level::Warning,
                    _ => return fail(lua, "Invalid debug level."),
                };
                let mut msg = String::new();
                for (i, a) in v[1..].iter().enumerate() {
                    if i > 0 {
                        msg.push(' ');
                    }
                    match a {
                        Value::String(s) => msg.push_str(&s.to_string_lossy()),
                        Value::Integer(n) => {
                            msg.push_str(&super::convert::lua_number_string(*n as f64))
                        }
                        Value::Number(n) => msg.push_str(&super::convert::lua_number_string(*n)),
                        _ => {}
                    }
                }
                crate::logging::log(level, &msg);
                Ok((true, Value::Nil))
            })?,
        )?,
    )?;
    t.raw_set(
        "setresp",
        raising(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                if v.len() != 1 {
                    return fail(lua, "redis.setresp() requires one argument.");
                }
                let n = match &v[0] {
                    Value::Integer(n) => *n,
                    Value::Number(n) => *n as i64,
                    _ => 0,
                };
                if n != 2 && n != 3 {
                    return fail(lua, "RESP version must be 2 or 3.");
                }
                run::set_resp3(n == 3);
                Ok((true, Value::Nil))
            })?,
        )?,
    )?;
    t.raw_set(
        "set_repl",
        raising(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                if v.len() != 1 {
                    return fail(lua, "redis.set_repl() requires two arguments.");
                }
                let n = match &v[0] {
                    Value::Integer(n) => *n,
                    Value::Number(n) => *n as i64,
                    _ => -1,
                };
                if !(0..=3).contains(&n) {
                    return fail(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
                }
                run::set_repl(n as u8);
                Ok((true, Value::Nil))
            })?,
        )?,
    )?;
    t.raw_set(
        "acl_check_cmd",
        raising(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let v: Vec<Value> = args.into_iter().collect();
                if v.is_empty() {
                    return fail(
                        lua,
                        "Please specify at least one argument for this redis lib call",
                    );
                }
                let Some(argv) = lua_argv(&v) else {
                    return fail(
                        lua,
                        "Lua redis lib command arguments must be strings or integers",
                    );
                };
                match run::acl_check(&argv) {
                    Ok(b) => Ok((true, Value::Boolean(b))),
                    Err(msg) => fail(lua, &msg),
                }
            })?,
        )?,
    )?;
    t.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    t.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    t.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    t.raw_set("LOG_DEBUG", 0)?;
    t.raw_set("LOG_VERBOSE", 1)?;
    t.raw_set("LOG_NOTICE", 2)?;
    t.raw_set("LOG_WARNING", 3)?;
    t.raw_set("REPL_NONE", 0)?;
    t.raw_set("REPL_AOF", 1)?;
    t.raw_set("REPL_SLAVE", 2)?;
    t.raw_set("REPL_REPLICA", 2)?;
    t.raw_set("REPL_ALL", 3)?;
    t.raw_set("REDIS_VERSION", crate::REDIS_VERSION)?;
    t.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
    Ok(t)
}

fn redis_version_num() -> i64 {
    let mut n = 0i64;
    for part in crate::REDIS_VERSION.split('.') {
        n = (n << 8) | part.parse::<i64>().unwrap_or(0);
    }
    n
}

/// Calls the Rust body (the closure's upvalue) with this call's arguments; it
/// returns `(ok, value)`. Raises `value` (an `{err=…}` table) when not ok, as
/// Redis's C functions do, so the error is a table, `pcall(redis.call, …)`
/// returns it, and the error handler sees a C frame above the script's line
/// even after a `return redis.call(…)` tail call.
unsafe extern "C-unwind" fn trampoline(l: *mut mlua::ffi::lua_State) -> i32 {
    use mlua::ffi;
    // SAFETY: called by Lua with a valid state, as a closure whose first
    // upvalue is the body (`raising`). No Rust value with a destructor is
    // alive when lua_error long-jumps out.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, 2);
        if ffi::lua_toboolean(l, -2) != 0 {
            return 1;
        }
        ffi::lua_error(l)
    }
}

/// The C function exposing `body`, which it keeps as its upvalue (no lookup
/// by name per call).
fn raising(lua: &Lua, body: Function) -> mlua::Result<Function> {
    // SAFETY: the closure's one upvalue is the body pushed as the argument;
    // the trampoline only uses the Lua C API on the state it gets.
    unsafe {
        lua.exec_raw::<Function>(body, |l| {
            mlua::ffi::lua_pushcclosure(l, trampoline, 1);
        })
    }
}

/// An error raised from Rust as Redis raises it from C (`luaPushError` +
/// `luaError`): `(false, {err=…})`, which the `raising` wrapper throws.
pub fn fail(lua: &Lua, msg: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::Table(err_table(lua, &error_text(msg))?)))
}
