#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every check CI runs.
# Idempotent; a second run only re-runs the checks. SOAK=1 adds the long runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

step "TigerBeetle toolchain and server (libclang, Zig 0.14.1, tigerbeetle 0.16.78 in .tools/)"
tools/tigerbeetle.sh install

step "format"
cargo fmt --all -- --check

step "clippy (pure crates under the determinism rules, everything with -D warnings)"
cargo clippy --workspace --all-targets --release --features acme-tools/tigerbeetle,acme-bench/tigerbeetle -- -D warnings

step "TigerBeetle cluster for the tests that run against a real server"
if [ -z "${TB_ADDRESS:-}" ]; then
  trap 'tools/tigerbeetle.sh down' EXIT
  TB_ADDRESS="$(tools/tigerbeetle.sh up --replicas 1 --cache-grid 256MiB)"
  export TB_ADDRESS
fi

step "tests"
# The default features plus the TigerBeetle backend of `acme sim --ledger`, so the tests that run
# whole days and a 3-replica fault test on real clusters are built and run too.
cargo test --workspace --release --features acme-tools/tigerbeetle

step "debug build: the ledger's tests, the processes' unit tests, the simulator's own and a short faulted swarm"
# Release builds keep the asserts that guard money; this subset runs every debug_assert! too
# (the expensive checks). Chosen for the CI budget: about 5 minutes cold on 2 cores, seconds
# warm (the test profile is opt-level 2, so the runs are quick; the compile is the cost).
cargo test -p acme-ledger
cargo test -p acme-processes --lib
cargo test -p acme-sim --lib --test short_swarm

if [ "${SOAK:-0}" = "1" ]; then
  step "soak"
  cargo test --workspace --release -- --ignored
fi
