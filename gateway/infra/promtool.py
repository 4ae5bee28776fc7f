"""``promtool`` for linting and unit-testing the alert rules, from Debian's ``prometheus`` package.

Used as it is if it is on the PATH. Otherwise the package is downloaded with ``apt-get download``
(no installation, no service started) and only ``promtool`` is unpacked into
``deploy/prometheus/target/``, where later runs find it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway.errors import InfraError

TARGET = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "target"
CACHED = TARGET / "promtool"


def ensure_promtool() -> Path:
    """The path of a working promtool.

    Raises:
        InfraError: none on the PATH and Debian's package could not be had (the reason).
    """
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if CACHED.is_file():
        return CACHED
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise InfraError("promtool is not on the PATH and this is no Debian system (no apt-get)")
    with tempfile.TemporaryDirectory() as download:
        fetched = _apt_get(["download", "prometheus"], download)
        if fetched.returncode != 0:
            # A fresh machine may have no package lists yet.
            _apt_get(["update", "-q"], download)
            fetched = _apt_get(["download", "prometheus"], download)
        debs = list(Path(download).glob("prometheus_*.deb"))
        if not debs:
            reason = (fetched.stderr.strip().splitlines() or ["no package"])[-1]
            raise InfraError(f"cannot download Debian's prometheus package: {reason}")
        unpacked = Path(download) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True, timeout=120)
        binary = unpacked / "usr" / "bin" / "promtool"
        if not binary.is_file():
            raise InfraError("Debian's prometheus package has no usr/bin/promtool")
        # promtool only: the package also carries the server and its web assets (~90 MB).
        TARGET.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, CACHED)
    return CACHED


def _apt_get(arguments: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *arguments], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
