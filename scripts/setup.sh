#!/usr/bin/env bash
# Installs what vitviz needs: the CPU build of torch first (a plain `torch` would pull the multi-GB
# CUDA build), then requirements.txt. With --dev also the test tools and Debian's headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
# requirements.txt is also what a Space installs: its torch line (ZeroGPU's range) is left to the step above
grep -v -E '^(torch|timm)' requirements.txt | "$PY" -m pip install -q -r /dev/stdin
# timm needs a torchvision built for this torch: from PyPI pip would swap a CPU torch for the CUDA build, and
# PyPI's torchvision does not load beside a CPU torch. So timm only where a matching torchvision imports (the
# CPU build comes from PyTorch's own index); elsewhere vitviz offers no timm models and their tests skip.
tv_ok() { "$PY" -c "import torchvision" 2>/dev/null; }
if ! tv_ok; then
  TV=$("$PY" -c "import torch; v = torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1]) + 15}.*')")
  timeout 120 "$PY" -m pip install -q --no-deps --timeout 20 --retries 1 "torchvision==$TV" \
    --index-url https://download.pytorch.org/whl/cpu 2>/dev/null || true
  tv_ok || "$PY" -m pip uninstall -y -q torchvision 2>/dev/null || true
fi
if tv_ok; then grep '^timm' requirements.txt | "$PY" -m pip install -q --no-deps -r /dev/stdin; fi
# int8 on CPUs with VNNI or AMX (vitviz/quant.py): torchao 0.18+ needs torch >= 2.11; with an older torch, or
# without it, vitviz refuses int8 and uses float32
if "$PY" -c "import sys, torch; v = torch.__version__.split('+')[0].split('.'); sys.exit((int(v[0]), int(v[1])) < (2, 11))"; then
  "$PY" -m pip install -q "torchao>=0.18" || echo "torchao could not be installed: --dtype int8 will be refused"
fi
if [ "${1:-}" = "--dev" ]; then
  "$PY" -m pip install -q -r requirements-dev.txt
  apt_install() {   # Debian packages for the tests, where this machine lets us install them
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  }
  if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium fonts-noto-cjk || echo "chromium could not be installed: the browser test will be skipped"
  fi
  # Fashion-MNIST for the bundled-model, training and study tests
  if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    apt_install dataset-fashion-mnist || echo "dataset-fashion-mnist could not be installed: its tests will be skipped"
  fi
fi
