#!/usr/bin/env bash
# Deploys or removes the stack from a fresh clone, with nothing installed globally:
# installs what the project needs (scripts/setup.sh), then runs the project's own osls
# (node_modules/.bin/osls), never one on the PATH.
#   deploy: packages and lints the template (scripts/package.sh), then deploys exactly
#           that package.
#   remove: deletes the stack; the run-history table stays (DeletionPolicy Retain and
#           deletion protection): delete it yourself once its audit trail is not needed.
# Usage: npm run deploy -- [--stage dev] [--region us-east-1] [-- osls options...]
#        npm run remove -- [--stage dev] [--region us-east-1] [-- osls options...]
#        Add --dry-run to print the commands instead of running them; --help for all.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-}"
case "$action" in
  deploy | remove) shift ;;
  *) echo "usage: scripts/deploy.sh deploy|remove [--stage S] [--region R] [--dry-run] [osls options...] (or npm run deploy -- --help)" >&2; exit 2 ;;
esac

usage() {
  if [ "$action" = deploy ]; then
    echo "Deploys the stack from a fresh clone: installs what is missing (scripts/setup.sh), packages and lints the template (npm run package), then deploys exactly that package with the project's own osls (node_modules/.bin/osls)."
  else
    echo "Removes the stack with the project's own osls, after installing what is missing. The run-history table snapkeeper-<stage>-runs stays (DeletionPolicy Retain and deletion protection): delete it yourself once its audit trail is not needed."
  fi
  cat <<EOF

Usage: npm run ${action} -- [options] [-- osls options...]

Options:
  -s, --stage <stage>          the stage (default dev): 1-64 letters, digits, - or _; it names the stack, its table and the snapkeeper:deployment tag
  -r, --region <region>        the region (default us-east-1)
      --dry-run                print each command instead of running it
      --aws-profile <profile>  passed to osls, as are --verbose, --force and --conceal
  -h, --help                   show this help and exit

Any other osls option goes after a second --. --help runs nothing.

Examples:
  npm run ${action} -- --stage prod --region eu-west-1
  npm run ${action} -- --stage prod --aws-profile ops --dry-run
  npm run ${action} -- --stage dev -- --param="alarmEmail=ops@example.com"
EOF
}
# One line on stderr naming what is wrong, exit code 2, before anything runs.
bad() {
  echo "${action}: $1 (see npm run ${action} -- --help)" >&2
  exit 2
}
value() {
  if [ $# -lt 2 ] || [[ "$2" == -* ]]; then bad "option $1 needs a value"; fi
}

# The same defaults as serverless.yml (provider.stage, provider.region).
stage=dev
region=us-east-1
dry_run=false
rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --stage | -s) value "$@"; stage="$2"; shift 2 ;;
    --stage=*) stage="${1#*=}"; shift ;;
    --region | -r) value "$@"; region="$2"; shift 2 ;;
    --region=*) region="${1#*=}"; shift ;;
    --dry-run) dry_run=true; shift ;;
    --aws-profile) value "$@"; rest+=("$1" "$2"); shift 2 ;;
    --aws-profile=* | --verbose | --force | --conceal) rest+=("$1"); shift ;;
    --) shift; rest+=("$@"); break ;;
    -*) bad "unknown option ${1%%=*}; other osls options go after a second --" ;;
    *) bad "unexpected argument \"$1\"" ;;
  esac
done
if ! [[ "$stage" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  bad "--stage ${stage}: use 1-64 letters, digits, - or _ (it names the stack, its table and the snapkeeper:deployment tag)"
fi
if ! [[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
  bad "--region ${region}: not an AWS region name (e.g. eu-west-1)"
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
