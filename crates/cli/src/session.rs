//! Sending commands and printing replies: redis-cli's `cliSendCommand` / `cliReadReply`.
//!
//! The session owns the connection (or its absence: the REPL keeps going "not connected"), the
//! output mode and the state the prompt shows (selected db, inside MULTI).

use std::io::Write;
use std::time::Duration;

use crate::client::{Client, Target};
use crate::docs::Docs;
use crate::format;
use crate::resp::{ReadError, Reply};

/// How replies are printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    /// Human format (stdout is a terminal, or `--no-raw`).
    Standard,
    /// Raw format (stdout is not a terminal, or `--raw`).
    Raw,
}

/// A client session.
pub struct Session {
    /// Connection settings; `db` follows successful SELECTs.
    pub target: Target,
    /// The open connection, if any.
    pub client: Option<Client>,
    /// Output format.
    pub output: Output,
    /// Whether commands come from the REPL (a lost connection is then retried, not fatal).
    pub interactive: bool,
    /// Inside MULTI: the prompt shows `(TX)`.
    pub in_multi: bool,
    /// Command help from COMMAND DOCS, loaded on first use.
    pub docs: Option<Docs>,
    delim: Vec<u8>,
    interval: Duration,
}

impl Session {
    /// A session that is not yet connected.
    pub fn new(target: Target, output: Output, delim: Vec<u8>, interval: Duration) -> Session {
        Session {
            target,
            client: None,
            output,
            interactive: false,
            in_multi: false,
            docs: None,
            delim,
            interval,
        }
    }

    /// (Re)connects; false if the connection could not be opened.
    pub fn reconnect(&mut self) -> bool {
        self.client = Client::connect(&mut self.target);
        self.in_multi = false;
        self.client.is_some()
    }

    /// The REPL prompt, e.g. `127.0.0.1:6379[2](TX)> `.
    pub fn prompt(&self) -> String {
        if self.client.is_none() {
            return "not connected> ".to_string();
        }
        let mut p = format!("{}:{}", self.target.host, self.target.port);
        if self.target.db != 0 {
            p.push_str(&format!("[{}]", self.target.db));
        }
        if self.in_multi {
            p.push_str("(TX)");
        }
        p.push_str("> ");
        p
    }

    /// Runs a command `repeat` times (-1: forever), reconnecting once if the connection was lost
    /// (`issueCommandRepeat`). False if it could not be sent.
    pub fn issue(&mut self, args: &[Vec<u8>], repeat: i64) -> bool {
        if self.send_command(args, repeat).is_ok() {
            return true;
        }
        self.reconnect();
        match self.send_command(args, repeat) {
            Ok(()) => true,
            Err(e) => {
                // With no connection at all, connect() already said why.
                if let Some(e) = e {
                    eprintln!("Error: {e}");
                }
                false
            }
        }
    }

    fn print(&self, reply: &Reply, verbatim: bool) {
        let formatted = if verbatim {
            format::raw(reply, &self.delim)
        } else if self.output == Output::Standard {
            format::tty(reply)
        } else {
            format::raw(reply, &self.delim).map(|mut v| {
                v.push(b'\n');
                v
            })
        };
        match formatted {
            Ok(bytes) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
            }
            Err(format::UnknownType(t)) => {
                eprintln!("Unknown reply type: {t}");
                std::process::exit(1);
            }
        }
    }

    /// A reply could not be read: in the REPL a closed connection is retried by the caller,
    /// anything else ends the program as in redis-cli.
    fn read_failed(&mut self, e: ReadError) -> Result<(), Option<ReadError>> {
        self.client = None;
        if self.interactive && matches!(e, ReadError::ServerClosed) {
            return Err(Some(e));
        }
        if let ReadError::Io(io) = &e {
            if self.interactive
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                )
            {
                return Err(Some(e));
            }
        }
        eprintln!("Error: {e}");
        std::process::exit(1);
    }

    fn send_command(&mut self, args: &[Vec<u8>], repeat: i64) -> Result<(), Option<ReadError>> {
        let Some(first) = args.first() else {
            return Ok(());
        };
        let name = first.to_ascii_lowercase();
        if name == b"help" || name == b"?" {
            self.help(&args[1..]);
            return Ok(());
        }
        if self.client.is_none() {
            return Err(None);
        }
        let verbatim = format::prints_verbatim(args);
        let shutdown = name == b"shutdown";
        let monitor = name == b"monitor";
        let pubsub = matches!(
            name.as_slice(),
            b"subscribe" | b"psubscribe" | b"ssubscribe"
        );
        let mut remaining = repeat;
        while remaining != 0 {
            if remaining > 0 {
                remaining -= 1;
            }
            let client = self.client.as_mut().ok_or(None)?;
            if let Err(e) = client.send(args) {
                self.client = None;
                return Err(Some(e));
            }
            if monitor || pubsub {
                if pubsub && self.output != Output::Raw {
                    println!("Reading messages... (press Ctrl-C to quit)");
                }
                loop {
                    let r = self.client.as_mut().ok_or(None)?.read();
                    match r {
                        Ok(reply) => self.print(&reply, verbatim),
                        Err(e) => {
                            eprintln!("Error: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            }
            let reply = match client.read_skipping_push() {
                Ok(r) => r,
                Err(_) if shutdown => {
                    // The server closed the connection because it shut down: that is success.
                    self.client = None;
                    return Ok(());
                }
                Err(e) => return self.read_failed(e),
            };
            self.print(&reply, verbatim);
            self.track_state(args, &name, &reply);
            if !self.interval.is_zero() {
                std::thread::sleep(self.interval);
            }
        }
        Ok(())
    }

    /// Keeps the prompt's db and MULTI state in step with successful commands.
    fn track_state(&mut self, args: &[Vec<u8>], name: &[u8], reply: &Reply) {
        let ok = !matches!(reply, Reply::Error(_));
        let argc = args.len();
        match name {
            b"select" if argc == 2 && ok => {
                let digits: String = String::from_utf8_lossy(&args[1]).trim().to_string();
                self.target.db = digits.parse().unwrap_or(0);
            }
            // redis-cli re-selects its db after a fresh AUTH.
            b"auth" if (argc == 2 || argc == 3) && self.target.db != 0 => {
                if let Some(c) = self.client.as_mut() {
                    c.select(self.target.db);
                }
            }
            b"multi" if argc == 1 && ok => self.in_multi = true,
            b"exec" | b"discard" if argc == 1 && self.in_multi => self.in_multi = false,
            b"reset" if argc == 1 && ok => {
                self.in_multi = false;
                self.target.db = 0;
                self.target.resp3 = false;
            }
            _ => {}
        }
    }

    /// Loads COMMAND DOCS once; `None` if the server does not answer it.
    pub fn load_docs(&mut self) -> Option<&Docs> {
        if self.docs.is_none() {
            let reply = self.client.as_mut()?.call(&["COMMAND", "DOCS"]).ok()?;
            self.docs = Docs::from_reply(&reply);
        }
        self.docs.as_ref()
    }

    fn help(&mut self, topic: &[Vec<u8>]) {
        let text = if topic.is_empty() {
            crate::docs::generic_help()
        } else {
            match self.load_docs() {
                Some(d) => d.help_text(topic),
                None => "\r\n".to_string(),
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
