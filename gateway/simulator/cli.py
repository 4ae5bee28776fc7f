"""Command-line entry points: ``gateway simulate`` and ``python -m gateway.simulator``.

Both run :func:`~gateway.simulator.exchange.serve` until interrupted and print one JSON line with
the URLs once both servers listen, so scripts (``gateway.simulator.bench``) can read them. With
``--replay capture.jsonl`` they serve a recorded capture instead (:mod:`.replay`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from gateway.simulator.config import SimulatorConfig, market_symbols
from gateway.simulator.exchange import ExchangeSimulator, serve
from gateway.simulator.faults import FaultKind
from gateway.simulator.markets import Market
from gateway.simulator.replay import ReplayServer, read_capture


async def serve_forever(
    *,
    port: int = 0,
    rest_port: int = 0,
    symbols: int = 3,
    rate: float = 10.0,
    seed: int = 0,
    market: str = "spot",
    fault_rate: float = 0.0,
    faults: str = "",
    replay: str | None = None,
    replay_speed: float = 1.0,
) -> None:
    """Serve ``symbols`` simulated symbols until cancelled (what ``gateway simulate`` runs).

    ``rate`` is trades per second per symbol; 0 trades as fast as the subscribers read.
    ``market`` is ``spot``, ``usdm`` or ``coinm``. ``fault_rate`` random faults per second,
    drawn from the comma-separated ``faults`` kinds (empty = all but ``server_shutdown``).
    ``replay`` serves a JSONL capture at ``replay_speed`` x on ``port`` instead.
    """
    if replay is not None:
        await serve_replay(Path(replay), port=port, speed=replay_speed)
        return
    chosen = Market(market)
    config = SimulatorConfig(
        market=chosen,
        symbols=market_symbols(chosen, symbols),
        seed=seed,
        trades_per_second_per_symbol=rate,
        ws_port=port,
        rest_port=rest_port,
        fault_rate=fault_rate,
        fault_kinds=parse_fault_kinds(faults),
    )
    await serve(config, on_ready=announce)


def parse_fault_kinds(text: str) -> tuple[str, ...]:
    """``"drop,gap"`` -> ``("drop", "gap")``, each checked.

    Raises:
        ValueError: an unknown fault kind.
    """
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    for kind in kinds:
        FaultKind(kind)
    return kinds


async def serve_replay(path: Path, *, port: int, speed: float) -> None:
    """Serve a capture to every connection until cancelled."""
    async with ReplayServer(read_capture(path), speed=speed, port=port) as server:
        print(orjson.dumps({"ws_url": server.url}).decode(), flush=True)  # noqa: T201
        await asyncio.get_running_loop().create_future()


def announce(simulator: ExchangeSimulator) -> None:
    """Print the URLs as one JSON line on stdout."""
    urls = {"ws_url": simulator.ws_url, "rest_url": simulator.rest_url}
    print(orjson.dumps(urls).decode(), flush=True)  # noqa: T201 - the command's output


def parse_args(argv: list[str] | None = None) -> tuple[SimulatorConfig, bool]:
    """The configuration asked for on the command line, and whether to run on uvloop."""
    args = _parser().parse_args(argv)
    market = Market(args.market)
    symbols = (
        market_symbols(market, int(args.symbols))
        if args.symbols.isdigit()
        else tuple(symbol.strip().upper() for symbol in args.symbols.split(",") if symbol)
    )
    config = SimulatorConfig(
        market=market,
        symbols=symbols,
        seed=args.seed,
        trades_per_second_per_symbol=args.rate,
        host=args.host,
        ws_port=args.ws_port,
        rest_port=args.rest_port,
        connection_lifetime_s=args.lifetime,
        fault_rate=args.fault_rate,
        fault_kinds=parse_fault_kinds(args.faults),
    )
    return config, args.uvloop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator", description=__doc__)
    parser.add_argument("--market", choices=[m.value for m in Market], default="spot")
    parser.add_argument("--symbols", default="3", help="a count, or comma-separated symbols")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rate", type=float, default=10.0, help="trades/s per symbol; 0 = as fast as possible"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--rest-port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=86_400.0, help="cut connections after s")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="random faults per second")
    parser.add_argument(
        "--faults", default="", help="fault kinds for the random mix, e.g. drop,gap"
    )
    parser.add_argument("--replay", type=Path, default=None, help="serve this JSONL capture")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if args.uvloop:
        import uvloop  # imported only on request: not every platform has it

        runner = uvloop.run
    if args.replay is not None:
        with contextlib.suppress(KeyboardInterrupt):
            runner(serve_replay(args.replay, port=args.ws_port, speed=args.speed))
        return
    config, _ = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(config, on_ready=announce))
