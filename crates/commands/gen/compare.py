#!/usr/bin/env python3
"""Compares shardis's COMMAND replies with redis-server 7.0.15's.

Usage: compare.py <redis_port> <shardis_port>

For every command and subcommand shardis implements (read from the
`implemented!` list in crates/commands/src/lib.rs), in RESP2 and RESP3:
COMMAND INFO and COMMAND DOCS must equal redis-server's field for field and
type for type. Sets compare as sets, and a container's subcommands are
compared after dropping the ones shardis does not implement (Redis prints
both in hash order, which changes from run to run). COMMAND COUNT, COMMAND
LIST and COMMAND LIST FILTERBY must give exactly the implemented subset of
Redis's answer. Exits 1 on any difference.
"""
import os
import re
import socket
import sys

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "lib.rs")


def implemented():
    src = open(LIB).read()
    block = src[src.index("\nimplemented! {\n"):]
    block = block[:block.index("\n}\n")]
    names = []
    for m in re.finditer(r'^\s+\w+ "([a-z_-]+)"(?: \[([^\]]*)\])?(?: split\(\w+\))?;', block, re.M):
        names.append(m.group(1))
        for sub in re.findall(r'"([^"]+)"', m.group(2) or ""):
            names.append("%s|%s" % (m.group(1), sub))
    return names


class Conn:
    """A RESP2/RESP3 client keeping each value's type."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self.line()
        t, rest = line[:1].decode(), line[1:]
        if t in "+-:_#,(":
            return (t, rest.decode())
        if t in "$=":
            n = int(rest)
            if n < 0:
                return ("$", None)
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return (t, data.decode())
        if t in "*~>":
            n = int(rest)
            return (t, None if n < 0 else [self.read() for _ in range(n)])
        if t == "%":
            n = int(rest)
            return (t, [(self.read(), self.read()) for _ in range(n)])
        raise RuntimeError("unexpected reply %r" % line)


def norm(v, visible):
    """Order-free form: sets sorted, subcommands of hidden names dropped."""
    t, x = v
    if t == "~":
        return (t, tuple(sorted((norm(e, visible) for e in x), key=repr)))
    if t == "%":
        return (t, tuple(sorted(((norm(k, visible), norm(val, visible)) for k, val in x), key=repr)))
    if t == "*" and x is not None:
        return (t, tuple(norm(e, visible) for e in x))
    return v


def info_row(v, visible):
    """A COMMAND INFO row; its 10th field (subcommands) as a visible set."""
    t, x = v
    if t != "*" or x is None or len(x) != 10:
        return norm(v, visible)
    fields = [norm(e, visible) for e in x[:9]]
    st, subs = x[9]
    subs = [info_row(s, visible) for s in subs if s[1][0][1] in visible]
    fields.append((st, tuple(sorted(subs, key=repr))))
    return (t, tuple(fields))


def map_pairs(v):
    t, x = v
    if t == "%":
        return x
    return [(x[i], x[i + 1]) for i in range(0, len(x), 2)]


def docs_entry(v, visible, resp3):
    """A COMMAND DOCS entry; its subcommands map keeps visible names only."""
    out = []
    for k, val in map_pairs(v):
        if k[1] == "subcommands":
            subs = [(sk, docs_entry(sv, visible, resp3)) for sk, sv in map_pairs(val)
                    if sk[1] in visible]
            val = ("subs", tuple(sorted(subs, key=repr)))
        else:
            val = norm(val, visible)
        out.append((k, val))
    return (v[0], tuple(out))


def main():
    rport, sport = int(sys.argv[1]), int(sys.argv[2])
    names = implemented()
    visible = set(names)
    fails = []

    def fail(msg):
        print("FAIL:", msg)
        fails.append(msg)

    for proto in ("2", "3"):
        r, s = Conn(rport), Conn(sport)
        for c in (r, s):
            c.call("HELLO", proto)
        resp3 = proto == "3"
        for name in names:
            a, b = r.call("COMMAND", "INFO", name), s.call("COMMAND", "INFO", name)
            if info_row(a[1][0], visible) != info_row(b[1][0], visible):
                fail("RESP%s COMMAND INFO %s:\n  redis   %r\n  shardis %r" % (proto, name, a, b))
            a, b = r.call("COMMAND", "DOCS", name), s.call("COMMAND", "DOCS", name)
            pa, pb = map_pairs(a), map_pairs(b)
            if len(pa) != 1 or len(pb) != 1 or pa[0][0] != pb[0][0] or \
                    docs_entry(pa[0][1], visible, resp3) != docs_entry(pb[0][1], visible, resp3):
                fail("RESP%s COMMAND DOCS %s:\n  redis   %r\n  shardis %r" % (proto, name, a, b))
        # Whole-table forms: the implemented subset of Redis's answer.
        top = [n for n in names if "|" not in n]
        got = s.call("COMMAND", "COUNT")
        if got != (":", str(len(top))):
            fail("COMMAND COUNT: %r, want %d" % (got, len(top)))
        all_r = {info_row(e, visible) for e in r.call("COMMAND")[1] if e[1][0][1] in visible}
        all_s = {info_row(e, visible) for e in s.call("COMMAND")[1]}
        if all_r != all_s:
            fail("RESP%s COMMAND: %d rows differ" % (proto, len(all_r ^ all_s)))
        for filt in [(), ("FILTERBY", "ACLCAT", "read"), ("FILTERBY", "ACLCAT", "dangerous"),
                     ("FILTERBY", "ACLCAT", "nosuch"), ("FILTERBY", "PATTERN", "*|*"),
                     ("FILTERBY", "PATTERN", "CONFIG*"), ("FILTERBY", "MODULE", "x")]:
            want = sorted(x[1] for x in r.call("COMMAND", "LIST", *filt)[1] if x[1] in visible)
            have = sorted(x[1] for x in s.call("COMMAND", "LIST", *filt)[1])
            if want != have:
                fail("COMMAND LIST %s: missing %s, extra %s" % (
                    " ".join(filt), sorted(set(want) - set(have)), sorted(set(have) - set(want))))
            if not filt and sorted(visible) != have:
                fail("COMMAND LIST is not the implemented list")
    print("compared COMMAND INFO/DOCS of %d commands and subcommands in RESP2 and RESP3: %s" % (
        len(names), "%d failures" % len(fails) if fails else "all equal"))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
