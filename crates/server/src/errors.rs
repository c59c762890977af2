//! The error texts the server itself produces (the keyspace has its own table
//! for data errors). Kept byte-identical to Redis 7.0.15. A text both give is
//! written once, in the keyspace's table, and re-exported here.

use bytes::Bytes;

pub use shardis_keyspace::errors::{DB_OUT_OF_RANGE, INVALID_CURSOR, NOT_INTEGER, SYNTAX};

/// Before AUTH when a password is set.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// AUTH with a wrong password.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// AUTH while no password is configured.
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// A write sent to a read-only replica.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
/// Writes refused by min-replicas-to-write.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
/// A command without the `loading` flag while a replica loads its master's RDB.
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
/// A command without the `stale` flag on a replica whose link is down, with
/// `replica-serve-stale-data no`.
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
/// Writes refused after a failed BGSAVE (`stop-writes-on-bgsave-error yes`).
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
/// MODULE LOAD/LOADEX/UNLOAD refused by `enable-module-command`.
pub const MODULE_NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
/// DEBUG refused by `enable-debug-command` (Redis's protected-command check).
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
/// Work could not reach a shard because the server is stopping.
pub const SHUTTING_DOWN: &str = "ERR server is shutting down";

/// Refusal sent to non-loopback clients in protected mode, then the connection closes.
pub const PROTECTED_MODE: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Redis replaces CR/LF in error texts built from user input with spaces.
fn sanitize(s: String) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
pub fn unknown_command(args: &[Bytes]) -> String {
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let s = String::from_utf8_lossy(&a[..a.len().min(room)]);
        list.push_str(&format!("'{s}' "));
    }
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]);
    sanitize(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

/// `ERR wrong number of arguments for 'get' command`.
pub fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// `ERR unknown subcommand or wrong number of arguments for 'x'. Try ACL HELP.`:
/// a handler's answer to arguments the table accepted but it does not
/// (Redis's addReplySubcommandSyntaxError).
pub fn subcommand_syntax(sub: &[u8], container: &str) -> String {
    let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
    sanitize(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        container.to_uppercase()
    ))
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub fn unknown_subcommand(sub: &[u8], container: &str) -> String {
    let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
    sanitize(format!(
        "ERR unknown subcommand '{sub}'. Try {} HELP.",
        container.to_uppercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text() {
        let args = vec![Bytes::from("foo"), Bytes::from("a"), Bytes::from("b\nc")];
        assert_eq!(
            unknown_command(&args),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b c' "
        );
        assert_eq!(
            unknown_command(&[Bytes::from("x")]),
            "ERR unknown command 'x', with args beginning with: "
        );
    }
}
