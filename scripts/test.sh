#!/usr/bin/env bash
# Runs every test: unit and table tests, the Salesforce stand-in, the idempotency store
# and secrets against moto server, and the built function binaries end to end behind a
# Lambda Runtime API; then lints the SAM template. Ends with one summary line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$(scripts/tools.sh test)"
export PATH="$venv/bin:$PATH"

# The end-to-end tests run the function binaries, so they must exist first.
cargo build --workspace --bins --locked

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
scripts/validate-template.sh

awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
