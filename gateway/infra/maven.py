"""Fetch the Kafka broker jars and the Apicurio Registry app from Maven Central with ``mvn``.

Both fetches are idempotent: they return at once when the artifacts are already in place, and they
hold a file lock so that two processes (say, two pytest runs) never fetch into the same directory at
the same time. Failures raise :class:`InfraError` with the tail of Maven's output.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.errors import InfraError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
KAFKA_POM = KAFKA_DIR / "pom.xml"
KAFKA_LIBS_DIR = KAFKA_DIR / "target" / "libs"
KAFKA_LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"

REGISTRY_DIR = REPO_ROOT / "deploy" / "registry"
REGISTRY_TARGET_DIR = REGISTRY_DIR / "target"
# 3.0.9 is the newest Apicurio 3.x on Maven Central that runs on Java 17 (3.3.x needs Java 21).
APICURIO_VERSION = "3.0.9"
APICURIO_ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
APICURIO_ARCHIVE = REGISTRY_TARGET_DIR / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
APICURIO_APP_DIR = REGISTRY_TARGET_DIR / f"apicurio-registry-app-{APICURIO_VERSION}"
APICURIO_RUNNER_JAR = APICURIO_APP_DIR / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"

# 2.8 (Maven 3.8's default, pinned here for repeatability), not 3.x: 3.x reads the artifact's pom
# and fails because its parent, io.apicurio:apicurio-registry:pom, is not on Central; 2.8 does not.
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:2.8"
# Written into the libs dir after a successful fetch; holds the pom's hash, so editing the pom
# (a version bump) triggers a clean re-fetch instead of mixing two Kafka versions on the classpath.
_LIBS_STAMP = ".fetched-pom-sha256"
_MVN_TIMEOUT_S = 900.0
# Maven 3.8 prints colour resets even in batch mode with style.color=never.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_TAIL_LINES = 40


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java`` when set, else the one on ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise InfraError("java not found: install a JDK 17+ or set JAVA_HOME")
    return found


def find_mvn() -> str:
    """The ``mvn`` executable on ``PATH``."""
    found = shutil.which("mvn")
    if found is None:
        raise InfraError("mvn not found on PATH: install Apache Maven 3.8+")
    return found


def kafka_version() -> str:
    """The Kafka version pinned in ``deploy/kafka/pom.xml``."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", _read_pom())
    if match is None:
        raise InfraError(f"no <kafka.version> property in {KAFKA_POM}")
    return match.group(1)


def kafka_libs_present() -> bool:
    """True when ``deploy/kafka/target/libs`` holds a complete fetch of the current pom."""
    stamp = KAFKA_LIBS_DIR / _LIBS_STAMP
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest()


def ensure_kafka_libs(*, force: bool = False) -> Path:
    """Copy the broker's runtime jars to ``deploy/kafka/target/libs`` unless already there."""
    if not force and kafka_libs_present():
        return KAFKA_LIBS_DIR
    with _file_lock(KAFKA_DIR / "target" / ".fetch.lock"):
        # Another process may have finished the fetch while we waited for the lock.
        if not force and kafka_libs_present():
            return KAFKA_LIBS_DIR
        stamp = KAFKA_LIBS_DIR / _LIBS_STAMP
        if force or stamp.is_file():
            # A stamp that does not match means the pom changed: start from an empty dir.
            shutil.rmtree(KAFKA_LIBS_DIR, ignore_errors=True)
        log.info("fetching Kafka %s jars with mvn into %s", kafka_version(), KAFKA_LIBS_DIR)
        _run_mvn(["package"], cwd=KAFKA_DIR)
        broker_jar = KAFKA_LIBS_DIR / f"kafka_2.13-{kafka_version()}.jar"
        if not broker_jar.is_file():
            raise InfraError(f"mvn succeeded but {broker_jar} is missing; check {KAFKA_POM}")
        stamp.write_text(_pom_digest() + "\n")
    return KAFKA_LIBS_DIR


def registry_app_present() -> bool:
    """True when the Apicurio app is unpacked (it is renamed into place only once complete)."""
    return APICURIO_RUNNER_JAR.is_file()


def ensure_registry_app(*, force: bool = False) -> Path:
    """Download and unpack Apicurio Registry unless already there; returns the runner jar."""
    if not force and registry_app_present():
        return APICURIO_RUNNER_JAR
    REGISTRY_TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with _file_lock(REGISTRY_TARGET_DIR / ".fetch.lock"):
        if not force and registry_app_present():
            return APICURIO_RUNNER_JAR
        if force or not APICURIO_ARCHIVE.is_file():
            log.info("fetching %s with mvn into %s", APICURIO_ARTIFACT, REGISTRY_TARGET_DIR)
            # The CLI form of dependency:copy, not a pom: the app's parent pom is not on Central,
            # so a project declaring the artifact cannot resolve it.
            _run_mvn(
                [
                    f"{_DEPENDENCY_PLUGIN}:copy",
                    f"-Dartifact={APICURIO_ARTIFACT}",
                    f"-DoutputDirectory={REGISTRY_TARGET_DIR}",
                ],
                cwd=REGISTRY_TARGET_DIR,
            )
        _unpack(APICURIO_ARCHIVE, APICURIO_APP_DIR)
        if not registry_app_present():
            raise InfraError(f"{APICURIO_ARCHIVE} did not contain {APICURIO_RUNNER_JAR.name}")
    return APICURIO_RUNNER_JAR


def package_module(module_dir: Path) -> None:
    """``mvn package`` in a Maven module (tests/jvm's reader), one process at a time.

    Its dependencies land in ``~/.m2`` on the first build; later builds need no network.
    """
    with _file_lock(module_dir / "target" / ".build.lock"):
        _run_mvn(["package"], cwd=module_dir)


def fetch_all(*, force: bool = False) -> None:
    """Fetch both the Kafka jars and the registry app."""
    ensure_kafka_libs(force=force)
    ensure_registry_app(force=force)


def tail_text(text: str, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text`` without terminal colour codes, for error messages."""
    plain = _ANSI_ESCAPE.sub("", text)
    return "\n".join(plain.rstrip().splitlines()[-lines:])


def _read_pom() -> str:
    try:
        return KAFKA_POM.read_text(encoding="utf-8")
    except OSError as exc:
        raise InfraError(f"cannot read {KAFKA_POM}: {exc}") from exc


def _pom_digest() -> str:
    return hashlib.sha256(_read_pom().encode()).hexdigest()


def _run_mvn(args: Sequence[str], *, cwd: Path) -> None:
    # java is checked first because mvn's own message for a missing JDK is obscure.
    find_java()
    argv = [find_mvn(), "-B", "-q", "-Dstyle.color=never", *args]
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_MVN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else ""
        raise InfraError(
            f"mvn timed out after {_MVN_TIMEOUT_S:.0f} s: {' '.join(argv)}\n{tail_text(output)}"
        ) from exc
    except OSError as exc:
        raise InfraError(f"cannot run mvn: {exc}") from exc
    if result.returncode != 0:
        raise InfraError(
            f"mvn failed with exit code {result.returncode} in {cwd}: {' '.join(argv)}\n"
            f"{tail_text(result.stdout)}"
        )


def _unpack(archive: Path, dest: Path) -> None:
    # Unpack beside the destination and rename, so a half-unpacked tree is never taken as present.
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
    except (OSError, tarfile.TarError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        # A truncated download would fail the same way forever: drop it so the next call refetches.
        archive.unlink(missing_ok=True)
        raise InfraError(f"cannot unpack {archive}: {exc}") from exc
    staging.rename(dest)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
