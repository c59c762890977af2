#!/usr/bin/env python3
"""Differential test of what replicas receive: the same command scripts run on
redis-server and shardis while a fake replica on each (`PSYNC ? -1`, the
snapshot skipped) reads the replication stream; the commands in the two
streams must be the same, in the same order, byte for byte.

Usage: propagation.py <redis_port> <shardis_port> script.txt [script.txt ...]

A script is like diff.py's (one shlex-split command per line, '#' comments),
run by one client that waits for each reply; replies are compared too. Each
script starts with FLUSHALL and SELECT 0, then a new fake replica attaches, so
every stream starts at the script's first command. A script ends with
`PUBLISH __end_of_stream__ .` (Redis replicates PUBLISH): the stream is read
until that command arrives. PING and REPLCONF GETACK, which each server sends
on its own schedule, are left out of the comparison, and an absolute time
(PXAT's, EXAT's, XCLAIM TIME's, PEXPIREAT's, EXPIREAT's) compares as `<unix time>`: each server
reads its own clock. In a script, `\\n` inside an argument is a newline (FUNCTION
LOAD's shebang line), and `!sleep <seconds>` lets TTLs pass. The servers must run
with `repl-diskless-sync-delay 0` and `enable-debug-command yes` (a script may
stop active expiry with DEBUG SET-ACTIVE-EXPIRE 0, so that only lazy expiry
deletes keys, at a point both servers agree on).

What this catches: a command propagated in another form than Redis's (a
cross-shard MSET as per-shard parts), a SELECT or MULTI out of place, a
command that a replica never hears of.
"""
import difflib
import os
import shlex
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, main, report, script_lines  # noqa: E402

END = ["PUBLISH", "__end_of_stream__", "."]
DEADLINE = 10  # seconds for the handshake and for the end marker


class FakeReplica(Conn):
    """A connection that asked for a full sync and skipped the snapshot."""

    def __init__(self, port):
        super().__init__(port)
        self.s.settimeout(DEADLINE)
        self.s.sendall(b"PSYNC ? -1\r\n")
        line = self._take_line()
        if not line.startswith(b"+FULLRESYNC"):
            raise RuntimeError("PSYNC answered %r" % line)
        # Newlines keep the link alive until the payload starts.
        while True:
            while not self.buf:
                self._fill()
            if self.buf[:1] == b"\n":
                self.buf = self.buf[1:]
                continue
            break
        header = self._take_line()
        if header.startswith(b"$EOF:"):
            mark = header[5:]
            while mark not in self.buf:
                self._fill()
            self.buf = self.buf[self.buf.index(mark) + len(mark):]
        else:
            n = int(header[1:])
            while len(self.buf) < n:
                self._fill()
            self.buf = self.buf[n:]

    def _take_line(self):
        i = self._line(0)
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def commands_until(self, marker):
        """The stream's commands up to and including `marker`, as lists of bytes."""
        out = []
        deadline = time.time() + DEADLINE
        while time.time() < deadline:
            while self.buf[:1] == b"\n":
                self.buf = self.buf[1:]
            end = self._reply_end(0)
            raw, self.buf = self.buf[:end], self.buf[end:]
            parts = raw.split(b"\r\n")
            n = int(parts[0][1:])
            args = [parts[2 + 2 * i] for i in range(n)]
            name = args[0].upper()
            if name == b"PING" or (name == b"REPLCONF" and args[1:2] == [b"GETACK"]):
                continue
            out.append(args)
            if args == marker:
                return out
        raise RuntimeError("the end marker did not arrive within %ds" % DEADLINE)


# Absolute times, read from each server's own clock when the command ran: the
# argument after the option PXAT, EXAT or TIME (XCLAIM), and the time of
# PEXPIREAT/EXPIREAT.
TIME_OPTIONS = {b"PXAT", b"EXAT", b"TIME"}
TIME_COMMANDS = {b"PEXPIREAT", b"EXPIREAT"}


def show(cmds):
    out = []
    for c in cmds:
        words = []
        for i, a in enumerate(c):
            timed = (i > 0 and c[i - 1].upper() in TIME_OPTIONS) or (
                i == 2 and c[0].upper() in TIME_COMMANDS
            )
            if timed and a.isdigit():
                words.append("<unix time>")
            else:
                words.append(a.decode("utf-8", "backslashreplace"))
        out.append(" ".join(words))
    return out


def run(script, rport, sport):
    failures = 0
    conns = [Conn(rport), Conn(sport)]
    for c in conns:
        c.call(["FLUSHALL"])
        c.call(["SELECT", "0"])
    replicas = [FakeReplica(rport), FakeReplica(sport)]
    for lineno, line in script_lines(script):
        if line.startswith("!sleep "):
            time.sleep(float(line.split()[1]))
            continue
        args = [a.replace("\\n", "\n") for a in shlex.split(line)]
        r, s = (c.call(args) for c in conns)
        if r != s:
            failures += 1
            report(script, lineno, line, r, s)
    for c in conns:
        c.call(END)
    marker = [a.encode() for a in END]
    try:
        streams = [show(rep.commands_until(marker)) for rep in replicas]
    except (RuntimeError, socket.timeout, EOFError) as e:
        print("%s: %s" % (script, e), flush=True)
        return failures + 1
    if streams[0] != streams[1]:
        failures += 1
        for d in difflib.unified_diff(streams[0], streams[1], "redis", "shardis", lineterm="", n=2):
            print("  " + d, flush=True)
    for rep in replicas:
        rep.s.close()
    return failures


if __name__ == "__main__":
    main(run)
