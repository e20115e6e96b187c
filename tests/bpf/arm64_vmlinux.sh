#!/usr/bin/env bash
# vmlinux.h of Debian's arm64 kernel, for compiling the BPF programs with
# __TARGET_ARCH_arm64 on this x86-64 machine: linux-image-arm64's kernel
# (apt-get download through tests/lib/arm64_root.sh's private apt state) is
# an Image whose .BTF blob we find by its header (magic 0xeb9f,
# version 1, 24-byte header, types then strings) and give to bpftool.
#   tests/bpf/arm64_vmlinux.sh OUT.h
set -euo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$1
K=${ARM64_ROOT:-$TOP/build/arm64}/kernel
if [[ ! -f $K/vmlinux.btf ]]; then
	rm -rf "$K/debs"
	"$TOP/tests/lib/arm64_root.sh" --download "$K/debs" linux-image-arm64
	pkg=$(dpkg-deb -f "$K"/debs/linux-image-arm64_*.deb Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -1)
	[[ -n $pkg ]] || { echo "arm64_vmlinux: linux-image-arm64 names no kernel" >&2; exit 1; }
	"$TOP/tests/lib/arm64_root.sh" --download "$K/debs" "$pkg"
	rm -rf "$K/x"
	dpkg-deb -x "$K/debs/${pkg}_"*.deb "$K/x"
	# Debian's arm64 vmlinuz is the Image itself; older ones were gzip'ed.
	zcat "$K"/x/boot/vmlinuz-* >"$K/Image" 2>/dev/null || cp "$K"/x/boot/vmlinuz-* "$K/Image"
	rm -rf "$K/x"
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
