#!/bin/sh
# The benchmark suite of issue 9 from a clean checkout, with one command (as root):
#   tools/bench/run-all.sh [suite.py options, e.g. --quick or --no-write]
# Builds $BENCH_BUILD (default build/bench; meson, debugoptimized) and runs tools/bench/suite.py,
# which prints the tables and rewrites its section of docs/BENCHMARKS.md. Needs the Debian
# packages of tools/install-deps.sh plus wrk bubblewrap crun nginx-light (firejail optional).
set -eu

cd "$(dirname "$0")/../.."
build=${BENCH_BUILD:-build/bench}

if [ "$(id -u)" != 0 ]; then
	echo "run-all.sh: the suite needs root (the sandbox, bwrap, crun and the BPF meter)" >&2
	exit 1
fi
missing=
for t in /usr/bin/wrk /usr/bin/bwrap /usr/bin/crun /usr/sbin/nginx /usr/bin/unshare; do
	[ -x "$t" ] || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "run-all.sh: missing$missing (apt-get install wrk bubblewrap crun nginx-light util-linux)" >&2
	exit 1
fi

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" -j"${JOBS:-2}" >/dev/null
exec /usr/bin/python3 tools/bench/suite.py --build "$build" "$@"
