#!/usr/bin/env bash
# Set up, regenerate the reference pages from the code, then build the documentation site into
# site/ with MkDocs (offline: the built-in theme, no plugin that fetches anything).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/python scripts/docs.py
.venv/bin/mkdocs build --strict --quiet
echo "docs: open site/index.html"
