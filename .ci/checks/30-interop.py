#!/usr/bin/env python3
"""Helper for the interop checks (30-replication-interop.sh, 40-rdb-interop.sh).

A tiny RESP client over loopback (CI has python3 but no redis-py).

  load PORT PHASE [--zset] [--large]   write a deterministic dataset (phase = a label); exits 1
                                       and prints the command when any reply is an error
  diff PORT_A PORT_B                   per-key comparison (DEBUG DIGEST-VALUE, PEXPIRETIME) of all
                                       dbs; prints up to 20 differences, exits 1 if any
  copy SRC DST                         DUMP every key of every db of SRC, RESTORE it into DST
                                       with ABSTTL and REPLACE; exits 1 on any error reply
  offsets PORT...                      print master_repl_offset of each server
"""
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


def cmd_offsets(ports):
    for p in ports:
        info = Conn(p).call("INFO", "replication").decode()
        off = [l.split(":", 1)[1] for l in info.splitlines() if l.startswith("master_repl_offset:")]
        print(off[0] if off else "?")
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
    if op == "offsets":
        return cmd_offsets(argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
