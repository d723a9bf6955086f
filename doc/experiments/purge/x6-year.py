#!/usr/bin/env python3
"""x6-year: a simulated year of one mailbox on two replicas, written as a
git fast-import stream in maildag's tree layout (format 1: sharded
folders, no mtimes records needed since names carry delivery times), to
measure what history costs once packed (doc/purge.md, part 3).

  x6-year.py MSGDIR DAYS > stream      (MSGDIR: gen-maildir msgs output)

Per day: 100 deliveries (80% INBOX, 20% into 4 folders), alternating
between replicas mx1 and mx2, one commit each (maildag-lda); each message
is read within the day (new/ -> cur/ with S: one commit each, as a client
reading mail one by one makes); 30% are expunged within a week (one
commit each); 10 further flag changes a day (F or R on older mail); one
merge commit for every tenth change (two replicas changed at once;
counted as a commit whose tree is its first parent's, a lower bound).

Side output (stderr, then file x6-year.meta): for every message its blob
mark, the day it was delivered and the day it was expunged (or -1), so
the measuring script can tell live, retained and purgeable blobs apart.
"""
import os
import random
import sys

msgdir, days = sys.argv[1], int(sys.argv[2])
files = sorted(os.listdir(msgdir))
random.seed(1)
out = sys.stdout.buffer
FOLDERS = ["", ".Lists", ".Work", ".Receipts", ".Family"]
T0 = 1767225600  # 2026-01-01


def shard(key):
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return "%02x" % (h & 0xff)


mark = 0
msgs = {}          # key -> dict(folder, sub, name, blobmark, day, exp)
meta = []
commit_marks = []
tips = {"mx1": None, "mx2": None}
now = T0


def path(m):
    f = m["folder"] + "/" if m["folder"] else ""
    return "%s%s/%s/%s" % (f, m["sub"], shard(m["key"]), m["name"])


def emit_commit(node, msg, changes, parents):
    global mark, now
    mark += 1
    now += 1
    out.write(b"commit refs/heads/%s\nmark :%d\n" % (node.encode(), mark))
    out.write(b"committer maildag <%s@maildag> %d +0000\n" % (node.encode(), now))
    out.write(b"data %d\n%s\n" % (len(msg), msg.encode()))
    if parents:
        out.write(b"from :%d\n" % parents[0])
        for p in parents[1:]:
            out.write(b"merge :%d\n" % p)
    for c in changes:
        out.write(c.encode() + b"\n")
    out.write(b"\n")
    return mark


def change(node, msg, changes):
    """a commit on node; one in ten also gets merged into the other side"""
    other = "mx2" if node == "mx1" else "mx1"
    parents = [tips[node]] if tips[node] else []
    if not parents:
        changes = ["M 100644 inline FORMAT\ndata 10\nmaildag 1"] + changes
    c = emit_commit(node, msg, changes, parents)
    tips[node] = c
    if random.random() < 0.1 and tips[other]:
        # the other side had a change of its own: a canonical merge on
        # both (same commit).  Its tree is taken as the current state
        # (the first parent's): merges are counted as commits only, a
        # lower bound for what they cost
        m = emit_commit(node, "merge", [], [tips[node], tips[other]])
        tips[node] = tips[other] = m
    else:
        tips[other] = c   # fast-forward


serial = 0
fi = 0
pending_read, pending_exp = [], []
for day in range(days):
    node_turn = 0
    events = []
    for i in range(100):
        events.append(("deliver", day * 86400 + int(i * 864)))
    for (kind, _) in events:
        node = "mx1" if node_turn % 2 == 0 else "mx2"
        node_turn += 1
        body = open(os.path.join(msgdir, files[fi % len(files)]), "rb").read()
        fi += 1
        mark += 1
        out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(body)) + body + b"\n")
        serial += 1
        key = "%d.M%dP%dQ1.%s" % (T0 + day * 86400 + serial % 86400, serial, 4000 + serial % 1000, node)
        folder = "" if random.random() < 0.8 else random.choice(FOLDERS[1:])
        m = dict(key=key, folder=folder, sub="new", name="%s,S=%d" % (key, len(body)),
                 blob=mark, day=day, exp=-1)
        msgs[key] = m
        meta.append(m)
        change(node, "deliver to %s" % (folder or "INBOX"), ["M 100644 :%d %s" % (mark, path(m))])
        # read later today
        pending_read.append(key)
        if random.random() < 0.3:
            pending_exp.append((day + random.randint(0, 6), key))
    # reading: new/ -> cur/ with S
    for key in pending_read:
        m = msgs.get(key)
        if not m:
            continue
        old = path(m)
        m["sub"], m["name"] = "cur", m["name"] + ":2,S"
        change(random.choice(["mx1", "mx2"]), "flags", ["D " + old, "M 100644 :%d %s" % (m["blob"], path(m))])
    pending_read = []
    # other flag changes on older mail
    live = list(msgs.values())
    for i in range(10):
        if not live:
            break
        m = random.choice(live)
        if m["sub"] != "cur":
            continue
        old = path(m)
        base, fl = m["name"].split(":2,")
        fl = "".join(sorted(set(fl) ^ {random.choice("FR")}))
        m["name"] = base + ":2," + fl
        change(random.choice(["mx1", "mx2"]), "flags", ["D " + old, "M 100644 :%d %s" % (m["blob"], path(m))])
    # expunges due today
    keep = []
    for (d, key) in pending_exp:
        if d > day:
            keep.append((d, key))
            continue
        m = msgs.pop(key, None)
        if not m:
            continue
        m["exp"] = day
        change(random.choice(["mx1", "mx2"]), "expunge", ["D " + path(m)])
    pending_exp = keep

with open("x6-year.meta", "w") as f:
    for m in meta:
        f.write("%d %d %d %s\n" % (m["blob"], m["day"], m["exp"], m["key"]))
sys.stderr.write("commits %d, messages %d, live %d\n" % (mark - len(meta), len(meta), len(msgs)))
