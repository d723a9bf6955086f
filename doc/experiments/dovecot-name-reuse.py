#!/usr/bin/env python3
# dovecot-name-reuse.py: Dovecot alone (no maildag anywhere) names a
# new message after one it expunged: a UID MOVE within a folder gives the
# message a new file whose GUID (the "G" of its uidlist line) is the old
# file name, and a UID COPY of it takes that name again, for a new UID.
# The expunged message's uidlist line stays while another process holds
# the uidlist lock during the MOVE (maildag-syncd takes that lock, as
# Dovecot's own sessions do).  Together: two lines for one file name,
# which t3013 saw once as "Duplicate file entry"; not reproduced here
# whole.  Behind t3013's MOVE never going into the folder it comes from
# (doc/imap-progress.md, "Must-show 4").
#
#   dovecot-name-reuse.py [USER]
#
# A private Maildir and configuration in $TMPDIR/mv2.XXXXXX (INDEX=MEMORY,
# as t3013 runs Dovecot), sessions run as USER (default maildagt) when
# run as root.  Prints F's dovecot-uidlist after each step.
import os, re, shutil, subprocess, sys, tempfile, threading, time

IMAP = "/usr/lib/dovecot/imap"
user = sys.argv[1] if len(sys.argv) > 1 else "maildagt"
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




def uidlist(step):
    print("-- %s:" % step)
    with open(home + "/Maildir/.F/dovecot-uidlist") as f:
        sys.stdout.write("".join("   " + l for l in f))


a = Imap()
a.cmd("CREATE F")
for n in range(1, 4):
    a.cmd("APPEND F", b"Message-ID: <%d@name-reuse>\r\n\r\nbody\r\n" % n)
a.cmd("SELECT F")
uidlist("three messages APPENDed to F")
# another process holds the uidlist lock while the MOVE runs
lock = home + "/Maildir/.F/dovecot-uidlist.lock"
open(lock, "w").close()
if os.getuid() == 0:
    subprocess.run(["chown", user + ":", lock], check=True)
moved = {}
t = threading.Thread(target=lambda: moved.setdefault("r", a.cmd("UID MOVE 1 F")))
t.start()
time.sleep(1)
os.unlink(lock)
t.join()
print(moved["r"][-1].decode().strip())
uidlist("UID MOVE 1 F, the lock held by another for a second")
print(a.cmd("UID COPY 4 F")[-1].decode().strip())
uidlist("UID COPY 4 F")
shutil.rmtree(top)
