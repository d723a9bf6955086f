#!/bin/sh
# t/sizes.sh FILE...: the length of every C function in FILEs, one line
# each, "LINES FILE:LINE NAME", LINES counted from the first line of the
# definition (after its comment) to its closing brace.
#
# It reads C, not the house layout: comments, string and character
# literals and preprocessor lines are set aside first, then a brace at
# file level that follows a closing parenthesis opens a function body
# (a struct, an enum or an initializer follows a name or "="), and the
# body ends at the brace that matches it.  The name is the identifier
# before the last parenthesised list ahead of the body (its parameters;
# an __attribute__ before them does not count).
[ $# -gt 0 ] || { echo "usage: t/sizes.sh FILE..." >&2; exit 64; }
exec awk '
FNR == 1 { incomment = 0; depth = 0; pdepth = 0; start = 0; cont = 0 }
{
	line = $0
	# a preprocessor line, and the lines its backslashes join to it
	if (cont || (!incomment && line ~ /^[ \t]*#/)) {
		cont = (line ~ /\\$/)
		next
	}
	out = ""
	i = 1
	n = length(line)
	while (i <= n) {
		c = substr(line, i, 1)
		if (incomment) {
			if (c == "*" && substr(line, i + 1, 1) == "/") {
				incomment = 0
				i += 2
				out = out " "
				continue
			}
			i++
			continue
		}
		if (c == "/" && substr(line, i + 1, 1) == "*") {
			incomment = 1
			i += 2
			continue
		}
		if (c == "/" && substr(line, i + 1, 1) == "/")
			break
		if (c == "\"" || c == "\047") {
			q = c
			i++
			while (i <= n && substr(line, i, 1) != q) {
				if (substr(line, i, 1) == "\\")
					i++
				i++
			}
			i++
			out = out "x"
			continue
		}
		out = out c
		i++
	}
	for (i = 1; i <= length(out); i++) {
		c = substr(out, i, 1)
		if (c ~ /[ \t]/)
			continue
		if (depth == 0) {
			# the first significant character of a declaration
			if (!start)
				start = FNR
			if (c == "(") {
				if (pdepth == 0) {
					pre = substr(out, 1, i - 1)
					if (match(pre, /[A-Za-z_][A-Za-z_0-9]*[ \t]*$/)) {
						cand = substr(pre, RSTART, RLENGTH)
						sub(/[ \t]+$/, "", cand)
						if (cand != "__attribute__")
							name = cand
					} else if (lastid != "" && lastid != "__attribute__") {
						name = lastid
					}
				}
				pdepth++
			} else if (c == ")") {
				pdepth--
			} else if (c == ";") {
				start = 0
				name = ""
			} else if (c == "{") {
				isfn = (last == ")")
				fnstart = start
				fnname = name
				depth = 1
			}
			if (c ~ /[A-Za-z_0-9]/) {
				# the identifier that ends here, for a "(" on the next line
				if (match(substr(out, i), /^[A-Za-z_0-9]+/)) {
					lastid = substr(out, i, RLENGTH)
					i += RLENGTH - 1
				}
				c = "a"
			}
			last = c
			continue
		}
		if (c == "{")
			depth++
		else if (c == "}" && --depth == 0) {
			if (isfn)
				printf "%d %s:%d %s\n", FNR - fnstart + 1, FILENAME,
				       fnstart, fnname
			start = 0
			name = ""
			last = "}"
		}
	}
}' "$@"
