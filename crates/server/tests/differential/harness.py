"""What diff.py and notify.py share: a RESP connection that returns each reply's
raw bytes, the reading of a command script, and the command line
`<redis_port> <shardis_port> script.txt [script.txt ...]`.

A script has one command per line, split like a shell line (shlex). Blank lines
and lines starting with '#' are skipped.
"""
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
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
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


def script_lines(script):
    """(line number, line) for each line of the script that is not blank or a comment."""
    with open(script, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.strip() and not line.lstrip().startswith("#"):
                yield lineno, line


def report(script, lineno, line, r, s):
    """Prints a reply that differs."""
    print("%s:%d: %s\n  redis:   %r\n  shardis: %r" % (script, lineno, line, r[:300], s[:300]), flush=True)


def main(run):
    """Runs run(script, redis_port, shardis_port) -> number of differences for each
    script named on the command line; exits 1 if there was any."""
    rport, sport = int(sys.argv[1]), int(sys.argv[2])
    total = 0
    for script in sys.argv[3:]:
        n = run(script, rport, sport)
        print("%s: %s" % (script, "ok" if n == 0 else "%d differences" % n))
        total += n
    sys.exit(1 if total else 0)
