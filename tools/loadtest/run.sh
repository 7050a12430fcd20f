#!/usr/bin/env bash
# Load test of `verinfer serve` on the digits model, loopback only, bounded:
# builds release, starts a server on 127.0.0.1 (OS-chosen port), runs serve/examples/loadtest.rs at
# concurrency 1, 4 and 16 (REQUESTS per level, default 400), then stops the server with SIGTERM.
#
#   tools/loadtest/run.sh [REQUESTS] [extra loadtest flags, e.g. --verify]
#
# Environment: WORKERS (proving threads, default: all cores), CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS="${1:-400}"
shift || true
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -p verinfer --bin verinfer
cargo build --release -p verinfer-serve --example loadtest
BIN="$TARGET/release/verinfer"
LOG="$(mktemp)"
WORKER_FLAGS=()
if [[ -n "${WORKERS:-}" ]]; then WORKER_FLAGS=(--workers "$WORKERS"); fi
"$BIN" serve --model models/digits/digits_square_plus_x.onnx --addr 127.0.0.1:0 \
    --queue 64 "${WORKER_FLAGS[@]}" >"$LOG" 2>/dev/null &
SERVER=$!
trap 'kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT
URL=""
for _ in $(seq 100); do
    URL="$(sed -n 's/^listening on //p' "$LOG")"
    [[ -n "$URL" ]] && break
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "the server did not start" >&2; exit 2; }
echo "server $URL ($(nproc) cores); $REQUESTS requests per level"
timeout 600 "$TARGET/release/examples/loadtest" --server "$URL" --requests "$REQUESTS" \
    --concurrency 1,4,16 "$@"
