#!/usr/bin/env bash
# Build, smoke-test, publish and deploy the serving image of the checked-out commit. The host
# runs the image by digest (IMAGE@sha256:...), which no later push can change: a new build is a
# new digest, whatever changed (API code, Dockerfile, base image), and the rollback target is the
# exact image that ran before.
#
#   scripts/deploy.sh check-ref  is DEPLOY_REF a model-<version> tag whose commit holds the
#                                promotion gate's pass of that model (retrain.sh makes them)?
#                                The Deploy workflow's first step: it deploys nothing else
#   scripts/deploy.sh pull       dvc pull models/serving: the model, fetched outside the image
#                                build (the build gets files, never credentials); with a
#                                model-<version> DEPLOY_REF, checks that the tag holds that model
#   scripts/deploy.sh build      `make image` -> $IMAGE:sha-<commit> and $IMAGE:<model version>
#   scripts/deploy.sh smoke      run IMAGE_REF (default: the build's sha- tag) on 127.0.0.1,
#                                scripts/smoke_test.py, remove it
#   scripts/deploy.sh push       push both tags (logs in first when REGISTRY_TOKEN is set) ->
#                                output ref=$IMAGE@sha256:...
#   scripts/deploy.sh publish    CI: build and push in one `docker buildx build --push` with an
#                                SBOM and max provenance attached (needs a buildx builder that
#                                supports attestations, e.g. docker/setup-buildx-action's) ->
#                                output ref=$IMAGE@sha256:...
#   scripts/deploy.sh release    deploy IMAGE_REF to the host, check its /health reports this
#                                model, roll back to the previous image if not; then move the git
#                                tag $DEPLOYED_REF to this commit
#   scripts/deploy.sh all        pull, build, smoke, push, release (a laptop)
#
#   IMAGE            default ghcr.io/<owner>/<repo> from GITHUB_REPOSITORY (lowercased)
#   IMAGE_REF        the image to smoke-test and deploy: $IMAGE@sha256:... (push/publish output)
#   DOCKER           the container CLI (default docker; podman works, except publish)
#   BASE_IMAGE       the Dockerfile's base image (default: its digest-pinned python:3.11-slim)
#   REGISTRY, REGISTRY_USER, REGISTRY_TOKEN   login for push (default registry: the IMAGE's host)
#   DEPLOY_TARGET    the host: scripts/deploy_<target>.sh (default hf = Hugging Face Spaces);
#                    DEPLOY_HOST_SCRIPT overrides the path. A host script answers `current` (the
#                    image it runs, or nothing), `deploy IMAGE`, `url`, and optionally
#                    `pull-access` (anonymous: it pulls without credentials, so the image must be
#                    public: release checks that first, DEPLOY_PULL_CHECK=false skips it)
#   DEPLOY_URL       the hosted API's base URL (default: what the host script's `url` says)
#   DEPLOY_WAIT      seconds to wait for the host to serve the new version (default 900)
#   GIT_PUSH_TOKEN   what the push of the $DEPLOYED_REF tag uses (see lib.sh: token_git)
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

commit_tag() {  # the image's tag for this commit
  echo "$(image):sha-$(git rev-parse --short=12 HEAD)"
}

build_flags() {  # the tags and labels every build of this commit gets (besides make's own)
  local flags
  flags="-t $(image):$(version) --build-arg MODEL_VERSION=$(version)"
  if [[ -n "${GITHUB_REPOSITORY:-}" ]]; then
    flags+=" --build-arg SOURCE_URL=${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY"
  fi
  echo "$flags"
}

make_image() {  # make_image CONTAINER MORE_BUILD_FLAGS: `make image`, the one way to build it
  local vars=(CONTAINER="$1" IMAGE="$(commit_tag)" BUILD_FLAGS="$(build_flags)${2:+ $2}")
  if [[ -n "${BASE_IMAGE:-}" ]]; then vars+=(BASE_IMAGE="$BASE_IMAGE"); fi
  [[ -f reports/metrics.json ]] || die "reports/metrics.json: not found (it is in git: check out a pipeline commit)"
  make --no-print-directory image "${vars[@]}"
}

login() {
  local registry
  registry="${REGISTRY:-$(image | cut -d/ -f1)}"
  if [[ -n "${REGISTRY_TOKEN:-}" ]]; then
    "$docker_cli" login "$registry" -u "${REGISTRY_USER:-${GITHUB_ACTOR:-token}}" --password-stdin <<<"$REGISTRY_TOKEN"
  fi
}

pushed() {  # pushed DIGEST: the outputs and summary of a pushed image
  IMAGE_REF="$(image)@$1"
  output ref "$IMAGE_REF"
  output digest "$1"
  echo "pushed $IMAGE_REF"
}

cmd_check_ref() {
  local ref="${DEPLOY_REF:-}" verdict why=""
  [[ -n "$ref" ]] || die "set DEPLOY_REF (the ref to deploy)"
  # The tag's own commit holds the gate's verdict (retrain.sh commits reports/gate.json): the
  # check needs neither the tag's annotation (a checkout may turn it into a lightweight tag)
  # nor the network.
  if [[ ! "$ref" =~ ^model-[A-Za-z0-9._-]+$ ]] || ! git rev-parse -q --verify "refs/tags/$ref" >/dev/null; then
    why="'$ref' is not a model-<version> tag: a deploy takes only a model that passed the promotion gate, i.e. one of the tags model-<version> that the Retrain workflow pushes (git tag --list 'model-*'), such as an earlier one to roll back to. To deploy new code or params, run the Retrain workflow: it gates them, then deploys"
  elif ! verdict="$(git show "refs/tags/$ref:reports/gate.json" 2>/dev/null)"; then
    why="the tag $ref has no promotion gate verdict (reports/gate.json) in its commit: it was not made by a retrain"
  elif ! python3 -c '
import json, sys
verdict = json.loads(sys.argv[1])
sys.exit(0 if verdict.get("passed") and verdict.get("deploy", {}).get("model_version") == sys.argv[2] else 1)
' "$verdict" "${ref#model-}"; then
    why="the promotion gate's verdict in $ref (reports/gate.json) is not a pass of model ${ref#model-}"
  fi
  if [[ -z "$why" ]]; then
    echo "$ref: model ${ref#model-}, passed by the promotion gate"
    return 0
  fi
  annotate error "$why"
  summary <<<"### Deploy refused"$'\n\n'"$why."
  die "$why"
}

cmd_pull() {
  need dvc
  dvc pull models/serving
  local held
  held="$(version)"
  if [[ "${DEPLOY_REF:-}" == model-* && "${DEPLOY_REF#model-}" != "$held" ]]; then
    die "the tag $DEPLOY_REF holds model $held, not ${DEPLOY_REF#model-}: not deploying it"
  fi
  echo "model $held at $bundle"
}

cmd_build() {
  need "$docker_cli" make
  make_image "$docker_cli" ""
  output image "$(commit_tag)"
}

cmd_smoke() {
  need "$docker_cli" python3
  local port container ref passed=true
  port="${SMOKE_PORT:-18000}"
  ref="${IMAGE_REF:-$(commit_tag)}"
  container="$("$docker_cli" run -d --rm -p "127.0.0.1:$port:8000" "$ref")"
  python3 scripts/smoke_test.py "http://127.0.0.1:$port" --bundle "$bundle" \
    --wait "${SMOKE_WAIT:-90}" || passed=false
  if [[ "$passed" == false ]]; then "$docker_cli" logs "$container" >&2 || true; fi
  "$docker_cli" rm -f "$container" >/dev/null
  [[ "$passed" == true ]] || die "the image $ref failed its smoke test"
}

cmd_push() {
  need "$docker_cli" python3
  local tag digest="" digest_file
  login
  for tag in "$(commit_tag)" "$(image):$(version)"; do
    if [[ "$(basename "$docker_cli")" == podman ]]; then
      digest_file="$(mktemp)"
      "$docker_cli" push --digestfile "$digest_file" "$tag"
      digest="$(cat "$digest_file")"
      rm -f "$digest_file"
    else
      "$docker_cli" push "$tag"
    fi
  done
  if [[ -z "$digest" ]]; then  # docker: the registry's digest of what it just pushed
    digest="$("$docker_cli" inspect --format '{{json .RepoDigests}}' "$(commit_tag)" | python3 -c '
import json, sys
name = sys.argv[1]
print(next((d.split("@", 1)[1] for d in json.load(sys.stdin) or [] if d.split("@")[0] == name), ""))
' "$(image)")"
  fi
  [[ "$digest" == sha256:* ]] || die "pushed $(commit_tag), but found no digest of it from $(image)"
  pushed "$digest"
}

cmd_publish() {
  need "$docker_cli" make python3
  local metadata digest
  login
  metadata="$(mktemp)"
  make_image "$docker_cli buildx" "--sbom=true --provenance=mode=max --push --metadata-file $metadata"
  digest="$(json_get "$metadata" containerimage.digest)"
  rm -f "$metadata"
  [[ "$digest" == sha256:* ]] || die "docker buildx pushed no image digest (its metadata file has none)"
  pushed "$digest"
  summary <<<"### Published \`$IMAGE_REF\`"$'\n\n'"Tags \`$(commit_tag)\` and \`$(image):$(version)\`, with an SBOM and provenance attestation: \`docker buildx imagetools inspect $IMAGE_REF --format '{{ json .Provenance }}'\` (or \`.SBOM\`)."
}

hosted_url() {
  if [[ -n "${DEPLOY_URL:-}" ]]; then echo "${DEPLOY_URL%/}"; else "$host" url; fi
}

served_version() {  # served_version URL: the model the hosted API reports now (nothing if none)
  python3 - "$1" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/health", timeout=10) as answer:
    print(json.load(answer).get("model_version") or "")
PY
}

pull_instructions() {  # pull_instructions REF: how to let a host pull REF without credentials
  local ref="$1" name owner package
  name="${ref%%@*}"
  if [[ "$name" == ghcr.io/*/* ]]; then
    owner="$(cut -d/ -f2 <<<"$name")"
    package="${name#ghcr.io/"$owner"/}"
    cat <<MD
A new GitHub Container Registry package is private, and the host pulls without credentials.
Make the package public, once: its Package settings, at
https://github.com/users/$owner/packages/container/$package/settings (a personal account) or
https://github.com/orgs/$owner/packages/container/$package/settings (an organization)
-> Danger Zone -> Change visibility -> Public. (Or give a host that supports it registry
credentials, and set DEPLOY_PULL_CHECK=false.) Then run the Deploy workflow again.
MD
  else
    echo "Make $name public on its registry, or give the host credentials to pull it (and set DEPLOY_PULL_CHECK=false); then deploy again."
  fi
}

pull_check() {  # pull_check REF: before a host that pulls anonymously is pointed at REF
  local ref="$1" access status=0
  [[ "${DEPLOY_PULL_CHECK:-auto}" != false ]] || return 0
  access="$("$host" pull-access 2>/dev/null || true)"
  [[ "$access" == anonymous ]] || return 0
  python3 scripts/registry_check.py "$ref" || status=$?
  case "$status" in
    0) ;;
    3)
      summary <<<"### Deploy of \`$ref\` NOT started: the host cannot pull it"$'\n\n'"$(pull_instructions "$ref")"
      pull_instructions "$ref" >&2
      die "the host pulls without credentials and cannot pull $ref (above); nothing was deployed"
      ;;
    *) annotate warning "could not check that the host can pull $ref (the registry did not answer); deploying anyway" ;;
  esac
}

cmd_release() {
  need python3
  [[ -x "$host" ]] || die "$host: no such host script (DEPLOY_TARGET=${DEPLOY_TARGET:-hf})"
  local new="${IMAGE_REF:-}" model previous previous_version url wait
  [[ -n "$new" ]] || die "set IMAGE_REF=IMAGE@sha256:... (the output of scripts/deploy.sh push or publish)"
  [[ "$new" =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]] || die "IMAGE_REF='$new': deploy by digest, IMAGE@sha256:<64 hex>"
  model="$(version)"
  pull_check "$new"
  previous="$("$host" current)"
  url="$(hosted_url)"
  previous_version="$(served_version "$url")"
  wait="${DEPLOY_WAIT:-900}"
  echo "deploying $new (model $model) to $url (replacing ${previous:-nothing}${previous_version:+, model $previous_version})"
  "$host" deploy "$new"
  if python3 scripts/smoke_test.py "$url" --bundle "$bundle" --wait "$wait"; then
    git tag -f "$DEPLOYED_REF" HEAD
    if git remote get-url origin >/dev/null 2>&1; then
      token_git push -q -f origin "refs/tags/$DEPLOYED_REF"
    fi
    output deployed "$new"
    summary <<<"### Deployed \`$new\` to $url: /health reports model \`$model\`"
    return 0
  fi
  if [[ -z "$previous" || "$previous" == "$new" ]]; then
    {
      echo "### Deploy of \`$new\` FAILED at $url, and there is nothing to roll back to"
      echo
      echo "The host did not serve model \`$model\` within $wait s. On a first deploy, the usual cause is that the host cannot pull the image."
      echo
      pull_instructions "$new"
      if [[ -n "${HF_SPACE:-}" ]]; then
        echo
        echo "The Space's build log says why: https://huggingface.co/spaces/$HF_SPACE?logs=build"
      fi
    } | summary
    die "the host does not serve $new and there is nothing to roll back to; if the host cannot pull the image: $(pull_instructions "$new" | tr '\n' ' ')"
  fi
  echo "rolling back to $previous" >&2
  "$host" deploy "$previous"
  if [[ -z "$previous_version" ]]; then
    summary <<<"### Deploy of \`$new\` FAILED at $url: rolled back to \`$previous\` (its model version was unknown: not checked)"
  elif python3 scripts/smoke_test.py "$url" --health-only --expect-version "$previous_version" --wait "$wait"; then
    summary <<<"### Deploy of \`$new\` FAILED at $url: rolled back to \`$previous\` (model \`$previous_version\`)"
  else
    summary <<<"### Deploy of \`$new\` FAILED at $url, and the rollback to \`$previous\` did not come up either"
  fi
  die "the host did not serve $new; rolled back to $previous (the tag $DEPLOYED_REF did not move)"
}

case "${1:-}" in
  check-ref) cmd_check_ref ;;
  pull) cmd_pull ;;
  build) cmd_build ;;
  smoke) cmd_smoke ;;
  push) cmd_push ;;
  publish) cmd_publish ;;
  release) cmd_release ;;
  all)
    if [[ -n "${DEPLOY_REF:-}" ]]; then cmd_check_ref; fi
    cmd_pull
    cmd_build
    cmd_smoke
    cmd_push
    cmd_release
    ;;
  *) die "usage: $0 check-ref|pull|build|smoke|push|publish|release|all" ;;
esac
