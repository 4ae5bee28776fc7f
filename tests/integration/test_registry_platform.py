"""The registry belongs to the platform: its rules survive the gateway, its login stays secret.

Against the suite's real registry (Apicurio, Confluent API). Basic auth is proven through a
loopback proxy in front of it that refuses any request without the expected Authorization
header: Apicurio's own authentication needs an OIDC server, which the suite does not run.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.adapters.registry import (
    SchemaRegistryClient,
    basic_authorization,
    topic_for_schema,
    value_subject,
)
from gateway.adapters.registry_settings import RegistrySettings
from gateway.commands import schema_admin
from gateway.errors import RegistryError
from gateway.records.avro import SchemaCatalog
from gateway.records.topics import TopicNamer
from gateway.settings import GatewaySettings
from gateway.simulator.exchange import ExchangeSimulator
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings
from tests.tls_files import make_tls_files

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

GATEWAY = [sys.executable, "-m", "gateway"]
CATALOG = SchemaCatalog.load()
USER, SECRET = "gateway", "s3cr3t-Registry-Pa55"


def subjects_of(prefix: str) -> list[str]:
    namer = TopicNamer(prefix)
    return sorted(value_subject(topic_for_schema(namer, s.key)) for s in CATALOG)


async def rules(url: str, subjects: list[str]) -> set[str]:
    async with SchemaRegistryClient(url) as client:
        return {await client.compatibility(subject) for subject in subjects}


async def set_rules(url: str, subjects: list[str], level: str) -> None:
    async with SchemaRegistryClient(url) as client:
        for subject in subjects:
            await client.set_compatibility(subject, level)  # type: ignore[arg-type]


async def run_cli(*args: str, timeout_s: float = 120) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *GATEWAY, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def config_file(
    tmp_path: Path, sim: ExchangeSimulator, kafka_bootstrap: str, prefix: str, registry: str
) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "binance:\n  markets:\n    spot:\n      symbols: [BTCUSDT]\n"
        f"      rest_url: {sim.rest_url}\n      stream_url: {sim.ws_url}\n"
        f"kafka:\n  bootstrap_servers: {kafka_bootstrap}\n  topic_prefix: {prefix}\n"
        "  partitions: 1\n"
        f"status:\n  port: 0\n  host: 127.0.0.1\nregistry:\n{registry}"
    )
    return str(path)


def btc_settings(
    sim: ExchangeSimulator,
    kafka_bootstrap: str,
    topic_prefix: str,
    registry_url: str,
    **registry: Any,
) -> GatewaySettings:
    """A gateway for BTCUSDT on ``sim``, its registry settings overridden by ``registry``."""
    settings = gateway_settings(
        sim,
        symbols=("BTCUSDT",),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_url=registry_url,
    )
    return settings.model_copy(update={"registry": settings.registry.model_copy(update=registry)})


async def start_and_stop(settings: GatewaySettings) -> None:
    """Run a gateway until it is connected (its start-up's registry steps done), then stop it."""
    running = RunningGateway(settings)
    await running.wait_connected()
    await running.stop()


async def register(registry_url: str, topic_prefix: str) -> tuple[int, str]:
    """``gateway schemas register``: its exit code and stderr."""
    code, _, stderr = await run_cli(
        "schemas", "register", "--registry", registry_url, "--prefix", topic_prefix
    )
    return code, stderr


async def test_a_full_transitive_rule_set_by_the_platform_survives_start_and_register(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    schema_registry_url: str,
    topic_prefix: str,
) -> None:
    subjects = subjects_of(topic_prefix)
    await set_rules(schema_registry_url, subjects, "FULL_TRANSITIVE")
    sim = await simulator_factory(symbols=("BTCUSDT",))
    await start_and_stop(btc_settings(sim, kafka_bootstrap, topic_prefix, schema_registry_url))
    assert await rules(schema_registry_url, subjects) == {"FULL_TRANSITIVE"}

    code, stderr = await register(schema_registry_url, topic_prefix)
    assert code == 0, stderr
    assert await rules(schema_registry_url, subjects) == {"FULL_TRANSITIVE"}


async def test_a_looser_rule_refuses_start_in_one_line_and_manage_compatibility_raises_it(
    tmp_path: Path,
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    schema_registry_url: str,
    topic_prefix: str,
) -> None:
    trade = f"{topic_prefix}.spot.trade-value"
    await set_rules(schema_registry_url, [trade], "BACKWARD")
    sim = await simulator_factory(symbols=("BTCUSDT",))
    config = config_file(
        tmp_path, sim, kafka_bootstrap, topic_prefix, f"  url: {schema_registry_url}\n"
    )
    code, _, stderr = await run_cli("run", "--config", config)
    assert code == 1
    [line] = stderr.strip().splitlines()[-1:]
    assert line.startswith("error: 1 subjects"), stderr
    assert f"{trade} (BACKWARD)" in line and "FULL_TRANSITIVE" in line
    assert "Traceback" not in stderr
    # Refused before anything was written: the rule is untouched and nothing was registered.
    assert await rules(schema_registry_url, [trade]) == {"BACKWARD"}
    async with SchemaRegistryClient(schema_registry_url) as client:
        assert trade not in await client.subjects()
    # `gateway schemas register` keeps the rule too, and says so the same way.
    code, stderr = await register(schema_registry_url, topic_prefix)
    assert code == 1 and "looser" in stderr, stderr

    await start_and_stop(
        btc_settings(
            sim, kafka_bootstrap, topic_prefix, schema_registry_url, manage_compatibility=True
        )
    )
    assert await rules(schema_registry_url, [trade]) == {"FULL_TRANSITIVE"}


async def test_register_check_only_verifies_what_the_platform_registered(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    schema_registry_url: str,
    topic_prefix: str,
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    settings = btc_settings(
        sim, kafka_bootstrap, topic_prefix, schema_registry_url, registration="check"
    )
    refused = RunningGateway(settings)
    with pytest.raises(Exception, match=r"not registered .*gateway schemas register"):
        await refused.wait_connected()
    async with SchemaRegistryClient(schema_registry_url) as client:
        assert not set(subjects_of(topic_prefix)) & set(await client.subjects())

    code, stderr = await register(schema_registry_url, topic_prefix)
    assert code == 0, stderr
    await start_and_stop(settings)


class AuthProxy:
    """A loopback HTTP proxy to the registry that lets through only the expected basic auth."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        assert basic_authorization(USER, SECRET) == self.expected
        self.authorized = 0
        self.refused = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.expected:
            self.refused += 1
            return web.Response(status=401, text='{"error_code":401,"message":"Unauthorized"}')
        self.authorized += 1
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.target + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as reply,
        ):
            body = await reply.read()
            return web.Response(status=reply.status, body=body, content_type="application/json")


async def start_proxy(
    target: str, tls: ssl.SSLContext | None = None
) -> tuple[AuthProxy, web.AppRunner]:
    base, _, path = target.partition("/apis/")
    proxy = AuthProxy(base)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/apis/{path}"
    return proxy, runner


@pytest.fixture
async def auth_proxy(schema_registry_url: str) -> AsyncIterator[AuthProxy]:
    proxy, runner = await start_proxy(schema_registry_url)
    yield proxy
    await runner.cleanup()


async def test_tls_with_a_private_ca_and_a_client_certificate(
    tmp_path: Path, schema_registry_url: str, topic_prefix: str
) -> None:
    files = make_tls_files(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    server.load_cert_chain(files.server_cert, files.server_key)
    server.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no handshake
    proxy, runner = await start_proxy(schema_registry_url, server)
    login = {"url": proxy.url, "username": USER, "password": SECRET}
    try:
        full = RegistrySettings(
            **login,
            ssl_cafile=files.ca,
            ssl_certfile=files.client_cert,
            ssl_keyfile=files.client_key,
            manage_compatibility=True,
        )
        ids = await schema_admin.register(full, CATALOG, TopicNamer(topic_prefix))
        assert len(ids) == len(CATALOG) and proxy.authorized > 0
        for partial in (
            RegistrySettings(**login),  # the system's CAs do not know the private one
            RegistrySettings(**login, ssl_cafile=files.ca),  # no client certificate
        ):
            with pytest.raises(RegistryError, match="unreachable"):
                await schema_admin.register(partial, CATALOG, TopicNamer(topic_prefix))
    finally:
        await runner.cleanup()
    assert proxy.refused == 0


@pytest.mark.parametrize("given_as", ["url", "password", "password_file"])
async def test_the_registry_password_reaches_the_registry_and_never_the_logs(
    tmp_path: Path,
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    auth_proxy: AuthProxy,
    given_as: str,
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    secret_file = tmp_path / "registry-password"
    secret_file.write_text(SECRET + "\n")
    host_url = auth_proxy.url.replace("http://", f"http://{USER}:{SECRET}@")
    registry = {
        "url": f"  url: {host_url}\n",
        "password": f"  url: {auth_proxy.url}\n  username: {USER}\n  password: {SECRET}\n",
        "password_file": (
            f"  url: {auth_proxy.url}\n  username: {USER}\n  password_file: {secret_file}\n"
        ),
    }[given_as]
    config = config_file(tmp_path, sim, kafka_bootstrap, topic_prefix, registry)
    with Path(config).open("a") as handle:  # noqa: ASYNC230 - a small file, before any I/O
        handle.write("log:\n  level: DEBUG\n")

    process = await asyncio.create_subprocess_exec(
        *GATEWAY, "run", "--config", config,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output = b""
    assert process.stderr is not None
    async with asyncio.timeout(90):
        while b"registered" not in output:
            line = await process.stderr.readline()
            assert line, output.decode()[-3000:]
            output += line
    process.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(process.communicate(), 60)
    logs = output.decode() + rest.decode()
    assert auth_proxy.authorized > 0 and auth_proxy.refused == 0
    assert SECRET not in logs
    assert f"at {auth_proxy.url}" in logs  # the URL is logged, without the credentials

    # A configuration error quoting the whole registry section masks the password too.
    text = Path(config).read_text()  # noqa: ASYNC240
    Path(config).write_text(text.replace("registry:\n", "registry:\n  ssl_keyfile: k.pem\n", 1))  # noqa: ASYNC240
    code, stdout, stderr = await run_cli("run", "--config", config)
    assert code == 2 and "ssl_keyfile needs ssl_certfile" in stderr, stderr
    assert SECRET not in stderr + stdout


async def test_gateway_plan_shows_no_registry_password(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "binance:\n  markets:\n    spot:\n      symbols: [BTCUSDT]\n"
        f"registry:\n  url: https://{USER}:{SECRET}@registry.example/apis/ccompat/v7\n"
    )
    for output in ([], ["--json"]):
        code, stdout, stderr = await run_cli("plan", "--offline", "--config", str(config), *output)
        assert code == 0, stderr
        assert "shard" in stdout and SECRET not in stdout + stderr


async def test_tail_reads_through_a_registry_login_from_the_config(
    tmp_path: Path,
    kafka_bootstrap: str,
    schema_registry_url: str,
    topic_prefix: str,
    auth_proxy: AuthProxy,
) -> None:
    from tests.integration.test_cli import _write_vector_trade

    topic = await _write_vector_trade(kafka_bootstrap, schema_registry_url, topic_prefix)
    secret_file = tmp_path / "registry-password"
    secret_file.write_text(SECRET)
    config = tmp_path / "tail.yaml"
    config.write_text(
        f"kafka:\n  bootstrap_servers: {kafka_bootstrap}\n"
        f"registry:\n  url: {auth_proxy.url}\n  username: {USER}\n  password_file: {secret_file}\n"
    )
    code, stdout, stderr = await run_cli("tail", topic, "--config", str(config), "--limit", "1")
    assert code == 0, stderr
    assert '"trade_id":12345' in stdout
    assert auth_proxy.authorized > 0 and auth_proxy.refused == 0
