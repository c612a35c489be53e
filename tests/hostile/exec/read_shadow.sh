#!/bin/sh
# SPDX-License-Identifier: MIT
# Read the host's secrets from an exec handler: /etc/shadow and friends are not in the
# instance's root. Answers {"results": [{"what", "ok", "errno", "error"}...]} as the other
# runtimes' read_shadow (errno from the shell's message: ENOENT 2, EACCES 13, else EIO 5).
cat >/dev/null
printf '{"results": ['
sep=
for p in /etc/shadow /etc/gshadow /root /etc/sudoers; do
	if [ -d "$p" ]; then
		out=$(ls -A "$p" 2>&1)
	else
		out=$(cat "$p" 2>&1)
	fi
	if [ $? -eq 0 ]; then
		printf '%s{"what": "%s", "ok": true, "errno": 0, "error": ""}' "$sep" "$p"
	else
		case "$out" in
		*"No such file"*) e=2 m="No such file or directory" ;;
		*"Permission denied"*) e=13 m="Permission denied" ;;
		*) e=5 m="Input/output error" ;;
		esac
		printf '%s{"what": "%s", "ok": false, "errno": %d, "error": "%s"}' "$sep" "$p" "$e" "$m"
	fi
	sep=", "
done
printf ']}\n'
