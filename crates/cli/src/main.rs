//! `shardis-cli`: a redis-cli compatible command-line client.
//!
//! It sits outside the server: a plain blocking client that talks RESP2/RESP3 over one TCP
//! connection to shardis or to any redis-server, and prints replies exactly as redis-cli 7.0 does,
//! so scripts written against redis-cli's output keep working.
//!
//! # Layout
//! - `resp`: blocking reply reader and command encoder.
//! - `format`: redis-cli's human (TTY) and raw reply formats.
//! - `split`: `sdssplitargs`, for lines typed in the REPL or piped on stdin.
//! - `client`: connect, AUTH, SELECT, HELLO 3.
//! - `session`: sending commands, repeat/interval, prompt state (db, MULTI), printing.
//! - `docs`: COMMAND DOCS → argument synopses for hints and `help <command>`.
//! - `repl`: interactive mode (rustyline) and line-by-line stdin mode.

mod client;
mod docs;
mod format;
mod repl;
mod resp;
mod session;
mod split;

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::os::unix::ffi::OsStringExt;

use clap::{ArgAction, Parser};

use client::Target;
use session::{Output, Session};

/// Command-line flags, spelled as redis-cli spells them (`-h` is the host, not help).
#[derive(Parser, Debug)]
#[command(
    name = "shardis-cli",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Args {
    /// Server hostname.
    #[arg(short = 'h', default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short = 'p', default_value_t = 6379)]
    port: u16,
    /// Password for AUTH.
    #[arg(short = 'a', long = "pass")]
    pass: Option<String>,
    /// ACL user for AUTH.
    #[arg(long = "user")]
    user: Option<String>,
    /// Server URI: redis://[user:pass@]host:port[/db].
    #[arg(short = 'u')]
    uri: Option<String>,
    /// Database number.
    #[arg(short = 'n')]
    db: Option<i64>,
    /// Run the command this many times (-1: forever).
    #[arg(short = 'r', default_value_t = 1, allow_negative_numbers = true)]
    repeat: i64,
    /// Seconds to wait after each command (sub-second values allowed).
    #[arg(short = 'i', default_value_t = 0.0)]
    interval: f64,
    /// Read the last argument from stdin.
    #[arg(short = 'x', action = ArgAction::SetTrue)]
    stdin_last_arg: bool,
    /// Delimiter between aggregate items in raw output.
    #[arg(short = 'd', default_value = "\n")]
    delim: String,
    /// Raw output even when stdout is a terminal.
    #[arg(long, action = ArgAction::SetTrue, overrides_with = "no_raw")]
    raw: bool,
    /// Human output even when stdout is not a terminal.
    #[arg(long = "no-raw", action = ArgAction::SetTrue, overrides_with = "raw")]
    no_raw: bool,
    /// Use RESP3 (HELLO 3).
    #[arg(short = '3', action = ArgAction::SetTrue)]
    resp3: bool,
    /// Do not warn about a password on the command line.
    #[arg(long = "no-auth-warning", action = ArgAction::SetTrue)]
    no_auth_warning: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    version: bool,
    /// Print usage and exit.
    #[arg(long = "help", action = ArgAction::SetTrue)]
    help: bool,
    /// The command and its arguments; none starts the REPL.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

const USAGE: &str = "\
Usage: shardis-cli [OPTIONS] [cmd [arg [arg ...]]]
  -h <hostname>      Server hostname (default: 127.0.0.1).
  -p <port>          Server port (default: 6379).
  -a <password>      Password to use when connecting to the server.
                     You can also use the REDISCLI_AUTH environment
                     variable to pass this password more safely
                     (if both are used, this argument takes precedence).
  --user <username>  Used to send ACL style 'AUTH username pass'. Needs -a.
  --pass <password>  Alias of -a for consistency with the new --user option.
  -u <uri>           Server URI: redis://[user:pass@]host:port[/db].
  -r <repeat>        Execute specified command N times (-1: forever).
  -i <interval>      When -r is used, waits <interval> seconds per command.
                     It is possible to specify sub-second times like -i 0.1.
  -n <db>            Database number.
  -3                 Start session in RESP3 protocol mode.
  -x                 Read last argument from STDIN.
  -d <delimiter>     Delimiter between response bulks for raw formatting (default: \\n).
  --raw              Use raw formatting for replies (default when STDOUT is
                     not a tty).
  --no-raw           Force formatted output even when STDOUT is not a tty.
  --no-auth-warning  Don't show warning message when using password on command
                     line interface.
  --help             Output this help and exit.
  --version          Output version and exit.

Examples:
  cat /etc/passwd | shardis-cli -x set mypasswd
  shardis-cli get mypasswd
  shardis-cli -r 100 lpush mylist x
  shardis-cli -r 100 -i 1 info | grep used_memory_human:

When no command is given, shardis-cli starts in interactive mode.
Type \"help\" in interactive mode for information on available commands.
";

/// An OS error's text without Rust's ` (os error N)` suffix, as C's strerror prints it.
pub(crate) fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s);
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Percent-decodes a URI component.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a `redis://[user:pass@]host:port[/db]` URI; `None` fields were not given.
#[derive(Debug, Default, PartialEq)]
struct Uri {
    user: Option<String>,
    pass: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    db: Option<i64>,
}

/// Parses a URI as redis-cli's `parseRedisUri` does.
fn parse_uri(uri: &str) -> Result<Uri, String> {
    let rest = uri
        .strip_prefix("redis://")
        .ok_or_else(|| "Invalid URI scheme".to_string())?;
    let mut u = Uri::default();
    let mut rest = rest;
    if let Some(at) = rest.find('@') {
        let userinfo = &rest[..at];
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                if !user.is_empty() {
                    u.user = Some(percent_decode(user));
                }
                u.pass = Some(percent_decode(pass));
            }
            None => u.pass = Some(percent_decode(userinfo)),
        }
        rest = &rest[at + 1..];
    }
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if !hostport.is_empty() {
        match hostport.rsplit_once(':') {
            Some((h, p)) => {
                u.host = Some(h.to_string());
                u.port = Some(p.parse().map_err(|_| format!("Invalid port in URI: {p}"))?);
            }
            None => u.host = Some(hostport.to_string()),
        }
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        // atoi semantics: leading digits, else 0.
        let digits: String = path.chars().take_while(|c| c.is_ascii_digit()).collect();
        u.db = Some(digits.parse().unwrap_or(0));
    }
    Ok(u)
}

/// Like redis-cli, an unknown dash option before the command name is an error; clap would take it
/// as the command because the command's own arguments may start with a dash.
fn parse_args<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Args, clap::Error> {
    let args = Args::try_parse_from(argv)?;
    if let Some(first) = args.command.first() {
        if first.to_string_lossy().starts_with('-') {
            let mut e = clap::Error::new(clap::error::ErrorKind::UnknownArgument);
            e.insert(
                clap::error::ContextKind::InvalidArg,
                clap::error::ContextValue::String(first.to_string_lossy().into_owned()),
            );
            return Err(e);
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::UnknownArgument
                | ErrorKind::InvalidValue
                | ErrorKind::ValueValidation => {
                    let bad = e
                        .get(clap::error::ContextKind::InvalidArg)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let bad = bad.split_whitespace().next().unwrap_or("").to_string();
                    eprintln!("Unrecognized option or bad number of args for: '{bad}'");
                }
                _ => eprint!("{e}"),
            }
            std::process::exit(1);
        }
    };
    if args.version {
        println!("shardis-cli {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if args.help {
        print!("shardis-cli {}\n\n{USAGE}", env!("CARGO_PKG_VERSION"));
        return;
    }

    let mut target = Target {
        host: args.host.clone(),
        port: args.port,
        user: None,
        pass: None,
        db: 0,
        resp3: args.resp3,
    };
    let mut warn_pass = false;
    if let Some(uri) = &args.uri {
        match parse_uri(uri) {
            Ok(u) => {
                warn_pass |= u.pass.is_some();
                target.user = u.user.or(target.user);
                target.pass = u.pass.or(target.pass);
                target.host = u.host.unwrap_or(target.host);
                target.port = u.port.unwrap_or(target.port);
                target.db = u.db.unwrap_or(target.db);
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    if args.pass.is_some() {
        warn_pass = true;
        target.pass = args.pass.clone();
    }
    if args.user.is_some() {
        target.user = args.user.clone();
    }
    if let Some(db) = args.db {
        target.db = db;
    }
    if target.pass.is_none() {
        target.pass = std::env::var("REDISCLI_AUTH").ok();
    }
    if warn_pass && !args.no_auth_warning {
        eprintln!("Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.");
    }

    // redis-cli decides the default from stdout; FAKETTY forces the human format (tests).
    let stdout_tty = std::io::stdout().is_terminal() || std::env::var_os("FAKETTY").is_some();
    let output = if args.raw {
        Output::Raw
    } else if args.no_raw || stdout_tty {
        Output::Standard
    } else {
        Output::Raw
    };
    let interval = std::time::Duration::from_secs_f64(args.interval.max(0.0));
    let mut session = Session::new(target, output, args.delim.clone().into_bytes(), interval);

    if args.command.is_empty() {
        session.reconnect();
        repl::run(&mut session);
        return;
    }

    let mut cmd: Vec<Vec<u8>> = args.command.into_iter().map(OsString::into_vec).collect();
    if args.stdin_last_arg {
        let mut buf = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
            eprintln!("Reading from standard input: {}", os_error_text(&e));
            std::process::exit(1);
        }
        cmd.push(buf);
    }
    if !session.reconnect() {
        std::process::exit(1);
    }
    let ok = session.issue(&cmd, args.repeat);
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parsing() {
        assert_eq!(
            parse_uri("redis://bob:s%40cret@10.0.0.1:6380/2").unwrap(),
            Uri {
                user: Some("bob".into()),
                pass: Some("s@cret".into()),
                host: Some("10.0.0.1".into()),
                port: Some(6380),
                db: Some(2)
            }
        );
        assert_eq!(
            parse_uri("redis://:pw@localhost").unwrap(),
            Uri {
                pass: Some("pw".into()),
                host: Some("localhost".into()),
                ..Uri::default()
            }
        );
        assert_eq!(
            parse_uri("redis://pw@h:1/").unwrap(),
            Uri {
                pass: Some("pw".into()),
                host: Some("h".into()),
                port: Some(1),
                ..Uri::default()
            }
        );
        assert_eq!(parse_uri("redis://").unwrap(), Uri::default());
        assert!(parse_uri("http://h").is_err());
        assert!(parse_uri("redis://h:notaport").is_err());
    }

    #[test]
    fn os_error_text_drops_rust_suffix() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&e), "Connection refused");
    }

    #[test]
    fn flags_parse_like_redis_cli() {
        let a = Args::try_parse_from([
            "shardis-cli",
            "-h",
            "10.1.1.1",
            "-p",
            "7000",
            "-r",
            "-1",
            "-3",
            "set",
            "k",
            "-1",
        ])
        .unwrap();
        assert_eq!(a.host, "10.1.1.1");
        assert_eq!(a.port, 7000);
        assert_eq!(a.repeat, -1);
        assert!(a.resp3);
        assert_eq!(a.command, ["set", "k", "-1"].map(OsString::from));
        let a = Args::try_parse_from(["shardis-cli", "--raw", "--no-raw"]).unwrap();
        assert!(a.no_raw && !a.raw);
        assert!(parse_args(["shardis-cli", "-z"].map(OsString::from)).is_err());
        assert!(parse_args(["shardis-cli", "-p"].map(OsString::from)).is_err());
    }
}
