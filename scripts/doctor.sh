#!/usr/bin/env bash
# `make doctor`: the local side of the retraining loop's setup, checked (README: "Run the loop on
# your repository"). Prints one line per check, what is missing and how to fix it; changes
# nothing and sends nothing anywhere but to `gh` (when installed and logged in, to list the
# NAMES of the repository's Actions variables and secrets, never their values).
#
#   scripts/doctor.sh
#
# Exit 0 = nothing required is missing; 1 = something is (each one is named). Lines marked
# "optional" are what only some setups need (deploying from this machine, the GitHub App, the
# pull-request remote check) and never fail the check.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PLACEHOLDER="s3://demandcast-dvc/cache"
missing=0

ok() { printf '  ok        %s\n' "$*"; }
bad() {
  printf '  MISSING   %s\n' "$*"
  missing=$((missing + 1))
}
optional() { printf '  optional  %s\n' "$*"; }
section() { printf '\n%s\n' "$*"; }

has() { command -v "$1" >/dev/null 2>&1; }

section "Tools"
py="python3"
if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; fi
if has "$py" && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  ok "Python $("$py" -c 'import platform; print(platform.python_version())') ($py)"
else
  bad "Python 3.11+: install it (python3 on the PATH), then: make setup"
fi
for tool in git make; do
  if has "$tool"; then ok "$tool"; else bad "$tool: install it"; fi
done
dvc_cli=""
if [[ -x .venv/bin/dvc ]]; then
  dvc_cli=.venv/bin/dvc
elif has dvc; then
  dvc_cli=dvc
fi
if [[ -n "$dvc_cli" ]]; then
  ok "dvc $("$dvc_cli" --version 2>/dev/null) ($dvc_cli)"
else
  bad "dvc: not in .venv; run: make setup"
fi
if has docker || has podman; then
  ok "container engine: $(if has docker; then echo docker; else echo podman; fi) (make image)"
else
  optional "docker or podman: to build the serving image here (make image); CI builds it anyway"
fi

section "This clone"
origin="$(git remote get-url origin 2>/dev/null || true)"
repo=""
if [[ "$origin" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
  repo="${BASH_REMATCH[1]%.git}"
  ok "origin: GitHub repository $repo"
elif [[ -n "$origin" ]]; then
  optional "origin is $origin, not a GitHub repository: the workflows need one"
else
  bad "git remote origin: push this clone to your GitHub repository (git remote add origin ...)"
fi

section "DVC remote"
if [[ -n "$dvc_cli" ]]; then
  remote="$("$dvc_cli" config core.remote 2>/dev/null || true)"
  url=""
  if [[ -n "$remote" ]]; then url="$("$dvc_cli" config "remote.$remote.url" 2>/dev/null || true)"; fi
  if [[ -z "$url" ]]; then
    bad "no default DVC remote: run DVC_REMOTE_URL=s3://YOUR-BUCKET/PREFIX scripts/configure_remote.sh"
  elif [[ "$url" == "$PLACEHOLDER" ]]; then
    bad "the DVC remote '$remote' is still $PLACEHOLDER, a bucket this project does not own: run DVC_REMOTE_URL=s3://YOUR-BUCKET/PREFIX scripts/configure_remote.sh (and set the same DVC_REMOTE_URL as a repository variable)"
  else
    endpoint="$("$dvc_cli" config "remote.$remote.endpointurl" 2>/dev/null || true)"
    ok "DVC remote '$remote': $url${endpoint:+ via $endpoint}"
  fi
fi
if [[ -n "${AWS_ACCESS_KEY_ID:-}" && -n "${AWS_SECRET_ACCESS_KEY:-}" ]]; then
  ok "credentials for the remote: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
elif [[ -n "${AWS_ACCESS_KEY_ID:-}${AWS_SECRET_ACCESS_KEY:-}" ]]; then
  bad "credentials for the remote: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not one"
elif [[ -n "${AWS_PROFILE:-}" || -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" || -f "${AWS_CONFIG_FILE:-$HOME/.aws/config}" ]]; then
  ok "credentials for the remote: an AWS profile (${AWS_PROFILE:-default})"
else
  bad "credentials for the remote: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure an AWS profile (aws configure)"
fi

section "Deploying from this machine (scripts/deploy.sh; CI does it without these)"
if [[ -n "${IMAGE:-}${GITHUB_REPOSITORY:-}" ]]; then ok "image name: ${IMAGE:-ghcr.io/${GITHUB_REPOSITORY,,}}"; else optional "IMAGE (e.g. ghcr.io/you/demandcast)"; fi
for name in REGISTRY_TOKEN HF_SPACE HF_TOKEN; do
  if [[ -n "${!name:-}" ]]; then ok "$name is set"; else optional "$name"; fi
done

section "GitHub (gh)"
if ! has gh; then
  optional "gh is not installed: with it (and gh auth login), this also checks the repository's Actions variables and secrets"
elif ! gh auth status >/dev/null 2>&1; then
  bad "gh is installed but not logged in: run gh auth login"
elif [[ -z "$repo" ]]; then
  optional "gh is logged in, but origin is not a GitHub repository: the repository's settings are not checked"
else
  ok "gh is logged in"
  names() {  # names KIND [--env ENV]: the names of the repository's variables or secrets
    gh "$1" list --repo "$repo" "${@:2}" --json name 2>/dev/null |
      python3 -c 'import json, sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))'
  }
  if ! variables="$(names variable)" || ! secrets="$(names secret)"; then
    optional "could not list the Actions variables and secrets of $repo (it takes admin access): check them by hand (README)"
  else
    secrets+=" $(names secret --env production || true)"
    variables+=" $(names variable --env production || true)"
    set_in() { [[ " $1 " == *" $2 "* ]]; }
    if set_in "$variables" DVC_REMOTE_URL; then ok "variable DVC_REMOTE_URL"; else bad "variable DVC_REMOTE_URL (s3://YOUR-BUCKET/PREFIX)"; fi
    if set_in "$variables" AWS_ROLE_ARN; then
      ok "variable AWS_ROLE_ARN (OIDC)"
    elif set_in "$secrets" AWS_ACCESS_KEY_ID && set_in "$secrets" AWS_SECRET_ACCESS_KEY; then
      ok "secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    else
      bad "variable AWS_ROLE_ARN (an IAM role trusting GitHub's OIDC, README), or the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    fi
    if set_in "$variables" HF_SPACE; then ok "variable HF_SPACE"; else bad "variable HF_SPACE (OWNER/NAME of your Hugging Face Docker Space)"; fi
    if set_in "$secrets" HF_TOKEN; then ok "secret HF_TOKEN"; else bad "secret HF_TOKEN (a Hugging Face token that can write to the Space)"; fi
    if set_in "$variables" RETRAIN_APP_CLIENT_ID && set_in "$secrets" RETRAIN_APP_PRIVATE_KEY; then
      ok "the retrain GitHub App (RETRAIN_APP_CLIENT_ID, RETRAIN_APP_PRIVATE_KEY)"
    else
      optional "the retrain GitHub App (variable RETRAIN_APP_CLIENT_ID, secret RETRAIN_APP_PRIVATE_KEY): needed to push to a protected main, and for its pull requests to run CI"
    fi
    if set_in "$variables" AWS_READ_ROLE_ARN; then ok "variable AWS_READ_ROLE_ARN"; else optional "variable AWS_READ_ROLE_ARN: CI then checks that a pull request's dvc.lock outputs were pushed"; fi
  fi
fi

echo
if ((missing)); then
  echo "$missing missing: see the README, \"Run the loop on your repository\""
  exit 1
fi
echo "the local setup is complete"
