#!/usr/bin/env bash
# Installs the Python-packaged tools the tests and the local run need into a project-local
# virtualenv (.local/venv), once, and prints the directory to put on PATH.
#   moto[server]  DynamoDB and Secrets Manager emulator
#   cargo-lambda  `cargo lambda watch` (Lambda Runtime API) and arm64 builds (brings Zig)
#   cfn-lint, aws-sam-cli  template checks
# Usage: export PATH="$(scripts/tools.sh [group...])/bin:$PATH"   groups: test (default), local, all
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LAGO_SYNC_VENV:-$root/.local/venv}"
groups=("${@:-test}")

packages=()
for group in "${groups[@]}"; do
  case "$group" in
    test) packages+=("moto[server]==5.*" "cfn-lint==1.*" "aws-sam-cli==1.*") ;;
    local) packages+=("moto[server]==5.*" "cargo-lambda==1.*") ;;
    all) packages+=("moto[server]==5.*" "cfn-lint==1.*" "aws-sam-cli==1.*" "cargo-lambda==1.*") ;;
    *) echo "tools.sh: unknown group $group (test, local, all)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
stamp="$venv/.installed-$(printf '%s\n' "${packages[@]}" | sort -u | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2
  touch "$stamp"
fi
echo "$venv"
