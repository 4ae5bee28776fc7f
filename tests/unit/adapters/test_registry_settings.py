"""registry.*: credentials out of the URL and masked, the compatibility promise as an order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.registry import SchemaRegistryClient
from gateway.adapters.registry_settings import (
    RegistrySettings,
    keeps_promise,
    mask_url,
    split_credentials,
)
from gateway.errors import ConfigError
from gateway.settings import load_settings

SECRET = "p@ss:w0rd/x"
URL = "https://platform:p%40ss%3Aw0rd%2Fx@registry.example:8443/apis/ccompat/v7"


def test_credentials_leave_the_url_and_the_password_is_masked_everywhere() -> None:
    settings = RegistrySettings(url=URL)
    assert settings.url == "https://registry.example:8443/apis/ccompat/v7"
    assert settings.username == "platform"
    assert settings.basic_auth() == ("platform", SECRET)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in shown and "p%40ss" not in shown
    client = SchemaRegistryClient(URL)
    assert client.url == "https://registry.example:8443/apis/ccompat/v7"  # requests, logs, errors


def test_mask_and_split() -> None:
    assert split_credentials("http://h:1/x") == ("http://h:1/x", None, None)
    assert split_credentials("http://u@h/x") == ("http://h/x", "u", None)
    assert mask_url("http://u:secret@[::1]:81/x") == "http://u:***@[::1]:81/x"
    assert mask_url("http://u@h/x") == "http://u@h/x"


def test_env_and_errors_never_show_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_REGISTRY__URL", URL)
    monkeypatch.setenv("GATEWAY_REGISTRY__USERNAME", "other")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "credentials both in the url" in str(caught.value)
    assert SECRET not in str(caught.value) and "p%40ss" not in str(caught.value)
    monkeypatch.delenv("GATEWAY_REGISTRY__USERNAME")
    monkeypatch.setenv("GATEWAY_REGISTRY__SSL_KEYFILE", str(tmp_path / "k.pem"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "ssl_keyfile needs ssl_certfile" in str(caught.value)
    assert "p%40ss" not in str(caught.value) and SECRET not in str(caught.value)


def test_password_file_is_read_when_a_client_is_built(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    settings = RegistrySettings(url="http://h/x", username="u", password_file=secret)
    with pytest.raises(ConfigError, match="password_file"):
        settings.basic_auth()
    secret.write_text("rotated\n")
    assert settings.basic_auth() == ("u", "rotated")


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"password": "x"}, "needs a username"),
        ({"username": "u", "password": "x", "password_file": "/f"}, "not both"),
        ({"ssl_keyfile": "/k"}, "ssl_keyfile needs ssl_certfile"),
        ({"register": "sometimes"}, "register"),
    ],
)
def test_inconsistent_settings_are_refused(given: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings(registry={"url": "http://h/x", **given})


def test_register_is_spelt_as_documented() -> None:
    assert load_settings(registry={"register": "check"}).registry.registration == "check"


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        ("FULL_TRANSITIVE", True),
        ("FULL", False),
        ("BACKWARD_TRANSITIVE", False),
        ("BACKWARD", False),
        ("FORWARD_TRANSITIVE", False),
        ("NONE", False),
        ("SOMETHING_NEW", False),
    ],
)
def test_only_rules_at_least_as_strict_as_the_promise_keep_it(level: str, kept: bool) -> None:
    assert keeps_promise(level) is kept
    assert keeps_promise(level, "BACKWARD") is (
        level not in ("NONE", "FORWARD_TRANSITIVE", "SOMETHING_NEW")
    )


def test_a_tls_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    settings = RegistrySettings(url="https://h/x", ssl_cafile=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="TLS"):
        settings.ssl_context()
    assert RegistrySettings(url="https://h/x").ssl_context() is None
