//! Commands the connection runs itself: connection state (HELLO, AUTH, SELECT,
//! CLIENT …), introspection (COMMAND, INFO, CONFIG) and whole-keyspace commands
//! that visit every shard (DBSIZE, FLUSHALL, KEYS, SCAN, …).

use crate::conn::Conn;
use crate::errors::{self, SYNTAX};
use crate::pubsub::Kind;
use bytes::Bytes;
use shardis_base::ShardId;
use shardis_commands::{flags, lookup, meta, Command, CommandId, COMMANDS};
use shardis_keyspace::DbIndex;
use shardis_protocol::{decode::parse_int, Protocol, Reply};
use std::sync::atomic::Ordering;

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn parse_db(b: &[u8], databases: usize) -> Result<DbIndex, Reply> {
    let n = parse_int(b).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    if n < 0 || n as usize >= databases || n > i32::MAX as i64 {
        return Err(Reply::error(errors::DB_OUT_OF_RANGE));
    }
    Ok(DbIndex(n as usize))
}

/// Runs a connection-level or server-level command.
pub async fn special(conn: &mut Conn, cmd: &'static Command, args: &[Bytes]) -> Reply {
    match cmd.id {
        CommandId::Multi => crate::tx::multi(conn),
        CommandId::Exec => crate::tx::exec(conn).await,
        CommandId::Eval | CommandId::EvalRo | CommandId::Evalsha | CommandId::EvalshaRo => {
            crate::script::eval(conn, cmd, args).await
        }
        CommandId::Script => crate::script::script(conn, args).await,
        CommandId::Fcall | CommandId::FcallRo => {
            crate::script::functions::fcall(conn, cmd, args).await
        }
        CommandId::Function => crate::script::functions::function(conn, args).await,
        CommandId::Discard => crate::tx::discard(conn).await,
        CommandId::Watch => crate::tx::watch(conn, args).await,
        CommandId::Migrate => crate::migrate::command(conn, args).await,
        CommandId::Unwatch => crate::tx::unwatch(conn).await,
        CommandId::Subscribe => crate::pubsub::subscribe(conn, args, Kind::Channel),
        CommandId::Psubscribe => crate::pubsub::subscribe(conn, args, Kind::Pattern),
        CommandId::Ssubscribe => crate::pubsub::subscribe(conn, args, Kind::Shard),
        CommandId::Unsubscribe => crate::pubsub::unsubscribe(conn, args, Kind::Channel),
        CommandId::Punsubscribe => crate::pubsub::unsubscribe(conn, args, Kind::Pattern),
        CommandId::Sunsubscribe => crate::pubsub::unsubscribe(conn, args, Kind::Shard),
        CommandId::Publish => crate::pubsub::publish(conn, args, false).await,
        CommandId::Spublish => crate::pubsub::publish(conn, args, true).await,
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
        CommandId::Lolwut => crate::lolwut::lolwut(args),
        CommandId::Module => crate::module::module(conn, args),
        CommandId::Memory => crate::memstats::memory(conn, args).await,
        // Cluster-mode commands; outside cluster mode Redis answers this.
        CommandId::Readonly | CommandId::Readwrite | CommandId::Asking | CommandId::Cluster => {
            Reply::error("ERR This instance has cluster support disabled")
        }
        CommandId::Quit => {
            conn.close_after_reply = true;
            Reply::OK
        }
        CommandId::Select => {
            let databases = conn.shard.store.keyspace.borrow().databases();
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
            crate::tracking::disable(conn).await;
            conn.db = DbIndex(0);
            conn.proto = Protocol::Resp2;
            conn.reply_off = false;
            conn.skip_next = false;
            crate::acl::reset_user(conn);
            let mut info = conn.info.borrow_mut();
            info.name.clear();
            info.resp = 2;
            info.db = DbIndex(0);
            Reply::Simple("RESET")
        }
        CommandId::Client => client(conn, args).await,
        CommandId::Acl => crate::acl::command(conn, args).await,
        CommandId::CommandCmd => command(args),
        CommandId::Info => {
            Reply::Verbatim("txt", Bytes::from(crate::info::render(conn, args).await))
        }
        CommandId::Config => config(conn, args).await,
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
                .broadcast(move |s| s.store.keyspace.borrow().dbsize(db))
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
            let effect = shardis_keyspace::Effect {
                db,
                args: args.to_vec(),
            };
            let r =
                crate::multi::with_every_shard(&conn.shard, conn.held.as_mut(), effect, move |s| {
                    s.watch.borrow_mut().touch_db((!all).then_some(db));
                    crate::tracking::flushed(s);
                    {
                        let mut ks = s.store.keyspace.borrow_mut();
                        if all {
                            ks.flush_all()
                        } else {
                            ks.flush_db(db)
                        }
                    }
                    crate::blocking::dbs_changed(s, (!all).then_some(&[db][..]));
                })
                .await;
            if r.is_err() {
                return Reply::error(errors::SHUTTING_DOWN);
            }
            conn.shard.counters().dirty.fetch_add(1, Ordering::Relaxed);
            Reply::OK
        }
        CommandId::Swapdb => {
            let databases = conn.shard.store.keyspace.borrow().databases();
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
            let (a, b) = (DbIndex(a), DbIndex(b));
            if a != b {
                let effect = shardis_keyspace::Effect {
                    db: conn.db,
                    args: args.to_vec(),
                };
                if crate::multi::with_every_shard(
                    &conn.shard,
                    conn.held.as_mut(),
                    effect,
                    move |s| {
                        s.watch.borrow_mut().touch_db(Some(a));
                        s.watch.borrow_mut().touch_db(Some(b));
                        s.store.keyspace.borrow_mut().swap_db(a, b);
                        crate::blocking::dbs_changed(s, Some(&[a, b]));
                    },
                )
                .await
                .is_err()
                {
                    return Reply::error(errors::SHUTTING_DOWN);
                }
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
        // Runs on this executor and blocks it for its duration, as it blocks Redis.
        CommandId::Pfselftest => shardis_keyspace::hll::selftest(),
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
                if crate::server::abort_shutdown(&conn.shard.shared) {
                    return Reply::OK;
                }
                return Reply::error("ERR No shutdown in progress.");
            }
            let now = args.iter().skip(1).any(|a| eq(a, "now"));
            let shared = conn.shard.shared.clone();
            if shared.shutdown_requested.load(Ordering::SeqCst) {
                // One is already under way: this caller waits for it too.
                return wait_for_shutdown(&shared).await;
            }
            crate::log!(Warning, "User requested shutdown...");
            let mode = if args.iter().skip(1).any(|a| eq(a, "nosave")) {
                crate::server::SHUTDOWN_NOSAVE
            } else if args.iter().skip(1).any(|a| eq(a, "save")) {
                crate::server::SHUTDOWN_SAVE
            } else {
                crate::server::SHUTDOWN_DEFAULT
            };
            shared.shutdown_mode.store(mode, Ordering::SeqCst);
            crate::server::request_shutdown(&shared, now);
            let r = wait_for_shutdown(&shared).await;
            if !r.is_error() {
                conn.close_after_reply = true;
            }
            r
        }
        CommandId::Replconf => replconf(conn, args),
        CommandId::Psync | CommandId::Sync => {
            // `PSYNC <replid> <offset> FAILOVER`: our master hands over to us.
            if cmd.id == CommandId::Psync && args.len() > 3 && eq(&args[3], "failover") {
                let who = conn.info.borrow().line();
                let id = String::from_utf8_lossy(&args[1]).into_owned();
                let r = conn
                    .shard
                    .call_async(crate::shard::HOME_SHARD, move |s0| async move {
                        crate::replica::promote_for_failover(s0, id, who).await
                    })
                    .await
                    .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN));
                if r.is_error() {
                    return r;
                }
            } else if conn.shard.store.replica.get() && !master_link_up(conn).await {
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
        CommandId::Role => match conn
            .shard
            .call(crate::shard::HOME_SHARD, |s0| role(s0))
            .await
        {
            Ok(r) => r,
            Err(_) => Reply::error(errors::SHUTTING_DOWN),
        },
        CommandId::Replicaof | CommandId::Slaveof => replicaof(conn, args).await,
        CommandId::Wait => wait(conn, args).await,
        CommandId::Failover => crate::failover::command(conn, args).await,
        CommandId::Save => {
            if !crate::persist::try_claim(&conn.shard) {
                return Reply::error(errors::BGSAVE_IN_PROGRESS);
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
                return Reply::error(errors::BGSAVE_IN_PROGRESS);
            }
            crate::persist::spawn_bgsave(&conn.shard);
            Reply::Simple("Background saving started")
        }
        CommandId::Bgrewriteaof => match conn
            .shard
            .call(crate::shard::HOME_SHARD, crate::aof::bgrewriteaof)
            .await
        {
            Ok(r) => r,
            Err(_) => Reply::error(errors::SHUTTING_DOWN),
        },
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
        .call(crate::shard::HOME_SHARD, |s0| s0.repl().borrow().link_up())
        .await
        .unwrap_or(false)
}

fn role(s0: &crate::shard::Shard) -> Reply {
    let repl = s0.repl().borrow();
    match &repl.master {
        None => repl.role_master(),
        Some(m) => Reply::Array(vec![
            Reply::bulk(b"slave"),
            Reply::bulk(m.host.as_bytes()),
            Reply::Integer(m.port as i64),
            Reply::bulk(m.phase.role_name().as_bytes()),
            // Redis reports the offset of a connected master client only.
            Reply::Integer(if m.phase.is_up() {
                repl.master_offset()
            } else {
                -1
            }),
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
            b"rdb-only" => match parse_int(val) {
                Some(0) => conn.replconf.rdb_only = false,
                Some(1) => conn.replconf.rdb_only = true,
                Some(_) => {
                    return Reply::error("ERR value is out of range, value must between 0 and 1")
                }
                None => return Reply::error(errors::NOT_INTEGER),
            },
            // Redis's one filter keeps only functions in the RDB.
            b"rdb-filter-only" => {
                conn.replconf.rdb_functions_only = false;
                for f in val.split(|&b| b == b' ').filter(|f| !f.is_empty()) {
                    if !eq(f, "functions") {
                        return Reply::Error(format!(
                            "ERR Unsupported rdb-filter-only option: {}",
                            String::from_utf8_lossy(f)
                        ));
                    }
                    conn.replconf.rdb_functions_only = true;
                }
            }
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
            .call_async(crate::shard::HOME_SHARD, move |s0| async move {
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
        .call_async(crate::shard::HOME_SHARD, move |s0| async move {
            crate::replica::replicaof(s0, host, port, Some(who)).await
        })
        .await
        .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
}

async fn wait(conn: &mut Conn, args: &[Bytes]) -> Reply {
    if conn.shard.store.replica.get() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(numreplicas) = parse_int(&args[1]) else {
        return Reply::error(errors::NOT_INTEGER);
    };
    let timeout = match parse_int(&args[2]) {
        Some(t) if t >= 0 => t,
        Some(_) => return Reply::error(errors::TIMEOUT_NEGATIVE),
        None => return Reply::error(errors::TIMEOUT_NOT_INTEGER),
    };
    // Blocked like BLPOP as far as CLIENT UNBLOCK and CLIENT LIST can tell.
    let id = conn.info.borrow().id;
    let unblocked = crate::blocking::wait_started(&conn.shard, id);
    conn.info.borrow_mut().flags = "b".into();
    let flag = unblocked.clone();
    let n = conn
        .shard
        .call_async(crate::shard::HOME_SHARD, move |s0| async move {
            crate::repl::settle(&s0).await;
            let target = s0.repl().borrow().master_offset();
            let t = if timeout == 0 {
                None
            } else {
                Some(std::time::Duration::from_millis(timeout as u64))
            };
            crate::repl::wait_for_acks(&s0, target, numreplicas.max(0) as usize, t, &flag).await
        })
        .await
        .unwrap_or(Some(0));
    crate::blocking::wait_ended(&conn.shard, id);
    crate::tx::refresh_flags(conn);
    if unblocked.load(Ordering::Acquire) == crate::blocking::UNBLOCK_ERROR {
        return Reply::error(crate::errors::UNBLOCKED_BY_CLIENT);
    }
    match n {
        Some(n) => Reply::Integer(n as i64),
        None => {
            conn.close_after_reply = true;
            Reply::error(crate::errors::UNBLOCKED_ROLE_CHANGE)
        }
    }
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
    let role = if conn.shard.store.replica.get() {
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
                    if s.id == crate::shard::HOME_SHARD {
                        crate::repl::refresh_link_buffers(s);
                    }
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
        (b"reply", 3) => {
            let mode = args[2].to_ascii_lowercase();
            match mode.as_slice() {
                b"on" => {
                    conn.reply_off = false;
                    conn.skip_next = false;
                    Reply::OK
                }
                // Neither answers: OFF silences itself, SKIP sends nothing.
                b"off" => {
                    conn.reply_off = true;
                    Reply::Raw(Bytes::new())
                }
                b"skip" => {
                    if !conn.reply_off {
                        conn.skip_next = true;
                    }
                    Reply::Raw(Bytes::new())
                }
                _ => Reply::error(SYNTAX),
            }
        }
        (b"unblock", 3 | 4) => {
            let Some(id) = parse_int(&args[2]) else {
                return Reply::error(errors::NOT_INTEGER);
            };
            let error = match args.get(3) {
                None => false,
                Some(a) if eq(a, "timeout") => false,
                Some(a) if eq(a, "error") => true,
                Some(_) => {
                    return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
                }
            };
            if id <= 0 {
                return Reply::Integer(0);
            }
            let id = id as u64;
            match conn
                .shard
                .broadcast(move |s| crate::blocking::unblock_client(s, id, error))
                .await
            {
                Ok(v) => Reply::Integer(v.iter().any(|&b| b) as i64),
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        (b"unblock", n) if n > 4 => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
        (b"no-evict", 3) => crate::limits::no_evict(conn, &args[2]),
        (b"tracking", n) if n >= 3 => crate::tracking::client_tracking(conn, args).await,
        (b"caching", 3) => crate::tracking::client_caching(conn, args),
        (b"getredir", 2) => crate::tracking::client_getredir(conn),
        (b"trackinginfo", 2) => crate::tracking::client_trackinginfo(conn),
        (b"help", 2) => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
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
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
        (
            b"getname" | b"id" | b"setname" | b"info" | b"help" | b"kill" | b"pause" | b"unpause"
            | b"no-evict" | b"unblock" | b"reply" | b"tracking" | b"caching" | b"getredir"
            | b"trackinginfo",
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
                b"user" => {
                    if conn.shard.shared.acl.snapshot().get(v).is_none() {
                        return Reply::Error(format!(
                            "ERR No such user '{}'",
                            String::from_utf8_lossy(v)
                        ));
                    }
                    user = Some(String::from_utf8_lossy(v).into_owned())
                }
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
    let normal_only = matches!(ctype, Some("normal") | Some("pubsub"));
    let links_only = matches!(ctype, Some("master") | Some("replica"));
    let killed = if links_only {
        Ok(Vec::new())
    } else {
        let (addr, laddr, user) = (addr.clone(), laddr.clone(), user.clone());
        conn.shard
            .broadcast(move |s| {
                let mut n = 0;
                for c in s.clients.borrow().values() {
                    let mut c = c.borrow_mut();
                    let pubsub = c.subscribed();
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
            .await
    };
    // Replication links (our master, our replicas) live on shard 0, outside
    // the client registries; the same filters select them, as in Redis.
    let links = if normal_only {
        0
    } else {
        conn.shard
            .call(crate::shard::HOME_SHARD, move |s0| {
                let links = s0.obs.borrow().links.clone();
                let mut master = false;
                let mut replicas = Vec::new();
                for l in &links {
                    let c = l.borrow();
                    let kind = c.kind();
                    if ctype.is_some_and(|t| t != kind)
                        || addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
                        || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
                        || id.is_some_and(|i| i != c.id)
                        || user.as_ref().is_some_and(|u| *u != c.user)
                    {
                        continue;
                    }
                    if kind == "master" {
                        master = true;
                    } else {
                        replicas.push(c.id);
                    }
                }
                s0.repl().borrow_mut().kill_links(master, &replicas)
            })
            .await
            .unwrap_or(0)
    };
    let n: i64 = match killed {
        Ok(v) => v.iter().sum::<i64>() + links as i64,
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

/// A set of flag names (Redis prints these as status strings in a set).
fn flag_set<T: Copy + Into<u64>>(
    bits: T,
    names: impl Iterator<Item = (u64, &'static str)>,
) -> Reply {
    let bits: u64 = bits.into();
    Reply::Set(
        names
            .filter(|(f, _)| bits & f != 0)
            .map(|(_, n)| Reply::Status(n.to_string()))
            .collect(),
    )
}

fn bit_names(names: &'static [&'static str]) -> impl Iterator<Item = (u64, &'static str)> {
    names.iter().enumerate().map(|(i, n)| (1u64 << i, *n))
}

fn key_spec_flags(bits: u16) -> Reply {
    flag_set(bits, bit_names(meta::ks::NAMES))
}

/// One row of COMMAND INFO (server.c addReplyCommandInfo), subcommands
/// limited to the implemented ones.
fn command_info(i: usize, c: &Command) -> Reply {
    let m = &meta::TABLE[i];
    let kv = |k: &str, v: Reply| (Reply::bulk(k.as_bytes()), v);
    let specs = m
        .key_specs
        .iter()
        .map(|s| {
            let mut fields = Vec::with_capacity(4);
            if let Some(n) = s.notes {
                fields.push(kv("notes", Reply::bulk(n.as_bytes())));
            }
            fields.push(kv("flags", key_spec_flags(s.flags)));
            let begin = match s.begin {
                meta::Begin::Index(i) => vec![
                    kv("type", Reply::bulk(b"index")),
                    kv(
                        "spec",
                        Reply::Map(vec![kv("index", Reply::Integer(i as i64))]),
                    ),
                ],
                meta::Begin::Keyword { keyword, startfrom } => vec![
                    kv("type", Reply::bulk(b"keyword")),
                    kv(
                        "spec",
                        Reply::Map(vec![
                            kv("keyword", Reply::bulk(keyword.as_bytes())),
                            kv("startfrom", Reply::Integer(startfrom as i64)),
                        ]),
                    ),
                ],
                meta::Begin::Unknown => vec![
                    kv("type", Reply::bulk(b"unknown")),
                    kv("spec", Reply::Map(vec![])),
                ],
            };
            fields.push(kv("begin_search", Reply::Map(begin)));
            let find = match s.find {
                meta::Find::Range {
                    lastkey,
                    keystep,
                    limit,
                } => vec![
                    kv("type", Reply::bulk(b"range")),
                    kv(
                        "spec",
                        Reply::Map(vec![
                            kv("lastkey", Reply::Integer(lastkey as i64)),
                            kv("keystep", Reply::Integer(keystep as i64)),
                            kv("limit", Reply::Integer(limit as i64)),
                        ]),
                    ),
                ],
                meta::Find::Keynum {
                    keynumidx,
                    firstkey,
                    keystep,
                } => vec![
                    kv("type", Reply::bulk(b"keynum")),
                    kv(
                        "spec",
                        Reply::Map(vec![
                            kv("keynumidx", Reply::Integer(keynumidx as i64)),
                            kv("firstkey", Reply::Integer(firstkey as i64)),
                            kv("keystep", Reply::Integer(keystep as i64)),
                        ]),
                    ),
                ],
                meta::Find::Unknown => vec![
                    kv("type", Reply::bulk(b"unknown")),
                    kv("spec", Reply::Map(vec![])),
                ],
            };
            fields.push(kv("find_keys", Reply::Map(find)));
            Reply::Map(fields)
        })
        .collect();
    // Redis answers a set for "no subcommands" and an array for a container.
    let subs = if m.is_container() {
        Reply::Array(
            meta::children(i)
                .iter()
                .filter(|&&s| c.implements_sub(s))
                .map(|&s| command_info(s, c))
                .collect(),
        )
    } else {
        Reply::Set(vec![])
    };
    Reply::Array(vec![
        Reply::bulk(m.name.as_bytes()),
        Reply::Integer(m.arity as i64),
        flag_set(m.flags, flags::NAMES.iter().map(|(f, n)| (*f as u64, *n))),
        Reply::Integer(m.first_key as i64),
        Reply::Integer(m.last_key as i64),
        Reply::Integer(m.step as i64),
        Reply::Set(
            meta::CATEGORIES
                .iter()
                .enumerate()
                .filter(|(b, _)| m.categories & (1 << b) != 0)
                .map(|(_, n)| Reply::Status(format!("@{n}")))
                .collect(),
        ),
        Reply::Set(m.tips.iter().map(|t| Reply::bulk(t.as_bytes())).collect()),
        Reply::Set(specs),
        subs,
    ])
}

/// COMMAND DOCS arguments (server.c addReplyCommandArgList).
fn doc_args(args: &[meta::Arg]) -> Reply {
    let kv = |k: &str, v: Reply| (Reply::bulk(k.as_bytes()), v);
    let opt = |v: Option<&str>| v.map(|v| Reply::bulk(v.as_bytes()));
    Reply::Array(
        args.iter()
            .map(|a| {
                let mut f = vec![
                    kv("name", Reply::bulk(a.name.as_bytes())),
                    kv("type", Reply::bulk(a.kind.name().as_bytes())),
                ];
                if a.key_spec_index != -1 {
                    f.push(kv(
                        "key_spec_index",
                        Reply::Integer(a.key_spec_index as i64),
                    ));
                }
                for (k, v) in [
                    ("token", a.token),
                    ("summary", a.summary),
                    ("since", a.since),
                    ("deprecated_since", a.deprecated_since),
                ] {
                    if let Some(v) = opt(v) {
                        f.push(kv(k, v));
                    }
                }
                if a.flags != 0 {
                    f.push(kv("flags", flag_set(a.flags, bit_names(meta::arg::NAMES))));
                }
                if matches!(a.kind, meta::ArgType::Oneof | meta::ArgType::Block) {
                    f.push(kv("arguments", doc_args(a.arguments)));
                }
                Reply::Map(f)
            })
            .collect(),
    )
}

/// One entry of COMMAND DOCS (server.c addReplyCommandDocs), subcommands
/// limited to the implemented ones.
fn command_docs(i: usize, c: &Command) -> Reply {
    let m = &meta::TABLE[i];
    let d = &m.doc;
    let kv = |k: &str, v: Reply| (Reply::bulk(k.as_bytes()), v);
    let mut f = Vec::with_capacity(10);
    if let Some(s) = d.summary {
        f.push(kv("summary", Reply::bulk(s.as_bytes())));
    }
    if let Some(s) = d.since {
        f.push(kv("since", Reply::bulk(s.as_bytes())));
    }
    f.push(kv("group", Reply::bulk(d.group.as_bytes())));
    if let Some(s) = d.complexity {
        f.push(kv("complexity", Reply::bulk(s.as_bytes())));
    }
    if d.doc_flags != 0 {
        f.push(kv(
            "doc_flags",
            flag_set(d.doc_flags, bit_names(meta::doc::NAMES)),
        ));
    }
    if let Some(s) = d.deprecated_since {
        f.push(kv("deprecated_since", Reply::bulk(s.as_bytes())));
    }
    if let Some(s) = d.replaced_by {
        f.push(kv("replaced_by", Reply::bulk(s.as_bytes())));
    }
    if let Some(h) = d.history {
        let h = h
            .iter()
            .map(|(v, t)| Reply::Array(vec![Reply::bulk(v.as_bytes()), Reply::bulk(t.as_bytes())]))
            .collect();
        f.push(kv("history", Reply::Set(h)));
    }
    if let Some(a) = d.arguments {
        f.push(kv("arguments", doc_args(a)));
    }
    if m.is_container() {
        let subs = meta::children(i)
            .iter()
            .filter(|&&s| c.implements_sub(s))
            .map(|&s| {
                (
                    Reply::bulk(meta::TABLE[s].name.as_bytes()),
                    command_docs(s, c),
                )
            })
            .collect();
        f.push(kv("subcommands", Reply::Map(subs)));
    }
    Reply::Map(f)
}

/// The implemented command or subcommand named `full` (`get`, `config|get`)
/// with its top-level command.
fn lookup_full(full: &[u8]) -> Option<(usize, &'static Command)> {
    let i = shardis_commands::lookup_full(full)?;
    let top = meta::TABLE[i].parent.unwrap_or(i);
    Some((i, lookup(meta::TABLE[top].name.as_bytes())?))
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS (server.c getKeysSubcommandImpl).
fn command_getkeys(argv: &[Bytes], with_flags: bool) -> Reply {
    let Some(cmd) = lookup(&argv[0]) else {
        return Reply::error(errors::INVALID_COMMAND);
    };
    // As Redis's lookupCommand: a container followed by an argument resolves
    // to that subcommand; alone, it is itself.
    let i = match argv.get(1) {
        Some(sub) if cmd.meta.is_container() => match cmd.sub(sub) {
            Some(i) => i,
            None => return Reply::error(errors::INVALID_COMMAND),
        },
        _ => cmd.meta_index,
    };
    let m = &meta::TABLE[i];
    if !meta::has_keys(m) {
        return Reply::error("ERR The command has no key arguments");
    }
    let n = argv.len() as i32;
    if (m.arity > 0 && m.arity != n) || n < -m.arity {
        return Reply::error("ERR Invalid number of arguments specified for command");
    }
    let args: Vec<&[u8]> = argv.iter().map(|a| a.as_ref()).collect();
    let keys = meta::keys(m, &args);
    if keys.is_empty() {
        return if m.flags & flags::NO_MANDATORY_KEYS != 0 {
            Reply::Array(vec![])
        } else {
            Reply::error("ERR Invalid arguments specified for command")
        };
    }
    Reply::Array(
        keys.into_iter()
            .map(|(pos, f)| {
                let key = Reply::Bulk(argv[pos].clone());
                if with_flags {
                    Reply::Array(vec![key, key_spec_flags(f)])
                } else {
                    key
                }
            })
            .collect(),
    )
}

/// COMMAND LIST [FILTERBY MODULE name|ACLCAT cat|PATTERN pattern].
fn command_list(args: &[Bytes]) -> Reply {
    enum Filter<'a> {
        All,
        Nothing,
        Cat(u32),
        Pattern(&'a [u8]),
    }
    let mut filter = Filter::All;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if !args[i].eq_ignore_ascii_case(b"filterby") || more != 2 {
            return Reply::error(SYNTAX);
        }
        let arg = &args[i + 2];
        filter = match args[i + 1].to_ascii_lowercase().as_slice() {
            // shardis loads no modules: no command belongs to one.
            b"module" => Filter::Nothing,
            b"aclcat" => match std::str::from_utf8(arg).ok().and_then(meta::category) {
                Some(bit) => Filter::Cat(bit),
                None => Filter::Nothing,
            },
            b"pattern" => Filter::Pattern(arg),
            _ => return Reply::error(SYNTAX),
        };
        i += 3;
    }
    Reply::Array(
        shardis_commands::visible()
            .map(|i| &meta::TABLE[i])
            .filter(|m| match filter {
                Filter::All => true,
                Filter::Nothing => false,
                Filter::Cat(bit) => m.categories & bit != 0,
                Filter::Pattern(p) => {
                    shardis_keyspace::glob::glob_match(p, m.name.as_bytes(), true)
                }
            })
            .map(|m| Reply::bulk(m.name.as_bytes()))
            .collect(),
    )
}

fn command(args: &[Bytes]) -> Reply {
    let all = || {
        Reply::Array(
            COMMANDS
                .iter()
                .map(|c| command_info(c.meta_index, c))
                .collect(),
        )
    };
    if args.len() == 1 {
        return all();
    }
    let me = shardis_commands::get(CommandId::CommandCmd);
    let Some(sub) = me.sub(&args[1]) else {
        return Reply::Error(errors::unknown_subcommand(&args[1], "COMMAND"));
    };
    let m = &meta::TABLE[sub];
    let n = args.len() as i32;
    if (m.arity > 0 && m.arity != n) || n < -m.arity {
        return Reply::Error(errors::wrong_arity(m.name));
    }
    match m.short_name() {
        "count" => Reply::Integer(COMMANDS.len() as i64),
        "list" => command_list(args),
        "info" if args.len() == 2 => all(),
        "info" => Reply::Array(
            args[2..]
                .iter()
                .map(|n| match lookup_full(n) {
                    Some((i, c)) => command_info(i, c),
                    None => Reply::Nil,
                })
                .collect(),
        ),
        "docs" => {
            let pick: Vec<(usize, &Command)> = if args.len() == 2 {
                COMMANDS.iter().map(|c| (c.meta_index, c)).collect()
            } else {
                args[2..].iter().filter_map(|n| lookup_full(n)).collect()
            };
            Reply::Map(
                pick.into_iter()
                    .map(|(i, c)| {
                        (
                            Reply::bulk(meta::TABLE[i].name.as_bytes()),
                            command_docs(i, c),
                        )
                    })
                    .collect(),
            )
        }
        "getkeys" => command_getkeys(&args[2..], false),
        "getkeysandflags" => command_getkeys(&args[2..], true),
        _ => Reply::Array(
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
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::Status(l.to_string()))
            .collect(),
        ),
    }
}

/// Writes the running configuration into `path` (see `shardis_config`'s
/// rewrite): a temporary file in the same directory, fsynced, then renamed
/// over the old one, so a crash leaves either the old or the new file.
fn rewrite_config(
    shared: &crate::shared::Shared,
    path: &str,
    master: Option<(String, u16)>,
) -> Result<(), String> {
    use std::io::Write;
    let reason = |e: std::io::Error| crate::shared::strerror(&e);
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(reason(e)),
    };
    let text = shared
        .config()
        .rewrite(&old, master.as_ref().map(|(h, p)| (h.as_str(), *p)));
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(reason(e));
    }
    Ok(())
}

async fn config(conn: &mut Conn, args: &[Bytes]) -> Reply {
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
            // The config lock is released before any await below.
            let changes = (|| {
                let mut cfg = shared.config();
                let before = cfg.clone();
                for pair in args[2..].chunks(2) {
                    let name = String::from_utf8_lossy(&pair[0]).into_owned();
                    let value = String::from_utf8_lossy(&pair[1]).into_owned();
                    if let Err(e) = cfg.set(&name, &value) {
                        *cfg = before;
                        return Err(e);
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
                let good_set = cfg.min_replicas_to_write != before.min_replicas_to_write
                    || cfg.min_replicas_max_lag != before.min_replicas_max_lag;
                let appendonly = (cfg.appendonly != before.appendonly).then_some(cfg.appendonly);
                Ok((
                    requirepass,
                    pubsub_default,
                    maxmemory_set,
                    good_set,
                    appendonly,
                ))
            })();
            let (requirepass, pubsub_default, maxmemory_set, good_set, appendonly) = match changes {
                Ok(c) => c,
                Err(e) => return Reply::Error(e),
            };
            // Redis's updateAppendonly: turning the AOF on starts it with a
            // rewrite; failing that, the setting goes back.
            if let Some(on) = appendonly {
                let started = conn
                    .shard
                    .call_async(crate::shard::HOME_SHARD, move |s0| async move {
                        if on {
                            crate::aof::start_at_runtime(&s0).await
                        } else {
                            crate::aof::stop(&s0);
                            true
                        }
                    })
                    .await
                    .unwrap_or(false);
                if !started {
                    shared.config().appendonly = false;
                    return Reply::error("ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.");
                }
            }
            shared.refresh_hot_config();
            if good_set {
                // The next write must see a current count (Redis's
                // refreshGoodSlavesCount on CONFIG SET), not the next tick's.
                let _ = conn
                    .shard
                    .call(crate::shard::HOME_SHARD, |s0| {
                        crate::repl::refresh_good_replicas(s0)
                    })
                    .await;
            }
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
                        s.store
                            .cmdstats
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
            let Some(path) = shared.config_file.clone() else {
                return Reply::error("ERR The server is running without a config file");
            };
            let master = conn
                .shard
                .call(crate::shard::HOME_SHARD, |s0| {
                    s0.repl()
                        .borrow()
                        .master
                        .as_ref()
                        .map(|m| (m.host.clone(), m.port))
                })
                .await
                .unwrap_or(None);
            match rewrite_config(&shared, &path, master) {
                Ok(()) => {
                    crate::log!(Notice, "CONFIG REWRITE executed with success.");
                    Reply::OK
                }
                Err(e) => {
                    crate::log!(Warning, "CONFIG REWRITE failed: {}", e);
                    Reply::Error(format!("ERR Rewriting config file: {e}"))
                }
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
                "    Prints this help.",
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
    // Visit shards until this page has COUNT keys or the scan is complete: a
    // small keyspace comes back in one call, as from Redis.
    loop {
        let (p, t) = (pattern.clone(), type_name.clone());
        let step = conn
            .shard
            .call(ShardId(shard as usize), move |s| {
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
        if shard >= shards || keys.len() >= count {
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
            .call(ShardId(s), move |sh| {
                sh.with_ctx(db, |ks, ctx| ks.random_key(ctx))
            })
            .await
        {
            Ok(Some(k)) => return Reply::Bulk(k),
            Ok(None) => continue,
            Err(_) => return Reply::error(errors::SHUTTING_DOWN),
        }
    }
    Reply::Nil
}

/// DEBUG HELP, as Redis 7.0.15 prints it (it lists subcommands shardis
/// does not have; those get the unknown-subcommand error).
const DEBUG_HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
    "HELP",
    "    Prints this help.",
];

async fn debug(conn: &mut Conn, args: &[Bytes]) -> Reply {
    use shardis_keyspace::digest;
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"digest" if args.len() == 2 => {
            match conn
                .shard
                .broadcast(|s| s.store.keyspace.borrow().db_digests())
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
                        s.store.keyspace.borrow().digest_value(db, &k)
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
                .broadcast(|s| s.store.keyspace.borrow_mut().flush_all())
                .await;
            match crate::persist::load_rdb_bytes(&conn.shard, &data, true).await {
                Ok(_) => {
                    crate::log!(Notice, "DB reloaded by DEBUG RELOAD");
                    Reply::OK
                }
                Err(e) => Reply::Error(format!("ERR Error trying to load the RDB dump: {e}")),
            }
        }
        b"loadaof" => {
            let done = conn
                .shard
                // Boxed: the load replays commands, and DEBUG is one of them.
                .call_async(crate::shard::HOME_SHARD, |s0| async move {
                    Box::pin(crate::aof::debug_loadaof(&s0)).await
                })
                .await;
            match done {
                Ok(()) => Reply::OK,
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
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
        b"error" if args.len() == 3 => {
            // Redis's addReplyError: CR/LF become spaces.
            let msg = String::from_utf8_lossy(&args[2]).replace(['\r', '\n'], " ");
            Reply::Error(msg)
        }
        b"set-active-expire" if args.len() == 3 => {
            // Redis reads the flag with atoi: anything but a non-zero number is 0.
            let on = atoi(&args[2]) != 0;
            conn.shard.shared.active_expire.store(on, Ordering::Relaxed);
            Reply::OK
        }
        b"change-repl-id" if args.len() == 2 => {
            crate::log!(
                Warning,
                "Changing replication IDs after receiving DEBUG change-repl-id"
            );
            let r = conn
                .shard
                .call(crate::shard::HOME_SHARD, |s0| {
                    s0.repl().borrow_mut().ids =
                        shardis_replication::ReplIds::new(crate::shared::random_repl_id());
                })
                .await;
            match r {
                Ok(()) => Reply::OK,
                Err(_) => Reply::error(errors::SHUTTING_DOWN),
            }
        }
        b"protocol" if args.len() == 3 => debug_protocol(conn.proto, &args[2]),
        b"help" => Reply::Array(
            DEBUG_HELP
                .iter()
                .map(|l| Reply::Status(l.to_string()))
                .collect(),
        ),
        b"quicklist-packed-threshold" if args.len() == 3 => {
            // Redis's limit (quicklistisSetPackedThreshold). shardis's lists
            // have no packed/plain node distinction, so a valid threshold
            // changes nothing a client can observe.
            let ok = std::str::from_utf8(&args[2])
                .ok()
                .and_then(shardis_config::memtoull)
                .is_some_and(|sz| sz <= (1u64 << 32) - (1 << 20));
            if ok {
                Reply::OK
            } else {
                Reply::error(
                    "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
                )
            }
        }
        b"log" if args.len() == 3 => {
            crate::log!(Warning, "DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            Reply::OK
        }
        b"stringmatch-test" if args.len() == 2 => {
            stringmatch_fuzz();
            Reply::Status("Apparently Redis did not crash: test passed".into())
        }
        b"object" if args.len() == 3 => {
            let key = args[2].clone();
            debug_on_key_shard(conn, &args[2], move |s, db| {
                let now = crate::shared::unix_ms();
                shardis_keyspace::generic::debug_object(&s.store.keyspace.borrow(), now, db, &key)
            })
            .await
        }
        b"listpack" | b"quicklist"
            if args.len() == 3 || (sub == b"quicklist" && args.len() == 4) =>
        {
            let key = args[2].clone();
            let encoding = if sub == b"listpack" {
                "listpack"
            } else {
                "quicklist"
            };
            debug_on_key_shard(conn, &args[2], move |s, db| {
                s.with_ctx(db, |ks, ctx| {
                    shardis_keyspace::generic::debug_structure(ks, ctx, &key, encoding)
                })
            })
            .await
        }
        b"populate" if (3..=5).contains(&args.len()) => debug_populate(conn, args).await,
        // Redis quotes the subcommand as the client sent it.
        _ => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )),
    }
}

/// Runs `f` on the shard that owns `key`, in the connection's db.
async fn debug_on_key_shard(
    conn: &mut Conn,
    key: &[u8],
    f: impl FnOnce(&crate::shard::Shard, DbIndex) -> Reply + Send + Sync + 'static,
) -> Reply {
    let db = conn.db;
    let target = crate::route::shard_of(key, conn.shard.shards());
    conn.shard
        .call(target, move |s| f(s, db))
        .await
        .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
}

/// Redis's stringmatchlen_fuzz_test: random patterns against random strings
/// (bytes below 128, up to 31 long) through the glob matcher, which must
/// neither panic nor hang.
fn stringmatch_fuzz() {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut matches = 0u64;
    let (mut s, mut p) = ([0u8; 32], [0u8; 32]);
    for _ in 0..100_000 {
        let slen = rng.gen_range(0..32);
        let plen = rng.gen_range(0..32);
        for b in &mut s[..slen] {
            *b = rng.gen_range(0..128);
        }
        for b in &mut p[..plen] {
            *b = rng.gen_range(0..128);
        }
        matches += shardis_base::glob::glob_match(&p[..plen], &s[..slen], false) as u64;
    }
    crate::log!(Verbose, "DEBUG STRINGMATCH-TEST: total matches: {matches}");
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` (default
/// `key`) holding `value:N`, zero-padded or cut to `size`; existing keys are
/// kept. Each shard adds the keys it owns. Not propagated and not counted as
/// changes (as Redis), but WATCH sees the keys.
async fn debug_populate(conn: &mut Conn, args: &[Bytes]) -> Reply {
    const POSITIVE: &str = errors::OUT_OF_RANGE_POSITIVE;
    let count = match parse_int(&args[2]) {
        Some(n) if n >= 0 => n as u64,
        _ => return Reply::error(POSITIVE),
    };
    let size = match args.get(4).map(|a| parse_int(a)) {
        None => 0,
        Some(Some(n)) if n >= 0 => n as usize,
        Some(_) => return Reply::error(POSITIVE),
    };
    let prefix = args.get(3).cloned().unwrap_or(Bytes::from_static(b"key"));
    let (db, n) = (conn.db, conn.shard.shards());
    let r = conn
        .shard
        .broadcast(move |s| {
            for j in 0..count {
                // Redis formats into a 128-byte buffer: longer names are cut.
                let mut key = prefix.to_vec();
                key.extend_from_slice(format!(":{j}").as_bytes());
                key.truncate(127);
                if crate::route::shard_of(&key, n) != s.id {
                    continue;
                }
                s.with_ctx(db, |ks, ctx| {
                    if ks
                        .find(ctx, db, &key, shardis_keyspace::db::Lookup::Write)
                        .is_some()
                    {
                        return;
                    }
                    let mut val = format!("value:{j}").into_bytes();
                    if size > 0 {
                        val.resize(size, 0);
                    }
                    ks.insert_new(
                        ctx,
                        db,
                        &key,
                        shardis_keyspace::value::Value::string(&val),
                        None,
                    );
                });
                s.watch.borrow_mut().touch(db, &Bytes::from(key));
            }
        })
        .await;
    match r {
        Ok(_) => Reply::OK,
        Err(_) => Reply::error(errors::SHUTTING_DOWN),
    }
}

/// C's `atoi`: optional spaces and sign, then digits up to the first non-digit.
fn atoi(b: &[u8]) -> i64 {
    let s = std::str::from_utf8(b).unwrap_or("").trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.wrapping_mul(10).wrapping_add((d - b'0') as i64)
        });
    if neg {
        -n
    } else {
        n
    }
}

/// DEBUG PROTOCOL <type>: one reply of each RESP3 type, as Redis builds them
/// (RESP2 clients get Redis's downgraded forms).
fn debug_protocol(proto: Protocol, name: &[u8]) -> Reply {
    let resp3 = proto == Protocol::Resp3;
    match name.to_ascii_lowercase().as_slice() {
        b"string" => Reply::bulk_string("Hello World".to_string()),
        b"integer" => Reply::Integer(12345),
        // Redis's literal, not π.
        #[allow(clippy::approx_constant)]
        b"double" => Reply::Double(3.141),
        b"bignum" if resp3 => Reply::Raw(Bytes::from_static(
            b"(1234567999999999999999999999999999999\r\n",
        )),
        b"bignum" => Reply::Bulk(Bytes::from_static(b"1234567999999999999999999999999999999")),
        b"null" => Reply::Nil,
        b"array" => Reply::Array((0..3).map(Reply::Integer).collect()),
        b"set" => Reply::Set((0..3).map(Reply::Integer).collect()),
        b"map" => Reply::Map(
            (0..3)
                .map(|j| (Reply::Integer(j), Reply::Bool(j == 1)))
                .collect(),
        ),
        b"attrib" if resp3 => Reply::Raw(Bytes::from_static(
            b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n\
              $39\r\nSome real reply following the attribute\r\n",
        )),
        b"attrib" => Reply::bulk_string("Some real reply following the attribute".to_string()),
        b"push" if resp3 => Reply::Raw(Bytes::from_static(
            b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n\
              $40\r\nSome real reply following the push reply\r\n",
        )),
        b"push" => Reply::error("ERR RESP2 is not supported by this command"),
        b"verbatim" => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        _ => Reply::error(
            "ERR Wrong protocol type name. Please use one of the following: \
             string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// A SHUTDOWN caller stays blocked while the shutdown waits for replicas:
/// it gets no reply when the server goes down (Redis closes the
/// connection), and Redis's error when SHUTDOWN ABORT calls it off.
async fn wait_for_shutdown(shared: &crate::shared::Shared) -> Reply {
    loop {
        if shared.shutting_down() {
            return Reply::Raw(Bytes::new());
        }
        if !shared.shutdown_requested.load(Ordering::SeqCst) {
            return Reply::error("ERR Errors trying to SHUTDOWN. Check logs.");
        }
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
}
