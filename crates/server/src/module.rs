//! MODULE: the answers of a Redis 7.0.15 server that has no module loaded.
//!
//! shardis does not load Redis modules (they are C code written against
//! redis-server's internals), and `loadmodule` is refused at start-up. So
//! `MODULE LIST` is always empty, `MODULE LOAD`/`LOADEX` fail the way a load
//! fails in Redis (the reply points at the log, the log says why) and
//! `MODULE UNLOAD` finds no module. As in Redis, LOAD, LOADEX and UNLOAD are
//! protected by `enable-module-command`; LIST and HELP are not.

use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use shardis_protocol::Reply;

const HELP: &[&str] = &[
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
];

/// The subcommands Redis marks `protected`.
pub fn is_protected(sub: &[u8]) -> bool {
    [&b"load"[..], b"loadex", b"unload"]
        .iter()
        .any(|s| sub.eq_ignore_ascii_case(s))
}

/// MODULE LIST|LOAD|LOADEX|UNLOAD|HELP (subcommand and arity are checked by
/// the router, protection by [`is_protected`] there).
pub fn module(_conn: &mut Conn, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"help" => crate::obs::commands::help(HELP, "MODULE"),
        b"list" => Reply::Array(Vec::new()),
        b"load" | b"loadex" => {
            crate::log!(
                Warning,
                "Module {} failed to load: shardis does not load Redis modules",
                String::from_utf8_lossy(&args[2])
            );
            Reply::error(crate::errors::MODULE_LOAD_FAILED)
        }
        b"unload" => Reply::error("ERR Error unloading module: no such module with that name"),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "MODULE")),
    }
}
