#!/usr/bin/env python3
"""Full sync and BGSAVE under writes, shardis-server against redis-server 7.0 in one run.

The rows of issue 14's table, for each server (same binary for master and
replicas; persistence off; diskless sync with no delay):

  sync1     a replica's REPLICAOF until its INFO shows the link up with no
            sync in progress, while redis-benchmark SET -P 16 -c 50 (100-byte
            values, random keys) runs flat out against the master
  sync2     the same for a second replica asked 0.2 s after the first
            (a replica not in sync after 120 s is reported as "> 120")
  writes    the master's write stream in MB/s over 3 s once both are online
            (master_repl_offset growth: what the replicas are fed)
  lag       meanwhile, every 10 ms, how far each replica's applied offset
            (its INFO master_repl_offset) trails the master's: the p99 in MB,
            sampled once the replicas have caught up with the stream that
            piled up during their sync (or after 10 s)
  bgsave    a BGSAVE under the same load: its duration, and the peak of the
            master's RSS plus its fork child's private dirty pages (Redis's
            copy-on-write cost; shardis has no child) against the RSS just
            before

The dataset is DEBUG POPULATE --keys keys of 100 bytes. Rounds alternate the
order of the servers; each figure is the median over the rounds.

Usage: bench/fullsync.py [--keys N] [--rounds R] [--threads T] [--diskless-load MODE]
  --diskless-load  repl-diskless-load for every server (disabled, on-empty-db,
                   swapdb; default: each server's own default, disabled)
Environment: SHARDIS_BIN (default <repo>/target/release/shardis-server),
REDIS_BIN (default redis-server); redis-cli and redis-benchmark from PATH.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

INF = float("inf")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args],
                          capture_output=True, text=True).stdout


def info(port, *sections):
    out = "".join(cli(port, "info", s) for s in sections)
    return dict(l.split(":", 1) for l in out.replace("\r", "").split("\n") if ":" in l)


def rollup(pid, field):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Servers:
    """Three servers of one kind on ports base..base+2, killed on exit."""

    def __init__(self, cmd, base, count, extra):
        self.dir = tempfile.mkdtemp(prefix="fullsync.")
        self.procs = []
        self.ports = [base + i for i in range(count)]
        for i, port in enumerate(self.ports):
            d = os.path.join(self.dir, str(i))
            os.makedirs(d)
            self.procs.append(subprocess.Popen(
                cmd + ["--port", str(port), "--dir", d, "--save", "", "--appendonly", "no",
                       "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                       "--enable-debug-command", "yes", "--logfile", os.path.join(d, "log")]
                + extra,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 10
        for port in self.ports:
            while cli(port, "ping").strip() != "PONG":
                if time.time() > deadline:
                    held = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
                    held = "\n".join(l for l in held.splitlines() if f":{port} " in l and "TIME-WAIT" not in l)
                    sys.exit(f"fullsync: server on port {port} did not start (logs in {self.dir})\n{held}")
                time.sleep(0.05)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def load(port, keys):
    return subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-P", "16", "-c", "50", "-d", "100",
         "-r", str(keys), "-n", "1000000000", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(p):
    # SIGTERM: a shell running this in the background makes it ignore SIGINT.
    p.terminate()
    p.wait()


def full_sync(cmd, base, keys, extra):
    s = Servers(cmd, base, 3, extra)
    try:
        m, r1, r2 = s.ports
        cli(m, "debug", "populate", str(keys), "key", "100")
        writer = load(m, keys)
        time.sleep(1.0)
        asked = {}
        asked[r1] = time.time()
        cli(r1, "replicaof", "127.0.0.1", str(m))
        time.sleep(0.2)
        asked[r2] = time.time()
        cli(r2, "replicaof", "127.0.0.1", str(m))
        done = {}
        while len(done) < 2 and time.time() - asked[r1] < 120:
            for r in (r1, r2):
                if r not in done:
                    i = info(r, "replication")
                    if i.get("master_link_status") == "up" and i.get("master_sync_in_progress") == "0":
                        done[r] = time.time() - asked[r]
            time.sleep(0.01)
        # Replica lag, the replica's view: how far its applied offset trails
        # the master's, sampled every 10 ms over 3 s of writes, once each
        # replica has caught up with the stream that piled up during its
        # sync (below 1 MB behind once, or after 10 s).
        def behind(r):
            mo = int(info(m, "replication").get("master_repl_offset", 0))
            ro = info(r, "replication").get("master_repl_offset")
            return INF if ro is None else mo - int(ro)
        settle = time.time() + 10
        while time.time() < settle and any(behind(r) > 2**20 for r in done):
            time.sleep(0.01)
        a = int(info(m, "replication")["master_repl_offset"])
        lags = []
        t_end = time.time() + 3
        while time.time() < t_end:
            mo = int(info(m, "replication").get("master_repl_offset", 0))
            for r in (r1, r2):
                ro = info(r, "replication").get("master_repl_offset")
                if ro is not None and r in done:
                    lags.append(max(0, mo - int(ro)))
            time.sleep(0.01)
        b = int(info(m, "replication")["master_repl_offset"])
        stop(writer)
        lags.sort()
        p99 = lags[int(len(lags) * 0.99) - 1] / 2**20 if lags else INF
        # A replica still syncing after 120 s (the output-buffer-limit loop a
        # slow full sync falls into under writes) counts as infinitely slow.
        return done.get(r1, INF), done.get(r2, INF), (b - a) / 3 / 2**20, p99
    finally:
        s.close()


def bgsave(cmd, base, keys, extra):
    s = Servers(cmd, base, 1, extra)
    try:
        port, pid = s.ports[0], s.procs[0].pid
        cli(port, "debug", "populate", str(keys), "key", "100")
        writer = load(port, keys)
        time.sleep(1.5)
        before = rollup(pid, "Rss")
        t0 = time.time()
        cli(port, "bgsave")
        peak = 0
        while time.time() - t0 < 120:
            kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True).stdout.split()
            peak = max(peak, rollup(pid, "Rss") + sum(rollup(k, "Private_Dirty") for k in kids))
            if time.time() - t0 > 0.05 and info(port, "persistence").get("rdb_bgsave_in_progress") == "0":
                break
            time.sleep(0.01)
        took = time.time() - t0
        stop(writer)
        if info(port, "persistence").get("rdb_last_bgsave_status") != "ok":
            sys.exit("fullsync: BGSAVE failed")
        return took, before / 2**20, peak / 2**20
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=300000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="shardis --threads (default: its own)")
    ap.add_argument("--diskless-load", choices=["disabled", "on-empty-db", "swapdb"])
    a = ap.parse_args()
    both = ["--repl-diskless-load", a.diskless_load] if a.diskless_load else []
    shardis = os.environ.get("SHARDIS_BIN", os.path.join(REPO, "target/release/shardis-server"))
    servers = {
        "redis": ([os.environ.get("REDIS_BIN", "redis-server")], 7600, both),
        "shardis": ([shardis], 7700, (["--threads", str(a.threads)] if a.threads else []) + both),
    }
    rows = {k: [] for k in servers}
    for r in range(a.rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(list(servers)))
        for kind in order:
            cmd, base, extra = servers[kind]
            s1, s2, mbs, lag = full_sync(cmd, base, a.keys, extra)
            took, before, peak = bgsave(cmd, base, a.keys, extra)
            rows[kind].append((s1, s2, mbs, lag, took, before, peak))
            print(f"round {r + 1} {kind}: sync1 {s1:.2f} s, sync2 {s2:.2f} s, writes {mbs:.1f} MB/s, "
                  f"lag p99 {lag:.2f} MB, "
                  f"bgsave {took:.2f} s, rss {before:.0f} -> peak {peak:.0f} MiB", file=sys.stderr)
    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in rows.items()}
    names = ["full sync, replica 1 (s)", "full sync, replica 2 (s)",
             "master write stream with 2 replicas (MB/s)",
             "replica lag p99, replica's view (MB)", "BGSAVE under writes (s)",
             "master RSS before BGSAVE (MiB)", "peak RSS + child dirty in BGSAVE (MiB)"]
    threads = f"--threads {a.threads}" if a.threads else "default threads"
    if a.diskless_load:
        threads += f", repl-diskless-load {a.diskless_load}"
    print(f"### Full sync and BGSAVE under writes: {a.keys} keys x 100 B, shardis {threads}, "
          f"median of {a.rounds} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| | redis | shardis | shardis / redis |")
    print("|---|---:|---:|---:|")
    def fmt(v):
        return "> 120" if v == INF else f"{v:.2f}"

    for i, name in enumerate(names):
        r, s = med["redis"][i], med["shardis"][i]
        ratio = "n/a" if INF in (r, s) or r == 0 else f"{s / r:.2f}x"
        print(f"| {name} | {fmt(r)} | {fmt(s)} | {ratio} |")


if __name__ == "__main__":
    main()
