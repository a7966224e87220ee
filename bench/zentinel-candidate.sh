#!/usr/bin/env bash
# A benchmark candidate for ../shared/bench/compare.sh: writes a Zentinel configuration from
# the harness's environment (PORT, H2C_PORT, TLS_PORT, BACKEND, WORKERS, CERT, KEY, RUN_DIR)
# and runs the release binary in the foreground. Settings match the references' production
# settings: access log off, keep-alive to the backend, no retries beyond the default.
set -euo pipefail
bin="${ZENTINEL_BIN:-$(dirname "$0")/../target/bench/release/zentinel}"
conf="${RUN_DIR:-/tmp}/zentinel-bench.kdl"
cat > "$conf" <<KDL
server { worker-threads ${WORKERS:-1}; graceful-shutdown-timeout-secs 1; }
listeners {
    listener "h1" { address "127.0.0.1:${PORT}"; }
    listener "h2c" { address "127.0.0.1:${H2C_PORT}"; protocol "h2c"; }
    listener "tls" { address "127.0.0.1:${TLS_PORT}"; protocol "https"; tls { cert-file "${CERT}"; key-file "${KEY}"; } }
}
upstreams {
    upstream "backend" {
        target "${BACKEND}"
        connection-pool { max-idle 512; }
    }
}
routes { route "all" { upstream "backend"; } }
limits { max-body-bytes 104857600; max-in-flight-requests 100000; }
observability { access-log { destination "off"; }; error-log { level "error"; } }
KDL
exec "$bin" run -c "$conf"
