#!/usr/bin/env bash
# What an idle keep-alive client connection costs: the release binary in front of nginx on
# loopback; IDLE_CONNS (10000) clients each send one keep-alive GET, read the answer and stay
# connected. The proxy's VmRSS is read before (after a warm-up) and with every connection
# idle; the difference over the count is the cost per connection. Then a fresh client must
# still be answered, and after the clients close, descriptors must return to the baseline.
# A benchmark, not a test: not part of `make test`. Bounded: connecting is given 60 s.
set -euo pipefail

N=${IDLE_CONNS:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ZENTINEL_BIN:-$ROOT/target/release/zentinel}

fail() { echo "idle-connections: FAIL: $*" >&2; exit 1; }
command -v nginx >/dev/null || fail "nginx is not installed"
[[ -x $BIN ]] || fail "no binary at $BIN (cargo build --release -p zentinel)"
# The proxy holds N client sockets, the client script N more: each process needs N + margin.
ulimit -n $((N + 1024)) || fail "cannot raise the descriptor limit to $((N + 1024))"

WORK=$(mktemp -d -t zentinel-idle.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PROXY_PORT UPSTREAM_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { return 200 "ok\n"; }
    }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)

cat > "$WORK/zentinel.kdl" <<KDL
server { worker-threads 1; }
listeners { listener "web" { address "127.0.0.1:$PROXY_PORT"; idle-timeout-ms 300000; } }
upstreams { upstream "nginx" { target "127.0.0.1:$UPSTREAM_PORT"; } }
routes { route "all" { upstream "nginx"; } }
limits { max-connections $((N + 100)); max-connections-per-client $((N + 100)); max-in-flight-requests $((N + 100)); }
observability { access-log { destination "off"; }; error-log { level "warn"; } }
KDL
"$BIN" run -c "$WORK/zentinel.kdl" > "$WORK/zentinel.log" 2>&1 &
PROXY=$!
PIDS+=($PROXY)

python3 - "$PROXY_PORT" "$N" "$PROXY" <<'PY'
import os, socket, sys, time

port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
REQ = b"GET /idle HTTP/1.1\r\nHost: idle\r\n\r\n"

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")

def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

def one_exchange(s):
    s.sendall(REQ)
    data = b""
    while b"\r\n\r\nok\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"closed after {data!r}")
        data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected answer {data[:60]!r}")

deadline = time.monotonic() + 20
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise SystemExit("the proxy did not start")
        time.sleep(0.1)
# Warm up: upstream connection, buffers and allocator arenas in use before the baseline.
for _ in range(200):
    one_exchange(s)
s.close()
time.sleep(1)
base_rss, base_fds = rss_kib(), fds()

conns = []
start = time.monotonic()
for i in range(n):
    if time.monotonic() - start > 60:
        raise SystemExit(f"only {i} connections in 60 s")
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    one_exchange(c)
    conns.append(c)
took = time.monotonic() - start
time.sleep(2)
idle_rss, idle_fds = rss_kib(), fds()

fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
one_exchange(fresh)
fresh.close()

for c in conns:
    c.close()
deadline = time.monotonic() + 30
while fds() > base_fds + 2 and time.monotonic() < deadline:
    time.sleep(0.5)
end_fds = fds()
# The allocator returns freed pages as the process goes on allocating: serve a little.
s = socket.create_connection(("127.0.0.1", port), timeout=5)
for _ in range(2000):
    one_exchange(s)
s.close()
time.sleep(1)
after_rss = rss_kib()

per = (idle_rss - base_rss) / n
print(f"connections:            {n} (opened in {took:.1f} s, one GET each, then idle)")
print(f"RSS before:             {base_rss} KiB")
print(f"RSS with all idle:      {idle_rss} KiB  (+{idle_rss - base_rss} KiB)")
print(f"per idle connection:    {per:.1f} KiB")
print(f"RSS after they closed:  {after_rss} KiB (and 2000 more requests)")
print(f"descriptors:            {base_fds} before, {idle_fds} idle, {end_fds} after")
print("fresh client while idle: answered 200")
if end_fds > base_fds + 2:
    raise SystemExit(f"descriptors did not return: {end_fds} > {base_fds} + 2")
PY
