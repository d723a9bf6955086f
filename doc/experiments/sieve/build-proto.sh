#!/bin/sh
# build-proto.sh: build proto.c against the tree's build/ (configure and
# make first); the binary goes to $XD/../proto-bin/proto
. "$(dirname "$0")/env.sh"
top=$(cd "$(dirname "$0")/../../.." && pwd)
out=${PROTO:-/var/tmp/proto-sieve/proto}
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -I"$BUILD" -I"$top/common" -o "$out" "$(dirname "$0")/proto.c" \
	"$BUILD/common/libcommon.a" -lgit2 -ljansson -lz -lcurl \
	-linotifytools -lsystemd 2>&1 &&
chmod 755 "$(dirname "$out")" "$out" && echo "$out"
