#!/usr/bin/env bash
# Fetch the deployed model: models/ (serving and eval bundles) and reports/metrics.json as of
# the commit that the git tag $DEPLOYED_REF points to (default `deployed`, moved by
# scripts/deploy.sh after a verified deployment), from the DVC remote. Needs the remote's
# credentials (see configure_remote.sh).
#
#   scripts/deployed_model.sh DEST    -> DEST/models/{serving,eval}/, DEST/reports/metrics.json
#
# Outputs: model_version, trained_through, commit. Exits 3 when nothing is deployed yet.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git
[[ $# -eq 1 ]] || die "usage: $0 DEST"
dest="$1"

commit="$(deployed_commit)"
if [[ -z "$commit" ]]; then
  echo "no deployed model: the git tag '$DEPLOYED_REF' does not exist (yet)" >&2
  exit 3
fi
config=()
if [[ -f .dvc/config.local ]]; then config=(--config .dvc/config.local); fi  # this clone's url/endpoint
rm -rf "$dest/models"
mkdir -p "$dest/reports"
dvc get -q "${config[@]}" --rev "$commit" . models -o "$dest/models"
git show "$commit:reports/metrics.json" >"$dest/reports/metrics.json"

version="$(json_get "$dest/models/serving/metadata.json" model_version)"
through="$(json_get "$dest/models/serving/metadata.json" trained_through)"
echo "deployed model $version (trained through $through) from $DEPLOYED_REF = ${commit:0:12}"
output model_version "$version"
output trained_through "$through"
output commit "$commit"
