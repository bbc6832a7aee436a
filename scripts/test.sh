#!/usr/bin/env bash
# Runs every test: unit and table tests, the Salesforce stand-in, the idempotency store
# and secrets against moto server, and the built function binaries end to end behind a
# Lambda Runtime API; then lints the SAM template.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$(scripts/tools.sh test)"
export PATH="$venv/bin:$PATH"

# The end-to-end tests run the function binaries, so they must exist first.
cargo build --workspace --bins --locked
cargo test --workspace --locked
scripts/validate-template.sh
