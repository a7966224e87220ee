#!/usr/bin/env bash
# Installs the system packages the build needs when they are missing: cmake (Pingora builds
# zlib-ng with it), redis-server (the shared rate-limit tests start one of their own),
# python3-h2 (the HTTP/2 abuse probes), varnish (its varnishtest runs tests/varnish/*.vtc).
# The wasm toolchain is installed by scripts/wasm-check.sh when used.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v curl >/dev/null 2>&1 || missing+=(curl)   # the TLS tests use curl as an independent client
command -v patch >/dev/null 2>&1 || missing+=(patch)   # scripts/vendor-pingora.sh (make vendor-check)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)   # tests/rate_limit_redis.rs
# tests/h2/probes.py (tests/http2_abuse.rs); Debian's module is seen by the system python3
# even where a pyenv or virtualenv python3 comes first on PATH.
python3 -c 'import h2, hpack' >/dev/null 2>&1 || /usr/bin/python3 -c 'import h2, hpack' >/dev/null 2>&1 \
    || missing+=(python3-h2)
command -v varnishtest >/dev/null 2>&1 || missing+=(varnish)   # tests/varnish.rs
command -v slowhttptest >/dev/null 2>&1 || missing+=(slowhttptest)   # tests/slowhttptest.rs
# sslyze (tests/tls_scan.rs) comes from PyPI into a virtualenv, which needs ensurepip.
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "==> installing ${missing[*]}"
    $sudo apt-get update -qq
    # Only varnishtest is wanted from `varnish`: a policy-rc.d that refuses keeps its
    # package scripts from starting varnishd (and redis-server's from starting a server)
    # where none is in place already.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        trap '$sudo rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
# sslyze for tests/tls_scan.rs, from PyPI into the project-local virtualenv target/py/ (not
# committed), when missing.
py="$(cd "$(dirname "$0")/.." && pwd)/target/py"
if [ ! -x "$py/bin/sslyze" ]; then
    echo "==> installing sslyze into $py"
    python3 -m venv "$py"
    "$py/bin/pip" install -q 'sslyze>=6,<7'
fi
