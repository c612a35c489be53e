#!/usr/bin/env bash
# Installs the build dependencies, then builds and runs every test:
#   1. gcc build: unit + integration suites
#   2. clang build: compiles everything with -Werror, runs the unit suite
#   3. ASan+UBSan build (gcc): unit + integration suites (but the "long" integration files)
#   4. the Debian package: build, lintian, install, the installed spored, purge
#   5. the libFuzzer targets of tests/fuzz (clang): regressions, then 30 s each
#   6. valgrind over the unit suite (gcc build)
# Integration tests need root (namespaces, real processes, state dirs); as non-root they skip
# with a printed reason. Build dirs go under $SPORE_BUILD_BASE (default: ./build).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${SPORE_BUILD_BASE:-$ROOT/build}
JOBS=${JOBS:-$(nproc)}

bash tools/install-deps.sh

failures=()
step() {
	local name=$1
	shift
	echo
	echo "=== $name"
	local t0=$SECONDS
	if "$@"; then
		echo "=== $name: ok ($((SECONDS - t0)) s)"
	else
		echo "=== $name: FAILED ($((SECONDS - t0)) s)"
		failures+=("$name")
	fi
}

setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@"
	fi
}

build() {
	local dir=$1
	shift
	setup "$dir" "$@" && ninja -C "$dir" -j "$JOBS"
}

mtest() {
	local dir=$1
	shift
	meson test -C "$dir" --print-errorlogs --num-processes "$JOBS" "$@"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

step "gcc build" build "$BASE/gcc" -Dbuildtype=debugoptimized
step "gcc unit tests" mtest "$BASE/gcc" --suite unit
step "gcc integration tests" mtest "$BASE/gcc" --suite integration --num-processes 1
build_clang() {
	CC=clang build "$BASE/clang" -Dbuildtype=debugoptimized
}

step "clang build" build_clang
step "clang unit tests" mtest "$BASE/clang" --suite unit
step "asan+ubsan build" build "$BASE/asan" -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
step "asan+ubsan unit tests" mtest "$BASE/asan" --suite unit
# Under ASan, every integration file but the 'long' ones (tests/integration/meson.build: they
# mostly wait, and run in the gcc pass above), so the whole run stays well under 20 minutes.
step "asan+ubsan integration tests" mtest "$BASE/asan" --suite integration --no-suite long \
	--num-processes 1
# The Debian package: built from a clean copy of the tree, lintian, dpkg -i, the installed
# spored under systemd-socket-activate, dpkg --purge (tests/package/run.sh, packaging/README).
step "debian package (build, lintian, install, socket activation, purge)" \
	env JOBS="$JOBS" bash tests/package/run.sh
# libFuzzer (clang): every target's seed corpus and regressions once, then 30 s of fuzzing each,
# two at a time (tests/fuzz/README.md).
step "fuzz (30 s per target)" env FUZZ_JOBS=2 bash tests/fuzz/run.sh "$BASE/fuzz" 30
step "valgrind unit tests" mtest "$BASE/gcc" --suite unit --num-processes 1 \
	--wrapper "valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 --track-fds=no"

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "FAILED: ${failures[*]}"
	exit 1
fi
echo "all test steps passed"
