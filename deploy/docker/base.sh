#!/usr/bin/env bash
# deploy/docker/base.sh: a Python 3.11 base image made from Debian's packages, for machines where
# no image registry (Docker Hub's python:3.11-slim) can be reached. Prints the image's tag.
#
# debootstrap lays a minimal Debian bookworm (its python3 is 3.11, as the project's) with python3,
# python3-venv (ensurepip, for the builder stage) and ca-certificates (TLS to Binance and Kafka);
# `docker import` turns the tree into an image. The tag names the suite and the python3.11
# package version it holds, so a rebuild with the same packages is the same tag, and a security
# update of Python is a new one. The image is built once per engine and reused.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=engine.sh
source "$ROOT/deploy/docker/engine.sh"
ensure_engine

SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates
WORK=$ROOT/.cache/docker/base-$SUITE

# The python3.11 version the suite (and its security updates) would install now.
apt-get update -qq >&2 || true
PY_VERSION=$(apt-cache policy python3.11 | sed -n 's/^  Candidate: //p')
if [ -z "$PY_VERSION" ] || [ "$PY_VERSION" = "(none)" ]; then
    echo "apt-cache knows no python3.11 for $SUITE (run apt-get update on a $SUITE host)" >&2
    exit 1
fi
TAG="binance-gateway-base:$SUITE-python3.11-$(echo "$PY_VERSION" | tr '+~:' '...')"
if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "$TAG"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
rm -rf "$WORK"
mkdir -p "$WORK"
echo "debootstrap $SUITE ($PACKAGES) into $WORK/rootfs" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$WORK/rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}
# Security updates: debootstrap knows only the suite itself.
cat >"$WORK/rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
chroot "$WORK/rootfs" sh -c 'apt-get update -qq && apt-get upgrade -y -qq' \
    >>"$WORK/debootstrap.log" 2>&1
INSIDE=$(chroot "$WORK/rootfs" dpkg-query -W -f '${Version}' python3.11)
if [ "$INSIDE" != "$PY_VERSION" ]; then
    # The host's lists and the tree disagree; name the image after what it holds.
    TAG="binance-gateway-base:$SUITE-python3.11-$(echo "$INSIDE" | tr '+~:' '...')"
fi
# What an image needs no copy of: package lists and caches, docs, man pages, logs.
chroot "$WORK/rootfs" apt-get clean
rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/usr/share/{doc,man,info}/* \
    "$WORK"/rootfs/var/log/* "$WORK"/rootfs/var/cache/debconf/*-old
tar --numeric-owner -C "$WORK/rootfs" -c . |
    docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "debootstrap --variant=minbase --include=$PACKAGES $SUITE" \
        - "$TAG" >/dev/null
rm -rf "$WORK/rootfs"
echo "$TAG"
