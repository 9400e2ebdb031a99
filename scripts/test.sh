#!/usr/bin/env bash
# Every test: installs what is missing, then typecheck, lint, and the whole vitest suite
# (unit tests, and integration tests against a local AWS that the suite starts itself).
# Ends with a plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

status=0
echo "== typecheck (tsc)"
npx --no-install tsc --noEmit -p tsconfig.json || status=1
echo "== lint (biome)"
npx --no-install biome check . || status=1
echo "== import direction (dependency-cruiser, .dependency-cruiser.cjs)"
npx --no-install depcruise --config .dependency-cruiser.cjs --output-type err lib functions harness scripts || {
  echo "an import goes against the layer rules (docs/architecture.md, 'The layers and their rules'):"
  echo "the rule named above says which; import through a port in lib/jobs/ports.ts, or move the code down a layer"
  status=1
}
echo "== package the stack and lint its template (osls, cfn-lint)"
bash scripts/package.sh >/dev/null || { echo "packaging failed"; status=1; }
echo "== tests (vitest)"
rm -rf reports/vitest.json reports/iam-calls
npx --no-install vitest run "$@" || status=1
# The IAM simulation over every AWS call the integration tests and the demo recorded
# (reports/iam-calls), against the packaged roles; counted as one more test below.
echo "== IAM simulation (test/iam)"
iam=0
if [ $# -eq 0 ] || [ -d reports/iam-calls ]; then
  npx --no-install tsx test/iam/run.ts | tail -n 40 || iam=1
else
  echo "skipped (no integration tests ran)"
  iam=2
fi
[ $iam -eq 1 ] && status=1

node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0;
  try {
    const r = JSON.parse(fs.readFileSync("reports/vitest.json", "utf8"));
    passed = r.numPassedTests; failed = r.numFailedTests + (r.numFailedTestSuites || 0);
    skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
  } catch { failed = 1; }
  if (process.argv[2] === "0") passed += 1;
  if (process.argv[2] === "1") failed += 1;
  if (process.argv[1] === "1" && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
' "$status" "$iam"
exit $status
