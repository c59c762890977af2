//! DUMP and RESTORE through `Keyspace::execute`: replies, errors and effects
//! as redis-server 7.0.15 gives them (checked against it on a unix socket).

use bytes::Bytes;
use shardis_keyspace::{DbIndex, ExecContext, Keyspace};
use shardis_protocol::Reply;

const NOW: u64 = 1_700_000_000_000;

struct T {
    ks: Keyspace,
    ctx: ExecContext,
}

impl T {
    fn new() -> T {
        T {
            ks: Keyspace::new(16),
            ctx: ExecContext {
                now_ms: NOW,
                ..Default::default()
            },
        }
    }

    fn run(&mut self, args: &[&[u8]]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let cmd = shardis_commands::lookup(&args[0]).expect("known command");
        assert!(cmd.arity_ok(args.len()));
        self.ks.execute(&mut self.ctx, cmd, &args)
    }

    fn line(&mut self, line: &str) -> Reply {
        let parts: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.run(&parts)
    }

    fn dump(&mut self, key: &str) -> Vec<u8> {
        match self.run(&[b"DUMP", key.as_bytes()]) {
            Reply::Bulk(b) => b.to_vec(),
            other => panic!("DUMP {key}: {other:?}"),
        }
    }

    fn effects(&mut self) -> Vec<Vec<Bytes>> {
        self.ctx.effects.drain(..).map(|e| e.args).collect()
    }
}

fn err(s: &str) -> Reply {
    Reply::Error(s.to_owned())
}

#[test]
fn dump_matches_redis_bytes() {
    let mut t = T::new();
    t.line("SET foo bar");
    // redis-cli --no-raw DUMP foo on redis 7.0.15.
    assert_eq!(t.dump("foo"), b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17");
    assert_eq!(t.line("DUMP missing"), Reply::Nil);
}

#[test]
fn restore_round_trip_with_ttl_propagates_absttl() {
    let mut t = T::new();
    t.line("SET n 12345");
    let p = t.dump("n");
    t.effects();
    assert_eq!(t.run(&[b"RESTORE", b"m", b"5000", &p]), Reply::OK);
    assert_eq!(t.line("GET m"), Reply::bulk(b"12345"));
    assert_eq!(t.line("OBJECT ENCODING m"), Reply::bulk(b"int"));
    assert_eq!(t.line("PTTL m"), Reply::Integer(5000));
    let at = (NOW + 5000).to_string();
    assert_eq!(
        t.effects(),
        vec![vec![
            Bytes::from("RESTORE"),
            Bytes::from("m"),
            Bytes::from(at),
            Bytes::from(p.clone()),
            Bytes::from("ABSTTL"),
        ]]
    );
    // With ABSTTL (or no TTL) it goes out as sent.
    let abs = (NOW + 9000).to_string();
    let sent: [&[u8]; 6] = [b"RESTORE", b"k", abs.as_bytes(), &p, b"ABSTTL", b"REPLACE"];
    assert_eq!(t.run(&sent), Reply::OK);
    assert_eq!(t.line("PTTL k"), Reply::Integer(9000));
    assert_eq!(t.effects()[0].len(), 6);
    assert_eq!(t.ctx.stats.dirty, 3, "SET + two RESTOREs");
}

#[test]
fn restore_errors_in_redis_order() {
    let mut t = T::new();
    t.line("SET foo bar");
    let p = t.dump("foo");
    t.effects();
    // Options are checked first, then BUSYKEY, then the TTL, then the payload.
    let cases: Vec<(Vec<&[u8]>, Reply)> = vec![
        (vec![b"foo", b"0", &p, b"IDLETIME"], err("ERR syntax error")),
        (
            vec![b"foo", b"0", &p, b"FREQ", b"300"],
            err("ERR Invalid FREQ value, must be >= 0 and <= 255"),
        ),
        (
            vec![b"foo", b"0", &p, b"IDLETIME", b"-1"],
            err("ERR Invalid IDLETIME value, must be >= 0"),
        ),
        (
            vec![b"foo", b"0", &p, b"IDLETIME", b"5", b"FREQ", b"5"],
            err("ERR syntax error"),
        ),
        (
            vec![b"foo", b"0", &p, b"FREQ", b"5", b"IDLETIME", b"x"],
            err("ERR syntax error"),
        ),
        (
            vec![b"foo", b"0", &p, b"IDLETIME", b"x"],
            err("ERR value is not an integer or out of range"),
        ),
        (vec![b"foo", b"0", &p, b"BLAH"], err("ERR syntax error")),
        (
            vec![b"foo", b"abc", b"bad"],
            err("BUSYKEY Target key name already exists."),
        ),
        (
            vec![b"new", b"abc", b"bad"],
            err("ERR value is not an integer or out of range"),
        ),
        (
            vec![b"new", b"-1", b"bad"],
            err("ERR Invalid TTL value, must be >= 0"),
        ),
        (
            vec![b"new", b"0", b"bad"],
            err("ERR DUMP payload version or checksum are wrong"),
        ),
    ];
    for (args, want) in cases {
        let mut full: Vec<&[u8]> = vec![b"RESTORE"];
        full.extend(args);
        assert_eq!(t.run(&full), want, "{full:?}");
    }
    // A payload whose footer verifies but whose body does not parse.
    let mut body = vec![0u8, 0x05, b'a'];
    body.extend_from_slice(&10u16.to_le_bytes());
    let crc = shardis_rdb::crc64::crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        t.run(&[b"RESTORE", b"new", b"0", &body]),
        err("ERR Bad data format")
    );
    assert!(t.effects().is_empty());
    assert_eq!(t.ctx.stats.dirty, 1);
}

#[test]
fn restore_already_expired() {
    let mut t = T::new();
    t.line("SET foo bar");
    let p = t.dump("foo");
    t.effects();
    // ABSTTL in the past: OK, no key, nothing to propagate.
    assert_eq!(t.run(&[b"RESTORE", b"new", b"1", &p, b"ABSTTL"]), Reply::OK);
    assert_eq!(t.line("EXISTS new"), Reply::Integer(0));
    assert!(t.effects().is_empty());
    // REPLACE of an existing key with an expired one: the key goes, as a DEL.
    assert_eq!(
        t.run(&[b"RESTORE", b"foo", b"1", &p, b"ABSTTL", b"REPLACE"]),
        Reply::OK
    );
    assert_eq!(t.line("EXISTS foo"), Reply::Integer(0));
    assert_eq!(
        t.effects(),
        vec![vec![Bytes::from("DEL"), Bytes::from("foo")]]
    );
    // A replica keeps it (its master decides when it expires).
    t.ctx.replica = true;
    assert_eq!(t.run(&[b"RESTORE", b"r", b"1", &p, b"ABSTTL"]), Reply::OK);
    assert_eq!(t.ks.dbsize(DbIndex(0)), 1);
}

#[test]
fn restore_idletime_sets_the_access_time() {
    let mut t = T::new();
    t.line("SET foo bar");
    let p = t.dump("foo");
    assert_eq!(
        t.run(&[
            b"RESTORE",
            b"foo",
            b"0",
            &p,
            b"IDLETIME",
            b"100",
            b"REPLACE"
        ]),
        Reply::OK
    );
    assert_eq!(t.line("OBJECT IDLETIME foo"), Reply::Integer(100));
    assert_eq!(
        t.run(&[b"RESTORE", b"f2", b"0", &p, b"FREQ", b"5"]),
        Reply::OK
    );
    assert_eq!(t.line("PTTL f2"), Reply::Integer(-1));
}
