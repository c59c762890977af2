//! Client sockets, woken by one epoll instance per executor.
//!
//! Owns: the executor's epoll instance, the readiness and wakers of the sockets
//! registered with it, and [`Socket`], the non-blocking TCP stream every client
//! connection (and the master link) reads and writes. Uses: libc, glommio's
//! `PollableFd` (to park on the epoll instance) and its task scheduler.
//!
//! Why not glommio's `TcpStream`: every wait there is an io_uring `POLL_ADD`
//! whose completion runs as task work on the executor's thread, and without
//! `IORING_SETUP_COOP_TASKRUN` (glommio sets none and offers no way to) the
//! kernel interrupts the *running* executor with a reschedule IPI for each one:
//! ~19% of the CPU at `SET -P 1` (docs/benchmarks.md). Here each socket is
//! registered once, edge-triggered, with the executor's epoll instance. While
//! the executor has work, a driver task drains the instance with
//! `epoll_wait(0)` between rounds of the connection tasks; only when it is
//! empty does the driver park on the epoll fd through glommio: one `POLL_ADD`
//! per idle period, not one per request. Reads and writes are plain
//! non-blocking `recv`/`send`, so a request round costs one of each.
//!
//! Readiness is tracked per socket so that a round does not pay a `recv` that
//! can only say `EAGAIN`: a short read means the receive queue was empty at
//! that instant, and with edge-triggered registration any byte that arrives
//! later queues a fresh event. A hang-up makes the socket readable for good, so
//! end-of-stream is always seen.

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::io::PollableFd;
use std::cell::{OnceCell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Events taken from the epoll instance per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

/// One registered socket's readiness.
#[derive(Default)]
struct Entry {
    /// Bumped on release, so a stale event for a reused slot is ignored.
    generation: u32,
    live: bool,
    readable: bool,
    writable: bool,
    /// Peer hung up or the socket failed: reads must see it, never wait.
    hangup: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The executor's epoll instance and its sockets.
pub struct Poller {
    epoll: PollableFd<OwnedFd>,
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
}

thread_local! {
    static POLLER: OnceCell<Rc<Poller>> = const { OnceCell::new() };
}

/// This executor's poller, created (with its driver task) on first use.
fn poller() -> io::Result<Rc<Poller>> {
    if let Some(p) = POLLER.with(|c| c.get().cloned()) {
        return Ok(p);
    }
    #[allow(unsafe_code)]
    // SAFETY: epoll_create1 returns a new descriptor we own, or -1.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(unsafe_code)]
    // SAFETY: fd was just created above and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let epoll = PollableFd::new(owned)
        .map_err(|e| io::Error::other(format!("registering the epoll instance: {e}")))?;
    let p = Rc::new(Poller {
        epoll,
        entries: RefCell::new(Vec::new()),
        free: RefCell::new(Vec::new()),
    });
    POLLER.with(|c| {
        let _ = c.set(p.clone());
    });
    // Spawned after the cell is set and with no borrow held: glommio runs a new
    // task eagerly up to its first await.
    glommio::spawn_local(drive(p.clone())).detach();
    Ok(p)
}

/// Drains the epoll instance while there is work; parks on it when there is none.
async fn drive(p: Rc<Poller>) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
    let fd = p.epoll.get_ref().as_raw_fd();
    loop {
        #[allow(unsafe_code)]
        // SAFETY: `events` has room for EVENTS_PER_WAIT entries; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(fd, events.as_mut_ptr(), EVENTS_PER_WAIT as i32, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                crate::log!(Warning, "epoll_wait: {}", e);
            }
            futures_lite::future::yield_now().await;
            continue;
        }
        if n == 0 {
            // Nothing ready: park on the instance itself (one POLL_ADD).
            let _ = p.epoll.readable().await;
            continue;
        }
        p.dispatch(&events[..n as usize]);
        // Let the woken connections run their round before asking again: the
        // first yield lets them read and run their requests, the second lets
        // them send the replies (each yields once in between, see
        // `conn::Conn::run`), so one `epoll_wait` serves the whole round.
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
    }
}

impl Poller {
    fn dispatch(&self, events: &[libc::epoll_event]) {
        let mut wake: Vec<Waker> = Vec::new();
        {
            let mut entries = self.entries.borrow_mut();
            for ev in events {
                let (slot, generation) = split_token(ev.u64);
                let Some(e) = entries.get_mut(slot as usize) else {
                    continue;
                };
                if !e.live || e.generation != generation {
                    continue;
                }
                let bits = ev.events as i32;
                if bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0 {
                    e.hangup = true;
                }
                if bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0
                {
                    e.readable = true;
                    wake.extend(e.reader.take());
                }
                if bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                    e.writable = true;
                    wake.extend(e.writer.take());
                }
            }
        }
        // Woken outside the borrow: a waker may run code that touches the poller.
        for w in wake {
            w.wake();
        }
    }

    fn register(&self, fd: RawFd) -> io::Result<(u32, u32)> {
        let slot = match self.free.borrow_mut().pop() {
            Some(s) => s,
            None => {
                let mut entries = self.entries.borrow_mut();
                entries.push(Entry::default());
                (entries.len() - 1) as u32
            }
        };
        let generation = {
            let mut entries = self.entries.borrow_mut();
            let e = &mut entries[slot as usize];
            e.live = true;
            // A new socket may already hold data: try the syscall first.
            e.readable = true;
            e.writable = true;
            e.hangup = false;
            e.generation
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token(slot, generation),
        };
        #[allow(unsafe_code)]
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.get_ref().as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                &mut ev,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            self.release(slot, None);
            return Err(err);
        }
        Ok((slot, generation))
    }

    /// Forgets a socket; `fd` is removed from the instance when given (a socket
    /// handed to another executor stays open, so the kernel would keep it).
    fn release(&self, slot: u32, fd: Option<RawFd>) {
        if let Some(fd) = fd {
            #[allow(unsafe_code)]
            // SAFETY: both descriptors are open; DEL ignores the event argument.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.get_ref().as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                );
            }
        }
        let e = &mut self.entries.borrow_mut()[slot as usize];
        e.live = false;
        e.generation = e.generation.wrapping_add(1);
        e.reader = None;
        e.writer = None;
        self.free.borrow_mut().push(slot);
    }
}

/// The peer's and our own address of socket `fd` (0.0.0.0:0 where unknown).
pub fn addresses(fd: RawFd) -> (SocketAddr, SocketAddr) {
    #[allow(unsafe_code)]
    // SAFETY: borrowed only for two getsockname-style calls; ManuallyDrop keeps
    // the descriptor open (it is not ours to close).
    let s = std::mem::ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
    let unknown = || SocketAddr::from(([0, 0, 0, 0], 0));
    (
        s.peer_addr().unwrap_or_else(|_| unknown()),
        s.local_addr().unwrap_or_else(|_| unknown()),
    )
}

fn token(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

fn split_token(t: u64) -> (u32, u32) {
    (t as u32, (t >> 32) as u32)
}

/// A non-blocking TCP stream registered with this executor's poller.
pub struct Socket {
    /// `None` only after `into_raw_fd`.
    stream: Option<TcpStream>,
    poller: Rc<Poller>,
    slot: u32,
}

impl Socket {
    /// Registers a connected stream with this executor's poller.
    pub fn new(stream: TcpStream) -> io::Result<Socket> {
        stream.set_nonblocking(true)?;
        let poller = poller()?;
        let (slot, _) = poller.register(stream.as_raw_fd())?;
        Ok(Socket {
            stream: Some(stream),
            poller,
            slot,
        })
    }

    /// Takes over a stream glommio accepted or connected (no operation of
    /// glommio's may be outstanding on it).
    pub fn from_glommio(stream: glommio::net::TcpStream) -> io::Result<Socket> {
        let fd = stream.into_raw_fd();
        #[allow(unsafe_code)]
        // SAFETY: into_raw_fd gave up glommio's ownership; we are the only owner.
        Socket::new(unsafe { TcpStream::from_raw_fd(fd) })
    }

    fn inner(&self) -> &TcpStream {
        self.stream.as_ref().expect("socket used after into_raw_fd")
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner().peer_addr()
    }

    /// Our end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner().local_addr()
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner().set_nodelay(on)
    }

    /// Shuts one or both directions down.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner().shutdown(how)
    }

    /// Leaves the poller and gives the descriptor up, open (to hand the
    /// connection to another executor).
    pub fn into_raw_fd(mut self) -> RawFd {
        let stream = self.stream.take().expect("socket used after into_raw_fd");
        self.poller.release(self.slot, Some(stream.as_raw_fd()));
        stream.into_raw_fd()
    }

    /// Runs `op` if the socket may be ready in direction `read`; parks the
    /// task's waker when it is not (or turns out not to be).
    fn io<T>(
        &self,
        cx: &mut Context<'_>,
        read: bool,
        mut op: impl FnMut(&TcpStream) -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        let stream = self.inner();
        let mut entries = self.poller.entries.borrow_mut();
        let e = &mut entries[self.slot as usize];
        loop {
            let ready = if read { e.readable } else { e.writable };
            if !ready {
                let w = if read { &mut e.reader } else { &mut e.writer };
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            match op(stream) {
                Ok(v) => {
                    if read && drained(&v) && !e.hangup {
                        e.readable = false;
                    }
                    return Poll::Ready(Ok(v));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if read {
                        if e.hangup {
                            // Readiness said hang-up but nothing is readable:
                            // a spurious event; wait for the next one.
                            e.hangup = false;
                        }
                        e.readable = false;
                    } else {
                        e.writable = false;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner().as_raw_fd()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(stream) = &self.stream {
            self.poller.release(self.slot, Some(stream.as_raw_fd()));
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        // A short read emptied the receive queue (end of stream included).
        self.io(cx, true, |mut s| s.read(buf), |&n| n < want)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // std's send passes MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE.
        self.io(cx, false, |mut s| s.write(buf), |_| false)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner().shutdown(Shutdown::Write))
    }
}
