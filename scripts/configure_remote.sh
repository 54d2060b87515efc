#!/usr/bin/env bash
# Point this clone's DVC remote at your bucket. Writes .dvc/config.local (not in git).
#
#   DVC_REMOTE_URL       s3://BUCKET/PREFIX; default: the url in .dvc/config (s3://demandcast-dvc/cache)
#   DVC_S3_ENDPOINT_URL  http(s)://HOST:PORT of an S3-compatible store (MinIO, Ceph, R2...); unset = AWS
#
# Credentials are never written to a file: DVC reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_SESSION_TOKEN from the environment (in Actions: aws-actions/configure-aws-credentials).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc

remote="${DVC_REMOTE:-storage}"
if [[ -n "${DVC_REMOTE_URL:-}" ]]; then
  [[ "$DVC_REMOTE_URL" == s3://* ]] || die "DVC_REMOTE_URL='$DVC_REMOTE_URL': expected s3://BUCKET/PREFIX"
  dvc remote modify --local "$remote" url "$DVC_REMOTE_URL"
fi
if [[ -n "${DVC_S3_ENDPOINT_URL:-}" ]]; then
  dvc remote modify --local "$remote" endpointurl "$DVC_S3_ENDPOINT_URL"
fi
echo "DVC remote '$remote': $(dvc config "remote.$remote.url")${DVC_S3_ENDPOINT_URL:+ via $DVC_S3_ENDPOINT_URL}"
