#!/usr/bin/env bash
# The demo: installs what is missing, starts the local AWS and runs scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx --no-install tsx scripts/demo.ts "$@"
