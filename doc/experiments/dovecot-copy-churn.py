#!/usr/bin/env python3
# dovecot-copy-churn.py: several sessions of one Dovecot (no maildag
# anywhere) APPEND, COPY and MOVE messages between INBOX and Archive and
# within INBOX, and expunge, for SECONDS; then prints the error and
# warning lines of Dovecot's log ("Duplicate file entry": a uidlist with
# one file name on two lines, which t3013 saw).  Behind
# doc/imap-progress.md, "Must-show 4".
#
#   dovecot-copy-churn.py [--no-copy-here] [SECONDS] [SESSIONS] [USER]
#
# --no-copy-here: no COPY of an INBOX message into INBOX.
# A private Maildir and configuration in $TMPDIR/mv2.XXXXXX (INDEX=MEMORY,
# as t3013 runs Dovecot), sessions run as USER (default maildagt) when
# run as root.  Exit 1 when the log has such lines.
import os, random, re, shutil, subprocess, sys, tempfile, threading, time

IMAP = "/usr/lib/dovecot/imap"
here = "--no-copy-here" not in sys.argv[1:]
args = [x for x in sys.argv[1:] if x != "--no-copy-here"]
seconds = float(args[0]) if len(args) > 0 else 30
nsessions = int(args[1]) if len(args) > 1 else 5
user = args[2] if len(args) > 2 else "maildagt"
top = tempfile.mkdtemp(prefix="mv2.")
os.chmod(top, 0o755)
home = top + "/home"
for sub in ("cur", "new", "tmp"):
    os.makedirs(home + "/Maildir/" + sub)
conf = top + "/dovecot.conf"
with open(conf, "w") as f:
    f.write("mail_location = maildir:~/Maildir:INDEX=MEMORY\n"
            "base_dir = %s\nstate_dir = %s\n"
            "ssl = no\nlog_path = %s/log\n" % (top, top, top))
if os.getuid() == 0:
    subprocess.run(["chown", "-R", user + ":", top], check=True)


class Imap:
    def __init__(self):
        cmd = [IMAP, "-c", conf]
        if os.getuid() == 0:
            cmd = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups",
                   "env", "HOME=" + home, "USER=" + user] + cmd
        else:
            cmd = ["env", "HOME=" + home] + cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(top + "/stderr", "ab"))
        assert self.p.stdout.readline().startswith(b"* PREAUTH")
        self.tag = 0

    def cmd(self, c, literal=None):
        self.tag += 1
        t = b"t%d" % self.tag
        self.p.stdin.write(t + b" " + c.encode() +
                           (b" {%d+}\r\n" % len(literal) + literal if literal else b"") +
                           b"\r\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("imap closed")
            out.append(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                self.p.stdout.read(int(m.group(1)))
            if line.startswith(t + b" "):
                return out




def uids(s, folder):
    s.cmd('SELECT "%s"' % folder)
    out = s.cmd("UID SEARCH ALL")
    for line in out:
        if line.startswith(b"* SEARCH"):
            return [int(x) for x in line.split()[2:]]
    return []


stop = threading.Event()
done = {}


def session(n):
    rng = random.Random(n)
    s = Imap()
    count = 0
    while not stop.is_set():
        op = rng.choice(["append", "copy", "copy", "move", "move", "expunge"] +
                        (["copy-here"] if here else []))
        src = rng.choice(["INBOX", "Archive"])
        if op == "append":
            s.cmd("APPEND INBOX", b"Message-ID: <%d.%d@churn>\r\n\r\nbody\r\n" %
                  (n, count))
        else:
            have = uids(s, "INBOX" if op == "copy-here" else src)
            if not have:
                continue
            u = rng.choice(have)
            if op == "expunge":
                s.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % u)
                s.cmd("UID EXPUNGE %d" % u)
            elif op == "copy-here":
                s.cmd("UID COPY %d INBOX" % u)
            else:
                to = "Archive" if src == "INBOX" else "INBOX"
                s.cmd("UID %s %d %s" % (op.upper(), u, to))
        count += 1
    done[n] = count
    s.close() if hasattr(s, "close") else None


a = Imap()
a.cmd("CREATE Archive")
for n in range(10):
    a.cmd("APPEND INBOX", b"Message-ID: <seed.%d@churn>\r\n\r\nbody\r\n" % n)
threads = [threading.Thread(target=session, args=(n,)) for n in range(nsessions)]
for t in threads:
    t.start()
time.sleep(seconds)
stop.set()
for t in threads:
    t.join()
logs = ""
for name in ("log", "stderr"):
    p = os.path.join(top, name)
    if os.path.exists(p):
        logs += open(p, errors="replace").read()
bad = [l for l in logs.splitlines() if re.search(r"error|warning|panic|fatal|corrupt", l, re.I)
       and "doveconf" not in l]
print("%d sessions, %.0f s, %s, %d commands; %d error/warning lines" % (
    nsessions, seconds, "COPY within INBOX too" if here else "no COPY within INBOX",
    sum(done.values()), len(bad)))
for l in bad[:10]:
    print("  " + re.sub(r"<[^>]*><[^>]*>", "", l.replace(top, "$TOP")))
shutil.rmtree(top)
sys.exit(1 if bad else 0)
