#!/usr/bin/env bash
# Deploys or removes the stack from a fresh clone, with nothing installed globally:
# installs what the project needs (scripts/setup.sh), then runs the project's own osls
# (node_modules/.bin/osls), never one on the PATH.
#   deploy: packages and lints the template (scripts/package.sh), then deploys exactly
#           that package.
#   remove: deletes the stack; the run-history table stays (DeletionPolicy Retain and
#           deletion protection): delete it yourself once its audit trail is not needed.
# Usage: npm run deploy -- [--stage dev] [--region us-east-1] [osls options...]
#        npm run remove -- [--stage dev] [--region us-east-1] [osls options...]
#        Add --dry-run to print the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-}"
case "$action" in
  deploy | remove) shift ;;
  *) echo "usage: scripts/deploy.sh deploy|remove [--stage S] [--region R] [--dry-run] [osls options...]" >&2; exit 2 ;;
esac

# The same defaults as serverless.yml (provider.stage, provider.region).
stage=dev
region=us-east-1
dry_run=false
rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage | -s) stage="${2:?--stage needs a value}"; shift 2 ;;
    --stage=*) stage="${1#*=}"; shift ;;
    --region | -r) region="${2:?--region needs a value}"; shift 2 ;;
    --region=*) region="${1#*=}"; shift ;;
    --dry-run) dry_run=true; shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
if ! [[ "$stage" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  echo "--stage ${stage}: use 1-64 letters, digits, - or _ (it names the stack, its table and the snapkeeper:deployment tag)" >&2
  exit 2
fi
if ! [[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
  echo "--region ${region}: not an AWS region name (e.g. eu-west-1)" >&2
  exit 2
fi

run() {
  echo "+ $*"
  if [ "$dry_run" = false ]; then "$@"; fi
}

export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
osls=node_modules/.bin/osls
run bash scripts/setup.sh
if [ "$action" = deploy ]; then
  echo "deploy: stage ${stage}, region ${region}"
  run bash scripts/package.sh --stage "$stage" --region "$region"
  run "$osls" deploy --stage "$stage" --region "$region" --package .serverless ${rest[@]+"${rest[@]}"}
else
  echo "remove: stage ${stage}, region ${region}; the run-history table snapkeeper-${stage}-runs is kept"
  run "$osls" remove --stage "$stage" --region "$region" ${rest[@]+"${rest[@]}"}
fi
