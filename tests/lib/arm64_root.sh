#!/usr/bin/env bash
# Real Debian arm64 objects for the aarch64 tests, unpacked into a cache
# directory (default build/arm64/root) without touching the system's dpkg
# state: a private apt state (lists, cache) fetches the arm64 index and
# `apt-get download` + `dpkg-deb -x` unpack the packages, from the mirror the
# machine is configured with.  Prints the root directory; idempotent.
#
#   tests/lib/arm64_root.sh [DIR]
set -euo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
DIR=${1:-${ARM64_ROOT:-$TOP/build/arm64}}
PKGS=(libc6 libc6-dbg libstdc++6 libgcc-s1 lua5.4 liblua5.4-0 python3.11-minimal
      libpython3.11-minimal zlib1g libexpat1 coreutils libssl3 libreadline8 libtinfo6)
if [[ -f $DIR/.complete ]]; then echo "$DIR/root"; exit 0; fi
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/root"
# The system's Debian sources only (other repositories carry no arm64 we use).
grep -hE '^(Types|URIs|Suites|Components|Signed-By|$)' /etc/apt/sources.list.d/debian.sources \
	> "$DIR/apt/debian.sources" 2>/dev/null || true
if [[ ! -s $DIR/apt/debian.sources ]]; then
	grep -hE '^deb .*debian' /etc/apt/sources.list > "$DIR/apt/sources.list"
	SRC=(-o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent)
else
	: > "$DIR/apt/sources.list"
	mkdir -p "$DIR/apt/sources.list.d"
	cp "$DIR/apt/debian.sources" "$DIR/apt/sources.list.d/"
	SRC=(-o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o "Dir::Etc::SourceParts=$DIR/apt/sources.list.d")
fi
APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 "${SRC[@]}"
     -o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::State::Status=/dev/null"
     -o "Dir::Cache=$DIR/apt/cache" -o Debug::NoLocking=1 -qq)
apt-get "${APT[@]}" update >&2
(cd "$DIR/debs" && apt-get "${APT[@]}" download "${PKGS[@]/%/:arm64}" >&2)
for d in "$DIR"/debs/*.deb; do dpkg-deb -x "$d" "$DIR/root"; done
touch "$DIR/.complete"
echo "$DIR/root"
