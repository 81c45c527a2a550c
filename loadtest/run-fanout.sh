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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/classroom-fanout.XXXXXX")
SERVER_PID=""
cleanup() {
    status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        # A clean shutdown within 10 s, else force.
        timeout 10 tail --pid="$SERVER_PID" -f /dev/null || kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -eq 0 ]]; then
        rm -rf "$WORK"
    else
        echo "server log kept in $WORK/server.log" >&2
    fi
}
trap cleanup EXIT

mkfifo "$WORK/ready"
RUST_LOG=${SERVER_LOG:-warn} ./target/release/classroom \
    --http 127.0.0.1:0 --udp 127.0.0.1:0 --data "$WORK/data" \
    >"$WORK/ready" 2>"$WORK/server.log" &
SERVER_PID=$!

# Read the three ready lines (bounded: a server that never gets ready fails the run).
URL="" MEDIA=""
exec 3<"$WORK/ready"
while IFS= read -r -t 30 line <&3; do
    case "$line" in
        *"Teacher console:"*) URL=${line##*Teacher console: } ;;
        *"Media (UDP):"*) MEDIA=${line##*Media (UDP): }; break ;;
    esac
done
if [[ -z "$URL" || -z "$MEDIA" ]]; then
    echo "the server did not print its ready lines; log:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi
# Keep draining the server's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &
exec 3<&-

SERVER=${URL%%/#key=*}
TOKEN=${URL##*#key=}
SERVER=${SERVER%/}
echo "server $SERVER (media $MEDIA), pid $SERVER_PID" >&2

./target/release/loadtest fanout \
    --server "$SERVER" --admin-token "$TOKEN" \
    --subscribers "$SUBSCRIBERS" --seconds "$SECONDS_" \
    --server-pid "$SERVER_PID" "$@"
