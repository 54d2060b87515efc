#!/usr/bin/env bash
# Host target: a Hugging Face Docker Space that runs the serving image from the registry.
# deploy.sh calls it; another host is another deploy_<target>.sh with the same three commands.
#
#   scripts/deploy_hf.sh current        the image the Space runs now (nothing if none)
#   scripts/deploy_hf.sh deploy IMAGE   point the Space at IMAGE (IMAGE@sha256:...); Hugging
#                                       Face rebuilds it
#   scripts/deploy_hf.sh url            the Space's public URL
#   scripts/deploy_hf.sh pull-access    `anonymous`: the Space pulls the image without credentials
#
# The Space's git repository holds what this writes: `Dockerfile` (FROM IMAGE) and README.md
# (front matter: a Docker Space whose app listens on port 8000). Hugging Face pulls the image
# without credentials, so it must be public: a new GHCR package is private until you change its
# visibility (deploy.sh checks it before deploying, and says how).
#
#   HF_SPACE          OWNER/NAME of the Space (create it first: SDK Docker, blank)
#   HF_TOKEN          a Hugging Face token with write access to it (a secret: never printed,
#                     never on a command line or in a URL; git reads it via a credential helper)
#   HF_SPACE_GIT_URL  the Space's git URL; default https://huggingface.co/spaces/$HF_SPACE
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need git

space="${HF_SPACE:-}"
git_url="${HF_SPACE_GIT_URL:-}"
if [[ -z "$git_url" ]]; then
  [[ "$space" =~ ^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$ ]] || die "HF_SPACE='$space': expected OWNER/NAME of a Hugging Face Space"
  git_url="https://huggingface.co/spaces/$space"
fi

space_git() {  # git with the token supplied by a credential helper reading $HF_TOKEN at run time
  # shellcheck disable=SC2016  # single quotes on purpose: the helper expands $HF_TOKEN itself
  git -c credential.helper= \
    -c credential.helper='!f() { test "$1" = get && echo username=hf && echo "password=${HF_TOKEN:?}"; }; f' \
    -c user.name="demandcast deploy" -c user.email="deploy@demandcast.invalid" "$@"
}

checkout() {  # checkout DIR: a shallow clone of the Space
  space_git clone -q --depth 1 "$git_url" "$1" 2>/dev/null ||
    die "cannot clone the Space at $git_url: does it exist, and can HF_TOKEN write to it?"
}

cmd_current() {
  local dir
  dir="$(mktemp -d)"
  checkout "$dir"
  if [[ -f "$dir/Dockerfile" ]]; then
    awk 'toupper($1) == "FROM" { print $2; exit }' "$dir/Dockerfile"
  fi
  rm -rf "$dir"
}

cmd_deploy() {
  local image="$1" dir
  [[ "$image" =~ ^[a-z0-9./:_@-]+$ ]] || die "'$image' is not an image reference"
  dir="$(mktemp -d)"
  checkout "$dir"
  cat >"$dir/Dockerfile" <<DOCKERFILE
# Written by demandcast's scripts/deploy_hf.sh: this Space runs the serving image below.
FROM $image
DOCKERFILE
  cat >"$dir/README.md" <<README
---
title: demandcast
emoji: 📈
colorFrom: blue
colorTo: green
sdk: docker
app_port: 8000
pinned: false
---

The demandcast forecast API, image \`$image\`: \`GET /health\`, \`POST /predict\`, \`GET /docs\`.
Deployed by the demandcast retraining workflow; do not edit by hand.
README
  space_git -C "$dir" add Dockerfile README.md
  if space_git -C "$dir" diff --cached --quiet; then
    echo "the Space already runs $image"
  else
    space_git -C "$dir" commit -q -m "Deploy $image"
    space_git -C "$dir" push -q origin HEAD || die "push to the Space at $git_url failed"
    echo "the Space now builds $image"
  fi
  rm -rf "$dir"
}

cmd_url() {
  [[ -n "$space" ]] || die "set HF_SPACE (OWNER/NAME) or DEPLOY_URL"
  local host="${space/\//-}"
  host="${host//[._]/-}"
  echo "https://${host,,}.hf.space"
}

case "${1:-}" in
  current) cmd_current ;;
  deploy) [[ $# -eq 2 ]] || die "usage: $0 deploy IMAGE"; cmd_deploy "$2" ;;
  url) cmd_url ;;
  pull-access) echo anonymous ;;
  *) die "usage: $0 current | deploy IMAGE | url | pull-access" ;;
esac
