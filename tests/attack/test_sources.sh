#!/usr/bin/env bash
# Sources, by trust (docs/security.md "Sources").  A file name in DWARF is
# the word of whoever built the object: it makes the server read a local
# file only when the DWARF was --scan'ned and the file is under a
# --source-root (and is not one of the server's own files).  Uploaded
# debuginfo gets the sources uploaded with it (debuginfod-upload --sources),
# upstream debuginfo its upstream's.  The attacks: `#line "/etc/shadow"` and
# a DW_AT_comp_dir of /etc, through an upload and through a hostile
# upstream; links and names outside the roots in scanned DWARF.  Then the
# real client: gdb lists the source lines of a CI-built binary whose build
# tree is gone.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
command -v gcc >/dev/null || { skip sources "gcc is not installed"; finish; }
S=$SCRATCH
mkdir -p "$S/w" "$S/secret" "$S/root" "$S/own" "$S/up" "$S/tree" "$S/bin" "$S/orig"
echo "TOP-SECRET-$RANDOM$RANDOM" >"$S/secret/shadow"
chmod 600 "$S/secret/shadow"
echo "upload-token-$RANDOM" >"$S/utokens"
echo "scan-token-$RANDOM" >"$S/own/tokens"
UTOKEN=$(cat "$S/utokens")
# not_leaked NAME URL FILE: 404, and the body is not FILE's content.
not_leaked() {
	local code
	code=$(curl -s --path-as-is -o "$S/got" -w '%{http_code}' "$2")
	if cmp -s "$S/got" "$3"; then
		fail "$1" "served the local file $3 (HTTP $code)"
	elif [[ $code != 404 ]]; then
		fail "$1" "HTTP $code, expected 404"
	else
		ok "$1"
	fi
}

# --- the attack objects (CI builds what a hostile commit says) ---
# lines: #line names /etc/shadow, a secret, the server's token file and a
# file in its data directory.
cat >"$S/w/lines.c" <<C
int plain(void) { return 0; }
#line 1 "/etc/shadow"
int f_shadow(void) { return 1; }
#line 1 "$S/secret/shadow"
int f_secret(void) { return 2; }
#line 1 "$S/utokens"
int f_tokens(void) { return 3; }
#line 1 "$S/udata/index.sqlite"
int f_data(void) { return 4; }
int main(void) { return plain() + f_shadow() + f_secret() + f_tokens() + f_data(); }
C
# comp_dir tricks: a relative name joined to a DW_AT_comp_dir of /etc, or
# of the secret's directory.
printf '#line 1 "shadow"\nint main(void) { return 5; }\n' >"$S/w/etc.c"
printf '#line 1 "shadow"\nint main(void) { return 6; }\n' >"$S/w/dir.c"
(cd "$S/w" && gcc -g -o lines lines.c && gcc -g -fdebug-prefix-map="$S/w"=/etc -o etc etc.c &&
	gcc -g -fdebug-prefix-map="$S/w"="$S/secret" -o dir dir.c) || { fail build_attack_objects; finish; }
LINES_ID=$(build_id_of "$S/w/lines") ETC_ID=$(build_id_of "$S/w/etc") DIR_ID=$(build_id_of "$S/w/dir")

# --- through an upload: a server whose source root is all of / ---
dil_start U --data "$S/udata" --token-file "$S/utokens" --source-root / \
	--max-source-upload 100000
AUTH=(-H "Authorization: Bearer $UTOKEN")
for o in lines etc dir; do
	c=$(curl -s -o /dev/null -w '%{http_code}' -T "$S/w/$o" "${AUTH[@]}" \
		"$U_URL/buildid/$(build_id_of "$S/w/$o")/debuginfo")
	[[ $c == 201 ]] || fail "upload_$o" "HTTP $c"
done
if [[ -r /etc/shadow ]]; then
	not_leaked upload_line_etc_shadow "$U_URL/buildid/$LINES_ID/source/etc/shadow" /etc/shadow
	not_leaked upload_compdir_etc_shadow "$U_URL/buildid/$ETC_ID/source/etc/shadow" /etc/shadow
else
	skip upload_line_etc_shadow "/etc/shadow is not readable here (not root)"
fi
not_leaked upload_line_secret "$U_URL/buildid/$LINES_ID/source$S/secret/shadow" "$S/secret/shadow"
not_leaked upload_line_token_file "$U_URL/buildid/$LINES_ID/source$S/utokens" "$S/utokens"
not_leaked upload_line_data_dir "$U_URL/buildid/$LINES_ID/source$S/udata/index.sqlite" \
	"$S/udata/index.sqlite"
not_leaked upload_compdir_secret "$U_URL/buildid/$DIR_ID/source$S/secret/shadow" "$S/secret/shadow"

# Uploading sources: only for a path the stored DWARF names, with a token,
# bounded; the upload is what is served, never the local file.
put_src() { curl -s -o "$S/body" -w '%{http_code}' --path-as-is -T "$1" "${@:3}" "$U_URL/buildid/$2"; }
echo "int plain(void) { return 0; }" >"$S/w/plain.txt"
[[ $(put_src "$S/w/plain.txt" "$LINES_ID/source$S/w/lines.c") == 401 ]] \
	&& ok source_upload_needs_token || fail source_upload_needs_token
c=$(put_src "$S/w/plain.txt" "$LINES_ID/source$S/w/not-in-dwarf.c" "${AUTH[@]}")
[[ $c == 422 ]] && ok source_upload_unnamed_422 || fail source_upload_unnamed_422 "HTTP $c $(cat "$S/body")"
c=$(put_src "$S/w/plain.txt" "$(build_id_of /bin/ls)/source$S/w/lines.c" "${AUTH[@]}")
[[ $c == 422 ]] && ok source_upload_without_debuginfo_422 \
	|| fail source_upload_without_debuginfo_422 "HTTP $c $(cat "$S/body")"
head -c 150000 /dev/zero | tr '\0' x >"$S/w/big.txt"
c=$(put_src "$S/w/big.txt" "$LINES_ID/source$S/w/lines.c" "${AUTH[@]}")
[[ $c == 413 ]] && ok source_upload_over_limit_413 || fail source_upload_over_limit_413 "HTTP $c"
echo "what CI uploaded" >"$S/w/fake-shadow"
c=$(put_src "$S/w/fake-shadow" "$LINES_ID/source$S/secret/shadow" "${AUTH[@]}")
curl -s -o "$S/got" "$U_URL/buildid/$LINES_ID/source$S/secret/shadow"
[[ $c == 201 ]] && cmp -s "$S/got" "$S/w/fake-shadow" && ok source_upload_served_not_local \
	|| fail source_upload_served_not_local "HTTP $c $(head -c 80 "$S/got")"

# --- through a hostile upstream: correct build-IDs, DWARF naming local
# files; an anonymous client must get the upstream's answer, never ours ---
for o in lines etc dir; do cp "$S/w/$o" "$S/up/$(build_id_of "$S/w/$o")"; done
timeout 300 python3 - "$S/up" "$S/up.port" "$S/up.log" <<'PY' &
import http.server, os, socketserver, sys
root, portfile, logfile = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        with open(logfile, "a") as f: f.write(self.path + "\n")
        parts = self.path.split("/")
        body = None
        if len(parts) >= 4 and parts[3] == "debuginfo" and os.path.isfile(os.path.join(root, parts[2])):
            body = open(os.path.join(root, parts[2]), "rb").read()
        elif len(parts) >= 5 and parts[3] == "source":
            body = ("UPSTREAM:" + self.path + "\n").encode()
        if body is None:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
class Srv(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
s = Srv(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1])); os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
SERVERS+=($!)
for i in $(seq 50); do [[ -s $S/up.port ]] && break; sleep 0.1; done
start_server F --data "$S/fdata" --upstream "http://127.0.0.1:$(cat "$S/up.port")" --source-root / \
	|| fail server_start_federating
for id in "$LINES_ID" "$ETC_ID" "$DIR_ID"; do
	[[ $(http_code "$F_URL/buildid/$id/debuginfo") == 200 ]] || fail upstream_debuginfo "$id"
done
# forwarded: the upstream's answer, and the upstream saw the request
forwarded() {
	local name=$1 id=$2 path=$3 local_file=$4
	curl -s -o "$S/got" "$F_URL/buildid/$id/source$path"
	if cmp -s "$S/got" "$local_file"; then
		fail "$name" "served the local file $local_file"
	elif [[ $(cat "$S/got") == "UPSTREAM:/buildid/$id/source$path" ]] \
		&& grep -qxF "/buildid/$id/source$path" "$S/up.log"; then
		ok "$name"
	else
		fail "$name" "not forwarded: $(head -c 80 "$S/got")"
	fi
}
if [[ -r /etc/shadow ]]; then
	forwarded upstream_line_etc_shadow "$LINES_ID" /etc/shadow /etc/shadow
	forwarded upstream_compdir_etc_shadow "$ETC_ID" /etc/shadow /etc/shadow
else
	skip upstream_line_etc_shadow "/etc/shadow is not readable here (not root)"
fi
forwarded upstream_line_secret "$LINES_ID" "$S/secret/shadow" "$S/secret/shadow"
forwarded upstream_compdir_secret "$DIR_ID" "$S/secret/shadow" "$S/secret/shadow"

# --- scanned DWARF: only below a --source-root, never the server's own files ---
cat >"$S/root/ok.c" <<C
/* a legitimate source, served byte for byte */
int ok_function(void) { return 42; }
#line 1 "$S/secret/shadow"
int outside(void) { return 1; }
#line 1 "/etc/shadow"
int etc(void) { return 2; }
#line 1 "$S/root/link.c"
int linked(void) { return 3; }
#line 1 "$S/own/tokens"
int tokens(void) { return 4; }
#line 1 "$S/own/data/index.sqlite"
int data(void) { return 5; }
int main(void) { return ok_function() + outside() + etc() + linked() + tokens() + data(); }
C
ln -s "$S/secret/shadow" "$S/root/link.c"
mkdir -p "$S/scan"
(cd "$S/root" && gcc -g -o "$S/scan/ok" ok.c) || fail build_scanned
OK_ID=$(build_id_of "$S/scan/ok")
start_server L --data "$S/own/data" --token-file "$S/own/tokens" --scan "$S/scan" --rescan 0 \
	--source-root "$S/root" --source-root "$S/own" || fail server_start_scanning
wait_for "$L_URL/buildid/$OK_ID/debuginfo" || fail scan "not indexed"
code=$(curl -s -o "$S/got" -w '%{http_code}' "$L_URL/buildid/$OK_ID/source$S/root/ok.c")
[[ $code == 200 ]] && cmp -s "$S/got" "$S/root/ok.c" && ok scanned_source_under_root_served \
	|| fail scanned_source_under_root_served "HTTP $code"
not_leaked scanned_outside_roots "$L_URL/buildid/$OK_ID/source$S/secret/shadow" "$S/secret/shadow"
if [[ -r /etc/shadow ]]; then
	not_leaked scanned_etc_shadow "$L_URL/buildid/$OK_ID/source/etc/shadow" /etc/shadow
fi
not_leaked scanned_symlink_out_of_root "$L_URL/buildid/$OK_ID/source$S/root/link.c" "$S/secret/shadow"
not_leaked scanned_own_token_file "$L_URL/buildid/$OK_ID/source$S/own/tokens" "$S/own/tokens"
not_leaked scanned_own_data_dir "$L_URL/buildid/$OK_ID/source$S/own/data/index.sqlite" \
	"$S/own/data/index.sqlite"
# a link swapped in after the source was first served is refused too
cp "$S/root/ok.c" "$S/ok.c.orig"
mv "$S/root/ok.c" "$S/root/ok.c.moved" && ln -s "$S/secret/shadow" "$S/root/ok.c"
not_leaked scanned_link_swapped_later "$L_URL/buildid/$OK_ID/source$S/root/ok.c" "$S/secret/shadow"
rm "$S/root/ok.c" && mv "$S/root/ok.c.moved" "$S/root/ok.c"

# --- the real client: CI uploads debuginfo and sources, the build tree goes,
# gdb lists the source lines through DEBUGINFOD_URLS ---
cat >"$S/tree/hello.h" <<'C'
static inline int twice(int x) { return 2 * x; /* MARKER_IN_HEADER */ }
C
cat >"$S/tree/hello.c" <<'C'
#include <stdio.h>
#include "hello.h"
int main(int argc, char **argv)
{
	printf("%d\n", twice(argc)); /* MARKER_HELLO_MAIN */
	return 0;
}
C
cat >"$S/tree/mapped.c" <<'C'
#include <stdio.h>
int main(void)
{
	puts("mapped"); /* MARKER_MAPPED_MAIN */
	return 0;
}
C
printf '#include "gone.h"\nint main(void) { return gone(); }\n' >"$S/tree/partial.c"
echo 'static int gone(void) { return 0; }' >"$S/tree/gone.h"
{ echo '/*'; head -c 150000 /dev/zero | tr '\0' x; echo '*/'; echo 'int main(void) { return 0; }'; } \
	>"$S/tree/big.c"
(cd "$S/tree" && gcc -g -O0 -o hello hello.c &&
	gcc -g -O0 -fdebug-prefix-map="$S/tree"=/build/proj -o mapped mapped.c &&
	gcc -g -o partial partial.c && gcc -g -o big big.c &&
	objcopy --only-keep-debug hello hello.debug && objcopy --strip-all hello "$S/bin/hello" &&
	objcopy --strip-all mapped "$S/bin/mapped") || { fail build_tree; finish; }
cp "$S/tree/hello.c" "$S/tree/hello.h" "$S/tree/mapped.c" "$S/orig/"
HELLO_ID=$(build_id_of "$S/tree/hello") MAPPED_ID=$(build_id_of "$S/tree/mapped")
rm "$S/tree/gone.h"
out=$(cd "$S/tree" && "$BIN/debuginfod-upload" --server "$U_URL" --token-file "$S/utokens" --no-progress \
	--sources --prefix-map /build/proj="$S/tree" "$S/bin/hello" hello.debug mapped 2>&1)
rc=$?
[[ $rc == 0 ]] && grep -q "sources $HELLO_ID: 2 uploaded" <<<"$out" \
	&& grep -q "sources $MAPPED_ID: 1 uploaded" <<<"$out" && ok upload_sources_client \
	|| fail upload_sources_client "rc=$rc $(tr '\n' ' ' <<<"$out")"
out=$(cd "$S/tree" && "$BIN/debuginfod-upload" --server "$U_URL" --token-file "$S/utokens" --no-progress \
	--sources --prefix-map /build/proj="$S/tree" hello.debug mapped 2>&1)
[[ $? == 0 ]] && grep -q "sources $HELLO_ID: 0 uploaded, 2 already" <<<"$out" \
	&& ok upload_sources_skips_existing || fail upload_sources_skips_existing "$(tr '\n' ' ' <<<"$out")"
out=$(cd "$S/tree" && "$BIN/debuginfod-upload" --server "$U_URL" --token-file "$S/utokens" --no-progress \
	--sources partial 2>&1)
[[ $? == 0 ]] && grep -q "warning: source $S/tree/gone.h: not on disk" <<<"$out" \
	&& ok upload_sources_missing_is_a_warning || fail upload_sources_missing_is_a_warning "$out"
out=$(cd "$S/tree" && "$BIN/debuginfod-upload" --server "$U_URL" --token-file "$S/utokens" --no-progress \
	--retries 0 --sources big 2>&1)
[[ $? != 0 ]] && grep -q "big.c.*HTTP 413" <<<"$out" && ok upload_sources_failure_exits_nonzero \
	|| fail upload_sources_failure_exits_nonzero "$out"
# a hostile build on the CI side: the uploader does not read outside its tree
out=$(cd "$S/w" && "$BIN/debuginfod-upload" --server "$U_URL" --token-file "$S/utokens" --no-progress \
	--sources etc dir 2>&1)
[[ $(http_code "$U_URL/buildid/$DIR_ID/source$S/secret/shadow") == 404 ]] \
	&& grep -q "sources $DIR_ID: 0 uploaded.* 1 outside the source roots" <<<"$out" \
	&& ok uploader_reads_only_its_tree || fail uploader_reads_only_its_tree "$(tr '\n' ' ' <<<"$out")"

rm -rf "$S/tree"
if ! command -v gdb >/dev/null || ! command -v debuginfod-find >/dev/null; then
	skip gdb_lists_uploaded_source "gdb or debuginfod-find is not installed"
	finish
fi
gdb_list() {
	(cd "$S/bin" && DEBUGINFOD_URLS=$U_URL DEBUGINFOD_CACHE_PATH=$S/gdb-cache timeout 120 \
		gdb -q -batch -nx -iex 'set debuginfod enabled on' -ex "list $2" "./$1" 2>&1)
}
out=$(gdb_list hello main)
grep -q MARKER_HELLO_MAIN <<<"$out" && ok gdb_lists_uploaded_source \
	|| fail gdb_lists_uploaded_source "$(tail -3 <<<"$out" | tr '\n' ' ')"
out=$(gdb_list hello twice)
grep -q MARKER_IN_HEADER <<<"$out" && ok gdb_lists_uploaded_header \
	|| fail gdb_lists_uploaded_header "$(tail -3 <<<"$out" | tr '\n' ' ')"
out=$(gdb_list mapped main)
grep -q MARKER_MAPPED_MAIN <<<"$out" && ok gdb_lists_prefix_mapped_source \
	|| fail gdb_lists_prefix_mapped_source "$(tail -3 <<<"$out" | tr '\n' ' ')"
export DEBUGINFOD_URLS=$U_URL
got=$(debuginfod-find source "$HELLO_ID" "$S/tree/hello.c" 2>&1)
check find_uploaded_source cmp "$got" "$S/orig/hello.c"
got=$(debuginfod-find source "$HELLO_ID" "$S/tree/hello.h" 2>&1)
check find_uploaded_header cmp "$got" "$S/orig/hello.h"
got=$(debuginfod-find source "$MAPPED_ID" /build/proj/mapped.c 2>&1)
check find_prefix_mapped_source cmp "$got" "$S/orig/mapped.c"
finish
