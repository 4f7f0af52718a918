#!/usr/bin/env bash
# Install inception-fer and everything it needs on a fresh machine (Debian/Ubuntu, as root or
# with sudo): Graphviz for diagrams, the CPU build of PyTorch, then the package with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "== installing Graphviz (for plot-model)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq graphviz >/dev/null
  else
    echo "note: Graphviz's 'dot' is missing; install it for plot-model (brew/conda install graphviz)"
  fi
fi

echo "== installing torch (CPU build) and inception-fer"
python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
