#!/usr/bin/env bash
# vmlinux.h of Debian's arm64 kernel, for compiling the BPF programs with
# __TARGET_ARCH_arm64 on this x86-64 machine: linux-image-arm64's kernel
# (apt-get download through tests/lib/arm64_root.sh's private apt state) is
# a gzip'ed Image whose .BTF blob we find by its header (magic 0xeb9f,
# version 1, 24-byte header, types then strings) and give to bpftool.
#   tests/bpf/arm64_vmlinux.sh OUT.h
set -euo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$1
DIR=${ARM64_ROOT:-$TOP/build/arm64}
"$TOP/tests/lib/arm64_root.sh" >/dev/null
APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
     -o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o "Dir::Etc::SourceParts=$DIR/apt/sources.list.d"
     -o "Dir::State::Lists=$DIR/apt/lists" -o Dir::State::Status=/dev/null
     -o "Dir::Cache=$DIR/apt/cache" -o Debug::NoLocking=1 -qq)
K=$DIR/kernel
mkdir -p "$K"
if [[ ! -f $K/vmlinux.btf ]]; then
	pkg=$(apt-cache "${APT[@]}" depends linux-image-arm64 | awk '/Depends: linux-image-/ {print $2; exit}')
	[[ -n $pkg ]] || { echo "arm64_vmlinux: no linux-image-arm64 in the arm64 index" >&2; exit 1; }
	(cd "$K" && rm -f ./*.deb && apt-get "${APT[@]}" download "$pkg:arm64" >&2)
	dpkg-deb --fsys-tarfile "$K"/*.deb | tar -x -O --wildcards './boot/vmlinuz-*' | zcat >"$K/Image"
	python3 - "$K/Image" "$K/vmlinux.btf" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
i = 0
while True:
    i = d.find(b"\x9f\xeb\x01\x00", i)
    if i < 0:
        sys.exit("arm64_vmlinux: no BTF blob in the kernel image")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", d, i + 4)
    if hdr_len == 24 and type_off == 0 and str_off == type_len and type_len > 1 << 20 \
            and i + 24 + type_len + str_len <= len(d):
        open(sys.argv[2], "wb").write(d[i:i + 24 + type_len + str_len])
        break
    i += 1
PY
	rm -f "$K/Image"
fi
bpftool btf dump file "$K/vmlinux.btf" format c >"$out.tmp" && mv "$out.tmp" "$out"
