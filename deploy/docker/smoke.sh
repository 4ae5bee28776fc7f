#!/usr/bin/env bash
# deploy/docker/smoke.sh [TAG]: build the image (build.sh) and run it against a local Kafka and the
# simulator, locked down as Kubernetes runs it (gateway/infra/image.py says what is checked).
# Prints what it measured; exits non-zero if the image does not pass.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=${1:-${IMAGE:-binance-gateway:dev}}
cd "$ROOT"
# shellcheck source=engine.sh
source deploy/docker/engine.sh
ensure_engine
began=$(date +%s)
bash deploy/docker/build.sh "$TAG"
built=$(date +%s)
"${PYTHON:-.venv/bin/python}" -m gateway.infra.image smoke "$TAG"
done_at=$(date +%s)
echo "build $((built - began)) s, smoke run $((done_at - built)) s"
