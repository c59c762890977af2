//! Fault injection against the real server: slow and huge requests, many idle
//! connections, very long pipelines, protocol garbage and shutdown under load.
//! Each test checks that one bad or heavy client cannot hurt the others.

mod common;

use common::{read_n, wait_for, Server};
use redis::Commands;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Raises this process's open-file soft limit to its hard limit; returns the soft limit now.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        rl.rlim_cur
    }
}

/// Asserts that a normal client gets prompt answers while something else goes on.
fn assert_responsive(con: &mut redis::Connection, tag: &str) {
    let t = Instant::now();
    let _: () = con.set(format!("probe:{tag}"), tag).unwrap();
    let v: String = con.get(format!("probe:{tag}")).unwrap();
    assert_eq!(v, tag);
    let pong: String = redis::cmd("PING").query(con).unwrap();
    assert_eq!(pong, "PONG");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{tag}: took {:?}",
        t.elapsed()
    );
}

/// Reads until EOF (or the read timeout); returns what arrived and whether EOF was seen.
fn read_to_eof(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

#[test]
fn slow_huge_bulk_does_not_block_others() {
    let srv = Server::start(&["--threads", "2"]);
    let mut slow = srv.raw();
    slow.write_all(b"*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$100000000\r\n")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![b'x'; 1000];
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                slow.write_all(&chunk).unwrap();
                sent += chunk.len();
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        })
    };
    let mut con = srv.client();
    for i in 0..30 {
        assert_responsive(&mut con, &format!("during-{i}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    // New connections are accepted and served too.
    let mut other = srv.client();
    assert_responsive(&mut other, "new-conn");
    stop.store(true, Ordering::Relaxed);
    let sent = trickler.join().unwrap();
    assert!(sent > 0 && sent < 100_000_000);
    // The half-sent SET did not happen.
    let exists: i64 = con.exists("huge").unwrap();
    assert_eq!(exists, 0);
    // Finishing the bulk completes the command on that connection.
    let rest = vec![b'y'; 100_000_000 - sent];
    slow.write_all(&rest).unwrap();
    slow.write_all(b"\r\n").unwrap();
    assert_eq!(read_n(&mut slow, 5), b"+OK\r\n");
    let len: i64 = con.strlen("huge").unwrap();
    assert_eq!(len, 100_000_000);
}

#[test]
fn many_idle_connections() {
    let limit = raise_nofile();
    // Leave room for the test harness's own descriptors.
    let n = 2000.min(limit.saturating_sub(200) as usize);
    assert!(n >= 1000, "open-file limit {limit} too low for this test");
    let srv = Server::start(&["--threads", "2"]);
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        match TcpStream::connect(("127.0.0.1", srv.port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} of {n} failed: {e}"),
        }
    }
    let mut con = srv.client();
    assert_responsive(&mut con, "with-idle");
    let clients: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
    let connected: usize = clients
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("connected_clients in INFO");
    assert!(
        connected > n,
        "connected_clients {connected} with {n} idle + 1 busy"
    );
    // Idle connections are still served, first, middle and last.
    for &i in &[0, n / 2, n - 1] {
        let s = &mut idle[i];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_n(s, 7), b"+PONG\r\n", "idle connection {i}");
    }
    drop(idle);
    assert!(wait_for(10, || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        info.contains("connected_clients:1\r")
    }));
    assert_responsive(&mut con, "after-close");
}

#[test]
fn million_command_pipeline_replies_in_order() {
    const N: usize = 1_000_000;
    let srv = Server::start(&["--threads", "2"]);
    let sock = srv.raw();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let writer = {
        let mut w = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(1 << 20);
            for i in 0..N {
                // Even: SET on keys spread over both shards; odd: INCR one counter.
                if i % 2 == 0 {
                    let k = format!("k:{}", i % 1000);
                    let v = i.to_string();
                    batch.extend_from_slice(
                        format!(
                            "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                            k.len(),
                            v.len()
                        )
                        .as_bytes(),
                    );
                } else {
                    batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
                }
                if batch.len() > 64 * 1024 {
                    w.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            w.write_all(&batch).unwrap();
        })
    };
    let mut r = BufReader::with_capacity(1 << 16, sock);
    let mut line = String::new();
    for i in 0..N {
        line.clear();
        r.read_line(&mut line)
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        let want = if i % 2 == 0 {
            "+OK\r\n".to_string()
        } else {
            format!(":{}\r\n", i.div_ceil(2))
        };
        assert_eq!(line, want, "reply {i}");
    }
    writer.join().unwrap();
    let mut con = srv.client();
    let ctr: i64 = con.get("ctr").unwrap();
    assert_eq!(ctr, (N / 2) as i64);
    let last: i64 = con.get("k:998").unwrap();
    assert_eq!(last, (N - 2) as i64);
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let srv = Server::start(&["--threads", "2"]);
    let mut bystander = srv.client();
    let _: () = bystander.set("kept", "1").unwrap();
    // Every reply checked against redis-server 7.0.15.
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+x\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*1\r\n$4294967296\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4294967296\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"set a \"unbalanced\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (send, want) in cases {
        let mut s = srv.raw();
        // A good command first: the error must not disturb what came before it.
        s.write_all(b"PING\r\n").unwrap();
        s.write_all(send).unwrap();
        let (got, eof) = read_to_eof(&mut s);
        let mut expected = b"+PONG\r\n".to_vec();
        expected.extend_from_slice(want);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "for {:?}",
            String::from_utf8_lossy(send)
        );
        assert!(
            eof,
            "connection not closed after {:?}",
            String::from_utf8_lossy(send)
        );
        assert_responsive(&mut bystander, "bystander");
    }
    // An inline request over 64 KB without a newline.
    let mut s = srv.raw();
    s.write_all(&vec![b'a'; 70_000]).unwrap();
    let (got, eof) = read_to_eof(&mut s);
    assert_eq!(got, b"-ERR Protocol error: too big inline request\r\n");
    assert!(eof);
    // Random binary garbage after a valid command: whatever the reply, the server lives on.
    let mut s = srv.raw();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut garbage = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage.push(x as u8);
    }
    let _ = s.write_all(&garbage);
    let _ = read_to_eof(&mut s);
    drop(s);
    assert_responsive(&mut bystander, "after-garbage");
    let kept: String = bystander.get("kept").unwrap();
    assert_eq!(kept, "1");
}

#[test]
fn shutdown_under_load_exits_cleanly() {
    let mut srv = Server::start(&["--threads", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, done) = (stop.clone(), done.clone());
            let port = srv.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let cmd = format!("SET w{w}:{} {i}\r\n", i % 5000);
                    if s.write_all(cmd.repeat(50).as_bytes()).is_err() {
                        break;
                    }
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    assert!(wait_for(10, || done.load(Ordering::Relaxed) > 200));
    let mut con = srv.client();
    // SHUTDOWN replies nothing on success: the connection just closes.
    let r: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut con);
    assert!(r.is_err(), "SHUTDOWN replied {r:?}");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server still running 10 s after SHUTDOWN under load"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(status.success(), "exit status {status:?}");
    assert!(wait_for(5, || srv.logged("ready to exit, bye bye")));
}
