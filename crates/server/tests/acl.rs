//! ACL users, permissions, AUTH, ACL LOG, aclfile and protected mode, against
//! the real binary. Replies are compared byte-for-byte with redis-server
//! 7.0.15's (checked by hand; see crates/acl for the rule-level tests).

mod common;

use common::{wait_for, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A minimal RESP2 client that renders replies as compact text:
/// `+OK`, `-ERR …`, `:1`, `"bulk"`, `(nil)`, `[a, b]`.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(srv: &Server) -> Client {
        Client::connect_to(("127.0.0.1", srv.port))
    }

    fn connect_to(addr: impl std::net::ToSocketAddrs) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.w.write_all(&out).unwrap();
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        if self.r.read_line(&mut line).unwrap_or(0) == 0 {
            return "EOF".into();
        }
        let line = line.trim_end_matches("\r\n");
        let (t, rest) = line.split_at(1);
        match t {
            "+" | "-" | ":" => line.to_string(),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return "(nil)".into();
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                format!("\"{}\"", String::from_utf8_lossy(&buf[..n as usize]))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return "(nil)".into();
                }
                let items: Vec<String> = (0..n).map(|_| self.read()).collect();
                format!("[{}]", items.join(", "))
            }
            _ => panic!("unexpected reply line {line:?}"),
        }
    }

    /// True once the server closed the connection.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            // A close with unread input arrives as a reset.
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

const NOPERM_KEY: &str =
    "-NOPERM this user has no permissions to access one of the keys used as arguments";

fn noperm_cmd(name: &str) -> String {
    format!("-NOPERM this user has no permissions to run the '{name}' command")
}

#[test]
fn setuser_getuser_list_users_whoami_cat() {
    let srv = Server::start(&[]);
    let mut c = Client::connect(&srv);
    assert_eq!(
        c.cmd(&["ACL", "LIST"]),
        r#"["user default on nopass ~* &* +@all"]"#
    );
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), r#""default""#);
    assert_eq!(
        c.cmd(&[
            "ACL",
            "SETUSER",
            "x",
            "~a",
            "%R~b",
            "&c",
            "+get",
            "+config|get",
            "-@all",
            "on",
            ">p",
            "nopass"
        ]),
        "+OK"
    );
    assert_eq!(
        c.cmd(&["ACL", "GETUSER", "x"]),
        r#"["flags", ["on", "nopass"], "passwords", [], "commands", "-@all", "keys", "~a %R~b", "channels", "&c", "selectors", []]"#
    );
    assert_eq!(c.cmd(&["ACL", "GETUSER", "nosuch"]), "(nil)");
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "z", "+@all", "-@dangerous"]),
        "+OK"
    );
    assert_eq!(
        c.cmd(&["ACL", "LIST"]),
        r#"["user default on nopass ~* &* +@all", "user x on nopass ~a %R~b resetchannels &c -@all", "user z off resetchannels +@all -@dangerous"]"#
    );
    assert_eq!(c.cmd(&["ACL", "USERS"]), r#"["default", "x", "z"]"#);
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "q", "+foo"]),
        "-ERR Error in ACL SETUSER modifier '+foo': Unknown command or category name in ACL"
    );
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "q", "on", "bar"]),
        "-ERR Error in ACL SETUSER modifier 'bar': Syntax error"
    );
    assert_eq!(
        c.cmd(&["ACL", "GETUSER", "q"]),
        "(nil)",
        "a failed SETUSER creates nothing"
    );
    assert_eq!(
        c.cmd(&["ACL", "DELUSER", "default"]),
        "-ERR The 'default' user cannot be removed"
    );
    assert_eq!(c.cmd(&["ACL", "DELUSER", "x", "nosuch"]), ":1");
    let cats = c.cmd(&["ACL", "CAT"]);
    assert!(
        cats.starts_with(r#"["keyspace", "read", "write", "set", "sortedset""#),
        "{cats}"
    );
    let strings = c.cmd(&["ACL", "CAT", "string"]);
    assert!(
        strings.contains(r#""get""#) && strings.contains(r#""mset""#),
        "{strings}"
    );
    assert!(!strings.contains(r#""hset""#));
    assert_eq!(
        c.cmd(&["ACL", "CAT", "nosuch"]),
        "-ERR Unknown category 'nosuch'"
    );
    assert_eq!(c.cmd(&["ACL", "GENPASS"]).len(), 64 + 2);
    assert_eq!(c.cmd(&["ACL", "GENPASS", "5"]).len(), 2 + 2);
    assert_eq!(
        c.cmd(&["ACL", "GENPASS", "0"]),
        "-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
    );
    assert!(c
        .cmd(&["ACL", "HELP"])
        .starts_with(r#"[+ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"#));
    assert_eq!(
        c.cmd(&["ACL", "NOPE"]),
        "-ERR unknown subcommand 'NOPE'. Try ACL HELP."
    );
    assert_eq!(
        c.cmd(&["ACL", "SAVE"]),
        "-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."
    );
}

#[test]
fn auth_with_users_requirepass_and_hello() {
    let srv = Server::start(&["--requirepass", "s3cret"]);
    let mut admin = Client::connect(&srv);
    assert_eq!(admin.cmd(&["GET", "a"]), "-NOAUTH Authentication required.");
    assert_eq!(admin.cmd(&["AUTH", "s3cret"]), "+OK");
    let list = admin.cmd(&["ACL", "LIST"]);
    // requirepass is the default user's password (SHA-256 of "s3cret").
    assert_eq!(
        list,
        format!(
            r#"["user default on #{} ~* &* +@all"]"#,
            shardis_acl::hash_password(b"s3cret")
        )
    );
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all"]),
        "+OK"
    );
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "off1", "off", ">pw", "~*", "+@all"]),
        "+OK"
    );
    let mut c = Client::connect(&srv);
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(c.cmd(&["AUTH", "alice", "nope"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "nosuch", "pw"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "off1", "pw"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "alice", "pw"]), "+OK");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), r#""alice""#);
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" user=alice "));
    assert_eq!(c.cmd(&["RESET"]), "+RESET");
    assert_eq!(c.cmd(&["GET", "a"]), "-NOAUTH Authentication required.");
    // HELLO AUTH.
    let h = c.cmd(&["HELLO", "2", "AUTH", "alice", "bad"]);
    assert_eq!(h, wrongpass);
    let h = c.cmd(&["HELLO", "2", "AUTH", "alice", "pw"]);
    assert!(h.starts_with(r#"["server", "redis""#), "{h}");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), r#""alice""#);
    // ACL LOG has the failed AUTHs, newest first, with Redis's fields.
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    assert!(
        log.starts_with(r#"[["count", :1, "reason", "auth", "context", "toplevel", "object", "HELLO", "username", "alice", "age-seconds", "#),
        "{log}"
    );
    assert!(
        log.contains(r#""client-info", "id="#) && log.contains(" cmd=hello "),
        "{log}"
    );
    let log = admin.cmd(&["ACL", "LOG"]);
    assert!(
        log.contains(r#""object", "AUTH", "username", "nosuch""#),
        "{log}"
    );
    assert!(
        log.contains(r#""object", "AUTH", "username", "off1""#),
        "{log}"
    );
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), "+OK");
    assert_eq!(admin.cmd(&["ACL", "LOG"]), "[]");
    // CONFIG SET requirepass changes the default user's password.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", "other"]), "+OK");
    let mut d = Client::connect(&srv);
    assert_eq!(d.cmd(&["AUTH", "s3cret"]), wrongpass);
    assert_eq!(d.cmd(&["AUTH", "other"]), "+OK");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK");
    let mut e = Client::connect(&srv);
    assert_eq!(e.cmd(&["PING"]), "+PONG");
    assert_eq!(
        e.cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

/// Keys spread over both shards; a restricted client must never read or
/// write a key outside its patterns, whatever command and routing it uses.
#[test]
fn key_patterns_are_enforced_on_every_path() {
    let srv = Server::start(&["--threads", "2"]);
    let mut admin = Client::connect(&srv);
    assert_eq!(
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">pw",
            "~app:*",
            "%R~ro:*",
            "%W~wo:*",
            "+@all",
            "-@dangerous"
        ]),
        "+OK"
    );
    for k in ["app:1", "app:2", "ro:1", "wo:1", "secret:1", "secret:2"] {
        assert_eq!(admin.cmd(&["SET", k, &format!("v-{k}")]), "+OK");
    }
    let mut c = Client::connect(&srv);
    assert_eq!(c.cmd(&["AUTH", "app", "pw"]), "+OK");
    // Reads.
    assert_eq!(c.cmd(&["GET", "app:1"]), r#""v-app:1""#);
    assert_eq!(c.cmd(&["GET", "ro:1"]), r#""v-ro:1""#);
    assert_eq!(c.cmd(&["GET", "wo:1"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["GET", "secret:1"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["MGET", "app:1", "app:2", "secret:1"]), NOPERM_KEY);
    assert_eq!(
        c.cmd(&["MGET", "app:1", "app:2", "ro:1"]),
        r#"["v-app:1", "v-app:2", "v-ro:1"]"#
    );
    assert_eq!(c.cmd(&["EXISTS", "secret:1"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["STRLEN", "secret:2"]), NOPERM_KEY);
    // Writes.
    assert_eq!(c.cmd(&["SET", "ro:1", "x"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["SET", "wo:1", "w"]), "+OK");
    assert_eq!(
        c.cmd(&["SET", "wo:1", "w", "GET"]),
        NOPERM_KEY,
        "GET reads the old value"
    );
    assert_eq!(c.cmd(&["MSET", "app:1", "x", "secret:1", "x"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["DEL", "app:2", "secret:2"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["RENAME", "secret:1", "app:9"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["RENAME", "app:1", "secret:9"]), NOPERM_KEY);
    assert_eq!(
        c.cmd(&["RENAME", "ro:1", "app:9"]),
        NOPERM_KEY,
        "RENAME deletes its source"
    );
    assert_eq!(c.cmd(&["COPY", "secret:1", "app:9"]), NOPERM_KEY);
    assert_eq!(
        c.cmd(&["COPY", "ro:1", "wo:2"]),
        ":1",
        "COPY reads its source, writes its destination"
    );
    assert_eq!(c.cmd(&["SINTERSTORE", "app:s", "secret:1"]), NOPERM_KEY);
    assert_eq!(
        c.cmd(&["LMOVE", "app:l", "secret:l", "LEFT", "LEFT"]),
        NOPERM_KEY
    );
    // Commands without a key right are denied too, not only keys.
    assert_eq!(c.cmd(&["KEYS", "*"]), noperm_cmd("keys"));
    assert_eq!(c.cmd(&["FLUSHALL"]), noperm_cmd("flushall"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", "5"]),
        noperm_cmd("config|set")
    );
    // MULTI/EXEC: a denied command aborts the whole transaction.
    assert_eq!(c.cmd(&["MULTI"]), "+OK");
    assert_eq!(c.cmd(&["SET", "app:1", "in-multi"]), "+QUEUED");
    assert_eq!(c.cmd(&["SET", "secret:1", "in-multi"]), NOPERM_KEY);
    assert_eq!(
        c.cmd(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors."
    );
    // Nothing the client was refused happened.
    for (k, v) in [
        ("app:1", "v-app:1"),
        ("app:2", "v-app:2"),
        ("ro:1", "v-ro:1"),
        ("secret:1", "v-secret:1"),
        ("secret:2", "v-secret:2"),
    ] {
        assert_eq!(admin.cmd(&["GET", k]), format!("\"{v}\""), "{k}");
    }
    for k in ["app:9", "secret:9", "app:s", "secret:l"] {
        assert_eq!(admin.cmd(&["EXISTS", k]), ":0", "{k}");
    }
    assert_eq!(admin.cmd(&["GET", "wo:2"]), r#""v-ro:1""#);
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    assert!(
        log.starts_with(r#"[["count", :1, "reason", "key", "context", "multi", "object", "secret:1", "username", "app""#),
        "{log}"
    );
}

#[test]
fn commands_categories_and_channels() {
    let srv = Server::start(&[]);
    let mut admin = Client::connect(&srv);
    assert_eq!(
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "ro",
            "on",
            "nopass",
            "allkeys",
            "+@read",
            "-keys",
            "+@connection",
            "&news.*",
            "+publish",
            "+psubscribe",
            "+subscribe"
        ]),
        "+OK"
    );
    let mut c = Client::connect(&srv);
    assert_eq!(c.cmd(&["AUTH", "ro", "any"]), "+OK");
    assert_eq!(c.cmd(&["GET", "k"]), "(nil)");
    assert_eq!(c.cmd(&["SET", "k", "v"]), noperm_cmd("set"));
    assert_eq!(c.cmd(&["KEYS", "*"]), noperm_cmd("keys"));
    assert_eq!(c.cmd(&["HGETALL", "h"]), "[]");
    assert_eq!(c.cmd(&["PUBLISH", "news.1", "m"]), ":0");
    assert_eq!(
        c.cmd(&["PUBLISH", "sport", "m"]),
        "-NOPERM this user has no permissions to access one of the channels used as arguments"
    );
    assert_eq!(
        c.cmd(&["PSUBSCRIBE", "news.1"]),
        "-NOPERM this user has no permissions to access one of the channels used as arguments",
        "a pattern must match an allowed pattern literally"
    );
    assert_eq!(
        c.cmd(&["SUBSCRIBE", "news.2"]),
        r#"["subscribe", "news.2", :1]"#
    );
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    assert!(
        log.contains(r#""reason", "channel", "context", "toplevel", "object", "news.1""#),
        "{log}"
    );
    // Changing the user takes effect on the next command of live connections.
    let mut d = Client::connect(&srv);
    assert_eq!(d.cmd(&["AUTH", "ro", "x"]), "+OK");
    assert_eq!(d.cmd(&["GET", "k"]), "(nil)");
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "ro", "-get"]), "+OK");
    assert_eq!(d.cmd(&["GET", "k"]), noperm_cmd("get"));
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "ro", "+select|0"]), "+OK");
    assert_eq!(d.cmd(&["SELECT", "0"]), "+OK");
}

#[test]
fn deleted_user_is_disconnected() {
    let srv = Server::start(&["--threads", "2"]);
    let mut admin = Client::connect(&srv);
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "tmp", "on", "nopass", "+@all", "~*"]),
        "+OK"
    );
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(&srv)).collect();
    for c in &mut clients {
        assert_eq!(c.cmd(&["AUTH", "tmp", "x"]), "+OK");
    }
    let mut keep = Client::connect(&srv);
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "tmp"]), ":1");
    // Idle clients on both executors are closed at once, not at their next command.
    for c in &mut clients {
        assert!(
            wait_for(5, || c.closed()),
            "client of a deleted user stays connected"
        );
    }
    assert_eq!(keep.cmd(&["PING"]), "+PONG");
    // Disabling a user keeps its connections (Redis 7.0), but stops new AUTHs.
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "u2", "on", "nopass", "+@all"]),
        "+OK"
    );
    let mut c = Client::connect(&srv);
    assert_eq!(c.cmd(&["AUTH", "u2", "x"]), "+OK");
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "u2", "off"]), "+OK");
    assert_eq!(c.cmd(&["PING"]), "+PONG");
    assert_eq!(
        Client::connect(&srv).cmd(&["AUTH", "u2", "x"]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
}

#[test]
fn aclfile_save_load_roundtrip() {
    let dir = std::env::temp_dir().join(format!("shardis-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.acl");
    std::fs::write(&file, "user alice on >pw ~a:* +@read\n").unwrap();
    let path = file.to_str().unwrap().to_string();
    let srv = Server::start(&["--aclfile", &path]);
    let mut c = Client::connect(&srv);
    let alice = format!(
        "user alice on #{} ~a:* resetchannels -@all +@read",
        shardis_acl::hash_password(b"pw")
    );
    assert_eq!(
        c.cmd(&["ACL", "LIST"]),
        format!(
            r#"["user alice on #{} ~a:* resetchannels -@all +@read", "user default on nopass ~* &* +@all"]"#,
            shardis_acl::hash_password(b"pw")
        )
    );
    assert_eq!(
        c.cmd(&[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            "nopass",
            "allkeys",
            "+@all",
            "-flushall"
        ]),
        "+OK"
    );
    assert_eq!(c.cmd(&["ACL", "SAVE"]), "+OK");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        saved,
        format!("{alice}\nuser bob on nopass ~* resetchannels +@all -flushall\nuser default on nopass ~* &* +@all\n")
    );
    // A client of a user is dropped by ACL LOAD (Redis frees every user).
    let mut a = Client::connect(&srv);
    assert_eq!(a.cmd(&["AUTH", "alice", "pw"]), "+OK");
    std::fs::write(
        &file,
        "user carol on nopass +@all\nuser bogus on +nosuchcmd\nnot a user\n",
    )
    .unwrap();
    assert_eq!(
        c.cmd(&["ACL", "LOAD"]),
        format!("-ERR {path}:2: Error in applying operation '+nosuchcmd': Unknown command or category name in ACL. {path}:3 should start with user keyword followed by the username. WARNING: ACL errors detected, no change to the previously active ACL rules was performed")
    );
    assert_eq!(
        a.cmd(&["GET", "a:1"]),
        "(nil)",
        "a failed LOAD changes nothing"
    );
    std::fs::write(&file, &saved).unwrap();
    assert_eq!(c.cmd(&["ACL", "LOAD"]), "+OK");
    assert!(wait_for(5, || a.closed()));
    drop(srv);
    // A restart reads the same file back.
    let srv = Server::start(&["--aclfile", &path]);
    let mut c = Client::connect(&srv);
    let lines: Vec<String> = saved.lines().map(|l| format!("\"{l}\"")).collect();
    assert_eq!(c.cmd(&["ACL", "LIST"]), format!("[{}]", lines.join(", ")));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_directives_in_config() {
    let srv = Server::start(&[
        "--user", "alice", "on", ">pw", "~a:*", "+get", "--user", "default", "on", ">adminpw",
        "~*", "&*", "+@all",
    ]);
    let mut c = Client::connect(&srv);
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.cmd(&["AUTH", "alice", "pw"]), "+OK");
    assert_eq!(c.cmd(&["GET", "a:1"]), "(nil)");
    assert_eq!(c.cmd(&["GET", "b:1"]), NOPERM_KEY);
    assert_eq!(c.cmd(&["AUTH", "adminpw"]), "+OK");
    assert_eq!(c.cmd(&["ACL", "USERS"]), r#"["alice", "default"]"#);
}

/// The machine's first non-loopback IPv4 address (the source address the
/// kernel picks to reach a non-local destination).
fn non_loopback_ip() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.1:9")
        .expect("this test needs a non-loopback interface with a route");
    let ip = s.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no non-loopback address: {ip}"
    );
    ip
}

#[test]
fn protected_mode_refuses_non_loopback_clients_without_password() {
    let ip = non_loopback_ip();
    let srv = Server::start(&["--bind", "0.0.0.0"]);
    let mut c = Client::connect_to((ip, srv.port));
    let r = c.cmd(&["PING"]);
    assert!(r.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface."), "{r}");
    assert!(r.ends_with("NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside."));
    assert!(c.closed());
    // Loopback clients are served.
    assert_eq!(Client::connect(&srv).cmd(&["PING"]), "+PONG");
    // Once the default user has a password, remote clients may connect (and AUTH).
    assert_eq!(
        Client::connect(&srv).cmd(&["ACL", "SETUSER", "default", ">pw"]),
        "+OK"
    );
    let mut c = Client::connect_to((ip, srv.port));
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.cmd(&["AUTH", "pw"]), "+OK");
    assert_eq!(c.cmd(&["PING"]), "+PONG");
    // protected-mode no: remote clients without a password are served.
    let srv = Server::start(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    assert_eq!(Client::connect_to((ip, srv.port)).cmd(&["PING"]), "+PONG");
}

/// A replica logs in to its master as `masteruser` with `masterauth`; the
/// master's replication user may run only the handshake commands.
#[test]
fn replica_authenticates_with_masteruser() {
    let master = Server::start(&[
        "--requirepass",
        "adminpw",
        "--user",
        "repl",
        "on",
        ">rp",
        "+psync",
        "+replconf",
        "+ping",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut m = Client::connect(&master);
    assert_eq!(m.cmd(&["AUTH", "adminpw"]), "+OK");
    assert_eq!(m.cmd(&["SET", "k", "v1"]), "+OK");
    let port = master.port.to_string();
    let replica = Server::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "rp",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut r = Client::connect(&replica);
    assert!(
        wait_for(20, || r.cmd(&["GET", "k"]) == r#""v1""#),
        "replica did not sync through the ACL user"
    );
    assert_eq!(m.cmd(&["SET", "k", "v2"]), "+OK");
    assert!(wait_for(20, || r.cmd(&["GET", "k"]) == r#""v2""#));
    // The replication user itself cannot read data.
    let mut spy = Client::connect(&master);
    assert_eq!(spy.cmd(&["AUTH", "repl", "rp"]), "+OK");
    assert_eq!(spy.cmd(&["GET", "k"]), noperm_cmd("get"));
    // A replica with a wrong masterauth never syncs; the master logs the AUTH failure.
    let bad = Server::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "wrong",
    ]);
    assert!(wait_for(10, || bad.logged("Unable to AUTH to MASTER")));
    assert_eq!(Client::connect(&bad).cmd(&["GET", "k"]), "(nil)");
    let log = m.cmd(&["ACL", "LOG", "1"]);
    assert!(
        log.contains(r#""reason", "auth""#) && log.contains(r#""username", "repl""#),
        "{log}"
    );
}

/// EXEC checks every queued command again: rules changed by another client,
/// or by an ACL SETUSER inside the same transaction, apply.
#[test]
fn exec_rechecks_queued_commands() {
    let srv = Server::start(&["--threads", "2"]);
    let mut admin = Client::connect(&srv);
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "ex", "on", "nopass", "~*", "&*", "+@all"]),
        "+OK"
    );
    let mut c = Client::connect(&srv);
    assert_eq!(c.cmd(&["AUTH", "ex", "x"]), "+OK");
    assert_eq!(c.cmd(&["MULTI"]), "+OK");
    for cmd in [
        &["SET", "k", "v"][..],
        &["GET", "k"],
        &["PUBLISH", "ch", "m"],
        &["SET", "z1", "v"],
    ] {
        assert_eq!(c.cmd(cmd), "+QUEUED");
    }
    assert_eq!(
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "ex",
            "-get",
            "resetkeys",
            "~z*",
            "resetchannels"
        ]),
        "+OK"
    );
    let why = "-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: ";
    assert_eq!(
        c.cmd(&["EXEC"]),
        format!(
            "[{why}no permission to touch the specified keys, {why}no permission to execute the command or subcommand, {why}no permission to access one of the channels used as arguments, +OK]"
        )
    );
    assert_eq!(
        admin.cmd(&["EXISTS", "k"]),
        ":0",
        "a denied queued write never runs"
    );
    assert_eq!(admin.cmd(&["GET", "z1"]), r#""v""#);
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    assert!(
        log.starts_with(
            r#"[["count", :1, "reason", "channel", "context", "multi", "object", "ch""#
        ),
        "{log}"
    );
    assert!(log.contains(" cmd=exec "), "{log}");
}

/// ACL SETUSER that revokes a channel disconnects the user's subscribers to it
/// (Redis 7.0's ACLKillPubsubClientsIfNeeded); others stay.
#[test]
fn revoking_a_channel_disconnects_its_subscribers() {
    let srv = Server::start(&["--threads", "2"]);
    let mut admin = Client::connect(&srv);
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "sub", "on", "nopass", "+@all", "&news.*", "&sport"]),
        "+OK"
    );
    let mut news = Client::connect(&srv);
    assert_eq!(news.cmd(&["AUTH", "sub", "x"]), "+OK");
    assert_eq!(
        news.cmd(&["PSUBSCRIBE", "news.*"]),
        r#"["psubscribe", "news.*", :1]"#
    );
    let mut sport = Client::connect(&srv);
    assert_eq!(sport.cmd(&["AUTH", "sub", "x"]), "+OK");
    assert_eq!(
        sport.cmd(&["SUBSCRIBE", "sport"]),
        r#"["subscribe", "sport", :1]"#
    );
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&sport"]),
        "+OK"
    );
    assert!(
        wait_for(5, || news.closed()),
        "subscriber of a revoked pattern stays"
    );
    assert_eq!(admin.cmd(&["PUBLISH", "sport", "goal"]), ":1");
    assert_eq!(sport.read(), r#"["message", "sport", "goal"]"#);
}
