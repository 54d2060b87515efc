#!/usr/bin/env bash
# GitHub Actions only: hand the remote's access keys (KEY_ID, SECRET from the job's secrets) and
# REGION to the job's later steps through $GITHUB_ENV. Nothing is printed: Actions masks the
# values in logs anyway, and this never echoes them. On a laptop, export AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY yourself (or use an AWS profile).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n "${GITHUB_ENV:-}" ]] || die "GITHUB_ENV is not set: this script is for GitHub Actions"
if [[ -z "${KEY_ID:-}" || -z "${SECRET:-}" ]]; then
  echo "::error::no credentials for the DVC remote: set the AWS_ROLE_ARN variable (OIDC) or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY secrets"
  exit 1
fi
{
  printf 'AWS_ACCESS_KEY_ID=%s\n' "$KEY_ID"
  printf 'AWS_SECRET_ACCESS_KEY=%s\n' "$SECRET"
  printf 'AWS_DEFAULT_REGION=%s\n' "${REGION:-us-east-1}"
} >>"$GITHUB_ENV"
echo "DVC remote credentials: access keys from the repository's secrets"
