#!/bin/bash
# E7: what asking Dovecot for the storage_id of each saved mail in its
# log (deliver_log_format with %{storage_id}: an extra mailbox view per
# save) costs dovecot-lda, against its default format, alternating in
# one run.  Needs e5's work directory (its 1000-folder dovecot-lda home).
set -u
. "$(dirname "$0")/env.sh"
W=/var/tmp/proto-sieve/e5
F=${1:-1000}
h=$W/$F-dovecot-lda
[ -d "$h" ] || { echo "run e5-cost.sh first" >&2; exit 2; }
sed '/deliver_log_format/d' "$h/dovecot/dovecot.conf" >"$h/dovecot/a.conf"
{ cat "$h/dovecot/a.conf"; echo 'deliver_log_format = msgid=%m storage_id=%{storage_id}: %$'; } >"$h/dovecot/b.conf"
chmod 644 "$h"/dovecot/?.conf
rm -f "$W"/raw.e7.*
for r in 1 2 3 4; do
	for c in a b; do
		env -i HOME="$h" USER="$XUSER" PATH=/usr/bin:/bin TZ=UTC \
			"$W/bin/run-deliveries" -u "$XUSER" -m "$W/list" -n 15 -w 1 \
			-f sender@example.net -o "$W/raw.e7.$c.$r" \
			-- "$LDA" -c "$h/dovecot/$c.conf" -a xuser@example.org >/dev/null
	done
done
for c in a b; do
	printf '%s p50 %s ms\n' "$([ $c = a ] && echo default:   || echo storage_id:)" \
		"$(cat "$W"/raw.e7.$c.* | awk '$3 == 0 {print $2}' | sort -n | awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]/1000}')"
done
grep -c 'storage_id=1' "$h/dovecot/dovecot.log"
