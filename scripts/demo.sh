#!/usr/bin/env bash
# Set up, then check the built-in matrix level on 300 random cases against PyTorch and JAX; the
# run folder holds report.html. Extra arguments go to `mybackprop check` (e.g. --impl mod:fn).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/mybackprop check --cases 300 --seed 1 --out "reports/demo-$(date +%Y%m%d-%H%M%S)" "$@"
