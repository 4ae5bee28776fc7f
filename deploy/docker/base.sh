#!/usr/bin/env bash
# deploy/docker/base.sh [runtime|builder]: the image's Python 3.11 bases, made from Debian's
# packages, for machines where no image registry (Docker Hub's python:3.11-slim) can be reached.
# Prints the base's tag.
#
# runtime: debootstrap lays a minimal Debian bookworm (its python3 is 3.11, as the project's) with
#   python3, python3-venv (ensurepip, for the builder stage) and ca-certificates (TLS to Binance
#   and Kafka); `docker import` turns the tree into an image. The tag names the suite and the
#   python3.11 package version it holds, so a rebuild with the same packages is the same tag, and a
#   security update of Python is a new one. The image is built once per engine and reused.
# builder: that runtime base plus a C compiler and the headers of that very python3.11 (gcc,
#   libc6-dev, python3.11-dev at the runtime's version), for the Dockerfile's builder stage, which
#   compiles gateway/records/native_writer.pyx. Made FROM the runtime base, so the extension is
#   built against the interpreter that will load it; the runtime base stays without a compiler.
set -euo pipefail
FLAVOUR=${1:-runtime}
case "$FLAVOUR" in
    runtime | builder) ;;
    *) echo "usage: $0 [runtime|builder]" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=engine.sh
source "$ROOT/deploy/docker/engine.sh"
ensure_engine

SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates
BUILDER_PACKAGES="gcc libc6-dev"
WORK=$ROOT/.cache/docker/base-$SUITE

# Sets TAG to the runtime base's tag, making the image unless the engine has it.
runtime_base() {
    # The python3.11 version the suite (and its security updates) would install now.
    apt-get update -qq >&2 || true
    PY_VERSION=$(apt-cache policy python3.11 | sed -n 's/^  Candidate: //p')
    if [ -z "$PY_VERSION" ] || [ "$PY_VERSION" = "(none)" ]; then
        echo "apt-cache knows no python3.11 for $SUITE (run apt-get update on a $SUITE host)" >&2
        exit 1
    fi
    TAG="binance-gateway-base:$SUITE-python3.11-$(echo "$PY_VERSION" | tr '+~:' '...')"
    if docker image inspect "$TAG" >/dev/null 2>&1; then
        return
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
}

# Sets BUILDER_TAG to the builder base's tag, making it FROM the runtime base unless the engine has
# it. python3.11-dev is pinned to the runtime's python3.11: should the mirror have moved on, apt
# fails here (and the next runtime base, named after the new version, starts over) rather than
# giving the builder another Python. --network host: the engine has no bridge (engine.sh).
builder_base() {
    BUILDER_TAG="binance-gateway-base:${TAG#*:}-builder"
    if docker image inspect "$BUILDER_TAG" >/dev/null 2>&1; then
        return
    fi
    local runtime_id version
    runtime_id=$(docker image inspect -f '{{.Id}}' "$TAG")
    version=$(docker run --rm --network host "$runtime_id" dpkg-query -W -f '${Version}' python3.11)
    echo "$BUILDER_TAG: $BUILDER_PACKAGES for python3.11 $version" >&2
    DOCKER_BUILDKIT=0 docker build --network host --quiet --build-arg "BASE=$runtime_id" \
        --build-arg "PY_VERSION=$version" --build-arg "PACKAGES=$BUILDER_PACKAGES" \
        -t "$BUILDER_TAG" - >/dev/null <<'EOF'
ARG BASE
FROM $BASE
ARG PY_VERSION
ARG PACKAGES
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES \
        "python3.11-dev=$PY_VERSION" "libpython3.11-dev=$PY_VERSION" >/dev/null \
 && test "$(dpkg-query -W -f '${Version}' python3.11)" = "$PY_VERSION" \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
EOF
}

runtime_base
if [ "$FLAVOUR" = builder ]; then
    builder_base
    echo "$BUILDER_TAG"
else
    echo "$TAG"
fi
