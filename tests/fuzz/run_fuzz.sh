#!/bin/sh
# Runs one fuzz target for a bounded time (meson test --suite fuzz).
#   run_fuzz.sh TARGET SEEDS WORKDIR [SECONDS]
# New inputs go to WORKDIR (in the build tree); the committed SEEDS are
# read, never written.  A crash leaves its input as WORKDIR/crash-* and
# fails the test: copy it to SEEDS and make it a unit test.
# Longer runs: FUZZ_SECONDS=3600 meson test -C build --suite fuzz -t 0
set -e
target=$1 seeds=$2 work=$3
seconds=${FUZZ_SECONDS:-${4:-10}}
mkdir -p "$work"
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work" "$seeds"
