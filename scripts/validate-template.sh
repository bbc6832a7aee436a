#!/usr/bin/env bash
# Lint the SAM template offline: cfn-lint, then `sam validate --lint`.
# Needs no AWS account or credentials.
# Requires cfn-lint and the SAM CLI on PATH (or set CFN_LINT / SAM to their paths):
#   pip install aws-sam-cli cfn-lint
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="${1:-$root/template.yaml}"
cfn_lint="${CFN_LINT:-cfn-lint}"
sam="${SAM:-sam}"

for tool in "$cfn_lint" "$sam"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "validate-template: '$tool' not found; install with: pip install aws-sam-cli cfn-lint" >&2
    exit 127
  fi
done

# No telemetry upload; a region for the SAM translator. (SAM may still ask PyPI, at most
# weekly, whether a newer SAM CLI exists; a failure there is ignored.)
export SAM_CLI_TELEMETRY=0
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1

echo "== $("$cfn_lint" --version)"
"$cfn_lint" -- "$template"
echo "cfn-lint: no errors or warnings"

echo "== $("$sam" --version)"
"$sam" validate --lint --region us-east-1 --template-file "$template"
