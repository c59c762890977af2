//! FAILOVER: the coordinated switch of roles between this master and one of its
//! replicas, with no write lost (Redis 7.0's `failoverCommand`).
//!
//! 1. `waiting-for-sync`: writes are paused and we wait until the target has
//!    acknowledged our whole stream (or TIMEOUT, which aborts unless FORCE).
//! 2. `failover-in-progress`: we become a replica of the target and our PSYNC
//!    carries `FAILOVER`, which makes the target promote itself first; the PSYNC
//!    then continues as a partial resync against the target's new history.
//! 3. Writes resume (now refused with READONLY: we are a replica).

use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use shardis_protocol::{decode::parse_int, Reply};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

thread_local! {
    /// Set by FAILOVER ABORT while a failover waits (shard 0 only).
    static ABORT: Cell<bool> = const { Cell::new(false) };
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms].
pub async fn command(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let mut to: Option<(String, u16)> = None;
    let mut force = false;
    let mut abort = false;
    let mut timeout: Option<u64> = None;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_slice() {
            b"to" if i + 2 < args.len() && to.is_none() => {
                let port = match parse_int(&args[i + 2]) {
                    Some(p) if (0..=65535).contains(&p) => p as u16,
                    _ => return Reply::error(errors::NOT_INTEGER),
                };
                to = Some((String::from_utf8_lossy(&args[i + 1]).into_owned(), port));
                i += 3;
            }
            b"force" if !force => {
                force = true;
                i += 1;
            }
            b"abort" if !abort => {
                abort = true;
                i += 1;
            }
            b"timeout" if i + 1 < args.len() && timeout.is_none() => {
                match parse_int(&args[i + 1]) {
                    Some(t) if t > 0 => timeout = Some(t as u64),
                    _ => return Reply::error("ERR FAILOVER timeout must be greater than 0"),
                }
                i += 2;
            }
            _ => return Reply::error(errors::SYNTAX),
        }
    }
    if abort {
        if to.is_some() || force || timeout.is_some() {
            return Reply::error(errors::SYNTAX);
        }
        return conn
            .shard
            .call(crate::shard::HOME_SHARD, |s0| {
                if s0.repl().borrow().failover_state == "waiting-for-sync" {
                    ABORT.with(|a| a.set(true));
                    Reply::OK
                } else {
                    Reply::error("ERR No failover in progress.")
                }
            })
            .await
            .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN));
    }
    if force && (to.is_none() || timeout.is_none()) {
        return Reply::error(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    conn.shard
        .call_async(crate::shard::HOME_SHARD, move |s0| async move {
            run(s0, to, force, timeout).await
        })
        .await
        .unwrap_or_else(|_| Reply::error(errors::SHUTTING_DOWN))
}

async fn run(
    s0: std::rc::Rc<crate::shard::Shard>,
    to: Option<(String, u16)>,
    force: bool,
    timeout: Option<u64>,
) -> Reply {
    {
        let repl = s0.repl().borrow();
        if repl.master.is_some() {
            return Reply::error("ERR FAILOVER is not valid when server is a replica.");
        }
        if repl.replicas.is_empty() {
            return Reply::error(errors::FAILOVER_NO_REPLICAS);
        }
        if repl.failover_state != "no-failover" {
            return Reply::error("ERR FAILOVER already in progress.");
        }
    }
    let target = {
        let repl = s0.repl().borrow();
        match &to {
            Some((host, port)) => match repl.find_replica(host, *port) {
                Some(r) => r,
                None => return Reply::error("ERR FAILOVER target HOST and PORT is not a replica."),
            },
            None => match repl.best_replica() {
                Some(r) => r,
                None => return Reply::error(errors::FAILOVER_NO_REPLICAS),
            },
        }
    };
    let (host, port) = to.unwrap_or_else(|| (target.ip.clone(), target.listening_port));
    crate::log!(Notice, "FAILOVER requested to {}:{}.", host, port);
    s0.repl().borrow_mut().failover_state = "waiting-for-sync";
    ABORT.with(|a| a.set(false));
    s0.shared.writes_paused.store(true, Ordering::SeqCst);
    let s = s0.clone();
    glommio::spawn_local(async move {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_millis(t));
        // Every write accepted before the pause has run on its shard …
        crate::limits::writes_drained(&s.shared).await;
        // … and is in the stream.
        crate::repl::settle(&s).await;
        let target_offset = s.repl().borrow().master_offset();
        s.repl()
            .borrow_mut()
            .merger
            .emit_raw(&[b"REPLCONF", b"GETACK", b"*"]);
        s.write_log.signal.kick();
        let synced = loop {
            if target.acked_offset() >= target_offset {
                break true;
            }
            if ABORT.with(|a| a.get()) {
                break false;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if force {
                    crate::log!(
                        Notice,
                        "FAILOVER to {}:{} time out exceeded, failing over.",
                        host,
                        port
                    );
                }
                break force;
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        };
        if !synced {
            crate::log!(
                Notice,
                "FAILOVER to {}:{} aborted: {}",
                host,
                port,
                if ABORT.with(|a| a.get()) {
                    "Failover manually aborted"
                } else {
                    "Replica never caught up before timeout"
                }
            );
            s.repl().borrow_mut().failover_state = "no-failover";
            s.shared.writes_paused.store(false, Ordering::SeqCst);
            return;
        }
        crate::log!(
            Notice,
            "Failover target {}:{} is synced, failing over.",
            host,
            port
        );
        {
            let mut repl = s.repl().borrow_mut();
            repl.failover_state = "failover-in-progress";
            repl.failover_psync = true;
        }
        crate::replica::replicaof(s.clone(), host.clone(), port, Some("failover".into())).await;
        // Writes are refused as READONLY from here; unpause once the link is up.
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until && !s.repl().borrow().link_up() {
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        s.repl().borrow_mut().failover_state = "no-failover";
        s.shared.writes_paused.store(false, Ordering::SeqCst);
        crate::log!(Notice, "Failover to {}:{} completed.", host, port);
    })
    .detach();
    Reply::OK
}
