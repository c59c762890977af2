//! The set of users: `ACL SETUSER`/`DELUSER` as all-or-nothing changes, and
//! the ACL file format (`ACL LOAD`/`ACL SAVE`, `user` lines in the config).

use crate::user::{RuleError, User};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every user, by name (sorted as Redis's rax lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    users: BTreeMap<String, Arc<User>>,
    /// `acl-pubsub-default allchannels`: new and `reset` users get `&*`.
    pubsub_default_all: bool,
}

impl Default for Users {
    fn default() -> Self {
        Users::new()
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

impl Users {
    /// Only the `default` user, with full rights and no password.
    pub fn new() -> Users {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user()));
        Users {
            users,
            pubsub_default_all: false,
        }
    }

    /// `acl-pubsub-default`: true for `allchannels`. Applies to users created
    /// or `reset` from now on.
    pub fn set_pubsub_default(&mut self, allchannels: bool) {
        self.pubsub_default_all = allchannels;
    }

    /// A new user as `acl-pubsub-default` says.
    fn new_user(&self, name: &str) -> User {
        let mut u = User::new(name);
        if self.pubsub_default_all {
            u.apply(b"allchannels").expect("valid rule");
        }
        u
    }

    /// ACLSetUser with `acl-pubsub-default` applied to `reset` and to new
    /// selectors.
    fn apply(&self, u: &mut User, op: &[u8]) -> Result<(), RuleError> {
        if self.pubsub_default_all && op.first() == Some(&b'(') {
            let mut with = b"(allchannels ".to_vec();
            with.extend_from_slice(&op[1..]);
            return u.apply(&with);
        }
        u.apply(op)?;
        if self.pubsub_default_all && op.eq_ignore_ascii_case(b"reset") {
            u.apply(b"allchannels")?;
        }
        Ok(())
    }

    /// A user by name.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<User>> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.users.get(n))
    }

    /// The `default` user.
    pub fn default_user(&self) -> &Arc<User> {
        &self.users["default"]
    }

    /// Users in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    /// ACL SETUSER: applies every modifier to a copy; on error nothing
    /// changes and the reply is Redis's error text.
    pub fn setuser(&mut self, name: &[u8], ops: &[&[u8]]) -> Result<(), String> {
        if has_spaces(name) {
            return Err(shardis_base::errors::BAD_USERNAME.to_string());
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let ops = merge_selectors(ops).map_err(|at| {
            format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(ops[at])
            )
        })?;
        let mut u = match self.users.get(&name) {
            Some(u) => (**u).clone(),
            None => self.new_user(&name),
        };
        for op in &ops {
            self.apply(&mut u, op).map_err(|e| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.message()
                )
            })?;
        }
        self.users.insert(name, Arc::new(u));
        Ok(())
    }

    /// ACL DELUSER: how many of `names` existed. `default` cannot go.
    pub fn deluser(&mut self, names: &[&[u8]]) -> Result<usize, &'static str> {
        if names.iter().any(|n| *n == b"default") {
            return Err(shardis_base::errors::DEFAULT_USER_UNDELETABLE);
        }
        Ok(names
            .iter()
            .filter(|n| {
                std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| self.users.remove(n))
                    .is_some()
            })
            .count())
    }

    /// Sets the default user's password as `requirepass` does (`nopass` when
    /// empty or unset).
    pub fn set_requirepass(&mut self, pass: Option<&str>) {
        let ops: Vec<Vec<u8>> = match pass {
            Some(p) if !p.is_empty() => vec![b"resetpass".to_vec(), format!(">{p}").into_bytes()],
            _ => vec![b"nopass".to_vec()],
        };
        let ops: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
        self.setuser(b"default", &ops)
            .expect("valid requirepass rules");
    }

    /// ACL LIST lines.
    pub fn list(&self) -> Vec<Vec<u8>> {
        self.iter()
            .map(|u| {
                let mut line = format!("user {} ", u.name()).into_bytes();
                line.extend_from_slice(&u.describe());
                line
            })
            .collect()
    }

    /// The ACL file text ACL SAVE writes.
    pub fn save_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in self.list() {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        out
    }

    /// ACLLoadFromFile: a complete user set from an ACL file's text (with
    /// this set's `acl-pubsub-default`). A missing
    /// `default` user is created with its defaults. On any error the message
    /// (Redis's, with `filename:line`) lists every problem and nothing loads.
    pub fn load_text(&self, text: &[u8], filename: &str) -> Result<Users, String> {
        let mut users = BTreeMap::new();
        let mut errors = String::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let linenum = i + 1;
            let line = trim(line);
            if line.is_empty() {
                continue;
            }
            let argv: Vec<&[u8]> = line
                .split(|&b| b == b' ')
                .filter(|a| !a.is_empty())
                .collect();
            if argv.is_empty() {
                continue;
            }
            if argv[0] != b"user" || argv.len() < 2 {
                errors.push_str(&format!(
                    "{filename}:{linenum} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = String::from_utf8_lossy(argv[1]).into_owned();
            if users.contains_key(&name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {linenum}. "
                ));
                continue;
            }
            let mut u = self.new_user(&name);
            let mut syntax_error = false;
            let Ok(ops) = merge_selectors(&argv[2..]) else {
                errors.push_str(&format!(
                    "{filename}:{linenum}: Unmatched parenthesis in selector definition."
                ));
                continue;
            };
            for op in &ops {
                if let Err(e) = self.apply(&mut u, trim(op)) {
                    if e == RuleError::UnknownCommand {
                        errors.push_str(&format!(
                            "{filename}:{linenum}: Error in applying operation '{}': {}. ",
                            String::from_utf8_lossy(op),
                            e.message()
                        ));
                    } else if !syntax_error {
                        errors.push_str(&format!("{filename}:{linenum}: {}. ", e.message()));
                        syntax_error = true;
                    }
                }
            }
            users.insert(name, Arc::new(u));
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
            );
            return Err(errors);
        }
        users
            .entry("default".to_string())
            .or_insert_with(|| Arc::new(User::default_user()));
        Ok(Users {
            users,
            pubsub_default_all: self.pubsub_default_all,
        })
    }

    /// Applies `user <name> rules…` directives from the config file, in order
    /// (ACLLoadConfiguredUsers). A duplicate name is an error; `default`
    /// is reset first.
    pub fn load_config_users(&mut self, lines: &[Vec<Vec<u8>>]) -> Result<(), String> {
        let mut seen: Vec<&[u8]> = Vec::new();
        for argv in lines {
            let name = &argv[0];
            if has_spaces(name) {
                return Err("Spaces not allowed in ACL usernames".to_string());
            }
            if seen.contains(&name.as_slice()) {
                return Err(RuleError::Duplicate.message().to_string());
            }
            seen.push(name);
            let mut u = if name == b"default" {
                let mut u = (**self.default_user()).clone();
                self.apply(&mut u, b"reset").expect("reset is valid");
                u
            } else {
                self.new_user(&String::from_utf8_lossy(name))
            };
            let ops: Vec<&[u8]> = argv[1..].iter().map(|a| a.as_slice()).collect();
            let ops = merge_selectors(&ops).map_err(|_| {
                format!(
                    "Unmatched parenthesis in selector definition for the user named '{}'",
                    String::from_utf8_lossy(name)
                )
            })?;
            for op in &ops {
                self.apply(&mut u, op).map_err(|e| {
                    format!(
                        "Error loading ACL rule '{}' for the user named '{}': {}",
                        String::from_utf8_lossy(op),
                        String::from_utf8_lossy(name),
                        e.message()
                    )
                })?;
            }
            self.users.insert(u.name().to_string(), Arc::new(u));
        }
        Ok(())
    }
}

/// ACLMergeSelectorArguments: a selector may span several arguments
/// (`(+get` `~k*)`); they are joined with spaces. `Err` is the index of an
/// opening argument that is never closed.
pub fn merge_selectors(ops: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(ops.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in ops.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.ends_with(b")") {
                out.push(open.take().expect("open selector").1);
            }
        } else if op.first() == Some(&b'(') && !op.ends_with(b")") {
            open = Some((j, op.to_vec()));
        } else {
            out.push(op.to_vec());
        }
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &s[start..end]
}
