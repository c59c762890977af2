#!/usr/bin/env python3
"""Differential test: send the same command scripts to redis-server and shardis,
compare every reply byte for byte.

Usage: diff.py <redis_port> <shardis_port> script.txt [script.txt ...]

A script has one command per line, split like a shell line (shlex). Blank lines
and lines starting with '#' are skipped (harness.py, shared with notify.py,
reads scripts and replies). A line starting with '~ ' is sent to both servers
but its reply is only checked for type (first byte), for replies that
legitimately differ (random members, timestamps). Each script starts with
FLUSHALL on db 0 of both servers and runs on a fresh connection.
"""
import os
import shlex
import sys

# harness.py sits next to this file, whatever the working directory; no __pycache__ in the tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, main, report, script_lines  # noqa: E402


def run(script, rport, sport):
    failures = 0
    conns = [Conn(rport), Conn(sport)]
    for c in conns:
        c.call(["FLUSHALL"])
        c.call(["SELECT", "0"])
    for lineno, line in script_lines(script):
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
            report(script, lineno, line, r, s)
    return failures


if __name__ == "__main__":
    main(run)
