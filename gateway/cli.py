"""``gateway run | demo | plan | topics | tail | simulate | bench``: the command line, built once on settings.

Errors a user can fix end in one line on stderr: exit code 2 for configuration, 3 for a topic that
does not exist (``gateway tail``), 1 for the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

import gateway
from gateway.binance.markets import Market
from gateway.errors import ConfigError, GatewayError, TopicNotFoundError
from gateway.logs import configure_logging
from gateway.runtime.loop import run_async
from gateway.settings import load_settings

EXIT_NO_TOPIC = 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Binance → Kafka gateway: exact Avro records of Binance's live streams.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"binance-gateway {gateway.__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Binance → Kafka gateway: exact Avro records of Binance's live streams."""


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user-fixable error ends as one line on stderr and an exit code, never a traceback storm."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except TopicNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_NO_TOPIC) from None
    except GatewayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file.", exists=False)
]


@app.command()
def run(
    config: ConfigOption = None,
    local_stack: Annotated[
        bool,
        typer.Option(
            "--local-stack", help="Start (or reuse) a local Kafka + schema registry and use them."
        ),
    ] = False,
) -> None:
    """Stream Binance into Kafka until SIGTERM / Ctrl-C."""
    from gateway.commands.run import run_gateway

    with user_errors():
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.json_format)
        run_async(run_gateway(settings, local_stack=local_stack), uvloop=settings.runtime.uvloop)


@app.command()
def demo(
    symbols: Annotated[int, typer.Option(help="How many simulated spot symbols.")] = 5,
    rate: Annotated[float, typer.Option(help="Trades per second per symbol.")] = 20.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    status_port: Annotated[
        int, typer.Option(help="Metrics and probes on 127.0.0.1 at this port (0 = any free).")
    ] = 8000,
) -> None:
    """Local Kafka + registry + Binance simulator + gateway, with a live view of what flows.

    Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stop everything, the JVMs included.
    """
    from gateway.commands.demo import run_demo

    configure_logging("WARNING", json_format=False)
    with user_errors():
        run_async(
            run_demo(symbols=symbols, rate=rate, duration_s=duration, status_port=status_port)
        )


@app.command()
def plan(
    config: ConfigOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not fetch exchangeInfo: explicit symbols only.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON.")
    ] = False,
) -> None:
    """Print the shard plan: per shard its symbols, streams, connections and expected load."""
    from gateway.commands.plan import run_plan

    configure_logging("WARNING", json_format=False)
    with user_errors():
        settings = load_settings(config)
        run_async(
            run_plan(
                settings.binance,
                offline=offline,
                as_json=json_output,
                accounts=settings.accounts,
            )
        )


@app.command()
def tail(
    topic: Annotated[list[str], typer.Argument(help="Topic(s) to read, e.g. binance.spot.trade")],
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    registry: Annotated[
        str | None,
        typer.Option(help="Schema registry URL (ccompat API), for registry-framed values."),
    ] = "http://127.0.0.1:8081/apis/ccompat/v7",
    limit: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest record.")] = True,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Take Kafka's address and SASL/TLS settings, and the registry's URL, login and "
            "TLS settings (when it has a url), from this file.",
        ),
    ] = None,
) -> None:
    """Print decoded records of the gateway's topics, one JSON line each (a friendlier kcat).

    Exit code 3 if a topic does not exist.
    """
    from gateway.commands.tail import run_tail

    configure_logging("WARNING", json_format=False)
    with user_errors():
        security = registry_settings = None
        if config is not None:
            loaded = load_settings(config)
            bootstrap, security = loaded.kafka.bootstrap_servers, loaded.kafka.security
            registry_settings = loaded.registry  # its url, login and TLS, when it has a url
        run_async(
            run_tail(
                topic,
                bootstrap,
                registry,
                limit=limit,
                from_beginning=from_beginning,
                security=security,
                registry=registry_settings,
            )
        )


@app.command()
def topics(
    config: ConfigOption = None,
    strimzi: Annotated[
        bool,
        typer.Option(
            "--strimzi", help="Print Strimzi KafkaTopic and KafkaUser resources (YAML) instead."
        ),
    ] = False,
    cluster: Annotated[
        str, typer.Option(help="The Strimzi Kafka cluster (label strimzi.io/cluster).")
    ] = "kafka",
    namespace: Annotated[
        str | None, typer.Option(help="Namespace of the resources (default: none set).")
    ] = None,
    readers: Annotated[
        str, typer.Option(help="KafkaUser that reads the public data topics.")
    ] = "binance-readers",
    password_secret: Annotated[
        str, typer.Option(help="Secret (key `password`) holding the gateway's SCRAM password.")
    ] = "binance-gateway-kafka",
) -> None:
    """Every topic the configuration uses, with its settings, or as Strimzi resources."""
    from gateway.commands.topics import run_topics

    configure_logging("WARNING", json_format=False)
    with user_errors():
        run_topics(
            load_settings(config),
            strimzi=strimzi,
            cluster=cluster,
            namespace=namespace,
            readers=readers,
            password_secret=password_secret,
        )


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="WebSocket port (0 = any free port).")] = 9443,
    rest_port: Annotated[int, typer.Option(help="REST port (0 = any free port).")] = 9444,
    market: Annotated[str, typer.Option(help="spot, usdm or coinm.")] = "spot",
    symbols: Annotated[int, typer.Option(help="How many simulated symbols.")] = 5,
    rate: Annotated[
        float, typer.Option(help="Trades per second per symbol; 0 = as fast as clients read.")
    ] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same market.")] = 1,
    fault_rate: Annotated[
        float, typer.Option(help="Random faults per second (soak tests); 0 = none.")
    ] = 0.0,
    faults: Annotated[
        str, typer.Option(help="Comma-separated fault kinds to draw from (empty = all).")
    ] = "",
    replay: Annotated[
        Path | None, typer.Option(help="Serve a JSONL capture of raw frames instead.")
    ] = None,
    speed: Annotated[float, typer.Option(help="Replay speed factor.")] = 1.0,
) -> None:
    """Serve the Binance exchange simulator (WebSocket + REST) until Ctrl-C."""
    from gateway.simulator.cli import serve_forever

    configure_logging("INFO", json_format=False)
    with user_errors():
        if market not in {m.value for m in Market}:
            raise ConfigError(f"--market must be spot, usdm or coinm, not {market!r}")
        run_async(
            serve_forever(
                port=port,
                rest_port=rest_port,
                symbols=symbols,
                rate=rate,
                seed=seed,
                market=market,
                fault_rate=fault_rate,
                faults=faults,
                replay=None if replay is None else str(replay),
                replay_speed=speed,
            )
        )


@app.command()
def bench(
    quick: Annotated[bool, typer.Option(help="CI-sized: two scenarios, short windows.")] = False,
    extras: Annotated[
        bool, typer.Option(help="Also books, rotation, scale-out and fail-over (simulator).")
    ] = False,
    output: Annotated[Path, typer.Option(help="Where results are saved.")] = Path("bench/results"),
) -> None:
    """The gateway and a minimal reference pipeline, same frames, one real broker; saved."""
    from gateway.commands.bench import run_bench

    configure_logging("WARNING", json_format=False)
    with user_errors():
        run_async(run_bench(output_dir=output, quick=quick, extras=extras))


SchemaAction = Annotated[str, typer.Argument(help="list | validate | register | check | release")]


@app.command()
def schemas(
    action: SchemaAction = "list",
    registry: Annotated[
        str | None,
        typer.Option(
            help="Schema registry URL (Confluent API); default: the --config file's "
            "registry.url, else http://127.0.0.1:8081/apis/ccompat/v7."
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Topic prefix the subjects derive from; default: --config's, else binance."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Take the registry's login, TLS and rules settings from this file.",
        ),
    ] = None,
    manage_compatibility: Annotated[
        bool | None,
        typer.Option(
            "--manage-compatibility/--keep-compatibility",
            help="register: raise looser subject rules to the project's promise, or leave them "
            "and refuse (default: the config's registry.manage_compatibility, else keep).",
        ),
    ] = None,
) -> None:
    """List, validate, register or compatibility-check the Avro schemas in schemas/."""
    from gateway.commands.schemas import run_schemas

    configure_logging("WARNING", json_format=False)
    with user_errors():
        settings = load_settings(config)
        section = settings.registry
        if registry is not None:
            # Validated again, so credentials in a --registry URL leave the URL (and are masked).
            dumped = section.model_dump(exclude={"url"})
            section = type(section).model_validate({**dumped, "url": registry})
        elif section.url is None:
            section = section.model_copy(update={"url": "http://127.0.0.1:8081/apis/ccompat/v7"})
        if manage_compatibility is not None:
            section = section.model_copy(update={"manage_compatibility": manage_compatibility})
        chosen_prefix = prefix or settings.kafka.topic_prefix
        raise typer.Exit(run_async(run_schemas(action, section, chosen_prefix)))


def main() -> None:
    """Console-script entry point."""
    app()
