# shellcheck shell=bash
# Shared helpers for the scripts in this folder: `source "$(dirname "$0")/lib.sh"`.
# Each helper works the same on a laptop and in GitHub Actions: where the Actions files
# ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) are not set, outputs and summaries go to stderr.

# Run from the repository root, whatever the caller's directory.
cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)" || exit 1

die() {  # die MESSAGE...: print an error and stop
  echo "error: $*" >&2
  exit 1
}

need() {  # need COMMAND...: stop with a clear message if a command is missing
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found on PATH (activate .venv: source .venv/bin/activate)"
  done
}

output() {  # output NAME VALUE: a step output in Actions, a log line elsewhere
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  else
    printf 'output %s=%s\n' "$1" "$2" >&2
  fi
}

annotate() {  # annotate notice|warning|error MESSAGE: an annotation on the run in Actions, a log line elsewhere
  if [[ "${GITHUB_ACTIONS:-}" == true ]]; then
    echo "::$1::$2"
  else
    echo "$1: $2" >&2
  fi
}

summary() {  # summary < MARKDOWN: append to the job summary in Actions, print elsewhere
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat >>"$GITHUB_STEP_SUMMARY"
  else
    cat >&2
  fi
}

json_get() {  # json_get FILE KEY: one top-level value of a JSON file, as text
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v, (list, dict)) else str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

DEPLOYED_REF="${DEPLOYED_REF:-deployed}"  # the git tag that marks the deployed model's commit

deployed_commit() {  # deployed_commit: the commit of the deployed model, or nothing if none yet
  if git remote get-url origin >/dev/null 2>&1; then  # the tag moves: refresh it from origin
    git fetch -q --force origin "+refs/tags/$DEPLOYED_REF:refs/tags/$DEPLOYED_REF" 2>/dev/null || true
  fi
  git rev-parse -q --verify "refs/tags/$DEPLOYED_REF^{commit}" || true
}

token_git() {  # token_git ARGS...: git, with $GIT_PUSH_TOKEN (when set) given to HTTPS remotes by a
  # credential helper at run time: the token is never written to .git/config, never on a command
  # line or in a URL, and only the command that pushes sees it (checkouts use persist-credentials:
  # false). Without GIT_PUSH_TOKEN: plain git, with your own credentials.
  if [[ -z "${GIT_PUSH_TOKEN:-}" ]]; then
    git "$@"
    return
  fi
  # shellcheck disable=SC2016  # single quotes on purpose: the helper expands $GIT_PUSH_TOKEN itself
  git -c credential.helper= \
    -c credential.helper='!f() { test "$1" = get && echo username=x-access-token && echo "password=${GIT_PUSH_TOKEN:?}"; }; f' "$@"
}
