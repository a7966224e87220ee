#!/usr/bin/env bash
# A bounded soak of the release binary: memory must plateau under load and open file
# descriptors must return to their baseline afterwards. Not part of `make test` or CI; run it
# with `make soak` (SOAK_MINUTES=3 by default).
#
# The proxy (a config in a temporary directory) sits in front of nginx on loopback, both on
# free ports. wrk sends, at the same time: keep-alive GETs, a new connection per request
# (`Connection: close`), requests with oversized headers (431) and requests to no route (404).
# Every 5 s the proxy's VmRSS and open descriptors go into a CSV (kept in SOAK_OUT, default
# the temporary directory, printed at the end). After the load, a settle time longer than the
# idle timeouts; then:
#   - descriptors ≤ baseline + SOAK_FD_MARGIN (default 4);
#   - mean RSS of the last third of the load ≤ mean of the middle third + SOAK_RSS_GROWTH_PCT
#     (default 10) percent.
# Every process the script starts is stopped on exit.
set -euo pipefail

MINUTES=${SOAK_MINUTES:-3}
FD_MARGIN=${SOAK_FD_MARGIN:-4}
RSS_GROWTH_PCT=${SOAK_RSS_GROWTH_PCT:-10}
SETTLE_SECS=${SOAK_SETTLE_SECS:-10}
INTERVAL=5
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ZENTINEL_BIN:-$ROOT/target/release/zentinel}

fail() { echo "soak: FAIL: $*" >&2; exit 1; }
for tool in wrk nginx python3; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done

WORK=$(mktemp -d -t zentinel-soak.XXXXXX)
OUT=${SOAK_OUT:-$WORK}
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${ZENTINEL_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release -p zentinel --locked)
fi
[[ -x $BIN ]] || fail "no binary at $BIN"

# Free loopback ports from the kernel (released again before use: a small race, not retried).
read -r PROXY_PORT UPSTREAM_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    fastcgi_temp_path $WORK/nginx-fastcgi;
    uwsgi_temp_path $WORK/nginx-uwsgi;
    scgi_temp_path $WORK/nginx-scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { return 200 "soak ok\n"; }
    }
}
EOF

cat >"$WORK/zentinel.kdl" <<EOF
listeners {
    listener "soak" {
        address "127.0.0.1:$PROXY_PORT"
        protocol "http"
        idle-timeout-ms 3000
    }
}
routes {
    route "app" {
        matches { path-prefix "/app/"; }
        upstream "nginx"
    }
}
upstreams {
    upstream "nginx" {
        target "127.0.0.1:$UPSTREAM_PORT"
        connection-pool { idle-timeout-ms 3000; }
    }
}
limits { max-header-bytes 2048; }
observability {
    access-log { destination "file"; path "/dev/null"; }
    error-log { destination "file"; path "$WORK/zentinel-error.log"; level "warn"; }
}
EOF

nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
PIDS+=($!)
"$BIN" run -c "$WORK/zentinel.kdl" >"$WORK/zentinel.out" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")

URL="http://127.0.0.1:$PROXY_PORT"
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for _ in $(seq 100); do
    [[ $(status "$URL/app/" || true) == 200 ]] && break
    kill -0 "$PROXY_PID" 2>/dev/null || fail "the proxy exited: $(cat "$WORK/zentinel.out")"
    sleep 0.1
done
PAD=$(head -c 3000 /dev/zero | tr '\0' 'a')
[[ $(status "$URL/app/") == 200 ]] || fail "GET /app/ is not 200"
[[ $(status "$URL/nowhere") == 404 ]] || fail "GET /nowhere is not 404"
[[ $(status -H "x-pad: $PAD" "$URL/app/") == 431 ]] || fail "oversized headers are not 431"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PROXY_PID/status"; }
fds() { find "/proc/$PROXY_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
sleep 1
BASE_RSS=$(rss_kib)
BASE_FDS=$(fds)
CSV="$OUT/soak.csv"
echo "seconds,phase,rss_kib,fds" >"$CSV"
echo "0,baseline,$BASE_RSS,$BASE_FDS" >>"$CSV"
echo "soak: proxy pid $PROXY_PID on :$PROXY_PORT, nginx on :$UPSTREAM_PORT, ${MINUTES} min;" \
    "baseline RSS ${BASE_RSS} KiB, ${BASE_FDS} fds"

DURATION=$((MINUTES * 60))
LOAD=()
wrk -t1 -c32 -d"${DURATION}s" "$URL/app/keep-alive" >"$WORK/wrk-keepalive.txt" 2>&1 &
LOAD+=($!)
wrk -t1 -c8 -d"${DURATION}s" -H 'Connection: close' "$URL/app/close" >"$WORK/wrk-close.txt" 2>&1 &
LOAD+=($!)
wrk -t1 -c4 -d"${DURATION}s" -H "x-pad: $PAD" "$URL/app/oversized" >"$WORK/wrk-431.txt" 2>&1 &
LOAD+=($!)
wrk -t1 -c4 -d"${DURATION}s" "$URL/nowhere" >"$WORK/wrk-404.txt" 2>&1 &
LOAD+=($!)
PIDS+=("${LOAD[@]}")

START=$(date +%s)
while (($(date +%s) - START < DURATION)); do
    sleep "$INTERVAL"
    kill -0 "$PROXY_PID" 2>/dev/null || fail "the proxy died under load: $(tail -5 "$WORK/zentinel.out")"
    echo "$(($(date +%s) - START)),load,$(rss_kib),$(fds)" >>"$CSV"
done
for pid in "${LOAD[@]}"; do wait "$pid" || fail "wrk failed (see $WORK/wrk-*.txt)"; done

sleep "$SETTLE_SECS"
END_RSS=$(rss_kib)
END_FDS=$(fds)
echo "$(($(date +%s) - START)),settled,$END_RSS,$END_FDS" >>"$CSV"

for f in keepalive close 431 404; do
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk-$f.txt")
    non2xx=$(awk '/Non-2xx/ { print $NF }' "$WORK/wrk-$f.txt")
    errors=$(awk '/Socket errors/ { sub(/.*Socket errors: /, ""); print }' "$WORK/wrk-$f.txt")
    echo "soak: wrk $f: ${reqs:-0} requests, ${non2xx:-0} non-2xx${errors:+, socket errors: $errors}"
done

# Mean RSS of the middle and last thirds of the load samples.
read -r N MID LAST PEAK < <(awk -F, '$2 == "load" { r[n++] = $3 }
    END {
        a = int(n / 3); b = int(2 * n / 3); m = 0; l = 0; p = 0
        for (i = a; i < b; i++) m += r[i]
        for (i = b; i < n; i++) l += r[i]
        for (i = 0; i < n; i++) if (r[i] > p) p = r[i]
        printf "%d %d %d %d\n", n, m / (b - a), l / (n - b), p
    }' "$CSV")
echo "soak: $N samples; RSS mean middle third ${MID} KiB, last third ${LAST} KiB, peak ${PEAK} KiB;" \
    "after settling ${END_RSS} KiB, ${END_FDS} fds (baseline ${BASE_FDS})"
echo "soak: samples in $CSV"

((N >= 6)) || fail "too few samples ($N) to judge a plateau"
((LAST * 100 <= MID * (100 + RSS_GROWTH_PCT))) ||
    fail "RSS still growing: last third ${LAST} KiB > middle third ${MID} KiB + ${RSS_GROWTH_PCT}%"
((END_FDS <= BASE_FDS + FD_MARGIN)) ||
    fail "descriptors did not return: ${END_FDS} open, baseline ${BASE_FDS} (+${FD_MARGIN} allowed)"
echo "soak: PASS"
