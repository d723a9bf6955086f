#!/usr/bin/python3
# split.py OUTDIR WARM: the parts of each replication that
# latency-today.sh stamped, p50 and p90 over the deliveries after the
# first WARM.  Each part is the time between two stamped events of the
# same delivery (see the table in doc/persistent-peers.md, section 2).
import os, re, sys

out, warm = sys.argv[1], int(sys.argv[2])


def read(path):
    ev = []
    if not os.path.exists(path):
        return ev
    for line in open(path, errors="replace"):
        t, _, text = line.rstrip("\n").partition(" ")
        try:
            ev.append((float(t), text))
        except ValueError:
            pass
    return ev


def first(ev, pat, after, before):
    r = re.compile(pat)
    for t, text in ev:
        if after <= t < before and r.search(text):
            return t, text
    return None, None


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    i = max(1, min(len(v), int(p / 100 * len(v) + 0.999999)))
    return v[i - 1]


PARTS = [
    ("a notices the LDA's commit", "t0", "mailnow"),
    ("fork the push child", "mailnow", "pushto"),
    ("child: libgit2 set-up + TCP connect", "pushto", "conn"),
    ("ssh key exchange (host key checked)", "conn", "hostkey"),
    ("ssh user auth", "hostkey", "accepted"),
    ("session: forced command started", "accepted", "forced"),
    ("serve + receive-pack: advert, negotiation, pack, fsck, hook, ref", "forced", "ref"),
    ("file://: libgit2 local push: negotiation, pack, ref", "pushto", "ref"),
    ("ack back to a's daemon (report, child exit)", "ref", "pushed"),
    ("b notices the ref, starts the check child", "ref", "check"),
    ("b: whole-history check child", "check", "checked"),
    ("b: merge (fast-forward)", "checked", "ff"),
    ("b: apply: the file in new/", "ff", "file"),
    ("push total (child start -> result read)", "pushto", "pushed"),
    ("TOTAL: LDA exit -> file in b's new/", "t0", "file"),
]


def scenario(name):
    d = os.path.join(out, name)
    lda = [l.split() for l in open(os.path.join(d, "lda.log"))]
    a, b = read(os.path.join(d, "a.log")), read(os.path.join(d, "b.log"))
    sshd = read(os.path.join(d, "sshd.log"))
    ino = read(os.path.join(d, "inotify.log"))
    rows, pushback = [], 0
    for i, (t0, k, f) in enumerate(lda):
        t0, k = float(t0), int(k)
        end = float(lda[i + 1][0]) - 0.2 if i + 1 < len(lda) else 1e18
        e = {"t0": t0}
        lo = t0 - 0.2
        e["mailnow"], _ = first(a, r"refs/heads/mail is now", lo, end)
        if e["mailnow"] is None:
            continue
        e["pushto"], _ = first(a, r"peer b: push to", e["mailnow"], end)
        if e["pushto"] is None:
            continue
        e["hostkey"], _ = first(a, r"peer b: host key", e["pushto"], end)
        e["pushed"], _ = first(a, r"peer b: pushed", e["pushto"], end)
        e["ref"], _ = first(ino, r"refs/peers/a/mail$", e["pushto"], end)
        e["file"], _ = first(ino, re.escape(f) + "$", t0, end)
        e["check"], _ = first(b, r"peer a: checking the history", e["ref"] or t0, end)
        e["checked"], _ = first(b, r"peer a: .* checked in", e["check"] or t0, end)
        e["ff"], _ = first(b, r"peer a: (fast-forward to|merged)", e["checked"] or t0, end)
        t, text = first(sshd, r"Accepted publickey for maildagcx2", e["pushto"], end)
        if t:
            e["accepted"] = t
            port = re.search(r"port (\d+)", text).group(1)
            e["conn"], _ = first(sshd, r"Connection from 127\.0\.0\.1 port %s " % port, e["pushto"], end)
            e["forced"], _ = first(sshd, r"Starting session: forced-command.* port %s " % port, t, end)
        if k > warm and first(b, r"peer a: pushed", e["file"] or t0, end)[0]:
            pushback += 1
        if k > warm:
            rows.append(e)
    print("== %s: %d deliveries timed (%d warm-up left out); b pushed back "
          "to a after %d of them" % (name, len(rows), warm, pushback))
    print("%-68s %8s %8s %4s" % ("part", "p50 ms", "p90 ms", "n"))
    for label, x, y in PARTS:
        if name == "ssh" and label.startswith("file://"):
            continue
        v = [(r[y] - r[x]) * 1000 for r in rows
             if r.get(x) is not None and r.get(y) is not None]
        if not v:
            continue
        print("%-68s %8.1f %8.1f %4d" % (label, pct(v, 50), pct(v, 90), len(v)))
    cpu = os.path.join(d, "cpu.txt")
    if os.path.exists(cpu):
        print(open(cpu).read().rstrip())
    print()


for name in ("ssh", "file"):
    if os.path.exists(os.path.join(out, name, "lda.log")):
        scenario(name)
