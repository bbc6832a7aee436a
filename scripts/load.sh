#!/usr/bin/env bash
# Load test of the local stack (release build): N signed events at concurrency C through
# the function binaries behind Lambda Runtime API emulators, moto and the Salesforce
# stand-in. Prints throughput, p50/p99 latency, Salesforce calls and DynamoDB writes per
# event; exits non-zero on any loss or duplicate.
# Usage: scripts/load.sh [--events 5000] [--concurrency 4]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$(scripts/tools.sh test)/bin:$PATH"
cargo build --release --workspace --bins --locked --quiet
"$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/load" "$@"
