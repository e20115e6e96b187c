#!/usr/bin/env bash
# Issue 6's end-to-end flow with every real part: debuginfod-lite serves the
# unwind tables and stores profiles; profiler-agent samples a stripped
# -O2 -fomit-frame-pointer fixture with real BPF and posts its profiles; only
# afterwards is the fixture's debuginfo uploaded, and the merged profile read
# back is then symbolized (inline frames included).  Oracles: Google pprof,
# llvm-symbolizer on the unstripped twin.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf e2e_agent_posted e2e_stored_unsymbolized e2e_resymbolized e2e_pprof_top_hot_first \
	e2e_unwinds_to_main e2e_inline_frames
. "$TOP/tests/lib/pprof.sh"
ensure_pprof || { skip e2e_pprof "pprof could not be built (golang-github-google-pprof-dev)"; }
pp() { env PPROF_BINARY_PATH=/nonexistent PPROF_TMPDIR="$SCRATCH" HOME="$SCRATCH" "$PPROF" -symbolize=none "$@" 2>&1; }

echo "e2e-token" >"$SCRATCH/tokens"
mkdir -p "$SCRATCH/scan" && cp "$AFIX/spin" "$SCRATCH/scan/"
SPIN_ID=$(build_id_of "$AFIX/spin")
dil_start S --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --scan "$SCRATCH/scan" \
	--scan "$LIBC" --scan "$LDSO" --rescan 0 --no-watch
wait_for "$S_URL/buildid/$SPIN_ID/executable" || fail e2e_server "fixture not scanned"

"$AFIX/spin" 60 >/dev/null & SPIN=$!; BG+=("$SPIN")
timeout 60 "$AGENT" --pid "$SPIN" --server "$S_URL" --token-file "$SCRATCH/tokens" \
	--frequency 199 --interval 2 --duration 5 --cache-dir "$SCRATCH/cache" \
	--buffer-dir "$SCRATCH/buffer" --stats-file "$SCRATCH/agent.json" 2>"$SCRATCH/agent.err"
kill "$SPIN" 2>/dev/null
sent=$(json "$SCRATCH/agent.json" profiles_sent 2>/dev/null || echo 0)
(( sent >= 2 )) && ok e2e_agent_posted || fail e2e_agent_posted "sent $sent: $(tail -2 "$SCRATCH/agent.err")"

# Stored, but nothing names the fixture's functions yet.
curl -s "$S_URL/profiles" -o "$SCRATCH/before.pb.gz"
if [[ -s $SCRATCH/before.pb.gz ]] && ! pp -top "$SCRATCH/before.pb.gz" | grep -q hot_leaf; then
	ok e2e_stored_unsymbolized
else
	fail e2e_stored_unsymbolized "$(pp -top "$SCRATCH/before.pb.gz" | head -8 | tr '\n' ' ')"
fi

# The debuginfo arrives late; the stored profiles are symbolized again.
"$BIN/debuginfod-upload" --server "$S_URL" --token-file "$SCRATCH/tokens" "$AFIX/spin.debug" \
	>"$SCRATCH/upload.log" 2>&1 || fail e2e_upload "$(tail -1 "$SCRATCH/upload.log")"
for i in $(seq 60); do
	curl -s "$S_URL/profiles" -o "$SCRATCH/after.pb.gz"
	pp -top "$SCRATCH/after.pb.gz" | grep -q hot_leaf && break
	sleep 0.5
done
pp -top "$SCRATCH/after.pb.gz" >"$SCRATCH/top.txt"
grep -q hot_leaf "$SCRATCH/top.txt" && ok e2e_resymbolized || fail e2e_resymbolized "$(head -8 "$SCRATCH/top.txt" | tr '\n' ' ')"
# The hottest entry is the fixture's hot loop: hot_leaf, or lcg_step inlined in it.
first=$(awk '/flat%/ {getline; print $6; exit}' "$SCRATCH/top.txt")
[[ $first == hot_leaf || $first == lcg_step ]] && ok e2e_pprof_top_hot_first ||
	fail e2e_pprof_top_hot_first "first is '$first'"

# Every sample of the fixture reaches main; hot_leaf shows its inlined lcg_step.
pp -traces "$SCRATCH/after.pb.gz" >"$SCRATCH/traces.txt"
python3 - "$SCRATCH/traces.txt" <<'PY' >"$SCRATCH/traces.sum"
import sys
text = open(sys.argv[1]).read()
blocks = [b for b in text.split("-----------+-------------------------------------------------------") if b.strip()]
total = reached = inline = 0
for b in blocks:
    lines = [l for l in b.strip().splitlines() if l.strip()]
    lines = [l for l in lines if not l.split()[0].endswith(":")]  # drop the label lines
    if not lines or not any(" hot_leaf" in l or " middle" in l for l in lines):
        continue  # not a sample of the fixture's own code (libc, kernel)
    value = lines[0].split()[0]  # "4.96s", "15.08ms", or a count
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    unit = next((u for u in ("ns", "us", "ms", "s") if value.endswith(u)), "")
    n = float(value[:-len(unit)]) * units[unit] / 0.005 if unit else float(value)  # 199 Hz ~ 5 ms
    total += n
    if any(l.split()[-1] == "main" for l in lines):
        reached += n
    if any("lcg_step" in l for l in lines):
        inline += n
print(round(total), round(reached), round(inline))
PY
read total reached inline <"$SCRATCH/traces.sum"
if (( total >= 50 && reached * 100 >= total * 99 )); then ok e2e_unwinds_to_main
else fail e2e_unwinds_to_main "$reached of $total fixture samples reach main"; fi
(( inline > 0 )) && ok e2e_inline_frames || fail e2e_inline_frames "no lcg_step inline frame in $total samples"
echo "# $total fixture samples, $reached reach main, $inline through the inlined lcg_step"
finish
