//! One ACL user: flags, password hashes, and the permissions of its root
//! selector; rule parsing (`ACL SETUSER` modifiers) and the description
//! `ACL LIST` / `ACL GETUSER` print.

use crate::table::{self, ks, COMMANDS};
use sha2::{Digest, Sha256};

const WORDS: usize = COMMANDS.len().div_ceil(64);

/// Why a rule was refused; [`RuleError::message`] is Redis's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL.
    Syntax,
    /// ENOENT.
    UnknownCommand,
    /// EEXIST.
    PatternAfterAllKeys,
    /// EISDIR.
    PatternAfterAllChannels,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSubcommand,
    /// EALREADY.
    Duplicate,
}

impl RuleError {
    /// Redis's `ACLSetUserStringError()` text.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::PatternAfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::PatternAfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
        }
    }
}

/// A key pattern with its permissions (`~p` is read+write, `%R~p`, `%W~p`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    read: bool,
    write: bool,
}

/// What a user may run and touch (Redis's root selector).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    allkeys: bool,
    keys: Vec<KeyPattern>,
    allchannels: bool,
    channels: Vec<Vec<u8>>,
    /// Every command, checked without the bitmap.
    allcommands: bool,
    /// Set only by `+@all`: describes as `+@all …` (future commands allowed).
    future: bool,
    allowed: [u64; WORDS],
    /// `+cmd|firstarg` permissions of otherwise denied commands.
    firstargs: Vec<(usize, Vec<String>)>,
}

impl Selector {
    fn empty() -> Selector {
        Selector {
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
            allcommands: false,
            future: false,
            allowed: [0; WORDS],
            firstargs: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    fn set_all(&mut self, on: bool) {
        self.allowed = [if on { u64::MAX } else { 0 }; WORDS];
        self.allcommands = on;
        self.future = on;
        self.firstargs.clear();
    }

    /// ACLChangeSelectorPerm: a container's subcommands follow it.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.retain(|(i, _)| *i != id);
        for &sub in table::children(id) {
            self.set_bit(sub, on);
        }
    }

    fn change_category(&mut self, bit: u32, on: bool) {
        for (id, c) in COMMANDS.iter().enumerate() {
            if c.categories & bit != 0 {
                self.change(id, on);
            }
        }
    }

    fn add_firstarg(&mut self, id: usize, arg: &str) {
        match self.firstargs.iter_mut().find(|(i, _)| *i == id) {
            Some((_, args)) => {
                if !args.iter().any(|a| a.eq_ignore_ascii_case(arg)) {
                    args.push(arg.to_string());
                }
            }
            None => self.firstargs.push((id, vec![arg.to_string()])),
        }
    }

    /// ACLSetSelector.
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::PatternAfterAllKeys);
            }
            let (mut read, mut write, mut at) = (false, false, 1);
            if op[0] == b'%' {
                loop {
                    match op.get(at).map(u8::to_ascii_uppercase) {
                        Some(b'R') if !read => read = true,
                        Some(b'W') if !write => write = true,
                        Some(b'~') => {
                            at += 1;
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                    at += 1;
                }
            } else {
                (read, write) = (true, true);
            }
            let pattern = &op[at..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                Some(k) => {
                    k.read |= read;
                    k.write |= write;
                }
                None => self.keys.push(KeyPattern {
                    pattern: pattern.to_vec(),
                    read,
                    write,
                }),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::PatternAfterAllChannels);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.allchannels = false;
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let name = std::str::from_utf8(&op[2..]).map_err(|_| RuleError::UnknownCommand)?;
            let bit = table::category(name).ok_or(RuleError::UnknownCommand)?;
            self.change_category(bit, op[0] == b'+');
        } else if op[0] == b'+' {
            let name = std::str::from_utf8(&op[1..]).map_err(|_| RuleError::UnknownCommand)?;
            match name.rsplit_once('|') {
                None => self.change(table::lookup(name).ok_or(RuleError::UnknownCommand)?, true),
                Some((cmd, sub)) => {
                    let id = table::lookup(cmd).ok_or(RuleError::UnknownCommand)?;
                    if table::is_sub(id) {
                        return Err(RuleError::FirstArgOfSubcommand);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if COMMANDS[id].is_container() {
                        let sub = table::lookup(name).ok_or(RuleError::UnknownCommand)?;
                        self.change(sub, true);
                    } else {
                        self.add_firstarg(id, sub);
                    }
                }
            }
        } else if op[0] == b'-' {
            let name = std::str::from_utf8(&op[1..]).map_err(|_| RuleError::UnknownCommand)?;
            self.change(table::lookup(name).ok_or(RuleError::UnknownCommand)?, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn count_category(&self, bit: u32) -> (usize, usize) {
        let mut on_off = (0, 0);
        for (id, c) in COMMANDS.iter().enumerate() {
            if c.categories & bit != 0 {
                if self.bit(id) {
                    on_off.0 += 1;
                } else {
                    on_off.1 += 1;
                }
            }
        }
        on_off
    }

    /// ACLDescribeSelectorCommandRules: `+@all`/`-@all`, then the categories
    /// that best fit the bitmap, then single commands.
    fn describe_commands(&self) -> String {
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::empty();
        fake.set_all(!additive);
        let mut temp = self.clone();
        let mut applied = [false; table::CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.change_category(1 << j, additive);
            temp.change_category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(table::CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for (id, cmd) in COMMANDS.iter().enumerate() {
            let (user, f) = (self.bit(id), fake.bit(id));
            if user != f {
                rules.push(if user { '+' } else { '-' });
                rules.push_str(cmd.name);
                rules.push(' ');
                fake.change(id, user);
            }
            if !user {
                if let Some((_, args)) = self.firstargs.iter().find(|(i, _)| *i == id) {
                    for a in args {
                        rules.push_str(&format!("+{}|{} ", cmd.name, a));
                    }
                }
            }
        }
        rules.pop();
        rules
    }

    /// ACLSelectorCheckCmd.
    fn check(&self, id: usize, argv: &[&[u8]]) -> Result<(), Denied> {
        let cmd = &COMMANDS[id];
        if !self.allcommands && !cmd.no_auth() && !self.bit(id) {
            let idx = if table::is_sub(id) { 2 } else { 1 };
            let allowed = argv.len() >= 2
                && argv.get(idx).is_some_and(|arg| {
                    self.firstargs
                        .iter()
                        .find(|(i, _)| *i == id)
                        .is_some_and(|(_, args)| {
                            args.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(arg))
                        })
                });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys && !cmd.key_specs.is_empty() {
            for (pos, flags) in table::keys(id, argv) {
                if !self.key_allowed(argv[pos], flags) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            for (pos, pattern) in table::channels(id, argv) {
                if !self.channel_allowed(argv[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], flags: u16) -> bool {
        if self.allkeys {
            return true;
        }
        let read = flags & ks::ACCESS != 0;
        let write = flags & (ks::INSERT | ks::DELETE | ks::UPDATE) != 0;
        self.keys.iter().any(|k| {
            (!read || k.read)
                && (!write || k.write)
                && shardis_base::glob::glob_match(&k.pattern, key, false)
        })
    }

    fn channel_allowed(&self, channel: &[u8], pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if pattern {
                    p == channel
                } else {
                    shardis_base::glob::glob_match(p, channel, false)
                }
            })
    }

    /// ACLDescribeSelector: keys, channels, then command rules.
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else if !self.keys.is_empty() {
            out.extend_from_slice(&self.describe_keys());
            out.push(b' ');
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            if !self.channels.is_empty() {
                out.extend_from_slice(&self.describe_channels());
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
        out
    }

    fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(match (k.read, k.write) {
                (true, false) => b"%R~",
                (false, true) => b"%W~",
                _ => b"~",
            });
            out.extend_from_slice(&k.pattern);
        }
        out
    }

    fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

/// SHA-256 of `pass` as 64 lowercase hex digits (how Redis stores passwords).
pub fn hash_password(pass: &[u8]) -> String {
    let digest = Sha256::digest(pass);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One ACL user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    enabled: bool,
    nopass: bool,
    /// `Some(true)`: sanitize-payload; `Some(false)`: skip-sanitize-payload.
    sanitize: Option<bool>,
    passwords: Vec<String>,
    root: Selector,
    /// Extra selectors `(…)`: a command may run if any selector allows it.
    selectors: Vec<Selector>,
}

/// The rules of one selector, as GETUSER shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRules {
    /// `commands`.
    pub commands: String,
    /// `keys`.
    pub keys: Vec<u8>,
    /// `channels`.
    pub channels: Vec<u8>,
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command (or subcommand) itself.
    Command,
    /// The key at this argument position.
    Key(usize),
    /// The channel at this argument position.
    Channel(usize),
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, no
    /// commands, keys or channels.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::empty(),
            selectors: Vec::new(),
        }
    }

    /// The `default` user of a fresh server: `on nopass ~* &* +@all`.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            u.apply(op.as_bytes()).expect("valid default rules");
        }
        u
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `on`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `nopass`: any password (or none) authenticates.
    pub fn nopass(&self) -> bool {
        self.nopass
    }

    /// May run everything on every key and channel (checks can be skipped).
    pub fn unrestricted(&self) -> bool {
        self.root.allcommands && self.root.allkeys && self.root.allchannels
    }

    /// ACLSetUser: applies one modifier. An empty modifier does nothing.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op.ends_with(b")") {
            let mut sel = Selector::empty();
            for rule in op[1..op.len() - 1]
                .split(|b| b.is_ascii_whitespace())
                .filter(|r| !r.is_empty())
            {
                sel.apply(rule)?;
            }
            self.selectors.push(sel);
        } else if is("clearselectors") {
            self.selectors.clear();
        } else if is("reset") {
            for op in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "sanitize-payload",
                "clearselectors",
                "-@all",
            ] {
                self.apply(op.as_bytes())?;
            }
        } else {
            self.root.apply(op)?;
        }
        Ok(())
    }

    /// True if `pass` authenticates this (enabled) user.
    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hashed = hash_password(pass);
        // Compare every stored hash fully (no early exit on a byte).
        self.passwords.iter().fold(false, |ok, p| {
            ok | constant_time_eq(p.as_bytes(), hashed.as_bytes())
        })
    }

    /// Checks a command. `id` indexes [`table::COMMANDS`] (the subcommand
    /// entry for containers); `argv[0]` is the command name.
    pub fn check(&self, id: usize, argv: &[&[u8]]) -> Result<(), Denied> {
        // ACLCheckAllUserCommandPerm: any selector may allow it; otherwise
        // report a channel over a key over the command, the later argument
        // first.
        let rank = |d: &Denied| match *d {
            Denied::Command => (0, 0),
            Denied::Key(p) => (1, p),
            Denied::Channel(p) => (2, p),
        };
        let mut worst = Denied::Command;
        for sel in std::iter::once(&self.root).chain(&self.selectors) {
            match sel.check(id, argv) {
                Ok(()) => return Ok(()),
                Err(d) if rank(&d) > rank(&worst) => worst = d,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// Redis's `ACLUserCheckCmdWithUnrestrictedKeyAccess` for reads: some
    /// selector that allows the command may also read every key (`allkeys`,
    /// or a readable `*` pattern). SORT's BY and GET require it.
    pub fn reads_every_key(&self, id: usize, argv: &[&[u8]]) -> bool {
        std::iter::once(&self.root).chain(&self.selectors).any(|s| {
            s.check(id, argv).is_ok()
                && (s.allkeys || s.keys.iter().any(|k| k.read && k.pattern == b"*"))
        })
    }

    /// True if the user may use `channel` (a PSUBSCRIBE pattern when
    /// `pattern`, matched literally against the user's patterns).
    pub fn channel_allowed(&self, channel: &[u8], pattern: bool) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.channel_allowed(channel, pattern))
    }

    /// ACLDescribeUser: the rules after `user <name> ` in ACL LIST / ACL SAVE.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.root.describe());
        for sel in &self.selectors {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&sel.describe());
            out.push(b')');
        }
        out
    }

    /// The flags GETUSER lists, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// Password hashes (GETUSER `passwords`).
    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    /// GETUSER `commands`.
    pub fn commands_rules(&self) -> String {
        self.root.describe_commands()
    }

    /// GETUSER `keys`.
    pub fn keys_rules(&self) -> Vec<u8> {
        self.root.describe_keys()
    }

    /// GETUSER `channels`.
    pub fn channels_rules(&self) -> Vec<u8> {
        self.root.describe_channels()
    }

    /// Some selector has `allchannels` (`&*`).
    pub fn all_channels(&self) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.allchannels)
    }

    /// GETUSER `selectors`.
    pub fn selectors(&self) -> Vec<SelectorRules> {
        self.selectors
            .iter()
            .map(|s| SelectorRules {
                commands: s.describe_commands(),
                keys: s.describe_keys(),
                channels: s.describe_channels(),
            })
            .collect()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
