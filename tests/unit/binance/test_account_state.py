"""The account stream's state: one enum, one table, one setter."""

from __future__ import annotations

import pytest

from gateway.binance.account_state import AccountHealth, AccountState
from gateway.errors import InvalidStateError


def test_a_session_comes_up_goes_down_and_keeps_its_last_error_until_up_again() -> None:
    health = AccountHealth("main")
    assert (health.state, health.up) == (AccountState.STARTING, False)
    health.set_state(AccountState.DOWN, "refused: 502")
    health.set_state(AccountState.DOWN)  # another failed attempt, nothing new to say
    assert (health.state, health.last_error) == (AccountState.DOWN, "refused: 502")
    health.set_state(AccountState.UP)
    assert (health.up, health.last_error) == (True, None)
    health.set_state(AccountState.REJECTED, "-2015")
    assert (health.up, health.last_error) == (False, "-2015")


@pytest.mark.parametrize("state", list(AccountState))
def test_nothing_returns_to_starting(state: AccountState) -> None:
    health = AccountHealth("main")
    if state is not AccountState.STARTING:
        health.set_state(state)
    with pytest.raises(InvalidStateError):
        health.set_state(AccountState.STARTING)


def test_up_is_not_entered_twice() -> None:
    # A second "established" without a disconnect between would hide a lost reconnect.
    health = AccountHealth("main")
    health.set_state(AccountState.UP)
    with pytest.raises(InvalidStateError):
        health.set_state(AccountState.UP)
