#!/usr/bin/env python3
"""Generates crates/commands/src/generated.rs from a live redis-server 7.0.15.

Usage:
    gen_table.py --port 6379            # ask a running redis-server (writes both files)
    gen_table.py --from-json FILE       # regenerate from a saved snapshot

It asks redis-server for `COMMAND` (COMMAND INFO of every command, subcommands
nested) and `COMMAND DOCS`, and writes:

  - crates/commands/gen/redis-7.0.15-commands.json: the snapshot it read
    (sorted, so two runs against the same server give the same file);
  - crates/commands/src/generated.rs: one row per Redis command and
    subcommand, sorted by full name (`config|get`), with everything COMMAND
    INFO and COMMAND DOCS say about it.

Which of these commands shardis implements is not decided here: that is the
hand-written list in crates/commands/src/lib.rs. `.ci/checks/25-command-table.sh`
re-runs this script against the CI's redis-server and fails on a diff.
"""
import argparse
import json
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SNAPSHOT = os.path.join(HERE, "redis-7.0.15-commands.json")
OUTPUT = os.path.join(HERE, "..", "src", "generated.rs")

# The orders redis-server prints these sets in (server.c addReplyFlagsForCommand,
# addReplyFlagsForKeyArgs, addReplyFlagsForArg, addReplyDocFlagsForCommand;
# acl.c ACLCommandCategories). Each row's lists are checked against them, so a
# server that disagrees fails the generator instead of producing a wrong table.
FLAGS = ["write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
         "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
         "fast", "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi",
         "movablekeys", "allow_busy"]
CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting"]
KEY_FLAGS = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
             "not_key", "incomplete", "variable_flags"]
ARG_FLAGS = ["optional", "multiple", "multiple_token"]
DOC_FLAGS = ["deprecated", "syscmd"]
ARG_TYPES = ["string", "integer", "double", "key", "pattern", "unix-time",
             "pure-token", "oneof", "block"]


# --- a minimal RESP2 client -------------------------------------------------

class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buf = b""

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self.line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n).decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected reply %r" % line)


def pairs(lst):
    return {lst[i]: lst[i + 1] for i in range(0, len(lst), 2)}


def ordered(values, order, what):
    """Checks that `values` are known and in redis-server's order."""
    for v in values:
        if v not in order:
            sys.exit("unknown %s %r" % (what, v))
    idx = [order.index(v) for v in values]
    if idx != sorted(idx):
        sys.exit("%s not in the expected order: %r" % (what, values))
    return values


# --- snapshot: plain JSON, sorted ---------------------------------------------

def info_json(c):
    specs = []
    for s in c[8]:
        s = pairs(s)
        bs, fk = pairs(s["begin_search"]), pairs(s["find_keys"])
        spec = {"flags": s["flags"],
                "begin_search": {"type": bs["type"], "spec": pairs(bs["spec"])},
                "find_keys": {"type": fk["type"], "spec": pairs(fk["spec"])}}
        if "notes" in s:
            spec["notes"] = s["notes"]
        specs.append(spec)
    return {"name": c[0], "arity": c[1], "flags": c[2], "first_key": c[3],
            "last_key": c[4], "step": c[5], "categories": c[6], "tips": c[7],
            "key_specs": specs,
            # None: COMMAND INFO shows an empty set (no subcommands at all);
            # a list: a container.
            "subcommands": sorted((info_json(s) for s in c[9]), key=lambda x: x["name"])
            if c[9] else None}


def arg_json(a):
    a = pairs(a)
    if "arguments" in a:
        a["arguments"] = [arg_json(x) for x in a["arguments"]]
    return a


def doc_json(d):
    d = pairs(d)
    if "arguments" in d:
        d["arguments"] = [arg_json(a) for a in d["arguments"]]
    if "subcommands" in d:
        subs = pairs(d["subcommands"])
        d["subcommands"] = {k: doc_json(v) for k, v in sorted(subs.items())}
    return d


def fetch(port):
    conn = Conn("127.0.0.1", port)
    version = pairs(conn.call("HELLO", "2"))["version"]
    if version != "7.0.15":
        sys.exit("redis-server %s is not 7.0.15" % version)
    infos = sorted((info_json(c) for c in conn.call("COMMAND")), key=lambda x: x["name"])
    docs = {k: doc_json(v) for k, v in pairs(conn.call("COMMAND", "DOCS")).items()}
    return {"version": version, "info": infos, "docs": dict(sorted(docs.items()))}


# --- Rust output ----------------------------------------------------------------

def rs_str(s):
    return json.dumps(s, ensure_ascii=False)


def rs_opt(s):
    return "None" if s is None else "Some(%s)" % rs_str(s)


def bits(values, order, module):
    ordered(values, order, module)
    return " | ".join("%s::%s" % (module, v.upper()) for v in values) or "0"


def key_spec_rs(s):
    bs, fk = s["begin_search"], s["find_keys"]
    if bs["type"] == "index":
        begin = "Begin::Index(%d)" % bs["spec"]["index"]
    elif bs["type"] == "keyword":
        begin = "Begin::Keyword { keyword: %s, startfrom: %d }" % (
            rs_str(bs["spec"]["keyword"]), bs["spec"]["startfrom"])
    elif bs["type"] == "unknown":
        begin = "Begin::Unknown"
    else:
        sys.exit("unknown begin_search %r" % bs)
    p = fk["spec"]
    if fk["type"] == "range":
        find = "Find::Range { lastkey: %d, keystep: %d, limit: %d }" % (
            p["lastkey"], p["keystep"], p["limit"])
    elif fk["type"] == "keynum":
        find = "Find::Keynum { keynumidx: %d, firstkey: %d, keystep: %d }" % (
            p["keynumidx"], p["firstkey"], p["keystep"])
    elif fk["type"] == "unknown":
        find = "Find::Unknown"
    else:
        sys.exit("unknown find_keys %r" % fk)
    return "KeySpec { notes: %s, flags: %s, begin: %s, find: %s }" % (
        rs_opt(s.get("notes")), bits(s["flags"], KEY_FLAGS, "ks"), begin, find)


ARG_FIELDS = {"name", "type", "key_spec_index", "token", "summary", "since",
              "deprecated_since", "flags", "arguments"}


def arg_rs(a, indent):
    extra = set(a) - ARG_FIELDS
    if extra:
        sys.exit("unknown argument fields %r" % extra)
    if a["type"] not in ARG_TYPES:
        sys.exit("unknown argument type %r" % a["type"])
    nested = a["type"] in ("oneof", "block")
    if nested != ("arguments" in a):
        sys.exit("argument %r: arguments present iff oneof/block" % a["name"])
    pad = " " * indent
    subs = ""
    if nested:
        subs = "\n" + "".join(arg_rs(x, indent + 4) for x in a["arguments"]) + pad
    return ("%sArg { name: %s, kind: ArgType::%s, key_spec_index: %d, token: %s, summary: %s, "
            "since: %s, deprecated_since: %s, flags: %s, arguments: &[%s] },\n") % (
        pad, rs_str(a["name"]), a["type"].replace("-", "_").title().replace("_", ""),
        a.get("key_spec_index", -1), rs_opt(a.get("token")), rs_opt(a.get("summary")),
        rs_opt(a.get("since")), rs_opt(a.get("deprecated_since")),
        bits(a.get("flags", []), ARG_FLAGS, "arg"), subs)


DOC_FIELDS = {"summary", "since", "group", "complexity", "doc_flags", "deprecated_since",
              "replaced_by", "history", "arguments", "subcommands"}


def doc_rs(d):
    extra = set(d) - DOC_FIELDS
    if extra:
        sys.exit("unknown doc fields %r" % extra)
    history = "None"
    if "history" in d:
        history = "Some(&[%s])" % ", ".join("(%s, %s)" % (rs_str(v), rs_str(t))
                                          for v, t in d["history"])
    args = "None"
    if "arguments" in d:
        args = "Some(&[\n%s        ])" % "".join(arg_rs(a, 12) for a in d["arguments"])
    return ("Doc {\n        summary: %s,\n        since: %s,\n        group: %s,\n"
            "        complexity: %s,\n        doc_flags: %s,\n        deprecated_since: %s,\n"
            "        replaced_by: %s,\n        history: %s,\n        arguments: %s,\n    }") % (
        rs_opt(d.get("summary")), rs_opt(d.get("since")), rs_str(d["group"]),
        rs_opt(d.get("complexity")), bits(d.get("doc_flags", []), DOC_FLAGS, "doc"),
        rs_opt(d.get("deprecated_since")), rs_opt(d.get("replaced_by")), history, args)


def emit(snap):
    rows = []  # (info, doc) for every command and subcommand

    def walk(info, doc):
        rows.append((info, doc))
        subs = info["subcommands"] or []
        dsubs = doc.get("subcommands", {})
        if sorted(s["name"] for s in subs) != sorted(dsubs):
            sys.exit("%s: COMMAND and COMMAND DOCS disagree on subcommands" % info["name"])
        for s in subs:
            walk(s, dsubs[s["name"]])

    for info in snap["info"]:
        walk(info, snap["docs"][info["name"]])
    rows.sort(key=lambda r: r[0]["name"])
    index = {r[0]["name"]: i for i, r in enumerate(rows)}

    out = []
    w = out.append
    w("//! Every Redis %s command and subcommand, as its `COMMAND` and `COMMAND DOCS`\n" % snap["version"])
    w("//! describe it. Generated by `crates/commands/gen/gen_table.py`; do not edit.\n")
    w("#![cfg_attr(rustfmt, rustfmt_skip)]\n")
    w("use crate::meta::{arg, cat, doc, ks, Arg, ArgType, Begin, Doc, Find, KeySpec, Meta};\n")
    w("use crate::flags;\n\n")
    w("/// Number of rows in [`TABLE`].\n")
    w("pub const COUNT: usize = %d;\n\n" % len(rows))
    w("/// Every command and subcommand, sorted by full name (`config|get`).\n")
    w("pub static TABLE: [Meta; COUNT] = [\n")
    for info, doc in rows:
        subs = info["subcommands"]
        parent = info["name"].split("|")[0] if "|" in info["name"] else None
        w("Meta {\n")
        w("    name: %s,\n" % rs_str(info["name"]))
        w("    parent: %s,\n" % ("None" if parent is None else "Some(%d)" % index[parent]))
        w("    arity: %d,\n" % info["arity"])
        w("    flags: %s,\n" % bits(info["flags"], FLAGS, "flags"))
        w("    first_key: %d,\n    last_key: %d,\n    step: %d,\n" % (
            info["first_key"], info["last_key"], info["step"]))
        w("    categories: %s,\n" % bits([c.lstrip("@") for c in info["categories"]], CATEGORIES, "cat"))
        w("    tips: &[%s],\n" % ", ".join(rs_str(t) for t in info["tips"]))
        w("    key_specs: &[%s],\n" % ", ".join(key_spec_rs(s) for s in info["key_specs"]))
        w("    subcommands: %s,\n" % ("None" if subs is None else "Some(&[%s])" % ", ".join(
            str(index[s["name"]]) for s in subs)))
        w("    doc: %s,\n" % doc_rs(doc))
        w("},\n")
    w("];\n")
    return "".join(out)


def write_if_changed(path, text):
    """Leaves an identical file untouched: a new mtime on generated.rs would make cargo
    rebuild the commands crate and everything above it (CI's check re-runs this)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", type=int, help="port of a running redis-server 7.0.15 on 127.0.0.1")
    src.add_argument("--from-json", help="regenerate from this snapshot instead")
    args = ap.parse_args()
    if args.port:
        snap = fetch(args.port)
        write_if_changed(SNAPSHOT, json.dumps(snap, indent=1, sort_keys=False, ensure_ascii=False) + "\n")
    else:
        with open(args.from_json) as f:
            snap = json.load(f)
    write_if_changed(OUTPUT, emit(snap))


if __name__ == "__main__":
    main()
