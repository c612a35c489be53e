#!/usr/bin/env bash
# Quick start: installs the build dependencies, builds spore, starts spored in the foreground on
# the installed-system defaults (state /var/lib/spore, API socket /run/spore/spored.sock, HTTP on
# 127.0.0.1:8080) and deploys every example in examples/. Ctrl-C stops spored.
# Extra arguments are passed to spored (e.g. --listen 0.0.0.0:8080).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${SPORE_BUILD_BASE:-$ROOT/build}/gcc

bash tools/install-deps.sh
if [ -f "$BUILD/build.ninja" ]; then :; else meson setup "$BUILD" -Dbuildtype=debugoptimized; fi
ninja -C "$BUILD"

SOCKET=${SPORE_SOCKET:-/run/spore/spored.sock}
SPORED="$BUILD/src/spored"
SPORECTL="$BUILD/tools/sporectl/sporectl"

"$SPORED" --runtime-dir "$BUILD/src/runtimes" --api-socket "$SOCKET" "$@" &
SPORED_PID=$!
trap 'kill -TERM $SPORED_PID 2>/dev/null || true' INT TERM

for _ in $(seq 100); do
	[ -S "$SOCKET" ] && "$SPORECTL" --socket "$SOCKET" runtimes >/dev/null 2>&1 && break
	kill -0 $SPORED_PID 2>/dev/null || { wait $SPORED_PID; exit $?; }
	sleep 0.1
done

field() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2"; }

for manifest in examples/*/*/spore.json; do
	dir=$(dirname "$manifest")
	runtime=$(field "$manifest" runtime)
	handler=$(field "$manifest" handler)
	name="$(basename "$dir")-$runtime"
	path=$dir
	if [ "$runtime" = native ]; then
		path="$BUILD/$dir/$(basename "$dir").so"
	fi
	# One example that cannot be deployed (deps-nodejs needs the npm registry) leaves the
	# others serving.
	"$SPORECTL" --socket "$SOCKET" deploy "$name" "$path" --runtime "$runtime" --handler "$handler" ||
		echo "run.sh: example '$name' was not deployed (the error is above)" >&2
done

cat <<EOT

spored is running (pid $SPORED_PID). Try:
  curl -s -X POST -d '{"name": "spore"}' http://127.0.0.1:8080/v1/functions/hello-python3/invoke
  curl -s -X POST -d '{"name": "spore"}' http://127.0.0.1:8080/v1/functions/hello-native/invoke
  curl -s -X POST -d '{"ms": 3600000}' http://127.0.0.1:8080/v1/functions/deps-nodejs/invoke
  $SPORECTL ls
Ctrl-C stops it.
EOT
# The first wait returns when a signal arrives; the second waits for spored to finish stopping.
wait $SPORED_PID || true
wait $SPORED_PID 2>/dev/null || true
