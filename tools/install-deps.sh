#!/usr/bin/env bash
# Install spore's build and test dependencies from Debian's apt (Debian 12).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

PACKAGES=(
	build-essential meson ninja-build pkg-config clang lld llvm
	liburing-dev libcjson-dev libhttp-parser-dev libarchive-dev
	libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev iproute2
	libcurl4-openssl-dev libssl-dev libcmocka-dev
	python3 python3-dev libpython3-dev
	libbpf-dev bpftool libclang-rt-14-dev libnftables-dev nftables
	nodejs bubblewrap
	debhelper lintian libsystemd-dev systemd adduser
	awscli python3-boto3
	valgrind curl wrk util-linux procps jq
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
