use super::*;

fn cfg(text: &str) -> Result<Config, ConfigError> {
    let mut c = Config::default();
    c.apply_text(text, Some("/etc/test.conf"))?;
    Ok(c)
}

fn err(text: &str) -> ConfigError {
    cfg(text).unwrap_err()
}

#[test]
fn debian_stock_config_loads() {
    let c = cfg(include_str!("../testdata/redis-7.0.15.conf")).unwrap();
    assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
    assert!(c.daemonize);
    assert_eq!(c.pidfile.as_deref(), Some("/run/redis/redis-server.pid"));
    assert_eq!(c.dir, "/var/lib/redis");
    assert_eq!(
        c.client_output_buffer_limit,
        ClientOutputBufferLimits::default()
    );
    assert_eq!(c.value_of("auto-aof-rewrite-min-size").unwrap(), "67108864");
}

/// `CONFIG GET *` from a default redis-server 7.0.15, minus the instance-dependent
/// dir/port/daemonize/logfile/pidfile/unixsocket (captured with `redis-cli --raw`).
#[test]
fn config_get_matches_redis_defaults() {
    let c = Config::default();
    let ours: BTreeMap<String, String> = c.get("*").into_iter().collect();
    let fixture = include_str!("../testdata/config-get-default-7.0.15.tsv");
    let mut n = 0;
    for line in fixture.lines() {
        let (k, v) = line.split_once('\t').unwrap();
        assert_eq!(ours.get(k).map(String::as_str), Some(v), "CONFIG GET {k}");
        n += 1;
    }
    assert_eq!(n, 186);
    // Every parameter redis has is covered; shardis adds threads and the instance-dependent ones.
    assert_eq!(ours.len(), n + 7);
    assert_eq!(ours["port"], "6379");
    assert_eq!(ours["daemonize"], "no");
    assert_eq!(ours["threads"], "0");
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.save, [(3600, 1), (300, 100), (60, 10000)]);
    assert_eq!(c.bind, ["*", "-::*"]);
    assert_eq!(c.port, 6379);
    assert_eq!(c.loglevel, LogLevel::Notice);
    assert_eq!(c.threads, None);
    assert_eq!(c.repl_backlog_size, 1 << 20);
}

#[test]
fn every_ignored_entry_is_a_stored_param_and_vice_versa() {
    let stored: Vec<&str> = PARAMS
        .iter()
        .filter(|p| matches!(p.access, Access::Stored(_)))
        .map(|p| p.name)
        .collect();
    let mut listed: Vec<&str> = IGNORED
        .iter()
        .chain(READ_BY_NAME)
        .chain(DEFAULT_ONLY)
        .map(|(n, _)| *n)
        .collect();
    listed.sort_unstable();
    assert_eq!(stored, listed);
}

#[test]
fn directive_types() {
    let c = cfg(
        "PORT 7000\nprotected-mode NO\nrequirepass \"s3 cret\"\ndatabases 4\nloglevel WARNING\n\
                 maxmemory 100mb\nmaxmemory-policy ALLKEYS-LRU\nslowlog-log-slower-than -1\n\
                 list-max-listpack-size -5\nthreads 3\nreplica-announce-ip ''\ndbfilename x.rdb\n",
    )
    .unwrap();
    assert_eq!(c.port, 7000);
    assert!(!c.protected_mode);
    assert_eq!(c.requirepass.as_deref(), Some("s3 cret"));
    assert_eq!(c.databases, 4);
    assert_eq!(c.loglevel, LogLevel::Warning);
    assert_eq!(c.maxmemory, 100 << 20);
    assert_eq!(c.maxmemory_policy, "allkeys-lru");
    assert_eq!(c.slowlog_log_slower_than, -1);
    assert_eq!(c.list_max_listpack_size, -5);
    assert_eq!(c.threads, Some(3));
    assert_eq!(c.replica_announce_ip, None);
    assert_eq!(c.dbfilename, "x.rdb");
    assert_eq!(
        c.get("maxmemory"),
        [("maxmemory".to_string(), "104857600".to_string())]
    );
    assert_eq!(cfg("threads 0").unwrap().threads, None);
}

#[test]
fn memory_units_in_directives() {
    assert_eq!(cfg("maxmemory 1k").unwrap().maxmemory, 1000);
    assert_eq!(cfg("maxmemory 1kb").unwrap().maxmemory, 1024);
    assert_eq!(cfg("maxmemory 1GB").unwrap().maxmemory, 1 << 30);
    assert_eq!(
        cfg("repl-backlog-size 10mb").unwrap().repl_backlog_size,
        10 << 20
    );
    assert_eq!(
        err("maxmemory 1.5gb").reason,
        "argument must be a memory value"
    );
    assert_eq!(
        err("maxmemory -1").reason,
        "argument must be a memory value"
    );
}

#[test]
fn aliases() {
    let c = cfg(
        "slaveof 10.0.0.1 6380\nslave-read-only no\nslave-serve-stale-data no\nslave-priority 5\n\
                 hash-max-ziplist-entries 7\nzset-max-ziplist-value 9\nrepl-ping-slave-period 3\n\
                 min-slaves-to-write 2\nlist-max-ziplist-size 8\nlua-time-limit 100\n",
    )
    .unwrap();
    assert_eq!(c.replicaof, Some(("10.0.0.1".to_string(), 6380)));
    assert!(!c.replica_read_only && !c.replica_serve_stale_data);
    assert_eq!(c.replica_priority, 5);
    assert_eq!(c.hash_max_listpack_entries, 7);
    assert_eq!(c.zset_max_listpack_value, 9);
    assert_eq!(c.repl_ping_replica_period, 3);
    assert_eq!(c.min_replicas_to_write, 2);
    assert_eq!(c.list_max_listpack_size, 8);
    assert_eq!(c.value_of("busy-reply-threshold").unwrap(), "100");
    // CONFIG GET reports both names when the pattern matches both.
    assert_eq!(
        c.get("*priority"),
        [
            ("replica-priority".to_string(), "5".to_string()),
            ("slave-priority".to_string(), "5".to_string())
        ]
    );
    assert_eq!(
        c.get("replicaof"),
        [("replicaof".to_string(), "10.0.0.1 6380".to_string())]
    );
    assert_eq!(cfg("replicaof no one").unwrap().replicaof, None);
    assert_eq!(
        cfg("replicaof \"h 7\"").unwrap().replicaof,
        Some(("h".to_string(), 7))
    );
}

#[test]
fn save_lines() {
    assert_eq!(
        cfg("save 900 1\nsave 300 10").unwrap().save,
        [(900, 1), (300, 10)]
    );
    assert_eq!(
        cfg("save 900 1 300 10").unwrap().save,
        [(900, 1), (300, 10)]
    );
    assert_eq!(cfg("save \"\"").unwrap().save, []);
    assert_eq!(cfg("save 900 1\nsave \"\"").unwrap().save, []);
    // Checked against redis-server 7.0.15: CONFIG GET save answers "60 5".
    assert_eq!(
        cfg("save 900 1\nsave \"\"\nsave 60 5").unwrap().save,
        [(60, 5)]
    );
    assert_eq!(cfg("save +5 1").unwrap().save, [(5, 1)]);
    assert_eq!(cfg("save").unwrap().save, []);
    assert_eq!(cfg("save \"60 5\"").unwrap().save, [(60, 5)]);
    assert_eq!(err("save 1").reason, "Invalid save parameters");
    assert_eq!(err("save 0 1").reason, "Invalid save parameters");
    assert_eq!(err("save abc 1").reason, "Invalid save parameters");
    assert_eq!(
        Config::default().get("save")[0].1,
        "3600 1 300 100 60 10000"
    );
    assert_eq!(cfg("save \"\"").unwrap().get("save")[0].1, "");
}

#[test]
fn client_output_buffer_limit() {
    let c = cfg("client-output-buffer-limit replica 1gb 512mb 0\nclient-output-buffer-limit PUBSUB 1k 1kb 5").unwrap();
    assert_eq!(
        c.client_output_buffer_limit.replica,
        ClientBufferLimit {
            hard: 1 << 30,
            soft: 512 << 20,
            soft_seconds: 0
        }
    );
    assert_eq!(
        c.client_output_buffer_limit.pubsub,
        ClientBufferLimit {
            hard: 1000,
            soft: 1024,
            soft_seconds: 5
        }
    );
    assert_eq!(
        c.get("client-output-buffer-limit")[0].1,
        "normal 0 0 0 slave 1073741824 536870912 0 pubsub 1000 1024 5"
    );
    assert_eq!(
        err("client-output-buffer-limit foo 1 2 3").reason,
        "Invalid client class specified in buffer limit configuration."
    );
    assert_eq!(
        err("client-output-buffer-limit master 1 2 3").reason,
        "Invalid client class specified in buffer limit configuration."
    );
    assert_eq!(
        err("client-output-buffer-limit normal 1 2").reason,
        "Wrong number of arguments in buffer limit configuration."
    );
    assert_eq!(
        err("client-output-buffer-limit normal 1 1 -1").reason,
        "Error in hard, soft or soft_seconds setting in buffer limit configuration."
    );
}

#[test]
fn bind_forms() {
    assert_eq!(
        cfg("bind 127.0.0.1 ::1").unwrap().bind,
        ["127.0.0.1", "::1"]
    );
    assert_eq!(cfg("bind").unwrap().bind, Vec::<String>::new());
    assert_eq!(cfg("bind \"\"").unwrap().bind, Vec::<String>::new());
    let many = format!(
        "bind {}",
        (0..17).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
    );
    assert_eq!(err(&many).reason, "Too many bind addresses specified.");
}

/// Reasons and line texts as printed by redis-server 7.0.15 for the same lines.
#[test]
fn errors_match_redis() {
    let cases = [
        (
            "port 1234\nfoo bar",
            2,
            "foo bar",
            "Bad directive or wrong number of arguments",
        ),
        (
            "daemonize maybe",
            1,
            "daemonize maybe",
            "argument must be 'yes' or 'no'",
        ),
        (
            "port 99999",
            1,
            "port 99999",
            "argument must be between 0 and 65535 inclusive",
        ),
        (
            "port +5",
            1,
            "port +5",
            "argument couldn't be parsed into an integer",
        ),
        (
            "port 05",
            1,
            "port 05",
            "argument couldn't be parsed into an integer",
        ),
        (
            "maxmemory 1zz",
            1,
            "maxmemory 1zz",
            "argument must be a memory value",
        ),
        (
            "# c\n\n  port \"abc  ",
            3,
            "port \"abc",
            "Unbalanced quotes in configuration line",
        ),
        (
            "port 'a'b",
            1,
            "port 'a'b",
            "Unbalanced quotes in configuration line",
        ),
        (
            "loglevel foo",
            1,
            "loglevel foo",
            "argument(s) must be one of the following: debug, verbose, notice, warning",
        ),
        (
            "databases 0",
            1,
            "databases 0",
            "argument must be between 1 and 2147483647 inclusive",
        ),
        ("replicaof a", 1, "replicaof a", "wrong number of arguments"),
        ("replicaof a b", 1, "replicaof a b", "Invalid master port"),
        ("requirepass", 1, "requirepass", "wrong number of arguments"),
        ("port 1 2", 1, "port 1 2", "wrong number of arguments"),
        (
            "maxclients 0",
            1,
            "maxclients 0",
            "argument must be between 1 and 4294967295 inclusive",
        ),
        (
            "timeout -1",
            1,
            "timeout -1",
            "argument must be between 0 and 2147483647 inclusive",
        ),
        (
            "slowlog-log-slower-than -5",
            1,
            "slowlog-log-slower-than -5",
            "argument must be between -1 and 9223372036854775807 inclusive",
        ),
        (
            "io-threads abc",
            1,
            "io-threads abc",
            "argument couldn't be parsed into an integer",
        ),
        (
            "proto-max-bulk-len 1k",
            1,
            "proto-max-bulk-len 1k",
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ),
    ];
    for (text, line, directive, reason) in cases {
        let e = err(text);
        assert_eq!(
            (e.line, e.directive.as_str(), e.reason.as_str()),
            (line, directive, reason),
            "{text:?}"
        );
    }
}

#[test]
fn unsupported_and_ignored_directives() {
    assert_eq!(
        err("include /etc/x.conf").reason,
        "'include' is not supported by shardis"
    );
    assert_eq!(
        err("cluster-enabled yes").reason,
        "cluster mode is not supported by shardis"
    );
    assert_eq!(
        err("tls-port 6380").reason,
        "TLS is not supported by shardis"
    );
    // Redis's deprecated directives are dropped silently.
    cfg("list-max-ziplist-entries 5\nlua-replicate-commands yes").unwrap();
    let c = cfg(
        "io-threads-do-reads yes\nappendfsync ALWAYS\nlazyfree-lazy-user-del yes\noom-score-adj-values 1 2 3",
    )
    .unwrap();
    assert_eq!(c.value_of("io-threads-do-reads").unwrap(), "yes");
    assert_eq!(c.value_of("appendfsync").unwrap(), "always");
    assert_eq!(c.value_of("lazyfree-lazy-user-del").unwrap(), "yes");
    assert_eq!(c.value_of("oom-score-adj-values").unwrap(), "1 2 3");
    assert_eq!(
        err("appendfsync sometimes").reason,
        "argument(s) must be one of the following: everysec, always, no"
    );
}

#[test]
fn redis_message_format() {
    let e = err("port 1234\nfoo bar");
    assert_eq!(
        e.redis_message(),
        format!(
            "\n*** FATAL CONFIG FILE ERROR (shardis {}) ***\nReading the configuration file, at line 2\n>>> 'foo bar'\nBad directive or wrong number of arguments\nFile: /etc/test.conf\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let mut c = Config::default();
    let e = c
        .apply_args(&["--port".to_string(), "abc".to_string()])
        .unwrap_err();
    assert!(e
        .redis_message()
        .ends_with("at line 2\n>>> 'port \"abc\"'\nargument couldn't be parsed into an integer\n"));
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn command_line_args() {
    let mut c = Config::default();
    c.apply_args(&s(&[
        "--port",
        "6380",
        "--bind",
        "127.0.0.1",
        "::1",
        "--requirepass",
        "a \"b\"",
    ]))
    .unwrap();
    assert_eq!(c.port, 6380);
    assert_eq!(c.bind, ["127.0.0.1", "::1"]);
    assert_eq!(c.requirepass.as_deref(), Some("a \"b\""));
    // A bare --save (last, or before another option) means `save ""`.
    let mut c = Config::default();
    c.apply_args(&s(&["--save", "--port", "1"])).unwrap();
    assert!(c.save.is_empty());
    let mut c = Config::default();
    c.apply_args(&s(&["--save"])).unwrap();
    assert!(c.save.is_empty());
    // Line numbers as redis-server: `--port 6380 --save --daemonize maybe` fails at line 4.
    let mut c = Config::default();
    let e = c
        .apply_args(&s(&["--port", "6380", "--save", "--daemonize", "maybe"]))
        .unwrap_err();
    assert_eq!((e.line, e.directive.as_str()), (4, "daemonize \"maybe\""));
    let e = Config::default()
        .apply_args(&s(&["--port", "6380", "--save", "--daemonize"]))
        .unwrap_err();
    assert_eq!(
        (e.line, e.reason.as_str()),
        (4, "wrong number of arguments")
    );
    // File and args: save lines accumulate across both, as one config in Redis.
    let mut c = Config::default();
    c.apply_file_and_args(Some(("/f.conf", "save 900 1\n")), &s(&["--save", "60 5"]))
        .unwrap();
    assert_eq!(c.save, [(900, 1), (60, 5)]);
    let e = Config::default()
        .apply_file_and_args(Some(("/f.conf", "port 1\n")), &s(&["--foo", "1"]))
        .unwrap_err();
    assert_eq!((e.line, e.file.as_deref()), (3, Some("/f.conf")));
}

#[test]
fn config_set() {
    let mut c = Config::default();
    c.set("maxmemory", "1mb").unwrap();
    assert_eq!(c.maxmemory, 1 << 20);
    c.set("SAVE", "60 1").unwrap();
    c.set("save", "30 2").unwrap();
    assert_eq!(c.save, [(30, 2)]);
    c.set("save", "").unwrap();
    assert!(c.save.is_empty());
    c.set("slave-read-only", "no").unwrap();
    assert!(!c.replica_read_only);
    c.set("client-output-buffer-limit", "normal 1 2 3").unwrap();
    assert_eq!(
        c.client_output_buffer_limit.normal,
        ClientBufferLimit {
            hard: 1,
            soft: 2,
            soft_seconds: 3
        }
    );
    c.set("bind", "127.0.0.1 ::1").unwrap();
    assert_eq!(c.bind, ["127.0.0.1", "::1"]);
    c.set("requirepass", "").unwrap();
    assert_eq!(c.requirepass, None);
    assert_eq!(
        c.set("foo", "1").unwrap_err(),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    );
    assert_eq!(
        c.set("list-max-ziplist-entries", "1").unwrap_err(),
        "ERR Unknown option or number of arguments for CONFIG SET - 'list-max-ziplist-entries'"
    );
    assert_eq!(
        c.set("databases", "1").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
    );
    assert_eq!(
        c.set("slaveof", "a 1").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'slaveof') - can't set immutable config"
    );
    assert_eq!(
        c.set("dir", "/tmp").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
    );
    assert_eq!(
        c.set("port", "abc").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        c.set("protected-mode", "maybe").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"
    );
    assert_eq!(
        c.set("maxmemory-clients", "x").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value"
    );
    assert_eq!(
        c.set("save", "1").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"
    );
    // A failed set changes nothing.
    assert_eq!(c.port, 6379);
    let mut p = cfg("enable-protected-configs yes").unwrap();
    p.set("dbfilename", "a.rdb").unwrap();
    assert_eq!(
        p.set("dbfilename", "/a.rdb").unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename"
    );
}

#[test]
fn user_directives_and_acl_params() {
    let c = cfg(
        "user alice on >pw ~a* +get\nuser bob on nopass\naclfile /tmp/u.acl\nacllog-max-len 5\n",
    )
    .unwrap();
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[0], vec!["alice", "on", ">pw", "~a*", "+get"]);
    assert_eq!(c.aclfile.as_deref(), Some("/tmp/u.acl"));
    assert_eq!(c.acllog_max_len, 5);
    let e = cfg("user alice on bogus\n").unwrap_err();
    // Redis 7.0.15 names the wrong token ('alice', not 'bogus'); so do we.
    assert_eq!(e.reason, "Error in user declaration 'alice': Syntax error");
    let e = cfg("user a on\nuser a off\n").unwrap_err();
    assert_eq!(
        e.reason,
        "Error in user declaration 'a': Duplicate user found. A user can only be defined once in config files"
    );
}

#[test]
fn aof_directives_are_typed() {
    let mut c = Config::default();
    c.apply_text(
        "appendonly yes\nappendfsync ALWAYS\nappenddirname d\nappendfilename f.aof\naof-load-truncated no\nauto-aof-rewrite-percentage 50\n",
        Some("x.conf"),
    )
    .unwrap();
    assert!(c.appendonly);
    assert_eq!(c.appendfsync, "always");
    assert_eq!(
        (c.appenddirname.as_str(), c.appendfilename.as_str()),
        ("d", "f.aof")
    );
    assert!(!c.aof_load_truncated);
    assert_eq!(c.auto_aof_rewrite_percentage, 50);
    c.set("appendonly", "no").unwrap();
    // A base written as commands, from the file and at run time, as Redis takes it.
    assert!(c.aof_use_rdb_preamble);
    assert!(!cfg("aof-use-rdb-preamble no").unwrap().aof_use_rdb_preamble);
    c.set("aof-use-rdb-preamble", "no").unwrap();
    assert_eq!(c.value_of("aof-use-rdb-preamble").unwrap(), "no");
    c.set("aof-use-rdb-preamble", "yes").unwrap();
    assert!(c.aof_use_rdb_preamble);
}

#[test]
fn default_only_directives_refuse_other_values() {
    for (name, _) in DEFAULT_ONLY {
        let p = PARAMS.iter().find(|p| p.name == *name).unwrap();
        let Access::Stored(default) = p.access else {
            panic!("{name} is not stored")
        };
        // The default (as Redis writes it in a config file) is accepted.
        let d = if default.is_empty() {
            "\"\"".to_string()
        } else {
            default.to_string()
        };
        assert!(cfg(&format!("{name} {d}\n")).is_ok(), "{name} {d}");
    }
    for line in [
        "unixsocket /tmp/x.sock",
        "syslog-enabled yes",
        "supervised systemd",
        "io-threads 4",
        "maxmemory-clients 10mb",
        "shutdown-on-sigterm nosave",
        "activedefrag yes",
    ] {
        let e = cfg(&format!("{line}\n")).unwrap_err();
        assert!(
            e.redis_message().contains("shardis accepts only"),
            "{line}: {}",
            e.redis_message()
        );
    }
}

#[test]
fn server_cpulist_takes_redis_syntax_and_refuses_what_it_cannot_pin() {
    assert_eq!(parse_cpulist("3").unwrap(), vec![3]);
    assert_eq!(parse_cpulist("0-7:2,9").unwrap(), vec![0, 2, 4, 6, 9]);
    assert_eq!(parse_cpulist("1-3,2,0").unwrap(), vec![1, 2, 3, 0]);
    for bad in [
        "", "a", "1-", "-1", "3-1", "0-4:0", "0,,1", "1024", "+1", "0-3:x",
    ] {
        assert!(parse_cpulist(bad).is_err(), "{bad:?}");
    }
    let c = cfg("server_cpulist 0-1\n").unwrap();
    assert_eq!(c.server_cpulist, "0-1");
    assert_eq!(
        c.get("server_cpulist"),
        vec![("server_cpulist".to_string(), "0-1".to_string())]
    );
    assert!(cfg("server_cpulist \"\"\n")
        .unwrap()
        .server_cpulist
        .is_empty());
    let e = cfg("server_cpulist 2-x\n").unwrap_err();
    assert!(
        e.redis_message().contains("Invalid CPU list '2-x'"),
        "{}",
        e.redis_message()
    );
}
