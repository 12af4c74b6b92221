#!/usr/bin/env bash
# Conformance of the sandbox with real clients: HubSpot's official Python SDK
# (hubspot-api-client, installed into a virtual environment) and plain HTTP
# for Ivoris. Usage: tests/conformance/run.sh [PATH-TO-BINARY]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/debug/ivoris-hubspot-sync}
venv=${CONFORMANCE_VENV:-$root/target/conformance-venv}
work=$(mktemp -d)
sandbox_pid=""

cleanup() {
  local rc=$?
  if [ -n "$sandbox_pid" ]; then
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check hubspot-api-client==12.0.0

# Port 0: the sandbox picks free ports and writes them into the settings file.
"$bin" --data-dir "$work" sandbox --size small --seed 7 --port 0 --search-lag-ms 800 \
  --write-config "$work/config.toml" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/config.toml" ] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log"; exit 1; }
  sleep 0.1
done
[ -s "$work/config.toml" ] || { echo "sandbox did not start"; cat "$work/sandbox.log"; exit 1; }

hubspot_url=$("$venv/bin/python" -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb"))["hubspot"]["base_url"])' "$work/config.toml")
status=0
"$venv/bin/python" "$here/ivoris_http.py" "$work/config.toml" sandbox-password sandbox-api-key || status=1
"$venv/bin/python" "$here/hubspot_sdk.py" "$hubspot_url" sandbox-hubspot-token || status=1
exit $status
