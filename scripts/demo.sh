#!/usr/bin/env bash
# Set up, then check the built-in matrix level on 300 random cases against PyTorch and JAX, and
# render the run as report.html. Extra arguments go to `mybackprop check` (e.g. --impl mod:fn).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
folder="reports/demo-$(date +%Y%m%d-%H%M%S)"
previous=""
for arg in "$@"; do  # a run folder of the user's own choosing wins (--out DIR or --out=DIR)
    [ "$previous" = "--out" ] && folder="$arg"
    case "$arg" in --out=*) folder="${arg#--out=}" ;; esac
    previous="$arg"
done
status=0
.venv/bin/mybackprop check --cases 300 --seed 1 --out "$folder" "$@" || status=$?
if [ "$status" -le 1 ]; then  # 2 is a bad command line: there is no run to render
    .venv/bin/mybackprop report "$folder" | grep report.html
fi
exit "$status"
