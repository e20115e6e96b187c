#!/usr/bin/env bash
# Real Debian arm64 packages for the aarch64 tests, from the mirror the
# machine is configured with, without touching the system's dpkg state: a
# private apt state (lists, cache) under the cache directory fetches the
# arm64 index, `apt-get download` + `dpkg-deb -x` unpack packages.
#
#   tests/lib/arm64_root.sh               the root of arm64 programs and
#                                         libraries (libc6, libc6-dbg, lua5.4,
#                                         python3.11...); prints its path
#   tests/lib/arm64_root.sh --extract DEST PKG...   unpack PKG:arm64... into DEST
#   tests/lib/arm64_root.sh --download DEST PKG...  only fetch their .debs
# The cache directory is $ARM64_ROOT or build/arm64; everything is done once.
set -euo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
DIR=${ARM64_ROOT:-$TOP/build/arm64}
PKGS=(libc6 libc6-dbg libstdc++6 libgcc-s1 lua5.4 liblua5.4-0 python3.11-minimal
      libpython3.11-minimal zlib1g libexpat1 coreutils libssl3 libreadline8 libtinfo6)

apt_state() {
	[[ -f $DIR/apt/.updated ]] && return 0
	mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/apt/sources.list.d"
	: >"$DIR/apt/sources.list"
	# The system's Debian sources only (other repositories carry no arm64 we use).
	if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
		cp /etc/apt/sources.list.d/debian.sources "$DIR/apt/sources.list.d/"
	else
		grep -hE '^deb .*debian' /etc/apt/sources.list >"$DIR/apt/sources.list"
	fi
	apt-get "${APT[@]}" update >&2
	touch "$DIR/apt/.updated"
}
APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
     -o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o "Dir::Etc::SourceParts=$DIR/apt/sources.list.d"
     -o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::State::Status=/dev/null"
     -o "Dir::Cache=$DIR/apt/cache" -o Debug::NoLocking=1 -qq)

# fetch DEST PKG...: the .debs of PKG:arm64 into DEST
fetch() {
	local dest=$1; shift
	apt_state
	mkdir -p "$dest"
	(cd "$dest" && apt-get "${APT[@]}" download "${@/%/:arm64}" 2>&1 | grep -v unsandboxed >&2 || true)
	local p
	for p in "$@"; do
		ls "$dest/${p}_"*.deb >/dev/null 2>&1 || { echo "arm64_root: cannot download $p:arm64" >&2; return 1; }
	done
}

# extract DEST PKG...: unpack them into DEST (once per package list)
extract() {
	local dest=$1; shift
	local stamp
	stamp="$dest/.complete-$(echo "$*" | md5sum | cut -c1-12)"
	[[ -f $stamp ]] && return 0
	fetch "$dest.debs" "$@"
	local d
	for d in "$dest".debs/*.deb; do dpkg-deb -x "$d" "$dest"; done
	touch "$stamp"
}

case ${1:-} in
--download) shift; fetch "$@" ;;
--extract) shift; extract "$@" ;;
*) extract "$DIR/root" "${PKGS[@]}"; echo "$DIR/root" ;;
esac
