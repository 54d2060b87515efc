#!/usr/bin/env bash
# Open an issue, or comment on the open one of the same title, so that what a scheduled run
# refused is seen (a red run alone goes unnoticed): the retrain workflow calls it when the
# promotion gate refuses a model.
#
#   scripts/notify.sh TITLE BODY_FILE
#
#   GH_TOKEN           a token that may write issues (never printed)
#   GITHUB_REPOSITORY  owner/repo; in Actions, a link to the run is added to the body
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need gh python3

[[ $# -eq 2 ]] || die "usage: $0 TITLE BODY_FILE"
title="$1"
[[ -s "$2" ]] || die "$2: missing or empty"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
cat "$2" >"$body"
if [[ -n "${GITHUB_RUN_ID:-}" ]]; then
  printf '\n[The run](%s/%s/actions/runs/%s)\n' "${GITHUB_SERVER_URL:-https://github.com}" "${GITHUB_REPOSITORY:?}" "$GITHUB_RUN_ID" >>"$body"
fi

existing="$(
  gh issue list --state open --limit 200 --json number,title | python3 -c '
import json, sys
print(next((str(i["number"]) for i in json.load(sys.stdin) if i["title"] == sys.argv[1]), ""))
' "$title"
)"
if [[ -n "$existing" ]]; then
  gh issue comment "$existing" --body-file "$body" >/dev/null
  echo "commented on issue #$existing: $title"
else
  gh issue create --title "$title" --body-file "$body" >/dev/null
  echo "opened an issue: $title"
fi
