#!/usr/bin/env python3
# dovecot-move-twice.py: two sessions of one Dovecot (no maildag
# anywhere) that UID MOVE the same messages at once both copy them:
# N messages in F become more than N in G, each MOVE answered with
# COPYUID.  Behind t3013's count of a second MOVE of a message as a copy
# (doc/imap-progress.md, "Must-show 4").
#
#   dovecot-move-twice.py [N] [USER]
#
# A private Maildir and configuration in $TMPDIR/mv2.XXXXXX (INDEX=MEMORY,
# as t3013 runs Dovecot), sessions run as
# USER (default maildagt) when run as root.  N (default 30) messages
# APPENDed to F; two sessions SELECT F, then each moves UIDs 1..N to G,
# one command a UID, at the same time.  Prints how many moves were
# answered with COPYUID and what F and G hold; exit 1 when G holds more
# than N.
import os, re, shutil, subprocess, sys, tempfile, threading

IMAP = "/usr/lib/dovecot/imap"
n_msgs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
user = sys.argv[2] if len(sys.argv) > 2 else "maildagt"
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


a = Imap()
a.cmd("CREATE F")
a.cmd("CREATE G")
for n in range(n_msgs):
    a.cmd("APPEND F", b"Message-ID: <%d@move-twice>\r\n\r\nbody\r\n" % n)
sessions = {"b": Imap(), "c": Imap()}
for s in sessions.values():
    s.cmd("SELECT F")
answered = {}


def move(name):
    s = sessions[name]
    answered[name] = sum(1 for u in range(1, n_msgs + 1)
                         for line in s.cmd("UID MOVE %d G" % u) if b"COPYUID" in line)


threads = [threading.Thread(target=move, args=(k,)) for k in sessions]
for t in threads:
    t.start()
for t in threads:
    t.join()
status = {}
for f in ("F", "G"):
    for line in a.cmd("STATUS %s (MESSAGES)" % f):
        m = re.match(rb"\* STATUS \S+ \(MESSAGES (\d+)\)", line)
        if m:
            status[f] = int(m.group(1))
print("%d messages moved F -> G by two sessions at once: COPYUID answers %d and %d; "
      "F holds %d, G holds %d" % (n_msgs, answered["b"], answered["c"],
                                  status.get("F", -1), status.get("G", -1)))
shutil.rmtree(top)
sys.exit(1 if status.get("G", 0) > n_msgs else 0)
