#!/usr/bin/env bash
# Retrain and promote, in two steps so that only the second one holds a token that can push:
#
#   scripts/retrain.sh build        pull -> update the data -> dvc repro -> promotion gate ->
#                                   dvc push -> commit dvc.lock, params and reports and tag
#                                   model-<version>, here only -> dvc gc of the local cache
#   scripts/retrain.sh publish      push that commit and tag to $BASE_BRANCH in one atomic push;
#                                   with OPEN_PR=true, or when $BASE_BRANCH refuses the push (a
#                                   protected branch), push a branch retrain/<version> with the
#                                   tag and open a pull request instead
#   scripts/retrain.sh unpublished  after a failure between the two: say which model is in the
#                                   DVC remote with no commit on origin that refers to it
#   scripts/retrain.sh [all]        build, then publish (on a laptop: `make retrain`)
#
#   REASON          why (the commit message, the tag and the job summary); default "manual"
#   GATE_BOOTSTRAP  true: nothing is deployed yet and this is the first model (see gate.sh)
#   OPEN_PR         true: a pull request instead of a push to $BASE_BRANCH; deploy after merging
#   BASE_BRANCH     default main
#   GIT_PUSH_TOKEN  what git pushes with over HTTPS: a GitHub App's installation token (a ruleset
#                   can let the App bypass the protection of main), or GITHUB_TOKEN. Only
#                   publish sees it, through a credential helper (lib.sh: token_git); unset on a
#                   laptop: your own git credentials
#   GH_TOKEN        what gh opens the pull request with
#   TOKEN_KIND      app | github: GitHub runs no workflow on a pull request opened with
#                   GITHUB_TOKEN, so with `github` the PR says how to get its CI to run
#   APPEND_DAYS, LEVEL_SHIFT: see update_data.sh
#
# Outputs. build: gate (gate.sh), and committed=true, model_version, tag, commit (or
# committed=false: nothing new). publish: published=true, promoted=true, and deploy=true when
# pushed to the base branch (deploy `tag` now) or pull_request=<url>.
# Exit 0 = done, or nothing new; 1 = refused by the gate, a push that failed, or an error.
# build needs a clean work tree: it commits everything the pipeline changes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

reason="${REASON:-manual}"
base="${BASE_BRANCH:-main}"
built=false

cmd_build() {
  need dvc git python
  [[ -z "$(git status --porcelain)" ]] || die "the work tree has uncommitted changes; retrain commits everything the pipeline changes, so commit or stash them first"

  echo "::group::dvc pull (the current outputs, so dvc repro re-runs only what changed)"
  dvc pull --allow-missing
  echo "::endgroup::"
  scripts/update_data.sh
  echo "::group::dvc repro"
  dvc repro
  echo "::endgroup::"

  local version tag status gate_line
  version="$(json_get models/serving/metadata.json model_version)"
  tag="model-$version"
  if [[ -z "$(git status --porcelain)" ]]; then
    output committed false
    summary <<<"### Retrain: nothing new (model \`$version\` is already committed)"
    return 0
  fi
  if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
    die "tag $tag exists already: this model was committed before"
  fi

  status=0
  scripts/gate.sh || status=$?
  case "$status" in
    0) gate_line="$(grep -m1 -E '^Passed:' reports/gate.md)" ;;
    3) die "the promotion gate refused model $version: no model is deployed to compare it with (fail closed); not pushed, committed or deployed. For the first model, retrain with GATE_BOOTSTRAP=true (the Retrain workflow's bootstrap input)" ;;
    4) die "the promotion gate refused model $version: not pushed, committed or deployed (reports/gate.md)" ;;
    *) die "the promotion gate failed (exit $status)" ;;
  esac

  echo "::group::dvc push"
  dvc push
  echo "::endgroup::"
  git add -A
  git commit -q -m "Retrain: model $version" -m "Reason: $reason" -m "$gate_line"
  git tag -a "$tag" -m "Model $version" -m "Reason: $reason" -m "$gate_line"
  built=true
  output committed true
  output model_version "$version"
  output tag "$tag"
  output commit "$(git rev-parse HEAD)"
  # The local cache keeps only what this commit uses (the CI cache saves it; it would grow
  # by a model and a feature table per retrain otherwise). The remote is never collected here.
  dvc gc --workspace --force -q
  summary <<<"### Retrain: model \`$version\` passed the gate, is in the DVC remote, committed as $(git rev-parse --short=12 HEAD) and tagged \`$tag\` (reason: $reason)"
}

new_tag() {  # the model-* tag of HEAD, when build made it (nothing otherwise)
  git tag --points-at HEAD --list 'model-*' | head -n 1
}

cmd_unpublished() {
  local tag short message
  tag="$(new_tag)"
  [[ -n "$tag" ]] || return 0
  short="$(git rev-parse --short=12 HEAD)"
  message="model ${tag#model-} is in the DVC remote (dvc push ran), but no commit on origin refers to it: its commit $short and tag $tag exist only on this machine, and nothing was deployed. Re-run the retrain, or push the commit and the tag by hand; the remote's objects that no branch or tag refers to can be removed with dvc gc --cloud (with --all-branches --all-tags)"
  annotate error "$message"
  summary <<<"### Retrain: NOT published"$'\n\n'"$message."
}

cmd_publish() {
  need git
  local tag version commit err
  tag="$(new_tag)"
  if [[ -z "$tag" ]]; then
    echo "nothing to publish: HEAD is not a commit that build made and tagged"
    return 0
  fi
  if [[ -n "$(token_git ls-remote --tags origin "refs/tags/$tag")" ]]; then
    echo "nothing to publish: $tag is on origin already"
    return 0
  fi
  version="${tag#model-}"
  commit="$(git rev-parse HEAD)"
  reason="$(git log -1 --format=%B | sed -n 's/^Reason: //p' | head -n 1)"  # build wrote it
  reason="${reason:-${REASON:-manual}}"
  if [[ "${OPEN_PR:-false}" != true ]]; then
    if err="$(token_git push -q --atomic origin "HEAD:refs/heads/$base" "refs/tags/$tag" 2>&1)"; then
      output published true
      output promoted true
      output deploy true
      summary <<<"### Retrain: model \`$version\` pushed to \`$base\` as ${commit:0:12} with tag \`$tag\`; deploying it next"
      return 0
    fi
    echo "$err" >&2
    annotate warning "the push of $tag to $base was refused ($(grep -m1 -iE 'error|refused|rejected|GH0' <<<"$err" || head -n 1 <<<"$err")): opening a pull request instead. To push to a protected $base, give the retrain GitHub App a bypass (README)"
  fi
  open_pull_request "$tag" "$version"
}

open_pull_request() {  # open_pull_request TAG VERSION
  need gh
  local tag="$1" version="$2" branch body url
  branch="retrain/$version"
  if ! token_git push -q --atomic origin "HEAD:refs/heads/$branch" "refs/tags/$tag"; then
    cmd_unpublished
    die "could not push the branch $branch either: see the error above"
  fi
  body="Reason: $reason"$'\n\n'"$(cat reports/gate.md)"$'\n\n'"After merging, deploy it: run the Deploy workflow with ref \`$tag\`."
  if [[ "${TOKEN_KIND:-github}" != app ]]; then
    body+=$'\n\n'"> [!NOTE]"$'\n'"> Opened with \`GITHUB_TOKEN\`: GitHub runs no workflow on it, so CI has not run and required checks will not report. Close and reopen this pull request to run CI, or configure the retrain GitHub App (README: \"Run the loop on your repository\") so that its pull requests run CI."
  fi
  if ! url="$(gh pr create --base "$base" --head "$branch" --title "Retrain: model $version" --body "$body")"; then
    local compare="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-OWNER/REPO}/compare/$base...$branch"
    die "the branch $branch (with the tag $tag) is pushed, but the pull request could not be opened. With GITHUB_TOKEN, enable Settings -> Actions -> General -> 'Allow GitHub Actions to create and approve pull requests', or configure the retrain GitHub App; open it by hand: $compare"
  fi
  output published true
  output promoted true
  output pull_request "$url"
  summary <<<"### Retrain: model \`$version\` is in the pull request $url (branch \`$branch\`, tag \`$tag\`); deploy it after merging"
  if [[ "${TOKEN_KIND:-github}" != app ]]; then
    annotate warning "$url was opened with GITHUB_TOKEN, so CI does not run on it: close and reopen it to run CI, or configure the retrain GitHub App"
  fi
}

case "${1:-all}" in
  build) cmd_build ;;
  publish) cmd_publish ;;
  unpublished) cmd_unpublished ;;
  all)
    cmd_build
    if [[ "$built" == true ]]; then cmd_publish; fi
    ;;
  *) die "usage: $0 [build | publish | unpublished | all]" ;;
esac
