#!/usr/bin/env bash
# Builds spore's libFuzzer targets with clang in BUILD_DIR and runs each of them: first every
# file of its seed corpus (tests/fuzz/corpus/NAME) and of its regressions
# (tests/fuzz/regressions/NAME) once, then fuzzing for SECONDS (default 60; 0: only the
# regression pass). Exits non-zero if any target crashed, leaked, timed out (10 s per input) or
# ran out of memory, or failed to build.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS [TARGET...]]      (targets: http manifest event package config cron)
#
# Environment: FUZZ_JOBS=N runs N targets at a time (default 1; each fuzzes with one process).
# What the fuzzer finds goes to BUILD_DIR/fuzz/NAME/: corpus/ (inputs that added coverage, kept
# between runs), crash-*, leak-*, timeout-*, oom-* (the inputs to copy into regressions/NAME/ once
# understood), and log (the whole output).
set -euo pipefail

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 1 ] || usage
BUILD=$1
SECONDS_EACH=${2:-60}
shift $(($# >= 2 ? 2 : 1))
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || usage

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$FUZZ_DIR/../.." && pwd)
ALL_TARGETS=(http manifest event package config cron)
if [ $# -gt 0 ]; then
	TARGETS=("$@")
else
	TARGETS=("${ALL_TARGETS[@]}")
fi
JOBS=${FUZZ_JOBS:-1}

# Per target: the largest input and the memory limit. http: a 16 KiB head plus a small body;
# package: the seed archives are up to 7 KiB (a gzip stream expands a lot more: the extraction
# limits in fuzz-package.c bound that); the rest are small text formats.
declare -A MAX_LEN=([http]=20480 [manifest]=8192 [event]=8192 [package]=16384 [config]=8192 [cron]=300)
declare -A RSS_MB=([http]=1024 [manifest]=1024 [event]=1024 [package]=2048 [config]=1024 [cron]=1024)
declare -A DICT=([http]=http.dict [manifest]=json.dict [event]=json.dict [package]=package.dict
	[config]=config.dict [cron]=cron.dict)

for t in "${TARGETS[@]}"; do
	[ -n "${MAX_LEN[$t]:-}" ] || { echo "run.sh: unknown target '$t'" >&2; exit 2; }
done

# ---- build ----
if [ -f "$BUILD/build.ninja" ]; then
	if ! grep -q '^C compiler for the host machine: clang' "$BUILD/meson-logs/meson-log.txt"; then
		echo "run.sh: $BUILD is not a clang build dir; use a new one" >&2
		exit 2
	fi
	meson configure "$BUILD" -Dfuzz=true >/dev/null
else
	CC=clang meson setup "$BUILD" "$SRC" -Dfuzz=true -Dbuildtype=debugoptimized
fi
ninja -C "$BUILD" "${TARGETS[@]/#/tests/fuzz/fuzz-}"

# ---- run ----
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
WORK=$BUILD/fuzz
mkdir -p "$WORK"
# fuzz-package unpacks every input: a tmpfs keeps that fast. Removed on exit, crash or not.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMP=$(mktemp -d /dev/shm/spore-fuzz.XXXXXX)
else
	TMP=$(mktemp -d "$WORK/tmp.XXXXXX")
fi
trap 'rm -rf "$TMP"' EXIT
export SPORE_FUZZ_TMPDIR=$TMP

# Runs one target; its output goes to WORK/NAME/log, its verdict to WORK/NAME/result.
run_target() {
	local t=$1 exe=$BUILD/tests/fuzz/fuzz-$1 dir=$WORK/$1
	mkdir -p "$dir/corpus"
	rm -f "$dir/result"
	local opts=(-timeout=10 -rss_limit_mb="${RSS_MB[$t]}" -max_len="${MAX_LEN[$t]}"
		-detect_leaks=1 -artifact_prefix="$dir/")
	local seeds=()
	mapfile -t seeds < <(find "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/regressions/$t" -type f 2>/dev/null | sort)
	local t0=$SECONDS rc=0
	{
		echo "=== fuzz-$t: regression pass over ${#seeds[@]} files"
		"$exe" "${opts[@]}" "${seeds[@]}" || rc=$?
		if [ "$rc" -eq 0 ] && [ "$SECONDS_EACH" -gt 0 ]; then
			echo "=== fuzz-$t: fuzzing for $SECONDS_EACH s"
			# New inputs go to the first directory only: the seeds in the tree stay as
			# they are.
			"$exe" "${opts[@]}" -dict="$FUZZ_DIR/${DICT[$t]}" \
				-max_total_time="$SECONDS_EACH" -print_final_stats=1 \
				"$dir/corpus" "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/regressions/$t" || rc=$?
		fi
	} >"$dir/log" 2>&1
	echo "$rc $((SECONDS - t0))" >"$dir/result"
}

summary() {
	local t=$1 dir=$WORK/$1 rc secs
	read -r rc secs <"$dir/result"
	local execs speed cov
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$dir/log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		printf 'fuzz-%-8s ok     %4ss  %s execs, %s/s, %s, corpus %s\n' "$t" "$secs" \
			"${execs:-0}" "${speed:-0}" "${cov:-cov: -}" \
			"$(find "$dir/corpus" -type f | wc -l)"
	else
		printf 'fuzz-%-8s FAILED (exit %s after %ss); the end of %s:\n' "$t" "$rc" "$secs" \
			"$dir/log"
		tail -n 60 "$dir/log" | sed 's/^/    /'
		ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|    artifact: $dir/|" || true
	fi
	return "$rc"
}

pids=()
for t in "${TARGETS[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	echo "fuzz-$t: running (log: $WORK/$t/log)"
	run_target "$t" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || true
done

echo
failed=()
for t in "${TARGETS[@]}"; do
	summary "$t" || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}"
	exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets passed"
