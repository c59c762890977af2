//! Client-side caching (CLIENT TRACKING) against the real binary with two
//! shards: `foo` (slot 12182) lives on shard 0 and `bar` (slot 5061) on shard 1,
//! so invalidations cross cores whichever core a connection landed on.

mod common;

use common::{info_field, send, Server};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads until everything read so far contains every one of `needles`;
/// returns what was read.
fn read_until(s: &mut TcpStream, needles: &[&str]) -> String {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out; got {text:?}");
        match s.read(&mut chunk) {
            Ok(0) => panic!("connection closed; got {text:?}"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
}

fn push(key: &str) -> String {
    format!(
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n",
        key.len()
    )
}

fn resp3_tracker(srv: &Server, options: &[&str]) -> TcpStream {
    let mut s = srv.raw();
    send(&mut s, &["HELLO", "3"]);
    read_until(&mut s, &["modules"]);
    let mut on = vec!["CLIENT", "TRACKING", "ON"];
    on.extend_from_slice(options);
    send(&mut s, &on);
    read_until(&mut s, &["+OK\r\n"]);
    s
}

/// A tracking client's connection and everything it was sent, in order
/// (to count invalidations over several commands).
struct Transcript(TcpStream, String);

impl Transcript {
    /// Sends `cmd` and reads until `until` has all come.
    fn step(&mut self, cmd: &[&str], until: &[&str]) {
        send(&mut self.0, cmd);
        self.wait(until);
    }

    /// Reads until `until` has all come.
    fn wait(&mut self, until: &[&str]) {
        let text = read_until(&mut self.0, until);
        self.1.push_str(&text);
    }

    /// How often `needle` was sent.
    fn count(&self, needle: &str) -> usize {
        self.1.matches(needle).count()
    }
}

fn set(c: &mut redis::Connection, k: &str, v: &str) {
    let _: () = redis::cmd("SET").arg(k).arg(v).query(c).unwrap();
}

#[test]
fn resp3_push_for_keys_on_both_shards() {
    let srv = Server::start(&["--threads", "2"]);
    let mut t = resp3_tracker(&srv, &[]);
    send(&mut t, &["MGET", "foo", "bar"]);
    read_until(&mut t, &["*2\r\n_\r\n_\r\n"]);
    let mut c = srv.client();
    assert_eq!(
        info_field(&mut c, "stats", "tracking_total_keys").as_deref(),
        Some("2")
    );
    assert_eq!(
        info_field(&mut c, "clients", "tracking_clients").as_deref(),
        Some("1")
    );
    // Writers on several connections, so both cores write.
    for _ in 0..4 {
        let mut w = srv.client();
        set(&mut w, "foo", "1");
        set(&mut w, "bar", "1");
    }
    let got = read_until(&mut t, &[&push("foo"), &push("bar")]);
    // One invalidation per key: the key is forgotten until read again.
    assert_eq!(got.matches("invalidate").count(), 2, "{got}");
    assert_eq!(
        info_field(&mut c, "stats", "tracking_total_keys").as_deref(),
        Some("0")
    );
    // FLUSHALL sends a null invalidation.
    send(&mut t, &["GET", "foo"]);
    read_until(&mut t, &["$1\r\n1\r\n"]);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    read_until(&mut t, &[">2\r\n$10\r\ninvalidate\r\n_\r\n"]);
    // A write inside MULTI/EXEC and from a script invalidates too.
    send(&mut t, &["MGET", "foo", "bar"]);
    read_until(&mut t, &["*2\r\n_\r\n_\r\n"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("foo")
        .arg("x")
        .ignore()
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('set', KEYS[1], 'y')")
        .arg(1)
        .arg("bar")
        .query(&mut c)
        .unwrap();
    read_until(&mut t, &[&push("foo"), &push("bar")]);
    // A script's reads remember their keys for its caller.
    send(
        &mut t,
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "bar"],
    );
    read_until(&mut t, &["$1\r\ny\r\n"]);
    set(&mut c, "bar", "z");
    read_until(&mut t, &[&push("bar")]);
}

#[test]
fn resp2_redirect_to_a_subscriber_and_broken_redirect() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    send(&mut sub, &["CLIENT", "ID"]);
    let id_line = read_until(&mut sub, &["\r\n"]);
    let sub_id: i64 = id_line.trim_start_matches(':').trim().parse().unwrap();
    send(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
    read_until(&mut sub, &["__redis__:invalidate\r\n:1\r\n"]);

    let mut t = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("REDIRECT")
        .arg(sub_id)
        .query(&mut t)
        .unwrap();
    let redir: i64 = redis::cmd("CLIENT").arg("GETREDIR").query(&mut t).unwrap();
    assert_eq!(redir, sub_id);
    let _: (Option<String>, Option<String>) = redis::cmd("MGET")
        .arg("foo")
        .arg("bar")
        .query(&mut t)
        .unwrap();
    let mut w = srv.client();
    set(&mut w, "foo", "1");
    set(&mut w, "bar", "1");
    read_until(
        &mut sub,
        &[
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$3\r\nfoo\r\n",
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$3\r\nbar\r\n",
        ],
    );
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut w).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains(" flags=t ") && l.contains(&format!(" redir={sub_id} "))),
        "{list}"
    );

    // The redirect client goes away: a RESP3 tracker hears of it.
    let mut t3 = resp3_tracker(&srv, &["REDIRECT", &sub_id.to_string()]);
    send(&mut t3, &["GET", "foo"]);
    read_until(&mut t3, &["$1\r\n1\r\n"]);
    drop(sub);
    common::wait_for(10, || {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut w).unwrap();
        !list.contains(&format!("id={sub_id} "))
    });
    set(&mut w, "foo", "2");
    read_until(
        &mut t3,
        &[&format!(
            ">2\r\n$21\r\ntracking-redir-broken\r\n:{sub_id}\r\n"
        )],
    );
    send(&mut t3, &["CLIENT", "TRACKINGINFO"]);
    read_until(&mut t3, &["broken_redirect"]);
}

#[test]
fn bcast_prefixes_and_noloop() {
    let srv = Server::start(&["--threads", "2"]);
    let mut t = resp3_tracker(&srv, &["BCAST", "PREFIX", "user:", "PREFIX", "o", "NOLOOP"]);
    let mut c = srv.client();
    assert_eq!(
        info_field(&mut c, "stats", "tracking_total_prefixes").as_deref(),
        Some("2")
    );
    send(&mut t, &["CLIENT", "TRACKINGINFO"]);
    read_until(
        &mut t,
        &["%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$1\r\no\r\n$5\r\nuser:\r\n"],
    );
    // Its own write is not reported back (NOLOOP); nor are keys outside
    // the prefixes; other clients' writes are, without any read first.
    send(&mut t, &["SET", "user:me", "1"]);
    read_until(&mut t, &["+OK\r\n"]);
    set(&mut c, "other", "1");
    set(&mut c, "nope", "1");
    set(&mut c, "user:42", "1");
    let got = read_until(&mut t, &["$7\r\nuser:42\r\n", "$5\r\nother\r\n"]);
    assert!(!got.contains("user:me") && !got.contains("nope"), "{got}");
    // Overlapping prefixes are refused, with Redis's text.
    let e = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg("ab")
        .arg("PREFIX")
        .arg("a")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap.")
    );
}

#[test]
fn noloop_in_default_mode() {
    let srv = Server::start(&["--threads", "2"]);
    let mut t = resp3_tracker(&srv, &["NOLOOP"]);
    // foo and {foo}x share a shard, so their invalidations arrive in order.
    send(&mut t, &["MGET", "foo", "{foo}x"]);
    read_until(&mut t, &["*2\r\n_\r\n_\r\n"]);
    send(&mut t, &["SET", "foo", "mine"]);
    read_until(&mut t, &["+OK\r\n"]);
    let mut c = srv.client();
    set(&mut c, "{foo}x", "theirs");
    let got = read_until(&mut t, &[&push("{foo}x")]);
    assert!(!got.contains(&push("foo")), "{got}");
}

/// A key that expires under a NOLOOP client's own read is reported to it, as
/// redis-server 7.0.15 does: the key is deleted for no client (Redis's
/// expireIfNeeded), so NOLOOP, which holds back the client's own writes,
/// does not apply.
#[test]
fn noloop_client_hears_of_a_key_expiring_under_its_own_read() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    // Only the lazy path may delete the key.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let mut t = resp3_tracker(&srv, &["NOLOOP"]);
    send(&mut t, &["SET", "foo", "v", "PX", "300"]);
    read_until(&mut t, &["+OK\r\n"]);
    send(&mut t, &["GET", "foo"]);
    read_until(&mut t, &["$1\r\nv\r\n"]);
    // Past the TTL on any clock: the next read finds the key expired.
    std::thread::sleep(Duration::from_millis(400));
    send(&mut t, &["GET", "foo"]);
    read_until(&mut t, &["_\r\n", &push("foo")]);
}

/// A NOLOOP client's own multi-shard writes (an MSET split over both
/// shards, a RENAME written back across them) are not reported to it;
/// another client's are, once each.
#[test]
fn noloop_holds_back_the_clients_own_multi_shard_writes() {
    let srv = Server::start(&["--threads", "2"]);
    let mut t = Transcript(resp3_tracker(&srv, &["NOLOOP"]), String::new());
    t.step(&["MGET", "foo", "bar"], &["*2\r\n_\r\n_\r\n"]);
    t.step(&["MSET", "foo", "1", "bar", "2"], &["+OK\r\n"]);
    t.step(&["MGET", "foo", "bar"], &["*2\r\n$1\r\n1\r\n$1\r\n2\r\n"]);
    t.step(&["RENAME", "foo", "bar"], &["+OK\r\n"]);
    t.step(&["MGET", "foo", "bar"], &["*2\r\n_\r\n$1\r\n1\r\n"]);
    let mut c = srv.client();
    let _: () = redis::cmd("MSET")
        .arg("foo")
        .arg("3")
        .arg("bar")
        .arg("4")
        .query(&mut c)
        .unwrap();
    // Each core sends its invalidations in order: once another client's
    // have come, any of the client's own would have come before them.
    t.wait(&[&push("foo"), &push("bar")]);
    assert_eq!(t.count(&push("foo")), 1, "{}", t.1);
    assert_eq!(t.count(&push("bar")), 1, "{}", t.1);
}

/// A key a NOLOOP client MIGRATEs away is its own write: not reported to
/// it; another client's write to the key afterwards is.
#[test]
fn noloop_holds_back_the_clients_own_migrate() {
    let srv = Server::start(&["--threads", "2"]);
    let target = Server::start(&["--threads", "2"]);
    let mut t = Transcript(resp3_tracker(&srv, &["NOLOOP"]), String::new());
    t.step(&["SET", "foo", "v"], &["+OK\r\n"]);
    t.step(&["GET", "foo"], &["$1\r\nv\r\n"]);
    let port = target.port.to_string();
    t.step(
        &["MIGRATE", "127.0.0.1", &port, "foo", "0", "5000"],
        &["+OK\r\n"],
    );
    t.step(&["GET", "foo"], &["_\r\n"]);
    let mut c = srv.client();
    set(&mut c, "foo", "theirs");
    // foo's core sends in order: another client's invalidation comes after
    // any of the client's own.
    t.wait(&[&push("foo")]);
    assert_eq!(t.count(&push("foo")), 1, "{}", t.1);
}

#[test]
fn optin_and_optout() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    let keys = |c: &mut redis::Connection| info_field(c, "stats", "tracking_total_keys");
    let mut t = resp3_tracker(&srv, &["OPTIN"]);
    send(&mut t, &["GET", "foo"]);
    read_until(&mut t, &["_\r\n"]);
    assert_eq!(keys(&mut c).as_deref(), Some("0"));
    send(&mut t, &["CLIENT", "CACHING", "YES"]);
    send(&mut t, &["GET", "bar"]);
    send(&mut t, &["GET", "foo"]);
    read_until(&mut t, &["+OK\r\n_\r\n_\r\n"]);
    // CACHING YES covered the next command only.
    assert_eq!(keys(&mut c).as_deref(), Some("1"));
    set(&mut c, "bar", "1");
    read_until(&mut t, &[&push("bar")]);

    let mut o = resp3_tracker(&srv, &["OPTOUT"]);
    send(&mut o, &["CLIENT", "CACHING", "NO"]);
    send(&mut o, &["GET", "foo"]);
    send(&mut o, &["GET", "bar"]);
    read_until(&mut o, &["+OK\r\n_\r\n$1\r\n1\r\n"]);
    assert_eq!(keys(&mut c).as_deref(), Some("1"));
    set(&mut c, "bar", "2");
    read_until(&mut o, &[&push("bar")]);

    let e = redis::cmd("CLIENT")
        .arg("CACHING")
        .arg("YES")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
    );
    let e = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("OPTIN")
        .arg("OPTOUT")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("You can't specify both OPTIN mode and OPTOUT mode")
    );
    let e = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("REDIRECT")
        .arg(123456)
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("The client ID you want redirect to does not exist")
    );
}

#[test]
fn expiry_invalidates() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    set(&mut c, "foo", "v");
    set(&mut c, "bar", "v");
    let mut t = resp3_tracker(&srv, &[]);
    send(&mut t, &["MGET", "foo", "bar"]);
    read_until(&mut t, &["*2\r\n$1\r\nv\r\n$1\r\nv\r\n"]);
    // Giving a TTL is a write: that invalidates at once.
    for k in ["foo", "bar"] {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(k)
            .arg(1500)
            .query(&mut c)
            .unwrap();
    }
    read_until(&mut t, &[&push("foo"), &push("bar")]);
    send(&mut t, &["MGET", "foo", "bar"]);
    read_until(&mut t, &["*2\r\n$1\r\nv\r\n$1\r\nv\r\n"]);
    // Nobody touches the keys again: the active expire cycle deletes them.
    read_until(&mut t, &[&push("foo"), &push("bar")]);
}

#[test]
fn tracking_table_max_keys_is_honoured() {
    let srv = Server::start(&["--threads", "1", "--tracking-table-max-keys", "2"]);
    let mut t = resp3_tracker(&srv, &[]);
    send(&mut t, &["MGET", "a", "b", "c"]);
    // Over the limit, a tracked key is invalidated at once.
    read_until(
        &mut t,
        &["*3\r\n_\r\n_\r\n_\r\n", ">2\r\n$10\r\ninvalidate\r\n"],
    );
    let mut c = srv.client();
    assert_eq!(
        info_field(&mut c, "stats", "tracking_total_keys").as_deref(),
        Some("2")
    );
}
