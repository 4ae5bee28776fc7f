#!/usr/bin/env bash
# deploy/docker/build.sh [TAG]: build the gateway's image here, with no image registry needed.
#
#   1. a Docker engine: the one that answers, or Debian's, installed and started (engine.sh);
#   2. the bases: a Debian bookworm with its python3.11, made by debootstrap, and the builder's,
#      that one plus gcc and python3.11-dev (base.sh), unless PYTHON_IMAGE and BUILDER_IMAGE name
#      others (python:3.11-slim-bookworm and python:3.11-bookworm where Docker Hub answers);
#   3. the locked dependencies' wheels, downloaded on the host into deploy/docker/wheels (pip
#      checks their hashes here and again in the build);
#   4. deploy/docker/Dockerfile on those bases.
#
# The classic builder (DOCKER_BUILDKIT=0) needs no frontend image and works with Debian's engine;
# --network host: the engine here has no bridge network (engine.sh), and pip reaches PyPI so.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=${1:-${IMAGE:-binance-gateway:dev}}
cd "$ROOT"
# shellcheck source=engine.sh
source deploy/docker/engine.sh
ensure_engine

began=$(date +%s)
if [ -n "${PYTHON_IMAGE:-}" ]; then
    BASE=$PYTHON_IMAGE
    BUILDER=${BUILDER_IMAGE:?"with PYTHON_IMAGE, BUILDER_IMAGE too: the same CPython with gcc"}
else
    BASE=$(bash deploy/docker/base.sh runtime)
    BUILDER=$(bash deploy/docker/base.sh builder)
fi
# Pinned by content: the build starts FROM the bases' image ids, not tags that could move.
BASE_ID=$(docker image inspect -f '{{.Id}}' "$BASE")
BUILDER_ID=$(docker image inspect -f '{{.Id}}' "$BUILDER")
base_done=$(date +%s)
# The host's pip, as set up here (its index, proxy and CAs), whatever the host's own Python: the
# wheels are chosen for the image's CPython 3.11 on bookworm's glibc 2.36. A wheel directory of
# the host's (PIP_FIND_LINKS) could hold builds whose hashes the lock does not know.
platforms=()
for glibc in 2_36 2_35 2_34 2_28 2_17 2_12 2_5; do
    platforms+=(--platform "manylinux_${glibc}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
    --platform manylinux1_x86_64)
PIP_FIND_LINKS= "${PYTHON:-python3}" -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --python-version 3.11 --implementation cp "${platforms[@]}" \
    --require-hashes -r deploy/docker/requirements.lock -d deploy/docker/wheels
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' gateway/__init__.py)
DOCKER_BUILDKIT=0 docker build --network host --quiet \
    --build-arg "PYTHON_IMAGE=$BASE_ID" --build-arg "BUILDER_IMAGE=$BUILDER_ID" \
    --build-arg "VERSION=$VERSION" \
    --label "org.opencontainers.image.base.name=$BASE" \
    --label "org.opencontainers.image.base.digest=$BASE_ID" \
    -f deploy/docker/Dockerfile -t "$TAG" . >/dev/null
done_at=$(date +%s)
size=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "image $TAG ($(docker image inspect -f '{{.Id}}' "$TAG"))"
echo "  base $BASE ($BASE_ID)"
echo "  builder base $BUILDER ($BUILDER_ID)"
echo "  size $((size / 1000000)) MB, user $(docker image inspect -f '{{.Config.User}}' "$TAG")"
echo "  bases ready in $((base_done - began)) s, image built in $((done_at - base_done)) s"
