#!/usr/bin/env bash
# Packages the stack without credentials (osls + serverless-esbuild), validates the
# CloudFormation template with cfn-lint and lints every role's policy with parliament
# (condition keys an action does not support, malformed statements), failing on errors.
# Usage: npm run package [-- --stage prod --region eu-west-1]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
stage=ci
region=us-east-1
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --region) region="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
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
