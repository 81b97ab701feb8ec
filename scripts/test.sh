#!/usr/bin/env bash
# The test command (README "Run the tests"): installs the third-party
# verifiers (scripts/test-deps.sh), builds and runs every test.
# Needs the Rust toolchain (cargo) and python3; the rest is a crate in
# Cargo.lock or installed by test-deps.sh. Tests that need the real corpus
# (../shared/data, or EXPORT_CENTER_CORPUS) or a verifier that could not be
# installed print a `SKIP: <test>: <why>` line saying so; the summary
# counts them. With EXPORT_CENTER_REQUIRE_CORPUS=1 / _VERIFIERS=1 (set by
# .ci/run in CI) a missing corpus / verifier fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 2
fi
eval "$(bash scripts/test-deps.sh)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A second binary whose code for one action differs (tests/fingerprint.rs):
# same target dir, so only this crate compiles again, not its dependencies.
cargo build --release --locked --features fingerprint-probe
mkdir -p target/probe
cp target/release/export-center target/probe/export-center
export EXPORT_CENTER_PROBE_BIN="$PWD/target/probe/export-center"
cargo build --release --locked
set +e
cargo test --release --locked --no-fail-fast --lib --bins --tests -- --nocapture 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
bash scripts/test-summary.sh "$log"
exit "$status"
