#!/usr/bin/env bash
# Builds the browser verifier into web/pkg/: the verinfer-wasm crate for wasm32-unknown-unknown
# and its JavaScript glue, written by the wasm-bindgen command of the crate's exact version
# (installed with cargo if missing or of another version).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' wasm/Cargo.toml)
if command -v rustup >/dev/null; then
    rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
    # Not --locked: its lockfile may name versions a registry mirror does not carry.
    cargo install -q wasm-bindgen-cli --version "$version"
fi
cargo build -q -p verinfer-wasm --target wasm32-unknown-unknown --release
target="${CARGO_TARGET_DIR:-target}"
wasm-bindgen --target web --out-dir web/pkg \
    "$target/wasm32-unknown-unknown/release/verinfer_wasm.wasm"
ls -l web/pkg/verinfer_wasm_bg.wasm
