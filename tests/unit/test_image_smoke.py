"""gateway.infra.image: what makes the image's smoke run fail (the run itself: make image-smoke)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from gateway.commands.run import record_writer
from gateway.errors import InfraError
from gateway.infra.image import SmokeResult, contiguous_trades, record_writer_in, write_config


def passing(**changes: Any) -> SmokeResult:
    fields = dict(
        image="binance-gateway:dev",
        user="10001:10001",
        uid=10001,
        root_writable=False,
        capabilities="0000000000000000",
        no_new_privileges=True,
        ready_s=3.0,
        trades=200,
        stop_s=0.4,
        exit_code=0,
        acknowledged=480,
        failed=0,
        record_writer="compiled",
    )
    return SmokeResult(**{**fields, **changes})


def test_a_locked_down_clean_run_has_no_problems() -> None:
    assert passing().problems() == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"uid": 0}, "runs as root"),
        ({"root_writable": True}, "writable"),
        ({"exit_code": 137}, "exit code 137"),
        ({"capabilities": "00000000a80425fb"}, "capabilities 00000000a80425fb"),
        ({"no_new_privileges": False}, "may gain privileges"),
        ({"failed": 3}, "3 records failed"),
        ({"record_writer": "pure Python"}, "record writer: pure Python"),
        ({"record_writer": "not logged"}, "record writer: not logged"),
    ],
)
def test_each_broken_promise_is_reported(changes: dict[str, Any], problem: str) -> None:
    [found] = passing(**changes).problems()
    assert problem in found


@pytest.mark.parametrize(("native", "said"), [(True, "compiled"), (False, "pure Python")])
def test_the_record_writer_is_read_from_the_start_up_line(native: bool, said: str) -> None:
    # As the container logs it: JSON lines (log.json), the start-up line among others.
    startup = (
        "streaming spot into Kafka at 127.0.0.1:9092 (event loop: uvloop; "
        f"record writer: {record_writer(native)})"
    )
    logs = "\n".join(
        json.dumps({"level": "INFO", "logger": name, "message": message})
        for name, message in [
            ("gateway.commands.run", startup),
            ("gateway.runtime.worker", "stopped: 480 records acknowledged, 0 failed"),
        ]
    )
    assert record_writer_in(logs) == said
    assert record_writer_in(logs.splitlines()[1]) == "not logged"


def test_trade_ids_must_be_contiguous_per_symbol() -> None:
    trades: list[dict[str, object]] = [
        {"symbol": s, "trade_id": i} for s in ("BTCUSDT", "ETHUSDT") for i in (7, 8, 9)
    ]
    assert contiguous_trades(trades) == 6
    with pytest.raises(InfraError, match="ETHUSDT"):
        contiguous_trades([*trades, {"symbol": "ETHUSDT", "trade_id": 11}])
    with pytest.raises(InfraError, match="BTCUSDT"):
        contiguous_trades([*trades, {"symbol": "BTCUSDT", "trade_id": 9}])


def test_the_config_is_readable_by_the_containers_user(tmp_path: Path) -> None:
    simulator = SimpleNamespace(
        config=SimpleNamespace(symbols=("BTCUSDT",)),
        ws_url="ws://127.0.0.1:1",
        rest_url="http://127.0.0.1:2",
    )
    write_config(tmp_path / "etc", "127.0.0.1:9092", simulator, 8123)  # type: ignore[arg-type]
    path = tmp_path / "etc" / "gateway.yaml"
    assert path.stat().st_mode & 0o004 and (tmp_path / "etc").stat().st_mode & 0o005 == 0o005
    config = yaml.safe_load(path.read_text())
    assert config["status"] == {"host": "127.0.0.1", "port": 8123}
    assert config["binance"]["markets"]["spot"]["symbols"] == ["BTCUSDT"]
