"""Render the Kubernetes manifests in ``deploy/k8s`` with kustomize, on any machine of ours.

``kubectl kustomize`` when kubectl is on the PATH; otherwise a pinned kustomize built once from
the Go module proxy into ``.cache/bin/`` (``go install``, about a minute the first time). No
prebuilt binary is downloaded: only Go modules, which every machine of ours can fetch.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import InfraError
from gateway.infra.maven import REPO_ROOT

log = logging.getLogger(__name__)

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
# v5.8.2 builds with Go 1.26 (its kustomize/api v0.21.2); newer ones may need a newer Go.
KUSTOMIZE_VERSION = "v5.8.2"
CACHE_BIN_DIR = REPO_ROOT / ".cache" / "bin" / f"kustomize-{KUSTOMIZE_VERSION}"
_GO_FALLBACKS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
_RENDER_TIMEOUT_S = 120.0


def kustomize_command() -> list[str]:
    """The argv prefix that renders a kustomization: ``[... , <dir>]`` completes it."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    return [str(ensure_kustomize()), "build"]


def ensure_kustomize() -> Path:
    """The pinned kustomize binary, built with ``go install`` on first use.

    Raises:
        InfraError: no Go toolchain, or the build failed (with its output).
    """
    return go_install(KUSTOMIZE_MODULE, KUSTOMIZE_VERSION, CACHE_BIN_DIR, "kustomize")


def go_install(
    module: str, version: str, bin_dir: Path, name: str, timeout_s: float = 900.0
) -> Path:
    """``bin_dir/name``, built from the Go module proxy with ``go install module@version`` unless
    it is there already (the tools the deploy tests need and no package ships).

    Raises:
        InfraError: no Go toolchain, or the build failed (with its output).
    """
    binary = bin_dir / name
    if os.access(binary, os.X_OK):
        return binary
    go = find_go()
    bin_dir.mkdir(parents=True, exist_ok=True)
    log.info("building %s %s into %s (first use only)", name, version, bin_dir)
    # GOTOOLCHAIN=local: build with this machine's Go, never fetch another toolchain.
    env = {**os.environ, "GOBIN": str(bin_dir), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    try:
        result = subprocess.run(
            [go, "install", f"{module}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"building {name} took over {timeout_s:.0f} s") from exc
    if result.returncode != 0 or not os.access(binary, os.X_OK):
        raise InfraError(
            f"go install {module}@{version} failed "
            f"(exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    return binary


def find_go() -> str:
    found = shutil.which("go") or next((g for g in _GO_FALLBACKS if os.access(g, os.X_OK)), None)
    if found is None:
        raise InfraError(
            "rendering deploy/k8s needs kubectl (kubectl kustomize) or a Go toolchain to build "
            f"kustomize {KUSTOMIZE_VERSION}; neither is on the PATH"
        )
    return found


def render(kustomization_dir: Path) -> list[dict[str, Any]]:
    """Every document ``kustomize build <dir>`` prints, parsed.

    Raises:
        InfraError: kustomize rejected the kustomization (with its message).
    """
    argv = [*kustomize_command(), str(kustomization_dir)]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=_RENDER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{' '.join(argv)} took over {_RENDER_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        raise InfraError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
