#!/usr/bin/env bash
# Times a 10,000-record backfill (100 customers, 2,000 subscriptions, 6,000 invoices of
# which 600 drafts are not synced, 2,500 credit notes) against the Lago and Salesforce
# stand-ins, the ordering guard and checkpoints in DynamoDB (moto), release build.
# Prints wall time, Salesforce calls per object and Lago calls.
# Usage: scripts/backfill-bench.sh [backfill-bench flags, e.g. --store memory --invoices 20000]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$(scripts/tools.sh local)/bin:$PATH"
nice -n 10 cargo build --release -p sync-testkit --bin backfill-bench
"${CARGO_TARGET_DIR:-target}/release/backfill-bench" "$@"
