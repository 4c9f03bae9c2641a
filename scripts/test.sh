#!/usr/bin/env bash
# Set up, then lint and run the test suite. HYPOTHESIS_PROFILE=thorough for a long run.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The HTML report's browser test needs Debian's chromium. Install it where we can (root, apt);
# elsewhere that one test skips and says why.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing Debian's chromium for the browser test ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        >/dev/null) || echo "test: could not install chromium; the browser test will skip" >&2
fi
.venv/bin/ruff check --quiet .
# Two workers (pytest-xdist), one per core of these machines; `-n 0` (or -n N) after it wins.
exec .venv/bin/python -m pytest -n "${MYBACKPROP_TEST_WORKERS:-2}" "$@"
