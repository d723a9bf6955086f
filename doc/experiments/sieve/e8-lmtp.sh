#!/bin/bash
# E8: candidate (b), Dovecot's LMTP server with Sieve.  A private Dovecot
# master (root, unix sockets in its own base_dir only, no inet
# listener), a static userdb for the experiment user.  What names the
# files get, and what a retry after a lost reply does.
set -u
. "$(dirname "$0")/env.sh"
x_setup || exit 1
cat >>"$XD/dovecot.conf" <<CONF
protocols = lmtp
listen = 127.0.0.1
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=$XUSER gid=$XUSER home=$XHOME
}
service lmtp {
  inet_listener lmtp {
    port = 0
  }
  unix_listener lmtp {
    mode = 0666
  }
}
CONF
sed -i 's/^protocols =$//' "$XD/dovecot.conf"
chmod 755 "$XD" "$XD/run"
dovecot -c "$XD/dovecot.conf" || { cat "$XD/dovecot.log"; exit 1; }
trap 'doveadm -c "$XD/dovecot.conf" stop 2>/dev/null' EXIT
for i in $(seq 50); do [ -S "$XD/run/lmtp" ] && break; sleep 0.1; done

# lmtp SUBJECT READ-REPLY: one LMTP transaction on the socket; with
# READ-REPLY=no the client closes after the final "." without reading
# the reply to DATA (a reply lost to a timeout or a broken connection)
lmtp() {
	python3 - "$XD/run/lmtp" "$1" "$2" <<'PY'
import socket, sys, time
path, subj, read = sys.argv[1], sys.argv[2], sys.argv[3] == "yes"
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode().rstrip()
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return " / ".join(lines)
reply()
for c in ["LHLO client", "MAIL FROM:<sender@example.net>", "RCPT TO:<xuser@example.org>", "DATA"]:
    s.sendall((c + "\r\n").encode()); r = reply()
msg = ("From: a@example.net\r\nTo: xuser@example.org\r\nSubject: %s\r\n"
       "Message-ID: <lmtp-%s@example.net>\r\n\r\nbody\r\n.\r\n") % (subj, subj)
s.sendall(msg.encode())
if read:
    print("reply to DATA:", reply())
else:
    s.shutdown(socket.SHUT_RDWR); s.close(); print("closed without reading the reply")
PY
}
lmtp one yes
lmtp two no
sleep 1
lmtp two yes	# the MTA's retry of "two"
echo "== files"; disk_msgs
echo "== copies of two: $(grep -l 'Subject: two' "$XHOME"/Maildir/new/* | wc -l)"
echo "== lmtp processes: $(pgrep -f 'dovecot/lmtp' | tr '\n' ' ')"
echo "== log"; grep -v 'master: Info' "$XD/dovecot.log" | cut -c1-200
