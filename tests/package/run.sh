#!/usr/bin/env bash
# The Debian package, end to end, as an operator would meet it (packaging/README):
#   1. a clean copy of the source tree (what `git clone` gives, plus uncommitted work)
#   2. dpkg-buildpackage -us -uc -b
#   3. lintian: no errors, no warnings that packaging/debian/spore.lintian-overrides does not
#      explain
#   4. dpkg -i: files, conffile, group spore, state dir, man pages, units (systemd-analyze)
#   5. the INSTALLED spored started by systemd-socket-activate with both listeners
#      (tests/integration/test_systemd.py with SPORED=/usr/sbin/spored): READY=1, sporectl as a
#      member of group spore, SIGTERM during a burst, SIGHUP
#   6. dpkg --purge: nothing of the package left (files, units, group, state dir)
# Needs root. Installs and purges the package `spore` on this machine: it refuses to run if
# spore is installed and was not left by an earlier run of this script. A /var/lib/spore or
# /etc/spore that the package did not make is moved aside for the run and put back after.
# Usage: tests/package/run.sh [WORKDIR]   (default: a new /tmp/spore-pkg.XXXXXX, removed after
# success; kept after a failure). SPORE_PKG_PREBUILT=DIR skips steps 1-2 and takes the .deb and
# .changes from DIR (for working on the later steps).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
MARKER=/var/lib/spore-package-test.installed

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: the package test installs a package and needs root"
	exit 0
fi
for tool in dpkg-buildpackage lintian systemd-socket-activate setpriv; do
	if ! command -v "$tool" >/dev/null; then
		echo "package test: '$tool' is missing (tools/install-deps.sh installs it)" >&2
		exit 1
	fi
done

KEEP_WORK=${1:+yes}
WORK=${1:-$(mktemp -d /tmp/spore-pkg.XXXXXX)}
mkdir -p "$WORK"
failed=1
moved=()

say() { echo "--- package: $*"; }
installed() { dpkg-query -W -f='${Status}' spore 2>/dev/null | grep -q 'install ok installed'; }
known() { dpkg-query -W -f='${Status}' spore 2>/dev/null | grep -qv 'not-installed'; }

cleanup() {
	if [ -e "$MARKER" ] && known; then
		say "cleanup: purging the package this script installed"
		dpkg --purge spore >/dev/null 2>&1 || true
	fi
	rm -f "$MARKER"
	for d in "${moved[@]}"; do
		if [ -e "$d" ]; then
			echo "package test: $d exists again; leaving its original in $d.pkg-test-saved" >&2
		else
			mv "$d.pkg-test-saved" "$d"
		fi
	done
	if [ "$failed" = 0 ] && [ -z "$KEEP_WORK" ]; then
		rm -rf "$WORK"
	else
		echo "package test: work dir kept: $WORK"
	fi
}
trap 'cleanup' EXIT

if known; then
	if [ -e "$MARKER" ]; then
		say "an earlier run left the package installed: purging it"
		dpkg --purge spore
	else
		echo "package test: the spore package is installed on this machine and was not put" \
			"there by this script; it installs and purges spore, so it stops here" >&2
		exit 1
	fi
fi
for d in /var/lib/spore /etc/spore; do
	if [ -e "$d" ]; then
		say "moving the existing $d aside for the test"
		mv "$d" "$d.pkg-test-saved"
		moved+=("$d")
	fi
done

if [ -n "${SPORE_PKG_PREBUILT:-}" ]; then
	say "prebuilt: $SPORE_PKG_PREBUILT"
	cp "$SPORE_PKG_PREBUILT"/spore_*.deb "$SPORE_PKG_PREBUILT"/spore_*.changes \
		"$SPORE_PKG_PREBUILT"/spore_*.buildinfo "$SPORE_PKG_PREBUILT"/spore-dbgsym_*.deb "$WORK/"
else
# 1. What a clean clone holds: the files git tracks, and the untracked ones it does not ignore.
say "source tree in $WORK/src"
rm -rf "$WORK/src"
mkdir -p "$WORK/src"
# (A tracked file deleted in the work tree is not there to copy: --ignore-failed-read.)
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
	tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
test -L "$WORK/src/debian"

# 2. Build. nocheck: the package's own test suite is not built (the CI steps run it).
say "dpkg-buildpackage -us -uc -b"
t0=$SECONDS
if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-$(nproc)}" \
	dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
	grep -E 'error|FAILED' "$WORK/build.log" | head -20
	tail -5 "$WORK/build.log"
	echo "package test: dpkg-buildpackage failed (log: $WORK/build.log)" >&2
	exit 1
fi
say "built in $((SECONDS - t0)) s:"
fi
ls -l "$WORK"/*.deb
DEB=$(ls "$WORK"/spore_*.deb)
CHANGES=$(ls "$WORK"/spore_*.changes)
dpkg-deb -I "$DEB" | sed -n '/Package:/,$p'

# 3. lintian (overrides in packaging/debian/spore.lintian-overrides, explained in
# packaging/README).
say "lintian"
set +e
lintian --info --display-info --fail-on error,warning "$CHANGES" | tee "$WORK/lintian.log"
lrc=${PIPESTATUS[0]}
set -e
if [ "$lrc" -ne 0 ]; then
	echo "package test: lintian found errors or warnings (exit $lrc)" >&2
	exit 1
fi
say "lintian: no errors, no warnings ($(grep -c "^[IP]:" "$WORK/lintian.log" || true) info or pedantic tags, explained in packaging/README)"

# 4. Install.
say "dpkg -i"
touch "$MARKER"
dpkg -i "$DEB"
installed
check() {
	if ! "$@"; then
		echo "package test: check failed: $*" >&2
		exit 1
	fi
}
for f in /usr/sbin/spored /usr/bin/sporectl /usr/lib/spore/spore-zygote-python3 \
	/usr/lib/spore/spore-zygote-native /usr/lib/spore/spore-zygote-nodejs \
	/usr/lib/spore/spore-zygote-exec /usr/include/spore/spore.h /etc/spore/spored.conf \
	/lib/systemd/system/spored.service /lib/systemd/system/spored.socket \
	/lib/systemd/system/spored-api.socket /usr/share/bash-completion/completions/sporectl \
	/usr/share/man/man8/spored.8.gz /usr/share/man/man1/sporectl.1.gz; do
	check test -e "$f"
done
check grep -q '^ /etc/spore/spored.conf ' <(dpkg-query -W -f='${Conffiles}\n' spore)
check getent group spore
check test "$(stat -c '%a %U %G' /var/lib/spore)" = "750 root root"
check test "$(grep -c '^#[a-z_]* =' /etc/spore/spored.conf)" -gt 20
check test "$(grep -c '^[a-z_]* =' /etc/spore/spored.conf)" -eq 0
/usr/sbin/spored --version
/usr/bin/sporectl --version
if command -v systemd-analyze >/dev/null; then
	say "systemd-analyze verify"
	(cd / && systemd-analyze verify /lib/systemd/system/spored.service \
		/lib/systemd/system/spored.socket /lib/systemd/system/spored-api.socket) 2>&1 |
		tee "$WORK/verify.log"
	if grep -v -e 'Failed to connect' -e 'System has not been booted' "$WORK/verify.log" | grep -q .; then
		echo "package test: systemd-analyze verify complained" >&2
		exit 1
	fi
fi
if command -v man >/dev/null; then
	for page in /usr/share/man/man8/spored.8.gz /usr/share/man/man1/sporectl.1.gz; do
		warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
		if [ -n "$warnings" ]; then
			echo "package test: $page: $warnings" >&2
			exit 1
		fi
	done
fi

# 5. The installed spored under socket activation.
say "the installed spored, started by systemd-socket-activate"
SPORED=/usr/sbin/spored SPORECTL=/usr/bin/sporectl SPORE_RUNTIME_DIR=/usr/lib/spore \
	SPORE_UNIT=/lib/systemd/system/spored.service \
	EXAMPLES_DIR="$ROOT/examples" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
	"$PY" "$ROOT/tests/integration/test_systemd.py"

# 6. Purge: nothing left.
say "dpkg --purge"
dpkg --purge spore
rm -f "$MARKER"
left=()
for f in /usr/sbin/spored /usr/bin/sporectl /usr/lib/spore /usr/include/spore /etc/spore \
	/var/lib/spore /lib/systemd/system/spored.service /lib/systemd/system/spored.socket \
	/lib/systemd/system/spored-api.socket /usr/share/bash-completion/completions/sporectl \
	/usr/share/man/man8/spored.8.gz /usr/share/man/man1/sporectl.1.gz /usr/share/doc/spore \
	/run/spore/spored.sock /sys/fs/bpf/spore; do
	if [ -e "$f" ]; then left+=("$f"); fi
done
while IFS= read -r f; do left+=("$f"); done < <(find /etc/systemd/system -name 'spored*' 2>/dev/null)
if getent group spore >/dev/null; then left+=("group spore"); fi
if known; then left+=("dpkg still knows spore"); fi
if [ ${#left[@]} -gt 0 ]; then
	echo "package test: left after purge: ${left[*]}" >&2
	exit 1
fi
say "purged: nothing left"
failed=0
