#!/usr/bin/env bash
# Are the outputs of this revision's dvc.lock in the DVC remote? CI runs it on a pull request
# that changes dvc.lock, in a fresh checkout with an empty DVC cache: an output that is neither
# in the remote nor here ("missing"), or only here ("new"), was not pushed, and merging the pull
# request would leave the branch pointing at data that nobody can pull.
#
#   scripts/remote_check.sh [BASE]    (BASE default: origin/main; nothing to check when dvc.lock
#                                      is the same as BASE's)
#
# Needs the remote's read credentials (configure_remote.sh). Exit 0 = every output is in the
# remote (or dvc.lock is unchanged); 1 = some are not (each is named), or an error.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc git python

base="${1:-origin/main}"
git rev-parse -q --verify "$base^{commit}" >/dev/null || die "no revision '$base' (in CI: actions/checkout with fetch-depth: 0)"
if git diff --quiet "$base" HEAD -- dvc.lock; then
  echo "dvc.lock is the same as $base's: nothing to check"
  exit 0
fi

# --json lists a file output that is not in the remote as "new" (only here) or "missing"
# (nowhere); a directory output whose manifest (.dir) is nowhere is only named by md5, in a
# warning: both count, each named by its path in dvc.lock.
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
status="$(dvc status --cloud --json 2>"$err")" || { cat "$err" >&2; die "dvc status --cloud failed (above): is the remote reachable, and may these credentials read it?"; }
listing="$(python -c '
import json, re, sys, yaml
status = json.loads(sys.argv[1] or "{}")
warnings = open(sys.argv[2]).read()
outs = {}
for stage in (yaml.safe_load(open("dvc.lock")) or {}).get("stages", {}).values():
    for out in stage.get("outs", []):
        outs[out.get("md5")] = out["path"]
found = {path: state for path, state in status.items() if state in ("new", "missing")}
if "Missing cache files" in warnings:
    for md5 in re.findall(r"md5: ([0-9a-f]{32}(?:\.dir)?)", warnings):
        found.setdefault(outs.get(md5, md5), "missing")
for path, state in sorted(found.items()):
    print(f"{path} ({state})")
' "$status" "$err")" || die "could not read dvc status's answer or dvc.lock"
unpushed=()
if [[ -n "$listing" ]]; then mapfile -t unpushed <<<"$listing"; fi
if ((${#unpushed[@]})); then
  for item in "${unpushed[@]}"; do annotate error "not in the DVC remote: $item"; done
  {
    echo "### Outputs of \`dvc.lock\` NOT in the DVC remote"
    echo
    printf -- "- \`%s\`\n" "${unpushed[@]}"
    echo
    echo "Run \`dvc push\` from the clone that ran \`dvc repro\`, then re-run this check."
  } | summary
  die "${#unpushed[@]} output(s) of dvc.lock are not in the DVC remote: run dvc push"
fi
summary <<<"### Every output of \`dvc.lock\` is in the DVC remote"
echo "every output of dvc.lock is in the DVC remote"
