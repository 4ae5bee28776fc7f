"""OAUTHBEARER's token provider: the token response, caching and refresh, refusals, a masked secret.

The provider talks to a real HTTP token endpoint on loopback (tests.logins.TokenEndpoint).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from gateway.adapters.kafka_oauth import (
    DEFAULT_LIFETIME_S,
    ClientCredentialsTokenProvider,
    TokenResponseError,
    jwt_expiry_s,
    parse_token_response,
)
from gateway.adapters.kafka_security import KafkaSecuritySettings, OAuthSettings, client_options
from gateway.errors import ConfigError
from gateway.settings import GatewaySettings, load_settings
from tests.logins import TokenEndpoint, unsecured_jws

EPOCH = 1_800_000_000.0
SECRET = "cl1ent-s3cret/+="  # characters that Basic auth must form-encode (RFC 6749 §2.3.1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def endpoint() -> AsyncIterator[TokenEndpoint]:
    server = await TokenEndpoint("gateway", SECRET, lifetime_s=100).start()
    yield server
    await server.stop()


def oauth(url: str, **fields: Any) -> OAuthSettings:
    return OAuthSettings(
        token_endpoint_url=url, client_id="gateway", client_secret=SECRET, **fields
    )


# -- the token response (pure) ---------------------------------------------------------------------


def test_a_token_is_refreshed_after_four_fifths_of_its_lifetime() -> None:
    token = parse_token_response(
        b'{"access_token": "t0k", "token_type": "bearer", "expires_in": 100}', 50.0, EPOCH
    )
    assert (token.value, token.refresh_at_s) == ("t0k", 130.0)


def test_a_token_without_expires_in_gets_the_default_lifetime_and_string_seconds_count() -> None:
    token = parse_token_response(b'{"access_token": "t", "token_type": "Bearer"}', 0.0, EPOCH)
    assert token.refresh_at_s == 0.8 * DEFAULT_LIFETIME_S
    token = parse_token_response(
        b'{"access_token": "t", "token_type": "Bearer", "expires_in": "60"}', 0.0, EPOCH
    )
    assert token.refresh_at_s == 48.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"token_type": "Bearer"}', "no access_token"),
        (b'{"access_token": "t", "token_type": "mac"}', "not Bearer"),
        (b'{"access_token": "t", "token_type": "Bearer", "expires_in": 0}', "expires_in"),
        (b'{"access_token": "t", "token_type": "Bearer", "expires_in": true}', "expires_in"),
    ],
)
def test_unusable_token_responses_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(TokenResponseError, match=message):
        parse_token_response(body, 0.0, EPOCH)


def test_a_jwts_own_expiry_bounds_its_lifetime_and_an_expired_one_is_refused() -> None:
    def answer(token: str) -> bytes:
        return orjson.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    soon = unsecured_jws("gw", 50)  # exp 50 s from the wall clock's now
    epoch = time.time()
    token = parse_token_response(answer(soon), 0.0, epoch)
    assert 0.8 * 49 <= token.refresh_at_s <= 0.8 * 51
    assert jwt_expiry_s("opaque-token") is None
    assert jwt_expiry_s("a.b.c") is None
    with pytest.raises(TokenResponseError, match="expired"):
        parse_token_response(answer(unsecured_jws("gw", -60)), 0.0, epoch)


# -- the provider against a token endpoint ---------------------------------------------------------


async def test_tokens_are_cached_until_the_refresh_point(endpoint: TokenEndpoint) -> None:
    clock = Clock()
    provider = ClientCredentialsTokenProvider(oauth(endpoint.url, scope="kafka"), clock)
    assert isinstance(provider, AbstractTokenProvider)
    first = await provider.token()
    assert first.count(".") == 2
    clock.now += 79  # 100 s tokens: refreshed from 80 s on
    assert await provider.token() == first
    assert len(endpoint.requests) == 1
    clock.now += 1
    await provider.token()
    assert len(endpoint.requests) == 2
    assert endpoint.requests[0] == {"grant_type": "client_credentials", "scope": "kafka"}


async def test_the_extensions_go_with_the_token(endpoint: TokenEndpoint) -> None:
    extensions = {"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}
    provider = ClientCredentialsTokenProvider(oauth(endpoint.url, extensions=extensions))
    assert provider.extensions() == extensions


async def test_a_refused_secret_is_a_connection_error_with_the_endpoints_answer(
    endpoint: TokenEndpoint,
) -> None:
    settings = OAuthSettings(
        token_endpoint_url=endpoint.url, client_id="gateway", client_secret="wrong"
    )
    with pytest.raises(KafkaConnectionError, match=r"HTTP 401.*invalid_client") as caught:
        await ClientCredentialsTokenProvider(settings).token()
    assert "wrong" not in str(caught.value)


async def test_a_non_bearer_answer_is_refused(endpoint: TokenEndpoint) -> None:
    endpoint.token_type = "N_A"
    with pytest.raises(KafkaConnectionError, match="not Bearer"):
        await ClientCredentialsTokenProvider(oauth(endpoint.url)).token()


async def test_an_unreachable_endpoint_is_a_connection_error(endpoint: TokenEndpoint) -> None:
    url = endpoint.url
    await endpoint.stop()
    provider = ClientCredentialsTokenProvider(oauth(url, request_timeout_s=5))
    with pytest.raises(KafkaConnectionError, match="unreachable"):
        await provider.token()


async def test_a_rotated_secret_file_is_read_by_the_next_fetch(
    endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("old\n")
    clock = Clock()
    settings = OAuthSettings(
        token_endpoint_url=endpoint.url, client_id="gateway", client_secret_file=secret_file
    )
    provider = ClientCredentialsTokenProvider(settings, clock)
    with pytest.raises(KafkaConnectionError, match="401"):
        await provider.token()
    secret_file.write_text(SECRET + "\n")
    assert await provider.token()


def test_a_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    settings = OAuthSettings(
        token_endpoint_url="https://idp.example/token",
        client_id="gateway",
        client_secret_file=tmp_path / "missing",
    )
    with pytest.raises(ConfigError, match="client_secret_file"):
        settings.secret()


# -- kafka.security with oauth ---------------------------------------------------------------------


def test_oauthbearer_hands_aiokafka_a_token_provider() -> None:
    security = KafkaSecuritySettings(
        protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth=oauth("https://idp.example/oauth2/token"),
    )
    options = client_options(security)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(options["sasl_oauth_token_provider"], ClientCredentialsTokenProvider)
    assert "sasl_plain_password" not in options
    # Each client its own provider (and cache): clients are started and stopped independently.
    assert (
        client_options(security)["sasl_oauth_token_provider"]
        is not (options["sasl_oauth_token_provider"])
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "needs oauth"),
        (
            {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "username": "gw",
                "oauth": {
                    "token_endpoint_url": "https://i/t",
                    "client_id": "c",
                    "client_secret": "s",
                },
            },
            "username set but OAUTHBEARER",
        ),
        (
            {
                "protocol": "SASL_SSL",
                "username": "gw",
                "password": "p",
                "oauth": {
                    "token_endpoint_url": "https://i/t",
                    "client_id": "c",
                    "client_secret": "s",
                },
            },
            "not SASL OAUTHBEARER",
        ),
        (
            {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "oauth": {"token_endpoint_url": "https://i/t", "client_id": "c"},
            },
            "exactly one of client_secret",
        ),
        (
            {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "oauth": {
                    "token_endpoint_url": "not a url",
                    "client_id": "c",
                    "client_secret": "s",
                },
            },
            "token_endpoint_url",
        ),
        ({"protocol": "PLAINTEXT", "ssl_keyfile_password": "k"}, "no TLS"),
        ({"protocol": "SSL", "ssl_keyfile_password": "k"}, "needs ssl_certfile"),
    ],
)
def test_inconsistent_oauth_and_tls_settings_are_rejected(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecuritySettings(**fields)


def test_client_secret_and_key_password_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings(
        kafka={
            "security": {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "ssl_certfile": "/c.pem",
                "ssl_keyfile_password": "key-pa55",
                "oauth": {
                    "token_endpoint_url": "https://idp.example/token",
                    "client_id": "gateway",
                    "client_secret": SECRET,
                },
            }
        }
    )
    for text in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert SECRET not in text
        assert "key-pa55" not in text
    # A validation error quotes its input: the secret is masked there too.
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__OAUTH__CLIENT_SECRET", SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)
