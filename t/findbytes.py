# findbytes.py ROOT MARKER: does any file under ROOT hold MARKER, as it
# is or inside any zlib stream (each pack at every offset, each loose
# object)?  Packs are compressed, so a byte search of the files alone
# proves nothing, and git cat-file --batch-all-objects reads only what
# an index names.  Prints where; exits 1 when found.
import os, sys, zlib
root, marker = sys.argv[1], sys.argv[2].encode()
found = 0
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        if marker in data:
            print("raw:", p); found = 1
        i = data.find(b"\x78")
        while i >= 0:
            try:
                out = zlib.decompressobj().decompress(data[i:], 1 << 24)
                if marker in out:
                    print("inflated at %d:" % i, p); found = 1
            except zlib.error:
                pass
            i = data.find(b"\x78", i + 1)
sys.exit(found)
