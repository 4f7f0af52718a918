#!/usr/bin/env bash
# Install inception-fer and everything it needs on a fresh machine (Debian/Ubuntu, as root or
# with sudo): Graphviz for diagrams, the CPU build of PyTorch, then the package with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
if [ "${INCEPTION_FER_WITH_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "== installing ${missing[*]} (Graphviz for plot-model; Chromium for the web page tests)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: install ${missing[*]} (Graphviz's dot for plot-model; Chromium for web tests)"
  fi
fi

echo "== installing torch (CPU build) and inception-fer"
python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
