#!/usr/bin/env bash
# The pull-request report, after `dvc repro`: what this revision changes against BASE.
#
#   scripts/pr_report.sh [BASE [OUT_DIR]]    (BASE default: main; in CI: origin/<base branch>)
#
# Markdown: `dvc metrics diff BASE --md`, `dvc params diff BASE --md`, the plot data that
# changed, and whether `dvc repro` reproduced the committed dvc.lock; on stdout, or with OUT_DIR
# in OUT_DIR/report.md and the job summary (plus OUT_DIR/pr-number and OUT_DIR/head-sha from
# PR_NUMBER and HEAD_SHA, for the comment workflow). It also writes both revisions' plots
# overlaid to dvc_plots/index.html (`dvc plots diff`), which CI uploads as the `dvc-plots`
# artifact; in Actions the report links to the run's artifacts. The report's first line is the
# marker that scripts/pr_comment.sh finds its comment by, to update it in place.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git python

base="${1:-main}"
out_dir="${2:-}"
git rev-parse -q --verify "$base^{commit}" >/dev/null || die "no revision '$base' (in CI: fetch it, e.g. actions/checkout with fetch-depth: 0)"

table_or() {  # table_or TEXT: the Markdown table on stdin, or TEXT when it has no rows
  local table
  table="$(cat)"
  if (($(grep -c '^|' <<<"$table") > 2)); then echo "$table"; else echo "$1"; fi
}

dvc plots diff "$base" -o dvc_plots >/dev/null 2>&1 || echo "warning: dvc plots diff failed" >&2
run_url=""
if [[ -n "${GITHUB_RUN_ID:-}" ]]; then
  run_url="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"
fi
mapfile -t plots < <(git diff --name-only "$base" -- reports/plots)

report() {
  echo "<!-- demandcast-pr-report -->"
  echo "## Pipeline report"
  echo
  echo "\`dvc repro\` of $(git rev-parse --short HEAD) against \`$base\` ($(git rev-parse --short "$base"))."
  echo
  echo "### Metrics"
  dvc metrics diff "$base" --md 2>/dev/null | table_or "No metric changed."
  echo
  echo "### Params"
  dvc params diff "$base" --md 2>/dev/null | table_or "No parameter changed."
  echo
  echo "### Plots"
  if ((${#plots[@]})); then
    printf -- "- \`%s\` changed\n" "${plots[@]}"
  else
    echo "No plot data changed."
  fi
  if [[ -n "$run_url" ]]; then
    echo
    echo "Both revisions overlaid: the \`dvc-plots\` artifact of [this run]($run_url) (open \`index.html\`)."
  fi
  echo
  echo "### Reproducibility"
  if git diff --quiet HEAD -- dvc.lock; then
    echo "\`dvc repro\` reproduced the committed \`dvc.lock\`."
  else
    changed="$(git show HEAD:dvc.lock 2>/dev/null | python -c '
import sys, yaml
before = (yaml.safe_load(sys.stdin) or {}).get("stages", {})
after = yaml.safe_load(open("dvc.lock")).get("stages", {})
print(", ".join(s for s in sorted(set(before) | set(after)) if before.get(s) != after.get(s)))
')"
    echo "**\`dvc repro\` changed \`dvc.lock\`** (stages: ${changed:-?}): the committed outputs are not those of this revision's code, params and data. Run \`dvc repro\` and commit \`dvc.lock\` and \`reports/\`."
  fi
}

if [[ -z "$out_dir" ]]; then
  report
  exit 0
fi
mkdir -p "$out_dir"
report >"$out_dir/report.md"
summary <"$out_dir/report.md"
if [[ -n "${PR_NUMBER:-}" ]]; then echo "$PR_NUMBER" >"$out_dir/pr-number"; fi
if [[ -n "${HEAD_SHA:-}" ]]; then echo "$HEAD_SHA" >"$out_dir/head-sha"; fi
echo "report written to $out_dir/report.md"
