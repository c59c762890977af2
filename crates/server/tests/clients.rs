//! Client limits against the real server: maxclients, the idle timeout,
//! the Pub/Sub output buffer limit, CLIENT PAUSE/UNPAUSE and NO-EVICT.

mod common;

use common::{read_n, roundtrip, wait_for, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// True once the server closed `s` (EOF or reset), within `secs`.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn ping(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    roundtrip(s, b"PING\r\n", 7) == b"+PONG\r\n"
}

#[test]
fn maxclients_refuses_with_redis_error_across_executors() {
    let s = Server::start(&["--maxclients", "4"]);
    // Connections spread over every executor; the limit is global.
    let mut open: Vec<TcpStream> = (0..4).map(|_| s.raw()).collect();
    for c in &mut open {
        assert!(ping(c));
    }
    let mut extra = s.raw();
    let want = b"-ERR max number of clients reached\r\n";
    assert_eq!(read_n(&mut extra, want.len()), want);
    assert!(closed_within(&mut extra, 5));
    // A slot frees when a client leaves.
    drop(open.pop());
    assert!(wait_for(5, || {
        let mut c = s.raw();
        ping(&mut c)
    }));
    drop(open);
    let mut info = String::new();
    assert!(wait_for(5, || {
        let mut c = s.raw();
        c.write_all(b"INFO stats\r\n").unwrap();
        let mut buf = vec![0u8; 8192];
        let n = c.read(&mut buf).unwrap_or(0);
        info = String::from_utf8_lossy(&buf[..n]).into_owned();
        info.contains("rejected_connections:")
    }));
    assert!(!info.contains("rejected_connections:0\r\n"), "{info}");
}

#[test]
fn idle_timeout_closes_plain_clients_but_not_subscribers_or_blocked_ones() {
    let s = Server::start(&["--timeout", "1"]);
    let mut idle = s.raw();
    assert!(ping(&mut idle));
    let mut sub = s.raw();
    let ack = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    assert_eq!(roundtrip(&mut sub, b"SUBSCRIBE ch\r\n", ack.len()), ack);
    let mut blocked = s.raw();
    blocked.write_all(b"BLPOP q 0\r\n").unwrap();
    // The plain client goes after about a second of idleness.
    assert!(closed_within(&mut idle, 5), "idle client not closed");
    // Well past the timeout, the subscriber and the blocked client are alive.
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = s.client();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("hi")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_n(&mut sub, msg.len()), msg);
    let _: i64 = redis::cmd("LPUSH").arg("q").arg("v").query(&mut c).unwrap();
    let reply = b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n";
    blocked
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_n(&mut blocked, reply.len()), reply);
}

#[test]
fn never_reading_subscriber_is_disconnected_at_the_output_limit() {
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 1mb 256kb 1"]);
    let mut sub = s.raw();
    let ack = b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n";
    assert_eq!(roundtrip(&mut sub, b"SUBSCRIBE flood\r\n", ack.len()), ack);
    // The subscriber never reads: messages pile up in the kernel's socket
    // buffers, then in the server, until the limit closes it.
    let mut c = s.client();
    let payload = vec![b'x'; 16 * 1024];
    let start = Instant::now();
    let mut gone = false;
    while start.elapsed() < Duration::from_secs(30) {
        let mut p = redis::pipe();
        for _ in 0..100 {
            p.cmd("PUBLISH").arg("flood").arg(&payload[..]);
        }
        let counts: Vec<i64> = p.query(&mut c).unwrap();
        if counts.last() == Some(&0) {
            gone = true;
            break;
        }
    }
    assert!(gone, "the subscriber was never disconnected");
    assert!(s.wait_logged("scheduled to be closed ASAP for overcoming of output buffer limits."));
    // The server is healthy and memory came back.
    let mut p = s.raw();
    assert!(ping(&mut p));
    let n: i64 = redis::cmd("PUBLISH")
        .arg("flood")
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn client_pause_write_holds_writes_until_unpause_and_lets_reads_through() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("old")
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .query(&mut admin)
        .unwrap();
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let _: () = redis::cmd("SET").arg("k").arg("new").query(&mut w).unwrap();
        Instant::now()
    });
    // Reads proceed during the pause; the write does not.
    let mut reader = s.client();
    for _ in 0..10 {
        let v: String = redis::cmd("GET").arg("k").query(&mut reader).unwrap();
        assert_eq!(v, "old");
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(!writer.is_finished(), "SET ran during CLIENT PAUSE WRITE");
    let unpaused = Instant::now();
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .unwrap();
    let done = writer.join().unwrap();
    assert!(done >= unpaused);
    let v: String = redis::cmd("GET").arg("k").query(&mut reader).unwrap();
    assert_eq!(v, "new");
    // Errors as Redis words them.
    let mut raw = s.raw();
    for (cmd, want) in [
        (
            &b"CLIENT PAUSE -1\r\n"[..],
            &b"-ERR timeout is negative\r\n"[..],
        ),
        (
            b"CLIENT PAUSE abc\r\n",
            b"-ERR timeout is not an integer or out of range\r\n",
        ),
        (
            b"CLIENT PAUSE 10 foo\r\n",
            b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n",
        ),
        (
            b"CLIENT UNPAUSE x\r\n",
            b"-ERR wrong number of arguments for 'client|unpause' command\r\n",
        ),
    ] {
        assert_eq!(
            String::from_utf8_lossy(&roundtrip(&mut raw, cmd, want.len())),
            String::from_utf8_lossy(want)
        );
    }
}

#[test]
fn client_pause_all_expires_by_itself() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(500)
        .query(&mut c)
        .unwrap();
    let start = Instant::now();
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "GET ran during PAUSE ALL after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5));
}

#[test]
fn client_no_evict_is_accepted_and_shown() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    assert_eq!(
        roundtrip(&mut raw, b"CLIENT NO-EVICT on\r\n", 5),
        b"+OK\r\n"
    );
    let mut c = s.client();
    let _: () = redis::cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("ON")
        .query(&mut c)
        .unwrap();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains(" flags=e "), "{info}");
    let _: () = redis::cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("off")
        .query(&mut c)
        .unwrap();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains(" flags=N "), "{info}");
    let want = b"-ERR syntax error\r\n";
    assert_eq!(
        roundtrip(&mut raw, b"CLIENT NO-EVICT maybe\r\n", want.len()),
        want
    );
}
