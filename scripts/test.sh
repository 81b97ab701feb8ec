#!/usr/bin/env bash
# The test command (README "Run the tests"): builds and runs every test.
# Needs only the Rust toolchain (cargo); everything else the tests use is a
# crate in Cargo.lock. Tests that need the real corpus (../shared/data, or
# EXPORT_CENTER_CORPUS) print a SKIP line when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo build --release --locked
set +e
cargo test --release --locked --lib --bins --tests -- --nocapture 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
