//! Command help built from the server's `COMMAND DOCS` reply, as redis-cli 7.0 builds it.
//!
//! Each command (and each subcommand, as `CONFIG GET`) gets an argument synopsis such as
//! `key value [NX|XX] [GET] ...`. The REPL shows it as a grey hint after what was typed, and
//! `help <command>` prints it with the summary, version and group.

use crate::resp::Reply;
use crate::split::split_args;

/// Help for one command or subcommand.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Upper-case full name, subcommands space separated (`CONFIG GET`).
    pub name: String,
    /// Argument synopsis.
    pub params: String,
    /// One-line summary.
    pub summary: String,
    /// Version that introduced it.
    pub since: String,
    /// Command group (`string`, `server`, ...).
    pub group: String,
}

/// All entries, sorted by name.
#[derive(Debug, Default, Clone)]
pub struct Docs {
    /// The entries.
    pub entries: Vec<Entry>,
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(s) | Reply::Status(s) | Reply::Verbatim(s) => {
            Some(String::from_utf8_lossy(s).into_owned())
        }
        _ => None,
    }
}

/// Key/value pairs of a RESP3 map or a RESP2 flat array.
fn pairs(r: &Reply) -> Option<impl Iterator<Item = (&Reply, &Reply)>> {
    match r {
        Reply::Map(v) | Reply::Array(v) => Some(v.chunks_exact(2).map(|c| (&c[0], &c[1]))),
        _ => None,
    }
}

fn items(r: &Reply) -> &[Reply] {
    match r {
        Reply::Array(v) | Reply::Set(v) => v,
        _ => &[],
    }
}

/// One argument's synopsis (`cliAddArgument`).
fn argument(arg: &Reply) -> String {
    let (mut name, mut ty, mut token) = (String::new(), String::new(), String::new());
    let (mut optional, mut multiple) = (false, false);
    let mut children: &[Reply] = &[];
    if let Some(fields) = pairs(arg) {
        for (k, v) in fields {
            match text(k).as_deref() {
                Some("name") => name = text(v).unwrap_or_default(),
                Some("type") => ty = text(v).unwrap_or_default(),
                Some("token") => token = text(v).unwrap_or_default(),
                Some("arguments") => children = items(v),
                Some("flags") => {
                    for f in items(v) {
                        match text(f).as_deref() {
                            Some("optional") => optional = true,
                            Some("multiple") => multiple = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let repeat = match ty.as_str() {
        "oneof" => children.iter().map(argument).collect::<Vec<_>>().join("|"),
        "block" => children.iter().map(argument).collect::<Vec<_>>().join(" "),
        "pure-token" => String::new(),
        _ => name,
    };
    let mut out = String::new();
    if optional {
        out.push('[');
    }
    out.push_str(&token);
    if !token.is_empty() && ty != "pure-token" {
        out.push(' ');
    }
    out.push_str(&repeat);
    if multiple {
        out.push_str(&format!(" [{repeat} ...]"));
    }
    if optional {
        out.push(']');
    }
    out
}

fn add_entries(out: &mut Vec<Entry>, name: &str, doc: &Reply) {
    let mut e = Entry {
        name: name.replace('|', " ").to_uppercase(),
        params: String::new(),
        summary: String::new(),
        since: String::new(),
        group: String::new(),
    };
    let mut subcommands = None;
    if let Some(fields) = pairs(doc) {
        for (k, v) in fields {
            match text(k).as_deref() {
                Some("summary") => e.summary = text(v).unwrap_or_default(),
                Some("since") => e.since = text(v).unwrap_or_default(),
                Some("group") => e.group = text(v).unwrap_or_default(),
                Some("arguments") => {
                    e.params = items(v).iter().map(argument).collect::<Vec<_>>().join(" ");
                }
                Some("subcommands") => subcommands = Some(v),
                _ => {}
            }
        }
    }
    out.push(e);
    if let Some(subs) = subcommands.and_then(pairs) {
        for (k, v) in subs {
            if let Some(n) = text(k) {
                add_entries(out, &n, v);
            }
        }
    }
}

impl Docs {
    /// Builds help from a `COMMAND DOCS` reply (RESP2 array or RESP3 map); `None` on an error
    /// reply or an empty one.
    pub fn from_reply(r: &Reply) -> Option<Docs> {
        let mut entries = Vec::new();
        for (k, v) in pairs(r)? {
            if let Some(name) = text(k) {
                add_entries(&mut entries, &name, v);
            }
        }
        if entries.is_empty() {
            return None;
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(Docs { entries })
    }

    /// The hint for a partially typed line (`hintsCallback`): the synopsis of the longest
    /// matching command, minus the arguments already typed.
    pub fn hint(&self, line: &str) -> Option<String> {
        let typed = split_args(line.as_bytes())?;
        if typed.is_empty() {
            return None;
        }
        let mut best: Option<(&Entry, usize)> = None;
        for e in &self.entries {
            let words: Vec<&str> = e.name.split(' ').collect();
            if words.len() > typed.len() {
                continue;
            }
            let matches = words
                .iter()
                .zip(&typed)
                .all(|(w, t)| w.as_bytes().eq_ignore_ascii_case(t));
            if matches && best.is_none_or(|(_, n)| words.len() > n) {
                best = Some((e, words.len()));
            }
        }
        let (entry, matched) = best?;
        let mut hint = entry.params.as_str();
        // Drop one synopsis word per extra typed argument, but never past an optional part.
        let mut to_remove = typed.len() - matched;
        while to_remove > 0 && !hint.is_empty() {
            if hint.starts_with('[') {
                break;
            }
            if hint.starts_with(' ') {
                to_remove -= 1;
            }
            hint = &hint[1..];
        }
        let ends_with_space = line.ends_with(|c: char| c.is_ascii_whitespace());
        Some(if ends_with_space {
            hint.to_string()
        } else {
            format!(" {hint}")
        })
    }

    /// Output of `help <command>` / `help @<group>`, with redis-cli's colours.
    pub fn help_text(&self, topic: &[Vec<u8>]) -> String {
        let mut out = String::new();
        let first = String::from_utf8_lossy(&topic[0]).into_owned();
        if let Some(group) = first.strip_prefix('@') {
            for e in self
                .entries
                .iter()
                .filter(|e| e.group.eq_ignore_ascii_case(group))
            {
                out.push_str(&entry_help(e, false));
            }
        } else {
            for e in &self.entries {
                let words: Vec<&str> = e.name.split(' ').collect();
                if topic.len() <= words.len()
                    && topic
                        .iter()
                        .zip(&words)
                        .all(|(t, w)| t.eq_ignore_ascii_case(w.as_bytes()))
                {
                    out.push_str(&entry_help(e, true));
                }
            }
        }
        out.push_str("\r\n");
        out
    }

    /// Command names for tab completion.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }
}

fn entry_help(e: &Entry, with_group: bool) -> String {
    let mut s = format!(
        "\r\n  \x1b[1m{}\x1b[0m \x1b[90m{}\x1b[0m\r\n",
        e.name, e.params
    );
    s.push_str(&format!("  \x1b[33msummary:\x1b[0m {}\r\n", e.summary));
    if !e.since.is_empty() {
        s.push_str(&format!("  \x1b[33msince:\x1b[0m {}\r\n", e.since));
    }
    if with_group {
        s.push_str(&format!("  \x1b[33mgroup:\x1b[0m {}\r\n", e.group));
    }
    s
}

/// Output of a bare `help`.
pub fn generic_help() -> String {
    format!(
        "shardis-cli {}\n\
         To get help about Redis commands type:\n      \
         \"help @<group>\" to get a list of commands in <group>\n      \
         \"help <command>\" for help on <command>\n      \
         \"help <tab>\" to get a list of possible help topics\n      \
         \"quit\" to exit\n\n\
         To set shardis-cli preferences:\n      \
         \":set hints\" enable online hints\n      \
         \":set nohints\" disable online hints\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }
    fn arg(fields: &[(&str, Reply)]) -> Reply {
        Reply::Array(fields.iter().flat_map(|(k, v)| [b(k), v.clone()]).collect())
    }
    fn flags(f: &[&str]) -> Reply {
        Reply::Array(
            f.iter()
                .map(|s| Reply::Status(s.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// The SET entry of redis 7.0.15's COMMAND DOCS (RESP2 shape), trimmed to the fields used.
    fn set_docs() -> Reply {
        let condition = arg(&[
            ("name", b("condition")),
            ("type", b("oneof")),
            ("flags", flags(&["optional"])),
            (
                "arguments",
                Reply::Array(vec![
                    arg(&[
                        ("name", b("nx")),
                        ("type", b("pure-token")),
                        ("token", b("NX")),
                    ]),
                    arg(&[
                        ("name", b("xx")),
                        ("type", b("pure-token")),
                        ("token", b("XX")),
                    ]),
                ]),
            ),
        ]);
        let get = arg(&[
            ("name", b("get")),
            ("type", b("pure-token")),
            ("token", b("GET")),
            ("flags", flags(&["optional"])),
        ]);
        let expiration = arg(&[
            ("name", b("expiration")),
            ("type", b("oneof")),
            ("flags", flags(&["optional"])),
            (
                "arguments",
                Reply::Array(vec![
                    arg(&[
                        ("name", b("seconds")),
                        ("type", b("integer")),
                        ("token", b("EX")),
                    ]),
                    arg(&[
                        ("name", b("keepttl")),
                        ("type", b("pure-token")),
                        ("token", b("KEEPTTL")),
                    ]),
                ]),
            ),
        ]);
        let doc = arg(&[
            ("summary", b("Set the string value of a key")),
            ("since", b("1.0.0")),
            ("group", b("string")),
            (
                "arguments",
                Reply::Array(vec![
                    arg(&[("name", b("key")), ("type", b("key"))]),
                    arg(&[("name", b("value")), ("type", b("string"))]),
                    condition,
                    get,
                    expiration,
                ]),
            ),
        ]);
        let del = arg(&[
            ("summary", b("Delete a key")),
            ("since", b("1.0.0")),
            ("group", b("generic")),
            (
                "arguments",
                Reply::Array(vec![arg(&[
                    ("name", b("key")),
                    ("type", b("key")),
                    ("flags", flags(&["multiple"])),
                ])]),
            ),
        ]);
        let config_get = arg(&[
            ("summary", b("Get the values of configuration parameters")),
            ("since", b("2.0.0")),
            ("group", b("server")),
            (
                "arguments",
                Reply::Array(vec![arg(&[
                    ("name", b("parameter")),
                    ("type", b("string")),
                    ("flags", flags(&["multiple"])),
                ])]),
            ),
        ]);
        let config = arg(&[
            (
                "summary",
                b("A container for server configuration commands"),
            ),
            ("since", b("2.0.0")),
            ("group", b("server")),
            (
                "subcommands",
                Reply::Array(vec![b("config|get"), config_get]),
            ),
        ]);
        Reply::Array(vec![b("set"), doc, b("del"), del, b("config"), config])
    }

    #[test]
    fn synopsis_from_argument_tree() {
        let d = Docs::from_reply(&set_docs()).unwrap();
        let names: Vec<&str> = d.names().collect();
        assert_eq!(names, ["CONFIG", "CONFIG GET", "DEL", "SET"]);
        let set = d.entries.iter().find(|e| e.name == "SET").unwrap();
        assert_eq!(set.params, "key value [NX|XX] [GET] [EX seconds|KEEPTTL]");
        assert_eq!(d.entries[2].params, "key [key ...]");
        assert_eq!(d.entries[1].params, "parameter [parameter ...]");
    }

    #[test]
    fn hints_follow_typed_arguments() {
        let d = Docs::from_reply(&set_docs()).unwrap();
        assert_eq!(
            d.hint("set").unwrap(),
            " key value [NX|XX] [GET] [EX seconds|KEEPTTL]"
        );
        assert_eq!(
            d.hint("SET ").unwrap(),
            "key value [NX|XX] [GET] [EX seconds|KEEPTTL]"
        );
        assert_eq!(
            d.hint("set k").unwrap(),
            " value [NX|XX] [GET] [EX seconds|KEEPTTL]"
        );
        assert_eq!(
            d.hint("set k v ").unwrap(),
            "[NX|XX] [GET] [EX seconds|KEEPTTL]"
        );
        assert_eq!(d.hint("config get ").unwrap(), "parameter [parameter ...]");
        assert_eq!(d.hint("nosuch"), None);
        assert_eq!(d.hint(""), None);
    }

    #[test]
    fn help_text_lists_matching_entries() {
        let d = Docs::from_reply(&set_docs()).unwrap();
        let h = d.help_text(&[b"del".to_vec()]);
        assert_eq!(
            h,
            "\r\n  \x1b[1mDEL\x1b[0m \x1b[90mkey [key ...]\x1b[0m\r\n  \x1b[33msummary:\x1b[0m Delete a key\r\n  \x1b[33msince:\x1b[0m 1.0.0\r\n  \x1b[33mgroup:\x1b[0m generic\r\n\r\n"
        );
        assert_eq!(
            d.help_text(&[b"config".to_vec()])
                .matches("summary")
                .count(),
            2
        );
        assert_eq!(
            d.help_text(&[b"@server".to_vec()])
                .matches("summary")
                .count(),
            2
        );
        assert_eq!(d.help_text(&[b"nosuch".to_vec()]), "\r\n");
    }

    #[test]
    fn error_reply_gives_no_docs() {
        assert!(Docs::from_reply(&Reply::Error(b"ERR unknown command".to_vec())).is_none());
    }
}
