# The VM harness: boot a Debian kernel under qemu with a busybox initramfs
# holding our binaries, their shared libraries and the fixtures, run a
# script inside, and bring its output back.  Sourced by tests/vm/*.sh and
# tests/bench/bench_bpf.sh; parameterized by architecture (VM_ARCH).
#
#   vm_setup [ARCH]             ARCH: amd64 (default) or arm64; sets the
#                               qemu binary, machine, console, kernel flavour
#   vm_kernel SUITE             fetch (once) and unpack the cloud kernel of a
#                               Debian suite (bullseye, bookworm,
#                               bookworm-backports, trixie); sets VM_KERNEL
#                               (the vmlinuz path) and VM_KVER (its release)
#   vm_initramfs OUT FILE...    a cpio archive: busybox (VM_BUSYBOX: one of the
#                               guest architecture, default /bin/busybox), /init, each FILE
#                               (absolute path, copied to the same path) and
#                               the shared libraries of each ELF among them
#   vm_payload OUT [FILE...]    vm_initramfs of the project: $BIN/*,
#                               $FIXTURES/** and FILEs; rebuilt only when
#                               one of them is newer than OUT
#   vm_boot KERNEL INITRD SCRIPT OUTDIR [CMDLINE...]
#                               boot, run SCRIPT as root inside (cwd /out,
#                               env BIN FIXTURES TOP), copy /out back to
#                               OUTDIR (with its stdout and stderr files;
#                               the serial console in console.txt).  Returns
#                               the script's exit status, or 125 when the VM
#                               gave none (VM_BOOT_WHY says what it printed).
#
# Kernels come from the Debian mirror configured in /etc/apt (a private
# sources list and lists directory: the system's apt state is untouched) and
# are cached in $VM_CACHE (default /var/cache/unwind-vm), never in git.
# qemu emulates the CPU (TCG): CI machines have no KVM (and this one's
# hung the guest), so VM timings are emulated ones.

VM_CACHE=${VM_CACHE:-/var/cache/unwind-vm}
VM_MEM=${VM_MEM:-1024}
VM_TIMEOUT=${VM_TIMEOUT:-180}

vm_setup() {
	VM_ARCH=${1:-${VM_ARCH:-amd64}}
	case $VM_ARCH in
	amd64)
		# Without CMPXCHG16B: bookworm's qemu (7.2) emulates it wrongly
		# often enough that 6.12's slab allocator double-faulted in half
		# the boots; without it the kernel takes its fallback path.
		VM_QEMU=qemu-system-x86_64 VM_MACHINE=q35 VM_CPU=max,-cx16
		VM_CONSOLE=ttyS0 VM_FLAVOUR=cloud-amd64 VM_TRIPLET=x86_64-linux-gnu ;;
	arm64)
		VM_QEMU=qemu-system-aarch64 VM_MACHINE=virt VM_CPU=max
		VM_CONSOLE=ttyAMA0 VM_FLAVOUR=cloud-arm64 VM_TRIPLET=aarch64-linux-gnu ;;
	*) echo "vm_setup: unknown architecture $VM_ARCH" >&2; return 1 ;;
	esac
}

# vm_missing: why the harness cannot run here (empty when it can).
vm_missing() {
	[[ $(id -u) == 0 ]] || { echo "needs root (to fetch kernels into $VM_CACHE)"; return; }
	command -v "$VM_QEMU" >/dev/null || { echo "$VM_QEMU not installed"; return; }
	[[ -x /bin/busybox ]] || { echo "busybox-static not installed"; return; }
	command -v cpio >/dev/null || { echo "cpio not installed"; return; }
}

# The mirror of the system's Debian sources (deb822 or one-line format).
vm_mirror() {
	local m
	m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/debian.sources |
		awk '{print $2}' | grep -v security | grep '/debian/\?$' | head -1)
	[[ -z $m ]] && m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		sed -E 's/\[[^]]*\]//' | awk '{print $2}' | grep '/debian/\?$' | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}

# vm_apt SUITE ARGS...: apt-get/apt-cache against SUITE only.
vm_apt_opts() {
	local dir=$VM_CACHE/apt/$VM_ARCH/$1
	echo "-o Dir::Etc::sourcelist=$dir/sources.list -o Dir::Etc::sourceparts=-" \
	     "-o Dir::State::Lists=$dir/lists -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=" \
	     "-o APT::Architecture=$VM_ARCH -o APT::Architectures::=$VM_ARCH -o Debug::NoLocking=0"
}

vm_kernel() {
	mkdir -p "$VM_CACHE" || return 1
	# One fetch at a time (the suite and its SAN twin, other checkouts).
	local lock rc
	exec {lock}>"$VM_CACHE/lock" && flock "$lock"
	vm_kernel_locked "$1"
	rc=$?
	exec {lock}>&-
	return $rc
}

vm_kernel_locked() {
	local suite=$1 dir=$VM_CACHE/apt/$VM_ARCH/$1 kdir
	mkdir -p "$dir/lists/partial" || return 1
	if [[ ! -s $dir/sources.list ]]; then
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(vm_mirror) $suite main" \
			>"$dir/sources.list"
	fi
	# Once per day at most: the package name changes with each ABI bump.
	if [[ -z $(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null) ]]; then
		apt-get $(vm_apt_opts "$suite") -qq update >&2 || return 1
	fi
	pkg=$(apt-cache $(vm_apt_opts "$suite") depends "linux-image-$VM_FLAVOUR" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	[[ -n $pkg ]] || { echo "vm_kernel: no linux-image-$VM_FLAVOUR in $suite" >&2; return 1; }
	VM_KVER=${pkg#linux-image-}
	kdir=$VM_CACHE/kernels/$VM_KVER
	if [[ ! -f $kdir/vmlinuz ]]; then
		local tmp
		tmp=$(mktemp -d "$VM_CACHE/dl.XXXXXX") || return 1
		( cd "$tmp" && apt-get $(vm_apt_opts "$suite") -qq download "$pkg-unsigned" 2>/dev/null ||
			apt-get $(vm_apt_opts "$suite") -qq download "$pkg" ) >&2 &&
		dpkg-deb -x "$tmp"/*.deb "$tmp/x" &&
		mkdir -p "$kdir" && cp "$tmp"/x/boot/config-* "$kdir/config" &&
		cp "$tmp"/x/boot/vmlinuz-* "$kdir/vmlinuz.tmp" && mv "$kdir/vmlinuz.tmp" "$kdir/vmlinuz"
		local rc=$?
		rm -rf "$tmp"
		[[ $rc == 0 ]] || { echo "vm_kernel: cannot fetch $pkg" >&2; return 1; }
	fi
	VM_KERNEL=$kdir/vmlinuz
}

# The ELF interpreter and the shared libraries a program loads, found the
# way ld.so would (RUNPATH with $ORIGIN, then the multiarch directories of
# VM_TRIPLET), from readelf alone: no need to run the program, so it works
# for a foreign architecture's binaries too (multiarch libraries on the host).
vm_libs() {
	local todo=("$1") seen=" " f n d found origin
	readelf -lW "$1" 2>/dev/null | sed -n 's/.*program interpreter: \(.*\)]/\1/p'
	while [[ ${#todo[@]} -gt 0 ]]; do
		f=${todo[0]}; todo=("${todo[@]:1}")
		origin=$(dirname "$f")
		local dirs
		dirs=$(readelf -dW "$f" 2>/dev/null | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' |
			tr ':' '\n' | sed "s|\$ORIGIN|$origin|; s|\${ORIGIN}|$origin|")
		for n in $(readelf -dW "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			[[ $seen == *" $n "* ]] && continue
			seen+="$n "
			found=
			for d in $dirs /lib/$VM_TRIPLET /usr/lib/$VM_TRIPLET /lib /usr/lib; do
				[[ -e $d/$n ]] && { found=$d/$n; break; }
			done
			[[ -z $found ]] && { echo "vm_libs: $f needs $n, not found" >&2; continue; }
			echo "$found"
			todo+=("$found")
		done
	done
}

vm_initramfs() {
	local out=$1; shift
	local root
	root=$(mktemp -d) || return 1
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,out,etc,run}
	cp "${VM_BUSYBOX:-/bin/busybox}" "$root/bin/busybox"
	cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
# /tmp stays the initramfs's own: a tmpfs over it would hide the payload
# when the tree was built under /tmp (a clone in /tmp/x).
chmod 1777 /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
echo 'root:x:0:0:root:/:/bin/sh' >/etc/passwd
echo '127.0.0.1 localhost' >/etc/hosts
ulimit -l unlimited
cd /out
echo "@@VM-KERNEL $(uname -r)"
echo "@@VM-BEGIN"
sh /vm-script.sh >/out/stdout 2>/out/stderr
echo "@@VM-STATUS $?"
cat /out/stdout
echo "@@VM-FILES"
tar cf - . | gzip | base64
echo "@@VM-END"
sync
poweroff -f
INIT
	chmod +x "$root/init"
	local f l
	# busybox-static needs nothing else; a dynamic busybox gets its libraries.
	for l in $(vm_libs "${VM_BUSYBOX:-/bin/busybox}"); do
		mkdir -p "$root$(dirname "$l")" && cp -L "$l" "$root$l"
	done
	for f in "$@"; do
		[[ -e $f ]] || { echo "vm_initramfs: no $f" >&2; rm -rf "$root"; return 1; }
		mkdir -p "$root$(dirname "$f")"
		cp -aL "$f" "$root$f"
		if [[ -f $f ]] && head -c4 "$f" | grep -q ELF; then
			for l in $(vm_libs "$f"); do
				[[ -e $root$l ]] && continue
				mkdir -p "$root$(dirname "$l")"
				cp -L "$l" "$root$l"
			done
		fi
	done
	# Both lib paths resolve (usrmerge).
	[[ -d $root/usr/lib && ! -e $root/lib ]] && ln -s usr/lib "$root/lib"
	[[ -d $root/usr/lib64 && ! -e $root/lib64 ]] && ln -s usr/lib64 "$root/lib64"
	( cd "$root" && find . | cpio -o -H newc --quiet ) >"$out"
	local rc=$?
	rm -rf "$root"
	return $rc
}

vm_payload() {
	local out=$1; shift
	local files
	files=$(find "$BIN" "$FIXTURES" "$@" -type f 2>/dev/null | sort)
	# Up to date: the same files, none newer, and this script (which writes
	# /init) not newer either.
	if [[ -s $out && -z $(find $files -newer "$out" 2>/dev/null | head -1) &&
	      ! ${BASH_SOURCE[0]} -nt $out && $(cat "$out.list" 2>/dev/null) == "$files" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$out")"
	vm_initramfs "$out.tmp" $files && mv "$out.tmp" "$out" && echo "$files" >"$out.list"
}

# vm_boot KERNEL INITRD SCRIPT OUTDIR [CMDLINE...]
vm_boot() {
	local kernel=$1 initrd=$2 script=$3 outdir=$4; shift 4
	mkdir -p "$outdir" || return 1
	# The script rides in a second cpio appended to the first (the kernel
	# unpacks both).
	local sroot
	sroot=$(mktemp -d) || return 1
	{
		echo "export BIN=$BIN FIXTURES=$FIXTURES TOP=$TOP"
		cat "$script"
	} >"$sroot/vm-script.sh"
	cat "$initrd" - <(cd "$sroot" && echo vm-script.sh | cpio -o -H newc --quiet) \
		</dev/null >"$outdir/initrd.cpio"
	rm -rf "$sroot"

	timeout -k 5 "$VM_TIMEOUT" "$VM_QEMU" -accel tcg -M "$VM_MACHINE" -cpu "$VM_CPU" \
		-smp 2 -m "$VM_MEM" -nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$kernel" -initrd "$outdir/initrd.cpio" \
		-append "console=$VM_CONSOLE panic=-1 quiet loglevel=3 mitigations=off $*" \
		</dev/null >"$outdir/console.log" 2>"$outdir/qemu.err"
	rm -f "$outdir/initrd.cpio"
	tr -d '\r' <"$outdir/console.log" >"$outdir/console.txt"
	local status
	status=$(awk '/^@@VM-STATUS /{print $2}' "$outdir/console.txt")
	sed -n '/^@@VM-FILES$/,/^@@VM-END$/p' "$outdir/console.txt" | sed '1d;$d' |
		base64 -d 2>/dev/null | tar xzf - -C "$outdir" 2>/dev/null
	[[ -n $status ]] || { VM_BOOT_WHY="no status from the VM: $(tail -3 "$outdir/console.txt" | tr '\n' ' ')"; return 125; }
	return "$status"
}
