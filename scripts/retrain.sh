#!/usr/bin/env bash
# Retrain and promote: pull -> update the data -> dvc repro -> promotion gate -> dvc push ->
# commit dvc.lock, params and metrics -> tag model-<version> -> push to $BASE_BRANCH (or a PR).
#
#   REASON       why (the commit message and the job summary); default "manual"
#   OPEN_PR      true: push a branch retrain/<version> and open a pull request (needs gh and
#                GH_TOKEN) instead of pushing to $BASE_BRANCH; deploy after merging
#   BASE_BRANCH  default main
#   APPEND_DAYS, LEVEL_SHIFT: see update_data.sh
#
# Outputs (when committed): promoted=true, model_version, tag, commit, and deploy=true when
# pushed to the base branch (deploy `commit` now); gate (from gate.sh) in any case.
# Exit 0 = committed, or nothing new; 1 = refused by the gate, or an error.
# Needs a clean work tree: everything the pipeline changes is committed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git python

reason="${REASON:-manual}"
base="${BASE_BRANCH:-main}"
[[ -z "$(git status --porcelain)" ]] || die "the work tree has uncommitted changes; retrain commits everything the pipeline changes, so commit or stash them first"

echo "::group::dvc pull (the current outputs, so dvc repro re-runs only what changed)"
dvc pull --allow-missing
echo "::endgroup::"
scripts/update_data.sh
echo "::group::dvc repro"
dvc repro
echo "::endgroup::"

version="$(json_get models/serving/metadata.json model_version)"
tag="model-$version"
if [[ -z "$(git status --porcelain)" ]]; then
  summary <<<"### Retrain: nothing new (model \`$version\` is already committed)"
  exit 0
fi
if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  die "tag $tag exists already: this model was committed before"
fi

status=0
scripts/gate.sh || status=$?
case "$status" in
  0)
    gate_line="$(grep -m1 -E '^Passed:' reports/gate.md)"
    verdict="$(cat reports/gate.md)"
    ;;
  3)
    gate_line="Promotion gate: no model deployed yet, nothing to compare."
    verdict="$gate_line"
    ;;
  4) die "the promotion gate refused model $version: not pushed, committed or deployed (reports/gate.md)" ;;
  *) die "the promotion gate failed (exit $status)" ;;
esac

echo "::group::dvc push"
dvc push
echo "::endgroup::"
git add -A
git commit -q -m "Retrain: model $version" -m "Reason: $reason" -m "$gate_line"
git tag -a "$tag" -m "Model $version" -m "Reason: $reason" -m "$gate_line"
commit="$(git rev-parse HEAD)"
if [[ "${OPEN_PR:-false}" == true ]]; then
  need gh
  branch="retrain/$version"
  git push -q origin "HEAD:refs/heads/$branch" "refs/tags/$tag"
  gh pr create --base "$base" --head "$branch" --title "Retrain: model $version" \
    --body "Reason: $reason"$'\n\n'"$verdict"$'\n\nAfter merging, deploy it: run the Deploy workflow with ref `'"$tag"'`.'
else
  git push -q origin "HEAD:refs/heads/$base" "refs/tags/$tag" ||
    die "push to $base failed (did $base move during the retrain? run it again)"
  output deploy true
fi
output promoted true
output model_version "$version"
output tag "$tag"
output commit "$commit"
summary <<<"### Retrain: model \`$version\` committed as ${commit:0:12} and tagged \`$tag\` (reason: $reason)"
