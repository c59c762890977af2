//! Replies checked against redis-server 7.0.15.

use crate::*;

fn users_with(name: &str, ops: &[&str]) -> Users {
    let mut u = Users::new();
    let ops: Vec<&[u8]> = ops.iter().map(|o| o.as_bytes()).collect();
    u.setuser(name.as_bytes(), &ops).unwrap();
    u
}

fn line(u: &Users, name: &str) -> String {
    let user = u.get(name.as_bytes()).unwrap();
    format!(
        "user {name} {}",
        String::from_utf8(user.describe()).unwrap()
    )
}

#[test]
fn default_user_line() {
    let u = Users::new();
    assert_eq!(
        u.list(),
        vec![b"user default on nopass ~* &* +@all".to_vec()]
    );
}

#[test]
fn list_lines_match_redis() {
    let u = users_with(
        "x",
        &[
            "~a",
            "%R~b",
            "&c",
            "+get",
            "+config|get",
            "-@all",
            "on",
            ">p",
            "nopass",
        ],
    );
    assert_eq!(
        line(&u, "x"),
        "user x on nopass ~a %R~b resetchannels &c -@all"
    );
    let u = users_with("z", &["-@all", "+@all", "-@dangerous", "-config|get"]);
    assert_eq!(line(&u, "z"), "user z off resetchannels +@all -@dangerous");
    let u = users_with(
        "y",
        &[
            "reset",
            "+get",
            "+set",
            "+@list",
            "-lpush",
            "+config|get",
            "+client|list",
        ],
    );
    // Redis prints single commands in its command dict's (per-process random)
    // order; we print them in name order.
    assert_eq!(
        line(&u, "y"),
        "user y off sanitize-payload resetchannels -@all +@list +client|list +config|get +get -lpush +set"
    );
    let u = users_with("q", &["+@admin", "+config|get", "+get|foo", "+select|0"]);
    assert_eq!(
        line(&u, "q"),
        "user q off resetchannels -@all +@admin +get|foo +select|0"
    );
    let u = users_with("p", &["on", ">secret", "%RW~rw", "%W~w*"]);
    assert_eq!(
        line(&u, "p"),
        format!(
            "user p on #{} ~rw %W~w* resetchannels -@all",
            hash_password(b"secret")
        )
    );
}

#[test]
fn rule_errors_match_redis() {
    let mut u = Users::new();
    let err = |u: &mut Users, op: &str| u.setuser(b"q", &[op.as_bytes()]).unwrap_err();
    let unknown = |op: &str| {
        format!("ERR Error in ACL SETUSER modifier '{op}': Unknown command or category name in ACL")
    };
    for op in ["+acl|foo", "+foo", "+@foo", "-get|foo", "+config|foo|bar"] {
        assert_eq!(err(&mut u, op), unknown(op));
    }
    assert_eq!(
        err(&mut u, "bar"),
        "ERR Error in ACL SETUSER modifier 'bar': Syntax error"
    );
    assert_eq!(
        err(&mut u, "%X~"),
        "ERR Error in ACL SETUSER modifier '%X~': Syntax error"
    );
    assert_eq!(
        err(&mut u, "#abc"),
        "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    );
    assert_eq!(
        err(&mut u, "<nope"),
        "ERR Error in ACL SETUSER modifier '<nope': The password you are trying to remove from the user does not exist"
    );
    assert!(err(&mut u, "+config|get|x")
        .ends_with("Allowing first-arg of a subcommand is not supported"));
    // A failed SETUSER changes nothing, not even creating the user.
    assert!(u.get(b"q").is_none());
    u.setuser(b"k", &[b"~*"]).unwrap();
    assert!(u
        .setuser(b"k", &[b"~a"])
        .unwrap_err()
        .ends_with("Try 'resetkeys' to start with an empty list of patterns"));
    assert_eq!(
        u.setuser(b"a b", &[]).unwrap_err(),
        "ERR Usernames can't contain spaces or null characters"
    );
    assert_eq!(
        u.deluser(&[b"default"]).unwrap_err(),
        "ERR The 'default' user cannot be removed"
    );
    assert_eq!(u.deluser(&[b"k", b"nosuch"]).unwrap(), 1);
}

fn check(u: &Users, name: &str, argv: &[&str]) -> Result<(), Denied> {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    let cmd = std::str::from_utf8(argv[0]).unwrap();
    let mut id = table::lookup(cmd).unwrap();
    if table::COMMANDS[id].is_container() {
        id = table::lookup_sub(id, argv[1]).unwrap();
    }
    u.get(name.as_bytes()).unwrap().check(id, &argv)
}

#[test]
fn command_and_key_checks() {
    let u = users_with(
        "lim",
        &[
            "on",
            ">pw",
            "~k*",
            "+get",
            "+@list",
            "%R~r*",
            "%W~w*",
            "+copy",
            "+set",
            "+rename",
            "&news.*",
            "+publish",
            "+psubscribe",
            "+config|get",
        ],
    );
    assert_eq!(check(&u, "lim", &["get", "k1"]), Ok(()));
    assert_eq!(check(&u, "lim", &["get", "x"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "lim", &["get", "r1"]), Ok(()));
    assert_eq!(check(&u, "lim", &["get", "w1"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "lim", &["set", "w1", "v"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["set", "w1", "v", "GET"]),
        Err(Denied::Key(1))
    );
    assert_eq!(check(&u, "lim", &["set", "r1", "v"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "lim", &["copy", "r1", "w1"]), Ok(()));
    assert_eq!(check(&u, "lim", &["copy", "w1", "r1"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "lim", &["rename", "k1", "w2"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["rename", "r1", "k2"]),
        Err(Denied::Key(1))
    );
    assert_eq!(check(&u, "lim", &["mget", "k1"]), Err(Denied::Command));
    assert_eq!(check(&u, "lim", &["lpush", "k1", "a"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["blmove", "k1", "x", "left", "left", "0"]),
        Err(Denied::Key(2))
    );
    assert_eq!(check(&u, "lim", &["config", "get", "x"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["config", "set", "x", "y"]),
        Err(Denied::Command)
    );
    assert_eq!(check(&u, "lim", &["publish", "news.1", "m"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["publish", "other", "m"]),
        Err(Denied::Channel(1))
    );
    assert_eq!(check(&u, "lim", &["psubscribe", "news.*"]), Ok(()));
    assert_eq!(
        check(&u, "lim", &["psubscribe", "news.1"]),
        Err(Denied::Channel(1))
    );
    // AUTH is no_auth: never denied by command rules.
    assert_eq!(check(&u, "lim", &["auth", "a", "b"]), Ok(()));
    let user = u.get(b"lim").unwrap();
    assert!(user.check_password(b"pw"));
    assert!(!user.check_password(b"px"));
    assert!(Users::new().default_user().unrestricted());
}

#[test]
fn first_args() {
    let u = users_with("s", &["on", "nopass", "+select|0"]);
    assert_eq!(check(&u, "s", &["select", "0"]), Ok(()));
    assert_eq!(check(&u, "s", &["select", "1"]), Err(Denied::Command));
}

#[test]
fn acl_file_roundtrip_and_errors() {
    let mut u = users_with("alice", &["on", ">pw", "~a*", "+@read", "-keys", "&ch"]);
    u.setuser(
        b"bob",
        &[b"on", b"nopass", b"allkeys", b"+@all", b"-@dangerous"],
    )
    .unwrap();
    let text = u.save_text();
    let back = Users::new().load_text(&text, "users.acl").unwrap();
    assert_eq!(back.save_text(), text);
    let bad = b"user a on +nosuch\nbogus line\nuser a off\n";
    assert_eq!(
        Users::new().load_text(bad, "f.acl").unwrap_err(),
        "f.acl:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. f.acl:2 should start with user keyword followed by the username. WARNING: Duplicate user 'a' found on line 3. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    );
    // A file without `default` gets the default user.
    let only = Users::new().load_text(b"user z on nopass\n", "f").unwrap();
    assert!(only.default_user().unrestricted());
}

#[test]
fn requirepass_sets_default_password() {
    let mut u = Users::new();
    u.set_requirepass(Some("s3"));
    assert_eq!(
        u.list()[0],
        format!("user default on #{} ~* &* +@all", hash_password(b"s3")).into_bytes()
    );
    assert!(u.default_user().check_password(b"s3"));
    u.set_requirepass(None);
    assert!(u.default_user().nopass());
}

#[test]
fn log_groups_entries() {
    let mut log = Log::default();
    let e = |obj: &str, t: u64| Entry {
        count: 1,
        reason: Reason::Command,
        context: Context::Toplevel,
        object: obj.into(),
        username: b"u".to_vec(),
        ctime_ms: t,
        client_info: String::new(),
    };
    log.add(e("set", 0), 128);
    log.add(e("get", 1), 128);
    log.add(e("set", 2), 128);
    let v: Vec<_> = log
        .newest(10)
        .map(|e| (e.object.clone(), e.count))
        .collect();
    assert_eq!(v, vec![(b"set".to_vec(), 2), (b"get".to_vec(), 1)]);
    log.add(e("set", 100_000), 2);
    assert_eq!(log.len(), 2);
}

#[test]
fn every_shardis_command_has_acl_categories() {
    for c in shardis_commands::COMMANDS.iter() {
        let id = table::lookup(c.name).unwrap_or_else(|| panic!("{} has no ACL entry", c.name));
        assert_ne!(table::COMMANDS[id].categories, 0, "{}", c.name);
    }
}

#[test]
fn pubsub_default_allchannels() {
    let mut u = Users::new();
    u.set_pubsub_default(true);
    u.setuser(b"a", &[b"on"]).unwrap();
    assert_eq!(line(&u, "a"), "user a on &* -@all");
    u.setuser(b"a", &[b"resetchannels", b"reset"]).unwrap();
    assert_eq!(line(&u, "a"), "user a off sanitize-payload &* -@all");
    let loaded = u.load_text(b"user b on\n", "f").unwrap();
    assert_eq!(line(&loaded, "b"), "user b on &* -@all");
}

#[test]
fn selectors_match_redis() {
    let u = users_with(
        "s",
        &[
            "on",
            "nopass",
            "+get",
            "~a*",
            "(+set ~b* &x)",
            "(",
            "+del",
            ")",
        ],
    );
    assert_eq!(
        line(&u, "s"),
        "user s on nopass ~a* resetchannels -@all +get (~b* resetchannels &x -@all +set) (resetchannels -@all +del)"
    );
    let sels = u.get(b"s").unwrap().selectors();
    assert_eq!(sels.len(), 2);
    assert_eq!(sels[0].commands, "-@all +set");
    assert_eq!(sels[0].keys, b"~b*");
    assert_eq!(sels[0].channels, b"&x");
    assert_eq!(check(&u, "s", &["set", "b1", "v"]), Ok(()));
    assert_eq!(check(&u, "s", &["get", "a1"]), Ok(()));
    // No selector allows it: the key error (the most relevant) is reported.
    assert_eq!(check(&u, "s", &["set", "a1", "v"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "s", &["get", "b1"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "s", &["del", "zz"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, "s", &["hget", "a", "f"]), Err(Denied::Command));
    let mut u2 = u.clone();
    assert_eq!(
        u2.setuser(b"s", &[b"x", b"(+set", b"y"]).unwrap_err(),
        "ERR Unmatched parenthesis in acl selector starting at '(+set'."
    );
    assert_eq!(
        u2.setuser(b"s", &[b"(bogus)"]).unwrap_err(),
        "ERR Error in ACL SETUSER modifier '(bogus)': Syntax error"
    );
    u2.setuser(b"s", &[b"clearselectors"]).unwrap();
    assert_eq!(
        line(&u2, "s"),
        "user s on nopass ~a* resetchannels -@all +get"
    );
    // Saved and loaded back unchanged.
    let back = Users::new().load_text(&u.save_text(), "f").unwrap();
    assert_eq!(back.save_text(), u.save_text());
}
