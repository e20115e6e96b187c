#!/usr/bin/env bash
# The request-parser fuzz target (tests/fuzz/fuzz_server.c) over its seed
# corpus (tests/fuzz/seeds_server.sh), plain and under ASan/UBSan in CI.
. "$TOP/tests/lib/check.sh"
scratch
"$TOP/tests/fuzz/seeds_server.sh" "$SCRATCH/seeds"
check fuzz_server_corpus_replay "$TOP/$BUILD/fuzz/replay_server" "$SCRATCH"/seeds/*
finish
