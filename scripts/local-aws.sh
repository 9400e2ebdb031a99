#!/usr/bin/env bash
# npm run local-aws: installs what is missing, then starts (or --stop, --status) the local
# AWS that stays up between commands (scripts/localAwsCommand.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
for argument in "$@"; do
  case "$argument" in -h|--help) exec npx --no-install tsx scripts/localAwsCommand.ts "$@" ;; esac
done
bash scripts/setup.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx --no-install tsx scripts/localAwsCommand.ts "$@"
