//! LOLWUT, MEMORY and DEBUG's tooling subcommands against the real
//! binary on two shards. Expected texts are redis-server 7.0.15's.

mod common;

use common::Server;

fn text(c: &mut redis::Connection, args: &[&str]) -> String {
    let v: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap();
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn lolwut_versions() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    // Any version but 5 and 6 (and no VERSION at all) prints the version.
    for args in [
        &["LOLWUT"][..],
        &["LOLWUT", "VERSION", "4"],
        &["LOLWUT", "VERSION", "7"],
        &["LOLWUT", "VERSION", "-1"],
        &["LOLWUT", "VERSION"],
        &["LOLWUT", "5"],
    ] {
        assert_eq!(text(&mut c, args), "Redis ver. 7.0.15\n", "{args:?}");
    }
    // Schotter: rows 0 and 1 are never displaced, so small canvases are exact.
    assert_eq!(
        text(&mut c, &["LOLWUT", "VERSION", "5", "1", "1", "1"]),
        "\u{280b}\n\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n"
    );
    // (int)ver wraps as Redis's (unsigned int) cast does: 2^32+5 is 5.
    let wrapped = text(&mut c, &["LOLWUT", "VERSION", "4294967301", "1", "1", "1"]);
    assert!(wrapped.contains("schotter"), "{wrapped}");
    let art = text(&mut c, &["LOLWUT", "VERSION", "5"]);
    let lines: Vec<&str> = art.lines().collect();
    // 66 columns, 12 rows of squares: 50 braille rows, a blank line, the caption.
    assert_eq!(lines.len(), 51);
    assert!(lines[..49].iter().all(|l| l.chars().count() == 66));
    let sky = text(&mut c, &["LOLWUT", "VERSION", "6", "10", "3"]);
    assert_eq!(sky.lines().count(), 5);
    assert!(sky.starts_with("\x1b["));
    assert!(sky.ends_with("Original 8 bit image from Plaguemon by hikikomori. Redis ver. 7.0.15\n"));
    for args in [
        &["LOLWUT", "VERSION", "x"][..],
        &["LOLWUT", "VERSION", "5", "x"],
        &["LOLWUT", "VERSION", "6", "1", "y"],
    ] {
        let e = redis::cmd(args[0])
            .arg(&args[1..])
            .query::<String>(&mut c)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("value is not an integer or out of range"),
            "{args:?}: {e}"
        );
    }
}

fn int(c: &mut redis::Connection, args: &[&str]) -> i64 {
    redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap()
}

fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    let e = redis::cmd(args[0])
        .arg(&args[1..])
        .query::<redis::Value>(c)
        .unwrap_err();
    e.to_string()
}

#[test]
fn memory_usage_follows_the_keys_real_size() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    let used = |c: &mut redis::Connection| -> i64 {
        common::info_field(c, "memory", "used_memory")
            .unwrap()
            .parse()
            .unwrap()
    };
    // A 1 MB string: MEMORY USAGE and what DEL gives back to the allocator
    // agree (the request's own buffers are gone by then).
    redis::cmd("SET")
        .arg("big")
        .arg(vec![b'x'; 1 << 20])
        .query::<()>(&mut c)
        .unwrap();
    let usage = int(&mut c, &["MEMORY", "USAGE", "big"]);
    assert!((1 << 20..(1 << 20) + 4096).contains(&usage), "{usage}");
    redis::cmd("SET")
        .arg(&["big2", "x"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("APPEND")
        .arg("big2")
        .arg(vec![b'y'; 1 << 20])
        .query::<()>(&mut c)
        .unwrap();
    let usage2 = int(&mut c, &["MEMORY", "USAGE", "big2"]);
    let before = used(&mut c);
    redis::cmd("DEL").arg("big2").query::<()>(&mut c).unwrap();
    let freed = before - used(&mut c);
    assert!(
        (freed - usage2).abs() < 64 * 1024,
        "freed {freed}, usage {usage2}"
    );
    // Keys on both shards; collections grow with their elements, sampled.
    for (i, key) in ["l{a}", "l{b}"].iter().enumerate() {
        let vals: Vec<String> = (0..1000).map(|j| format!("{i}-{j:0>100}")).collect();
        redis::cmd("RPUSH")
            .arg(key)
            .arg(&vals)
            .query::<()>(&mut c)
            .unwrap();
        let all = int(&mut c, &["MEMORY", "USAGE", key, "SAMPLES", "0"]);
        let sampled = int(&mut c, &["MEMORY", "USAGE", key]);
        assert!(all > 1000 * 100 && all < 1000 * 300, "{all}");
        assert!((all - sampled).abs() < all / 10, "{all} vs {sampled}");
    }
    for (t, args) in [
        ("hash", &["HSET", "h", "f1", "v1", "f2", "v2"][..]),
        ("set", &["SADD", "s", "a", "b", "c"]),
        ("intset", &["SADD", "i", "1", "2", "3"]),
        ("zset", &["ZADD", "z", "1", "a", "2", "b"]),
        ("stream", &["XADD", "x", "1-1", "f", "v"]),
    ] {
        redis::cmd(args[0])
            .arg(&args[1..])
            .query::<()>(&mut c)
            .unwrap();
        let n = int(&mut c, &["MEMORY", "USAGE", args[1]]);
        assert!(n > 32 && n < 4096, "{t}: {n}");
    }
    let v: redis::Value = redis::cmd("MEMORY")
        .arg(&["USAGE", "nosuch"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, redis::Value::Nil);
    // As Redis's bare dictFind: a logically expired key still has a size.
    redis::cmd("DEBUG")
        .arg(&["SET-ACTIVE-EXPIRE", "0"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg(&["gone", "v", "PX", "1"])
        .query::<()>(&mut c)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(int(&mut c, &["MEMORY", "USAGE", "gone"]) > 0);
    for (args, want) in [
        (&["MEMORY", "USAGE", "big", "SAMPLES"][..], "syntax error"),
        (&["MEMORY", "USAGE", "big", "SAMPLES", "-1"], "syntax error"),
        (
            &["MEMORY", "USAGE", "big", "SAMPLES", "x"],
            "value is not an integer",
        ),
        (&["MEMORY", "USAGE", "big", "bogus"], "syntax error"),
        (
            &["MEMORY", "USAGE"],
            "wrong number of arguments for 'memory|usage'",
        ),
        (
            &["MEMORY", "STATS", "x"],
            "wrong number of arguments for 'memory|stats'",
        ),
        (
            &["MEMORY", "bogus"],
            "unknown subcommand 'bogus'. Try MEMORY HELP.",
        ),
    ] {
        let e = err(&mut c, args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Inside MULTI, USAGE goes to its key's shard and the rest to the server.
    let (u, help): (i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("MEMORY")
        .arg(&["USAGE", "big"])
        .cmd("MEMORY")
        .arg("HELP")
        .query(&mut c)
        .unwrap();
    assert_eq!(u, usage);
    assert_eq!(help.len(), 14);
}

#[test]
fn memory_stats_doctor_purge() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    let doctor = text(&mut c, &["MEMORY", "DOCTOR"]);
    assert!(
        doctor.starts_with("Hi Sam, this instance is empty"),
        "{doctor}"
    );
    let names = |c: &mut redis::Connection| -> Vec<String> {
        let v: redis::Value = redis::cmd("MEMORY").arg("STATS").query(c).unwrap();
        let redis::Value::Array(items) = v else {
            panic!("{v:?}")
        };
        items
            .iter()
            .step_by(2)
            .map(|n| match n {
                redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let tail = [
        "overhead.total",
        "keys.count",
        "keys.bytes-per-key",
        "dataset.bytes",
        "dataset.percentage",
        "peak.percentage",
        "allocator.allocated",
        "allocator.active",
        "allocator.resident",
        "allocator-fragmentation.ratio",
        "allocator-fragmentation.bytes",
        "allocator-rss.ratio",
        "allocator-rss.bytes",
        "rss-overhead.ratio",
        "rss-overhead.bytes",
        "fragmentation",
        "fragmentation.bytes",
    ];
    let head = [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ];
    let empty: Vec<&str> = head.iter().chain(tail.iter()).copied().collect();
    assert_eq!(names(&mut c), empty);
    // Keys in db 0 (both shards) and db 3: one db.N map each, in db order.
    redis::cmd("MSET")
        .arg(&["a{1}", "1", "b{2}", "2"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SELECT").arg("3").query::<()>(&mut c).unwrap();
    redis::cmd("SET")
        .arg(&["k", "v", "EX", "100"])
        .query::<()>(&mut c)
        .unwrap();
    let mut want: Vec<&str> = head.to_vec();
    want.extend(["db.0", "db.3"]);
    want.extend(tail);
    assert_eq!(names(&mut c), want);
    let v: redis::Value = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let redis::Value::Array(items) = v else {
        panic!()
    };
    let field = |name: &str| {
        items[items
            .iter()
            .position(|i| *i == redis::Value::BulkString(name.into()))
            .unwrap()
            + 1]
        .clone()
    };
    assert_eq!(field("keys.count"), redis::Value::Int(3));
    let redis::Value::Array(db3) = field("db.3") else {
        panic!()
    };
    assert_eq!(
        db3[0],
        redis::Value::BulkString(b"overhead.hashtable.main".to_vec())
    );
    assert!(matches!(db3[3], redis::Value::Int(n) if n > 0), "{db3:?}");
    redis::cmd("MEMORY")
        .arg("PURGE")
        .query::<()>(&mut c)
        .unwrap();
    assert!(!text(&mut c, &["MEMORY", "MALLOC-STATS"]).is_empty());
}

#[test]
fn debug_populate_and_tooling_subcommands() {
    let server = Server::start(&["--threads", "2", "--enable-debug-command", "yes"]);
    let mut c = server.client();
    let mut w = server.client();
    // POPULATE touches watched keys (Redis's signalModifiedKey).
    redis::cmd("WATCH")
        .arg("key:7")
        .query::<()>(&mut w)
        .unwrap();
    redis::cmd("SET")
        .arg(&["key:3", "mine"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("DEBUG")
        .arg(&["POPULATE", "100"])
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(int(&mut c, &["DBSIZE"]), 100);
    let got: Vec<String> = redis::cmd("MGET")
        .arg(&["key:0", "key:3", "key:99"])
        .query(&mut c)
        .unwrap();
    assert_eq!(got, ["value:0", "mine", "value:99"]);
    let r: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("key:7")
        .query(&mut w)
        .unwrap();
    assert_eq!(r, None);
    redis::cmd("DEBUG")
        .arg(&["POPULATE", "2", "p", "10"])
        .query::<()>(&mut c)
        .unwrap();
    let v: Vec<u8> = redis::cmd("GET").arg("p:1").query(&mut c).unwrap();
    assert_eq!(v, b"value:1\0\0\0");
    let help: Vec<String> = redis::cmd("DEBUG").arg("HELP").query(&mut c).unwrap();
    assert_eq!(
        help[0],
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(help
        .iter()
        .any(|l| l.starts_with("QUICKLIST-PACKED-THRESHOLD <size>")));
    assert_eq!(help.last().unwrap(), "    Prints this help.");
    redis::cmd("DEBUG")
        .arg(&["QUICKLIST-PACKED-THRESHOLD", "1kb"])
        .query::<()>(&mut c)
        .unwrap();
    assert!(err(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "4gb"])
        .contains("argument must be a memory value bigger than 1 and smaller than 4gb"));
    let s: String = redis::cmd("DEBUG")
        .arg("STRINGMATCH-TEST")
        .query(&mut c)
        .unwrap();
    assert_eq!(s, "Apparently Redis did not crash: test passed");
    redis::cmd("DEBUG")
        .arg(&["LOG", "hello log"])
        .query::<()>(&mut c)
        .unwrap();
    assert!(common::wait_for(5, || server.logged("DEBUG LOG: hello log")));
}

#[test]
fn paused_clients_count_as_blocked() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    let blocked =
        |c: &mut redis::Connection| common::info_field(c, "clients", "blocked_clients").unwrap();
    redis::cmd("CLIENT")
        .arg(&["PAUSE", "10000", "WRITE"])
        .query::<()>(&mut c)
        .unwrap();
    let mut held = server.raw();
    common::send(&mut held, &["SET", "k", "v"]);
    assert!(common::wait_for(10, || blocked(&mut c) == "1"));
    redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query::<()>(&mut c)
        .unwrap();
    common::expect(&mut held, "+OK\r\n");
    assert_eq!(blocked(&mut c), "0");
}

#[test]
fn restore_asking_and_past_absttl() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    redis::cmd("SET")
        .arg(&["src{1}", "hello"])
        .query::<()>(&mut c)
        .unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("src{1}").query(&mut c).unwrap();
    // Outside cluster mode RESTORE-ASKING is RESTORE (keys on either shard).
    for key in ["a{1}", "b{2}"] {
        redis::cmd("RESTORE-ASKING")
            .arg(key)
            .arg(0)
            .arg(&payload)
            .query::<()>(&mut c)
            .unwrap();
        let v: String = redis::cmd("GET").arg(key).query(&mut c).unwrap();
        assert_eq!(v, "hello");
    }
    assert!(err(&mut c, &["RESTORE-ASKING", "a{1}", "0", "x"]).contains("BUSYKEY"));
    // An absolute TTL in the past: OK, and the key is not there (Redis
    // deletes it at once, as an expiry), also over an existing key.
    for (key, extra) in [("c{1}", None), ("src{1}", Some("REPLACE"))] {
        let mut cmd = redis::cmd("RESTORE");
        cmd.arg(key).arg(1000).arg(&payload).arg("ABSTTL");
        if let Some(e) = extra {
            cmd.arg(e);
        }
        cmd.query::<()>(&mut c).unwrap();
        assert_eq!(int(&mut c, &["EXISTS", key]), 0, "{key}");
    }
    assert!(err(&mut c, &["ASKING"]).contains("This instance has cluster support disabled"));
    assert!(
        err(&mut c, &["CLUSTER", "INFO"]).contains("This instance has cluster support disabled")
    );
}

#[test]
fn module_answers_as_redis_without_modules() {
    let server = Server::start(&["--threads", "2"]);
    let mut c = server.client();
    let list: Vec<redis::Value> = redis::cmd("MODULE").arg("LIST").query(&mut c).unwrap();
    assert!(list.is_empty());
    // enable-module-command defaults to no: LOAD/LOADEX/UNLOAD are protected.
    let refused = err(&mut c, &["MODULE", "LOAD", "/x.so"]);
    assert!(refused.contains("MODULE command not allowed"), "{refused}");
    assert!(err(&mut c, &["MODULE", "UNLOAD", "x"]).contains("not allowed"));

    let server = Server::start(&["--enable-module-command", "yes"]);
    let mut c = server.client();
    for args in [
        &["MODULE", "LOAD", "/x.so", "a"][..],
        &["MODULE", "LOADEX", "/x.so", "CONFIG", "n", "v", "ARGS", "a"],
    ] {
        assert!(err(&mut c, args).ends_with(
            "ResponseError: Error loading the extension. Please check the server logs."
        ));
    }
    assert!(server.wait_logged("Module /x.so failed to load: shardis does not load Redis modules"));
    assert!(err(&mut c, &["MODULE", "UNLOAD", "x"])
        .ends_with("ResponseError: Error unloading module: no such module with that name"));
}

#[test]
fn debug_object_listpack_quicklist() {
    let server = Server::start(&["--threads", "2", "--enable-debug-command", "yes"]);
    let mut c = server.client();
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("12345")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("RPUSH").arg("l").arg("a").query(&mut c).unwrap();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let line = |c: &mut redis::Connection, key: &str| -> String {
        redis::cmd("DEBUG").arg("OBJECT").arg(key).query(c).unwrap()
    };
    // Redis's fields, in Redis's order; a string's RDB form is Redis's own.
    let s = line(&mut c, "s");
    let fields: Vec<&str> = s.split(' ').map(|f| f.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "Value",
            "at",
            "refcount",
            "encoding",
            "serializedlength",
            "lru",
            "lru_seconds_idle"
        ],
        "{s}"
    );
    assert!(s.starts_with("Value at:0x"), "{s}");
    assert!(
        s.contains(" refcount:1 encoding:int serializedlength:3 "),
        "{s}"
    );
    assert!(line(&mut c, "l").contains("encoding:quicklist"));
    assert!(line(&mut c, "h").contains("encoding:listpack"));
    assert!(err(&mut c, &["DEBUG", "OBJECT", "nokey"]).contains("no such key"));
    let status: String = redis::cmd("DEBUG")
        .arg("LISTPACK")
        .arg("h")
        .query(&mut c)
        .unwrap();
    assert_eq!(status, "Listpack structure printed on stdout");
    assert!(err(&mut c, &["DEBUG", "LISTPACK", "l"]).contains("Not a listpack encoded object."));
    let status: String = redis::cmd("DEBUG")
        .arg("QUICKLIST")
        .arg("l")
        .query(&mut c)
        .unwrap();
    assert_eq!(status, "Quicklist structure printed on stdout");
    assert!(server.wait_logged("{Quicklist of key l: list}"));
}
