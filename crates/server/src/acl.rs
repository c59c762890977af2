//! ACL state shared by every executor, the per-command permission check,
//! AUTH, and the ACL command.
//!
//! ```text
//!  ACL SETUSER / DELUSER / LOAD, CONFIG SET requirepass   (any executor)
//!        │ copy the Users set, change it, swap the Arc, epoch += 1
//!        ▼
//!  AclState { users: Mutex<Arc<Users>>, epoch }  ◄── conn: one atomic load
//!                                                    per command; re-reads its
//!                                                    Arc<User> only when the
//!                                                    epoch moved
//! ```
//!
//! The data path takes no lock: a connection checks a command against the
//! `Arc<User>` it cached, and users with every right (`+@all ~* &*`, the
//! default) skip the check entirely.

use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use shardis_acl::{table, Context, Denied, Entry, Log, Reason, User, Users};
use shardis_commands::Command;
use shardis_protocol::{decode::parse_int, Reply};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The users and the ACL log, shared by every executor.
pub struct AclState {
    users: Mutex<Arc<Users>>,
    epoch: AtomicU64,
    log: Mutex<Log>,
}

impl AclState {
    /// State holding `users`.
    pub fn new(users: Users) -> AclState {
        AclState {
            users: Mutex::new(Arc::new(users)),
            epoch: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        }
    }

    /// The current user set.
    pub fn snapshot(&self) -> Arc<Users> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bumped on every change.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Changes the user set: `f` edits a copy, which replaces the set.
    pub fn update<R>(&self, f: impl FnOnce(&mut Users) -> R) -> R {
        let mut guard = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut users = (**guard).clone();
        let r = f(&mut users);
        *guard = Arc::new(users);
        self.epoch.fetch_add(1, Ordering::Release);
        r
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The users a server starts with (the error is the log text, one line per
/// message): the default user (with `requirepass`),
/// then `user` directives, or the `aclfile` (not both, as in Redis).
pub fn startup_users(cfg: &shardis_config::Config) -> Result<Users, String> {
    let mut users = Users::new();
    users.set_requirepass(cfg.requirepass.as_deref());
    users.set_pubsub_default(cfg.acl_pubsub_default == "allchannels");
    if cfg.aclfile.is_some() && !cfg.users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let lines: Vec<Vec<Vec<u8>>> = cfg
        .users
        .iter()
        .map(|l| l.iter().map(|a| a.as_bytes().to_vec()).collect())
        .collect();
    users
        .load_config_users(&lines)
        .map_err(|e| format!("{e}\nCritical error while loading ACLs. Exiting."))?;
    if let Some(path) = &cfg.aclfile {
        users = load_file(&users, path)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(users)
}

fn load_file(current: &Users, path: &str) -> Result<Users, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{path}': {}", io_text(&e)))?;
    current.load_text(&text, path)
}

fn io_text(e: &std::io::Error) -> String {
    // strerror() text, without Rust's " (os error N)" suffix.
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// True if a new connection starts authenticated (default user `nopass`, on).
pub fn default_authenticates(users: &Users) -> bool {
    let d = users.default_user();
    d.nopass() && d.enabled()
}

/// The ACL table entry of `cmd` as sent: containers resolve to the
/// subcommand's entry (`config|get`). Every implemented command is a Redis
/// 7.0.15 command, so it always has one.
fn acl_id(cmd: &'static Command, args: &[Bytes]) -> Option<usize> {
    let id = cmd.meta_index;
    if table::COMMANDS[id].is_container() && args.len() >= 2 {
        Some(table::lookup_sub(id, &args[1]).unwrap_or(id))
    } else {
        Some(id)
    }
}

/// Re-reads the connection's user if the ACLs changed since it last looked.
/// A connection whose user was deleted is disconnected (as Redis does).
pub fn refresh(conn: &mut Conn) {
    let acl = &conn.shard.shared.acl;
    let epoch = acl.epoch();
    if epoch == conn.acl_epoch {
        return;
    }
    conn.acl_epoch = epoch;
    let users = acl.snapshot();
    match users.get(conn.user.name().as_bytes()) {
        Some(u) => conn.user = u.clone(),
        None => {
            conn.user = users.default_user().clone();
            conn.authenticated = false;
            conn.info.borrow_mut().kill();
        }
    }
}

/// Checks `cmd` against the connection's user; on denial logs it and returns
/// Redis's NOPERM error.
pub fn check(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Result<(), Reply> {
    let Some((name, denied, object)) = denial(conn, cmd, args) else {
        return Ok(());
    };
    let (reason, msg) = match denied {
        Denied::Command => (
            Reason::Command,
            format!("NOPERM this user has no permissions to run the '{name}' command"),
        ),
        Denied::Key(_) => (
            Reason::Key,
            "NOPERM this user has no permissions to access one of the keys used as arguments"
                .to_string(),
        ),
        Denied::Channel(_) => (
            Reason::Channel,
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .to_string(),
        ),
    };
    let context = if conn.tx.in_multi() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    add_log(conn, reason, context, object, name);
    // A rejected EXEC also discards the transaction (execCommandAbort).
    if cmd.id == shardis_commands::CommandId::Exec {
        return Err(Reply::Error(format!(
            "EXECABORT Transaction discarded because of: {msg}"
        )));
    }
    Err(Reply::Error(msg))
}

/// EXEC checks every queued command again: the rules may have changed since
/// it was queued. A denied command is not run; its slot holds this error.
pub fn exec_check(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Option<Reply> {
    // An ACL SETUSER earlier in this EXEC applies to the commands after it.
    refresh(conn);
    let (_, denied, object) = denial(conn, cmd, args)?;
    let (reason, why) = match denied {
        Denied::Command => (
            Reason::Command,
            "no permission to execute the command or subcommand",
        ),
        Denied::Key(_) => (Reason::Key, "no permission to touch the specified keys"),
        Denied::Channel(_) => (
            Reason::Channel,
            "no permission to access one of the channels used as arguments",
        ),
    };
    add_log(conn, reason, Context::Multi, object, "exec");
    Some(Reply::Error(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
    )))
}

/// SORT's BY and GET read keys the command does not name, so Redis allows
/// them only to users who may read every key: the error SORT replies
/// otherwise (checked here because the keyspace does not know the user).
pub fn sort_patterns(conn: &Conn, cmd: &'static Command, args: &[Bytes]) -> Option<Reply> {
    let readonly = match cmd.id {
        shardis_commands::CommandId::Sort => false,
        shardis_commands::CommandId::SortRo => true,
        _ => return None,
    };
    if conn.user.unrestricted() {
        return None;
    }
    let msg = shardis_keyspace::sort::pattern_denied(args, readonly)?;
    let id = acl_id(cmd, args)?;
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    (!conn.user.reads_every_key(id, &argv)).then(|| Reply::error(msg))
}

/// Why the connection's user may not run `cmd`, with the command's full
/// name and the ACL LOG object (command name, key or channel); None if it may.
fn denial(
    conn: &Conn,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<(&'static str, Denied, Vec<u8>)> {
    if conn.user.unrestricted() {
        return None;
    }
    let Some(id) = acl_id(cmd, args) else {
        return Some((cmd.name, Denied::Command, cmd.name.as_bytes().to_vec()));
    };
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let denied = conn.user.check(id, &argv).err()?;
    let name = table::COMMANDS[id].name;
    let object = match denied {
        Denied::Command => name.as_bytes().to_vec(),
        Denied::Key(pos) | Denied::Channel(pos) => argv[pos].to_vec(),
    };
    Some((name, denied, object))
}

/// `redis.acl_check_cmd`: None for an unknown command or subcommand, else
/// whether `user` may run it with these arguments.
pub fn script_may_run(
    user: &shardis_acl::User,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<bool> {
    let id = acl_id(cmd, args)?;
    // Redis's lookupCommand: an unknown subcommand is an unknown command.
    if table::COMMANDS[id].is_container() && args.len() >= 2 {
        return None;
    }
    Some(script_denial(user, cmd, args).is_none())
}

/// A script's `redis.call` under its caller's ACL rules (`scriptVerifyACL`):
/// Redis's error text if the user may not run it.
pub fn script_denial(
    user: &shardis_acl::User,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<&'static str> {
    if user.unrestricted() {
        return None;
    }
    let cmd_msg = "The user executing the script can't run this command or subcommand";
    let Some(id) = acl_id(cmd, args) else {
        return Some(cmd_msg);
    };
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    Some(match user.check(id, &argv).err()? {
        Denied::Command => cmd_msg,
        Denied::Key(_) => "The user executing the script can't access at least one of the keys mentioned in the command arguments",
        Denied::Channel(_) => "The user executing the script can't publish to the channel mentioned in the command",
    })
}

/// Adds an ACL LOG entry for the connection's user; `cmd` is what CLIENT
/// LIST's `cmd=` shows (the command being denied, as in Redis).
fn add_log(conn: &Conn, reason: Reason, context: Context, object: Vec<u8>, cmd: &str) {
    let username = conn.user.name().as_bytes().to_vec();
    add_log_as(conn, reason, context, object, username, cmd);
}

fn add_log_as(
    conn: &Conn,
    reason: Reason,
    context: Context,
    object: Vec<u8>,
    username: Vec<u8>,
    cmd: &str,
) {
    let entry = Entry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime_ms: crate::shared::unix_ms(),
        client_info: {
            let mut info = conn.info.borrow().clone();
            info.last_cmd = cmd.to_string();
            info.line()
        },
    };
    let max = conn.shard.shared.config().acllog_max_len;
    conn.shard.shared.acl.log().add(entry, max);
}

/// Authenticates the connection as `user`/`pass` (AUTH, HELLO AUTH).
/// `cmd_name` is the command as sent (ACL LOG's object for failures).
pub fn authenticate(conn: &mut Conn, user: &[u8], pass: &[u8], cmd_name: &[u8]) -> Reply {
    let users = conn.shard.shared.acl.snapshot();
    conn.acl_epoch = conn.shard.shared.acl.epoch();
    match users.get(user) {
        Some(u) if u.check_password(pass) => {
            conn.user = u.clone();
            conn.authenticated = true;
            conn.set_authenticated();
            conn.info.borrow_mut().user = u.name().to_string();
            Reply::OK
        }
        _ => {
            crate::log!(
                Verbose,
                "AUTH failed for client id={}",
                conn.info.borrow().id
            );
            let name = String::from_utf8_lossy(cmd_name).to_ascii_lowercase();
            let context = if conn.tx.in_multi() {
                Context::Multi
            } else {
                Context::Toplevel
            };
            add_log_as(
                conn,
                Reason::Auth,
                context,
                cmd_name.to_vec(),
                user.to_vec(),
                &name,
            );
            Reply::error(errors::WRONGPASS)
        }
    }
}

/// Back to the default user (RESET).
pub fn reset_user(conn: &mut Conn) {
    let users = conn.shard.shared.acl.snapshot();
    conn.acl_epoch = conn.shard.shared.acl.epoch();
    conn.user = users.default_user().clone();
    conn.authenticated = default_authenticates(&users);
    conn.info.borrow_mut().user = "default".into();
}

/// `CONFIG SET acl-pubsub-default`.
pub fn set_pubsub_default(shared: &crate::shared::Shared, allchannels: bool) {
    shared.acl.update(|u| u.set_pubsub_default(allchannels));
}

/// `CONFIG SET requirepass`: the default user's password follows it.
pub fn set_requirepass(shared: &crate::shared::Shared, pass: Option<&str>) {
    shared.acl.update(|u| u.set_requirepass(pass));
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// The ACL command.
pub async fn command(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let n = args.len();
    let shared = conn.shard.shared.clone();
    match sub.as_slice() {
        b"setuser" if n >= 3 => {
            let ops: Vec<&[u8]> = args[3..].iter().map(|a| a.as_ref()).collect();
            match shared.acl.update(|u| u.setuser(&args[2], &ops)) {
                Ok(()) => {
                    if let Some(user) = shared.acl.snapshot().get(&args[2]).cloned() {
                        kill_revoked_subscribers(conn, user).await;
                    }
                    Reply::OK
                }
                Err(e) => Reply::Error(e),
            }
        }
        b"deluser" if n >= 3 => {
            let names: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
            match shared.acl.update(|u| u.deluser(&names)) {
                Ok(deleted) => {
                    let names: Vec<String> = args[2..]
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    kill_clients(conn, move |user| names.iter().any(|n| n == user)).await;
                    Reply::Integer(deleted as i64)
                }
                Err(e) => Reply::error(e),
            }
        }
        b"getuser" if n == 3 => {
            let users = shared.acl.snapshot();
            match users.get(&args[2]) {
                None => Reply::Nil,
                Some(u) => getuser(u),
            }
        }
        b"list" | b"users" if n == 2 => {
            let users = shared.acl.snapshot();
            if sub == b"users" {
                Reply::Array(users.iter().map(|u| Reply::bulk(u.name().as_bytes())).collect())
            } else {
                Reply::Array(users.list().into_iter().map(|l| Reply::Bulk(l.into())).collect())
            }
        }
        b"whoami" if n == 2 => Reply::bulk(conn.user.name().as_bytes()),
        b"load" | b"save" if shared.config().aclfile.is_none() => Reply::error(
            "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
        ),
        b"load" if n == 2 => {
            let path = shared.config().aclfile.clone().unwrap_or_default();
            match load_file(&shared.acl.snapshot(), &path) {
                Ok(users) => {
                    shared.acl.update(|u| *u = users);
                    // Redis frees every user but `default`, with its clients.
                    kill_clients(conn, |user| user != "default").await;
                    Reply::OK
                }
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        b"save" if n == 2 => {
            let path = shared.config().aclfile.clone().unwrap_or_default();
            match save_file(&path, &shared.acl.snapshot().save_text()) {
                Ok(()) => Reply::OK,
                Err(e) => {
                    crate::log!(Warning, "Writing ACL file for ACL SAVE: {}", io_text(&e));
                    Reply::error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
                }
            }
        }
        b"cat" if n == 2 => Reply::Array(
            table::CATEGORIES
                .iter()
                .map(|c| Reply::bulk(c.as_bytes()))
                .collect(),
        ),
        b"cat" if n == 3 => {
            let Some(bit) = std::str::from_utf8(&args[2]).ok().and_then(table::category) else {
                let name = String::from_utf8_lossy(&args[2][..args[2].len().min(128)]).into_owned();
                return Reply::Error(format!("ERR Unknown category '{name}'"));
            };
            // Only the commands and subcommands shardis implements (Redis
            // lists its own table).
            Reply::Array(
                shardis_commands::visible()
                    .map(|i| &table::COMMANDS[i])
                    .filter(|c| c.categories & bit != 0)
                    .map(|c| Reply::bulk(c.name.as_bytes()))
                    .collect(),
            )
        }
        b"genpass" if n == 2 || n == 3 => {
            let bits = if n == 3 {
                match parse_int(&args[2]) {
                    Some(b) => b,
                    None => return Reply::error(errors::NOT_INTEGER),
                }
            } else {
                256
            };
            if bits <= 0 || bits > 4096 {
                return Reply::error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
            }
            let chars = (bits as usize).div_ceil(4);
            let mut bytes = vec![0u8; chars.div_ceil(2)];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Reply::bulk(&hex.as_bytes()[..chars])
        }
        b"log" if n == 2 || n == 3 => {
            let mut count = 10i64;
            if n == 3 {
                if args[2].eq_ignore_ascii_case(b"reset") {
                    shared.acl.log().reset();
                    return Reply::OK;
                }
                match parse_int(&args[2]) {
                    Some(c) => count = c.max(0),
                    None => return Reply::error(errors::NOT_INTEGER),
                }
            }
            let now = crate::shared::unix_ms();
            let log = shared.acl.log();
            Reply::Array(
                log.newest(count as usize)
                    .map(|e| {
                        let age = now.saturating_sub(e.ctime_ms) as f64 / 1000.0;
                        Reply::Map(vec![
                            (Reply::bulk(b"count"), Reply::Integer(e.count as i64)),
                            (Reply::bulk(b"reason"), Reply::bulk(e.reason.name().as_bytes())),
                            (Reply::bulk(b"context"), Reply::bulk(e.context.name().as_bytes())),
                            (Reply::bulk(b"object"), Reply::Bulk(e.object.clone().into())),
                            (Reply::bulk(b"username"), Reply::Bulk(e.username.clone().into())),
                            (Reply::bulk(b"age-seconds"), Reply::Double(age)),
                            (
                                Reply::bulk(b"client-info"),
                                Reply::Bulk(e.client_info.clone().into()),
                            ),
                        ])
                    })
                    .collect(),
            )
        }
        b"help" if n == 2 => Reply::Array(HELP.iter().map(|l| Reply::Status((*l).into())).collect()),
        b"dryrun" if n >= 4 => dryrun(&shared.acl.snapshot(), &args[2], &args[3..]),
        // Unknown subcommands and Redis's arities were answered before
        // dispatch (conn.rs); what is left is the handler's own check.
        _ => Reply::Error(errors::subcommand_syntax(&args[1], "acl")),
    }
}

/// ACL DRYRUN: would `user` be allowed to run `cmd`? Nothing runs, nothing
/// is logged.
fn dryrun(users: &Users, user: &[u8], cmd: &[Bytes]) -> Reply {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Some(u) = users.get(user) else {
        return Reply::Error(format!("ERR User '{}' not found", lossy(user)));
    };
    let not_found = || Reply::Error(format!("ERR Command '{}' not found", lossy(&cmd[0])));
    let Some(command) = shardis_commands::lookup(&cmd[0]) else {
        return not_found();
    };
    let Some(mut id) = table::lookup(command.name) else {
        return not_found();
    };
    if table::COMMANDS[id].is_container() && cmd.len() >= 2 {
        match table::lookup_sub(id, &cmd[1]) {
            Some(sub) => id = sub,
            None => return not_found(),
        }
    }
    let entry = &table::COMMANDS[id];
    let argc = cmd.len() as i32;
    if (entry.arity > 0 && entry.arity != argc) || argc < -entry.arity {
        return Reply::Error(errors::wrong_arity(entry.name));
    }
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_ref()).collect();
    match u.check(id, &argv) {
        Ok(()) => Reply::OK,
        Err(Denied::Command) => Reply::bulk_string(format!(
            "This user has no permissions to run the '{}' command",
            entry.name
        )),
        Err(Denied::Key(pos)) => Reply::bulk_string(format!(
            "This user has no permissions to access the '{}' key",
            lossy(argv[pos])
        )),
        Err(Denied::Channel(pos)) => Reply::bulk_string(format!(
            "This user has no permissions to access the '{}' channel",
            lossy(argv[pos])
        )),
    }
}

fn save_file(path: &str, text: &[u8]) -> std::io::Result<()> {
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::shared::unix_ms()
    );
    let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn getuser(u: &User) -> Reply {
    let flags = u
        .flags()
        .into_iter()
        .map(|f| Reply::bulk(f.as_bytes()))
        .collect();
    Reply::Map(vec![
        (Reply::bulk(b"flags"), Reply::Set(flags)),
        (
            Reply::bulk(b"passwords"),
            Reply::Array(
                u.passwords()
                    .iter()
                    .map(|p| Reply::bulk(p.as_bytes()))
                    .collect(),
            ),
        ),
        (
            Reply::bulk(b"commands"),
            Reply::bulk(u.commands_rules().as_bytes()),
        ),
        (Reply::bulk(b"keys"), Reply::Bulk(u.keys_rules().into())),
        (
            Reply::bulk(b"channels"),
            Reply::Bulk(u.channels_rules().into()),
        ),
        (
            Reply::bulk(b"selectors"),
            Reply::Array(
                u.selectors()
                    .into_iter()
                    .map(|s| {
                        Reply::Map(vec![
                            (Reply::bulk(b"commands"), Reply::bulk_string(s.commands)),
                            (Reply::bulk(b"keys"), Reply::Bulk(s.keys.into())),
                            (Reply::bulk(b"channels"), Reply::Bulk(s.channels.into())),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// Disconnects the user's subscribers holding a channel or pattern it may no
/// longer use (ACLKillPubsubClientsIfNeeded).
async fn kill_revoked_subscribers(conn: &mut Conn, user: Arc<User>) {
    if user.all_channels() {
        return;
    }
    let me = conn.info.borrow().id;
    let _ = conn
        .shard
        .broadcast(move |s| {
            let ids = s
                .pubsub
                .borrow()
                .subscribers_outside(|name, pattern| user.channel_allowed(name, pattern));
            let clients = s.clients.borrow();
            for id in ids {
                if let Some(c) = clients.get(&id) {
                    let mut c = c.borrow_mut();
                    if c.user == user.name() {
                        if c.id == me {
                            c.killed = true;
                        } else {
                            c.kill();
                        }
                    }
                }
            }
        })
        .await;
}

/// Disconnects every client (on every executor) authenticated as a user for
/// which `doomed(name)` holds. The calling connection closes after its reply.
async fn kill_clients<F>(conn: &mut Conn, doomed: F)
where
    F: Fn(&str) -> bool + Send + Sync + Clone + 'static,
{
    let me = conn.info.borrow().id;
    let _ = conn
        .shard
        .broadcast(move |s| {
            for c in s.clients.borrow().values() {
                let mut c = c.borrow_mut();
                if doomed(&c.user) {
                    if c.id == me {
                        c.killed = true;
                    } else {
                        c.kill();
                    }
                }
            }
        })
        .await;
}
