# The objects the unwind-compiler tests run on: our fixtures and this
# machine's real libraries and programs.  Sourced by the test scripts.
UNWIND_OBJECTS=(
	"$FIXTURES/unwind/deep-O2" "$FIXTURES/unwind/deep-O3" "$FIXTURES/unwind/deep-fp"
	"$FIXTURES/unwind/deep-pie-now" "$FIXTURES/unwind/odd-cfi" "$FIXTURES/unwind/debug-frame-only"
)
for lib in libc.so.6 libstdc++.so.6 libcrypto.so.3 libm.so.6 libz.so.1 libsqlite3.so.0 libgcrypt.so.20; do
	UNWIND_OBJECTS+=("/usr/lib/x86_64-linux-gnu/$lib")
done
UNWIND_OBJECTS+=(/lib64/ld-linux-x86-64.so.2 "$(readlink -f /usr/bin/python3)" /usr/bin/lua5.4)
