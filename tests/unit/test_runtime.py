"""``gateway run``'s event loop: uvloop unless ``runtime.uvloop`` is false."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from gateway.runtime.loop import run_async
from gateway.settings import load_settings


async def loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_async_runs_on_uvloop_unless_told_not_to() -> None:
    assert run_async(loop_type()) is uvloop.Loop
    assert issubclass(run_async(loop_type(), uvloop=False), asyncio.BaseEventLoop)
    assert run_async(loop_type(), uvloop=False) is not uvloop.Loop


def test_the_setting_defaults_to_uvloop_and_the_environment_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().runtime.uvloop is True
    monkeypatch.setenv("GATEWAY_RUNTIME__UVLOOP", "false")
    assert load_settings().runtime.uvloop is False
