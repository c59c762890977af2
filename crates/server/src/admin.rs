//! Commands the connection runs itself: connection state (HELLO, AUTH, SELECT,
//! CLIENT …), introspection (COMMAND, INFO, CONFIG) and whole-keyspace commands
//! that visit every shard (DBSIZE, FLUSHALL, KEYS, SCAN, …).

use crate::conn::Conn;
use crate::errors::{self, SYNTAX};
use bytes::Bytes;
use shardis_commands::{flags, lookup, Command, CommandId, COMMANDS};
use shardis_protocol::{decode::parse_int, Protocol, Reply};
use std::sync::atomic::Ordering;

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn parse_db(b: &[u8], databases: usize) -> Result<usize, Reply> {
    let n = parse_int(b).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    if n < 0 || n as usize >= databases || n > i32::MAX as i64 {
        return Err(Reply::error(errors::DB_OUT_OF_RANGE));
    }
    Ok(n as usize)
}

/// Runs a connection-level or server-level command.
pub async fn special(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Reply {
    match cmd.id {
        CommandId::Multi => crate::tx::multi(conn),
        CommandId::Exec => crate::tx::exec(conn).await,
        CommandId::Discard => crate::tx::discard(conn).await,
        CommandId::Watch => crate::tx::watch(conn, args).await,
        CommandId::Unwatch => crate::tx::unwatch(conn).await,
        CommandId::Subscribe => crate::pubsub::subscribe(conn, args, false),
        CommandId::Psubscribe => crate::pubsub::subscribe(conn, args, true),
        CommandId::Unsubscribe => crate::pubsub::unsubscribe(conn, args, false),
        CommandId::Punsubscribe => crate::pubsub::unsubscribe(conn, args, true),
        CommandId::Publish => crate::pubsub::publish(conn, args).await,
        CommandId::Pubsub => crate::pubsub::pubsub(conn, args).await,
        // RESP2 subscribed clients get PING as a message-shaped array.
        CommandId::Ping if conn.subs.active() && conn.proto == Protocol::Resp2 => {
            Reply::Array(vec![
                Reply::bulk(b"pong"),
                Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
            ])
        }
        CommandId::Ping => match args.len() {
            1 => Reply::Simple("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => Reply::Error(errors::wrong_arity("ping")),
        },
        CommandId::Echo => Reply::Bulk(args[1].clone()),
        CommandId::Quit => {
            conn.close_after_reply = true;
            Reply::OK
        }
        CommandId::Select => {
            let databases = conn.shard.keyspace.borrow().databases();
            match parse_db(&args[1], databases) {
                Ok(db) => {
                    conn.db = db;
                    Reply::OK
                }
                Err(e) => e,
            }
        }
        CommandId::Auth => auth(conn, args),
        CommandId::Hello => hello(conn, args),
        CommandId::Reset => {
            crate::obs::monitor::stop(conn);
            crate::tx::reset(conn).await;
            crate::pubsub::reset(conn);
            conn.db = 0;
            conn.proto = Protocol::Resp2;
            crate::acl::reset_user(conn);
            let mut info = conn.info.borrow_mut();
            info.name.clear();
            info.resp = 2;
            info.db = 0;
            Reply::Simple("RESET")
        }
        CommandId::Client => client(conn, args).await,
        CommandId::Acl => crate::acl::command(conn, args).await,
        CommandId::CommandCmd => command(args),
        CommandId::Info => {
            Reply::Verbatim("txt", Bytes::from(crate::info::render(conn, args).await))
        }
        CommandId::Config => config(conn, args),
        CommandId::Time => {
            let us = crate::shared::unix_us();
            Reply::Array(vec![
                Reply::bulk_string((us / 1_000_000).to_string()),
                Reply::bulk_string((us % 1_000_000).to_string()),
            ])
        }
        CommandId::Dbsize => {
            let db = conn.db;
            match conn
                .shard
                .broadcast(move |s| s.keyspace.borrow().dbsize(db))
                .await
            {
                Ok(sizes) => Reply::Integer(sizes.iter().sum::<usize>() as i64),
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        CommandId::Flushdb | CommandId::Flushall => {
            if args.len() > 2
                || (args.len() == 2 && !eq(&args[1], "async") && !eq(&args[1], "sync"))
            {
                return Reply::error(SYNTAX);
            }
            let db = conn.db;
            let all = cmd.id == CommandId::Flushall;
            let effect = args.to_vec();
            let r = conn
                .shard
                .broadcast(move |s| {
                    s.watch.borrow_mut().touch_db((!all).then_some(db));
                    let mut ks = s.keyspace.borrow_mut();
                    if all {
                        ks.flush_all()
                    } else {
                        ks.flush_db(db)
                    }
                })
                .await;
            if r.is_err() {
                return Reply::error(errors::SHUTTING_DOWN);
            }
            conn.shard
                .log_effects(std::iter::once(shardis_keyspace::Effect {
                    db,
                    args: effect,
                }));
            conn.shard.counters().dirty.fetch_add(1, Ordering::Relaxed);
            Reply::OK
        }
        CommandId::Swapdb => {
            let databases = conn.shard.keyspace.borrow().databases();
            let a = match parse_int(&args[1]) {
                Some(n) if n >= 0 => n as usize,
                Some(_) => return Reply::error(errors::DB_OUT_OF_RANGE),
                None => return Reply::error("ERR invalid first DB index"),
            };
            let b = match parse_int(&args[2]) {
                Some(n) if n >= 0 => n as usize,
                Some(_) => return Reply::error(errors::DB_OUT_OF_RANGE),
                None => return Reply::error("ERR invalid second DB index"),
            };
            if a >= databases || b >= databases {
                return Reply::error(errors::DB_OUT_OF_RANGE);
            }
            if a != b {
                let effect = args.to_vec();
                if conn
                    .shard
                    .broadcast(move |s| {
                        s.watch.borrow_mut().touch_db(Some(a));
                        s.watch.borrow_mut().touch_db(Some(b));
                        s.keyspace.borrow_mut().swap_db(a, b)
                    })
                    .await
                    .is_err()
                {
                    return Reply::error(errors::SHUTTING_DOWN);
                }
                conn.shard
                    .log_effects(std::iter::once(shardis_keyspace::Effect {
                        db: conn.db,
                        args: effect,
                    }));
            }
            Reply::OK
        }
        CommandId::Keys => {
            let db = conn.db;
            let pattern = args[1].clone();
            match conn
                .shard
                .broadcast(move |s| s.with_ctx(db, |ks, ctx| ks.keys(ctx, &pattern)))
                .await
            {
                Ok(parts) => Reply::Array(parts.into_iter().flatten().map(Reply::Bulk).collect()),
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        CommandId::Scan => scan(conn, args).await,
        CommandId::Randomkey => randomkey(conn).await,
        CommandId::Debug => debug(conn, args).await,
        CommandId::Slowlog => crate::obs::commands::slowlog(conn, args).await,
        CommandId::Latency => crate::obs::commands::latency_cmd(conn, args).await,
        CommandId::Monitor => crate::obs::commands::monitor(conn),
        CommandId::Shutdown => {
            let mut i = 1;
            while i < args.len() {
                let a = &args[i];
                if !(eq(a, "nosave")
                    || eq(a, "save")
                    || eq(a, "now")
                    || eq(a, "force")
                    || eq(a, "abort"))
                {
                    return Reply::error(SYNTAX);
                }
                i += 1;
            }
            if args.iter().skip(1).any(|a| eq(a, "abort")) {
                return Reply::error("ERR No shutdown in progress.");
            }
            crate::log!(Warning, "User requested shutdown...");
            let mode = if args.iter().skip(1).any(|a| eq(a, "nosave")) {
                crate::server::SHUTDOWN_NOSAVE
            } else if args.iter().skip(1).any(|a| eq(a, "save")) {
                crate::server::SHUTDOWN_SAVE
            } else {
                crate::server::SHUTDOWN_DEFAULT
            };
            conn.shard
                .shared
                .shutdown_mode
                .store(mode, Ordering::SeqCst);
            crate::server::begin_shutdown(&conn.shard.shared);
            conn.close_after_reply = true;
            // Redis closes the connection without a reply when shutdown succeeds.
            Reply::Raw(Bytes::new())
        }
        CommandId::Replconf => replconf(conn, args),
        CommandId::Psync | CommandId::Sync => {
            // `PSYNC <replid> <offset> FAILOVER`: our master hands over to us.
            if cmd.id == CommandId::Psync && args.len() > 3 && eq(&args[3], "failover") {
                let who = conn.info.borrow().line();
                let id = String::from_utf8_lossy(&args[1]).into_owned();
                let r = conn
                    .shard
                    .call_async(0, move |s0| async move {
                        crate::replica::promote_for_failover(s0, id, who).await
                    })
                    .await
                    .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN));
                if r.is_error() {
                    return r;
                }
            } else if conn.shard.replica.get() && !master_link_up(conn).await {
                return Reply::error("NOMASTERLINK Can't SYNC while not connected with my master");
            }
            let psync = if cmd.id == CommandId::Psync {
                let offset = parse_int(&args[2]).unwrap_or(-1);
                Some((String::from_utf8_lossy(&args[1]).into_owned(), offset))
            } else {
                None
            };
            conn.handoff = Some((psync, conn.replconf.clone()));
            Reply::Raw(Bytes::new())
        }
        CommandId::Role => match conn.shard.call(0, |s0| role(s0)).await {
            Ok(r) => r,
            Err(_) => Reply::error(errors::SHUTTING_DOWN),
        },
        CommandId::Replicaof | CommandId::Slaveof => replicaof(conn, args).await,
        CommandId::Wait => wait(conn, args).await,
        CommandId::Failover => crate::failover::command(conn, args).await,
        CommandId::Save => {
            if !crate::persist::try_claim(&conn.shard) {
                return Reply::error("ERR Background save already in progress");
            }
            let shard = conn.shard.clone();
            let r = crate::persist::save(&shard).await;
            crate::persist::release(&shard);
            match r {
                Ok(()) => Reply::OK,
                Err(e) => {
                    crate::log!(Warning, "{}", e);
                    Reply::error("ERR")
                }
            }
        }
        CommandId::Bgsave => {
            let schedule = args.len() == 2 && eq(&args[1], "schedule");
            if args.len() > 2 || (args.len() == 2 && !schedule) {
                return Reply::error(SYNTAX);
            }
            // Redis schedules only behind an AOF rewrite child; shardis has none,
            // so SCHEDULE meets the same error as a plain BGSAVE during a save.
            if !crate::persist::try_claim(&conn.shard) {
                return Reply::error("ERR Background save already in progress");
            }
            crate::persist::spawn_bgsave(&conn.shard);
            Reply::Simple("Background saving started")
        }
        CommandId::Lastsave => Reply::Integer(
            conn.shard
                .shared
                .persistence
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_save as i64,
        ),
        _ => Reply::Error(errors::unknown_command(args)),
    }
}

async fn master_link_up(conn: &Conn) -> bool {
    conn.shard
        .call(0, |s0| {
            s0.repl.borrow().master.as_ref().is_some_and(|m| m.link_up)
        })
        .await
        .unwrap_or(false)
}

fn role(s0: &crate::shard::Shard) -> Reply {
    let repl = s0.repl.borrow();
    match &repl.master {
        None => repl.role_master(),
        Some(m) => Reply::Array(vec![
            Reply::bulk(b"slave"),
            Reply::bulk(m.host.as_bytes()),
            Reply::Integer(m.port as i64),
            Reply::bulk(if m.link_up {
                b"connected".as_slice()
            } else if m.sync_in_progress {
                b"sync".as_slice()
            } else {
                b"connect".as_slice()
            }),
            Reply::Integer(repl.master_offset()),
        ]),
    }
}

fn replconf(conn: &mut Conn, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::error(SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let opt = pair[0].to_ascii_lowercase();
        let val = &pair[1];
        match opt.as_slice() {
            b"listening-port" => match parse_int(val) {
                Some(p) if (0..=65535).contains(&p) => conn.replconf.listening_port = p as u16,
                _ => return Reply::error(errors::NOT_INTEGER),
            },
            b"ip-address" => conn.replconf.ip = Some(String::from_utf8_lossy(val).into_owned()),
            b"capa" => {
                if eq(val, "eof") {
                    conn.replconf.capa_eof = true;
                } else if eq(val, "psync2") {
                    conn.replconf.capa_psync2 = true;
                }
            }
            // ACK/GETACK from something that is not an attached replica: ignored, as Redis does.
            b"ack" | b"getack" => return Reply::Raw(Bytes::new()),
            b"rdb-only" | b"rdb-filter-only" => {}
            _ => {
                return Reply::Error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(&pair[0])
                ))
            }
        }
    }
    Reply::OK
}

async fn replicaof(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let who = conn.info.borrow().line();
    if eq(&args[1], "no") && eq(&args[2], "one") {
        return conn
            .shard
            .call_async(0, move |s0| async move {
                crate::replica::promote(s0, who).await
            })
            .await
            .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN));
    }
    let port = match parse_int(&args[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return Reply::error("ERR Invalid master port"),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    conn.shard
        .call_async(0, move |s0| async move {
            crate::replica::replicaof(s0, host, port, Some(who)).await
        })
        .await
        .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
}

async fn wait(conn: &mut Conn, args: &[Bytes]) -> Reply {
    if conn.shard.replica.get() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(numreplicas) = parse_int(&args[1]) else {
        return Reply::error(errors::NOT_INTEGER);
    };
    let timeout = match parse_int(&args[2]) {
        Some(t) if t >= 0 => t,
        Some(_) => return Reply::error("ERR timeout is negative"),
        None => return Reply::error("ERR timeout is not an integer or out of range"),
    };
    let n = conn
        .shard
        .call_async(0, move |s0| async move {
            crate::repl::settle(&s0).await;
            let target = s0.repl.borrow().master_offset();
            let t = if timeout == 0 {
                None
            } else {
                Some(std::time::Duration::from_millis(timeout as u64))
            };
            crate::repl::wait_for_acks(&s0, target, numreplicas.max(0) as usize, t).await
        })
        .await
        .unwrap_or(0);
    Reply::Integer(n as i64)
}

fn auth(conn: &mut Conn, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::error(SYNTAX);
    }
    if args.len() == 2 {
        if conn.shard.shared.acl.snapshot().default_user().nopass() {
            return Reply::error(errors::AUTH_NOT_CONFIGURED);
        }
        return crate::acl::authenticate(conn, b"default", &args[1], &args[0]);
    }
    crate::acl::authenticate(conn, &args[1], &args[2], &args[0])
}

fn hello(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let mut proto = conn.proto;
    let mut i = 1;
    if args.len() >= 2 {
        match parse_int(&args[1]) {
            Some(2) => proto = Protocol::Resp2,
            Some(3) => proto = Protocol::Resp3,
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut setname = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "auth") && more >= 2 {
            let r = crate::acl::authenticate(conn, &args[i + 1], &args[i + 2], &args[0]);
            if r.is_error() {
                return r;
            }
            i += 3;
        } else if eq(&args[i], "setname") && more >= 1 {
            setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if !conn.authenticated {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = setname {
        if let Err(e) = valid_client_name(&name) {
            return e;
        }
        conn.info.borrow_mut().name = String::from_utf8_lossy(&name).into_owned();
    }
    conn.proto = proto;
    conn.info.borrow_mut().resp = if proto == Protocol::Resp3 { 3 } else { 2 };
    let role = if conn.shard.replica.get() {
        "replica"
    } else {
        "master"
    };
    Reply::Map(vec![
        (Reply::bulk(b"server"), Reply::bulk(b"redis")),
        (
            Reply::bulk(b"version"),
            Reply::bulk(crate::REDIS_VERSION.as_bytes()),
        ),
        (
            Reply::bulk(b"proto"),
            Reply::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (
            Reply::bulk(b"id"),
            Reply::Integer(conn.info.borrow().id as i64),
        ),
        (Reply::bulk(b"mode"), Reply::bulk(b"standalone")),
        (Reply::bulk(b"role"), Reply::bulk(role.as_bytes())),
        (Reply::bulk(b"modules"), Reply::Array(vec![])),
    ])
}

fn valid_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

async fn client(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"id", 2) => Reply::Integer(conn.info.borrow().id as i64),
        (b"getname", 2) => {
            let name = conn.info.borrow().name.clone();
            if name.is_empty() {
                Reply::Nil
            } else {
                Reply::Bulk(Bytes::from(name))
            }
        }
        (b"setname", 3) => match valid_client_name(&args[2]) {
            Ok(()) => {
                conn.info.borrow_mut().name = String::from_utf8_lossy(&args[2]).into_owned();
                Reply::OK
            }
            Err(e) => e,
        },
        (b"info", 2) => {
            let line = conn.info.borrow().line();
            Reply::Verbatim("txt", Bytes::from(line + "\n"))
        }
        (b"list", _) => {
            let mut ids: Option<Vec<u64>> = None;
            let mut kind: Option<&'static str> = None;
            let mut i = 2;
            while i < args.len() {
                if eq(&args[i], "type") && i + 1 < args.len() {
                    kind = Some(match args[i + 1].to_ascii_lowercase().as_slice() {
                        b"normal" => "normal",
                        b"master" => "master",
                        b"replica" | b"slave" => "replica",
                        b"pubsub" => "pubsub",
                        _ => {
                            return Reply::Error(format!(
                                "ERR Unknown client type '{}'",
                                String::from_utf8_lossy(&args[i + 1])
                            ))
                        }
                    });
                    i += 2;
                } else if eq(&args[i], "id") && i + 1 < args.len() {
                    let mut v = Vec::new();
                    for a in &args[i + 1..] {
                        match parse_int(a) {
                            Some(n) if n > 0 => v.push(n as u64),
                            _ => return Reply::error("ERR Invalid client ID"),
                        }
                    }
                    ids = Some(v);
                    i = args.len();
                } else {
                    return Reply::error(SYNTAX);
                }
            }
            let lines = match conn
                .shard
                .broadcast(move |s| {
                    // Connections, then replication links (master, replicas).
                    let links = s.obs.borrow().links.clone();
                    let clients = s.clients.borrow();
                    let mut v: Vec<(u64, String)> = clients
                        .values()
                        .chain(links.iter())
                        .map(|c| c.borrow())
                        .filter(|c| kind.is_none_or(|k| c.kind() == k))
                        .map(|c| (c.id, c.line()))
                        .collect();
                    v.sort();
                    v
                })
                .await
            {
                Ok(l) => l,
                Err(_) => return Reply::error(errors::SHUTTING_DOWN),
            };
            let mut all: Vec<(u64, String)> = lines.into_iter().flatten().collect();
            all.sort();
            let mut out = String::new();
            for (id, line) in all {
                if ids.as_ref().is_none_or(|v| v.contains(&id)) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Reply::Verbatim("txt", Bytes::from(out))
        }
        (b"kill", n) if n >= 3 => client_kill(conn, args).await,
        (b"pause", 3 | 4) => crate::limits::pause(&conn.shard.shared, args),
        // client|pause has arity -3: Redis's own check words it this way.
        (b"pause", n) if n > 4 => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
        (b"unpause", 2) => crate::limits::unpause(&conn.shard.shared),
        (b"no-evict", 3) => crate::limits::no_evict(conn, &args[2]),
        (b"help", 2) => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "    * ID <client-id>",
                "      Kill connections by client id.",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
        (
            b"getname" | b"id" | b"setname" | b"info" | b"help" | b"kill" | b"pause" | b"unpause"
            | b"no-evict",
            _,
        ) => Reply::Error(errors::wrong_arity(&format!(
            "client|{}",
            String::from_utf8_lossy(&sub)
        ))),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "client")),
    }
}

async fn client_kill(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let me = conn.info.borrow().id;
    // Old form: CLIENT KILL ip:port → +OK or an error.
    let mut ctype: Option<&'static str> = None;
    let (addr, laddr, id, user, skipme, old) = if args.len() == 3 {
        (
            Some(String::from_utf8_lossy(&args[2]).into_owned()),
            None,
            None,
            None,
            false,
            true,
        )
    } else {
        let mut addr = None;
        let mut laddr = None;
        let mut id = None;
        let mut user = None;
        let mut skipme = true;
        let mut i = 2;
        while i < args.len() {
            if i + 1 >= args.len() {
                return Reply::error(SYNTAX);
            }
            let v = &args[i + 1];
            match args[i].to_ascii_lowercase().as_slice() {
                b"addr" => addr = Some(String::from_utf8_lossy(v).into_owned()),
                b"laddr" => laddr = Some(String::from_utf8_lossy(v).into_owned()),
                b"id" => match parse_int(v) {
                    Some(n) if n > 0 => id = Some(n as u64),
                    _ => return Reply::error("ERR client-id should be greater than 0"),
                },
                b"user" => user = Some(String::from_utf8_lossy(v).into_owned()),
                b"type" => {
                    ctype = Some(match v.to_ascii_lowercase().as_slice() {
                        b"normal" => "normal",
                        b"master" => "master",
                        b"replica" | b"slave" => "replica",
                        b"pubsub" => "pubsub",
                        _ => {
                            return Reply::Error(format!(
                                "ERR Unknown client type '{}'",
                                String::from_utf8_lossy(v)
                            ))
                        }
                    });
                }
                b"skipme" => {
                    if eq(v, "yes") {
                        skipme = true
                    } else if eq(v, "no") {
                        skipme = false
                    } else {
                        return Reply::error(SYNTAX);
                    }
                }
                _ => return Reply::error(SYNTAX),
            }
            i += 2;
        }
        (addr, laddr, id, user, skipme, false)
    };
    // Replication links live on shard 0, outside the client registries.
    if matches!(ctype, Some("master") | Some("replica")) {
        let (addr, id) = (addr.clone(), id);
        let n = conn
            .shard
            .call(0, move |s0| {
                s0.repl
                    .borrow_mut()
                    .kill_links(ctype == Some("master"), addr.as_deref(), id)
            })
            .await
            .unwrap_or(0);
        return Reply::Integer(n as i64);
    }
    let killed = conn
        .shard
        .broadcast(move |s| {
            let mut n = 0;
            for c in s.clients.borrow().values() {
                let mut c = c.borrow_mut();
                let pubsub = c.sub + c.psub > 0;
                if (skipme && c.id == me)
                    || (ctype == Some("pubsub") && !pubsub)
                    || (ctype == Some("normal") && pubsub)
                    || addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
                    || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
                    || id.is_some_and(|i| i != c.id)
                    || user.as_ref().is_some_and(|u| *u != c.user)
                {
                    continue;
                }
                if c.id == me {
                    // Our own connection closes after this reply is written.
                    c.killed = true;
                } else {
                    c.kill();
                }
                n += 1;
            }
            n
        })
        .await;
    let n: i64 = match killed {
        Ok(v) => v.iter().sum(),
        Err(_) => return Reply::error(errors::SHUTTING_DOWN),
    };
    if old {
        if n == 0 {
            Reply::error("ERR No such client")
        } else {
            Reply::OK
        }
    } else {
        Reply::Integer(n)
    }
}

fn command_info(c: &Command) -> Reply {
    let (first, last, step) = c.legacy_key_range();
    let flags = flags::NAMES
        .iter()
        .filter(|(f, _)| c.has(*f))
        .map(|(_, n)| Reply::Status(n.to_string()))
        .collect();
    let mut cats = vec![];
    cats.push(if c.is_write() {
        "@write"
    } else if c.has(flags::READONLY) {
        "@read"
    } else {
        "@connection"
    });
    let group = match c.group {
        "generic" => "@keyspace",
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "stream" => "@stream",
        "pubsub" => "@pubsub",
        "transactions" => "@transaction",
        "server" => "@admin",
        _ => "",
    };
    if !group.is_empty() && group != cats[0] {
        cats.push(group);
    }
    if c.has(flags::FAST) {
        cats.push("@fast");
    } else {
        cats.push("@slow");
    }
    if c.has(flags::BLOCKING) {
        cats.push("@blocking");
    }
    Reply::Array(vec![
        Reply::bulk(c.name.as_bytes()),
        Reply::Integer(c.arity as i64),
        Reply::Set(flags),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        Reply::Set(
            cats.into_iter()
                .map(|s| Reply::Status(s.to_string()))
                .collect(),
        ),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_docs(c: &Command) -> Reply {
    let mut doc = vec![
        (Reply::bulk(b"summary"), Reply::bulk(c.summary.as_bytes())),
        (Reply::bulk(b"since"), Reply::bulk(b"1.0.0")),
        (Reply::bulk(b"group"), Reply::bulk(c.group.as_bytes())),
    ];
    let args = syntax_arguments(c.syntax);
    if !args.is_empty() {
        doc.push((Reply::bulk(b"arguments"), Reply::Array(args)));
    }
    Reply::Map(doc)
}

/// Turns a synopsis such as `key [EX seconds] [NX|XX]` into COMMAND DOCS
/// argument entries; redis-cli builds its hints from them.
fn syntax_arguments(syntax: &str) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut optional = false;
    let push = |text: &str, optional: bool, out: &mut Vec<Reply>| {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let multiple = text.ends_with("...");
        let name = text.trim_end_matches("...").trim().to_string();
        let mut fields = vec![
            (
                Reply::bulk(b"name"),
                Reply::bulk(name.to_lowercase().replace(' ', "_").as_bytes()),
            ),
            (Reply::bulk(b"type"), Reply::bulk(b"string")),
            (Reply::bulk(b"display_text"), Reply::bulk(name.as_bytes())),
        ];
        let mut flags = Vec::new();
        if optional {
            flags.push(Reply::Status("optional".into()));
        }
        if multiple {
            flags.push(Reply::Status("multiple".into()));
        }
        if !flags.is_empty() {
            fields.push((Reply::bulk(b"flags"), Reply::Array(flags)));
        }
        out.push(Reply::Map(fields));
    };
    for ch in syntax.chars() {
        match ch {
            '[' => {
                if depth == 0 {
                    push(&cur, false, &mut out);
                    cur.clear();
                    optional = true;
                } else {
                    cur.push(ch);
                }
                depth += 1;
            }
            ']' => {
                depth -= 1;
                if depth == 0 {
                    push(&cur, optional, &mut out);
                    cur.clear();
                    optional = false;
                } else {
                    cur.push(ch);
                }
            }
            ' ' if depth == 0 => {
                push(&cur, false, &mut out);
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    push(&cur, optional, &mut out);
    out
}

fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    }
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"count" if args.len() == 2 => Reply::Integer(COMMANDS.len() as i64),
        b"list" => Reply::Array(
            COMMANDS
                .iter()
                .map(|c| Reply::bulk(c.name.as_bytes()))
                .collect(),
        ),
        b"info" => {
            if args.len() == 2 {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(
                args[2..]
                    .iter()
                    .map(|n| lookup(n).map(command_info).unwrap_or(Reply::NilArray))
                    .collect(),
            )
        }
        b"docs" => {
            let pick: Vec<&Command> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            Reply::Map(
                pick.into_iter()
                    .map(|c| (Reply::bulk(c.name.as_bytes()), command_docs(c)))
                    .collect(),
            )
        }
        b"getkeys" if args.len() >= 3 => {
            let Some(c) = lookup(&args[2]) else {
                return Reply::error("ERR Invalid command specified");
            };
            let rest = &args[2..];
            if !c.arity_ok(rest.len()) {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            let argv: Vec<&[u8]> = rest.iter().map(|a| a.as_ref()).collect();
            match c.key_indices(&argv) {
                Ok(k) if !k.is_empty() => Reply::Array(
                    k.into_iter()
                        .map(|i| Reply::Bulk(rest[i].clone()))
                        .collect(),
                ),
                Ok(_) => Reply::error("ERR The command has no key arguments"),
                Err(_) => Reply::error("ERR Invalid arguments specified for command"),
            }
        }
        b"help" if args.len() == 2 => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
        b"count" | b"getkeys" | b"help" => Reply::Error(errors::wrong_arity(&format!(
            "command|{}",
            String::from_utf8_lossy(&sub)
        ))),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "command")),
    }
}

fn config(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let shared = conn.shard.shared.clone();
    match sub.as_slice() {
        b"get" if args.len() >= 3 => {
            let cfg = shared.config();
            let mut pairs = Vec::new();
            let mut seen = hashbrown::HashSet::new();
            for p in &args[2..] {
                for (k, v) in cfg.get(&String::from_utf8_lossy(p)) {
                    if seen.insert(k.clone()) {
                        pairs.push((Reply::Bulk(Bytes::from(k)), Reply::Bulk(Bytes::from(v))));
                    }
                }
            }
            Reply::Map(pairs)
        }
        b"set" if args.len() >= 4 && args.len().is_multiple_of(2) => {
            let mut cfg = shared.config();
            let before = cfg.clone();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).into_owned();
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                if let Err(e) = cfg.set(&name, &value) {
                    *cfg = before;
                    return Reply::Error(e);
                }
            }
            if cfg.loglevel != before.loglevel {
                if let Some(l) = crate::logging::Level::parse(cfg.loglevel.as_str()) {
                    crate::logging::set_level(l);
                }
            }
            let requirepass =
                (cfg.requirepass != before.requirepass).then(|| cfg.requirepass.clone());
            let pubsub_default = (cfg.acl_pubsub_default != before.acl_pubsub_default)
                .then(|| cfg.acl_pubsub_default == "allchannels");
            let maxmemory_set = cfg.maxmemory != before.maxmemory;
            drop(cfg);
            shared.refresh_hot_config();
            if maxmemory_set {
                crate::memory::maxmemory_set(&conn.shard);
            }
            if let Some(pass) = requirepass {
                crate::acl::set_requirepass(&shared, pass.as_deref());
            }
            if let Some(all) = pubsub_default {
                crate::acl::set_pubsub_default(&shared, all);
            }
            Reply::OK
        }
        b"resetstat" if args.len() == 2 => {
            let shard = conn.shard.clone();
            glommio::spawn_local(async move {
                let _ = shard
                    .broadcast(|s| {
                        let c = s.counters();
                        for a in [
                            &c.connections_received,
                            &c.rejected_connections,
                            &c.commands_processed,
                            &c.net_input_bytes,
                            &c.net_output_bytes,
                            &c.keyspace_hits,
                            &c.keyspace_misses,
                            &c.expired_keys,
                            &c.evicted_keys,
                            &c.total_error_replies,
                            &c.cross_shard_batches,
                        ] {
                            a.store(0, Ordering::Relaxed);
                        }
                        s.cmdstats
                            .borrow_mut()
                            .iter_mut()
                            .for_each(|c| *c = Default::default());
                        s.obs.borrow_mut().reset_stats();
                    })
                    .await;
            })
            .detach();
            Reply::OK
        }
        b"rewrite" if args.len() == 2 => {
            if shared.config_file.is_none() {
                Reply::error("ERR The server is running without a config file")
            } else {
                Reply::error(
                    "ERR Rewriting config file: CONFIG REWRITE is not supported by shardis",
                )
            }
        }
        b"help" if args.len() == 2 => Reply::Array(
            [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
        b"get" | b"set" | b"resetstat" | b"rewrite" | b"help" => Reply::Error(errors::wrong_arity(
            &format!("config|{}", String::from_utf8_lossy(&sub)),
        )),
        _ => Reply::Error(errors::unknown_subcommand(&args[1], "config")),
    }
}

async fn scan(conn: &mut Conn, args: &[Bytes]) -> Reply {
    // The cursor's top 16 bits pick the shard; the rest is that shard's cursor.
    let cursor: u64 = match std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(c) => c,
        None => return Reply::error(errors::INVALID_CURSOR),
    };
    let mut count = 10usize;
    let mut pattern: Option<Bytes> = None;
    let mut type_name: Option<Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Reply::error(SYNTAX);
        }
        if eq(&args[i], "count") {
            match parse_int(&args[i + 1]) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return Reply::error(SYNTAX),
                None => return Reply::error(errors::NOT_INTEGER),
            }
        } else if eq(&args[i], "match") {
            pattern = Some(args[i + 1].clone());
        } else if eq(&args[i], "type") {
            type_name = Some(args[i + 1].clone());
        } else {
            return Reply::error(SYNTAX);
        }
        i += 2;
    }
    let shards = conn.shard.shards() as u64;
    let mut shard = cursor >> 48;
    let mut inner = cursor & ((1 << 48) - 1);
    if shard >= shards {
        return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(vec![])]);
    }
    let db = conn.db;
    let mut keys = Vec::new();
    // Visit shards until this page has something or the scan is complete.
    loop {
        let (p, t) = (pattern.clone(), type_name.clone());
        let step = conn
            .shard
            .call(shard as usize, move |s| {
                s.with_ctx(db, |ks, ctx| {
                    ks.scan(ctx, inner, count, p.as_deref(), t.as_deref())
                })
            })
            .await;
        let Ok((next, found)) = step else {
            return Reply::error(errors::SHUTTING_DOWN);
        };
        keys.extend(found);
        if next != 0 {
            inner = next;
        } else {
            shard += 1;
            inner = 0;
        }
        if shard >= shards || !keys.is_empty() {
            break;
        }
    }
    let next = if shard >= shards {
        0
    } else {
        (shard << 48) | inner
    };
    Reply::Array(vec![
        Reply::bulk_string(next.to_string()),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ])
}

async fn randomkey(conn: &mut Conn) -> Reply {
    use rand::seq::SliceRandom;
    let db = conn.db;
    let mut order: Vec<usize> = (0..conn.shard.shards()).collect();
    order.shuffle(&mut rand::thread_rng());
    for s in order {
        match conn
            .shard
            .call(s, move |sh| sh.with_ctx(db, |ks, ctx| ks.random_key(ctx)))
            .await
        {
            Ok(Some(k)) => return Reply::Bulk(k),
            Ok(None) => continue,
            Err(_) => return Reply::error(errors::SHUTTING_DOWN),
        }
    }
    Reply::Nil
}

async fn debug(conn: &mut Conn, args: &[Bytes]) -> Reply {
    use shardis_keyspace::digest;
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"digest" if args.len() == 2 => {
            match conn
                .shard
                .broadcast(|s| s.keyspace.borrow().db_digests())
                .await
            {
                Ok(parts) => Reply::Status(digest::hex(&digest::combine(
                    &digest::merge_db_digests(&parts),
                ))),
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        b"digest-value" => {
            let n = conn.shard.shards();
            let db = conn.db;
            let mut out = Vec::new();
            for key in &args[2..] {
                let k = key.clone();
                let d = conn
                    .shard
                    .call(crate::route::shard_of(key, n), move |s| {
                        s.keyspace.borrow().digest_value(db, &k)
                    })
                    .await;
                match d {
                    Ok(d) => out.push(Reply::Status(digest::hex(&d))),
                    Err(_) => return Reply::error(errors::SHUTTING_DOWN),
                }
            }
            Reply::Array(out)
        }
        b"reload" => {
            // Save, flush, load back: proves the dump round-trips.
            crate::persist::claim(&conn.shard).await;
            let saved = crate::persist::save(&conn.shard).await;
            crate::persist::release(&conn.shard);
            if let Err(e) = saved {
                return Reply::Error(format!("ERR Error trying to save the DB: {e}"));
            }
            let data = match std::fs::read(crate::persist::dump_path(&conn.shard)) {
                Ok(d) => d,
                Err(e) => {
                    return Reply::Error(format!("ERR Error trying to load the RDB dump: {e}"))
                }
            };
            let _ = conn
                .shard
                .broadcast(|s| s.keyspace.borrow_mut().flush_all())
                .await;
            match crate::persist::load_rdb_bytes(&conn.shard, &data, true).await {
                Ok(_) => {
                    crate::log!(Notice, "DB reloaded by DEBUG RELOAD");
                    Reply::OK
                }
                Err(e) => Reply::Error(format!("ERR Error trying to load the RDB dump: {e}")),
            }
        }
        b"sleep" if args.len() == 3 => {
            let secs: f64 = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            // Like Redis, DEBUG SLEEP blocks the server thread (here: this core only).
            if secs > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            Reply::OK
        }
        b"help" => Reply::Array(
            [
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
        _ => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            upper(&args[1]).to_lowercase()
        )),
    }
}
