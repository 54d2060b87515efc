#!/usr/bin/env bash
# Bring in the newest data, the same way for the monitor and the retrain:
#   - raw files tracked with `dvc import-url` (data/raw/*.dvc with a source URL): `dvc update` them;
#     other tracked raw files: `dvc pull` them (a newer export is committed by whoever makes it);
#   - the embedded synthetic source: the demo feed, `python -m demandcast append` of the next
#     APPEND_DAYS days (default 7; 0 = none), with LEVEL_SHIFT (e.g. 0.3 = +30% demand) if set.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need dvc python

shopt -s nullglob
tracked=(data/raw/*.dvc)
if ((${#tracked[@]})); then
  imports=()
  for file in "${tracked[@]}"; do
    if grep -q '^deps:' "$file"; then imports+=("$file"); fi
  done
  if ((${#imports[@]})); then
    echo "data: dvc update ${imports[*]}"
    dvc update "${imports[@]}"
  fi
  dvc pull "${tracked[@]}"
fi

source_kind="$(python -c 'from demandcast.config import load_params; print(load_params().data.source)')"
days="${APPEND_DAYS:-7}"
if [[ "$source_kind" == synthetic && "$days" != 0 ]]; then
  [[ "$days" =~ ^[0-9]+$ ]] || die "APPEND_DAYS='$days': expected a whole number of days"
  args=(--days "$days")
  if [[ -n "${LEVEL_SHIFT:-}" ]]; then
    [[ "$LEVEL_SHIFT" =~ ^-?[0-9]*\.?[0-9]+$ ]] || die "LEVEL_SHIFT='$LEVEL_SHIFT': expected a number such as 0.3"
    args+=(--level-shift "$LEVEL_SHIFT")
  fi
  python -m demandcast append "${args[@]}"
elif [[ "$source_kind" == file && ${#tracked[@]} -eq 0 ]]; then
  echo "data: source is a file not tracked by DVC; using data/raw/ as committed" >&2
fi
