# bench/lib.sh: helpers shared by the benchmark scripts in bench/.
# Sourced by bash, not run. Expects $OUT (the results file), $WHO (the
# user the tools run as), $BENCH_PATH and, when run as root, $BENCH_USER.

die() {
	echo "bench: $*" >&2
	exit 2
}

# Print to stdout and to the results file.
say() {
	printf '%s\n' "$*" | tee -a "$OUT"
}

now() {
	date +%s.%N
}

# Seconds elapsed since $1 (from now()), one decimal.
since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# awk arithmetic: calc 'expr' [-v var=value...]
calc() {
	e=$1
	shift
	awk "$@" "BEGIN { print ($e) }"
}

# One field of a run-deliveries summary line: field KEY LINE
field() {
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# The command prefix that runs a command as the bench user (as ourselves
# when not root) with a clean environment and the given home, in the
# array USER_ENV: user_env HOME
user_env() {
	USER_ENV=()
	[ -z "$BENCH_USER" ] ||
		USER_ENV=(setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --init-groups)
	USER_ENV+=(env -i HOME="$1" USER="$WHO" LOGNAME="$WHO" PATH="$BENCH_PATH"
		LANG=C.UTF-8 TZ=UTC)
}

# as_user HOME CMD...
as_user() {
	user_env "$1"
	shift
	"${USER_ENV[@]}" "$@"
}

# A fresh, empty home for a tool: fresh_home DIR
fresh_home() {
	rm -rf "$1"
	mkdir -m 0700 "$1"
	[ -z "$BENCH_USER" ] || chown "$BENCH_USER:" "$1"
}

# PASS or MISS: verdict CONDITION-EXPR [-v var=value...]
verdict() {
	if [ "$(calc "($1) ? 1 : 0" "${@:2}")" = 1 ]; then
		echo PASS
	else
		echo MISS
	fi
}
