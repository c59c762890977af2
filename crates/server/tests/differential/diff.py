#!/usr/bin/env python3
"""Differential test: send the same command scripts to redis-server and shardis,
compare every reply byte for byte.

Usage: diff.py <redis_port> <shardis_port> script.txt [script.txt ...]

A script has one command per line, split like a shell line (shlex). Blank lines
and lines starting with '#' are skipped. A line starting with '~ ' is sent to
both servers but its reply is only checked for type (first byte), for replies
that legitimately differ (random members, timestamps). Each script starts with
FLUSHALL on db 0 of both servers and runs on a fresh connection.
"""
import shlex
import socket
import sys


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill()

    def _reply_end(self, pos):
        """Returns the index just past the reply starting at pos."""
        while len(self.buf) <= pos:
            self._fill()
        t = self.buf[pos:pos + 1]
        eol = self._line(pos)
        head = self.buf[pos + 1:eol]
        nxt = eol + 2
        if t in (b"+", b"-", b":", b",", b"#", b"_", b"("):
            return nxt
        if t in (b"$", b"=", b"!"):
            n = int(head)
            if n < 0:
                return nxt
            while len(self.buf) < nxt + n + 2:
                self._fill()
            return nxt + n + 2
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(head)
            if n < 0:
                return nxt
            if t in (b"%", b"|"):
                n *= 2
            for _ in range(n):
                nxt = self._reply_end(nxt)
            return nxt
        raise ValueError("bad reply type %r in %r" % (t, self.buf[pos:pos + 40]))

    def call(self, args):
        self.s.sendall(encode(args))
        end = self._reply_end(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply


def run(script, rport, sport):
    failures = 0
    conns = [Conn(rport), Conn(sport)]
    for c in conns:
        c.call(["FLUSHALL"])
        c.call(["SELECT", "0"])
    with open(script, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            loose = line.startswith("~ ")
            args = shlex.split(line[2:] if loose else line)
            try:
                r, s = (c.call(args) for c in conns)
            except EOFError as e:
                print("%s:%d: %s\n  connection closed: %s" % (script, lineno, line, e), flush=True)
                return failures + 1
            same = r[:1] == s[:1] if loose else r == s
            if not same:
                failures += 1
                print("%s:%d: %s\n  redis:   %r\n  shardis: %r" % (script, lineno, line, r[:300], s[:300]), flush=True)
    return failures


def main():
    rport, sport = int(sys.argv[1]), int(sys.argv[2])
    total = 0
    for script in sys.argv[3:]:
        n = run(script, rport, sport)
        print("%s: %s" % (script, "ok" if n == 0 else "%d differences" % n))
        total += n
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
