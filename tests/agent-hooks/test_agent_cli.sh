#!/usr/bin/env bash
# profiler-agent's command line: --help, and a one-line reason with exit
# status 2 for bad options (no BPF needed).
. "$TOP/tests/lib/check.sh"
A=$BIN/profiler-agent
"$A" --help | grep -q -- '--server URL' && ok cli_help || fail cli_help
bad() { # NAME ARGS...
	local name=$1; shift
	local out; out=$("$A" "$@" 2>&1 >/dev/null); local rc=$?
	[[ $rc == 2 && $(wc -l <<<"$out") == 1 && $out == profiler-agent:* ]] && ok "$name" \
		|| fail "$name" "rc $rc: $out"
}
bad cli_no_target --server http://127.0.0.1:1
bad cli_both_targets --server http://127.0.0.1:1 --all --pid 1
bad cli_bad_pid --server http://127.0.0.1:1 --pid 12x
bad cli_bad_frequency --server http://127.0.0.1:1 --pid 1 --frequency 0
bad cli_bad_label --server http://127.0.0.1:1 --pid 1 --label novalue
bad cli_bad_limits --server http://127.0.0.1:1 --pid 1 --limits bogus=1
bad cli_no_destination --pid 1
bad cli_bad_cache_max --server http://127.0.0.1:1 --pid 1 --cache-max-mb 0
bad cli_bad_table_max --server http://127.0.0.1:1 --pid 1 --table-max-mb lots
bad cli_extra_argument --server http://127.0.0.1:1 --pid 1 extra
finish
