# Sourced by build.sh and smoke.sh: make a Docker engine answer, and export DOCKER_HOST to it.
#
# An engine that already answers (DOCKER_HOST, or the default socket) is used as it is. Otherwise
# Debian's engine (apt-get install docker.io) is started here, as root, in the background, on a
# socket of its own (/run/binance-gateway-docker/docker.sock) and with its own data root: the test
# suite picks Docker containers for Kafka whenever the default socket answers (tests/conftest.py),
# and on machines without Docker Hub those containers cannot be pulled, so this engine must not
# answer there. It stays up for the next build; `deploy/docker/engine.sh stop` ends it.
#
# Its network is the host's only (--bridge=none, no iptables rules): builds and runs use
# --network host, which needs no bridge, no NAT and no kernel modules a sandbox may lack.

ENGINE_DIR=/run/binance-gateway-docker
ENGINE_SOCKET=unix://$ENGINE_DIR/docker.sock
ENGINE_DATA=/var/lib/binance-gateway-docker
ENGINE_LOG=$ENGINE_DIR/dockerd.log

engine_answers() { docker info >/dev/null 2>&1; }

ensure_engine() {
    if engine_answers; then
        return
    fi
    export DOCKER_HOST=$ENGINE_SOCKET
    if engine_answers; then
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "no Docker engine answers, and starting one needs root" >&2
        return 1
    fi
    if ! command -v dockerd >/dev/null; then
        echo "installing Debian's Docker engine (docker.io)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    mkdir -p "$ENGINE_DIR" "$ENGINE_DATA"
    echo "starting dockerd on $ENGINE_SOCKET (log: $ENGINE_LOG)" >&2
    # setsid: its own session, so neither make's nor a terminal's end takes it down.
    setsid dockerd \
        --host "$ENGINE_SOCKET" \
        --data-root "$ENGINE_DATA" \
        --exec-root "$ENGINE_DIR/exec" \
        --pidfile "$ENGINE_DIR/dockerd.pid" \
        --bridge=none --iptables=false --ip6tables=false \
        >"$ENGINE_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
        if engine_answers; then
            return
        fi
        sleep 0.5
    done
    echo "dockerd did not answer within 60 s; its log ends with:" >&2
    tail -n 30 "$ENGINE_LOG" >&2
    return 1
}

stop_engine() {
    local pid
    pid=$(cat "$ENGINE_DIR/dockerd.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-start}" in
        start) ensure_engine && echo "DOCKER_HOST=${DOCKER_HOST:-default}" ;;
        stop) stop_engine ;;
        *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
    esac
fi
