#!/usr/bin/env bash
# A benchmark candidate for ../shared/bench/compare.sh: Zentinel with one built-in
# `rate-limit` filter (keyed by client IP, a rate no benchmark reaches, so every request
# passes) on every request. RATE_BACKEND=local counts in the proxy; RATE_BACKEND=redis shares
# the buckets on a redis-server started here, in the candidate's process group, so its CPU
# time counts in the candidate's CPU per request. Otherwise the same settings as
# bench/zentinel-candidate.sh.
set -euo pipefail
bin="${ZENTINEL_BIN:-$(dirname "$0")/../target/bench/release/zentinel}"
backend="${RATE_BACKEND:-local}"
run="${RUN_DIR:-/tmp}"
conf="$run/zentinel-ratelimit-$backend.kdl"
store=""
if [ "$backend" = redis ]; then
    redis_port=$((PORT + 5))
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --logfile "$run/redis-$redis_port.log" &
    for _ in $(seq 1 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    store="backend \"redis\" { url \"redis://127.0.0.1:$redis_port/0\"; pool-size 2; timeout-ms 50; on-backend-failure \"closed\"; }"
fi
cat > "$conf" <<KDL
server { worker-threads ${WORKERS:-1}; graceful-shutdown-timeout-secs 1; }
listeners {
    listener "h1" { address "127.0.0.1:${PORT}"; }
}
upstreams {
    upstream "backend" {
        target "${BACKEND}"
        connection-pool { max-idle 512; }
    }
}
filters {
    filter "per-ip" {
        type "rate-limit"
        requests-per-second 10000000
        key "client-ip"
        $store
    }
}
routes { route "all" { upstream "backend"; filters "per-ip"; } }
limits { max-body-bytes 104857600; max-in-flight-requests 100000; }
observability { access-log { destination "off"; }; error-log { level "error"; } }
KDL
exec "$bin" run -c "$conf"
