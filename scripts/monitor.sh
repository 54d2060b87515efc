#!/usr/bin/env bash
# The daily monitor: the deployed model judged on the newest data, without retraining.
#   1. the deployed model (git tag $DEPLOYED_REF) -> models/ and reports/metrics.json
#   2. the newest data (scripts/update_data.sh)
#   3. the drift stage alone: dvc repro --single-item drift -> reports/drift.{json,html}
# Outputs: drift_detected (true/false), reasons (one line), model_version.
# Exit 0 whether or not drift is detected (an error exits non-zero).
# On a laptop this replaces models/, reports/metrics.json and params.yaml (synthetic feed) in
# the work tree; go back with: git checkout -- params.yaml reports dvc.lock && dvc checkout
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git python

if [[ -z "$(deployed_commit)" ]]; then
  output drift_detected false
  summary <<<"### Drift monitor: nothing deployed yet (no git tag \`$DEPLOYED_REF\`)"
  exit 0
fi

fetched="$(mktemp -d)"
trap 'rm -rf "$fetched"' EXIT
scripts/deployed_model.sh "$fetched"
rm -rf models
mv "$fetched/models" models
cp "$fetched/reports/metrics.json" reports/metrics.json

scripts/update_data.sh
dvc repro --single-item drift

detected="$(json_get reports/drift.json drift_detected)"
reasons="$(python -c 'import json; print("; ".join(" ".join(r.split()) for r in json.load(open("reports/drift.json"))["reasons"]))')"
version="$(json_get models/serving/metadata.json model_version)"
output drift_detected "$detected"
output reasons "$reasons"
output model_version "$version"

python - <<'PY' | summary
import json

r = json.load(open("reports/drift.json"))
cur, concept = r["current"], r["concept_drift"]
print(f"### Drift monitor: {'DRIFT DETECTED' if r['drift_detected'] else 'no drift'}")
print()
print(f"Deployed model `{r['model']['version']}` (trained through {r['model']['trained_through']}),")
print(f"judged on {cur['rows']} rows, {cur['start']} .. {cur['end']} ({cur['source']}).")
print()
print(f"- data drift: {r['data_drift']['share_drifted']:.0%} of the monitored columns "
      f"(flag at {r['data_drift']['threshold']:.0%})")
print(f"- concept drift: SMAPE {concept['smape']:.2f} vs {concept['baseline_smape']:.2f} "
      f"at evaluation ({concept['relative_change']:+.1%}, flag above +{concept['threshold']:.0%})")
print(f"- new series: {r['new_series']}")
for reason in r["reasons"]:
    print(f"- **{reason}**")
for note in r["notes"]:
    print(f"- note: {note}")
print()
print("The full report is the `drift-report` artifact (reports/drift.html).")
PY
if [[ "$detected" == true ]]; then
  echo "drift detected: $reasons"
else
  echo "no drift"
fi
