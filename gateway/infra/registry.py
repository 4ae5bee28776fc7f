"""A real schema registry: Apicurio Registry 3.0.9 (in-memory storage) run from its Maven archive.

Clients use its Confluent-compatible API, :attr:`SchemaRegistry.url` (``.../apis/ccompat/v7``).
It stands for a data platform's registry: its global compatibility rule is set to the project's
promise (FULL_TRANSITIVE), as a platform team would, so the gateway's default (leave the rules
alone, refuse a looser one) starts against it. All calls block; from async code, run them in a thread.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.adapters.registry_settings import PROMISED_COMPATIBILITY
from gateway.errors import InfraError, InvalidStateError
from gateway.infra import maven
from gateway.infra.kafka import DEFAULT_START_TIMEOUT_S
from gateway.infra.process import (
    DEFAULT_STOP_GRACE_S,
    LOOPBACK,
    WORKDIR_PROPERTY,
    JavaProcess,
    forget_at_exit,
    reserve_ports,
    stop_at_exit,
)

log = logging.getLogger(__name__)

CCOMPAT_PATH = "/apis/ccompat/v7"
_READY_PATH = f"{CCOMPAT_PATH}/subjects"
_POLL_S = 0.2
_PROBE_TIMEOUT_S = 1.0


class SchemaRegistry:
    """One Apicurio Registry JVM on a loopback port, state in memory (gone when it stops).

    Without ``work_dir`` its log lives in a temporary directory that :meth:`stop` deletes.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        work_dir: Path | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        stop_grace: float = DEFAULT_STOP_GRACE_S,
        heap: str = "512m",
        stop_at_exit: bool = True,
        compatibility: str | None = PROMISED_COMPATIBILITY,
    ) -> None:
        self._compatibility = compatibility
        self._wanted_port = port
        self._given_work_dir = work_dir
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._heap = heap
        self._stop_at_exit = stop_at_exit
        self._port: int | None = None
        self._work_dir: Path | None = None
        self._process: JavaProcess | None = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"SchemaRegistry({where})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the root of Apicurio's own APIs and UI."""
        if self._port is None:
            raise InvalidStateError("the schema registry has not been started")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        """The Confluent-compatible API, what ``schema.registry.url`` takes."""
        return self.base_url + CCOMPAT_PATH

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path:
        if self._work_dir is None:
            raise InvalidStateError("the schema registry has not been started")
        return self._work_dir / "registry.log"

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def start(self) -> Self:
        """Fetch the app if needed, start it and wait until the ccompat API answers."""
        if self.is_running():
            raise InvalidStateError(f"{self!r} is already started")
        began = time.monotonic()
        jar = maven.ensure_registry_app()
        java = maven.find_java()
        try:
            self._prepare()
            self._process = JavaProcess(
                "schema registry",
                self._argv(java, jar),
                log_path=self.log_path,
                pid_path=self.work_dir / "registry.pid",
            )
            self._process.start()
            self._wait_ready(self._process)
            if self._compatibility is not None:
                set_global_compatibility(self.url, self._compatibility)
        except BaseException:
            # Nothing left behind; the error carries the log tail, so the temp dir can go too.
            self._stop_with_grace(0.0)
            raise
        if self._stop_at_exit:
            stop_at_exit(self)
        log.info("schema registry ready at %s in %.1f s", self.url, time.monotonic() - began)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period. Idempotent."""
        self._stop_with_grace(self._stop_grace)

    def _stop_with_grace(self, grace: float) -> None:
        if self._process is not None:
            self._process.stop(grace)
        forget_at_exit(self)
        if self._given_work_dir is None and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None
            self._port = None

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise InvalidStateError("the schema registry has not been started")
        return self._work_dir

    def _prepare(self) -> None:
        if self._work_dir is None:
            if self._given_work_dir is not None:
                self._work_dir = self._given_work_dir.resolve()
            else:
                self._work_dir = Path(tempfile.mkdtemp(prefix="schema-registry-")).resolve()
        (self._work_dir / "tmp").mkdir(parents=True, exist_ok=True)
        if self._port is None:
            explicit = [] if self._wanted_port is None else [self._wanted_port]
            self._port = reserve_ports(explicit, 1 - len(explicit))[0]

    def _argv(self, java: str, jar: Path) -> list[str]:
        tmp = self.work_dir / "tmp"
        return [
            java,
            f"-Xmx{self._heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            f"-Djava.io.tmpdir={tmp}",
            f"-D{WORKDIR_PROPERTY}={self.work_dir}",
            f"-Dquarkus.http.host={LOOPBACK}",
            f"-Dquarkus.http.port={self._port}",
            # One line per request otherwise; tests make thousands.
            "-Dquarkus.http.access-log.enabled=false",
            # Apicurio refuses deletes by default; tests and the demo clean up after themselves.
            "-Dapicurio.rest.deletion.group.enabled=true",
            "-Dapicurio.rest.deletion.artifact.enabled=true",
            "-Dapicurio.rest.deletion.artifact-version.enabled=true",
            # As Confluent does: the same schema written differently maps to the same id.
            "-Dapicurio.ccompat.use-canonical-hash=true",
            f"-Dapicurio.storage.snapshot.location={tmp}",
            f"-Dapicurio.import.work-dir={tmp}",
            "-jar",
            str(jar),
        ]

    def _wait_ready(self, process: JavaProcess) -> None:
        deadline = time.monotonic() + self._start_timeout
        probe = self.base_url + _READY_PATH
        while not _answers_ok(probe):
            if not process.is_running():
                raise InfraError(
                    f"schema registry exited with code {process.exit_code} during start-up; "
                    f"{process.log_path} ends with:\n{process.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise InfraError(
                    f"schema registry not ready within {self._start_timeout:.1f} s at {probe}; "
                    f"{process.log_path} ends with:\n{process.log_tail()}"
                )
            time.sleep(_POLL_S)


# No proxies: an http_proxy in the environment must not capture requests to loopback.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_ok(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=_PROBE_TIMEOUT_S) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def set_global_compatibility(url: str, level: str) -> None:
    """Set the registry-wide default rule (Confluent API ``PUT /config``), as a platform would."""
    request = urllib.request.Request(
        url.rstrip("/") + "/config",
        data=json.dumps({"compatibility": level}).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="PUT",
    )
    try:
        with _DIRECT.open(request, timeout=10 * _PROBE_TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise InfraError(f"cannot set the global compatibility at {url}: {exc}") from exc
