//! Interactive mode: a line editor with history and grey argument hints when stdin is a terminal,
//! plain line-by-line reading when it is not (redis-cli's `repl()` over linenoise).

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use rustyline::completion::Completer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::docs::Docs;
use crate::session::{Output, Session};
use crate::split::split_args;

/// Hints and completion from COMMAND DOCS; without docs it does nothing.
struct CliHelper {
    docs: Option<Docs>,
    /// `:set hints` / `:set nohints`.
    hints: bool,
}

impl Hinter for CliHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if !self.hints || pos < line.len() {
            return None;
        }
        self.docs.as_ref()?.hint(line)
    }
}

impl Highlighter for CliHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Colour 90 (dark grey), as linenoise draws redis-cli's hints.
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

impl Completer for CliHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let Some(docs) = &self.docs else {
            return Ok((0, Vec::new()));
        };
        let typed = &line[..pos];
        let (start, prefix) = match typed
            .strip_prefix("help ")
            .or_else(|| typed.strip_prefix("HELP "))
        {
            Some(rest) => (pos - rest.len(), rest),
            None => (0, typed),
        };
        let lower = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase());
        let candidates = docs
            .names()
            .filter(|n| n.len() >= prefix.len() && n[..prefix.len()].eq_ignore_ascii_case(prefix))
            .map(|n| {
                if lower {
                    n.to_lowercase()
                } else {
                    n.to_string()
                }
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Validator for CliHelper {}
impl Helper for CliHelper {}

fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SHARDISCLI_HISTFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".shardiscli_history"))
}

/// Commands that carry passwords stay out of the history file.
fn is_sensitive(args: &[Vec<u8>]) -> bool {
    let name = args
        .first()
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    let sub = args
        .get(1)
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(name.as_slice(), b"auth" | b"hello" | b"migrate")
        || (name == b"acl" && sub == b"setuser")
}

/// What to do with one input line.
#[derive(Debug, PartialEq)]
enum Line {
    /// Nothing to run.
    Empty,
    /// Unbalanced quotes.
    Invalid,
    /// A non-positive repeat count.
    BadRepeat,
    /// quit / exit.
    Quit,
    /// `:set hints` (true) / `:set nohints` (false).
    Hints(bool),
    /// Another `:` line: the message redis-cli prints for it.
    BadPreference(String),
    /// `connect host port`.
    Connect(String, u16),
    /// Run `args` `repeat` times.
    Run(Vec<Vec<u8>>, i64),
}

fn parse_line(line: &str) -> Line {
    let Some(mut args) = split_args(line.as_bytes()) else {
        return Line::Invalid;
    };
    if args.is_empty() {
        return Line::Empty;
    }
    let first = args[0].to_ascii_lowercase();
    if first == b"quit" || first == b"exit" {
        return Line::Quit;
    }
    if first.starts_with(b":") {
        let arg = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
        if first == b":set" && args.len() >= 2 {
            return match arg(1).unwrap_or_default().to_ascii_lowercase().as_str() {
                "hints" => Line::Hints(true),
                "nohints" => Line::Hints(false),
                _ => Line::BadPreference(format!(
                    "unknown redis-cli preference '{}'",
                    arg(1).unwrap_or_default()
                )),
            };
        }
        return Line::BadPreference(format!(
            "unknown redis-cli internal command '{}'",
            arg(0).unwrap_or_default()
        ));
    }
    if args.len() == 3 && first == b"connect" {
        let host = String::from_utf8_lossy(&args[1]).into_owned();
        let port = String::from_utf8_lossy(&args[2]).parse().unwrap_or(0);
        return Line::Connect(host, port);
    }
    // A leading number repeats the command: `3 ping`.
    let mut repeat = 1;
    if args.len() > 1 {
        if let Ok(n) = std::str::from_utf8(&args[0])
            .unwrap_or("x")
            .trim_start()
            .parse::<i64>()
        {
            if n <= 0 {
                return Line::BadRepeat;
            }
            repeat = n;
            args.remove(0);
        }
    }
    Line::Run(args, repeat)
}

/// Runs one line; false to quit. `hints` receives `:set [no]hints`.
fn run_line(session: &mut Session, line: &str, hints: &mut bool) -> bool {
    match parse_line(line) {
        Line::Empty => {}
        Line::Hints(on) => *hints = on,
        Line::BadPreference(msg) => println!("{msg}"),
        Line::Quit => return false,
        Line::Invalid => {
            println!("Invalid argument(s)");
        }
        Line::BadRepeat => {
            println!("Invalid redis-cli repeat command option value.");
        }
        Line::Connect(host, port) => {
            session.target.host = host;
            session.target.port = port;
            session.reconnect();
        }
        Line::Run(args, repeat) => {
            let start = Instant::now();
            session.issue(&args, repeat);
            let elapsed = start.elapsed();
            if elapsed.as_millis() >= 500 && session.output == Output::Standard {
                println!("({:.2}s)", elapsed.as_secs_f64());
            }
        }
    }
    let _ = std::io::stdout().flush();
    true
}

/// Runs the REPL until EOF, Ctrl-C/Ctrl-D or `quit`.
pub fn run(session: &mut Session) {
    session.interactive = true;
    if !std::io::stdin().is_terminal() {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if !run_line(session, &String::from_utf8_lossy(&buf), &mut true) {
                return;
            }
        }
    }

    let docs = session.load_docs().cloned();
    let mut editor: Editor<CliHelper, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Cannot start the line editor: {e}");
            std::process::exit(1);
        }
    };
    editor.set_helper(Some(CliHelper { docs, hints: true }));
    let history = history_path();
    if let Some(p) = &history {
        let _ = editor.load_history(p);
    }
    loop {
        let line = match editor.readline(&session.prompt()) {
            Ok(l) => l,
            Err(_) => return,
        };
        let keep = split_args(line.as_bytes()).is_none_or(|a| !is_sensitive(&a));
        if keep && !line.trim().is_empty() {
            let _ = editor.history_mut().add(&line);
            if let Some(p) = &history {
                let _ = editor.save_history(p);
            }
        }
        let mut hints = editor.helper().is_none_or(|h| h.hints);
        if !run_line(session, &line, &mut hints) {
            return;
        }
        if let Some(h) = editor.helper_mut() {
            h.hints = hints;
        }
        // A reconnect may have reached a server whose docs we did not have yet.
        if editor.helper().is_some_and(|h| h.docs.is_none()) && session.client.is_some() {
            let docs = session.load_docs().cloned();
            editor.set_helper(Some(CliHelper { docs, hints }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_parsing() {
        assert_eq!(parse_line("   "), Line::Empty);
        assert_eq!(parse_line("QUIT"), Line::Quit);
        assert_eq!(parse_line("exit now"), Line::Quit);
        assert_eq!(parse_line("\"abc"), Line::Invalid);
        assert_eq!(parse_line("3 ping"), Line::Run(vec![b"ping".to_vec()], 3));
        assert_eq!(parse_line("0 ping"), Line::BadRepeat);
        assert_eq!(parse_line("3"), Line::Run(vec![b"3".to_vec()], 1));
        assert_eq!(
            parse_line("set 'a b' 1"),
            Line::Run(vec![b"set".to_vec(), b"a b".to_vec(), b"1".to_vec()], 1)
        );
        assert_eq!(
            parse_line("connect localhost 6380"),
            Line::Connect("localhost".into(), 6380)
        );
    }

    #[test]
    fn passwords_stay_out_of_history() {
        assert!(is_sensitive(&[b"AUTH".to_vec(), b"pw".to_vec()]));
        assert!(is_sensitive(&[b"acl".to_vec(), b"SETUSER".to_vec()]));
        assert!(!is_sensitive(&[b"get".to_vec(), b"auth".to_vec()]));
    }
}
