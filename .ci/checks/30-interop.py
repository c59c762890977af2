#!/usr/bin/env python3
"""Helper for the interop checks (30-replication-interop.sh, 40-rdb-interop.sh,
47-migrate-interop.sh).

A tiny RESP client over loopback (CI has python3 but no redis-py).

  load PORT PHASE [--zset] [--large]   write a deterministic dataset (phase = a label); exits 1
                                       and prints the command when any reply is an error
  diff PORT_A PORT_B                   per-key comparison (DEBUG DIGEST-VALUE, PEXPIRETIME) of all
                                       dbs; prints up to 20 differences, exits 1 if any
  copy SRC DST                         DUMP every key of every db of SRC, RESTORE it into DST
                                       with ABSTTL and REPLACE; exits 1 on any error reply
  streams PORT                         print every stream's XINFO STREAM FULL (groups, PELs,
                                       consumers) without the consumers' seen-time, for diffing
  offsets PORT...                      print master_repl_offset of each server
  migrate SRC DST [--copy]             MIGRATE every key of every db of SRC to the same db of DST
                                       (single-key and KEYS forms); exits 1 on a reply other than OK
  migrate-cases SRC DST                FLUSHALL both, then run MIGRATE's edge cases from SRC to DST
                                       and print every reply (DST's port written as DST), for a diff
                                       between server pairs
"""
import hashlib
import socket
import sys


class Err(Exception):
    pass


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
        self.buf = b""

    def _fill(self):
        d = self.s.recv(1 << 16)
        if not d:
            raise ConnectionError("connection closed by server")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Err(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v, self.buf = self.buf[:n], self.buf[n + 2 :]
            return v
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply type %r" % line)

    @staticmethod
    def enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, (int, float)):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def pipeline(self, cmds):
        """Sends all commands, returns their replies (errors as Err values)."""
        replies = []
        for i in range(0, len(cmds), 500):
            batch = cmds[i : i + 500]
            self.s.sendall(b"".join(self.enc(c) for c in batch))
            replies.extend(self.reply() for _ in batch)
        return replies

    def call(self, *args):
        r = self.pipeline([list(args)])[0]
        if isinstance(r, Err):
            raise r
        return r


def dataset(phase, zset, large):
    """Commands of every type, several dbs, TTLs, multi-key commands (keys spread over shards)."""
    p = phase
    c = []
    for db in (0, 1, 3):
        c.append(["SELECT", db])
        # strings: raw, int, embstr, long, binary
        for i in range(40):
            c.append(["SET", f"{p}:s:{db}:{i}", f"value-{i}-" + "x" * (i * 3)])
        c.append(["SET", f"{p}:int:{db}", 12345])
        c.append(["INCRBY", f"{p}:int:{db}", 7])
        c.append(["APPEND", f"{p}:s:{db}:1", "-appended"])
        c.append(["SETRANGE", f"{p}:s:{db}:2", 3, "RANGE"])
        c.append(["SET", f"{p}:bin:{db}", b"\x00\x01\xff\r\n\x80binary"])
        c.append(["INCRBYFLOAT", f"{p}:float:{db}", "3.25"])
        # multi-key across shards
        mset = ["MSET"]
        for i in range(30):
            mset += [f"{p}:m:{db}:{i}", f"mv{i}"]
        c.append(mset)
        c.append(["MSETNX", f"{p}:nx:{db}:a", "1", f"{p}:nx:{db}:b", "2"])
        c.append(["RENAME", f"{p}:m:{db}:0", f"{p}:renamed:{db}:0"])
        c.append(["RENAME", f"{p}:m:{db}:1", f"{p}:m:{db}:2"])  # overwrites
        c.append(["DEL", f"{p}:m:{db}:3", f"{p}:m:{db}:4", f"{p}:m:{db}:5"])
        # lists: small (listpack) and large (quicklist)
        c.append(["RPUSH", f"{p}:l:small:{db}"] + [f"e{i}" for i in range(10)])
        c.append(["LPUSH", f"{p}:l:small:{db}", "head"])
        c.append(["LPOP", f"{p}:l:small:{db}"])
        n = 1000 if large else 200
        c.append(["RPUSH", f"{p}:l:big:{db}"] + [f"item-{i}-" + "y" * (i % 50) for i in range(n)])
        c.append(["LSET", f"{p}:l:big:{db}", 5, "changed"])
        c.append(["LREM", f"{p}:l:big:{db}", 0, "item-7-" + "y" * 7])
        c.append(["RPUSH", f"{p}:l:int:{db}"] + [str(i * 1000) for i in range(20)])
        c.append(["LMOVE", f"{p}:l:small:{db}", f"{p}:l:moved:{db}", "LEFT", "RIGHT"])
        c.append(["RPOPLPUSH", f"{p}:l:big:{db}", f"{p}:l:small:{db}"])
        # hashes: small and large (> 512 fields or long values)
        c.append(["HSET", f"{p}:h:small:{db}", "f1", "v1", "f2", "2", "f3", "x" * 20])
        c.append(["HINCRBY", f"{p}:h:small:{db}", "f2", 40])
        c.append(["HINCRBYFLOAT", f"{p}:h:small:{db}", "fl", "1.5"])
        hn = 700 if large else 100
        h = ["HSET", f"{p}:h:big:{db}"]
        for i in range(hn):
            h += [f"field{i}", f"val{i}"]
        c.append(h)
        c.append(["HSET", f"{p}:h:longval:{db}", "f", "z" * 100])
        c.append(["HDEL", f"{p}:h:big:{db}", "field3", "field4"])
        # sets: intset, listpack-ish small, hashtable
        c.append(["SADD", f"{p}:set:int:{db}"] + [str(i) for i in range(50)])
        c.append(["SADD", f"{p}:set:str:{db}", "a", "b", "c", "d"])
        sn = 600 if large else 150
        c.append(["SADD", f"{p}:set:big:{db}"] + [f"mem{i}" for i in range(sn)])
        c.append(["SREM", f"{p}:set:big:{db}", "mem1", "mem2"])
        c.append(["SMOVE", f"{p}:set:str:{db}", f"{p}:set:int:{db}", "a"])
        c.append(["SUNIONSTORE", f"{p}:set:union:{db}", f"{p}:set:str:{db}", f"{p}:set:big:{db}"])
        c.append(["SINTERSTORE", f"{p}:set:inter:{db}", f"{p}:set:int:{db}", f"{p}:set:str:{db}"])
        c.append(["SDIFFSTORE", f"{p}:set:diff:{db}", f"{p}:set:big:{db}", f"{p}:set:union:{db}"])
        c.append(["SPOP", f"{p}:set:int:{db}", 3])
        if zset:
            c.append(["ZADD", f"{p}:z:small:{db}", 1, "a", "2.5", "b", "-inf", "c", "inf", "d"])
            zn = 300 if large else 100
            z = ["ZADD", f"{p}:z:big:{db}"]
            for i in range(zn):
                z += [str(i * 1.25), f"zm{i}"]
            c.append(z)
            c.append(["ZINCRBY", f"{p}:z:small:{db}", 3, "a"])
            c.append(["ZREM", f"{p}:z:big:{db}", "zm0"])
            c.append(["ZPOPMIN", f"{p}:z:big:{db}"])
            # geo: GEOADD propagates as ZADD, the STORE forms as sent
            c.append(["GEOADD", f"{p}:geo:{db}", "13.361389", "38.115556", "Palermo",
                      "15.087269", "37.502669", "Catania", "2.35", "48.85", "Paris"])
            c.append(["GEORADIUS", f"{p}:geo:{db}", 15, 37, 200, "km", "STOREDIST",
                      f"{p}:geo:near:{db}"])
            c.append(["GEOSEARCHSTORE", f"{p}:geo:box:{db}", f"{p}:geo:{db}", "FROMMEMBER",
                      "Palermo", "BYBOX", 3000, 3000, "km", "ASC", "COUNT", 2])
        # SORT whose BY/GET patterns read keys on every shard, stored
        c.append(["RPUSH", f"{p}:sort:ids:{db}"] + [str(i) for i in range(20)])
        sw = ["MSET"]
        for i in range(20):
            sw += [f"{p}:sort:w:{db}:{i}", str((7 * i) % 20)]
        c.append(sw)
        c.append(["SORT", f"{p}:sort:ids:{db}", "BY", f"{p}:sort:w:{db}:*", "GET", "#",
                  "GET", f"{p}:s:{db}:*", "STORE", f"{p}:sort:out:{db}"])
        # streams: explicit and generated ids, deletions, trimming, consumer groups
        # (deliveries and claims propagate as XCLAIM, trims as exact ones)
        xk = f"{p}:x:{db}"
        c.append(["XADD", xk, "1-1", "a", "1", "b", "2"])
        for i in range(2, 250 if large else 40):
            c.append(["XADD", xk, f"{i}-*", "f", str(i)])
        c.append(["XADD", xk, "MAXLEN", "~", "20", "*", "auto", "1"])
        c.append(["XDEL", xk, "5-0"])
        c.append(["XTRIM", xk, "MINID", "3"])
        c.append(["XGROUP", "CREATE", xk, "g1", "0"])
        c.append(["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", xk, ">"])
        c.append(["XREADGROUP", "GROUP", "g1", "bob", "NOACK", "COUNT", "2", "STREAMS", xk, ">"])
        c.append(["XACK", xk, "g1", "3-0"])
        c.append(["XCLAIM", xk, "g1", "carol", "0", "4-0"])
        c.append(["XGROUP", "CREATE", f"{p}:x:empty:{db}", "g", "$", "MKSTREAM"])
        # bitmaps (BITOP across shards) and HyperLogLogs, sparse and dense; PFCOUNT's
        # cache refresh and PFDEBUG TODENSE propagate as in Redis
        for i in range(0, 3000, 37):
            c.append(["SETBIT", f"{p}:bits:a:{db}", i, 1])
        c.append(["SETBIT", f"{p}:bits:b:{db}", 5000, 1])
        c.append(["BITFIELD", f"{p}:bits:f:{db}", "SET", "i16", "#3", -300, "OVERFLOW", "SAT",
                  "INCRBY", "u8", 100, 400])
        c.append(["BITOP", "XOR", f"{p}:bits:x:{db}", f"{p}:bits:a:{db}", f"{p}:bits:b:{db}"])
        c.append(["PFADD", f"{p}:hll:small:{db}"] + [f"e{i}" for i in range(30)])
        hl = 3000 if large else 1200
        c.append(["PFADD", f"{p}:hll:big:{db}"] + [f"e{i}" for i in range(hl)])
        c.append(["PFCOUNT", f"{p}:hll:small:{db}"])
        c.append(["PFMERGE", f"{p}:hll:merged:{db}", f"{p}:hll:small:{db}", f"{p}:hll:big:{db}"])
        c.append(["PFADD", f"{p}:hll:dense:{db}", "x", "y"])
        c.append(["PFDEBUG", "TODENSE", f"{p}:hll:dense:{db}"])
        # scripts: writes to keys on several shards replicate as their effects
        # (MULTI/EXEC), never the body; functions travel by FUNCTION LOAD and RDB
        keys = [f"{p}:lua:{db}:{k}" for k in "abcdef"]
        c.append(["EVAL", "for i, k in ipairs(KEYS) do redis.call('INCRBY', k, i) "
                  "redis.call('RPUSH', k .. ':l', ARGV[1]) end return #KEYS",
                  len(keys)] + keys + ["x"])
        body = "redis.call('HSET', KEYS[1], 'f', ARGV[1]) return redis.call('SET', KEYS[2], ARGV[1])"
        c.append(["SCRIPT", "LOAD", body])
        c.append(["EVALSHA", hashlib.sha1(body.encode()).hexdigest(), 2, keys[0] + ":h",
                  keys[1] + ":s", "y"])
        c.append(["FUNCTION", "LOAD", "REPLACE",
                  "#!lua name=interoplib\nredis.register_function('bump', function(keys, args) "
                  "for _, k in ipairs(keys) do redis.call('INCR', k) end return #keys end)"])
        c.append(["FCALL", "bump", 3, keys[2], keys[3], keys[4]])
        # TTLs: long ones (stay) and relative forms that must propagate as absolute times
        c.append(["SET", f"{p}:ttl:ex:{db}", "v", "EX", 10000])
        c.append(["SETEX", f"{p}:ttl:setex:{db}", 20000, "v"])
        c.append(["EXPIRE", f"{p}:l:big:{db}", 30000])
        c.append(["PEXPIRE", f"{p}:h:small:{db}", 40000000])
        c.append(["EXPIREAT", f"{p}:set:big:{db}", 4102444800])
        c.append(["SET", f"{p}:ttl:persist:{db}", "v", "EX", 100])
        c.append(["PERSIST", f"{p}:ttl:persist:{db}"])
        c.append(["GETEX", f"{p}:s:{db}:9", "PX", 5000000])
        # short ones: the master expires them and must propagate DELs
        for i in range(5):
            c.append(["SET", f"{p}:short:{db}:{i}", "gone", "PX", 50])
    c.append(["SELECT", 0])
    c.append(["COPY", f"{p}:s:0:5", f"{p}:copied", "DB", 2])
    c.append(["MOVE", f"{p}:s:0:6", 2])
    return c


def cmd_load(port, phase, zset, large):
    conn = Conn(port)
    cmds = dataset(phase, zset, large)
    bad = 0
    for cmd, r in zip(cmds, conn.pipeline(cmds)):
        if isinstance(r, Err):
            bad += 1
            if bad <= 10:
                print(f"  error reply from :{port} to {' '.join(map(str, cmd))[:120]}: {r}")
    return 1 if bad else 0


def all_keys(conn, db):
    conn.call("SELECT", db)
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = conn.call("SCAN", cursor, "COUNT", 1000)
        keys.update(batch)
        if cursor == b"0":
            return keys


def key_info(conn, key):
    d, e = conn.pipeline([["DEBUG", "DIGEST-VALUE", key], ["PEXPIRETIME", key]])
    return (d[0] if isinstance(d, list) and d else d, e)


def cmd_diff(pa, pb):
    a, b = Conn(pa), Conn(pb)
    diffs = []
    for db in range(16):
        ka, kb = all_keys(a, db), all_keys(b, db)
        for k in sorted(ka ^ kb):
            diffs.append(f"db{db} {k!r}: only on :{pa if k in ka else pb}")
        for k in sorted(ka & kb):
            ia, ib = key_info(a, k), key_info(b, k)
            if ia != ib:
                diffs.append(f"db{db} {k!r}: :{pa} {ia} vs :{pb} {ib}")
    for d in diffs[:20]:
        print("  " + d)
    if len(diffs) > 20:
        print(f"  ... {len(diffs) - 20} more")
    return 1 if diffs else 0


def cmd_copy(src, dst):
    a, b = Conn(src), Conn(dst)
    bad = 0
    for db in range(16):
        keys = sorted(all_keys(a, db))
        if not keys:
            continue
        b.call("SELECT", db)
        for k in keys:
            payload, at = a.pipeline([["DUMP", k], ["PEXPIRETIME", k]])
            if isinstance(payload, Err) or payload is None:
                print(f"  DUMP {k!r} on :{src}: {payload}")
                bad += 1
                continue
            args = ["RESTORE", k, max(at, 0), payload, "REPLACE"]
            if at > 0:
                args.append("ABSTTL")
            r = b.pipeline([args])[0]
            if isinstance(r, Err):
                bad += 1
                if bad <= 10:
                    print(f"  RESTORE {k!r} (db{db}) on :{dst}: {r}")
    return 1 if bad else 0


def scrub_seen(v):
    """A reply with the value after each seen-time/active-time replaced: loading an AOF
    sets them to the load time (in Redis too)."""
    if not isinstance(v, list):
        return v
    out, skip = [], False
    for x in v:
        out.append("-" if skip else scrub_seen(x))
        skip = not skip and x in (b"seen-time", b"active-time")
    return out


def cmd_streams(port):
    conn = Conn(port)
    for db in range(16):
        for k in sorted(all_keys(conn, db)):
            if conn.call("TYPE", k) != "stream":
                continue
            info = conn.pipeline([["XINFO", "STREAM", k, "FULL", "COUNT", 0]])[0]
            if isinstance(info, Err):
                print(f"XINFO STREAM {k!r} FULL on :{port}: {info}")
                return 1
            print(f"db{db} {k!r} {scrub_seen(info)!r}")
    return 0


def cmd_offsets(ports):
    for p in ports:
        info = Conn(p).call("INFO", "replication").decode()
        off = [l.split(":", 1)[1] for l in info.splitlines() if l.startswith("master_repl_offset:")]
        print(off[0] if off else "?")
    return 0


def cmd_migrate(src, dst, copy):
    a = Conn(src)
    bad = 0
    opts = ["COPY"] if copy else []
    for db in range(16):
        keys = sorted(all_keys(a, db))
        # The first few one by one, the rest in KEYS batches.
        cmds = [["MIGRATE", "127.0.0.1", dst, k, db, 5000] + opts for k in keys[:5]]
        rest = keys[5:]
        for i in range(0, len(rest), 25):
            cmds.append(["MIGRATE", "127.0.0.1", dst, "", db, 5000] + opts + ["KEYS"] + rest[i : i + 25])
        for cmd, r in zip(cmds, a.pipeline(cmds)):
            if r != "OK":
                bad += 1
                if bad <= 10:
                    print(f"  :{src} db{db} MIGRATE {cmd[3:5]}...: {r}")
    return 1 if bad else 0


def cmd_migrate_cases(src, dst):
    a, b = Conn(src), Conn(dst)
    a.call("FLUSHALL")
    b.call("FLUSHALL")
    out = []

    def m(*args):
        r = a.pipeline([["MIGRATE", *args]])[0]
        out.append(f"MIGRATE {' '.join(map(str, args))} -> {r}".replace(str(dst), "DST"))

    a.pipeline([["SET", "k", "v"], ["SET", "k2", "v2"], ["RPUSH", "l", "a", "b", "c"],
                ["SET", "t", "x", "PX", "100000"]])
    h = "127.0.0.1"
    m(h, dst, "k", 0, 1000, "foo")
    m(h, dst, "k", 0, 1000, "auth")
    m(h, dst, "k", 0, 1000, "auth2", "u")
    m(h, dst, "k", 0, "x")
    m(h, dst, "k", "x", "y")
    m(h, dst, "k", 0, 1000, "KEYS", "k")
    m(h, dst, "", 0, 1000, "KEYS")
    m(h, dst, "nokey", 0, 1000)
    # AUTH to a target without a password: the error, though RESTORE ran.
    m(h, dst, "k", 0, 1000, "auth", "pw")
    m(h, dst, "k", 99, 1000)
    # After a target error the db is forgotten: SELECT -1 is not even sent.
    m(h, dst, "k", -1, 1000)
    m(h, dst, "k", 0, 1000, "copy")
    m(h, dst, "k", 0, 1000, "copy", "replace")
    m(h, dst, "", 0, 1000, "copy", "keys", "k", "k2", "k3")
    m(h, dst, "", 0, 1000, "replace", "keys", "k", "k2", "k3")
    m(h, dst, "l", 3, 1000)
    m(h, dst, "t", 0, 1000)
    m(h, dst, "t", 0, 1000)
    # The target drops the cached connection: retried once on a new one.
    a.call("SET", "r", "1")
    b.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    m(h, dst, "r", 0, 1000)
    # A protected target.
    b.call("CONFIG", "SET", "requirepass", "secret")
    b.call("AUTH", "secret")
    b.call("ACL", "SETUSER", "bob", "on", ">bobpw", "~*", "+@all")
    # The cached connection authenticated before the password was set: drop it.
    b.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    a.pipeline([["MSET", "a", "1", "b", "2", "c", "3"]])
    m(h, dst, "a", 0, 1000)
    m(h, dst, "a", 0, 1000, "auth", "wrong")
    m(h, dst, "a", 0, 1000, "auth", "secret")
    m(h, dst, "b", 0, 1000, "auth2", "bob", "bobpw")
    m(h, dst, "", 0, 1000, "auth2", "bob", "bobpw", "keys", "c", "b", "x")
    b.call("CONFIG", "SET", "requirepass", "")
    b.call("ACL", "DELUSER", "bob")
    # From a script: the replies as Lua sees them.
    a.pipeline([["MSET", "s1", "1", "s2", "2"]])
    script = (
        "local r = redis.call('migrate', '127.0.0.1', ARGV[1], '', 0, 1000, 'KEYS', 's1', 's2') "
        "local e = redis.pcall('migrate', '127.0.0.1', ARGV[1], 's1', 0, 1000, 'foo') "
        "local n = redis.call('migrate', '127.0.0.1', ARGV[1], 's1', 0, 1000) "
        "return {r['ok'], e['err'], n['ok'], redis.call('exists', 's1', 's2')}"
    )
    r = a.pipeline([["EVAL", script, 0, dst]])[0]
    out.append(f"EVAL migrate -> {r}")
    # Nobody listening (7.0.15 reports it when writing), and a host that does not resolve.
    a.call("SET", "k", "v")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    r = a.pipeline([["MIGRATE", h, port, "k", 0, 1000]])[0]
    out.append(f"MIGRATE to a closed port -> {r}")
    closed.close()
    m("", 1, "k", 0, 1000)
    for db in (0, 3):
        b.call("SELECT", db)
        for k in sorted(all_keys(b, db)):
            ttl = b.call("PTTL", k)
            out.append(f"DST db{db} {k!r} type={b.call('TYPE', k)} ttl>0={ttl > 0}")
    for k in sorted(all_keys(a, 0)):
        out.append(f"SRC {k!r}")
    print("\n".join(out))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    op = argv[1]
    if op == "load":
        return cmd_load(argv[2], argv[3], "--zset" in argv, "--large" in argv)
    if op == "diff":
        return cmd_diff(argv[2], argv[3])
    if op == "copy":
        return cmd_copy(argv[2], argv[3])
    if op == "streams":
        return cmd_streams(argv[2])
    if op == "offsets":
        return cmd_offsets(argv[2:])
    if op == "migrate":
        return cmd_migrate(argv[2], argv[3], "--copy" in argv)
    if op == "migrate-cases":
        return cmd_migrate_cases(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
