#!/bin/sh
# E4: the prototype killed at each point of a delivery, then retried with
# the same bytes as the MTA would: how many copies, how many vacation
# replies, what the retry said.
. "$(dirname "$0")/env.sh"
copies() { disk_msgs | wc -l; }
for point in entry fork exited committed; do
	for s in plain away twice; do
		x_setup && x_init || exit 1
		msg 7 "$s" >"$XD/in"; chmod 644 "$XD/in"
		[ "$point" = fork ] && echo 2 >"$XD/sendmail-delay"
		proto -k "$point" <"$XD/in" 2>"$XD/err1"; st1=$?
		# the MTA's retry at once (the child may still run: fork)
		proto <"$XD/in" 2>"$XD/err2"; st2=$?
		if [ "$st2" = 75 ]; then
			# the MTA's next retry, once the orphan child is done
			sleep 3
			proto <"$XD/in" 2>>"$XD/err2"; st2="75 then $?"
		fi
		# a third delivery of the same bytes: a late duplicate of the MTA
		proto <"$XD/in" 2>"$XD/err3"; st3=$?
		[ "$(disk_msgs)" = "$(tree_msgs)" ] && same="tree=disk" || same="TREE!=DISK"
		printf '%-9s %-5s first=%s retry=%s again=%s copies=%s replies=%s %s | %s\n' \
			"$point" "$s" "$st1" "$st2" "$st3" "$(copies)" \
			"$(ls "$XD/sent" | wc -l)" "$same" \
			"$(grep -h -v 'status=' "$XD/err2" | sed 's/proto: //' | tr '\n' ';')"
	done
done
