#!/usr/bin/env bash
# Rebuilds vendor/pingora-core and vendor/pingora-proxy from the crates.io release named by
# PINGORA_VERSION (default: the one the patch was written for) and applies
# vendor/patches/pingora-$PINGORA_VERSION.diff. Run from the repository root; the crates are
# fetched into Cargo's registry cache if they are not there yet.
#
# With --check, rebuilds into a temporary directory instead and fails if vendor/ differs
# from it: the vendored code is exactly crates.io's plus the diff, nothing edited by hand.
set -euo pipefail
check=false
if [[ "${1:-}" == "--check" ]]; then
    check=true
fi
version="${PINGORA_VERSION:-0.9.1}"
patch_file="vendor/patches/pingora-${version}.diff"
[[ -f "$patch_file" ]] || { echo "no patch for Pingora $version: $patch_file" >&2; exit 1; }
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"

find_crate() {
    local dir
    dir=$(find "$registry" -maxdepth 2 -type d -name "$1-$version" 2>/dev/null | head -n1)
    if [[ -z "$dir" ]]; then
        # Let Cargo download it: a throw-away package that depends on exactly this version.
        local tmp
        tmp=$(mktemp -d)
        mkdir -p "$tmp/src" && : > "$tmp/src/lib.rs"
        printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
            "$1" "$version" > "$tmp/Cargo.toml"
        cargo fetch --manifest-path "$tmp/Cargo.toml" >&2
        rm -rf "$tmp"
        dir=$(find "$registry" -maxdepth 2 -type d -name "$1-$version" | head -n1)
    fi
    echo "$dir"
}

out=vendor
if $check; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
for crate in pingora-core pingora-proxy; do
    src=$(find_crate "$crate")
    rm -rf "${out:?}/$crate"
    mkdir -p "$out/$crate"
    cp -r "$src/src" "$src/Cargo.toml" "$src/LICENSE" "$out/$crate/"
    # Examples and benchmarks are not vendored: drop their targets from the manifest.
    python3 - "$out/$crate/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
parts = re.split(r'(?m)^(?=\[)', text)
kept = [p for p in parts if not p.startswith(('[[example]]', '[[bench]]', '[[test]]'))]
open(path, 'w').write(''.join(kept))
PY
done
patch -s -d "$out" -p1 --no-backup-if-mismatch < "$patch_file"
if $check; then
    for crate in pingora-core pingora-proxy; do
        if ! diff -r "$out/$crate" "vendor/$crate" > /dev/null; then
            echo "vendor/$crate differs from Pingora $version with $patch_file:" >&2
            diff -r "$out/$crate" "vendor/$crate" | head -n 40 >&2
            exit 1
        fi
    done
    echo "vendor/ is Pingora $version with $patch_file, nothing else"
else
    echo "vendor/ rebuilt from Pingora $version with $patch_file"
fi
