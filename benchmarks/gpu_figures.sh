#!/usr/bin/env bash
# GPU smoke tests, then the GPU figures (benchmarks/gpu_figures.py; arguments pass through). Prints "no GPU" on CPU.
set -euo pipefail; cd "$(dirname "$0")/.."; python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu_smoke.py; exec python3 benchmarks/gpu_figures.py "$@"
