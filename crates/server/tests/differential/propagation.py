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
`FLUSHALL SYNC`: the stream is read until that command arrives. PING and REPLCONF GETACK, which each server sends
on its own schedule, are left out of the comparison, and an absolute time
(PXAT's, EXAT's, XCLAIM TIME's, PEXPIREAT's, EXPIREAT's) compares as `<unix time>`: each server
reads its own clock. In a script, `\\n` inside an argument is a newline (FUNCTION
LOAD's shebang line), and `!sleep <seconds>` lets TTLs pass. The servers must run
with `repl-diskless-sync-delay 0` and `enable-debug-command yes` (a script may
stop active expiry with DEBUG SET-ACTIVE-EXPIRE 0, so that only lazy expiry
deletes keys, at a point both servers agree on).

How the streams are compared: equal streams pass at once. Otherwise each is
cut into units (a command, or a MULTI … EXEC block, with its db), and they
pass if they hold the same units and every key's units come in the same
order, with FLUSHALL, FLUSHDB and SWAPDB in their place against all the
others (other keyless commands keep their order among their own kind). shardis merges its cores' write logs, so two writes to keys on
different cores, one after the other, may leave in either order; a replica
ends up the same. Keys are found with redis-server's COMMAND GETKEYS.

What this catches: a command propagated in another form than Redis's (a
cross-shard MSET as per-shard parts), a SELECT or MULTI out of place, a
command that a replica never hears of, a key's writes out of order.
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

# The end of a script: FLUSHALL with an argument no script uses. Both servers
# replicate it as sent, and shardis orders it after everything every core
# logged before it (a PUBLISH only follows its own core's writes).
END = ["FLUSHALL", "SYNC"]
# Keyless commands that shardis orders against every core's writes; any other
# keyless command (PUBLISH, FUNCTION LOAD…) is ordered against its own kind.
BARRIERS = {b"FLUSHALL", b"FLUSHDB", b"SWAPDB"}
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


def key_finder(conn):
    """Keys of a command, as redis-server's COMMAND GETKEYS names them."""

    def keys(cmd):
        args = ["COMMAND", "GETKEYS"] + [a.decode("utf-8", "surrogateescape") for a in cmd]
        reply = conn.call(args)
        if not reply.startswith(b"*"):
            return []
        parts = reply.split(b"\r\n")
        return parts[2:-1:2]

    return keys


def units(cmds, keys):
    """The stream as units, each a command or a MULTI … EXEC block, with the db
    it starts in and the (db, key) pairs it touches. A SELECT outside a block
    only sets the db (a reordered stream selects in other places); inside one it
    stays in the block's text, so a SELECT misplaced after MULTI still shows."""
    out = []
    db = None
    block = None
    for c in cmds:
        name = c[0].upper()
        if block is not None:
            block["cmds"].append(c)
            if name == b"SELECT":
                db = c[1]
            elif name == b"EXEC":
                out.append(block)
                block = None
            else:
                block["keys"] |= {(db, k) for k in keys(c)}
            continue
        if name == b"SELECT":
            db = c[1]
        elif name == b"MULTI":
            block = {"db": db, "cmds": [c], "keys": set()}
        else:
            found = {(db, k) for k in keys(c)}
            if not found and name not in BARRIERS:
                found = {("keyless", name)}
            out.append({"db": db, "cmds": [c], "keys": found})
    for u in out:
        u["text"] = "db %s: %s" % (u["db"], " | ".join(show(u["cmds"])))
    return out


def same_per_key(a, b):
    """None if streams a and b (as units) hold the same units in an order that
    differs only between units with no key in common; else what differs.

    shardis merges its cores' write logs into one stream: the units of one key
    keep their order, and FLUSHALL, FLUSHDB and SWAPDB stay in their place
    against every other unit, but two units of keys on different cores,
    written one after the other, may leave in either order (their effect on a
    replica is the same). Other keyless units (PUBLISH, FUNCTION LOAD) keep
    their order among their own kind."""

    def segments(us):
        segs, barriers, cur = [], [], []
        for u in us:
            if u["keys"]:
                cur.append(u)
            else:
                segs.append(cur)
                barriers.append(u["text"])
                cur = []
        segs.append(cur)
        return segs, barriers

    (sa, ba), (sb, bb) = segments(a), segments(b)
    if ba != bb:
        return "the keyless commands differ or moved: %r / %r" % (ba, bb)
    for x, y in zip(sa, sb):
        if sorted(u["text"] for u in x) != sorted(u["text"] for u in y):
            return "the commands differ"
        for k in {k for u in x for k in u["keys"]}:
            if [u["text"] for u in x if k in u["keys"]] != [u["text"] for u in y if k in u["keys"]]:
                return "key %r: its commands come in another order" % (k,)
    return None


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
        raw = [rep.commands_until(marker) for rep in replicas]
        streams = [show(c) for c in raw]
    except (RuntimeError, socket.timeout, EOFError) as e:
        print("%s: %s" % (script, e), flush=True)
        return failures + 1
    if streams[0] != streams[1]:
        keys = key_finder(conns[0])
        why = same_per_key(*(units(c, keys) for c in raw))
        if why:
            failures += 1
            print("  %s" % why, flush=True)
            for d in difflib.unified_diff(streams[0], streams[1], "redis", "shardis", lineterm="", n=2):
                print("  " + d, flush=True)
    for rep in replicas:
        rep.s.close()
    return failures


if __name__ == "__main__":
    main(run)
