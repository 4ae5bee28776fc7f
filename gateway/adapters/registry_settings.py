"""``registry``: where the schema registry is, how the gateway logs in, and what it may change there.

The registry belongs to the platform. By default the gateway leaves every subject's compatibility
rule alone and refuses to start when one is looser than the project's promise
(:data:`PROMISED_COMPATIBILITY`, see ``schemas/README.md``); ``register: check`` goes further and
only verifies that the platform registered ``schemas/released/`` (``gateway schemas register``).

Credentials never sit in the URL: a URL given as ``https://user:secret@host/...`` is split into
``username`` and ``password`` at validation, so the URL that logs, ``gateway plan`` and errors show
holds none. The password is a :class:`~pydantic.SecretStr`, or a ``password_file`` (a mounted
Secret) read each time a client is built, so a rotated password reaches the next client.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.errors import ConfigError

Compatibility = Literal[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]
PROMISED_COMPATIBILITY: Compatibility = "FULL_TRANSITIVE"
"""What ``schemas/README.md`` promises consumers: every change readable both ways, against every
earlier version (every field added or removed has a default)."""

# Which guarantees each level gives: (old data readable by new schemas, new data by old schemas,
# against every earlier version rather than the latest only).
_GUARANTEES: dict[str, tuple[bool, bool, bool]] = {
    "NONE": (False, False, False),
    "BACKWARD": (True, False, False),
    "BACKWARD_TRANSITIVE": (True, False, True),
    "FORWARD": (False, True, False),
    "FORWARD_TRANSITIVE": (False, True, True),
    "FULL": (True, True, False),
    "FULL_TRANSITIVE": (True, True, True),
}


def keeps_promise(level: str, promise: str = PROMISED_COMPATIBILITY) -> bool:
    """Whether a subject under ``level`` guarantees at least what ``promise`` does."""
    given = _GUARANTEES.get(level.upper())
    if given is None:
        return False  # a level we do not know promises nothing we can rely on
    return all(g or not p for g, p in zip(given, _GUARANTEES[promise], strict=True))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without user info, username, password)``; the parts absent are None."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    clean = urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, username, password


def mask_url(url: str) -> str:
    """The URL as it may be shown: any password in it replaced by ``***``."""
    clean, username, password = split_credentials(url)
    if username is None and password is None:
        return url
    parts = urlsplit(clean)
    userinfo = f"{username or ''}:***@" if password is not None else f"{username}@"
    return urlunsplit(parts._replace(netloc=userinfo + parts.netloc))


class RegistrySettings(BaseModel):
    """Confluent-compatible schema registry; no URL = Avro single-object encoding."""

    # As gateway.settings._Section (which this module cannot import: settings imports it).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str | None = Field(None, description="e.g. https://registry:8443/apis/ccompat/v7")
    timeout_s: float = Field(10.0, gt=0)
    username: str | None = Field(None, min_length=1, description="HTTP basic auth user")
    password: SecretStr | None = Field(None, description="HTTP basic auth password; never shown")
    password_file: Path | None = Field(
        None, description="File holding the password (a mounted Secret), instead of password"
    )
    ssl_cafile: Path | None = Field(None, description="CA bundle; None = the system's CAs")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS)")
    manage_compatibility: bool = Field(
        False,
        description="Set each subject looser than the promise to it; false = leave the rules "
        "to the platform and refuse to start when one is looser",
    )
    # `register` in the configuration; pydantic's models already have a `register` attribute.
    registration: Literal["auto", "check"] = Field(
        "auto",
        alias="register",
        description="auto = register the schemas at start-up; check = the platform registers "
        "them (gateway schemas register) and the gateway only verifies they are",
    )

    @model_validator(mode="before")
    @classmethod
    def _credentials_out_of_the_url(cls, data: object) -> object:
        # Validation errors quote their input (this dict, and the parent's): the password is
        # masked in that very dict, and a URL's user info moved out of it, before anything else.
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("password"), str):
            data["password"] = SecretStr(data["password"])
        url = data.get("url")
        if isinstance(url, str):
            clean, username, password = split_credentials(url)
            if username is not None or password is not None:
                if data.get("username") is not None or data.get("password") is not None:
                    data["url"] = mask_url(url)
                    raise ValueError("credentials both in the url and in username/password")
                data["url"], data["username"] = clean, username
                if password is not None:
                    data["password"] = SecretStr(password)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set one of password and password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a registry password needs a username")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    def basic_auth(self) -> tuple[str, str] | None:
        """``(username, password)`` read now (a rotated password file is honoured), or None.

        Raises:
            ConfigError: the password file cannot be read or is empty.
        """
        if self.username is None:
            return None
        if self.password is not None:
            return self.username, self.password.get_secret_value()
        if self.password_file is None:
            return self.username, ""
        try:
            # A Secret written with `echo` ends in a newline that is not part of the password.
            text = self.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"registry.password_file {self.password_file}: {exc.strerror}"
            ) from None
        if not text:
            raise ConfigError(f"registry.password_file {self.password_file} is empty")
        return self.username, text

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context when a CA or client certificate is given; None = aiohttp's default.

        Raises:
            ConfigError: a TLS file is missing or unreadable.
        """
        if self.ssl_cafile is None and self.ssl_certfile is None:
            return None
        try:
            context = ssl.create_default_context(
                cafile=None if self.ssl_cafile is None else str(self.ssl_cafile)
            )
            if self.ssl_certfile is not None:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"registry: cannot load the TLS files: {exc}") from None
        return context
