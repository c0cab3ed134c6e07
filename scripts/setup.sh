#!/usr/bin/env bash
# Set up nse-hw on a fresh machine: the Fashion-MNIST proxy data (Debian package) and the .venv.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's dataset-fashion-mnist (the embedded proxy task)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: Fashion-MNIST not in /usr/share/datasets/fashion-mnist; install dataset-fashion-mnist" \
         "or pass --data DIR to the commands" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The exact tested set comes from constraints.txt (pyproject.toml has the compatible ranges; docs/install.md).
# torch==2.13.0 must be in the same pip command as litert-torch: only that exact pin picks the local CPU build.
# ExecuTorch (--format pte, --runtime executorch) is an extra for pip users; here it is installed too (+317 MB,
# ~20 s), so both commands below the README and CI cover every runtime (benchmarks/deployment/RESULTS-deployment.md); so are
# timm (`latency predict timm/NAME` is tested, not skipped), the docs tools (mkdocs) and `build` (tests/test_wheel.py).
# (timm is only looked up here, not imported: it imports torchvision before nse_hw's compatibility shim.)
if ! .venv/bin/python -c "import importlib.util as u, nse_hw, torch, litert_torch, ai_edge_litert, onnxruntime, executorch, mkdocs, build; assert u.find_spec('timm')" \
       >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.nse-hw-installed ] || [ constraints.txt -nt .venv/.nse-hw-installed ]; then
  echo "setup: installing nse-hw and its pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/pip install -q "torch==2.13.0" -c constraints.txt -e ".[dev,executorch,docs,timm]"
  touch .venv/.nse-hw-installed
fi
echo "setup: ok ($(.venv/bin/nse-hw --version))"
