#!/usr/bin/env bash
# Installs the tools the tests and the local run need, once, and prints the directory to put
# on PATH (its bin/ holds every tool):
#   moto[server]  DynamoDB and Secrets Manager emulator                    (PyPI, in .local/venv)
#   cargo-lambda  `cargo lambda watch` (Lambda Runtime API) and arm64 builds (brings Zig)
#   cfn-lint, aws-sam-cli  template checks
#   sf            the Salesforce CLI (@salesforce/cli from npm, pinned by
#                 salesforce/tooling/package-lock.json, in .local/npm): the metadata
#                 conversion test runs `sf project convert source`
# Usage: export PATH="$(scripts/tools.sh [group...])/bin:$PATH"   groups: test (default), local, sf, all
# LAGO_SYNC_VENV and LAGO_SYNC_NPM move the two install folders (.ci/run keeps them in a
# cache outside the clone). An install is skipped while its stamp matches, so re-runs work
# offline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LAGO_SYNC_VENV:-$root/.local/venv}"
npm_prefix="${LAGO_SYNC_NPM:-$root/.local/npm}"
groups=("${@:-test}")

packages=()
want_sf=false
for group in "${groups[@]}"; do
  case "$group" in
    test) packages+=("moto[server]==5.*" "cfn-lint==1.*" "aws-sam-cli==1.*"); want_sf=true ;;
    local) packages+=("moto[server]==5.*" "cargo-lambda==1.*") ;;
    sf) want_sf=true ;;
    all) packages+=("moto[server]==5.*" "cfn-lint==1.*" "aws-sam-cli==1.*" "cargo-lambda==1.*"); want_sf=true ;;
    *) echo "tools.sh: unknown group $group (test, local, sf, all)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "${#packages[@]}" -gt 0 ]; then
  stamp="$venv/.installed-$(printf '%s\n' "${packages[@]}" | sort -u | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2
    touch "$stamp"
  fi
fi

# The Salesforce CLI. salesforce/tooling pins @salesforce/cli 2.146.3, the last release that
# runs on Node.js 20 (later ones require 22), and holds undici at 6 through npm `overrides`:
# the jsforce it brings asks for undici 8, which needs Node.js 22 and fails to load on 20.
# undici 6 runs on both, so the one lockfile serves Node.js 20 and 22 alike. The install is
# redone when the lockfile or the Node.js major version changes.
install_sf() {
  local tooling="$root/salesforce/tooling" node_major stamp
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "tools.sh: the Salesforce CLI needs Node.js 20 or later with npm (apt-get install nodejs npm, or nodejs.org)" >&2
    exit 1
  fi
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt 20 ]; then
    echo "tools.sh: Node.js $(node --version) is older than 20; the Salesforce CLI may not run" >&2
  fi
  stamp="$npm_prefix/.installed-$( (cat "$tooling/package.json" "$tooling/package-lock.json"; echo "node $node_major") | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ ! -x "$npm_prefix/node_modules/.bin/sf" ]; then
    mkdir -p "$npm_prefix"
    rm -f "$npm_prefix"/.installed-*
    cp "$tooling/package.json" "$tooling/package-lock.json" "$tooling/.npmrc" "$npm_prefix/"
    (cd "$npm_prefix" && npm ci --no-audit --no-fund --loglevel=error) >&2
    touch "$stamp"
  fi
  # One PATH entry for every tool: the venv's bin.
  ln -sfn "$npm_prefix/node_modules/.bin/sf" "$venv/bin/sf"
}
if [ "$want_sf" = true ]; then
  install_sf
fi

echo "$venv"
