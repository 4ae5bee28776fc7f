"""Account settings: credentials from env or files, read once, never shown."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.accounts.settings import AccountSettings
from gateway.accounts.topics import account_topic_partitions, account_topics, record_key
from gateway.binance.events.spot_user import BalanceUpdate
from gateway.binance.signing import KeyType
from gateway.errors import ConfigError
from gateway.records.topics import TopicNamer
from gateway.settings import GatewaySettings, load_settings

KEY, SECRET = "ENVkey0123456789", "ENVsecret9876543210"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_KEY", KEY)
    monkeypatch.setenv("DESK_SECRET", SECRET)


def account(**fields: Any) -> AccountSettings:
    base = {
        "alias": "desk-a",
        "market": "spot",
        "api_key_env": "DESK_KEY",
        "secret_env": "DESK_SECRET",
    }
    return AccountSettings(**{**base, **fields})


def test_env_credentials_are_read_but_never_shown(env: None) -> None:
    settings = account()
    assert settings.api_key.get_secret_value() == KEY and settings.secrets() == (KEY, SECRET)
    shown = f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}"
    gateway = GatewaySettings(accounts=[settings])
    shown += f"{gateway!r} {gateway.model_dump_json()}"
    assert KEY not in shown and SECRET not in shown
    assert "DESK_KEY" in shown  # where they come from is fine to show


def test_file_credentials_as_kubernetes_mounts_them(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text(KEY + "\n")
    (tmp_path / "secret").write_text(SECRET + "\n")
    settings = account(
        api_key_env=None, secret_env=None,
        api_key_file=tmp_path / "api-key", secret_file=tmp_path / "secret",
    )  # fmt: skip
    assert settings.secrets() == (KEY, SECRET + "\n")
    assert settings.signer().sign("a=1") == account_signer_reference("a=1")


def account_signer_reference(payload: str) -> str:
    import hashlib
    import hmac

    return hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"secret_env": "NOPE_SECRET"}, "secret_env: environment variable NOPE_SECRET is not set"),
        (
            {"api_key_env": None, "api_key_file": "/nonexistent/k"},
            "api_key_file: cannot read /nonexistent/k",
        ),
        ({"api_key_file": "/x"}, "exactly one of api_key_env or api_key_file"),
        ({"private_key_env": "DESK_SECRET"}, "private_key_env does not fit key_type hmac"),
        ({"alias": "Desk A"}, "alias"),
        ({"listen_key_keepalive_s": 4000}, "shorter than listen_key_validity_s"),
    ],
)
def test_bad_credentials_name_the_field_and_source_never_a_value(
    env: None, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        account(**fields)
    assert message in str(raised.value)
    assert KEY not in str(raised.value) and SECRET not in str(raised.value)


def test_a_private_key_that_is_no_pem_fails_at_start_up(env: None) -> None:
    with pytest.raises(ValidationError, match=r"private_key of DESK_SECRET: .* not a readable PEM"):
        account(key_type=KeyType.ED25519, secret_env=None, private_key_env="DESK_SECRET")


def test_aliases_are_unique_per_market_but_may_repeat_across_markets(env: None) -> None:
    GatewaySettings(accounts=[account(), account(market="usdm")])
    with pytest.raises(ConfigError, match="desk-a' appears twice on spot"):
        load_settings(accounts=[account().model_dump(), account().model_dump()])


def test_account_topics_have_one_partition_and_records_are_keyed_by_symbol(env: None) -> None:
    accounts = [account(), account(alias="desk-b", market="coinm")]
    namer = TopicNamer("binance")
    assert account_topics(namer, accounts) == [
        "binance.spot.account.desk-a",
        "binance.coinm.account.desk-b",
    ]
    assert set(account_topic_partitions(namer, accounts).values()) == {1}
    balance = BalanceUpdate("spot", 0, 1, "BTC", 1, 1, 1)  # type: ignore[arg-type]
    assert record_key(balance, "desk-a") == b"desk-a"
    order = SimpleNamespace(symbol="BTCUSDT")
    assert record_key(order, "desk-a") == b"BTCUSDT"  # type: ignore[arg-type]
