#!/usr/bin/env bash
# The promotion gate, after `dvc repro`: this work tree's recipe against the deployed model.
# Fetches the deployed model (scripts/deployed_model.sh), runs `python -m demandcast gate`,
# and puts its verdict (reports/gate.md) in the job summary.
#
# Exit 0 = passed, 4 = refused, 3 = nothing deployed yet (nothing to compare), else an error.
# Output: gate (passed / refused / no-production).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need python

production="$(mktemp -d)"
trap 'rm -rf "$production"' EXIT
status=0
scripts/deployed_model.sh "$production" || status=$?
if ((status == 3)); then
  output gate no-production
  summary <<<"### Promotion gate: no model deployed yet (no git tag \`$DEPLOYED_REF\`), nothing to compare"
  exit 3
fi
((status == 0)) || die "could not fetch the deployed model"

status=0
python -m demandcast gate --production "$production/models/serving" \
  --production-metrics "$production/reports/metrics.json" || status=$?
case "$status" in
  0) output gate passed ;;
  4) output gate refused ;;
  *) die "the promotion gate failed (exit $status)" ;;
esac
summary <reports/gate.md
exit "$status"
