#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: the pure hot path (criterion); the release-built function
# binaries under a Lambda Runtime API emulator with moto and the Salesforce and Lago
# stand-ins, beside a bare lambda_http hello-world (tests/src/bin/lambda-bench); what each
# kind of event costs in DynamoDB writes (applied and refused), reads, Salesforce and Lago
# calls and sequential round trips, the redrive's retries included (lambda-bench --cost,
# which waits about 40 s for queued events to fall due); one DynamoDB call through the
# AWS SDK against a bare HTTP POST (tests/src/bin/sdk-overhead); the stripped binary sizes,
# x86_64 and arm64 (cargo lambda, which brings Zig); and, only when named, the ablation: the
# functions' warm overhead with their DynamoDB writes through the AWS SDK against the same
# writes as bare HTTP requests (scripts/ablation/sdk-free-dynamodb.patch, applied to a scratch
# copy of the tree and built in its own target directory, about 8 minutes cold; the patch was
# written for the store before its redesign around one item per record and no longer applies).
# Usage: scripts/bench.sh [hot-path] [lambda] [cost] [sdk] [sizes] [ablation]
#        (default: the first five)
#   EVENTS=500  warm written events per function     INITS=20  spawns per binary for init times
#   COST_EVENTS=10  events per scenario in the cost step, CONTENDED=3 for its contended and
#               queued scenarios
#   CALLS=3000  DynamoDB calls per client in the sdk step
#   ROUNDS=3    alternated SDK / bare runs in the ablation step
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$(scripts/tools.sh local)/bin:$PATH"
target="${CARGO_TARGET_DIR:-target}"
functions=(customer-webhook subscription-webhook invoice-webhook credit-note-webhook salesforce-account)
steps=("$@")
[ $# -gt 0 ] || steps=(hot-path lambda cost sdk sizes)

# The functions alone, with their own features as the deploy build has them (Makefile), and
# the redrive (the cost step runs it); then the bench programs, which leaves the function
# binaries as they are.
build() {
  nice -n 10 cargo build --release "${functions[@]/#/--package=}" --package=redrive
  nice -n 10 cargo build --release --package=sync-testkit --bin lambda-bench --bin hello-lambda --bin sdk-overhead
}

# Same binaries both ways: BARE_DDB switches the patched store, so each pair is a fair A/B.
ablation() {
  # Outside the repository, where `git apply` patches the files under the current directory.
  local scratch="${TMPDIR:-/tmp}/lago-sync-ablation" target_abs
  target_abs="$(mkdir -p "$target" && cd "$target" && pwd)"
  rm -rf "$scratch" && mkdir -p "$scratch"
  git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$scratch"
  (
    cd "$scratch"
    git apply "$root/scripts/ablation/sdk-free-dynamodb.patch"
    export CARGO_TARGET_DIR="$target_abs/ablation"
    build
    for round in $(seq "${ROUNDS:-3}"); do
      for dynamodb in sdk bare; do
        local env=()
        [ "$dynamodb" = sdk ] || env=(--env BARE_DDB=1)
        echo "round $round, the three DynamoDB writes through the $dynamodb client:"
        "$CARGO_TARGET_DIR/release/lambda-bench" --events "${EVENTS:-500}" --inits 2 "${env[@]}" \
          | awk '/^[a-z-]+-webhook \(init/ { name = $1 }
                 /overhead beyond the emulators/ { print "  " name ": " $0 }'
      done
    done
  )
  rm -rf "$scratch"
}

size() { # LABEL FILE
  awk -v label="$1" -v bytes="$(stat -c %s "$2")" \
    'BEGIN { printf "%-24s %9d bytes  %5.2f MiB\n", label, bytes, bytes / 1048576 }'
}

for step in "${steps[@]}"; do
  case "$step" in
    hot-path)
      nice -n 10 cargo bench -p lago-sync --bench hot_path ;;
    lambda)
      build
      "$target/release/lambda-bench" --events "${EVENTS:-500}" --inits "${INITS:-20}" ;;
    cost)
      build
      "$target/release/lambda-bench" --cost --events "${COST_EVENTS:-10}" --contended "${CONTENDED:-3}" ;;
    sdk)
      build
      "$target/release/sdk-overhead" --calls "${CALLS:-3000}" ;;
    sizes)
      build
      echo "x86_64: $target/release/<binary> (release profile: opt-level s, LTO, 1 codegen unit, stripped)"
      for bin in "${functions[@]}" hello-lambda; do size "$bin" "$target/release/$bin"; done
      nice -n 10 cargo lambda build --release --arm64 --lambda-dir "$target/lambda" "${functions[@]/#/--package=}"
      echo "arm64: $target/lambda/<binary>/bootstrap (cargo lambda build --release --arm64)"
      for bin in "${functions[@]}"; do size "$bin" "$target/lambda/$bin/bootstrap"; done ;;
    ablation)
      ablation ;;
    *) echo "bench.sh: unknown step $step (hot-path, lambda, cost, sdk, sizes, ablation)" >&2; exit 2 ;;
  esac
done
