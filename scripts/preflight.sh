#!/usr/bin/env bash
# Is the retraining loop configured on this repository? Runs first in the scheduled and deploy
# jobs, so that a fresh fork or clone with nothing configured stays green and says so, and a
# setup that is half done fails at once, naming what is missing (README: "Run the loop on your
# repository").
#
#   scripts/preflight.sh remote [WHAT]   the DVC remote: DVC_REMOTE_URL and credentials
#                                        (AWS_ROLE_ARN, or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY)
#   scripts/preflight.sh deploy          the remote, and the host (DEPLOY_TARGET, default hf:
#                                        HF_SPACE and HF_TOKEN)
#   scripts/preflight.sh pr-check        the read-only role of the CI check that a PR's outputs
#                                        were pushed: AWS_READ_ROLE_ARN and DVC_REMOTE_URL
#
# A variable counts as set when it is non-empty; for a secret, a workflow passes only whether it
# is set, as HAS_<NAME>=true|false (`secrets.X != ''`), never its value.
# Output: configured=true|false. Exit 0 = configured, or nothing configured (skip, with a
# notice); 1 = configured in part (an error names each missing variable).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

README='README: "Run the loop on your repository"'
missing=()

present() {  # present NAME: is the variable or secret NAME set?
  local has="HAS_$1"
  if [[ -n "${!has:-}" ]]; then [[ "${!has}" == true ]]; else [[ -n "${!1:-}" ]]; fi
}

any_of() {  # any_of NAME...: is at least one of them set?
  local name
  for name in "$@"; do present "$name" && return 0; done
  return 1
}

skip() {  # skip MESSAGE: nothing configured: say so, and let the job pass
  annotate notice "$1 ($README)"
  summary <<<"### Skipped: $1"$'\n\n'"Nothing to do until it is configured; see the $README."
  output configured false
  exit 0
}

finish() {  # finish WHAT: fail naming every missing variable, or report the setup complete
  local item
  if ((${#missing[@]})); then
    for item in "${missing[@]}"; do annotate error "$1 is configured in part: missing $item"; done
    {
      echo "### $1 is configured in part"
      echo
      printf -- '- missing: %s\n' "${missing[@]}"
      echo
      echo "Set them in Settings -> Secrets and variables -> Actions ($README)."
    } | summary
    output configured false
    exit 1
  fi
  output configured true
  echo "$1: configured"
}

remote_needs() {  # what the DVC remote still needs, into `missing`
  if ! present DVC_REMOTE_URL; then
    missing+=("DVC_REMOTE_URL (variable): s3://YOUR-BUCKET/PREFIX; without it DVC would use .dvc/config's s3://demandcast-dvc/cache, a bucket this project does not own")
  elif [[ -n "${DVC_REMOTE_URL:-}" && "$DVC_REMOTE_URL" != s3://* ]]; then
    missing+=("DVC_REMOTE_URL (variable) is '$DVC_REMOTE_URL': expected s3://BUCKET/PREFIX")
  fi
  if present AWS_ROLE_ARN; then
    return 0
  elif present AWS_ACCESS_KEY_ID && ! present AWS_SECRET_ACCESS_KEY; then
    missing+=("AWS_SECRET_ACCESS_KEY (secret), the other half of AWS_ACCESS_KEY_ID")
  elif present AWS_SECRET_ACCESS_KEY && ! present AWS_ACCESS_KEY_ID; then
    missing+=("AWS_ACCESS_KEY_ID (secret), the other half of AWS_SECRET_ACCESS_KEY")
  elif ! present AWS_ACCESS_KEY_ID; then
    missing+=("AWS_ROLE_ARN (variable: the IAM role that GitHub's OIDC token assumes), or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY secrets")
  fi
}

REMOTE_VARS=(DVC_REMOTE_URL AWS_ROLE_ARN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY DVC_S3_ENDPOINT_URL)

cmd_remote() {
  local what="${1:-this job}"
  any_of "${REMOTE_VARS[@]}" || skip "no DVC remote is configured, so $what does nothing"
  remote_needs
  finish "The DVC remote"
}

cmd_deploy() {
  local target="${DEPLOY_TARGET:-hf}"
  if [[ "$target" == hf ]]; then
    any_of HF_SPACE HF_TOKEN ||
      skip "no host is configured (HF_SPACE, HF_TOKEN), so nothing is deployed; a retrained model stays committed and tagged: deploy it later with the Deploy workflow and its model-<version> tag"
    present HF_SPACE || missing+=("HF_SPACE (variable): OWNER/NAME of your Hugging Face Docker Space")
    present HF_TOKEN || missing+=("HF_TOKEN (secret): a Hugging Face token that can write to the Space")
  elif [[ ! -x "scripts/deploy_$target.sh" ]]; then
    missing+=("a host script for DEPLOY_TARGET=$target: scripts/deploy_$target.sh does not exist")
  fi
  remote_needs
  finish "The deploy"
}

cmd_pr_check() {
  present AWS_READ_ROLE_ARN ||
    skip "no AWS_READ_ROLE_ARN variable, so CI does not check that a pull request's dvc.lock outputs are in the DVC remote"
  present DVC_REMOTE_URL ||
    missing+=("DVC_REMOTE_URL (variable): the s3://BUCKET/PREFIX that AWS_READ_ROLE_ARN may read")
  finish "The pull-request remote check"
}

case "${1:-}" in
  remote) cmd_remote "${2:-}" ;;
  deploy) cmd_deploy ;;
  pr-check) cmd_pr_check ;;
  *) die "usage: $0 remote [WHAT] | deploy | pr-check" ;;
esac
