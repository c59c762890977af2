#!/usr/bin/env python3
"""Differential test of keyspace notifications: the same command scripts run on
redis-server and shardis while a second connection to each is subscribed with
PSUBSCRIBE __key*__:*; the messages received must be the same.

Usage: notify.py <redis_port> <shardis_port> script.txt [script.txt ...]

A script is like diff.py's (one shlex-split command per line, '#' comments),
plus one directive: `!sleep <seconds>` (to let TTLs pass). Replies are compared
too, byte for byte. Each script starts with FLUSHALL and
`CONFIG SET notify-keyspace-events KEA` (a script may set other classes).

How messages are compared, and why per key: Redis publishes from one thread,
so its message order is total. shardis produces a key's events on the core
that owns the key and sends them to subscribers on other cores through one
ordered channel per pair of cores, so the events of one key arrive in order,
but events of two keys owned by different cores may interleave differently.
The messages are therefore grouped by (db, key) -- the key is in the channel
of a __keyspace@ message and is the payload of a __keyevent@ message -- and
each key's sequence must be identical. Scripts that need a cross-key order
keep those keys on one core with a {hash tag}.
"""
import os
import shlex
import socket
import sys
import time

# harness.py sits next to this file, whatever the working directory; no __pycache__ in the tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, main, report, script_lines  # noqa: E402

QUIET = 0.3  # seconds without a message after the end marker: done


class Subscriber(Conn):
    def __init__(self, port):
        super().__init__(port)
        self.call(["PSUBSCRIBE", "__key*__:*"])

    def messages(self, until_channel):
        """Reads pmessages until `until_channel` arrived and QUIET passed."""
        out = []
        seen_end = False
        deadline = time.time() + 10
        self.s.settimeout(QUIET)
        while time.time() < deadline:
            try:
                end = self._reply_end(0)
            except socket.timeout:
                if seen_end:
                    break
                continue
            raw, self.buf = self.buf[:end], self.buf[end:]
            parts = raw.split(b"\r\n")
            # *4 $8 pmessage $n pattern $n channel $n payload
            channel, payload = parts[6], parts[8]
            if channel == until_channel:
                seen_end = True
                continue
            out.append((channel, payload))
        self.s.settimeout(10)
        return out


def per_key(messages):
    """{(db, key): [(space|event, name), ...]} in arrival order."""
    keys = {}
    for channel, payload in messages:
        head, _, rest = channel.partition(b":")
        db = head.split(b"@")[1].rstrip(b"_")
        if head.startswith(b"__keyspace@"):
            keys.setdefault((db, rest), []).append((b"keyspace", payload))
        else:
            keys.setdefault((db, payload), []).append((b"keyevent", rest))
    return keys


def run(script, rport, sport):
    failures = 0
    end = b"__keyspace@0__:__end_of_script__"
    subs = [Subscriber(rport), Subscriber(sport)]
    conns = [Conn(rport), Conn(sport)]
    for c in conns:
        c.call(["FLUSHALL"])
        c.call(["SELECT", "0"])
        c.call(["CONFIG", "SET", "notify-keyspace-events", "KEA"])
    for lineno, line in script_lines(script):
        if line.startswith("!sleep "):
            time.sleep(float(line.split()[1]))
            continue
        args = shlex.split(line)
        r, s = (c.call(args) for c in conns)
        if r != s:
            failures += 1
            report(script, lineno, line, r, s)
    for c in conns:
        c.call(["PUBLISH", end.decode(), "end"])
        c.call(["CONFIG", "SET", "notify-keyspace-events", ""])
    got = [per_key(s.messages(end)) for s in subs]
    for k in sorted(set(got[0]) | set(got[1])):
        r, s = got[0].get(k, []), got[1].get(k, [])
        if r != s:
            failures += 1
            print("%s: key %r (db %s)\n  redis:   %r\n  shardis: %r" % (script, k[1], k[0].decode(), r, s), flush=True)
    return failures


if __name__ == "__main__":
    main(run)
