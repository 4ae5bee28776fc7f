"""kafka.security: what each protocol hands aiokafka, and a password that never shows."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.adapters.kafka_security import KafkaSecuritySettings, client_options
from gateway.errors import ConfigError
from gateway.settings import GatewaySettings, load_settings

PASSWORD = "s3cr3t-hunter2"


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    assert client_options(KafkaSecuritySettings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext_passes_mechanism_and_credentials() -> None:
    security = KafkaSecuritySettings(
        protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", username="gw", password=PASSWORD
    )
    assert client_options(security) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "gw",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_ssl_adds_a_verifying_tls_context() -> None:
    security = KafkaSecuritySettings(protocol="SASL_SSL", username="gw", password=PASSWORD)
    options = client_options(security)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert options["sasl_mechanism"] == "PLAIN"


def test_ssl_without_hostname_check_still_verifies_the_chain() -> None:
    options = client_options(KafkaSecuritySettings(protocol="SSL", ssl_check_hostname=False))
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert not context.check_hostname
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert "sasl_plain_password" not in options


def test_unreadable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    security = KafkaSecuritySettings(protocol="SSL", ssl_cafile=tmp_path / "missing-ca.pem")
    with pytest.raises(ConfigError, match="TLS files"):
        client_options(security)


def test_password_file_is_read_when_a_client_is_built(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")  # as `echo` or a Secret's stringData leaves it
    security = KafkaSecuritySettings(protocol="SASL_PLAINTEXT", username="gw", password_file=secret)
    assert client_options(security)["sasl_plain_password"] == PASSWORD
    secret.write_text("rotated")
    assert client_options(security)["sasl_plain_password"] == "rotated"


@pytest.mark.parametrize("content", [None, ""])
def test_missing_or_empty_password_file_is_a_config_error(
    tmp_path: Path, content: str | None
) -> None:
    secret = tmp_path / "kafka-password"
    if content is not None:
        secret.write_text(content)
    security = KafkaSecuritySettings(protocol="SASL_PLAINTEXT", username="gw", password_file=secret)
    with pytest.raises(ConfigError, match="password_file"):
        client_options(security)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"protocol": "SASL_SSL", "password": PASSWORD}, "needs a username"),
        ({"protocol": "SASL_SSL", "username": "gw"}, "exactly one of password"),
        (
            {"protocol": "SASL_SSL", "username": "gw", "password": PASSWORD, "password_file": "/p"},
            "exactly one of password",
        ),
        ({"protocol": "SSL", "username": "gw", "password": PASSWORD}, "has no SASL"),
        (
            {"protocol": "SASL_PLAINTEXT", "username": "gw", "password": "x", "ssl_cafile": "/ca"},
            "no TLS",
        ),
        ({"protocol": "SSL", "ssl_keyfile": "/k"}, "needs ssl_certfile"),
        ({"protocol": "SASL_SCRAM"}, "protocol"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"pasword": PASSWORD}, "pasword"),
    ],
)
def test_inconsistent_settings_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecuritySettings(**fields)


def test_password_never_appears_in_repr_or_dumps() -> None:
    settings = GatewaySettings(
        kafka={
            "security": {"protocol": "SASL_SSL", "username": "gw", "password": PASSWORD},
        }
    )
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()
    assert PASSWORD not in repr(settings.kafka.security)
    assert PASSWORD not in str(settings.model_dump())
    assert settings.kafka.security.sasl_password() == PASSWORD


def test_password_never_appears_in_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Validation errors quote their input; the section's own dict must not hold it in clear.
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PASSWORD", PASSWORD)
    with pytest.raises(ConfigError, match="needs a username") as caught:
        load_settings()
    assert PASSWORD not in str(caught.value)


def test_yaml_and_environment_configure_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "kafka:\n  bootstrap_servers: kafka-0.kafka:9094\n"
        "  security:\n    protocol: SASL_SSL\n    sasl_mechanism: SCRAM-SHA-256\n"
        "    username: binance-gateway\n"
    )
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PASSWORD", PASSWORD)
    security = load_settings(config).kafka.security
    assert (security.protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert security.sasl_password() == PASSWORD
