//! Starts the real `shardis-server` binary on port 0 and hands out clients.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Its log lines so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with `--port 0` plus `args`, waits for "Ready to accept connections".
    pub fn start(args: &[&str]) -> Server {
        Server::start_on(0, args)
    }

    /// Starts the server on `port` (0: any) plus `args`.
    pub fn start_on(port: u16, args: &[&str]) -> Server {
        Server::start_from(None, port, args)
    }

    /// Starts the server from the config file `conf` (its first argument, as
    /// redis-server takes it), on any port, plus `args`.
    pub fn start_with_conf(conf: &str, args: &[&str]) -> Server {
        Server::start_from(Some(conf), 0, args)
    }

    fn start_from(conf: Option<&str>, port: u16, args: &[&str]) -> Server {
        let port_s = port.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
            .args(conf)
            // DEBUG (DIGEST, RELOAD, SLEEP …) is off by default, as in Redis 7.0.
            .args([
                "--port",
                &port_s,
                "--save",
                "",
                "--enable-debug-command",
                "yes",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shardis-server");
        let stdout = child.stdout.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut port = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("port=").nth(1) {
                    port = rest
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                }
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(port);
                }
                log2.lock().unwrap().push(line);
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server did not become ready")
            .expect("no port in log");
        Server { child, port, log }
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw socket.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Number of log lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Kills the process with SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's exit status once it has exited, waiting up to `secs`.
    pub fn exited_within(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_for(secs, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// The log so far, for failure messages.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether the log has a line containing `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Whether a line containing `needle` is logged within 10 s. The log is
    /// read by a thread, so a line written before a reply may be seen after it.
    pub fn wait_logged(&self, needle: &str) -> bool {
        wait_for(10, || self.logged(needle))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes and reads until `expected` bytes arrived (or timeout).
pub fn roundtrip(s: &mut TcpStream, send: &[u8], expected_len: usize) -> Vec<u8> {
    s.write_all(send).unwrap();
    read_n(s, expected_len)
}

/// A command as a RESP array of bulk strings.
pub fn cmd(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{}\r\n", p.len(), p).as_bytes());
    }
    out
}

/// Writes one command on a raw socket.
pub fn send(s: &mut TcpStream, parts: &[&str]) {
    s.write_all(&cmd(parts)).unwrap();
}

/// Reads exactly as many bytes as `want` has and asserts they are `want`.
pub fn expect(s: &mut TcpStream, want: &str) {
    let got = read_n(s, want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);
}

/// Reads exactly `n` bytes, or what arrived before EOF/timeout.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

/// A port nobody listens on right now, below the kernel's ephemeral range, so a
/// server started elsewhere with `--port 0` cannot take it while a test restarts
/// a process on it.
pub fn free_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        + std::process::id() as u64;
    for i in 0..1000u64 {
        let port = 20000 + ((seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 10000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..30000");
}

/// Polls `cond` until it holds or `secs` pass.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sends `send` and returns whatever arrives before the read timeout, as text
/// (None if nothing did).
pub fn roundtrip_any(s: &mut TcpStream, send: &[u8]) -> Option<String> {
    s.write_all(send).ok()?;
    let mut buf = vec![0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

/// A field of an INFO section (`None` if absent or the call failed).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// `DEBUG DIGEST` of the whole dataset.
pub fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
}

/// A fresh directory under the system temp dir (a server's `--dir`), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `shardis-<tag>-<pid>-<n>-<nanos>`: unique across test processes and within one.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("shardis-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The directory, as a `--dir` argument.
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The RDB file under the default `dbfilename`.
    pub fn dump(&self) -> PathBuf {
        self.0.join("dump.rdb")
    }

    /// The AOF directory under the default `appenddirname`.
    pub fn aof_dir(&self) -> PathBuf {
        self.0.join("appendonlydir")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads from `s` until `done` holds for what was read (or the peer closes).
pub fn read_until(s: &mut std::net::TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&out) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
    out
}

/// A real RDB payload of `srv` (REPLCONF rdb-only + SYNC, as redis-cli --rdb).
pub fn rdb_payload(srv: &Server) -> Vec<u8> {
    let mut s = srv.raw();
    send(&mut s, &["REPLCONF", "rdb-only", "1"]);
    expect(&mut s, "+OK\r\n");
    send(&mut s, &["SYNC"]);
    let got = read_until(&mut s, |_| false);
    let start = got.iter().position(|&b| b != b'\n').unwrap();
    let header_end = start + got[start..].windows(2).position(|w| w == b"\r\n").unwrap();
    got[header_end + 2..].to_vec()
}

/// The names of the complete RESP commands at the start of `b`.
pub fn complete_commands(b: &[u8]) -> Vec<String> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = at + b.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&b[at..end], end + 2))
    }
    let mut out = Vec::new();
    let mut at = 0;
    'next: while let Some((head, mut p)) = line(b, at) {
        let Some(n) = head.strip_prefix(b"*") else {
            break;
        };
        let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
        let mut name = None;
        for _ in 0..n {
            let Some((len, q)) = line(b, p) else {
                break 'next;
            };
            let len: usize = std::str::from_utf8(&len[1..]).unwrap().parse().unwrap();
            if b.len() < q + len + 2 {
                break 'next;
            }
            name.get_or_insert_with(|| String::from_utf8_lossy(&b[q..q + len]).into_owned());
            p = q + len + 2;
        }
        out.push(name.unwrap_or_default());
        at = p;
    }
    out
}

/// A master that answers the handshake, sends `payload` as a diskless
/// transfer (`$EOF:<mark>`) cut after `send` bytes, then closes the link.
pub fn cut_master(payload: Vec<u8>, send: usize) -> (u16, std::thread::JoinHandle<()>) {
    let (go, gate) = std::sync::mpsc::channel::<()>();
    drop(go);
    let (port, t) = gated_master(payload, send, gate);
    (
        port,
        std::thread::spawn(move || {
            let _ = t.join().unwrap();
        }),
    )
}

/// A master that answers the handshake and sends `payload` as a diskless
/// transfer: `first` bytes, then waits for `gate`; if the gate opens (a
/// message, not a hang-up) it sends the rest and the end mark and waits for
/// the replica to close the link. Returns whether the replica closed it.
pub fn gated_master(
    payload: Vec<u8>,
    first: usize,
    gate: std::sync::mpsc::Receiver<()>,
) -> (u16, std::thread::JoinHandle<bool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        if !answer_until_psync(&mut s) {
            return false;
        }
        let mark = "m".repeat(40);
        let mut out = fullresync_header(&mark);
        out.extend_from_slice(&payload[..first]);
        s.write_all(&out).unwrap();
        if gate.recv().is_err() {
            std::thread::sleep(std::time::Duration::from_millis(300));
            return false;
        }
        // The replica may hang up while this is written (a reset).
        if s.write_all(&payload[first..]).is_err() || s.write_all(mark.as_bytes()).is_err() {
            return true;
        }
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut rest = [0u8; 4096];
        loop {
            match s.read(&mut rest) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    });
    (port, t)
}

/// A fake master's side of the replica's handshake: answers each command
/// (`+PONG` to PING, `+OK` to the rest) until PSYNC arrives, which it leaves
/// for the caller to answer. False if the replica hung up first.
pub fn answer_until_psync(s: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            return false;
        }
        seen.extend_from_slice(&buf[..n]);
        let commands = complete_commands(&seen);
        while answered < commands.len() {
            let name = commands[answered].to_ascii_uppercase();
            answered += 1;
            if name == "PSYNC" {
                return true;
            }
            let reply: &[u8] = if name == "PING" {
                b"+PONG\r\n"
            } else {
                b"+OK\r\n"
            };
            s.write_all(reply).unwrap();
        }
    }
}

/// `+FULLRESYNC` with a made-up id at offset 0, then the start of a diskless
/// transfer ending with `mark`.
pub fn fullresync_header(mark: &str) -> Vec<u8> {
    format!("+FULLRESYNC {} 0\r\n$EOF:{mark}\r\n", "a".repeat(40)).into_bytes()
}
