#!/usr/bin/env bash
# Set up, then lint and run the test suite. HYPOTHESIS_PROFILE=thorough for a long run.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
