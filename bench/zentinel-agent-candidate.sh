#!/usr/bin/env bash
# A benchmark candidate for ../shared/bench/compare.sh: Zentinel with one allow-all agent
# (the echo agent) consulted on the request headers of every request, over a Unix socket.
# AGENT_ENCODING=json|msgpack picks the payload encoding the agent accepts. The agent runs
# in the candidate's process group, so its CPU time counts in the candidate's CPU per
# request. Otherwise the same settings as bench/zentinel-candidate.sh.
set -euo pipefail
dir="$(dirname "$0")/../target/bench/release"
bin="${ZENTINEL_BIN:-$dir/zentinel}"
agent="${ZENTINEL_AGENT_BIN:-$dir/zentinel-agent-echo}"
encoding="${AGENT_ENCODING:-msgpack}"
run="${RUN_DIR:-/tmp}"
sock="$run/echo-$encoding-$PORT.sock"
conf="$run/zentinel-agent-$encoding.kdl"
"$agent" --socket "$sock" --encoding "$encoding" 2>"$run/echo-$encoding.log" &
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
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
agents {
    agent "echo" {
        transport { unix-socket "$sock"; }
        events "request-headers"
        max-concurrent-calls 1000
        connections 2
    }
}
routes { route "all" { upstream "backend"; filters "echo"; } }
limits { max-body-bytes 104857600; max-in-flight-requests 100000; }
observability { access-log { destination "off"; }; audit-log { destination "off"; }; error-log { level "error"; } }
KDL
exec "$bin" run -c "$conf"
