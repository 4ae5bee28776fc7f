"""Account configuration: which Binance accounts to stream, and where their keys come from.

Credentials are never written in the configuration itself, only *where* to read them: an
environment variable (``api_key_env``) or a file (``api_key_file``, how Kubernetes mounts a
Secret). They are read once, when the settings are validated at start-up, into
:class:`pydantic.SecretStr` values held in private attributes: they are not fields, so they are
absent from ``repr``, ``str``, ``model_dump`` (and so from ``gateway plan``), and every log line
that formats the settings. A variable or file that is missing or empty is a ConfigError naming the
field and the variable or file, never a value.

One entry per account *and market*: Binance issues one key for all markets, but the spot and
futures streams are separate mechanisms with separate topics, so an account traded on two markets
is two entries sharing the same credential sources.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from gateway.binance.markets import Market
from gateway.binance.signing import KeyType, Signer
from gateway.errors import ConfigError

ALIAS_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Lowercase letters, digits, ``-`` and ``_``: valid in a Kafka topic name and an ACL pattern."""


class AccountSettings(BaseModel):
    """One Binance account on one market, and the sources of its credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: str = Field(
        pattern=ALIAS_PATTERN,
        description="Names the account in topics (<prefix>.<market>.account.<alias>), metrics "
        "and logs; unique per market",
    )
    market: Market
    key_type: KeyType = KeyType.HMAC
    api_key_env: str | None = Field(None, description="Environment variable holding the API key")
    api_key_file: Path | None = Field(None, description="File holding the API key")
    secret_env: str | None = Field(None, description="HMAC keys: variable holding the secret")
    secret_file: Path | None = Field(None, description="HMAC keys: file holding the secret")
    private_key_env: str | None = Field(
        None, description="RSA / Ed25519 keys: variable holding the PEM private key"
    )
    private_key_file: Path | None = Field(
        None, description="RSA / Ed25519 keys: file holding the PEM private key"
    )
    stream_url: str | None = Field(
        None, description="Futures user-data WebSocket base URL; None = the market's"
    )
    ws_api_url: str | None = Field(
        None, description="Spot WebSocket API URL (…/ws-api/v3); None = Binance's"
    )
    rest_url: str | None = Field(None, description="REST base URL; None = the market's")
    listen_key_keepalive_s: float = Field(
        1_800.0, gt=0, description="Futures: keep the listen key alive this often (30 min)"
    )
    listen_key_validity_s: float = Field(
        3_600.0,
        gt=0,
        description="Futures: how long Binance keeps an idle listen key (60 min); change only "
        "against a simulator with a compressed clock",
    )
    recv_window_ms: int | None = Field(
        None, ge=1, le=60_000, description="Signed requests' recvWindow; None = Binance's 5000"
    )

    _api_key: SecretStr = PrivateAttr(default=SecretStr(""))
    _secret: SecretStr = PrivateAttr(default=SecretStr(""))

    @model_validator(mode="after")
    def _resolve_credentials(self) -> AccountSettings:
        """Read both credentials now, so a missing one stops the start-up, not the stream."""
        secret_fields = ("secret", "private_key")
        wanted, other = secret_fields if self.key_type is KeyType.HMAC else secret_fields[::-1]
        for name in (f"{other}_env", f"{other}_file"):
            if getattr(self, name) is not None:
                raise ConfigError(
                    f"{name} does not fit key_type {self.key_type}: use {wanted}_env or "
                    f"{wanted}_file"
                )
        if self.listen_key_keepalive_s >= self.listen_key_validity_s:
            raise ConfigError("listen_key_keepalive_s must be shorter than listen_key_validity_s")
        self._api_key = self._read("api_key")
        self._secret = self._read(wanted)
        try:
            self.signer()  # a PEM that is not the configured kind of key fails here, not mid-run
        except ConfigError as exc:
            source = self.private_key_env or self.private_key_file
            raise ConfigError(f"private_key of {source}: {exc}") from None
        return self

    def _read(self, name: str) -> SecretStr:
        env, path = getattr(self, f"{name}_env"), getattr(self, f"{name}_file")
        if (env is None) == (path is None):
            raise ConfigError(f"give exactly one of {name}_env or {name}_file")
        if env is not None:
            value = os.environ.get(env)
            if not value:
                raise ConfigError(f"{name}_env: environment variable {env} is not set or empty")
            return SecretStr(value.strip())
        try:
            value = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"{name}_file: cannot read {path} ({reason})") from None
        if not value.strip():
            raise ConfigError(f"{name}_file: {path} is empty")
        return SecretStr(value.strip() if name == "api_key" else value)

    @property
    def api_key(self) -> SecretStr:
        """The API key (``X-MBX-APIKEY``, ``apiKey``): secret too, it identifies the account."""
        return self._api_key

    def signer(self) -> Signer:
        """The request signer of this account's key (HMAC secret or PEM private key)."""
        raw = self._secret.get_secret_value()
        if self.key_type is KeyType.HMAC:
            return Signer(self.key_type, raw.strip().encode())
        return Signer(self.key_type, raw.encode())

    @property
    def shard_id(self) -> str:
        """The account's shard (and stream name): one worker of the group owns it."""
        return f"account-{self.market.value}-{self.alias}"

    def secrets(self) -> tuple[str, str]:
        """The API key and the secret / private key in clear: for leak tests only."""
        return self._api_key.get_secret_value(), self._secret.get_secret_value()


def check_unique_aliases(accounts: tuple[AccountSettings, ...]) -> tuple[AccountSettings, ...]:
    """Aliases are unique per market: two entries may not write the same account topic."""
    seen: set[tuple[Market, str]] = set()
    for account in accounts:
        key = (account.market, account.alias)
        if key in seen:
            raise ValueError(
                f"account alias {account.alias!r} appears twice on {account.market.value}"
            )
        seen.add(key)
    return accounts
