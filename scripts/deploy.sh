#!/usr/bin/env bash
# Build, smoke-test, publish and deploy the serving image of the checked-out commit.
#
#   scripts/deploy.sh pull     dvc pull models/serving: the model, fetched outside the image build
#                              (the build gets files, never credentials)
#   scripts/deploy.sh build    `make image` -> $IMAGE:<model version> and $IMAGE:sha-<commit>
#   scripts/deploy.sh smoke    run the image on 127.0.0.1, scripts/smoke_test.py, remove it
#   scripts/deploy.sh push     docker push both tags (logs in first when REGISTRY_TOKEN is set)
#   scripts/deploy.sh release  deploy $IMAGE:<version> to the host, check its /health reports the
#                              version, roll back to the previous image if not; then move the git
#                              tag $DEPLOYED_REF to this commit
#   scripts/deploy.sh all      all of the above, in order
#
#   IMAGE           default ghcr.io/<owner>/<repo> from GITHUB_REPOSITORY (lowercased)
#   DOCKER          the container CLI (default docker; podman works)
#   BASE_IMAGE      the Dockerfile's base image (default: the Makefile's)
#   REGISTRY, REGISTRY_USER, REGISTRY_TOKEN   login for push (default registry: the IMAGE's host)
#   DEPLOY_TARGET   the host: scripts/deploy_<target>.sh (default hf = Hugging Face Spaces);
#                   DEPLOY_HOST_SCRIPT overrides the path. A host script answers
#                   `current` (the image it runs, or nothing), `deploy IMAGE` and `url`.
#   DEPLOY_URL      the hosted API's base URL (default: what the host script's `url` says)
#   DEPLOY_WAIT     seconds to wait for the host to serve the new version (default 900)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

docker_cli="${DOCKER:-docker}"
bundle=models/serving
host="${DEPLOY_HOST_SCRIPT:-scripts/deploy_${DEPLOY_TARGET:-hf}.sh}"

image() {
  if [[ -n "${IMAGE:-}" ]]; then
    echo "$IMAGE"
  elif [[ -n "${GITHUB_REPOSITORY:-}" ]]; then
    echo "ghcr.io/${GITHUB_REPOSITORY,,}"
  else
    die "set IMAGE (e.g. ghcr.io/you/demandcast) or GITHUB_REPOSITORY"
  fi
}

version() {
  [[ -f "$bundle/metadata.json" ]] || die "$bundle/metadata.json: not found; run: scripts/deploy.sh pull"
  json_get "$bundle/metadata.json" model_version
}

tags() {  # the image's two tags: the model version, and the commit
  local name
  name="$(image)"
  echo "$name:$(version)"
  echo "$name:sha-$(git rev-parse --short=12 HEAD)"
}

cmd_pull() {
  need dvc
  dvc pull models/serving
  echo "model $(version) at $bundle"
}

cmd_build() {  # `make image`: the one way the project builds its image
  need "$docker_cli" make
  local tags_=()
  mapfile -t tags_ < <(tags)
  [[ -f reports/metrics.json ]] || die "reports/metrics.json: not found (it is in git: check out a pipeline commit)"
  local vars=(CONTAINER="$docker_cli" IMAGE="${tags_[0]}" BUILD_FLAGS="-t ${tags_[1]}")
  if [[ -n "${BASE_IMAGE:-}" ]]; then vars+=(BASE_IMAGE="$BASE_IMAGE"); fi
  make --no-print-directory image "${vars[@]}"
  output image "${tags_[0]}"
}

cmd_smoke() {
  need "$docker_cli" python3
  local port container passed=true
  port="${SMOKE_PORT:-18000}"
  container="$("$docker_cli" run -d --rm -p "127.0.0.1:$port:8000" "$(image):$(version)")"
  python3 scripts/smoke_test.py "http://127.0.0.1:$port" --bundle "$bundle" \
    --wait "${SMOKE_WAIT:-90}" || passed=false
  if [[ "$passed" == false ]]; then "$docker_cli" logs "$container" >&2 || true; fi
  "$docker_cli" rm -f "$container" >/dev/null
  [[ "$passed" == true ]] || die "the image $(image):$(version) failed its smoke test"
}

cmd_push() {
  need "$docker_cli"
  local name registry tag
  name="$(image)"
  registry="${REGISTRY:-${name%%/*}}"
  if [[ -n "${REGISTRY_TOKEN:-}" ]]; then
    "$docker_cli" login "$registry" -u "${REGISTRY_USER:-${GITHUB_ACTOR:-token}}" --password-stdin <<<"$REGISTRY_TOKEN"
  fi
  while read -r tag; do "$docker_cli" push "$tag"; done < <(tags)
}

hosted_url() {
  if [[ -n "${DEPLOY_URL:-}" ]]; then echo "${DEPLOY_URL%/}"; else "$host" url; fi
}

cmd_release() {
  need python3
  [[ -x "$host" ]] || die "$host: no such host script (DEPLOY_TARGET=${DEPLOY_TARGET:-hf})"
  local new previous url wait
  new="$(image):$(version)"
  previous="$("$host" current)"
  url="$(hosted_url)"
  wait="${DEPLOY_WAIT:-900}"
  echo "deploying $new to $url (replacing ${previous:-nothing})"
  "$host" deploy "$new"
  if python3 scripts/smoke_test.py "$url" --bundle "$bundle" --wait "$wait"; then
    git tag -f "$DEPLOYED_REF" HEAD
    if git remote get-url origin >/dev/null 2>&1; then
      git push -q -f origin "refs/tags/$DEPLOYED_REF"
    fi
    output deployed "$new"
    summary <<<"### Deployed \`$new\` to $url: /health reports model \`$(version)\`"
    return 0
  fi
  if [[ -z "$previous" || "$previous" == "$new" ]]; then
    summary <<<"### Deploy of \`$new\` FAILED at $url, and there is no previous image to roll back to"
    die "the host does not serve $new and there is nothing to roll back to"
  fi
  echo "rolling back to $previous" >&2
  "$host" deploy "$previous"
  if python3 scripts/smoke_test.py "$url" --health-only --expect-version "${previous##*:}" --wait "$wait"; then
    summary <<<"### Deploy of \`$new\` FAILED at $url: rolled back to \`$previous\`"
  else
    summary <<<"### Deploy of \`$new\` FAILED at $url, and the rollback to \`$previous\` did not come up either"
  fi
  die "the host did not serve $new; rolled back to $previous (the tag $DEPLOYED_REF did not move)"
}

case "${1:-}" in
  pull) cmd_pull ;;
  build) cmd_build ;;
  smoke) cmd_smoke ;;
  push) cmd_push ;;
  release) cmd_release ;;
  all) cmd_pull && cmd_build && cmd_smoke && cmd_push && cmd_release ;;
  *) die "usage: $0 pull|build|smoke|push|release|all" ;;
esac
