#!/usr/bin/env bash
# deploy/docker/lock.sh: regenerate requirements.lock, the image's exact Python dependencies with
# their hashes (pip install --require-hashes), from pyproject.toml's dependencies and what the
# builder needs to build the wheel. Run it after changing either; commit the result.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.cache/docker/tools
PIP_TOOLS_VERSION=7.6.2
cd "$ROOT"
if [ ! -x "$TOOLS/bin/pip-compile" ]; then
    python3 -m venv "$TOOLS"
    PIP_FIND_LINKS= "$TOOLS/bin/pip" install -q "pip-tools==$PIP_TOOLS_VERSION"
fi
# PyPI's files only: a local wheel directory (PIP_FIND_LINKS) would add hashes nobody else has.
PIP_FIND_LINKS= "$TOOLS/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links \
    --output-file deploy/docker/requirements.lock \
    pyproject.toml deploy/docker/build-requirements.in
