#!/usr/bin/env bash
# Runs the whole sync locally: moto server (DynamoDB + Secrets Manager, with the table and
# secret created), the Salesforce stand-in (or a real org when SALESFORCE_URL,
# SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are set), the Lago API stand-in, which
# the functions ask what a payload does not tell (or a real Lago when LAGO_API_URL and
# LAGO_API_KEY are set), and the functions behind `cargo lambda watch`: the four webhook
# functions and the outbound-message one ("Bill with Lago"). Prints their URLs and the HMAC
# key; Ctrl-C stops all.
#
# Ports: MOTO_PORT (5000), STANDIN_PORT (8788), LAGO_PORT (8789), INVOKE_PORT (9000).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$(scripts/tools.sh local)"
export PATH="$venv/bin:$PATH"

moto_port="${MOTO_PORT:-5000}"
standin_port="${STANDIN_PORT:-8788}"
lago_port="${LAGO_PORT:-8789}"
invoke_port="${INVOKE_PORT:-9000}"
hmac_key="${LAGO_HMAC_KEY:-local-hmac-key-5f1c2d3e-4b5a-6978}"
# "Bill with Lago": the outbound messages' path token and org (samples/ uses both).
outbound_token="${SALESFORCE_OUTBOUND_TOKEN:-local-outbound-token-7d2e9a41c85b6f30}"
org_id="${SALESFORCE_ORG_ID:-00D000000000001AAA}"
table="lago-salesforce-sync-local"
secret="lago-salesforce-sync-local"
logs="$root/.local/logs"
mkdir -p "$logs"

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop EXIT INT TERM

wait_for() { # url what: any HTTP answer, even an error status, means it is up
  for _ in $(seq 1 240); do
    if python3 - "$1" 2>/dev/null <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
PY
    then return 0; fi
    sleep 0.5
  done
  echo "$2 did not start; see $logs" >&2
  exit 1
}

echo "building the functions and the stand-in (first time: several minutes)..."
cargo build --workspace --bins --quiet
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

moto_server -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$moto_port/moto-api/" "moto"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing

if [ -z "${SALESFORCE_URL:-}" ]; then
  SALESFORCE_URL="http://127.0.0.1:$standin_port"
  SALESFORCE_CLIENT_ID=local-client-id
  SALESFORCE_CLIENT_SECRET=local-client-secret
  "$target_dir/debug/salesforce-standin" \
    --port "$standin_port" --client-id "$SALESFORCE_CLIENT_ID" --client-secret "$SALESFORCE_CLIENT_SECRET" \
    >"$logs/salesforce-standin.log" 2>&1 &
  pids+=($!)
  wait_for "$SALESFORCE_URL/__standin/stats" "the Salesforce stand-in"
  target="Salesforce stand-in at $SALESFORCE_URL (records: $SALESFORCE_URL/__standin/records)"
else
  : "${SALESFORCE_CLIENT_ID:?set SALESFORCE_CLIENT_ID with SALESFORCE_URL}"
  : "${SALESFORCE_CLIENT_SECRET:?set SALESFORCE_CLIENT_SECRET with SALESFORCE_URL}"
  target="Salesforce org at $SALESFORCE_URL"
fi

if [ -z "${LAGO_API_URL:-}" ]; then
  LAGO_API_URL="http://127.0.0.1:$lago_port"
  LAGO_API_KEY=local-lago-api-key
  "$target_dir/debug/lago-standin" --port "$lago_port" --api-key "$LAGO_API_KEY" \
    --customers 0 --subscriptions 0 --invoices 0 --credit-notes 0 \
    >"$logs/lago-standin.log" 2>&1 &
  pids+=($!)
  wait_for "$LAGO_API_URL/api/v1/customers" "the Lago API stand-in"
else
  : "${LAGO_API_KEY:?set LAGO_API_KEY with LAGO_API_URL}"
fi

# The table with the schema of template.yaml, and the secret of contract §2.
"$target_dir/debug/lago-sync" --table "$table" create-table
"$venv/bin/python" - "$secret" "$hmac_key" "$SALESFORCE_CLIENT_ID" "$SALESFORCE_CLIENT_SECRET" "$LAGO_API_KEY" "$outbound_token" <<'PY'
import json, sys
import boto3
secret, hmac_key, client_id, client_secret, lago_api_key, outbound_token = sys.argv[1:]
value = json.dumps({"lago_hmac_key": hmac_key, "salesforce_client_id": client_id,
                    "salesforce_client_secret": client_secret, "lago_api_key": lago_api_key,
                    "salesforce_outbound_token": outbound_token})
sm = boto3.client("secretsmanager")
try:
    sm.create_secret(Name=secret, SecretString=value)
except sm.exceptions.ResourceExistsException:
    sm.put_secret_value(SecretId=secret, SecretString=value)
PY

cargo lambda watch --invoke-port "$invoke_port" \
  --env-var "SECRET_ID=$secret" --env-var "IDEMPOTENCY_TABLE=$table" \
  --env-var "SALESFORCE_URL=$SALESFORCE_URL" --env-var "SALESFORCE_API_VERSION=${SALESFORCE_API_VERSION:-62.0}" \
  --env-var "LAGO_API_URL=$LAGO_API_URL" --env-var "SALESFORCE_ORG_ID=$org_id" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" --env-var "AWS_REGION=$AWS_REGION" \
  --env-var "AWS_ACCESS_KEY_ID=testing" --env-var "AWS_SECRET_ACCESS_KEY=testing" --env-var "RUST_LOG=${RUST_LOG:-info}" \
  >"$logs/functions.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$invoke_port/lambda-url/customer-webhook/" "cargo lambda watch"

cat <<INFO

lago-salesforce-sync is running locally.
  Webhook URLs (register them in a self-hosted Lago with signature HMAC):
    http://localhost:$invoke_port/lambda-url/customer-webhook/
    http://localhost:$invoke_port/lambda-url/subscription-webhook/
    http://localhost:$invoke_port/lambda-url/invoice-webhook/
    http://localhost:$invoke_port/lambda-url/credit-note-webhook/
  Salesforce outbound messages ("Bill with Lago", org $org_id):
    http://localhost:$invoke_port/lambda-url/salesforce-account/$outbound_token
  HMAC key: $hmac_key
  Target: $target
  Lago API: $LAGO_API_URL
  AWS emulator: $AWS_ENDPOINT_URL (table $table, secret $secret)
  Logs: $logs
  Try:  scripts/send-webhook.py http://localhost:$invoke_port/lambda-url/invoice-webhook/ --type invoice.created
        curl -s -H 'Content-Type: text/xml' --data-binary @samples/salesforce-account.outbound.xml http://localhost:$invoke_port/lambda-url/salesforce-account/$outbound_token
  Stored events (queued, failed, dead), with the emulator's settings:
    AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing $target_dir/debug/lago-sync --table $table list
Ctrl-C stops everything.
INFO
wait "${pids[@]}"
