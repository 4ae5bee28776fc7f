"""How the gateway authenticates to Kafka and encrypts the connection: one settings section, one
function that turns it into the keyword arguments every aiokafka client takes.

    producer = AIOKafkaProducer(bootstrap_servers=..., **client_options(settings.kafka.security))

The password is a :class:`~pydantic.SecretStr` (masked in ``repr()``, logs and JSON dumps), given
inline (``GATEWAY_KAFKA__SECURITY__PASSWORD`` from a Kubernetes Secret) or as ``password_file``,
a mounted Secret read each time a client is built, so a rotated password reaches the next client.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.errors import ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")


class KafkaSecuritySettings(BaseModel):
    """``kafka.security``: the listener's protocol, SASL credentials and TLS files."""

    # As gateway.settings._Section (which this module cannot import: settings imports it).
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    username: str | None = Field(None, min_length=1, description="SASL user")
    password: SecretStr | None = Field(None, description="SASL password; never logged")
    password_file: Path | None = Field(
        None, description="File holding the SASL password (a mounted Secret), instead of password"
    )
    ssl_cafile: Path | None = Field(None, description="CA bundle; None = the system's CAs")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS)")
    ssl_check_hostname: bool = True

    @model_validator(mode="before")
    @classmethod
    def _mask_password(cls, data: object) -> object:
        # Validation errors quote their input, the dict given for this section (and the parent's
        # error does too): mask the password in that very dict, so no error message can show it.
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            data["password"] = SecretStr(data["password"])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        sasl = self.protocol in _SASL
        if sasl and self.username is None:
            raise ValueError(f"{self.protocol} needs a username")
        if sasl and (self.password is None) == (self.password_file is None):
            raise ValueError(f"{self.protocol} needs exactly one of password and password_file")
        given = [n for n in ("username", "password", "password_file") if getattr(self, n)]
        if not sasl and given:
            raise ValueError(f"{', '.join(given)} set but protocol {self.protocol} has no SASL")
        files = [n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, n)]
        if self.protocol not in _TLS and files:
            raise ValueError(f"{', '.join(files)} set but protocol {self.protocol} has no TLS")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    def sasl_password(self) -> str:
        """The password, from the settings or read from ``password_file`` now.

        Raises:
            ConfigError: the password file cannot be read or is empty.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            raise ConfigError(f"kafka.security: {self.protocol} has no password")
        try:
            # A Secret written with `echo` ends in a newline that is not part of the password.
            text = self.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"kafka.security.password_file {self.password_file}: {exc.strerror}"
            ) from None
        if not text:
            raise ConfigError(f"kafka.security.password_file {self.password_file} is empty")
        return text


def client_options(security: KafkaSecuritySettings) -> dict[str, object]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient alike.

    Raises:
        ConfigError: a password or TLS file is missing or unreadable.
    """
    options: dict[str, object] = {"security_protocol": security.protocol}
    if security.protocol in _SASL:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.username
        options["sasl_plain_password"] = security.sasl_password()
    if security.protocol in _TLS:
        options["ssl_context"] = _ssl_context(security)
    return options


def _ssl_context(security: KafkaSecuritySettings) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context  # settings import this module: stay light

    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=security.ssl_cafile,
            certfile=security.ssl_certfile,
            keyfile=security.ssl_keyfile,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka.security: cannot load the TLS files: {exc}") from None
    context.check_hostname = security.ssl_check_hostname  # the chain is verified either way
    return context
