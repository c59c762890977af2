//! A TCP proxy a test can cut: forward, black-hole (connections stay open but
//! nothing passes), stall (nothing is read, so the senders' buffers fill), or
//! drop every connection and refuse new ones.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FORWARD: u8 = 0;
const BLACKHOLE: u8 = 1;
const REFUSE: u8 = 2;
const STALL: u8 = 3;

/// A proxy from a local port to `target`.
pub struct Proxy {
    /// Port clients connect to.
    pub port: u16,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (m, c) = (mode.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if m.load(Ordering::SeqCst) == REFUSE {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                c.lock().unwrap().push(client.try_clone().unwrap());
                c.lock().unwrap().push(server.try_clone().unwrap());
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    m.clone(),
                );
                pipe(server, client, m.clone());
            }
        });
        Proxy { port, mode, conns }
    }

    /// Passes bytes again.
    pub fn forward(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }

    /// Keeps connections open but drops everything (a silent network).
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Stops reading: what the peers send piles up in their socket buffers
    /// (a replica that does not keep up), until [`Proxy::forward`].
    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones until [`Proxy::forward`].
    pub fn cut(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if mode.load(Ordering::SeqCst) == STALL {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => match mode.load(Ordering::SeqCst) {
                    // Bytes read just before a stall still pass.
                    FORWARD | STALL => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    BLACKHOLE => {}
                    _ => break,
                },
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if mode.load(Ordering::SeqCst) == REFUSE {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
