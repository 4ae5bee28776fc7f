"""The worker's HTTP side for Kubernetes and Prometheus: ``/metrics``, ``/healthz``, ``/readyz``.

``/healthz`` answers 200 while the process is alive and its event loop turns (a liveness probe
that fails means "restart me"); ``/readyz`` answers 200 once the worker has started streaming and
is not draining, 503 otherwise, with a JSON body saying why.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.errors import ConfigError

ReadinessCheck = Callable[[], tuple[bool, dict[str, object]]]


class StatusServer:
    """Serves metrics and probes on one port."""

    def __init__(
        self, registry: CollectorRegistry, readiness: ReadinessCheck, host: str, port: int
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            # A port in use (another gateway, an old pod) is the operator's to fix: one line.
            raise ConfigError(
                f"status.port {self._port} on {self._host} cannot be bound: {exc.strerror or exc}"
            ) from exc
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, details = self._readiness()
        body = orjson.dumps({"ready": ready, **details}, default=str)
        return web.Response(
            body=body, status=200 if ready else 503, content_type="application/json"
        )
