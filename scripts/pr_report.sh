#!/usr/bin/env bash
# The pull-request report, after `dvc repro`: what this revision changes against BASE.
#
#   scripts/pr_report.sh [BASE [OUT_DIR]]    (BASE default: main; in CI: origin/<base branch> on a
#                                             pull request, the push's `before` on a push)
#
# Markdown: the holdout SMAPE by horizon day of both revisions as a chart (Mermaid, rendered by
# GitHub), `dvc metrics diff BASE --md`, `dvc params diff BASE --md`, the plot data that changed,
# and whether `dvc repro` reproduced the committed dvc.lock; on stdout, or with OUT_DIR in
# OUT_DIR/report.md and the job summary (plus OUT_DIR/pr-number and OUT_DIR/head-sha from
# PR_NUMBER and HEAD_SHA, for the comment workflow). It also writes both revisions' plots
# overlaid to dvc_plots/index.html (`dvc plots diff`), which CI uploads as the `dvc-plots`
# artifact; in Actions the report links to the run's artifacts. The report's first line is the
# marker that scripts/pr_comment.sh finds its comment by, to update it in place.
#
# A push's `before` is all zeros on the first push of a branch, and unknown here after a
# force-push: then the report compares with HEAD's parent (and says so); with no parent either
# (the first commit), it says there is nothing to compare with. A DVC command that fails, or
# that could not read a revision, fails the report, with its error.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git python python3

requested="${1:-main}"
out_dir="${2:-}"
base="$requested"
base_note=""
if [[ "$requested" =~ ^[0-9a-f]{40}$ ]] && ! git rev-parse -q --verify "$requested^{commit}" >/dev/null; then
  if [[ "$requested" =~ ^0+$ ]]; then
    why="all zeros: the first push of a branch"
  else
    why="not in this clone: a force-push"
  fi
  if parent="$(git rev-parse -q --verify 'HEAD^1')"; then
    base="$parent"
    base_note="the parent commit (the push's \`before\` ${requested:0:12} is $why)"
  else
    base=""
    base_note="nothing: this is the first commit (the push's \`before\` is $why)"
  fi
  echo "note: comparing with $base_note" >&2
elif ! git rev-parse -q --verify "$requested^{commit}" >/dev/null; then
  die "no revision '$requested' (in CI: fetch it, e.g. actions/checkout with fetch-depth: 0)"
fi

dvc_out() {  # dvc_out ARGS...: the output of `dvc ARGS`; if it fails, the report fails with its
  # error. DVC's diffs exit 0 when they could not read a revision ("DVC failed to load some
  # metrics for following revisions"), and show its values as missing: that is a failure too.
  local err out status=0
  err="$(mktemp)"
  out="$(dvc "$@" 2>"$err")" || status=$?
  if ((status)) || grep -qiE 'failed to load|^ERROR' "$err"; then
    cat "$err" >&2
    rm -f "$err"
    die "dvc $* failed (above): the report is not written"
  fi
  cat "$err" >&2
  rm -f "$err"
  printf '%s\n' "$out"
}

table_or() {  # table_or TEXT: the Markdown table on stdin, or TEXT when it has no rows
  local table
  table="$(cat)"
  if (($(grep -c '^|' <<<"$table") > 2)); then echo "$table"; else echo "$1"; fi
}

horizon_chart() {  # the Mermaid chart of both revisions' SMAPE by horizon day, if there is one
  local base_csv="" label
  [[ -f reports/plots/horizon.csv ]] || return 0
  label="${requested#origin/}"
  if [[ -n "$base" ]] && git cat-file -e "$base:reports/plots/horizon.csv" 2>/dev/null; then
    base_csv="$(mktemp)"
    git show "$base:reports/plots/horizon.csv" >"$base_csv"
    if [[ -n "$base_note" || "$label" =~ ^[0-9a-f]{40}$ ]]; then label="$(git rev-parse --short "$base")"; fi
  fi
  echo "### Holdout error by horizon day"
  echo
  python3 scripts/horizon_chart.py reports/plots/horizon.csv ${base_csv:+--base "$base_csv"} --base-label "$label" || return 1
  echo
  rm -f "$base_csv"
}

run_url=""
if [[ -n "${GITHUB_RUN_ID:-}" ]]; then
  run_url="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"
fi
metrics="" params="" plots=()
if [[ -n "$base" ]]; then
  metrics="$(dvc_out metrics diff "$base" --md)"
  params="$(dvc_out params diff "$base" --md)"
  dvc_out plots diff "$base" -o dvc_plots >/dev/null
  mapfile -t plots < <(git diff --name-only "$base" -- reports/plots)
fi
chart="$(horizon_chart)"

report() {
  echo "<!-- demandcast-pr-report -->"
  echo "## Pipeline report"
  echo
  if [[ -z "$base" ]]; then
    echo "\`dvc repro\` of $(git rev-parse --short HEAD), compared with $base_note."
  elif [[ -n "$base_note" ]]; then
    echo "\`dvc repro\` of $(git rev-parse --short HEAD) against $base_note, $(git rev-parse --short "$base")."
  else
    echo "\`dvc repro\` of $(git rev-parse --short HEAD) against \`$base\` ($(git rev-parse --short "$base"))."
  fi
  echo
  if [[ -n "$chart" ]]; then
    echo "$chart"
    echo
  fi
  if [[ -n "$base" ]]; then
    echo "### Metrics"
    table_or "No metric changed." <<<"$metrics"
    echo
    echo "### Params"
    table_or "No parameter changed." <<<"$params"
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
  fi
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
