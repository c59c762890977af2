#!/usr/bin/env python3
"""Prints the command compatibility table of docs/compatibility.md.

    python3 docs/compat-table.py SHARDIS_PORT REDIS_PORT > table.md

The command list (and each container's subcommands) comes from the real server:
COMMAND LIST and COMMAND INFO on redis-server 7.0.15 at REDIS_PORT. Each command is
then tried against shardis at SHARDIS_PORT with arguments that cannot execute it: one
argument too many for a fixed arity, one too few for a variable arity, and for
commands that take any number of arguments a bogus option (a syntax error). An
"unknown command" / "unknown subcommand" error (or a closed connection) means
"not yet"; any other reply means the command is implemented. When both servers
answer the probe with an error and the errors differ, the row says so.
Hand-written notes for commands that behave differently are in NOTES below.
Keyed commands that pass that probe on shardis are then run once on shardis with
the minimum number of arguments, on the key __compat_probe__ in db 15, to catch
commands shardis lists but cannot execute yet ("... is not a keyspace command").
Use a throw-away shardis; redis-server only ever gets the probes that cannot run.
Loopback only.
"""
import socket
import sys

# Known behaviour differences (checked against redis-server 7.0.15); shown in the table.
NOTES = {
    "keys": "reclaims the logically expired keys it meets on a master (counted in "
    "expired_keys, DEL propagated); Redis 7.0.15 only skips them",
    "scan": "cursor values are shardis's own (a shard and segment position), not Redis's "
    "reversed-bit table cursor; whole segments are returned, so COUNT is a looser hint. "
    "Guarantees are Redis's: a key present for the whole iteration is returned",
    "debug": "DIGEST, DIGEST-VALUE, RELOAD, SLEEP, ERROR, PROTOCOL, SET-ACTIVE-EXPIRE and "
    "CHANGE-REPL-ID work; DEBUG HELP lists only SLEEP; OBJECT, QUICKLIST-PACKED-THRESHOLD and the "
    "other Redis subcommands are unknown",
    "client|list": "`argv-mem`, `multi-mem`, `rbp`, `obl`/`oll`/`omem` are 0 and `tot-mem` is an "
    "estimate",
    "slowlog|get": "merged over every core's ring (each up to `slowlog-max-len`); "
    "blocked commands are not logged",
    "latency|doctor": "Redis's opening line and one summary line per event; Redis's advice "
    "paragraphs are not reproduced",
    "exec": "EXEC with arguments replies the arity error; Redis prefixes it with EXECABORT",
    "config|rewrite": "without a config file replies Redis's error; with one, an error too: "
    "shardis does not rewrite config files",
    "acl|cat": "lists only the commands shardis implements",
    "module|list": "always empty",
    "module|load": "no module can be loaded (they are C code for redis-server's internals): "
    "Redis's failed-load error, the reason in the log",
    "module|loadex": "no module can be loaded (they are C code for redis-server's internals): "
    "Redis's failed-load error, the reason in the log",
    "module|unload": "no module is ever loaded: Redis's no-such-module error",
    "migrate": "holds only its keys during the transfer (Redis: the whole server), see "
    "\"MIGRATE\" below",
    "acl|list": "single +cmd/-cmd rules in name order (Redis: its command dict's per-process order)",
    "acl|log": "client-info has shardis's CLIENT LIST fields (qbuf/argv-mem differ)",
    "xadd": "`~` trims whole listpack nodes as Redis does, from a model of Redis's nodes (100 "
    "entries, deleted ones counted; the 4 KB byte limit estimated); after an RDB load the model "
    "restarts from the entries, so boundaries may differ from the loading Redis's. What "
    "propagates is exact, as in Redis",
    "xtrim": "`~`: as XADD",
    "sort": "BY/GET patterns reading other shards hold every shard while the SORT runs; an "
    "ERANGE score does not leak into later SORTs as Redis's stale `errno` does",
    "sort_ro": "as SORT",
    "xinfo|stream": "`radix-tree-keys` is the modelled node count, `radix-tree-nodes` an estimate",
    "eval": "see Known differences, Scripting",
    "eval_ro": "see Known differences, Scripting",
    "evalsha": "see Known differences, Scripting",
    "evalsha_ro": "see Known differences, Scripting",
    "fcall": "see Known differences, Scripting",
    "fcall_ro": "see Known differences, Scripting",
    "function|list": "libraries in name order (Redis: its dict order)",
    "function|stats": "`running_script` is always nil",
    "function|kill": "only clients on other cores than the script's can send it (see Scripting)",
    "script|kill": "only clients on other cores than the script's can send it (see Scripting)",
    "info": "same sections; memory fields come from mimalloc, several jemalloc/Lua fields "
    "are absent; shardis adds shards, cross_shard_messages, shardis_version "
    "(see docs/compatibility.md)",
}

ALLOWED_SAME = {"ERR unknown command", "ERR unknown subcommand"}


class Err(str):
    pass


class Conn:
    def __init__(self, port):
        self.port = int(port)
        self.connect()

    def connect(self):
        self.s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(1 << 16)
            if not d:
                raise ConnectionError
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"(", b","):
            return rest.decode()
        if t in (b"-", b"!"):
            return Err(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                d = self.s.recv(1 << 16)
                if not d:
                    raise ConnectionError
                self.buf += d
            v, self.buf = self.buf[:n], self.buf[n + 2 :]
            return v
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if t == b"%":
            return [self.reply() for _ in range(2 * int(rest))]
        if t == b"_":
            return None
        raise ValueError(line)

    def call(self, args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self.reply()


def probe_args(argv, arity):
    """argv (name or container+sub) padded so the call cannot run."""
    n = len(argv)
    if arity > 0:
        return argv + ["__probe__"] * (arity + 1 - n)
    need = -arity
    if need - 1 >= n:
        return argv + ["__probe__"] * (need - 1 - n)
    # Any number of arguments: a bogus option is a syntax error.
    return argv + ["__probe__"] * 3


def try_cmd(port, args, db=None):
    """One probe on a fresh connection (some probes change or end the connection's state)."""
    try:
        conn = Conn(port)
        try:
            if db is not None:
                conn.call(["SELECT", str(db)])
            return conn.call(args)
        finally:
            conn.s.close()
    except (ConnectionError, OSError):
        return Err("(connection closed)")


def status(reply, redis_reply):
    """'not yet' when shardis does not know the command (and Redis answers otherwise)."""
    if not isinstance(reply, Err) or reply == redis_reply:
        return "implemented"
    unknown = ("ERR unknown command", "ERR unknown subcommand", "(connection closed)")
    # A command in shardis's table that no executor takes (MEMORY, for instance).
    if reply.startswith(unknown) or reply.endswith("is not a keyspace command"):
        return "not yet"
    return "implemented"


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    redis = Conn(argv[2])
    names = sorted(x.decode() for x in redis.call(["COMMAND", "LIST"]) if b"|" not in x)
    infos = redis.call(["COMMAND", "INFO"] + names)
    rows = []
    for info in infos:
        name, arity = info[0].decode(), info[1]
        subs = sorted(((s[0].decode(), s[1], bool(s[8])) for s in (info[9] or [])), key=lambda s: s[0])
        rows.append((name, [name.upper()], arity, bool(subs), bool(info[8])))
        for sub, sarity, skeyed in subs:
            c, s = sub.split("|", 1)
            rows.append((sub, [c.upper(), s.upper()], sarity, False, skeyed))
    # A container is "not yet" when none of its subcommands is implemented.
    results = {}
    for name, base, arity, container, keyed in rows:
        args = probe_args(base, arity)
        rs, rr = try_cmd(argv[1], args), try_cmd(argv[2], args)
        st = status(rs, rr)
        if st == "implemented" and keyed and not container:
            # The arity check passes before dispatch: run it for real on shardis (db 15,
            # a probe key) to find commands that are in its table but have no executor.
            run = try_cmd(argv[1], base + ["__compat_probe__"] * (abs(arity) - len(base)), db=15)
            if isinstance(run, Err) and run.endswith("is not a keyspace command"):
                st, rs = "not yet", run
        results[name] = (args, rs, rr, st)
    for name, base, arity, container, keyed in rows:
        if container:
            subs = [v[3] for k, v in results.items() if k.startswith(name + "|")]
            if subs and all(x == "not yet" for x in subs):
                args, rs, rr, _ = results[name]
                results[name] = (args, rs, rr, "not yet")
    counts = {"implemented": 0, "not yet": 0}
    out = ["| command | arity | shardis | notes |", "|---|---|---|---|"]
    for name, base, arity, container, keyed in rows:
        args, rs, rr, st = results[name]
        notes = []
        if name in NOTES:
            notes.append(NOTES[name])
        if (
            st == "implemented"
            and isinstance(rs, Err)
            and isinstance(rr, Err)
            and rs != rr
            and not container
        ):
            notes.append(f"error for `{' '.join(args)}`: shardis `{rs}`, redis `{rr}`")
        if st == "implemented" and notes:
            st = "differs"
        counts["implemented" if st != "not yet" else "not yet"] += 1
        shown = name.replace("|", " ").upper()
        if "|" in name:
            shown = "&nbsp;&nbsp;" + shown
        note = "; ".join(notes).replace("|", "\\|")
        out.append(f"| {shown} | {arity} | {st} | {note} |")
    total = counts["implemented"] + counts["not yet"]
    print(
        f"{counts['implemented']} of {total} commands and subcommands are implemented "
        f"(\"implemented\" + \"differs\"), {counts['not yet']} are not yet.\n"
    )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
