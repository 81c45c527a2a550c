# Sourced by the load-run scripts: starts a release `classroom` on ephemeral loopback ports with a
# temporary data directory, and stops it when the script exits.
#
#   source loadtest/server.sh; start_server
#
# Sets SERVER (http://HOST:PORT), TOKEN (admin), MEDIA (UDP HOST:PORT), SERVER_PID, WORK. The
# server's log goes to $WORK/server.log, kept when the script fails. CLASSROOM_BIN names another
# server binary (default ./target/release/classroom), e.g. a build of an earlier commit to measure
# a change against in the same sitting.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/classroom-run.XXXXXX")
SERVER_PID=""

stop_server() {
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
trap stop_server EXIT

start_server() {
    mkfifo "$WORK/ready"
    RUST_LOG=${SERVER_LOG:-warn} "${CLASSROOM_BIN:-./target/release/classroom}" \
        --http 127.0.0.1:0 --udp 127.0.0.1:0 --data "$WORK/data" \
        >"$WORK/ready" 2>"$WORK/server.log" &
    SERVER_PID=$!

    # Read the ready lines (bounded: a server that never gets ready fails the run).
    local url="" line
    MEDIA=""
    exec 3<"$WORK/ready"
    while IFS= read -r -t 30 line <&3; do
        case "$line" in
            *"Teacher console:"*) url=${line##*Teacher console: } ;;
            *"Media (UDP):"*) MEDIA=${line##*Media (UDP):}; break ;;
        esac
    done
    MEDIA=${MEDIA//[[:space:]]/}
    url=${url//[[:space:]]/}
    if [[ -z "$url" || -z "$MEDIA" ]]; then
        echo "the server did not print its ready lines; log:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    # Keep draining the server's stdout so it never blocks on a full pipe.
    cat <&3 >/dev/null &
    exec 3<&-

    SERVER=${url%%/#key=*}
    SERVER=${SERVER%/}
    TOKEN=${url##*#key=}
    echo "server $SERVER (media $MEDIA), pid $SERVER_PID" >&2
}
