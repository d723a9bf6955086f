#!/usr/bin/env python3
# dovecot-rename-race.py: Dovecot alone (no maildag anywhere) logs
# errors when one session RENAMEs a Maildir++ folder while another
# session of the same Dovecot writes that folder's dovecot-uidlist.
# Behind t3013's care around RENAME (doc/imap-progress.md, "Must-show 4").
#
#   dovecot-rename-race.py [--careful] [--list] [SECONDS] [USER]
#
# A private Maildir and Dovecot configuration in $TMPDIR/dvrace.XXXXXX
# (mail_location maildir:~/Maildir:INDEX=MEMORY, as t3013 runs it; one
# pre-authenticated /usr/lib/dovecot/imap per session, started as USER
# when run as root, default maildagt).  For SECONDS (default 20), at once:
#   appender  APPEND F (not selected: Dovecot numbers the message and
#             writes F's dovecot-uidlist)
#   reader    EXAMINE F, UID FETCH 1:* (FLAGS), CLOSE (what t3013's
#             recorder does; an EXAMINE syncs F and may write its uidlist)
#   storer    SELECT F, UID STORE of a keyword on every message, UNSELECT
#   renamer   RENAME F Fx, RENAME Fx F
# With --careful the other sessions hold a shared flock while they work
# on F (each operation ends with F closed) and the renamer an exclusive
# one around its RENAMEs: what t3013 does.  Prints the error and warning
# lines of Dovecot's log and their count; exit 1 if there are any.
import fcntl, os, re, shutil, subprocess, sys, tempfile, threading, time

IMAP = "/usr/lib/dovecot/imap"
args = [a for a in sys.argv[1:] if a not in ("--careful", "--list")]
careful = "--careful" in sys.argv[1:]
# --list: instead, a creator (CREATE Fn, RENAME Fn Fnx at once, DELETE
# Fnx) and two sessions that only LIST "" "*" (t3013 saw a session with
# no business in a folder write the uidlist of one CREATEd and RENAMEd
# 32 ms later; this shows whether LIST is what does it: it is not, 0
# lines in 20 s, results/dovecot-rename-race-list.txt)
listing = "--list" in sys.argv[1:]
seconds = float(args[0]) if args else 20.0
user = args[1] if len(args) > 1 else "maildagt"
top = tempfile.mkdtemp(prefix="dvrace.")
os.chmod(top, 0o755)
home = top + "/home"
os.makedirs(home + "/Maildir/cur")
os.makedirs(home + "/Maildir/new")
os.makedirs(home + "/Maildir/tmp")
os.makedirs(top + "/run")
conf = top + "/dovecot.conf"
log = top + "/dovecot.log"
with open(conf, "w") as f:
    f.write("mail_location = maildir:~/Maildir:INDEX=MEMORY\nlog_path = %s\n"
            "info_log_path = %s\nbase_dir = %s/run\nstate_dir = %s/run\nssl = no\n"
            % (log, log, top, top))
open(log, "w").close()
if os.getuid() == 0:
    subprocess.run(["chown", "-R", user + ":", top], check=True)
lockfile = top + "/F.lock"
open(lockfile, "w").close()


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
        self.tag = 0
        assert self.p.stdout.readline().startswith(b"* PREAUTH")

    def cmd(self, c, literal=None):
        self.tag += 1
        t = b"t%d" % self.tag
        if literal is None:
            self.p.stdin.write(t + b" " + c.encode() + b"\r\n")
        else:
            self.p.stdin.write(t + b" " + c.encode() + b" {%d+}\r\n" % len(literal) +
                               literal + b"\r\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("imap closed")
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                self.p.stdout.read(int(m.group(1)))
            if line.startswith(t + b" "):
                return line.startswith(t + b" OK")

    def close(self):
        self.p.stdin.write(b"z LOGOUT\r\n")
        self.p.stdin.close()
        self.p.wait()


def locked(mode):
    """A flock on F while a session works on it (--careful only); the
    renamer waits at a gate the others pass one at a time, so that their
    shared locks do not starve it"""
    class L:
        def __enter__(self):
            if careful:
                self.gate = open(lockfile + ".gate", "a")
                fcntl.flock(self.gate, fcntl.LOCK_EX)
                self.f = open(lockfile)
                fcntl.flock(self.f, mode)
                if mode == fcntl.LOCK_SH:
                    self.gate.close()

        def __exit__(self, *a):
            if careful:
                self.f.close()
                self.gate.close()
    return L()


stop = threading.Event()
counts = {}


def loop(name, body):
    s = Imap()
    n = lost = 0
    while not stop.is_set():
        try:
            body(s, n)
        except RuntimeError:
            # Dovecot ended the session ("IMAP session state is
            # inconsistent, please relogin"): log in again
            lost += 1
            s.p.wait()
            s = Imap()
        n += 1
    counts[name] = "%d (%d sessions ended by Dovecot)" % (n, lost)
    s.close()


def appender(s, n):
    msg = b"Message-ID: <%d@race>\r\nSubject: %d\r\n\r\nbody\r\n" % (n, n)
    with locked(fcntl.LOCK_SH):
        s.cmd('APPEND F (\\Seen)', msg)


def reader(s, n):
    with locked(fcntl.LOCK_SH):
        if s.cmd("EXAMINE F"):
            s.cmd("UID FETCH 1:* (FLAGS)")
            s.cmd("CLOSE")


def storer(s, n):
    with locked(fcntl.LOCK_SH):
        if s.cmd("SELECT F"):
            s.cmd("UID STORE 1:* %sFLAGS.SILENT (kw%d)" % ("+-"[n % 2], n % 5))
            s.cmd("UNSELECT")


def renamer(s, n):
    with locked(fcntl.LOCK_EX):
        s.cmd("RENAME F Fx")
        s.cmd("RENAME Fx F")
    time.sleep(0.01)


def creator(s, n):
    s.cmd('CREATE "F%d"' % n)
    with locked(fcntl.LOCK_EX):
        s.cmd('RENAME "F%d" "F%dx"' % (n, n))
    s.cmd('DELETE "F%dx"' % n)


def lister(s, n):
    with locked(fcntl.LOCK_SH):
        s.cmd('LIST "" "*"')


def lister2(s, n):
    lister(s, n)


s = Imap()
s.cmd("CREATE F")
s.close()
threads = [threading.Thread(target=loop, args=(f.__name__, f))
           for f in ((creator, lister, lister2) if listing else
                     (appender, reader, storer, renamer))]
for t in threads:
    t.start()
time.sleep(seconds)
stop.set()
for t in threads:
    t.join()
# pre-authenticated, imap logs to its stderr
bad = [l for l in open(log, errors="replace").readlines() +
       open(top + "/stderr", errors="replace").readlines()
       if re.search(r"error|warning|panic|fatal|corrupt|inconsistent", l, re.I)]
print("%s, %.0f s: %s; %d error/warning lines in Dovecot's log" % (
    "careful" if careful else "racing", seconds,
    ", ".join("%s %s" % kv for kv in sorted(counts.items())), len(bad)))
for l in bad[:20]:
    sys.stdout.write("  " + re.sub(re.escape(top), "$TOP", l))
shutil.rmtree(top) if not os.environ.get("KEEP") else print(top)
sys.exit(1 if bad else 0)
