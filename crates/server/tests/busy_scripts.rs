//! Busy scripts on every core: past `busy-reply-threshold` every other
//! client, on the script's own core too (`--threads 1`), gets Redis's `-BUSY`;
//! SCRIPT KILL / FUNCTION KILL end a script that has not written (its caller
//! gets Redis's error), `-UNKILLABLE` one that has, and SHUTDOWN NOSAVE ends
//! the server. Texts compared by hand with redis-server 7.0.15.

mod common;

use common::{cmd, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
const UNKILLABLE: &str = "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n";
const SPIN: &str = "local i = 0 while true do i = i + 1 end";
const WRITE_SPIN: &str = "redis.call('set', 'w', 1) local i = 0 while true do i = i + 1 end";
const LIB: &str = "#!lua name=busylib\nredis.register_function('spin', function(keys, args) local i = 0 while true do i = i + 1 end end)\nredis.register_function('wspin', function(keys, args) redis.call('set', 'w', 1) local i = 0 while true do i = i + 1 end end)";

fn connect(port: u16, timeout_ms: u64) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(timeout_ms)))
        .unwrap();
    s
}

/// Reads one reply line (errors and simple strings are single lines).
fn line(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        match s.read(&mut b) {
            Ok(1) => out.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn ask(s: &mut TcpStream, parts: &[&str]) -> Option<String> {
    s.write_all(&cmd(parts)).ok()?;
    line(s)
}

/// Starts `parts` on a connection of its own; its reply is read later.
fn start(port: u16, parts: &[&str]) -> TcpStream {
    let mut s = connect(port, 30_000);
    s.write_all(&cmd(parts)).unwrap();
    s
}

/// Waits until a fresh connection's GET is refused with `busy`, then checks
/// that eight more connections (spread over every core) all are.
fn wait_busy(port: u16, busy: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        assert!(Instant::now() < deadline, "no -BUSY reply");
        let mut s = connect(port, 2000);
        match ask(&mut s, &["GET", "k"]) {
            Some(r) if r.starts_with("-BUSY") => {
                assert_eq!(r, busy);
                break s;
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    for _ in 0..8 {
        let mut c = connect(port, 10_000);
        assert_eq!(ask(&mut c, &["PING"]).as_deref(), Some(busy));
    }
    s
}

/// The server process ends within a deadline.
fn exits(srv: &mut Server) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = srv.child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sha1(body: &str, port: u16) -> String {
    let mut c = connect(port, 10_000);
    c.write_all(&cmd(&["SCRIPT", "LOAD", body])).unwrap();
    let mut buf = vec![0u8; 128];
    let n = c.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().nth(1).unwrap().to_string()
}

fn eval_killed_then_unkillable(threads: &str) {
    let mut srv = Server::start(&["--threads", threads, "--busy-reply-threshold", "50"]);
    let port = srv.port;
    let sha = sha1(SPIN, port);
    let mut caller = start(port, &["EVAL", SPIN, "0"]);
    let mut s = wait_busy(port, BUSY_EVAL);
    // FUNCTION KILL and FUNCTION STATS do not apply to an EVAL script.
    assert_eq!(
        ask(&mut s, &["FUNCTION", "KILL"]).as_deref(),
        Some(BUSY_EVAL)
    );
    assert_eq!(
        ask(&mut s, &["FUNCTION", "STATS"]).as_deref(),
        Some(BUSY_EVAL)
    );
    assert_eq!(ask(&mut s, &["SHUTDOWN"]).as_deref(), Some(BUSY_EVAL));
    assert_eq!(ask(&mut s, &["SCRIPT", "KILL"]).as_deref(), Some("+OK\r\n"));
    assert_eq!(
        line(&mut caller),
        Some(format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        ))
    );
    // Both connections work again once the script is gone.
    assert_eq!(ask(&mut s, &["PING"]).as_deref(), Some("+PONG\r\n"));
    assert_eq!(ask(&mut caller, &["PING"]).as_deref(), Some("+PONG\r\n"));
    assert_eq!(
        ask(&mut s, &["SCRIPT", "KILL"]).as_deref(),
        Some("-NOTBUSY No scripts in execution right now.\r\n")
    );
    // Written, then looping: SCRIPT KILL refuses, SHUTDOWN NOSAVE ends the server.
    let _caller = start(port, &["EVAL", WRITE_SPIN, "0"]);
    let mut s = wait_busy(port, BUSY_EVAL);
    assert_eq!(
        ask(&mut s, &["SCRIPT", "KILL"]).as_deref(),
        Some(UNKILLABLE)
    );
    assert_eq!(ask(&mut s, &["SHUTDOWN", "NOSAVE"]), None);
    assert!(exits(&mut srv), "SHUTDOWN NOSAVE did not end the server");
}

fn fcall_killed_then_unkillable(threads: &str) {
    let mut srv = Server::start(&["--threads", threads, "--busy-reply-threshold", "50"]);
    let port = srv.port;
    let mut c = connect(port, 10_000);
    c.write_all(&cmd(&["FUNCTION", "LOAD", LIB])).unwrap();
    assert_eq!(line(&mut c).as_deref(), Some("$7\r\n"));
    let mut caller = start(port, &["FCALL", "spin", "0"]);
    let mut s = wait_busy(port, BUSY_FUNCTION);
    assert_eq!(
        ask(&mut s, &["SCRIPT", "KILL"]).as_deref(),
        Some(BUSY_FUNCTION)
    );
    assert_eq!(ask(&mut s, &["SHUTDOWN"]).as_deref(), Some(BUSY_FUNCTION));
    assert_eq!(
        ask(&mut s, &["FUNCTION", "KILL"]).as_deref(),
        Some("+OK\r\n")
    );
    assert_eq!(
        line(&mut caller).as_deref(),
        Some(
            "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.\r\n"
        )
    );
    assert_eq!(ask(&mut caller, &["PING"]).as_deref(), Some("+PONG\r\n"));
    let _caller = start(port, &["FCALL", "wspin", "0"]);
    let mut s = wait_busy(port, BUSY_FUNCTION);
    assert_eq!(
        ask(&mut s, &["FUNCTION", "KILL"]).as_deref(),
        Some(UNKILLABLE)
    );
    assert_eq!(
        ask(&mut s, &["SCRIPT", "KILL"]).as_deref(),
        Some(UNKILLABLE)
    );
    assert_eq!(ask(&mut s, &["SHUTDOWN", "NOSAVE"]), None);
    assert!(exits(&mut srv), "SHUTDOWN NOSAVE did not end the server");
}

#[test]
fn busy_eval_one_thread() {
    eval_killed_then_unkillable("1");
}

#[test]
fn busy_eval_two_threads() {
    eval_killed_then_unkillable("2");
}

#[test]
fn busy_fcall_one_thread() {
    fcall_killed_then_unkillable("1");
}

#[test]
fn busy_fcall_two_threads() {
    fcall_killed_then_unkillable("2");
}

/// A script that catches the kill error with `pcall` in a loop still ends
/// (after a kill every line raises it, as in Redis), and a pipelined client on the script's core gets one
/// `-BUSY` per request, in order.
#[test]
fn pcall_cannot_hide_a_kill_and_pipelines_stay_ordered() {
    let srv = Server::start(&["--threads", "1", "--busy-reply-threshold", "50"]);
    let port = srv.port;
    let body = "while true do pcall(function() while true do end end) end";
    let sha = sha1(body, port);
    let mut caller = start(port, &["EVAL", body, "0"]);
    let mut s = wait_busy(port, BUSY_EVAL);
    let mut pipe = Vec::new();
    for _ in 0..50 {
        pipe.extend(cmd(&["GET", "k"]));
    }
    pipe.extend(cmd(&["SCRIPT", "KILL"]));
    s.write_all(&pipe).unwrap();
    for _ in 0..50 {
        assert_eq!(line(&mut s).as_deref(), Some(BUSY_EVAL));
    }
    assert_eq!(line(&mut s).as_deref(), Some("+OK\r\n"));
    assert_eq!(
        line(&mut caller),
        Some(format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        ))
    );
    assert_eq!(ask(&mut s, &["GET", "k"]).as_deref(), Some("$-1\r\n"));
}

/// A script queued in MULTI runs inside EXEC (holding every shard) and is
/// still answerable and killable from its own core; EXEC's array holds
/// Redis's error.
#[test]
fn busy_script_inside_exec() {
    let srv = Server::start(&["--threads", "1", "--busy-reply-threshold", "50"]);
    let port = srv.port;
    let sha = sha1(SPIN, port);
    let mut caller = connect(port, 30_000);
    let mut pipe = cmd(&["MULTI"]);
    pipe.extend(cmd(&["EVAL", SPIN, "0"]));
    pipe.extend(cmd(&["EXEC"]));
    caller.write_all(&pipe).unwrap();
    let mut s = wait_busy(port, BUSY_EVAL);
    assert_eq!(ask(&mut s, &["SCRIPT", "KILL"]).as_deref(), Some("+OK\r\n"));
    assert_eq!(line(&mut caller).as_deref(), Some("+OK\r\n"));
    assert_eq!(line(&mut caller).as_deref(), Some("+QUEUED\r\n"));
    assert_eq!(line(&mut caller).as_deref(), Some("*1\r\n"));
    assert_eq!(
        line(&mut caller),
        Some(format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        ))
    );
}

/// A loop inside a Lua coroutine is reached by the hook too (Lua 5.1 copies
/// a thread's hook to the coroutines it creates), so it is killable on its
/// own core.
#[test]
fn a_loop_inside_a_coroutine_is_killable() {
    let srv = Server::start(&["--threads", "1", "--busy-reply-threshold", "50"]);
    let port = srv.port;
    let body = "coroutine.wrap(function() while true do end end)()";
    let sha = sha1(body, port);
    let mut caller = start(port, &["EVAL", body, "0"]);
    let mut s = wait_busy(port, BUSY_EVAL);
    assert_eq!(ask(&mut s, &["SCRIPT", "KILL"]).as_deref(), Some("+OK\r\n"));
    assert_eq!(
        line(&mut caller),
        Some(format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        ))
    );
    assert_eq!(
        ask(&mut caller, &["EVAL", "return 1", "0"]).as_deref(),
        Some(":1\r\n")
    );
}
