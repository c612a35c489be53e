#!/bin/sh
# The benchmark suite of issue 9 from a clean checkout, with one command (as root):
#   tools/bench/run-all.sh [suite.py options, e.g. --quick or --no-write]
# Installs what it needs (tools/install-deps.sh, then wrk, bubblewrap, crun, nginx-light and
# firejail from apt), builds $BENCH_BUILD (default build/bench; meson) and runs tools/bench/suite.py,
# which prints the tables and rewrites its section of docs/BENCHMARKS.md.
set -eu

cd "$(dirname "$0")/../.."
build=${BENCH_BUILD:-build/bench}

if [ "$(id -u)" != 0 ]; then
	echo "run-all.sh: the suite needs root (the sandbox, bwrap, crun and the BPF meter)" >&2
	exit 1
fi
# The build dependencies, then the peers and clients the suite measures (Debian packages;
# nginx-light's own service, on a systemd host, is left as the package installs it: the suite
# runs an nginx of its own on a free port).
bash tools/install-deps.sh
missing=
for p in wrk bubblewrap crun nginx-light firejail util-linux; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "run-all.sh: installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" -j"${JOBS:-2}" >/dev/null
exec /usr/bin/python3 tools/bench/suite.py --build "$build" "$@"
