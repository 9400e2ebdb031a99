#!/usr/bin/env bash
# Installs everything the project needs, once: Node packages (npm ci) and a Python venv
# with the local AWS (moto). Re-runs an install only when its lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.snapkeeper-installed ] || [ "$(cat node_modules/.snapkeeper-installed)" != "$lock_sum" ]; then
  echo "setup: installing Node packages (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.snapkeeper-installed
fi

req_sum=$(sha256sum scripts/requirements-aws.txt | cut -d' ' -f1)
if [ ! -f .venv-aws/.snapkeeper-installed ] || [ "$(cat .venv-aws/.snapkeeper-installed)" != "$req_sum" ]; then
  echo "setup: creating the local AWS venv (.venv-aws) with moto..."
  python3 -m venv .venv-aws
  .venv-aws/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-aws.txt
  echo "$req_sum" > .venv-aws/.snapkeeper-installed
fi
