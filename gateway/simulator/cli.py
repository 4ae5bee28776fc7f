"""Command-line entry points: ``gateway simulate`` and ``python -m gateway.simulator``.

Both run :func:`~gateway.simulator.exchange.serve` until interrupted and print one JSON line with
the URLs once both servers listen, so scripts (``gateway.simulator.bench``) can read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator, serve


async def serve_forever(
    *, port: int = 0, rest_port: int = 0, symbols: int = 3, rate: float = 10.0, seed: int = 0
) -> None:
    """Serve ``symbols`` simulated symbols until cancelled (what ``gateway simulate`` runs).

    ``rate`` is trades per second per symbol; 0 trades as fast as the subscribers read.
    """
    config = SimulatorConfig(
        symbols=simulated_symbols(symbols),
        seed=seed,
        trades_per_second_per_symbol=rate,
        ws_port=port,
        rest_port=rest_port,
    )
    await serve(config, on_ready=announce)


def announce(simulator: ExchangeSimulator) -> None:
    """Print the URLs as one JSON line on stdout."""
    urls = {"ws_url": simulator.ws_url, "rest_url": simulator.rest_url}
    print(orjson.dumps(urls).decode(), flush=True)  # noqa: T201 - the command's output


def parse_args(argv: list[str] | None = None) -> tuple[SimulatorConfig, bool]:
    """The configuration asked for on the command line, and whether to run on uvloop."""
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator", description=__doc__)
    parser.add_argument("--symbols", default="3", help="a count, or comma-separated symbols")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rate", type=float, default=10.0, help="trades/s per symbol; 0 = as fast as possible"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--rest-port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=None, help="close connections after s")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args(argv)
    symbols = (
        simulated_symbols(int(args.symbols))
        if args.symbols.isdigit()
        else tuple(symbol.strip().upper() for symbol in args.symbols.split(",") if symbol)
    )
    config = SimulatorConfig(
        symbols=symbols,
        seed=args.seed,
        trades_per_second_per_symbol=args.rate,
        host=args.host,
        ws_port=args.ws_port,
        rest_port=args.rest_port,
        connection_lifetime_s=args.lifetime,
    )
    return config, args.uvloop


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config, use_uvloop = parse_args(argv)
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if use_uvloop:
        import uvloop  # imported only on request: not every platform has it

        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(config, on_ready=announce))
