#!/usr/bin/env bash
# Post the PR report as ONE comment on the pull request, updated in place on every run.
#
#   scripts/pr_comment.sh PR_NUMBER REPORT_FILE
#
#   GH_TOKEN           a token that may write pull-request comments (never printed)
#   GITHUB_REPOSITORY  owner/repo
#   EXPECTED_HEAD_SHA  optional: refuse unless the PR's head is this commit (the report comes
#                      from an artifact of a fork's run: make sure it belongs to this PR)
#   COMMENT_AUTHOR     whose comment to update (default github-actions[bot])
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need gh python3

[[ $# -eq 2 ]] || die "usage: $0 PR_NUMBER REPORT_FILE"
pr="$1"
report="$2"
[[ "$pr" =~ ^[0-9]+$ ]] || die "PR number '$pr' is not a number"
[[ -s "$report" ]] || die "$report: missing or empty"
repo="${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY=owner/repo}"
marker="$(head -n 1 "$report")"
[[ "$marker" == "<!--"*"-->" ]] || die "$report: the first line must be its marker comment"

if [[ -n "${EXPECTED_HEAD_SHA:-}" ]]; then
  head_sha="$(gh api "repos/$repo/pulls/$pr" | python3 -c 'import json, sys; print(json.load(sys.stdin)["head"]["sha"])')"
  [[ "$head_sha" == "$EXPECTED_HEAD_SHA" ]] || die "PR #$pr is at $head_sha, the report is of $EXPECTED_HEAD_SHA: not posting it"
fi

existing="$(
  gh api --paginate --slurp "repos/$repo/issues/$pr/comments" | python3 -c '
import json, sys
marker, author = sys.argv[1], sys.argv[2]
pages = json.load(sys.stdin)  # --slurp: a list of pages, each a list of comments
for comment in (c for page in pages for c in page):
    if comment["user"]["login"] == author and comment["body"].startswith(marker):
        print(comment["id"])
        break
' "$marker" "${COMMENT_AUTHOR:-github-actions[bot]}"
)"
if [[ -n "$existing" ]]; then
  gh api -X PATCH "repos/$repo/issues/comments/$existing" -F "body=@$report" >/dev/null
  echo "updated the report comment $existing on #$pr"
else
  gh api -X POST "repos/$repo/issues/$pr/comments" -F "body=@$report" >/dev/null
  echo "posted the report comment on #$pr"
fi
