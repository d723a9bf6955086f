#!/usr/bin/python3
# stamp.py: copy stdin to stdout, each line prefixed with the wall-clock
# time (seconds, microseconds) at which it was read.  Reads with os.read,
# so a line is stamped as soon as the writer's write(2) arrives.
import os, sys, time

buf = b""
out = sys.stdout.buffer
while True:
    try:
        chunk = os.read(0, 65536)
    except InterruptedError:
        continue
    if not chunk:
        break
    t = time.time()
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for l in lines:
        out.write(b"%.6f %s\n" % (t, l))
    out.flush()
if buf:
    out.write(b"%.6f %s\n" % (time.time(), buf))
