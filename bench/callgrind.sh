#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: deterministic where CPU time on
# a shared machine is not. Each proxy runs under callgrind in front of the same nginx
# backend; after 500 warm-up requests the counters are zeroed, N small GETs are sent on one
# keep-alive connection (h2load --h1 -c1), and the counters dumped. User-space instructions
# of the whole process (all threads), divided by N. Kernel work is not counted.
#
#   bench/callgrind.sh [N]     (default 5000)
#
# Candidates: Zentinel (ZENTINEL_BIN, default target/bench/release/zentinel), the bare
# Pingora floor when FLOOR_BIN is set (bench/pingora-floor), nginx and HAProxy as proxies
# when installed. Needs valgrind, h2load and nginx (the backend).
set -euo pipefail
N=${1:-5000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ZEN=${ZENTINEL_BIN:-$ROOT/target/bench/release/zentinel}
DIR=$(mktemp -d)
BACKEND_PORT=19001
cleanup() { pkill -f "$DIR" 2>/dev/null || true; sleep 0.5; rm -rf "$DIR"; }
trap cleanup EXIT

mkdir -p "$DIR/tmp"
cat > "$DIR/backend.conf" <<NGX
worker_processes 1; daemon off; master_process off; pid $DIR/backend.pid;
error_log $DIR/backend.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $DIR/tmp;
  server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 "ok"; } } }
NGX
taskset -c 1 nginx -c "$DIR/backend.conf" &
sleep 0.5

# count NAME PORT -- CMD...: prints NAME and instructions per request.
count() {
    local name=$1 port=$2
    shift 3
    local out="$DIR/$name"
    mkdir -p "$out"
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" "$@" > "$out/log" 2>&1 &
    local vpid=$!
    for _ in $(seq 1 120); do
        curl -s -o /dev/null "http://127.0.0.1:$port/small" && break
        sleep 0.5
    done
    taskset -c 1 h2load --h1 -n 500 -c 1 "http://127.0.0.1:$port/small" > /dev/null
    callgrind_control -z "$vpid" > /dev/null 2>&1
    local answered
    answered=$(taskset -c 1 h2load --h1 -n "$N" -c 1 "http://127.0.0.1:$port/small" | awk '/^requests:/ {print $8}')
    callgrind_control -d "$vpid" > /dev/null 2>&1
    sleep 1
    kill "$vpid" 2> /dev/null || true
    wait "$vpid" 2> /dev/null || true
    local ir
    ir=$(awk '/^summary:/ {print $2; exit}' "$(ls -t "$out"/cg.*.1 | head -n1)")
    if [[ "$answered" != "$N" ]]; then
        echo "$name: only $answered of $N requests succeeded" >&2
        return 1
    fi
    printf '%-10s %9d instructions per request\n' "$name" $((ir / N))
}

cat > "$DIR/zentinel.kdl" <<KDL
server { worker-threads 1; graceful-shutdown-timeout-secs 1; }
listeners { listener "h1" { address "127.0.0.1:19301"; } }
upstreams { upstream "backend" { target "127.0.0.1:$BACKEND_PORT"; connection-pool { max-idle 512; } } }
routes { route "all" { upstream "backend"; } }
limits { max-body-bytes 104857600; max-in-flight-requests 100000; }
observability { access-log { destination "off"; }; error-log { level "error"; } }
KDL
count zentinel 19301 -- "$ZEN" run -c "$DIR/zentinel.kdl"
if [[ -n "${FLOOR_BIN:-}" ]]; then
    count floor 19311 -- "$FLOOR_BIN" 127.0.0.1:19311 "127.0.0.1:$BACKEND_PORT"
fi
cat > "$DIR/nginx.conf" <<NGX
worker_processes 1; daemon off; master_process off; pid $DIR/nginx.pid;
error_log $DIR/nginx.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp;
  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 512; }
  server { listen 127.0.0.1:19101;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
count nginx 19101 -- nginx -c "$DIR/nginx.conf"
if command -v haproxy > /dev/null; then
    cat > "$DIR/haproxy.cfg" <<HAP
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:19111
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
HAP
    count haproxy 19111 -- haproxy -f "$DIR/haproxy.cfg"
fi
