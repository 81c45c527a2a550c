#!/usr/bin/env bash
# Fan-out load run: builds release, starts `classroom` on ephemeral loopback ports with a
# temporary data directory, runs `loadtest fanout` against it with --server-pid, stops it.
#
#   loadtest/run-fanout.sh [SUBSCRIBERS] [SECONDS] [extra loadtest fanout flags...]
#
# Prints the loadtest's table and JSON line; the server's log goes to $WORK/server.log
# (kept when the run fails). Exit status: the loadtest's.
set -euo pipefail

SUBSCRIBERS=${1:-50}
SECONDS_=${2:-30}
shift $(( $# > 2 ? 2 : $# ))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --quiet -p signaling --bin classroom -p loadtest --bin loadtest

source loadtest/server.sh
start_server

./target/release/loadtest fanout \
    --server "$SERVER" --admin-token "$TOKEN" \
    --subscribers "$SUBSCRIBERS" --seconds "$SECONDS_" \
    --server-pid "$SERVER_PID" "$@"
