#!/usr/bin/env bash
# Rural-link figures (docs/benchmarks.md, "Rural links"): builds release, starts `classroom` on
# ephemeral loopback ports, and runs `loadtest rural` for each profile against it: a simulcast
# subscriber whose link turns from clean to the profile and back (settling, audio gaps, video
# freezes), then SUBSCRIBERS subscribers on the profile joining at once (keyframe requests).
#
#   loadtest/run-rural.sh [PROFILES] [SUBSCRIBERS] [extra loadtest rural flags...]
#
# PROFILES is a comma-separated list of `rural` and `harsh` (default both); SUBSCRIBERS 50.
# Prints each run's table and JSON lines. Exit status: the first failing run's.
set -euo pipefail

PROFILES=${1:-rural,harsh}
SUBSCRIBERS=${2:-50}
shift $(( $# > 2 ? 2 : $# ))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --quiet -p signaling --bin classroom -p loadtest --bin loadtest

source loadtest/server.sh
start_server

IFS=, read -r -a profiles <<<"$PROFILES"
for profile in "${profiles[@]}"; do
    echo "== profile $profile ==" >&2
    ./target/release/loadtest rural \
        --server "$SERVER" --admin-token "$TOKEN" --media "$MEDIA" \
        --profile "$profile" --subscribers "$SUBSCRIBERS" "$@"
done
