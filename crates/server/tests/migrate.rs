//! MIGRATE between two real shardis processes (and a replica of the source):
//! replies, what moves, what stays, what the replica is told. Expected texts
//! are redis-server 7.0.15's (`.ci/checks/47-migrate-interop.sh` compares
//! against a real one in both directions).

mod common;

use common::{digest, free_port, info_field, wait_for, Server};
use redis::Value;

fn two() -> (Server, Server) {
    (
        Server::start(&["--threads", "2"]),
        Server::start(&["--threads", "2"]),
    )
}

/// Runs a command, giving its reply or its error text.
fn run(c: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    redis::cmd(args[0])
        .arg(&args[1..])
        .query::<Value>(c)
        .map_err(|e| {
            // The redis crate splits the code from the text; put them back.
            match (e.code(), e.detail()) {
                (Some(code), Some(detail)) => format!("{code} {detail}"),
                (Some(code), None) => code.to_string(),
                _ => e.to_string(),
            }
        })
}

fn status(c: &mut redis::Connection, args: &[&str]) -> String {
    match run(c, args) {
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::Okay) => "OK".into(),
        Ok(other) => panic!("{args:?}: {other:?}"),
        Err(e) => e,
    }
}

fn migrate(c: &mut redis::Connection, port: u16, rest: &[&str]) -> String {
    let p = port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &p];
    args.extend_from_slice(rest);
    status(c, &args)
}

fn exists(c: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(c).unwrap() == 1
}

fn value_digest(c: &mut redis::Connection, key: &str) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query::<Vec<String>>(c)
        .unwrap()
        .remove(0)
}

/// Keys that land on both shards of a two-thread server.
const KEYS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

#[test]
fn one_key_moves_with_its_value_and_ttl() {
    let (src, dst) = two();
    let (mut s, mut d) = (src.client(), dst.client());
    let _: () = redis::cmd("RPUSH")
        .arg(&["l", "x", "y", "z"])
        .query(&mut s)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&["h", "f", "v", "g", "w"])
        .query(&mut s)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&["t", "v", "PX", "100000"])
        .query(&mut s)
        .unwrap();
    let before: Vec<String> = ["l", "h", "t"]
        .iter()
        .map(|k| value_digest(&mut s, k))
        .collect();
    for k in ["l", "h", "t"] {
        assert_eq!(migrate(&mut s, dst.port, &[k, "0", "5000"]), "OK");
        assert!(!exists(&mut s, k), "{k} left the source");
    }
    let after: Vec<String> = ["l", "h", "t"]
        .iter()
        .map(|k| value_digest(&mut d, k))
        .collect();
    assert_eq!(before, after);
    let ttl: i64 = redis::cmd("PTTL").arg("t").query(&mut d).unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    let ttl: i64 = redis::cmd("PTTL").arg("l").query(&mut d).unwrap();
    assert_eq!(ttl, -1, "no TTL travels as 0, no TTL");
    // Another db on the target: SELECT goes first.
    let _: () = redis::cmd("SET").arg(&["k", "v"]).query(&mut s).unwrap();
    assert_eq!(migrate(&mut s, dst.port, &["k", "3", "5000"]), "OK");
    assert!(!exists(&mut d, "k"));
    let _: () = redis::cmd("SELECT").arg(3).query(&mut d).unwrap();
    assert!(exists(&mut d, "k"));
    // The connection stays cached for the next MIGRATE.
    assert_eq!(
        info_field(&mut s, "stats", "migrate_cached_sockets").as_deref(),
        Some("1")
    );
}

#[test]
fn keys_copy_replace_busykey_and_nokey() {
    let (src, dst) = two();
    let (mut s, mut d) = (src.client(), dst.client());
    for k in KEYS {
        let _: () = redis::cmd("SET").arg(&[k, k]).query(&mut s).unwrap();
    }
    let mut args = vec!["", "0", "5000", "COPY", "KEYS"];
    args.extend(KEYS);
    args.push("missing");
    assert_eq!(migrate(&mut s, dst.port, &args), "OK");
    for k in KEYS {
        assert!(exists(&mut s, k), "COPY keeps {k}");
        assert!(exists(&mut d, k), "{k} copied");
    }
    assert!(!exists(&mut d, "missing"));
    // The target has them now: RESTORE refuses, the first error is replied.
    let _: () = redis::cmd("SET").arg(&["a", "new"]).query(&mut s).unwrap();
    assert_eq!(
        migrate(&mut s, dst.port, &["a", "0", "5000"]),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    assert!(exists(&mut s, "a"), "not moved, not deleted");
    args[3] = "REPLACE";
    assert_eq!(migrate(&mut s, dst.port, &args), "OK");
    for k in KEYS {
        assert!(!exists(&mut s, k), "{k} moved");
    }
    let a: String = redis::cmd("GET").arg("a").query(&mut d).unwrap();
    assert_eq!(a, "new");
    assert_eq!(migrate(&mut s, dst.port, &args), "NOKEY");
    assert_eq!(migrate(&mut s, dst.port, &["a", "0", "5000"]), "NOKEY");
    // A target error on some keys: the others still move.
    let _: () = redis::cmd("SET").arg(&["a", "1"]).query(&mut s).unwrap();
    let _: () = redis::cmd("SET").arg(&["z", "1"]).query(&mut s).unwrap();
    assert_eq!(
        migrate(&mut s, dst.port, &["", "0", "5000", "KEYS", "a", "z"]),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    assert!(exists(&mut s, "a") && !exists(&mut s, "z"));
    assert!(exists(&mut d, "z"));
}

#[test]
fn option_errors_are_redis_texts() {
    let (src, _dst) = two();
    let mut s = src.client();
    let _: () = redis::cmd("SET").arg(&["k", "v"]).query(&mut s).unwrap();
    let p = 1;
    for (rest, want) in [
        (&["k", "0", "1000", "foo"][..], "ERR syntax error"),
        (&["k", "0", "1000", "AUTH"][..], "ERR syntax error"),
        (&["k", "0", "1000", "AUTH2", "u"][..], "ERR syntax error"),
        (
            &["k", "0", "x"][..],
            "ERR value is not an integer or out of range",
        ),
        (
            &["k", "x", "1000"][..],
            "ERR value is not an integer or out of range",
        ),
        (
            &["k", "0", "1000", "KEYS", "k"][..],
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
        ),
        (&["", "0", "1000", "KEYS"][..], "NOKEY"),
        (&["nokey", "0", "1000"][..], "NOKEY"),
    ] {
        assert_eq!(migrate(&mut s, p, rest), want, "{rest:?}");
    }
    assert_eq!(
        status(&mut s, &["MIGRATE", "h", "1", "k", "0"]),
        "ERR wrong number of arguments for 'migrate' command"
    );
}

#[test]
fn migrate_from_scripts() {
    let (src, dst) = two();
    let (mut s, mut d) = (src.client(), dst.client());
    for k in KEYS {
        let _: () = redis::cmd("SET").arg(&[k, k]).query(&mut s).unwrap();
    }
    let p = dst.port.to_string();
    // Undeclared keys on both shards; the reply and an error reply reach Lua.
    let script = "local r = redis.call('migrate', '127.0.0.1', ARGV[1], '', 0, 5000, 'KEYS', \
                  'a', 'b', 'c', 'd') \
                  local e = redis.pcall('migrate', '127.0.0.1', ARGV[1], 'e', 0, 5000, 'foo') \
                  return {r['ok'], e['err'], redis.call('exists', 'a', 'b', 'c', 'd', 'e')}";
    let v: Value = redis::cmd("EVAL")
        .arg(&[script, "0", &p])
        .query(&mut s)
        .unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"OK".to_vec()),
            Value::BulkString(b"ERR syntax error".to_vec()),
            Value::Int(1),
        ])
    );
    for k in ["a", "b", "c", "d"] {
        assert!(exists(&mut d, k), "{k} moved");
    }
    // Declared keys, and a function.
    let nokey: String = redis::cmd("EVAL")
        .arg(&[
            "return redis.call('migrate', '127.0.0.1', ARGV[1], KEYS[1], 0, 5000)",
            "1",
            "nosuch",
            &p,
        ])
        .query(&mut s)
        .unwrap();
    assert_eq!(nokey, "NOKEY");
    let lib = "#!lua name=m\n\
               redis.register_function('mv', function(keys, args) \
               return redis.call('migrate', '127.0.0.1', args[1], keys[1], 0, 5000) end)";
    let _: String = redis::cmd("FUNCTION")
        .arg(&["LOAD", lib])
        .query(&mut s)
        .unwrap();
    let ok: String = redis::cmd("FCALL")
        .arg(&["mv", "1", "e", &p])
        .query(&mut s)
        .unwrap();
    assert_eq!(ok, "OK");
    assert!(!exists(&mut s, "e") && exists(&mut d, "e"));
}

#[test]
fn unreachable_targets_are_ioerr() {
    let src = Server::start(&["--threads", "2"]);
    let mut s = src.client();
    let _: () = redis::cmd("SET").arg(&["k", "v"]).query(&mut s).unwrap();
    let closed = free_port();
    // Redis 7.0.15 reports a refused connect when it writes.
    assert_eq!(
        migrate(&mut s, closed, &["k", "0", "1000"]),
        "IOERR error or timeout writing to target instance"
    );
    assert_eq!(
        status(&mut s, &["MIGRATE", "", "1", "k", "0", "1000"]),
        "IOERR error or timeout connecting to the client"
    );
    assert!(exists(&mut s, "k"));
    assert_eq!(
        info_field(&mut s, "stats", "migrate_cached_sockets").as_deref(),
        Some("0")
    );
}

#[test]
fn auth_and_auth2_reach_a_protected_target() {
    let src = Server::start(&["--threads", "2"]);
    let dst = Server::start(&["--threads", "2", "--requirepass", "secret"]);
    let mut s = src.client();
    let mut d = redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", dst.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "bob", "on", ">bobpw", "~*", "+@all"])
        .query(&mut d)
        .unwrap();
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2"])
        .query(&mut s)
        .unwrap();
    assert_eq!(
        migrate(&mut s, dst.port, &["a", "0", "5000"]),
        "ERR Target instance replied with error: NOAUTH Authentication required."
    );
    assert_eq!(
        migrate(&mut s, dst.port, &["a", "0", "5000", "AUTH", "wrong"]),
        "ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        migrate(&mut s, dst.port, &["a", "0", "5000", "AUTH", "secret"]),
        "OK"
    );
    assert_eq!(
        migrate(
            &mut s,
            dst.port,
            &["b", "0", "5000", "AUTH2", "bob", "bobpw"]
        ),
        "OK"
    );
    assert!(!exists(&mut s, "a") && !exists(&mut s, "b"));
    assert!(exists(&mut d, "a") && exists(&mut d, "b"));
    // SLOWLOG shows the credentials redacted, as Redis does.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-log-slower-than", "0"])
        .query(&mut s)
        .unwrap();
    migrate(
        &mut s,
        dst.port,
        &["b", "0", "5000", "AUTH2", "bob", "bobpw"],
    );
    let log: Value = redis::cmd("SLOWLOG")
        .arg(&["GET", "1"])
        .query(&mut s)
        .unwrap();
    let text = format!("{log:?}");
    assert!(!text.contains("bobpw"), "{text}");
    assert!(text.contains("redacted"), "{text}");
}

#[test]
fn a_dropped_cached_connection_is_retried_once() {
    let (src, dst) = two();
    let (mut s, mut d) = (src.client(), dst.client());
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2"])
        .query(&mut s)
        .unwrap();
    assert_eq!(migrate(&mut s, dst.port, &["a", "0", "5000"]), "OK");
    // The target closes the cached connection (and ours with it).
    let _: () = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query(&mut d)
        .unwrap();
    assert_eq!(migrate(&mut s, dst.port, &["b", "0", "5000"]), "OK");
    assert!(exists(&mut d, "b"));
    // 10 s unused, the cron closes it.
    assert!(wait_for(15, || info_field(
        &mut s,
        "stats",
        "migrate_cached_sockets"
    )
    .as_deref()
        == Some("0")));
}

#[test]
fn migrate_runs_inside_exec() {
    let (src, dst) = two();
    let (mut s, mut d) = (src.client(), dst.client());
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2"])
        .query(&mut s)
        .unwrap();
    let p = dst.port.to_string();
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("MIGRATE")
        .arg(&["127.0.0.1", &p, "", "0", "5000", "KEYS", "a", "b"])
        .cmd("EXISTS")
        .arg(&["a", "b"])
        .query(&mut s)
        .unwrap();
    assert_eq!(replies, vec![Value::Okay, Value::Int(0)]);
    assert!(exists(&mut d, "a") && exists(&mut d, "b"));
}

#[test]
fn the_move_reaches_the_replica_as_del() {
    let src = Server::start(&["--threads", "2"]);
    let dst = Server::start(&["--threads", "2"]);
    let p = src.port.to_string();
    let replica = Server::start(&[
        "--threads",
        "2",
        "--replicaof",
        "127.0.0.1",
        &p,
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let (mut s, mut r) = (src.client(), replica.client());
    assert!(wait_for(20, || info_field(
        &mut r,
        "replication",
        "master_link_status"
    )
    .as_deref()
        == Some("up")));
    for k in KEYS {
        let _: () = redis::cmd("SET").arg(&[k, k]).query(&mut s).unwrap();
    }
    let _: () = redis::cmd("SET").arg(&["keep", "1"]).query(&mut s).unwrap();
    let mut args = vec!["", "0", "5000", "KEYS"];
    args.extend(KEYS);
    assert_eq!(migrate(&mut s, dst.port, &args), "OK");
    let converged = wait_for(20, || {
        KEYS.iter().all(|k| !exists(&mut r, k))
            && exists(&mut r, "keep")
            && digest(&mut r) == digest(&mut s)
    });
    assert!(converged, "replica still has the moved keys");
}

/// A target that answers each connection's first transfer with scripted
/// bytes (nothing more: later replies never come). Returns its port and the
/// number of connections it accepted.
fn scripted_target(
    replies: Vec<&'static [u8]>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    scripted_target_after(replies, std::time::Duration::from_millis(20))
}

/// [`scripted_target`] answering `delay` after the transfer arrived.
fn scripted_target_after(
    replies: Vec<&'static [u8]>,
    delay: std::time::Duration,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = replies.get(i).copied().unwrap_or(b"");
            std::thread::spawn(move || {
                // The whole pipeline arrives in one write: wait for the RESTORE.
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(7).any(|w| w == b"RESTORE") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = conn.write_all(reply);
                // Hold the connection open until the peer closes it.
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (port, accepted)
}

#[test]
fn reply_lines_are_read_as_redis_reads_them() {
    let src = Server::start(&["--threads", "2"]);
    let mut s = src.client();
    let _: () = redis::cmd("SET").arg(&["k", "v"]).query(&mut s).unwrap();
    // A target that never answers the RESTORE: a timeout is not retried.
    let (port, accepted) = scripted_target(vec![b"+OK\r\n", b"+OK\r\n"]);
    assert_eq!(
        migrate(&mut s, port, &["k", "0", "300"]),
        "IOERR error or timeout reading to target instance"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(exists(&mut s, "k"));
    // A bare newline is a failed read (length 0): retried once, then reported.
    let (port, accepted) = scripted_target(vec![b"\n", b"\n"]);
    assert_eq!(
        migrate(&mut s, port, &["k", "0", "2000"]),
        "IOERR error or timeout reading to target instance"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A line is read 1023 bytes at most.
    let long: &'static [u8] = Box::leak(
        [&b"+OK\r\n-ERR "[..], &[b'x'; 2000][..], b"\r\n"]
            .concat()
            .into_boxed_slice(),
    );
    let (port, _) = scripted_target(vec![long]);
    let e = migrate(&mut s, port, &["k", "0", "2000"]);
    assert_eq!(
        e,
        format!(
            "ERR Target instance replied with error: ERR {}",
            "x".repeat(1018)
        )
    );
    assert!(exists(&mut s, "k"));
}

#[test]
fn script_commands_wait_for_a_script_migrating() {
    let src = Server::start(&["--threads", "1"]);
    let mut s = src.client();
    let _: () = redis::cmd("SET").arg(&["k", "v"]).query(&mut s).unwrap();
    let (port, _) = scripted_target_after(
        vec![b"+OK\r\n+OK\r\n"],
        std::time::Duration::from_millis(600),
    );
    let p = port.to_string();
    let mover = std::thread::spawn(move || {
        let r: String = redis::cmd("EVAL")
            .arg(&[
                "return redis.call('migrate', '127.0.0.1', ARGV[1], 'k', 0, 5000)",
                "0",
                &p,
            ])
            .query(&mut s)
            .unwrap();
        r
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Same core, same interpreter: it waits (Redis's whole server would),
    // it does not get -BUSY.
    let mut other = src.client();
    let asked = std::time::Instant::now();
    let one: i64 = redis::cmd("EVAL")
        .arg(&["return 1", "0"])
        .query(&mut other)
        .unwrap();
    assert_eq!(one, 1);
    // The target answers ~400 ms after the EVAL was sent.
    let waited = asked.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250),
        "EVAL ran while the script was migrating ({waited:?})"
    );
    assert_eq!(mover.join().unwrap(), "OK");
    assert!(!exists(&mut other, "k"));
}
