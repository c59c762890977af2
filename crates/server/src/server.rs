//! Process start-up: one glommio executor per core, each owning a shard and
//! accepting on the shared port, pinned to a CPU when `server_cpulist` lists
//! them ([`executor_cpus`]); plus signals and shutdown.
//!
//! ```text
//!  main thread ── spawns ──► executor 0 … executor N-1   (Placement::Fixed(cpu) or Unbound)
//!       │                      │ mesh.join() → Shard, drain loops, listeners, cron
//!       │◄── ready/err ────────┘
//!       └── signal thread: SIGTERM/SIGINT → Shared::shutdown
//! ```

use crate::shard::{Job, Shard};
use crate::shared::Shared;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use shardis_base::ShardId;
use shardis_keyspace::DbIndex;

/// glommio's registered-buffer pool per executor: its minimum.
const IO_MEMORY: usize = 64 << 10;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Capacity of each mesh channel. Large, because a full channel makes the
/// sender wait, and the receivers never wait on anything but the channel.
const MESH_CAPACITY: usize = 4096;

/// How many executors to start and, with `server_cpulist`, the CPU each is
/// pinned to (executor i on the i-th listed CPU).
///
/// Without `server_cpulist` the executors are not pinned, as Redis's threads
/// are not: on a machine shared with clients or other servers (a master and its
/// replicas on one host, every benchmark), pinning put every process's
/// executor 0 on the same CPU while another sat idle, and a replica could not
/// keep up with its master (docs/benchmarks.md). Pin where cores are dedicated.
pub fn executor_cpus(
    cfg: &shardis_config::Config,
    mask: &[usize],
) -> Result<(usize, Option<Vec<usize>>), String> {
    if cfg.server_cpulist.is_empty() {
        return Ok((cfg.threads.unwrap_or(mask.len()).max(1), None));
    }
    let listed = shardis_config::parse_cpulist(&cfg.server_cpulist)?;
    if let Some(&cpu) = listed.iter().find(|c| !mask.contains(c)) {
        return Err(format!(
            "server_cpulist names CPU {cpu}, which this process may not run on (its affinity mask has {} CPUs: {:?})",
            mask.len(),
            mask
        ));
    }
    let threads = cfg.threads.unwrap_or(listed.len()).max(1);
    if threads > listed.len() {
        return Err(format!(
            "threads {threads} needs as many CPUs in server_cpulist, which lists {}: one executor is pinned per CPU",
            listed.len()
        ));
    }
    Ok((threads, Some(listed[..threads].to_vec())))
}

/// The CPUs this process may run on (its affinity mask).
pub fn affinity_cpus() -> Vec<usize> {
    #[allow(unsafe_code)]
    // SAFETY: sched_getaffinity fills the cpu_set_t we own.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        set
    };
    #[allow(unsafe_code)]
    // SAFETY: CPU_ISSET reads the set we own.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// Starts shutdown: every executor notices within one cron tick.
pub fn begin_shutdown(shared: &Shared) {
    shared.shutdown.store(true, Ordering::SeqCst);
}

/// SHUTDOWN or SIGTERM/SIGINT: shard 0's cron carries it out
/// ([`shutdown_step`]), first waiting for lagging replicas unless `now`.
pub fn request_shutdown(shared: &Shared, now: bool) {
    if now {
        shared.shutdown_now.store(true, Ordering::SeqCst);
    }
    shared.shutdown_requested.store(true, Ordering::SeqCst);
}

/// SHUTDOWN ABORT: true if a shutdown was waiting for its replicas and is
/// now called off (writes resume).
pub fn abort_shutdown(shared: &Shared) -> bool {
    if !shared.shutdown_requested.load(Ordering::SeqCst) || shared.shutting_down() {
        return false;
    }
    shared.shutdown_requested.store(false, Ordering::SeqCst);
    shared.shutdown_now.store(false, Ordering::SeqCst);
    shared.shutdown_deadline_ms.store(0, Ordering::SeqCst);
    crate::log!(Warning, "Shutdown manually aborted.");
    true
}

/// Redis's `prepareForShutdown` and the cron's check of a pending one, on
/// shard 0: with replicas lagging (and neither NOW nor `shutdown-timeout 0`)
/// writes are paused, the replicas asked for their offsets, and the
/// shutdown waits until they all acknowledged the stream or the timeout
/// passed; then the replicas' state is logged and the shutdown begins.
fn shutdown_step(shard: &Rc<Shard>) {
    let shared = &shard.shared;
    let deadline = shared.shutdown_deadline_ms.load(Ordering::SeqCst);
    let now_ms = crate::shared::unix_ms();
    if deadline == 0 {
        let timeout: u64 = shared
            .config()
            .value_of("shutdown-timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let now = shared.shutdown_now.load(Ordering::SeqCst);
        if !now && timeout != 0 && !crate::repl::replicas_caught_up(shard) {
            shared
                .shutdown_deadline_ms
                .store(now_ms + timeout * 1000, Ordering::SeqCst);
            crate::repl::ask_acks(shard);
            crate::log!(Notice, "Waiting for replicas before shutting down.");
            return;
        }
    } else if now_ms < deadline && !crate::repl::replicas_caught_up(shard) {
        return;
    }
    crate::repl::log_replicas_at_shutdown(shard);
    begin_shutdown(shared);
}

/// Raises RLIMIT_MEMLOCK as far as allowed; io_uring needs locked memory.
fn raise_memlock() {
    #[allow(unsafe_code)]
    // SAFETY: plain rlimit syscalls on structs we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) == 0 && r.rlim_cur != libc::RLIM_INFINITY {
            let want = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) != 0 {
                r.rlim_cur = r.rlim_max;
                libc::setrlimit(libc::RLIMIT_MEMLOCK, &r);
            }
        }
    }
}

/// The addresses to listen on, from `bind` (a `-` prefix marks an optional one).
fn listen_addrs(bind: &[String], port: u16) -> Vec<(SocketAddr, bool)> {
    let mut out = Vec::new();
    for b in bind {
        let (optional, host) = match b.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, b.as_str()),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let spec = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match spec.to_socket_addrs() {
            Ok(mut addrs) => {
                if let Some(a) = addrs.next() {
                    out.push((a, optional));
                }
            }
            Err(_) => out.push(((std::net::Ipv4Addr::UNSPECIFIED, port).into(), optional)),
        }
    }
    out
}

/// A listening socket with SO_REUSEADDR (restart while old connections sit in
/// TIME_WAIT, as Redis allows) and SO_REUSEPORT (one listener per executor),
/// with `tcp-backlog`.
fn bind_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    use std::os::fd::FromRawFd;
    let domain = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    #[allow(unsafe_code)]
    // SAFETY: plain socket syscalls on an fd we own until it is handed to TcpListener.
    unsafe {
        let fd = libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fail = |fd| {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let p = &one as *const libc::c_int as *const libc::c_void;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, p, len) != 0
            || libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, p, len) != 0
        {
            return fail(fd);
        }
        if addr.is_ipv6() {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, p, len);
        }
        let rc = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                libc::bind(
                    fd,
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin) as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                libc::bind(
                    fd,
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin6) as libc::socklen_t,
                )
            }
        };
        if rc != 0 || libc::listen(fd, backlog.max(1) as libc::c_int) != 0 {
            return fail(fd);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
}

/// Refuses to start when another process already listens on the port: with
/// SO_REUSEPORT a second server would silently split clients and keys with it.
/// A plain (non-reuseport) bind fails if anyone holds the port. For port 0 the
/// kernel picks a free port, which the executors then bind.
///
/// A listener of a process that has just exited can hold the port a little
/// longer: its io_uring instance is torn down by the kernel after the exit.
/// A restart right after a kill would then fail, so a port in use is tried
/// again for up to three seconds unless a server answers on it.
fn claim_port(addr: SocketAddr) -> std::io::Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(probe) => return probe.local_addr().map(|a| a.port()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let mut target = addr;
                if target.ip().is_unspecified() {
                    target.set_ip(match addr {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                if answers_ping(target) || Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// True if a server on `addr` answers an inline PING. A socket still
/// listening for an exited process completes the TCP handshake in the kernel,
/// but nothing ever reads from it.
fn answers_ping(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut byte = [0u8; 1];
    s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut byte), Ok(1))
}

/// Runs the server until shutdown. Returns the exit code.
pub fn run(shared_cfg: shardis_config::Config, config_file: Option<String>) -> i32 {
    raise_memlock();
    let (threads, pinned) = match executor_cpus(&shared_cfg, &affinity_cpus()) {
        Ok(placement) => placement,
        Err(e) => {
            crate::log!(Warning, "{}", e);
            return 1;
        }
    };
    let addrs = listen_addrs(&shared_cfg.bind, shared_cfg.port);
    let Some(&(first, _)) = addrs.first() else {
        crate::log!(
            Warning,
            "Failed listening on port {} (TCP), aborting.",
            shared_cfg.port
        );
        return 1;
    };
    let port = match claim_port(first) {
        Ok(p) => p,
        Err(e) => {
            crate::log!(
                Warning,
                "Warning: Could not create server TCP listening socket {}: bind: {}",
                first,
                e
            );
            crate::log!(
                Warning,
                "Failed listening on port {} (TCP), aborting.",
                shared_cfg.port
            );
            return 1;
        }
    };
    let addrs: Vec<(SocketAddr, bool)> = addrs
        .into_iter()
        .map(|(mut a, o)| {
            a.set_port(port);
            (a, o)
        })
        .collect();
    let users = match crate::acl::startup_users(&shared_cfg) {
        Ok(u) => u,
        Err(e) => {
            for line in e.lines() {
                crate::log!(Warning, "{}", line);
            }
            return 1;
        }
    };
    let shared = Arc::new(Shared::new(shared_cfg, config_file, threads));
    shared.acl.update(|u| *u = users);
    shared.port.store(port as u64, Ordering::Relaxed);
    crate::log!(
        Notice,
        "Running mode=standalone, port={}, threads={}.",
        port,
        threads
    );

    let mesh: MeshBuilder<Job, _> = MeshBuilder::full(threads, MESH_CAPACITY);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (exit_tx, exit_rx) = mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::new();
    for i in 0..threads {
        let placement = match &pinned {
            Some(cpus) => Placement::Fixed(cpus[i]),
            None => Placement::Unbound,
        };
        let (shared, mesh, addrs, ready) = (
            shared.clone(),
            mesh.clone(),
            addrs.clone(),
            ready_tx.clone(),
        );
        // io_memory is glommio's pool for registered (DMA) file buffers; shardis
        // reads no file through it, and glommio falls back to the heap when the
        // pool is short. Its 10 MiB default per executor counted in used_memory.
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{i}"))
            .io_memory(IO_MEMORY);
        let spawned =
            builder.spawn(move || async move { shard_main(shared, mesh, addrs, ready).await });
        match spawned {
            Ok(h) => {
                // A joiner per executor: a failed start (io_uring blocked, memlock
                // too low) reaches the log with what to change, and exits are counted.
                let (ready, exited) = (ready_tx.clone(), exit_tx.clone());
                handles.push(std::thread::spawn(move || {
                    let r = h.join().map_err(|e| io_uring_hint(&e.to_string()));
                    if let Err(e) = &r {
                        let _ = ready.send(Err(format!("Executor {i} failed: {e}")));
                    }
                    let _ = exited.send(r);
                }));
            }
            Err(e) => {
                crate::log!(
                    Warning,
                    "Failed to start executor {}: {}",
                    i,
                    io_uring_hint(&e.to_string())
                );
                return 1;
            }
        }
    }
    drop(ready_tx);
    spawn_signal_thread(shared.clone());
    // Start-up must finish: an executor that never reports (a stuck io_uring
    // park, a mesh that never joins) must not leave a silent, half-started server.
    let startup_deadline = std::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..threads {
        let left = startup_deadline.saturating_duration_since(std::time::Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                crate::log!(
                    Warning,
                    "Executors did not finish starting within 60 seconds; aborting."
                );
                std::process::exit(1);
            }
            Ok(Err(e)) => {
                // Empty: the failure was logged where it happened.
                if !e.is_empty() {
                    crate::log!(Warning, "{}", e);
                }
                std::process::exit(1);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                crate::log!(Warning, "An executor failed during start-up; aborting.");
                std::process::exit(1);
            }
        }
    }
    shared.started_up.store(true, Ordering::SeqCst);
    if shared.config().replicaof.is_none() {
        crate::logging::set_role(b'M');
    }
    crate::log!(Warning, "Server initialized");
    crate::log!(Notice, "Ready to accept connections tcp");

    drop(exit_tx);
    let mut code = 0;
    for r in exit_rx.iter() {
        if let Err(e) = r {
            crate::log!(Warning, "Executor failed: {}", e);
            code = 1;
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if code == 0 {
        crate::log!(Warning, "shardis is now ready to exit, bye bye...");
    }
    code
}

/// Explains the two container settings io_uring needs when start-up fails.
pub fn io_uring_hint(err: &str) -> String {
    let lower = err.to_lowercase();
    if lower.contains("memlock") {
        format!("{err}. shardis needs locked memory for io_uring: raise the memlock limit (docker: `ulimits: {{memlock: -1}}`; systemd: `LimitMEMLOCK=infinity`).")
    } else if lower.contains("operation not permitted")
        || lower.contains("function not implemented")
        || lower.contains("permission denied")
    {
        format!("{err}. io_uring syscalls are blocked: in Docker add `security_opt: [seccomp=unconfined]` (or a seccomp profile that allows io_uring_setup, io_uring_enter and io_uring_register).")
    } else {
        err.to_string()
    }
}

async fn shard_main(
    shared: Arc<Shared>,
    mesh: MeshBuilder<Job, glommio::channels::channel_mesh::Full>,
    addrs: Vec<(SocketAddr, bool)>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    // A ticking timer bounds any lost wake-up in the runtime while the mesh is
    // joined (design.md §5: a parked executor can miss a cross-core message);
    // without it a start-up could hang with nothing left to wake the executor.
    // Once joined, the cron below ticks instead: an idle server wakes `hz`
    // times a second per executor, as Redis's serverCron does, not 100.
    let joined = Rc::new(std::cell::Cell::new(false));
    let ticking = joined.clone();
    glommio::spawn_local(async move {
        while !ticking.get() {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    })
    .detach();
    let joined_mesh = mesh.join().await;
    joined.set(true);
    let (senders, mut receivers) = match joined_mesh {
        Ok(p) => p,
        Err(_) => {
            let _ = ready.send(Err("Failed to join the executor mesh".into()));
            return;
        }
    };
    let id = senders.peer_id();
    let shard = Rc::new_cyclic(|me| Shard::new(ShardId(id), shared.clone(), senders, me.clone()));
    for (_, rx) in receivers.streams() {
        let s = shard.clone();
        glommio::spawn_local(async move {
            while let Some(job) = rx.recv().await {
                job(&s);
            }
        })
        .detach();
    }
    if id != 0 {
        glommio::spawn_local(crate::repl::shipper(shard.clone())).detach();
    }
    // A replica from the config file is one before any client connects:
    // writes get READONLY and, with replica-serve-stale-data no, reads get
    // MASTERDOWN from the first command (the link task starts below).
    if shared.config().replicaof.is_some() {
        shard.store.replica.set(true);
        shared.master_link_down.store(true, Ordering::Relaxed);
    }
    // Shard 0 loads the dump file before anyone accepts clients.
    if id == 0 {
        crate::alloc::mark_startup();
        // With appendonly the AOF is the data set and the dump file is not
        // read, as in Redis.
        let loaded = if shared.config().appendonly {
            match crate::aof::load_at_startup(&shard).await {
                Ok(m) => crate::aof::start(&shard, m).await,
                Err(e) => Err(e),
            }
        } else {
            crate::persist::load_at_startup(&shard).await
        };
        if let Err(e) = loaded {
            let _ = ready.send(Err(e));
            return;
        }
        glommio::spawn_local(crate::repl::pump(shard.clone())).detach();
        // The master link is recorded before any executor accepts, so the
        // first INFO already reads `role:slave` (Sentinel and tests do).
        let replicaof = shared.config().replicaof.clone();
        if let Some((host, port)) = replicaof {
            crate::replica::replicaof(shard.clone(), host, port, None).await;
        }
        shared.loaded.store(true, Ordering::SeqCst);
    } else {
        while !shared.loaded.load(Ordering::SeqCst) {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut listeners = Vec::new();
    let backlog = shared.config().tcp_backlog;
    for (addr, optional) in &addrs {
        match bind_listener(*addr, backlog) {
            Ok(l) => listeners.push(l),
            Err(e) if *optional => {
                crate::log!(Verbose, "Skipping optional bind {}: {}", addr, e);
            }
            Err(e) => {
                let _ = ready.send(Err(format!(
                    "Warning: Could not create server TCP listening socket {addr}: bind: {e}\nFailed listening on port {} (TCP), aborting.",
                    addr.port()
                )));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    for l in listeners {
        let s = shard.clone();
        glommio::spawn_local(async move {
            loop {
                match l.accept().await {
                    Ok(stream) => {
                        glommio::spawn_local(crate::conn::serve(s.clone(), stream)).detach();
                    }
                    Err(e) => {
                        if s.shared.shutting_down() {
                            break;
                        }
                        crate::log!(Warning, "Accepting client connection: {}", e);
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    cron(shard).await;
}

/// The per-shard periodic task (Redis's serverCron, `hz` times a second):
/// active expiry, maxmemory eviction, idle clients and shutdown checks.
async fn cron(shard: Rc<Shard>) {
    let mut sampled = Instant::now();
    let mut swept = Instant::now();
    loop {
        let hz = shard.shared.config().hz.clamp(1, 500);
        glommio::timer::sleep(Duration::from_millis(1000 / hz)).await;
        if shard.shared.exiting.load(Ordering::SeqCst) {
            return;
        }
        if shard.id == crate::shard::HOME_SHARD
            && shard.shared.shutdown_requested.load(Ordering::SeqCst)
            && !shard.shared.shutting_down()
        {
            shutdown_step(&shard);
        }
        if shard.shared.shutting_down() {
            // Shard 0 does the final save while the other shards keep serving it.
            if shard.id == crate::shard::HOME_SHARD {
                final_save(&shard).await;
                shard.shared.exiting.store(true, Ordering::SeqCst);
                return;
            }
            continue;
        }
        if shard.id == crate::shard::HOME_SHARD && !shard.store.replica.get() {
            crate::persist::check_save_points(&shard);
        }
        if shard.id == crate::shard::HOME_SHARD && sampled.elapsed() >= Duration::from_millis(100) {
            sampled = Instant::now();
            sample_instantaneous(&shard.shared, sampled);
        }
        // MIGRATE's idle connections (Redis: once a second from serverCron).
        if shard.id == crate::shard::HOME_SHARD && swept.elapsed() >= Duration::from_secs(1) {
            swept = Instant::now();
            shard
                .shared
                .migrate_sockets
                .sweep(crate::shared::unix_ms() / 1000);
        }
        // A script paused mid-run on this core holds its shards: nothing may
        // expire or be evicted under it (Redis runs no cron during a script).
        if crate::script::fiber::paused() {
            continue;
        }
        // A replica expires only what its own clients gave a TTL.
        if shard.store.replica.get() {
            shard.with_ctx(DbIndex(0), |ks, ctx| ks.expire_replica_keys(ctx));
        }
        // A client pause also pauses expiry and eviction, as in Redis.
        if !shard.store.replica.get() && !crate::limits::clients_paused(&shard.shared) {
            // active_expire visits every db itself.
            if shard.shared.active_expire.load(Ordering::Relaxed) {
                let start = std::time::Instant::now();
                shard.with_ctx(DbIndex(0), |ks, ctx| ks.active_expire(ctx, 200));
                let ms = start.elapsed().as_millis() as u64;
                crate::obs::latency_event(&shard, "expire-cycle", ms);
            }
            // Every shard sheds its share, including shards no write reaches.
            shard.store.publish_evictable();
            let start = std::time::Instant::now();
            shard.perform_evictions();
            let ms = start.elapsed().as_millis() as u64;
            crate::obs::latency_event(&shard, "eviction-cycle", ms);
        }
        crate::limits::close_idle_clients(&shard);
        crate::alloc::used_memory();
    }
}

/// Feeds INFO's instantaneous rates (Redis: every 100 ms from serverCron).
fn sample_instantaneous(shared: &crate::shared::Shared, now: Instant) {
    use crate::metrics::Metric;
    let commands = shared.total(|c| &c.commands_processed);
    let input = shared.total(|c| &c.net_input_bytes);
    let output = shared.total(|c| &c.net_output_bytes);
    let mut m = shared
        .instantaneous
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.sample(Metric::Commands, commands, now);
    m.sample(Metric::NetInput, input, now);
    m.sample(Metric::NetOutput, output, now);
}

/// The shutdown save: when save points are set (or SHUTDOWN SAVE), unless NOSAVE.
async fn final_save(shard: &Rc<Shard>) {
    if crate::aof::is_open(shard) {
        // Everything logged reaches the file before the exit.
        crate::repl::settle(shard).await;
        crate::aof::flush_for_shutdown(shard);
    }
    let mode = shard.shared.shutdown_mode.load(Ordering::SeqCst);
    let save_points = !shard.shared.config().save.is_empty();
    let wanted = match mode {
        SHUTDOWN_SAVE => true,
        SHUTDOWN_NOSAVE => false,
        _ => save_points,
    };
    if !wanted {
        let saving = shard
            .shared
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bgsave_in_progress;
        if saving {
            // Redis kills its saving child and removes the temp file; the save
            // here dies with the process, so only the file is left to clean up.
            crate::log!(Warning, "There is a child saving an .rdb. Killing it!");
            let _ = std::fs::remove_file(crate::persist::temp_path(shard));
        }
        return;
    }
    crate::log!(Notice, "Saving the final RDB snapshot before exiting.");
    crate::persist::claim(shard).await;
    match crate::persist::save(shard).await {
        Ok(()) => {}
        Err(e) => crate::log!(Warning, "Error trying to save the DB, can't exit: {}", e),
    }
    crate::persist::release(shard);
}

/// SHUTDOWN without SAVE/NOSAVE: save if save points are configured.
pub const SHUTDOWN_DEFAULT: u8 = 0;
/// SHUTDOWN SAVE.
pub const SHUTDOWN_SAVE: u8 = 1;
/// SHUTDOWN NOSAVE.
pub const SHUTDOWN_NOSAVE: u8 = 2;

/// Blocks SIGTERM/SIGINT in every thread and handles them on one thread.
pub fn block_signals() {
    #[allow(unsafe_code)]
    // SAFETY: manipulates this thread's signal mask; threads spawned later inherit it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn spawn_signal_thread(shared: Arc<Shared>) {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            #[allow(unsafe_code)]
            // SAFETY: sigwait on a set we own; the signals are blocked in all threads.
            let rc = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigwait(&set, &mut sig)
            };
            if rc != 0 {
                continue;
            }
            let name = if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            if !shared.started_up.load(Ordering::SeqCst) {
                crate::log!(
                    Warning,
                    "Received {} before start-up finished, exiting now.",
                    name
                );
                std::process::exit(1);
            }
            crate::log!(Warning, "Received {} scheduling shutdown...", name);
            crate::log!(Warning, "User requested shutdown...");
            request_shutdown(&shared, false);
        })
        .expect("spawn signal thread");
}
