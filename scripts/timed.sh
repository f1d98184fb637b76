#!/usr/bin/env bash
# timed.sh NAME COMMAND...: run COMMAND, print how long it took, and append "NAME SECONDS EXIT" to
# $RING_TIMINGS_FILE when that is set (.ci/run prints the collected lines as its timing summary).
set -uo pipefail
name=$1; shift
start=$(date +%s%N)
"$@"
rc=$?
secs=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')
printf '[timed] %s: %ss (exit %d)\n' "$name" "$secs" "$rc" >&2
if [[ -n ${RING_TIMINGS_FILE:-} ]]; then printf '%s %s %d\n' "$name" "$secs" "$rc" >>"$RING_TIMINGS_FILE"; fi
exit "$rc"
