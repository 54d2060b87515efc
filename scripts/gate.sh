#!/usr/bin/env bash
# The promotion gate, after `dvc repro`: this work tree's recipe against the deployed model, and
# its holdout against the seasonal-naive baseline. Fetches the deployed model
# (scripts/deployed_model.sh), runs `python -m demandcast gate`, and puts its verdict
# (reports/gate.md) in the job summary.
#
# It fails closed: with no deployed model (no git tag $DEPLOYED_REF) there is nothing to compare
# with, and the candidate is refused, unless GATE_BOOTSTRAP=true says this is the first model on
# purpose: then it passes only if it beats the seasonal-naive baseline (`gate --bootstrap`).
#
# Exit 0 = passed, 4 = refused, 3 = refused because nothing is deployed (and no bootstrap), else
# an error. Output: gate (passed / refused / no-production).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need python

production="$(mktemp -d)"
trap 'rm -rf "$production"' EXIT
status=0
scripts/deployed_model.sh "$production" || status=$?
args=()
if ((status == 3)); then
  if [[ "${GATE_BOOTSTRAP:-false}" != true ]]; then
    output gate no-production
    mkdir -p reports
    cat >reports/gate.md <<MD
### Promotion gate: REFUSED ❌ (nothing deployed to compare with)

There is no deployed model (no git tag \`$DEPLOYED_REF\`), so the candidate cannot be compared with
one, and the gate does not promote a model on no comparison. For the first model of a
repository, run the Retrain workflow with **bootstrap** checked (\`GATE_BOOTSTRAP=true\`): the
model is then promoted only if it beats the seasonal-naive baseline on its holdout.
MD
    summary <reports/gate.md
    echo "error: no deployed model (git tag $DEPLOYED_REF) to compare with; refused (bootstrap a first model with GATE_BOOTSTRAP=true)" >&2
    exit 3
  fi
  echo "no deployed model: bootstrap (GATE_BOOTSTRAP=true), judged on the seasonal-naive baseline alone"
  args=(--bootstrap)
else
  ((status == 0)) || die "could not fetch the deployed model"
  args=(--production "$production/models/serving" --production-metrics "$production/reports/metrics.json")
fi

status=0
python -m demandcast gate "${args[@]}" || status=$?
case "$status" in
  0) output gate passed ;;
  4) output gate refused ;;
  *) die "the promotion gate failed (exit $status)" ;;
esac
summary <reports/gate.md
exit "$status"
