#!/bin/sh
# SPDX-License-Identifier: MIT
# Spin past timeout_ms when the event has "spin": true, with a spinning child too ("child":
# true): the timeout must kill the whole instance. Otherwise answers {"ok": true} at once.
event=$(cat)
case "$event" in
*'"spin": true'* | *'"spin":true'*) ;;
*)
	echo '{"ok": true, "errno": 0, "error": ""}'
	exit 0
	;;
esac
case "$event" in
*'"child": true'* | *'"child":true'*) sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & ;;
esac
while :; do :; done
