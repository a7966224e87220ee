#!/usr/bin/env bash
# Builds the configuration validator (crates/playground) for wasm32-unknown-unknown and checks
# it in Node: no imports, then node-check.mjs. Runs from any directory; installs its toolchain
# on a fresh Debian 12 machine. Recipe and reasons: shared/design/wasm-toolchain.md.
#
# Toolchain: Debian's rustc-web 1.96 + cargo-web + rust-web-src (std sources, built with
# -Zbuild-std) + rust-web-llvm/lld-22 (the wasm linker). rustup stays untouched and first on
# PATH, so the build calls /usr/bin/cargo and /usr/bin/rustc by absolute path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '==> %s\n' "$*"; }
die() { printf 'wasm-check: %s\n' "$*" >&2; exit 1; }

# --- toolchain -------------------------------------------------------------------------------
# /usr/bin/rust-lld is a symlink into lld-22, which rust-web-llvm does not depend on: `-e`
# follows the link, so a missing lld-22 counts as missing too.
if [[ ! -x /usr/bin/cargo || ! -x /usr/bin/rustc || ! -e /usr/lib/rustlib/src/rust \
      || ! -e /usr/bin/rust-lld ]]; then
    log "installing rustc-web cargo-web rust-web-src rust-web-llvm lld-22"
    SUDO=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and no sudo: cannot install the toolchain"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        rustc-web cargo-web rust-web-src rust-web-llvm lld-22
fi
command -v node >/dev/null || die "node (20 or later) is needed for the check; install it first"
log "$(/usr/bin/rustc --version); $(/usr/bin/cargo --version); node $(node --version)"

# --- build -----------------------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm/zentinel_playground.wasm"
OUT="$ROOT/crates/playground/web/zentinel_playground.wasm"

lock_before="$(sha256sum Cargo.lock)"
log "building zentinel-playground for wasm32-unknown-unknown (profile wasm)"
start=$(date +%s.%N)
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    /usr/bin/cargo build -p zentinel-playground --profile wasm \
    --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
end=$(date +%s.%N)
log "wasm build took $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
# The Debian cargo is one release ahead of rustup's; it must not rewrite the shared lockfile.
[[ "$(sha256sum Cargo.lock)" == "$lock_before" ]] \
    || die "the wasm build (Debian cargo $(/usr/bin/cargo --version)) changed Cargo.lock"
[[ -f "$WASM" ]] || die "build succeeded but $WASM is missing"

# --- checks ----------------------------------------------------------------------------------
# The loader instantiates with an empty import object, so the module must import nothing.
node -e '
  const bytes = require("fs").readFileSync(process.argv[1]);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
  if (imports.length) { console.error("module imports:", JSON.stringify(imports)); process.exit(1); }
' "$WASM" || die "the wasm module has imports; it must instantiate with {}"
log "imports: none"

cp "$WASM" "$OUT"
size=$(wc -c <"$OUT")
gz=$(gzip -9c "$OUT" | wc -c)
log "wasm size: $size bytes ($gz bytes gzip -9) -> ${OUT#"$ROOT"/}"

# The CLI the exports are compared with (built by the test run before this; built here if not).
CLI="$TARGET_DIR/debug/zentinel"
[[ -x "$CLI" ]] || cargo build -q -p zentinel --locked
log "node check"
node "$ROOT/crates/playground/web/node-check.mjs" "$OUT" "$CLI"
