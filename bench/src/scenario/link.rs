//! Pieces the replication scenarios share: a small blocking RESP client, a
//! background SET load (paced or flat out), INFO replication parsing and
//! memory readings of a server's process tree from `/proc`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::keys::{benchmark_data, encode_command, push_key};
use shardis_base::reply::{ReplyKind, Scanner};

/// A blocking connection that sends one command at a time.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
}

/// A reply, reduced to what the scenarios read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A bulk string or a status line.
    Bytes(Vec<u8>),
    /// An integer reply.
    Int(i64),
    /// A null bulk string (missing key).
    Nil,
    /// An error reply's text.
    Error(String),
    /// An aggregate (the scenarios do not look inside).
    Other,
}

impl Client {
    /// Connects with TCP_NODELAY and a 30 s read timeout.
    pub fn connect(host: &str, port: u16) -> io::Result<Client> {
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "host has no address"))?;
        let stream = TcpStream::connect(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("Could not connect to {host}:{port}: {e}"))
        })?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            stream,
            buf: Vec::with_capacity(4096),
            out: Vec::with_capacity(256),
        })
    }

    /// Sends one command and waits for its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.out.clear();
        encode_command(args, &mut self.out);
        self.stream.write_all(&self.out)?;
        let (len, kind) = self.read_one()?;
        let reply = decode(&self.buf[..len], kind);
        self.buf.drain(..len);
        Ok(reply)
    }

    /// Sends raw, already encoded requests without reading replies.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads and discards `n` replies; returns how many were errors.
    pub fn skip_replies(&mut self, n: usize) -> io::Result<usize> {
        let mut errors = 0;
        for _ in 0..n {
            let (len, kind) = self.read_one()?;
            if kind == ReplyKind::Error {
                errors += 1;
            }
            self.buf.drain(..len);
        }
        Ok(errors)
    }

    /// `INFO <section>` as text.
    pub fn info(&mut self, section: &str) -> io::Result<String> {
        match self.cmd(&[b"INFO", section.as_bytes()])? {
            Reply::Bytes(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(io::Error::other(format!("INFO {section}: {other:?}"))),
        }
    }

    fn read_one(&mut self) -> io::Result<(usize, ReplyKind)> {
        let mut chunk = [0u8; 16 * 1024];
        let mut scanner = Scanner::new();
        loop {
            match scanner.scan(&self.buf) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e.to_string())),
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "Server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn decode(reply: &[u8], kind: ReplyKind) -> Reply {
    let line_end = memchr::memchr(b'\r', reply).unwrap_or(reply.len());
    let line = &reply[1..line_end];
    match reply[0] {
        _ if kind == ReplyKind::Error => Reply::Error(String::from_utf8_lossy(line).into_owned()),
        b'+' => Reply::Bytes(line.to_vec()),
        b':' => Reply::Int(
            std::str::from_utf8(line)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        ),
        b'$' if line == b"-1" => Reply::Nil,
        b'$' => Reply::Bytes(reply[line_end + 2..reply.len() - 2].to_vec()),
        b'_' => Reply::Nil,
        _ => Reply::Other,
    }
}

/// `field:value` from an INFO text.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// A replica as the master's INFO replication lists it
/// (`slave0:ip=127.0.0.1,port=6380,state=online,offset=123,lag=0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLine {
    /// Listening port the replica announced.
    pub port: u16,
    /// `wait_bgsave`, `send_bulk`, `online`, ...
    pub state: String,
    /// Replication offset the replica last acknowledged.
    pub offset: u64,
}

/// The master's `master_repl_offset` and its replica lines.
pub fn parse_master_info(info: &str) -> (Option<u64>, Vec<ReplicaLine>) {
    let offset = info_field(info, "master_repl_offset").and_then(|v| v.parse().ok());
    let mut replicas = Vec::new();
    for line in info.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if !name.starts_with("slave") || !name[5..].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut r = ReplicaLine {
            port: 0,
            state: String::new(),
            offset: 0,
        };
        for kv in rest.trim().split(',') {
            match kv.split_once('=') {
                Some(("port", v)) => r.port = v.parse().unwrap_or(0),
                Some(("state", v)) => r.state = v.to_string(),
                Some(("offset", v)) => r.offset = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        replicas.push(r);
    }
    (offset, replicas)
}

/// Resident and proportional memory of a process and all its descendants, in
/// bytes. RSS counts pages shared with a fork child twice; PSS splits them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeMem {
    /// Sum of VmRSS over the tree.
    pub rss: u64,
    /// Sum of Pss (from smaps_rollup) over the tree; 0 where unreadable.
    pub pss: u64,
    /// Processes counted.
    pub procs: usize,
}

/// Reads [`TreeMem`] of `pid` and its descendants (Redis forks for BGSAVE, so
/// the child's memory belongs to the master's cost). `with_pss` also reads
/// smaps_rollup, which walks the page tables and costs more.
pub fn tree_mem(pid: u32, with_pss: bool) -> io::Result<TreeMem> {
    let mut tree = vec![pid];
    // Parent links of every process, then a walk down from `pid`.
    let mut links = Vec::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(ppid) = stat_ppid(&stat) {
                links.push((p, ppid));
            }
        }
    }
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(links.iter().filter(|l| l.1 == parent).map(|l| l.0));
        i += 1;
    }
    let mut mem = TreeMem::default();
    for (n, p) in tree.iter().enumerate() {
        let status = match std::fs::read_to_string(format!("/proc/{p}/status")) {
            Ok(s) => s,
            // The master itself must be there; a child may exit meanwhile.
            Err(e) if n == 0 => return Err(e),
            Err(_) => continue,
        };
        mem.rss += kb_field(&status, "VmRSS:").unwrap_or(0) * 1024;
        if with_pss {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
                mem.pss += kb_field(&s, "Pss:").unwrap_or(0) * 1024;
            }
        }
        mem.procs += 1;
    }
    Ok(mem)
}

/// The parent pid from `/proc/PID/stat` (field 4, after the `)` closing comm).
fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A background SET load: `writers` connections, each sending batches of
/// `pipeline` SETs to random `key:<12 digits>` keys below `keys`, at `rate`
/// requests per second in total (0: as fast as the server answers).
pub struct WriteLoad {
    stop: std::sync::Arc<AtomicBool>,
    done: std::sync::Arc<AtomicU64>,
    errors: std::sync::Arc<AtomicU64>,
    handles: Vec<JoinHandle<io::Result<()>>>,
    start: Instant,
}

/// How a [`WriteLoad`] writes.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connections, one thread each.
    pub writers: usize,
    /// SETs per batch.
    pub pipeline: usize,
    /// Total SETs per second, 0 for no limit.
    pub rate: u64,
    /// Keys are chosen uniformly below this.
    pub keys: u64,
    /// Value size in bytes.
    pub datasize: usize,
}

/// What a finished [`WriteLoad`] did.
#[derive(Debug, Clone, Copy)]
pub struct WriteTotals {
    /// SETs acknowledged.
    pub done: u64,
    /// Error replies among them.
    pub errors: u64,
    /// Wall time from start to stop.
    pub elapsed: Duration,
}

impl WriteLoad {
    /// Connects every writer, then starts them.
    pub fn start(spec: &WriteSpec) -> io::Result<WriteLoad> {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        use std::sync::Arc;

        let writers = spec.writers.max(1);
        let pipeline = spec.pipeline.max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for _ in 0..writers {
            clients.push(Client::connect(&spec.host, spec.port)?);
        }
        let start = Instant::now();
        let value = benchmark_data(spec.datasize);
        // Each writer's share of the rate, as the time one batch may take.
        let batch_every = (spec.rate > 0)
            .then(|| Duration::from_secs_f64(pipeline as f64 * writers as f64 / spec.rate as f64));
        let handles = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let (stop, done, errors) = (stop.clone(), done.clone(), errors.clone());
                let value = value.clone();
                let keys = spec.keys.max(1);
                std::thread::spawn(move || -> io::Result<()> {
                    let mut rng = SmallRng::seed_from_u64(0xfa57 ^ i as u64);
                    let mut out = Vec::with_capacity(pipeline * 64);
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        out.clear();
                        for _ in 0..pipeline {
                            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
                            push_key(&mut out, b"key:", rng.gen_range(0..keys));
                            out.extend_from_slice(format!("\r\n${}\r\n", value.len()).as_bytes());
                            out.extend_from_slice(&value);
                            out.extend_from_slice(b"\r\n");
                        }
                        c.send_raw(&out)?;
                        let e = c.skip_replies(pipeline)?;
                        done.fetch_add(pipeline as u64, Ordering::Relaxed);
                        errors.fetch_add(e as u64, Ordering::Relaxed);
                        if let Some(every) = batch_every {
                            next += every;
                            let now = Instant::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            } else if now - next > Duration::from_secs(1) {
                                // Far behind: do not burst to catch up.
                                next = now;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        Ok(WriteLoad {
            stop,
            done,
            errors,
            handles,
            start,
        })
    }

    /// SETs acknowledged so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the writers and returns their totals, or the first writer error.
    pub fn stop(self) -> io::Result<WriteTotals> {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        for h in self.handles {
            h.join()
                .map_err(|_| io::Error::other("writer thread panicked"))??;
        }
        Ok(WriteTotals {
            done: self.done.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            elapsed,
        })
    }
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_info_lines() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7001,state=online,offset=1234,lag=0\r\n\
            slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=1\r\n\
            master_failover_state:no-failover\r\nmaster_repl_offset:2000\r\n";
        let (off, r) = parse_master_info(info);
        assert_eq!(off, Some(2000));
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].port, r[0].state.as_str(), r[0].offset),
            (7001, "online", 1234)
        );
        assert_eq!(
            (r[1].port, r[1].state.as_str(), r[1].offset),
            (7002, "wait_bgsave", 0)
        );
        assert_eq!(info_field(info, "role"), Some("master"));
        assert_eq!(info_field(info, "connected_slaves"), Some("2"));
        assert_eq!(info_field(info, "connected"), None);
    }

    #[test]
    fn decode_replies() {
        assert_eq!(
            decode(b"+OK\r\n", ReplyKind::Value),
            Reply::Bytes(b"OK".to_vec())
        );
        assert_eq!(
            decode(b"$3\r\nabc\r\n", ReplyKind::Value),
            Reply::Bytes(b"abc".to_vec())
        );
        assert_eq!(decode(b"$-1\r\n", ReplyKind::Value), Reply::Nil);
        assert_eq!(decode(b":42\r\n", ReplyKind::Value), Reply::Int(42));
        assert_eq!(
            decode(b"-ERR x\r\n", ReplyKind::Error),
            Reply::Error("ERR x".into())
        );
    }

    #[test]
    fn ppid_after_comm_with_spaces() {
        assert_eq!(stat_ppid("42 (redis (rdb) x) S 7 42 42 0"), Some(7));
        assert_eq!(
            kb_field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"),
            Some(1234)
        );
    }

    #[test]
    fn own_process_tree_has_memory() {
        let m = tree_mem(std::process::id(), true).unwrap();
        assert!(m.rss > 0 && m.procs >= 1);
    }
}
