"""Writes acknowledged by WAIT, for the failover tests (.ci/checks/37-sentinel.sh and
deploy/sentinel-test.sh), which kill the master while `write` runs and then `check` the node
that took over.

  python3 acked-writes.py write HOST PORT ACKED
      Batches of 50 SETs (k:BATCH:J = vBATCH, over every shard), each followed by WAIT 2 1000.
      A batch is appended to the file ACKED only when WAIT says both replicas have it. Stops at
      the first error or lost connection.
  python3 acked-writes.py check HOST PORT ACKED
      Prints how many keys of the batches in ACKED the node lacks or holds with another value,
      then how many keys those batches have.
"""
import socket
import sys


def enc(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def write(host, port, acked):
    s = socket.create_connection((host, port), timeout=5)
    f = s.makefile("rb")
    out = open(acked, "a")
    batch = 0
    try:
        while True:
            req = b"".join(enc(b"SET", b"k:%d:%d" % (batch, j), b"v%d" % batch) for j in range(50))
            s.sendall(req + enc(b"WAIT", b"2", b"1000"))
            for _ in range(50):
                if f.readline() != b"+OK\r\n":
                    return
            line = f.readline()
            if not line.startswith(b":"):
                return
            if int(line[1:]) == 2:
                out.write("%d\n" % batch)
                out.flush()
            batch += 1
    except OSError:
        pass


def check(host, port, acked):
    batches = [int(l) for l in open(acked) if l.strip()]
    s = socket.create_connection((host, port), timeout=10)
    f = s.makefile("rb")
    missing = 0
    for b in batches:
        s.sendall(b"".join(enc(b"GET", b"k:%d:%d" % (b, j)) for j in range(50)))
        for _ in range(50):
            h = f.readline()
            if h.startswith(b"$-1"):
                missing += 1
                continue
            if f.read(int(h[1:]) + 2)[:-2] != b"v%d" % b:
                missing += 1
    print(missing, len(batches) * 50)


if __name__ == "__main__":
    what, host, port, acked = sys.argv[1:]
    {"write": write, "check": check}[what](host, int(port), acked)
