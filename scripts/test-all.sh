#!/usr/bin/env bash
# The whole suite: installs what it needs, builds, checks, runs unit and integration tests, and ends
# with one line "N passed, N failed". Integration tests start the real components they need
# (sshd, libvirtd + QEMU, ipmi_sim, Prometheus) themselves and stop them afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh || exit 1
npm ci --no-audit --no-fund || exit 1
npm run build || exit 1
npm run typecheck || exit 1
npm run lint || exit 1

mkdir -p test-results
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json || status=$?
npx tsx scripts/summarize-tests.ts test-results/vitest.json || status=1
exit $status
