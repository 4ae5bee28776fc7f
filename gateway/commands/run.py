"""``gateway run``: pre-flight checks, then the gateway until SIGTERM.

Binance is probed before anything starts, so a machine with no route to Binance fails in seconds
with a message that points at ``make demo`` instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.adapters import binance_rest
from gateway.binance.events import base as events_base
from gateway.errors import RestRequestError, UpstreamError
from gateway.records import codec
from gateway.runtime.loop import install_stop_signals, tune_gc
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


async def check_binance_reachable(settings: GatewaySettings) -> None:
    """Probe every configured market's REST ping; UpstreamError names what is unreachable."""
    binance = settings.binance
    for market in binance.markets:
        try:
            await binance_rest.ping(binance.rest_url(market), market, binance.preflight_timeout_s)
        except RestRequestError as exc:
            raise UpstreamError(
                f"cannot reach Binance {market.value}: {exc}. This machine may have no route to "
                "Binance; `make demo` runs the same pipeline against the bundled simulator."
            ) from exc


def record_writer(native: bool) -> str:
    """Which record writer (and decimal reader) serve, as the start-up line says it (the image's
    smoke run reads it); ``native``: both compiled modules are built (setup.py)."""
    # Without them (no C compiler at install) a trade costs ~3 µs more CPU: say so.
    return "compiled" if native else "pure Python (the compiled modules of setup.py are not built)"


def with_local_stack(settings: GatewaySettings) -> GatewaySettings:
    """Start (or reuse) the local Kafka + registry of ``make kafka-up`` and point settings at it."""
    from gateway.infra.stack import ensure_local_stack

    stack = ensure_local_stack()
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"bootstrap_servers": stack.bootstrap_servers}
            ),
            "registry": settings.registry.model_copy(update={"url": stack.registry_url}),
        }
    )


async def run_gateway(settings: GatewaySettings, *, local_stack: bool = False) -> None:
    """Run until SIGTERM / SIGINT, then drain."""
    await check_binance_reachable(settings)
    if local_stack:
        settings = await asyncio.to_thread(with_local_stack, settings)
    stop = asyncio.Event()
    install_stop_signals(stop)
    gateway = Gateway(settings)
    logger.info(
        "streaming %s into Kafka at %s (event loop: %s; record writer: %s)",
        ", ".join(m.value for m in settings.binance.markets),
        settings.kafka.bootstrap_servers,
        type(asyncio.get_running_loop()).__module__.split(".")[0],  # uvloop or asyncio
        record_writer(codec.NATIVE and events_base.NATIVE),
    )
    running = asyncio.create_task(gateway.run(stop))
    started = asyncio.create_task(gateway.started.wait())
    await asyncio.wait([running, started], return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    if gateway.started.is_set():
        tune_gc()  # start-up's objects are built: see gateway.runtime.loop.tune_gc (measured by bench)
    await running
