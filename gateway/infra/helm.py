"""Render the Helm chart in ``deploy/helm/binance-gateway`` on any machine of ours.

``helm`` from the PATH when there is one; otherwise a pinned Helm built once from the Go module
proxy into ``.cache/bin/`` (``go install helm.sh/helm/v3/cmd/helm``, a few minutes the first time;
Debian does not package Helm). As for kustomize (:mod:`gateway.infra.kustomize`), no prebuilt
binary is downloaded: only Go modules.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import InfraError
from gateway.infra.kustomize import go_install
from gateway.infra.maven import REPO_ROOT

log = logging.getLogger(__name__)

CHART_DIR = REPO_ROOT / "deploy" / "helm" / "binance-gateway"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION = "v3.22.1"
CACHE_BIN_DIR = REPO_ROOT / ".cache" / "bin" / f"helm-{HELM_VERSION}"
KUBE_VERSION = "1.37.0"
"""Rendered for this Kubernetes (a Helm built with ``go install`` would otherwise assume 1.20)."""
_BUILD_TIMEOUT_S = 1200.0
_RENDER_TIMEOUT_S = 120.0


def helm_command() -> list[str]:
    """``helm`` from the PATH, or the pinned one (built on first use)."""
    found = shutil.which("helm")
    return [found] if found else [str(ensure_helm())]


def ensure_helm() -> Path:
    """The pinned Helm binary, built with ``go install`` on first use.

    Raises:
        InfraError: no Go toolchain, or the build failed (with its output).
    """
    return go_install(HELM_MODULE, HELM_VERSION, CACHE_BIN_DIR, "helm", _BUILD_TIMEOUT_S)


def helm(*args: str) -> str:
    """Run helm; its standard output.

    Raises:
        InfraError: helm failed (with its message).
    """
    argv = [*helm_command(), *args]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=_RENDER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{' '.join(argv)} took over {_RENDER_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        raise InfraError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def render_chart(
    release: str = "binance-gateway",
    *,
    chart: Path = CHART_DIR,
    namespace: str | None = None,
    values: Sequence[Path] = (),
    set_values: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every document ``helm template`` prints for ``release``, parsed."""
    args = ["template", release, str(chart), "--kube-version", KUBE_VERSION]
    if namespace:
        args += ["--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    return [doc for doc in yaml.safe_load_all(helm(*args)) if doc is not None]
