#!/usr/bin/env bash
# Runs the playground's headless-browser test (crates/playground/browser-test) in Debian's
# Chromium, driven by npm playwright-core. Installs what is missing: the `chromium` package
# (apt, when /usr/bin/chromium is absent) and the pinned npm dependencies (`npm ci`).
# Expects the wasm module built by scripts/wasm-check.sh (make wasm).
# Screenshots: target/playground-screenshots/. See docs/playground.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_DIR="$ROOT/crates/playground/browser-test"
WASM="$ROOT/crates/playground/web/zentinel_playground.wasm"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'browser-check: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[[ -f "$WASM" ]] || die "$WASM is missing: run scripts/wasm-check.sh (make wasm) first"
command -v node >/dev/null || die "node (20 or later) is needed"
command -v npm >/dev/null || die "npm is needed (Debian: apt-get install npm)"

if [[ ! -x "$CHROMIUM" ]]; then
    [[ "$CHROMIUM" == /usr/bin/chromium ]] || die "CHROMIUM=$CHROMIUM is not an executable"
    SUDO=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and no sudo: cannot install chromium"
        SUDO=(sudo)
    fi
    log "installing chromium (apt)"
    start=$(date +%s.%N)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    log "chromium install took $(elapsed "$start") s"
fi
log "$("$CHROMIUM" --version 2>/dev/null | head -1); node $(node --version)"

# Always `npm ci`: exactly the lockfile, and quick (one package, playwright-core).
cd "$TEST_DIR"
log "npm ci (crates/playground/browser-test)"
npm ci --no-audit --no-fund

log "browser test"
start=$(date +%s.%N)
CHROMIUM="$CHROMIUM" node playground.test.mjs
log "browser test took $(elapsed "$start") s"
