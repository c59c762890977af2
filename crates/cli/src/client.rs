//! The connection: connect, then AUTH, SELECT and HELLO 3 as redis-cli's `cliConnect` does.

use std::io::Write;
use std::net::TcpStream;

use crate::resp::{self, ReadError, Reply};

/// Where and how to connect; also what the prompt shows.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// ACL user for AUTH, if any.
    pub user: Option<String>,
    /// Password for AUTH, if any.
    pub pass: Option<String>,
    /// Database to SELECT after connecting.
    pub db: i64,
    /// Whether to switch to RESP3 with HELLO 3.
    pub resp3: bool,
}

/// An open connection.
pub struct Client {
    reader: resp::ReplyReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and runs the AUTH / SELECT / HELLO handshake, printing redis-cli's messages to
    /// stderr on failure. Only a failed connect is fatal; a refused SELECT resets `t.db` to 0.
    pub fn connect(t: &mut Target) -> Option<Client> {
        let stream = match TcpStream::connect((t.host.as_str(), t.port)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "Could not connect to Redis at {}:{}: {}",
                    t.host,
                    t.port,
                    crate::os_error_text(&e)
                );
                return None;
            }
        };
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone().ok()?;
        let mut c = Client {
            reader: resp::ReplyReader::new(stream),
            writer,
        };
        if let Some(pass) = &t.pass {
            let mut cmd = vec!["AUTH"];
            cmd.extend(t.user.as_deref());
            cmd.push(pass);
            match c.call(&cmd) {
                // redis-cli 7.0 reports a failed AUTH and goes on with the command.
                Ok(Reply::Error(e)) => eprintln!("AUTH failed: {}", String::from_utf8_lossy(&e)),
                Ok(_) => {}
                Err(_) => {
                    eprintln!("\nI/O error");
                    return None;
                }
            }
        }
        // A failed SELECT is reported, and the command runs in db 0.
        if t.db != 0 && !c.select(t.db) {
            t.db = 0;
        }
        if t.resp3 {
            match c.call(&["HELLO", "3"]) {
                Ok(Reply::Error(e)) => eprintln!("HELLO 3 failed: {}", String::from_utf8_lossy(&e)),
                Ok(_) => {}
                Err(_) => {
                    eprintln!("\nI/O error");
                    return None;
                }
            }
        }
        Some(c)
    }

    /// SELECTs `db`, printing `SELECT n failed: ...` on an error reply.
    pub fn select(&mut self, db: i64) -> bool {
        match self.call(&["SELECT".to_string(), db.to_string()]) {
            Ok(Reply::Error(e)) => {
                eprintln!("SELECT {db} failed: {}", String::from_utf8_lossy(&e));
                false
            }
            Ok(_) => true,
            Err(_) => {
                eprintln!("\nI/O error");
                false
            }
        }
    }

    /// Sends one command.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), ReadError> {
        self.writer
            .write_all(&resp::encode_command(args))
            .map_err(ReadError::from)
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Result<Reply, ReadError> {
        self.reader.read_reply()
    }

    /// Reads one reply, skipping RESP3 push messages (redis-cli does not print them outside
    /// subscribe mode).
    pub fn read_skipping_push(&mut self) -> Result<Reply, ReadError> {
        loop {
            match self.read()? {
                Reply::Push(_) => continue,
                r => return Ok(r),
            }
        }
    }

    /// Sends one command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ReadError> {
        self.send(args)?;
        self.read_skipping_push()
    }
}
