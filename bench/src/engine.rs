//! The load engine: `--threads` event-loop threads, each driving its share of the
//! `-c` connections with mio, closed-loop like redis-benchmark: a connection sends
//! a batch of `-P` requests, waits for all replies, then sends the next batch.
//!
//! ```text
//!   main thread ── progress every 250 ms (reads the shared counters)
//!        │ spawns
//!   ┌────┴─────┐         ┌──────────┐
//!   │ thread 0 │  ...    │ thread T │   each: one mio Poll, its connections,
//!   └────┬─────┘         └────┬─────┘   its own histograms (merged at the end)
//!        │ claims batches from one shared atomic counter (exactly -n requests)
//!        ▼
//!     server
//! ```
//!
//! A batch's latency is measured from just before its first write to the read
//! that completed each reply, the same points redis-benchmark uses.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream as StdTcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use shardis_base::reply::{scan, ReplyKind};

/// Produces the requests of one workload; one per connection.
pub trait Generator: Send {
    /// Appends `count` requests to `out`, numbered from `first` in the run's
    /// global request order, and pushes each one's reporting class to `classes`.
    fn fill(&mut self, first: u64, count: usize, out: &mut Vec<u8>, classes: &mut Vec<u8>);
}

/// A workload: the classes it reports separately and a generator per connection.
pub trait Workload: Sync {
    /// Names of the request classes, indexed by the class byte `fill` pushes.
    fn classes(&self) -> Vec<String>;
    /// A generator for connection number `conn`.
    fn generator(&self, conn: usize) -> Box<dyn Generator>;
}

/// Where to connect and how hard to push.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Parallel connections.
    pub clients: usize,
    /// Total requests to complete.
    pub requests: u64,
    /// Requests sent per batch on one connection.
    pub pipeline: usize,
    /// Event-loop threads.
    pub threads: usize,
}

/// What one run measured.
pub struct RunResult {
    /// Wall time from the first send to the last reply.
    pub elapsed: Duration,
    /// Latency in nanoseconds, one histogram per workload class.
    pub hists: Vec<Histogram<u64>>,
    /// Error replies received (they count as completed requests).
    pub errors: u64,
    /// The text of the first error reply, if any.
    pub first_error: Option<String>,
}

impl RunResult {
    /// All classes merged into one histogram.
    pub fn total(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for h in &self.hists {
            all.add(h).expect("histograms share bounds");
        }
        all
    }
}

/// Counters shared by the worker threads and read by the progress printer.
#[derive(Default)]
pub struct Shared {
    issued: AtomicU64,
    /// Completed requests so far.
    pub finished: AtomicU64,
    /// Sum of completed requests' latencies in nanoseconds.
    pub latency_ns: AtomicU64,
    threads_done: AtomicUsize,
}

/// A histogram from 1 ns to 60 s with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Connects every client, then runs the workload to completion. `progress` is
/// called about every 250 ms from the calling thread while the run lasts.
pub fn run(
    cfg: &LoadConfig,
    workload: &dyn Workload,
    mut progress: impl FnMut(&Shared, Duration),
) -> io::Result<RunResult> {
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "host has no address"))?;
    let threads = cfg.threads.clamp(1, cfg.clients.max(1));
    let nclasses = workload.classes().len();

    // Connect up front (blocking) so connection set-up is not timed and a dead
    // server is reported before any thread starts.
    let mut per_thread: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..cfg.clients {
        let s = StdTcpStream::connect(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("Could not connect to {}:{}: {e}", cfg.host, cfg.port),
            )
        })?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        per_thread[i % threads].push(Conn::new(TcpStream::from_std(s), workload.generator(i)));
    }

    let shared = Shared::default();
    let start = Instant::now();
    let results: Vec<io::Result<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .map(|conns| {
                let shared = &shared;
                scope.spawn(move || {
                    // Counted on drop, so a panicking worker still ends the wait below.
                    let _done = DoneGuard(&shared.threads_done);
                    drive(conns, cfg, nclasses, shared)
                })
            })
            .collect();
        // Check often so a short run is not padded to the next 250 ms tick.
        let mut last = Instant::now();
        while shared.threads_done.load(Ordering::Acquire) < threads {
            std::thread::sleep(Duration::from_millis(5));
            if last.elapsed() >= Duration::from_millis(250) {
                last = Instant::now();
                progress(&shared, start.elapsed());
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect()
    });

    let mut out = RunResult {
        elapsed: Duration::ZERO,
        hists: (0..nclasses).map(|_| new_histogram()).collect(),
        errors: 0,
        first_error: None,
    };
    for r in results {
        let r = r?;
        // The run ends when the last thread saw its last reply.
        out.elapsed = out.elapsed.max(r.end.duration_since(start));
        for (acc, h) in out.hists.iter_mut().zip(&r.hists) {
            acc.add(h).expect("histograms share bounds");
        }
        out.errors += r.errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
    }
    Ok(out)
}

/// Marks a worker as finished when dropped, panicking or not.
struct DoneGuard<'a>(&'a AtomicUsize);

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

struct ThreadResult {
    end: Instant,
    hists: Vec<Histogram<u64>>,
    errors: u64,
    first_error: Option<String>,
}

/// One client connection's state.
struct Conn {
    stream: TcpStream,
    generator: Box<dyn Generator>,
    out: Vec<u8>,
    written: usize,
    /// Reply bytes: `consumed..filled` is read but not yet parsed.
    inbuf: Vec<u8>,
    consumed: usize,
    filled: usize,
    classes: Vec<u8>,
    replied: usize,
    start: Instant,
    done: bool,
}

impl Conn {
    fn new(stream: TcpStream, generator: Box<dyn Generator>) -> Conn {
        Conn {
            stream,
            generator,
            out: Vec::with_capacity(4096),
            written: 0,
            inbuf: vec![0; 16 * 1024],
            consumed: 0,
            filled: 0,
            classes: Vec::new(),
            replied: 0,
            start: Instant::now(),
            done: false,
        }
    }

    /// Claims the next batch and sends it; returns false when the run has no
    /// requests left for this connection.
    fn start_batch(&mut self, cfg: &LoadConfig, shared: &Shared) -> io::Result<bool> {
        let p = cfg.pipeline as u64;
        let first = shared.issued.fetch_add(p, Ordering::Relaxed);
        if first >= cfg.requests {
            return Ok(false);
        }
        let count = p.min(cfg.requests - first) as usize;
        self.out.clear();
        self.classes.clear();
        self.written = 0;
        self.replied = 0;
        self.generator
            .fill(first, count, &mut self.out, &mut self.classes);
        debug_assert_eq!(self.classes.len(), count);
        self.start = Instant::now();
        self.flush()?;
        Ok(true)
    }

    /// Writes as much of the batch as the socket takes.
    fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "server closed")),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads everything available into `inbuf[filled..]`; returns false if
    /// nothing was read. The buffer is zeroed once and reused, not per read.
    fn fill_inbuf(&mut self) -> io::Result<bool> {
        if self.consumed == self.filled {
            (self.consumed, self.filled) = (0, 0);
        }
        let mut any = false;
        loop {
            if self.filled == self.inbuf.len() {
                // Full: move the unparsed tail to the front, or grow.
                if self.consumed > 0 {
                    self.inbuf.copy_within(self.consumed..self.filled, 0);
                    self.filled -= self.consumed;
                    self.consumed = 0;
                } else {
                    self.inbuf.resize(self.inbuf.len() * 2, 0);
                }
            }
            let room = self.inbuf.len() - self.filled;
            match self.stream.read(&mut self.inbuf[self.filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "Server closed the connection",
                    ))
                }
                Ok(n) => {
                    self.filled += n;
                    any = true;
                    // A short read means the socket is drained; skipping the
                    // read that would return WouldBlock saves a syscall, and the
                    // next arriving byte raises a new edge.
                    if n < room {
                        return Ok(true);
                    }
                }
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => return Ok(any),
                    ErrorKind::Interrupted => {}
                    _ => return Err(e),
                },
            }
        }
    }
}

/// One worker thread: an event loop over its connections until none has work.
fn drive(
    mut conns: Vec<Conn>,
    cfg: &LoadConfig,
    nclasses: usize,
    shared: &Shared,
) -> io::Result<ThreadResult> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut res = ThreadResult {
        end: Instant::now(),
        hists: (0..nclasses).map(|_| new_histogram()).collect(),
        errors: 0,
        first_error: None,
    };
    let mut active = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        poll.registry().register(
            &mut c.stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        if c.start_batch(cfg, shared)? {
            active += 1;
        } else {
            c.done = true;
        }
    }
    while active > 0 {
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.done {
                continue;
            }
            if ev.is_writable() {
                c.flush()?;
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            if !c.fill_inbuf()? {
                continue;
            }
            let now = Instant::now();
            let lat = now.duration_since(c.start).as_nanos() as u64;
            let mut got = 0u64;
            while c.replied < c.classes.len() {
                let Some((len, kind)) = scan(&c.inbuf[c.consumed..c.filled])
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e.to_string()))?
                else {
                    break;
                };
                if kind == ReplyKind::Error {
                    res.errors += 1;
                    if res.first_error.is_none() {
                        let line = &c.inbuf[c.consumed + 1..c.consumed + len - 2];
                        res.first_error = Some(String::from_utf8_lossy(line).into_owned());
                    }
                }
                c.consumed += len;
                res.hists[c.classes[c.replied] as usize].saturating_record(lat);
                c.replied += 1;
                got += 1;
            }
            if c.consumed < c.filled && c.replied == c.classes.len() {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "server sent more replies than requests",
                ));
            }
            shared.finished.fetch_add(got, Ordering::Relaxed);
            shared.latency_ns.fetch_add(got * lat, Ordering::Relaxed);
            if c.replied == c.classes.len() && !c.start_batch(cfg, shared)? {
                c.done = true;
                active -= 1;
                poll.registry().deregister(&mut c.stream)?;
            }
        }
    }
    res.end = Instant::now();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardis_base::reply::scan;
    use std::net::TcpListener;

    /// A stand-in server in this process: answers each request (a RESP array
    /// or an inline line) with `+OK`, or `-ERR` when the request mentions
    /// "fail". Returns its port and a counter of requests served.
    fn fake_server() -> (u16, std::sync::Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = std::sync::Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let n = match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        let mut out = Vec::new();
                        while let Ok(Some((len, _))) = scan(&buf) {
                            let req = buf.drain(..len).collect::<Vec<u8>>();
                            let fail = memchr::memmem::find(&req, b"fail").is_some();
                            out.extend_from_slice(if fail {
                                b"-ERR failed\r\n"
                            } else {
                                b"+OK\r\n"
                            });
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, served)
    }

    /// Requests `PING` (class 0) and `ECHO fail` (class 1) alternately by
    /// global request number.
    struct Alternating;

    impl Workload for Alternating {
        fn classes(&self) -> Vec<String> {
            vec!["ok".into(), "err".into()]
        }
        fn generator(&self, _conn: usize) -> Box<dyn Generator> {
            Box::new(AlternatingGen)
        }
    }

    struct AlternatingGen;

    impl Generator for AlternatingGen {
        fn fill(&mut self, first: u64, count: usize, out: &mut Vec<u8>, classes: &mut Vec<u8>) {
            for i in first..first + count as u64 {
                if i % 2 == 0 {
                    out.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
                    classes.push(0);
                } else {
                    out.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$4\r\nfail\r\n");
                    classes.push(1);
                }
            }
        }
    }

    #[test]
    fn sends_exactly_n_requests_and_counts_classes() {
        let (port, served) = fake_server();
        for (clients, pipeline, threads, requests) in
            [(1, 1, 1, 10), (7, 16, 2, 1001), (3, 5, 4, 2)]
        {
            served.store(0, Ordering::Relaxed);
            let cfg = LoadConfig {
                host: "127.0.0.1".into(),
                port,
                clients,
                requests,
                pipeline,
                threads,
            };
            let r = run(&cfg, &Alternating, |_, _| {}).unwrap();
            let (ok, err) = (r.hists[0].len(), r.hists[1].len());
            assert_eq!(ok + err, requests, "{cfg:?}");
            // Request numbers are claimed globally, so the split is exact.
            assert_eq!(ok, requests.div_ceil(2), "{cfg:?}");
            assert_eq!(r.errors, err);
            assert_eq!(r.first_error.as_deref(), Some("ERR failed"));
            assert_eq!(r.total().len(), requests);
            assert!(r.elapsed > Duration::ZERO);
            assert_eq!(served.load(Ordering::Relaxed), requests);
        }
    }

    #[test]
    fn refused_connection_is_an_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = LoadConfig {
            host: "127.0.0.1".into(),
            port,
            clients: 1,
            requests: 1,
            pipeline: 1,
            threads: 1,
        };
        let err = run(&cfg, &Alternating, |_, _| {}).err().unwrap();
        assert!(err.to_string().contains("Could not connect"), "{err}");
    }
}
