#!/usr/bin/env bash
# Packages the stack without credentials (osls + serverless-esbuild), validates the
# CloudFormation template with cfn-lint and lints every role's policy with parliament
# (condition keys an action does not support, malformed statements), failing on errors.
# Usage: npm run package [-- --stage prod --region eu-west-1]; npm run package -- --help
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Packages the stack without AWS credentials (osls and serverless-esbuild into .serverless/), validates the CloudFormation template and the target-account role with cfn-lint, and lints every role's policy with parliament; fails on an error of either.

Usage: npm run package -- [options]

Options:
  --stage <stage>              the stage to package (default ci): 1-64 letters, digits, - or _
  --region <region>            the region to package for (default us-east-1)
  -h, --help                   show this help and exit

Installs what is missing first (scripts/setup.sh). --help runs nothing.

Examples:
  npm run package
  npm run package -- --stage prod --region eu-west-1
EOF
}
# One line on stderr naming what is wrong, exit code 2, before anything runs.
bad() {
  echo "package: $1 (see npm run package -- --help)" >&2
  exit 2
}
value() {
  if [ $# -lt 2 ] || [[ "$2" == -* ]]; then bad "option $1 needs a value"; fi
}

stage=ci
region=us-east-1
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --stage) value "$@"; stage="$2"; shift 2 ;;
    --stage=*) stage="${1#*=}"; shift ;;
    --region) value "$@"; region="$2"; shift 2 ;;
    --region=*) region="${1#*=}"; shift ;;
    -*) bad "unknown option ${1%%=*}" ;;
    *) bad "unexpected argument \"$1\"" ;;
  esac
done
if ! [[ "$stage" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  bad "--stage ${stage}: use 1-64 letters, digits, - or _"
fi
if ! [[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
  bad "--region ${region}: not an AWS region name (e.g. eu-west-1)"
fi

bash scripts/setup.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
npx --no-install osls package --stage "$stage" --region "$region"
.venv-aws/bin/cfn-lint --non-zero-exit-code error .serverless/cloudformation-template-update-stack.json
# The role to create in each target account of a fan-out deployment.
.venv-aws/bin/cfn-lint --non-zero-exit-code error deploy/target-account-role.yml
# Every role policy, resolved, through parliament: MEDIUM and above fail (known false
# positives are listed with their reasons in scripts/parliament.yaml).
npx --no-install tsx test/iam/writePolicies.ts .serverless/iam-policies >/dev/null
.venv-aws/bin/parliament --directory .serverless/iam-policies --include_policy_extension .json \
  --config scripts/parliament.yaml --minimum_severity MEDIUM
echo "package: .serverless/cloudformation-template-update-stack.json (stage $stage, region $region) passes cfn-lint and parliament"
