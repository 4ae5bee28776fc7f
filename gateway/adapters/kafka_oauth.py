"""SASL OAUTHBEARER logins: access tokens from an OIDC provider's token endpoint.

Kafka services that log in with OAuth (Confluent Cloud, Aiven, Strimzi or self-managed Kafka
behind Keycloak, Okta or Entra ID) take a bearer token that the client fetches itself, with
the *client credentials* grant (RFC 6749 §4.4): a POST of ``grant_type=client_credentials`` (and
the ``scope``) with the client id and secret in HTTP Basic auth (§2.3.1), answered by
``{"access_token": ..., "token_type": "Bearer", "expires_in": seconds}`` (§5.1).

:class:`ClientCredentialsTokenProvider` is aiokafka's token provider: every connection a client
opens asks it for a token; it answers from its cache and fetches a new one only when 80% of the
token's lifetime has passed (Kafka's Java client refreshes at the same point, its
``sasl.login.refresh.window.factor``), so a client fetches one token per lifetime, not one per
broker. The secret is read when a token is fetched: a rotated ``client_secret_file`` is used by the
next fetch. A failed fetch raises aiokafka's ``KafkaConnectionError`` with the endpoint's answer, so
aiokafka treats it like a broker it cannot reach: start-up fails with the reason in its log, and a
running client retries with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote_plus

import aiohttp
import orjson
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError

from gateway.adapters.kafka_security import OAuthSettings

log = logging.getLogger(__name__)

REFRESH_AT_FRACTION = 0.8
"""Refresh a token once this fraction of its lifetime has passed."""
DEFAULT_LIFETIME_S = 300.0
"""A token whose answer gives no ``expires_in`` is refreshed as if it lived this long."""
_MAX_ERROR_BODY = 300


# --------------------------------------------------------------------------------------------------
# The token endpoint's answer (pure)


class TokenResponseError(ValueError):
    """The token endpoint answered, but not with a usable bearer token."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    refresh_at_s: float
    """Monotonic time after which a new token is fetched."""


def parse_token_response(body: bytes, now_s: float, epoch_s: float) -> AccessToken:
    """The access token in a successful token response (RFC 6749 §5.1), and when to refresh it.

    ``now_s`` is the monotonic clock (for the refresh point), ``epoch_s`` the wall clock: a JWT's
    own ``exp`` claim (RFC 7519 §4.1.4), where the token is one, bounds its lifetime too.

    Raises:
        TokenResponseError: not a JSON object, no access token, not a bearer token, or a JWT
            that has already expired.
    """
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TokenResponseError(f"not JSON: {body[:_MAX_ERROR_BODY]!r}") from None
    if not isinstance(answer, dict):
        raise TokenResponseError("not a JSON object")
    value = answer.get("access_token")
    if not isinstance(value, str) or not value:
        raise TokenResponseError("no access_token in the answer")
    token_type = answer.get("token_type")
    # RFC 6749 §7.1: the type is case-insensitive; OAUTHBEARER carries bearer tokens only.
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenResponseError(f"token_type {token_type!r}, not Bearer")
    lifetime = answer.get("expires_in", DEFAULT_LIFETIME_S)
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)  # some providers send it as a string
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise TokenResponseError(f"expires_in {lifetime!r} is not a positive number of seconds")
    expiry = jwt_expiry_s(value)
    if expiry is not None:
        # aiokafka does not read the broker's RFC 7628 error challenge: a token the broker refuses
        # looks like a login that worked, and the client then retries forever. An expired token,
        # at least, is caught here.
        if expiry <= epoch_s:
            raise TokenResponseError(f"the token expired {epoch_s - expiry:.0f} s ago (its exp)")
        lifetime = min(float(lifetime), expiry - epoch_s)
    return AccessToken(value, now_s + REFRESH_AT_FRACTION * float(lifetime))


def jwt_expiry_s(token: str) -> float | None:
    """The ``exp`` claim of a JWT (epoch seconds), unverified; None if it is not a JWT with one.

    The signature is the broker's business; the client only reads when the token runs out.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None  # an opaque token
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    return float(expiry)


# --------------------------------------------------------------------------------------------------
# aiokafka's token provider (I/O)


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Fetches and caches OAUTHBEARER tokens with the client credentials grant."""

    def __init__(
        self,
        settings: OAuthSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()  # connections opened together share one fetch

    def __repr__(self) -> str:
        return f"ClientCredentialsTokenProvider({self._settings.client_id!r})"

    async def token(self) -> str:
        """A token valid for a while yet: the cached one, or a new one from the endpoint."""
        async with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at_s:
                self._token = await self._fetch()
            return self._token.value

    def extensions(self) -> dict[str, str]:
        return dict(self._settings.extensions)

    async def _fetch(self) -> AccessToken:
        s = self._settings
        url = str(s.token_endpoint_url)
        form = {"grant_type": "client_credentials"}
        if s.scope:
            form["scope"] = s.scope
        headers = {
            "Accept": "application/json",
            "Authorization": basic_authorization(s.client_id, s.secret()),
        }
        timeout = aiohttp.ClientTimeout(total=s.request_timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=form, headers=headers) as response,
            ):
                body = await response.read()
                if response.status != 200:
                    raise KafkaConnectionError(
                        f"OAuth token endpoint {url} refused client {s.client_id!r}: "
                        f"HTTP {response.status} {body[:_MAX_ERROR_BODY].decode(errors='replace')}"
                    )
                token = parse_token_response(body, self._clock(), self._wall_clock())
        except TokenResponseError as exc:
            raise KafkaConnectionError(f"OAuth token endpoint {url}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KafkaConnectionError(
                f"OAuth token endpoint {url} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        log.info("OAuth token for client %r fetched from %s", s.client_id, url)
        return token


def basic_authorization(client_id: str, secret: str) -> str:
    """The ``Authorization`` header of client_secret_basic.

    RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined with ':' and
    base64-encoded (Kafka's Java client does the same), so a ':' or '+' in a secret survives.
    """
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
