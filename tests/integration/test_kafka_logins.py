"""The clouds' Kafka logins against a real broker: SASL OAUTHBEARER and mutual TLS.

One local broker (gateway.infra.kafka) listens on both: ``OAUTH`` checks tokens with Kafka's
unsecured validator (unsigned JWS, whose ``exp`` it honours), and the test's loopback token
endpoint plays the OIDC provider; ``MTLS`` requires a client certificate from the test's CA. The
gateway's own admin client, sink and reader go through each: what they send comes back. Refused
logins (a wrong client secret, an expired token, no certificate or one from another CA, a broker
the client does not trust) fail within seconds with a clear error, no retry loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.adapters.kafka import KafkaSink
from gateway.adapters.kafka_security import KafkaSecuritySettings, OAuthSettings
from gateway.errors import KafkaDeliveryError
from gateway.infra.kafka import BrokerTls, KafkaCluster
from gateway.settings import KafkaSettings
from tests.integration.kafka_login_support import assert_refused, round_trip
from tests.logins import Pki, TokenEndpoint, make_pki

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLIENT_ID, CLIENT_SECRET = "binance-gateway", "oidc-s3cret"
SCOPE = "kafka"  # the broker's validator requires it in every token
HANG_AFTER_S = 15.0  # where a refusal is known to hang (xfail below): long enough to be sure


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def cluster(pki: Pki) -> Iterator[KafkaCluster]:
    # One broker for the module: both listeners, started once (a JVM start is the slow part).
    tls = BrokerTls(keystore=pki.broker_keystore, truststore=pki.ca)
    with KafkaCluster(1, oauthbearer=True, oauthbearer_scope=SCOPE, tls=tls) as started:
        yield started


@pytest.fixture
async def token_endpoint() -> AsyncIterator[TokenEndpoint]:
    endpoint = await TokenEndpoint(CLIENT_ID, CLIENT_SECRET).start()
    yield endpoint
    await endpoint.stop()


def oauth_login(
    endpoint: TokenEndpoint, secret: str = CLIENT_SECRET, scope: str = SCOPE
) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        oauth=OAuthSettings(
            token_endpoint_url=endpoint.url,
            client_id=CLIENT_ID,
            client_secret=secret,
            scope=scope,
        ),
    )


def tls_login(pki: Pki, *, stranger: bool = False, cert: bool = True) -> KafkaSecuritySettings:
    certfile, keyfile = (
        (pki.stranger_cert, pki.stranger_key)
        if stranger
        else (
            pki.client_cert,
            pki.client_key,
        )
    )
    return KafkaSecuritySettings(
        protocol="SSL",
        ssl_cafile=pki.ca,
        ssl_certfile=certfile if cert else None,
        ssl_keyfile=keyfile if cert else None,
    )


# -- OAUTHBEARER -----------------------------------------------------------------------------------


async def test_oauthbearer_tokens_from_the_endpoint_carry_records(
    cluster: KafkaCluster, token_endpoint: TokenEndpoint, topic_prefix: str
) -> None:
    consumed = await round_trip(
        cluster.oauth_bootstrap_servers, oauth_login(token_endpoint), topic_prefix
    )
    assert (consumed.key, consumed.value["trade_id"]) == ("BTCUSDT", 4_242)
    # Three clients (admin, producer, consumer), each opening several connections: one token
    # each, since a token is cached for its lifetime.
    assert 1 <= len(token_endpoint.requests) <= 3
    assert all(
        r == {"grant_type": "client_credentials", "scope": SCOPE} for r in token_endpoint.requests
    )


async def test_a_refused_client_secret_fails_fast_without_showing_it(
    cluster: KafkaCluster, token_endpoint: TokenEndpoint, topic_prefix: str
) -> None:
    error = await assert_refused(
        cluster.oauth_bootstrap_servers, oauth_login(token_endpoint, "not-it"), topic_prefix
    )
    assert cluster.oauth_bootstrap_servers in str(error)
    assert "not-it" not in str(error)
    assert token_endpoint.requests  # the endpoint was asked, and said no


async def test_an_expired_token_fails_fast(
    cluster: KafkaCluster, token_endpoint: TokenEndpoint, topic_prefix: str
) -> None:
    # The endpoint promises an hour, but the token itself expired a minute ago. The broker would
    # refuse it with an RFC 7628 error challenge that aiokafka does not read (it would retry
    # forever): the provider refuses it first, from the token's own exp.
    token_endpoint.token_exp_offset_s = -60
    await assert_refused(cluster.oauth_bootstrap_servers, oauth_login(token_endpoint), topic_prefix)


@pytest.mark.xfail(
    raises=TimeoutError,
    strict=True,
    reason="aiokafka 0.14 ignores the broker's RFC 7628 error challenge (IBM/sarama#1428 fixed "
    "the same in Sarama): a token the broker refuses looks like a login, and start-up hangs",
)
async def test_a_token_the_broker_refuses_fails_fast(
    cluster: KafkaCluster, token_endpoint: TokenEndpoint, topic_prefix: str
) -> None:
    # A valid, unexpired token without the scope the broker requires: only the broker can tell.
    settings = KafkaSettings(
        bootstrap_servers=cluster.oauth_bootstrap_servers,
        topic_prefix=topic_prefix,
        request_timeout_ms=10_000,
        security=oauth_login(token_endpoint, scope="not-kafka"),
    )
    sink = KafkaSink(settings)
    try:
        with pytest.raises(KafkaDeliveryError, match="connecting the producer"):
            await asyncio.wait_for(sink.start(), HANG_AFTER_S)
    finally:
        await sink.stop()


# -- mutual TLS ------------------------------------------------------------------------------------


async def test_a_client_certificate_carries_records(
    cluster: KafkaCluster, pki: Pki, topic_prefix: str
) -> None:
    consumed = await round_trip(cluster.tls_bootstrap_servers, tls_login(pki), topic_prefix)
    assert (consumed.key, consumed.value["trade_id"]) == ("BTCUSDT", 4_242)


@pytest.mark.parametrize(
    "case", ["no-certificate", "certificate-of-another-ca", "untrusted-broker"]
)
async def test_refused_tls_logins_fail_fast(
    cluster: KafkaCluster, pki: Pki, topic_prefix: str, case: str
) -> None:
    if case == "no-certificate":
        security = tls_login(pki, cert=False)
    elif case == "certificate-of-another-ca":
        security = tls_login(pki, stranger=True)
    else:  # the client trusts another CA than the broker's
        security = tls_login(pki).model_copy(update={"ssl_cafile": pki.stranger_cert})
    await assert_refused(cluster.tls_bootstrap_servers, security, topic_prefix)
