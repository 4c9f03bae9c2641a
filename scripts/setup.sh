#!/usr/bin/env bash
# Make .venv with mybackprop, PyTorch 2.13.0 (the CPU build), JAX and the test tools.
# Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: $python is older than Python 3.11; set PYTHON=python3.11 (or newer)" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.mybackprop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing mybackprop with torch==2.13.0 (CPU) and jax into .venv ..." >&2
    # This machine's pip configuration names index folders that may be absent; say so once.
    .venv/bin/pip install --quiet --disable-pip-version-check -e '.[all,test]' \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    if .venv/bin/pip list 2>/dev/null | grep -i '^nvidia-'; then
        echo "setup: CUDA (nvidia-*) packages were installed; torch must be exactly 2.13.0" >&2
        exit 1
    fi
    touch "$stamp"
fi
# --isolate runs each candidate in a bubblewrap sandbox (Debian's bubblewrap). Install it where
# we can (root, apt); elsewhere isolated candidates run in plain processes and runs say so.
if ! command -v bwrap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's bubblewrap for --isolate's sandbox ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap \
        >/dev/null) || echo "setup: could not install bubblewrap; --isolate runs unsandboxed" >&2
fi
