//! What CLIENT LIST / CLIENT INFO report about a connection, and CLIENT KILL's handle.

use shardis_keyspace::DbIndex;
use std::net::SocketAddr;
use std::time::Instant;

/// One connection's descriptive state, owned by its executor.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// Socket fd (CLIENT KILL shuts it down to end the connection).
    pub fd: i32,
    /// CLIENT SETNAME.
    pub name: String,
    /// When it connected.
    pub created: Instant,
    /// Last command time.
    pub last_interaction: Instant,
    /// Selected db.
    pub db: DbIndex,
    /// RESP version.
    pub resp: u8,
    /// Last command name (`client|list` style for subcommands).
    pub last_cmd: String,
    /// Flags letters (`N` normal, `S` replica, `M` master, `x` in MULTI).
    pub flags: String,
    /// Pending query buffer bytes.
    pub qbuf: usize,
    /// Output waiting to be written (`omem=`): for a replica, the stream
    /// queued for it on the master ([`crate::repl::refresh_link_buffers`]).
    pub omem: usize,
    /// Set when the connection should close at the next chance.
    pub killed: bool,
    /// Channels subscribed.
    pub sub: usize,
    /// Patterns subscribed.
    pub psub: usize,
    /// Shard channels subscribed.
    pub ssub: usize,
    /// Queued MULTI commands (-1 outside MULTI).
    pub multi: i64,
    /// Authenticated user.
    pub user: String,
    /// CLIENT TRACKING's redirect id (`redir=`; -1 when not tracking).
    pub redir: i64,
    /// While tracking: (redirect broken, BCAST), for flags `t`, `R`, `B`.
    pub tracking: Option<(bool, bool)>,
}

impl ClientInfo {
    /// The pseudo-client that applies our master's stream, on socket `fd`.
    pub fn master_link(fd: std::os::fd::RawFd) -> ClientInfo {
        let (addr, laddr) = crate::net::addresses(fd);
        let now = Instant::now();
        ClientInfo {
            id: 0,
            addr,
            laddr,
            fd,
            name: String::new(),
            created: now,
            last_interaction: now,
            db: DbIndex(0),
            resp: 2,
            last_cmd: String::new(),
            flags: "M".into(),
            qbuf: 0,
            omem: 0,
            killed: false,
            sub: 0,
            psub: 0,
            ssub: 0,
            multi: -1,
            user: "(superuser)".into(), // as Redis shows its master client
            redir: -1,
            tracking: None,
        }
    }

    /// A line of CLIENT LIST, as Redis 7.0 prints it.
    pub fn line(&self) -> String {
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_interaction).as_secs(),
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.qbuf,
            16384usize.saturating_sub(self.qbuf),
            self.omem,
            16384 + self.qbuf + self.omem,
            if self.last_cmd.is_empty() { "NULL" } else { &self.last_cmd },
            self.user,
            self.redir,
            self.resp
        )
    }

    /// Sets `cmd=`: `client|list` for a container's subcommand, else the name
    /// (allocating only when it changes).
    pub fn set_cmd(&mut self, cmd: &shardis_commands::Command, args: &[bytes::Bytes]) {
        // The full name, as Redis shows `lastcmd->fullname` (`client|list`).
        let name = cmd
            .stat_index(args)
            .map_or(cmd.name, |i| shardis_commands::meta::TABLE[i].name);
        if self.last_cmd != name {
            self.last_cmd = name.to_string();
        }
    }

    /// CLIENT LIST TYPE's class, as Redis's `getClientType` decides it
    /// (a MONITOR client is normal).
    pub fn kind(&self) -> &'static str {
        if self.flags.contains('M') {
            "master"
        } else if self.flags.contains('S') {
            "replica"
        } else if self.subscribed() {
            "pubsub"
        } else {
            "normal"
        }
    }

    /// Subscribed to anything (Redis's CLIENT_PUBSUB).
    pub fn subscribed(&self) -> bool {
        self.sub + self.psub + self.ssub > 0
    }

    /// Shuts the socket down so the connection task's pending read ends.
    pub fn kill(&mut self) {
        self.killed = true;
        #[allow(unsafe_code)]
        // SAFETY: shutdown(2) on an fd this process owns; it does not close it.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}
