#!/usr/bin/env python3
"""RDB persistence, shardis-server against redis-server 7.0 in the same run.

For each server (persistence off at start, the same data loaded into both):

  save      wall time of SAVE for the dataset (and the dump's size)
  load      wall time of a restart that loads that dump: process start until
            PING answers, plus the time between the "Loading RDB" and "Done
            loading RDB" log lines the server prints
  bgsave    peak memory while BGSAVE runs under a continuous write load
            (redis-benchmark SET over the same keys): the growth of the process
            tree's RSS and PSS over their values just before the BGSAVE.
            Redis's tree includes its fork child (RSS counts the shared pages
            twice; PSS does not); shardis has no child.

Usage: bench/persistence.py [--keys N] [--threads T] [--writers C]
  --keys N     string keys (default 1000000), plus N/100 each of hashes, sets
               and zsets of 10 elements
  --threads T  shardis --threads (default 1)
  --writers C  redis-benchmark clients writing during BGSAVE (default 4)
Environment: SHARDIS_BIN (default $CARGO_TARGET_DIR/release/shardis-server,
else <repo>/target/release/shardis-server), REDIS_BIN (default redis-server).
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(msg):
    sys.exit(f"persistence: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def dataset(keys):
    rnd = random.Random(7)
    letters = b"abcdefghijklmnopqrstuvwxyz"

    def word():
        return bytes(rnd.choice(letters) for _ in range(rnd.randint(3, 16)))

    buf = []
    for i in range(keys):
        buf.append(resp(b"SET", b"key:%09d" % i, word()))
    for i in range(keys // 100):
        h = [b"HSET", b"hash:%07d" % i]
        z = [b"ZADD", b"zset:%07d" % i]
        for j in range(10):
            h += [b"f%d" % j, word()]
            z += [b"%d" % rnd.randint(0, 10**6), b"m%d" % j]
        buf += [resp(*h), resp(*z), resp(b"SADD", b"set:%07d" % i, *[b"m%d" % j for j in range(10)])]
    return b"".join(buf)


def cli(port, *args, timeout=600):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, timeout=timeout)
    return r.stdout.decode().strip()


def info(port, field):
    for line in cli(port, "info", "all").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def rss_pss(pids):
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    k, v = line.split(":", 1)
                    if k == "Rss":
                        rss += int(v.split()[0]) * 1024
                    elif k == "Pss":
                        pss += int(v.split()[0]) * 1024
        except OSError:
            pass
    return rss, pss


class Server:
    def __init__(self, name, argv, workdir):
        self.name, self.argv, self.dir = name, argv, os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.log = os.path.join(self.dir, "server.log")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv + ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                         "--dbfilename", "dump.rdb", "--save", "", "--logfile", self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        while cli(self.port, "ping") != "PONG":
            if self.proc.poll() is not None:
                die(f"{self.name} exited at start: see {self.log}")
            if time.monotonic() - t0 > 300:
                die(f"{self.name} did not answer PING")
            time.sleep(0.01)
        return time.monotonic() - t0

    def stop(self):
        cli(self.port, "shutdown", "nosave")
        self.proc.wait(timeout=60)

    def load_log_secs(self):
        """Seconds between the 'Loading RDB' and 'Done loading RDB' log lines."""
        stamps = {}
        with open(self.log) as f:
            for line in f:
                for key in ("Loading RDB produced", "Done loading RDB"):
                    if key in line:
                        # <pid>:<role> dd Mon yyyy HH:MM:SS.mmm
                        hms = line.split()[4]
                        h, m, s = hms.split(":")
                        stamps[key] = int(h) * 3600 + int(m) * 60 + float(s)
        if len(stamps) == 2:
            return stamps["Done loading RDB"] - stamps["Loading RDB produced"]
        return None


def measure(server, data, keys, writers):
    r = {}
    server.start()
    p = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data,
                       capture_output=True, timeout=900)
    if b"errors: 0," not in p.stdout:
        die(f"loading into {server.name} failed: {p.stdout.decode()}")
    r["keys"] = int(cli(server.port, "dbsize"))
    t0 = time.monotonic()
    if cli(server.port, "save") != "OK":
        die(f"SAVE failed on {server.name}")
    r["save_s"] = time.monotonic() - t0
    r["dump_mb"] = os.path.getsize(os.path.join(server.dir, "dump.rdb")) / 2**20
    r["digest"] = cli(server.port, "debug", "digest")
    server.stop()
    r["start_s"] = server.start()
    r["load_log_s"] = server.load_log_secs()
    if cli(server.port, "debug", "digest") != r["digest"]:
        die(f"{server.name}: digest changed across the reload")

    # BGSAVE under a continuous write load over the same keys.
    bench = subprocess.Popen(
        ["redis-benchmark", "-p", str(server.port), "-t", "set", "-r", str(keys), "-n", "100000000",
         "-c", str(writers), "-d", "12", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)  # the load is running and the allocator has settled
    pid = server.proc.pid
    base_rss, base_pss = rss_pss(tree(pid))
    cmds0 = int(info(server.port, "total_commands_processed"))
    t0 = time.monotonic()
    if "started" not in cli(server.port, "bgsave"):
        die(f"BGSAVE did not start on {server.name}")
    peak_rss, peak_pss = base_rss, base_pss
    while True:
        rss, pss = rss_pss(tree(pid))
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        if info(server.port, "rdb_bgsave_in_progress") == "0":
            break
        time.sleep(0.01)
    r["bgsave_s"] = time.monotonic() - t0
    r["writes_during"] = int(info(server.port, "total_commands_processed")) - cmds0
    bench.kill()
    bench.wait()
    r["base_rss_mb"] = base_rss / 2**20
    r["rss_growth_mb"] = (peak_rss - base_rss) / 2**20
    r["pss_growth_mb"] = (peak_pss - base_pss) / 2**20
    r["bgsave_status"] = info(server.port, "rdb_last_bgsave_status")
    server.stop()
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--writers", type=int, default=4)
    a = ap.parse_args()
    for tool in ("redis-cli", "redis-benchmark"):
        if not shutil.which(tool):
            die(f"{tool} is needed: apt-get install -y redis-server redis-tools")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    shardis = os.environ.get("SHARDIS_BIN", os.path.join(target, "release", "shardis-server"))
    redis = os.environ.get("REDIS_BIN", shutil.which("redis-server") or "redis-server")
    if not os.access(shardis, os.X_OK):
        die(f"shardis-server not found at {shardis} (cargo build --release -p shardis-server)")
    data = dataset(a.keys)
    with tempfile.TemporaryDirectory(prefix="bench-persistence-") as work:
        res = {
            "shardis": measure(Server("shardis", [shardis, "--threads", str(a.threads), "--enable-debug-command", "yes"], work),
                               data, a.keys, a.writers),
            "redis": measure(Server("redis", [redis, "--appendonly", "no", "--enable-debug-command", "yes"], work),
                             data, a.keys, a.writers),
        }
    s, r = res["shardis"], res["redis"]
    if s["digest"] != r["digest"]:
        die(f"digests differ: shardis {s['digest']}, redis {r['digest']}")
    print(f"keys: {s['keys']} (digest {s['digest']}, equal on both); shardis --threads {a.threads}; "
          f"{a.writers} redis-benchmark SET clients during BGSAVE")
    print()
    print("| measure | redis | shardis | shardis/redis |")
    print("|---|---|---|---|")

    def row(label, key, fmt):
        sv, rv = s[key], r[key]
        ratio = f"{sv / rv:.2f}x" if sv is not None and rv else "-"
        show = lambda v: "-" if v is None else fmt.format(v)
        print(f"| {label} | {show(rv)} | {show(sv)} | {ratio} |")

    row("SAVE, s", "save_s", "{:.2f}")
    row("dump size, MiB", "dump_mb", "{:.1f}")
    row("restart until PING answers, s", "start_s", "{:.2f}")
    row("RDB load (log lines), s", "load_log_s", "{:.2f}")
    row("BGSAVE under writes, s", "bgsave_s", "{:.2f}")
    row("writes served during BGSAVE", "writes_during", "{:d}")
    row("RSS before BGSAVE, MiB", "base_rss_mb", "{:.1f}")
    row("peak RSS growth during BGSAVE, MiB", "rss_growth_mb", "{:.1f}")
    row("peak PSS growth during BGSAVE, MiB", "pss_growth_mb", "{:.1f}")
    for name, v in res.items():
        if v["bgsave_status"] != "ok":
            die(f"{name}: BGSAVE status {v['bgsave_status']}")
    print()
    print(f"shardis extra memory during BGSAVE under writes: "
          f"{100 * s['pss_growth_mb'] / s['base_rss_mb']:.1f}% of its RSS (PSS growth)")


if __name__ == "__main__":
    main()
