#!/usr/bin/env python3
"""Turns bench/compare's results.tsv into ratio tables (stdout), a section of
docs/benchmarks.md (between <!-- compare:MODE begin/end --> markers, the rest
of the file untouched) and grouped-bar SVG charts. Standard library only."""

import argparse
import html
import os
import re
import statistics
import sys
from collections import defaultdict

COLORS = {"redis": "#c0392b", "shardis-t1": "#2471a3", "shardis-t2": "#5dade2",
          "shardis": "#2471a3", "replica 1": "#7d3c98", "replica 2": "#16a085"}


def load(path):
    suite, repl, fanout, fullsync = defaultdict(list), defaultdict(list), [], {}
    with open(path) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if c[0] == "suite":
                suite[(c[1], int(c[2]), c[3])].append((float(c[4]), float(c[5])))
            elif c[0] == "repl":
                repl[(c[1], int(c[2]))].append((float(c[3]), float(c[4])))
            elif c[0] == "fanout":
                # kind, replica number, SET/s, markers, seen, p50, p90, p99, p99.9, max, lag p50/p99/max
                fanout.append({"kind": c[1], "idx": int(c[2]), "wps": float(c[3]),
                               "markers": int(c[4]), "seen": int(c[5]),
                               "p50": float(c[6]), "p90": float(c[7]), "p99": float(c[8]),
                               "p999": float(c[9]), "max": float(c[10]),
                               "lag50": int(c[11]), "lag99": int(c[12]), "lagmax": int(c[13])})
            elif c[0] == "fullsync":
                fullsync[c[1]] = {"keys": int(c[2]), "sync": float(c[3]), "wps": float(c[4]),
                                  "rss0": float(c[5]), "rss": float(c[6]), "pss0": float(c[7]),
                                  "pss": float(c[8]), "procs": int(c[9])}
    return suite, repl, fanout, fullsync


def med(samples, i):
    return statistics.median(s[i] for s in samples)


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def tables(suite, repl, fanout, fullsync):
    out = []
    tests = []
    for (t, _, _) in suite:
        if t not in tests:
            tests.append(t)
    if suite:
        out.append("### redis-benchmark suite (shardis --threads 1 vs redis-server)\n")
        out.append("| test | -P | redis rps | shardis rps | rps ratio | redis CPU-s/1M | shardis CPU-s/1M | CPU ratio |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for p in (1, 16):
            for t in tests:
                r, s = suite.get((t, p, "redis")), suite.get((t, p, "shardis-t1"))
                if not r or not s:
                    continue
                rr, sr, rc, sc = med(r, 0), med(s, 0), med(r, 1), med(s, 1)
                out.append(f"| {t.upper()} | {p} | {rr:.0f} | {sr:.0f} | {ratio(sr, rr)} | {rc:.3f} | {sc:.3f} | {ratio(sc, rc)} |")
        out.append("\nrps ratio > 1: shardis faster; CPU ratio < 1: shardis spends less server CPU per request.\n")

        out.append("### Throughput by threads (SET/GET)\n")
        out.append("| test | -P | redis rps | shardis t1 rps | shardis t2 rps | t1/redis | t2/redis | CPU-s/1M redis / t1 / t2 |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for p in (1, 16):
            for t in ("set", "get"):
                v = [suite.get((t, p, s)) for s in ("redis", "shardis-t1", "shardis-t2")]
                if not all(v):
                    continue
                r, a, b = (med(x, 0) for x in v)
                cpus = " / ".join(f"{med(x, 1):.3f}" for x in v)
                out.append(f"| {t.upper()} | {p} | {r:.0f} | {a:.0f} | {b:.0f} | {ratio(a, r)} | {ratio(b, r)} | {cpus} |")
        out.append("")

    if repl:
        out.append("### Master write throughput with 0-4 replicas (SET -P 16, --threads 1)\n")
        rounds = max(len(v) for v in repl.values())
        out.append(f"Median of {rounds} runs per row. \"rps of own 0\" and \"CPU of own 0\" compare a "
                   "server with itself without replicas: throughput (lower = replicas cost more; on a small "
                   "machine the replicas also take CPU from the master) and master CPU per request "
                   "(higher = replicas cost more).\n")
        out.append("| replicas | redis rps | shardis rps | ratio | redis rps of own 0 | shardis rps of own 0 "
                   "| redis master CPU-s/1M | shardis master CPU-s/1M | CPU ratio "
                   "| redis CPU of own 0 | shardis CPU of own 0 |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = {k: (med(repl[(k, 0)], 0), med(repl[(k, 0)], 1))
                for k in ("redis", "shardis") if (k, 0) in repl}
        for n in sorted({k[1] for k in repl}):
            r, s = repl.get(("redis", n)), repl.get(("shardis", n))
            if r and s:
                r = (med(r, 0), med(r, 1))
                s = (med(s, 0), med(s, 1))
                own = [ratio(x[i], base[k][i]) if k in base else "n/a"
                       for i in (0, 1) for k, x in (("redis", r), ("shardis", s))]
                out.append(f"| {n} | {r[0]:.0f} | {s[0]:.0f} | {ratio(s[0], r[0])} | {own[0]} | {own[1]} "
                           f"| {r[1]:.3f} | {s[1]:.3f} | {ratio(s[1], r[1])} | {own[2]} | {own[3]} |")
        out.append("")

    if fanout:
        out.append("### Replication propagation latency under sustained writes (fanout, 2 replicas)\n")
        out.append("| server | replica | SET/s | markers seen | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | offset lag p50 / p99 / max bytes |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for f in fanout:
            out.append(f"| {f['kind']} | {f['idx']} | {f['wps']:.0f} | {f['seen']}/{f['markers']} | {f['p50']:.3f} | {f['p90']:.3f} | "
                       f"{f['p99']:.3f} | {f['p999']:.3f} | {f['max']:.3f} | {f['lag50']} / {f['lag99']} / {f['lagmax']} |")
        out.append("")
        for q in ("p50", "p99"):
            r = [f[q] for f in fanout if f["kind"] == "redis"]
            s = [f[q] for f in fanout if f["kind"] == "shardis"]
            if r and s:
                out.append(f"- {q} propagation, mean over replicas: shardis {statistics.mean(s):.3f} ms vs redis "
                           f"{statistics.mean(r):.3f} ms ({ratio(statistics.mean(s), statistics.mean(r))})")
        out.append("")

    if fullsync:
        out.append("### Full sync of a new replica under writes (master process tree memory)\n")
        out.append("| server | keys | sync s | SET/s during | RSS before MiB | RSS peak MiB | PSS before MiB | PSS peak MiB | procs at RSS peak |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in ("redis", "shardis"):
            f = fullsync.get(k)
            if f:
                out.append(f"| {k} | {f['keys']} | {f['sync']:.3f} | {f['wps']:.0f} | {f['rss0']:.1f} | {f['rss']:.1f} | "
                           f"{f['pss0']:.1f} | {f['pss']:.1f} | {f['procs']} |")
        r, s = fullsync.get("redis"), fullsync.get("shardis")
        if r and s:
            out.append(f"\n- sync time ratio shardis/redis: {ratio(s['sync'], r['sync'])}; peak RSS growth over the "
                       f"pre-sync RSS: shardis +{s['rss'] - s['rss0']:.1f} MiB, redis +{r['rss'] - r['rss0']:.1f} MiB "
                       f"(RSS of the fork child included; PSS growth: shardis +{s['pss'] - s['pss0']:.1f}, redis +{r['pss'] - r['pss0']:.1f})")
        out.append("")
    return "\n".join(out)


def bar_chart(path, title, unit, groups, series, values, fmt="{:.0f}"):
    """Grouped bars: `groups` along x, one bar per `series` in each group;
    values[(group, series)] -> number (missing pairs are skipped)."""
    w_bar, gap, left, top, height = 22, 18, 70, 40, 240
    n = len(series)
    gw = n * w_bar + gap
    width = max(left + len(groups) * gw + 20, 560)
    vmax = max([v for v in values.values() if v is not None] + [1e-9])
    # A round axis maximum.
    mag = 10 ** (len(str(int(vmax))) - 1) if vmax >= 1 else 10 ** -3
    step = mag
    while vmax / step > 5:
        step *= 2
    ymax = step * (int(vmax / step) + 1)
    legend_h = 20
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 60 + legend_h}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    y0 = top + height
    t = 0.0
    while t <= ymax + 1e-9:
        y = y0 - t / ymax * height
        svg.append(f'<line x1="{left - 4}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt_axis(t)}</text>')
        t += step
    svg.append(f'<text x="14" y="{top + height / 2}" transform="rotate(-90 14 {top + height / 2})" '
               f'text-anchor="middle">{html.escape(unit)}</text>')
    for gi, g in enumerate(groups):
        gx = left + gi * gw + gap / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            h = v / ymax * height
            x = gx + si * w_bar
            svg.append(f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{w_bar - 2}" height="{h:.1f}" '
                       f'fill="{COLORS.get(s, "#888")}"><title>{html.escape(s)} {html.escape(g)}: {fmt.format(v)}</title></rect>')
        svg.append(f'<text x="{gx + n * w_bar / 2:.1f}" y="{y0 + 14}" text-anchor="middle">{html.escape(g)}</text>')
    svg.append(f'<line x1="{left}" x2="{width - 10}" y1="{y0}" y2="{y0}" stroke="#333"/>')
    lx = left
    for s in series:
        svg.append(f'<rect x="{lx}" y="{y0 + 30}" width="12" height="12" fill="{COLORS.get(s, "#888")}"/>')
        svg.append(f'<text x="{lx + 16}" y="{y0 + 40}">{html.escape(s)}</text>')
        lx += 24 + 7 * len(s)
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


def fmt_axis(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def charts(svg_dir, mode, suite, fanout):
    os.makedirs(svg_dir, exist_ok=True)
    made = []
    tests = []
    for (t, _, _) in suite:
        if t not in tests:
            tests.append(t)
    for p in (1, 16):
        vals = {(t.upper(), s): med(v, 0) for (t, pp, s), v in suite.items() if pp == p and s in ("redis", "shardis-t1")}
        name = f"{mode}-suite-p{p}.svg"
        bar_chart(os.path.join(svg_dir, name), f"redis-benchmark suite, -P {p}: requests/s (higher is better)",
                  "requests/s", [t.upper() for t in tests], ["redis", "shardis-t1"], vals)
        made.append((name, f"suite -P {p}"))
    groups, vals = [], {}
    for p in (1, 16):
        for t in ("set", "get"):
            g = f"{t.upper()} -P {p}"
            groups.append(g)
            for s in ("redis", "shardis-t1", "shardis-t2"):
                if (t, p, s) in suite:
                    vals[(g, s)] = med(suite[(t, p, s)], 0)
    name = f"{mode}-threads.svg"
    bar_chart(os.path.join(svg_dir, name), "Throughput by threads and pipeline (requests/s)", "requests/s",
              groups, ["redis", "shardis-t1", "shardis-t2"], vals)
    made.append((name, "threads and pipeline"))
    if fanout:
        groups = ["p50", "p90", "p99", "p99.9"]
        series, vals = [], {}
        for f in fanout:
            s = f"{f['kind']} replica {f['idx']}"
            series.append(s)
            COLORS.setdefault(s, {"redis": ["#c0392b", "#e6897d"], "shardis": ["#2471a3", "#7fb3d5"]}
                              [f["kind"]][(f["idx"] - 1) % 2])
            for g, k in zip(groups, ("p50", "p90", "p99", "p999")):
                vals[(g, s)] = f[k]
        name = f"{mode}-lag.svg"
        bar_chart(os.path.join(svg_dir, name), "Replication propagation latency percentiles (ms, lower is better)",
                  "ms", groups, series, vals, fmt="{:.3f}")
        made.append((name, "propagation latency"))
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--machine", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--params", default="")
    ap.add_argument("--command", default="bench/compare")
    ap.add_argument("--elapsed", default="?")
    ap.add_argument("--doc")
    ap.add_argument("--svg-dir")
    a = ap.parse_args()
    suite, repl, fanout, fullsync = load(a.results)
    body = tables(suite, repl, fanout, fullsync)
    print(body)
    if not a.doc:
        return
    made = charts(a.svg_dir, a.mode, suite, fanout) if a.svg_dir else []
    rel = os.path.relpath(a.svg_dir, os.path.dirname(a.doc)) if a.svg_dir else ""
    import datetime
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = [f"<!-- compare:{a.mode} begin (generated by {a.command}; edits here are overwritten) -->",
               f"## bench/compare ({a.mode} mode)\n",
               f"`{a.command}` on {when}, {a.elapsed} s. Machine: {a.machine}.",
               f"{a.versions}.",
               f"Parameters: {a.params}.",
               "Each server is measured in alternation with the other in the same run; CPU is the server's "
               "utime+stime from /proc/PID/stat per million requests.\n",
               body]
    for name, alt in made:
        section.append(f"![{alt}]({rel}/{name})")
    section.append(f"<!-- compare:{a.mode} end -->")
    text = "\n".join(section) + "\n"
    doc = open(a.doc).read() if os.path.exists(a.doc) else "# Benchmarks\n"
    pat = re.compile(rf"<!-- compare:{a.mode} begin.*?<!-- compare:{a.mode} end -->\n?", re.S)
    if pat.search(doc):
        doc = pat.sub(lambda _: text, doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    with open(a.doc, "w") as f:
        f.write(doc)
    print(f"wrote {a.doc} and {len(made)} charts in {a.svg_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
