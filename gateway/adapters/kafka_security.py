"""How the gateway authenticates to Kafka and encrypts the connection: one settings section, one
function that turns it into the keyword arguments every aiokafka client takes.

    producer = AIOKafkaProducer(bootstrap_servers=..., **client_options(settings.kafka.security))

The logins:

* SASL ``PLAIN`` and ``SCRAM-SHA-256/512``: ``username`` and ``password`` (or ``password_file``).
* SASL ``OAUTHBEARER``: tokens from an OIDC token endpoint with the client credentials grant
  (``oauth``: endpoint, client id and secret, scope, SASL extensions), as Confluent Cloud, Aiven
  and Strimzi with Keycloak take them; see :mod:`gateway.adapters.kafka_oauth`. (Amazon MSK's
  IAM login is OAUTHBEARER too, but with an AWS-signed token this module does not make.)
* TLS client certificates (mutual TLS): ``protocol: SSL`` with ``ssl_certfile``/``ssl_keyfile``
  (and ``ssl_keyfile_password`` for an encrypted key), as Amazon MSK and Aiven take them.

GSSAPI (Kerberos) is not offered: aiokafka speaks it only with the ``gssapi`` package (a C
extension over the system's MIT Kerberos) and a ticket from a KDC, none of which this project can
test; deploy/README.md says what it would take.

Secrets are :class:`~pydantic.SecretStr` (masked in ``repr()``, logs and JSON dumps), given
inline (``GATEWAY_KAFKA__SECURITY__PASSWORD`` from a Kubernetes Secret) or as a file, a mounted
Secret read each time a client is built (a token fetched), so a rotated secret reaches the next.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from gateway.errors import ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")


class OAuthSettings(BaseModel):
    """``kafka.security.oauth``: where and as whom the gateway gets its OAUTHBEARER tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_endpoint_url: HttpUrl = Field(description="The OIDC provider's token endpoint")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = Field(None, description="Never logged")
    client_secret_file: Path | None = Field(
        None, description="File holding the client secret (a mounted Secret), instead"
    )
    scope: str | None = Field(None, min_length=1, description="Space-separated scopes to ask for")
    extensions: dict[str, str] = Field(
        default_factory=dict,
        description="SASL extensions sent with the token (Confluent Cloud: logicalCluster, "
        "identityPoolId)",
    )
    request_timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _mask_secret(cls, data: object) -> object:
        # As KafkaSecuritySettings' password: a validation error quotes this very dict.
        if isinstance(data, dict) and isinstance(data.get("client_secret"), str):
            data["client_secret"] = SecretStr(data["client_secret"])
        return data

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise ValueError("needs exactly one of client_secret and client_secret_file")
        return self

    def secret(self) -> str:
        """The client secret, from the settings or read from ``client_secret_file`` now.

        Raises:
            ConfigError: the file cannot be read or is empty.
        """
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        path = self.client_secret_file
        assert path is not None  # _one_secret
        try:
            text = path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"kafka.security.oauth.client_secret_file {path}: {exc.strerror}"
            ) from None
        if not text:
            raise ConfigError(f"kafka.security.oauth.client_secret_file {path} is empty")
        return text


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
    ssl_keyfile_password: SecretStr | None = Field(
        None, description="Password of an encrypted ssl_keyfile; never logged"
    )
    oauth: OAuthSettings | None = Field(None, description="OAUTHBEARER's token endpoint")
    ssl_check_hostname: bool = True

    @model_validator(mode="before")
    @classmethod
    def _mask_password(cls, data: object) -> object:
        # Validation errors quote their input, the dict given for this section (and the parent's
        # error does too): mask the password in that very dict, so no error message can show it.
        if isinstance(data, dict):
            for name in ("password", "ssl_keyfile_password"):
                if isinstance(data.get(name), str):
                    data[name] = SecretStr(data[name])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        sasl = self.protocol in _SASL
        oauth = sasl and self.sasl_mechanism == "OAUTHBEARER"
        if oauth:
            return self._consistent_oauth()
        if self.oauth is not None:
            raise ValueError("oauth set but the login is not SASL OAUTHBEARER")
        if sasl and self.username is None:
            raise ValueError(f"{self.protocol} needs a username")
        if sasl and (self.password is None) == (self.password_file is None):
            raise ValueError(f"{self.protocol} needs exactly one of password and password_file")
        given = [n for n in ("username", "password", "password_file") if getattr(self, n)]
        if not sasl and given:
            raise ValueError(f"{', '.join(given)} set but protocol {self.protocol} has no SASL")
        return self._consistent_tls()

    def _consistent_oauth(self) -> Self:
        if self.oauth is None:
            raise ValueError("SASL OAUTHBEARER needs oauth (the token endpoint and client)")
        given = [n for n in ("username", "password", "password_file") if getattr(self, n)]
        if given:
            raise ValueError(f"{', '.join(given)} set but OAUTHBEARER logs in with oauth")
        return self._consistent_tls()

    def _consistent_tls(self) -> Self:
        names = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password")
        files = [n for n in names if getattr(self, n)]
        if self.protocol not in _TLS and files:
            raise ValueError(f"{', '.join(files)} set but protocol {self.protocol} has no TLS")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        if self.ssl_keyfile_password is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile_password needs ssl_certfile")
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
    if security.protocol in _SASL and security.oauth is not None:
        from gateway.adapters.kafka_oauth import ClientCredentialsTokenProvider  # imports aiokafka

        options["sasl_mechanism"] = "OAUTHBEARER"
        # One provider per client: its token is cached for every broker connection it opens.
        options["sasl_oauth_token_provider"] = ClientCredentialsTokenProvider(security.oauth)
    elif security.protocol in _SASL:
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
            password=(
                security.ssl_keyfile_password.get_secret_value()
                if security.ssl_keyfile_password is not None
                else None
            ),
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka.security: cannot load the TLS files: {exc}") from None
    context.check_hostname = security.ssl_check_hostname  # the chain is verified either way
    return context
