"""The state of one account's stream, as the book states its own: an enum, a transition table and
one logged setter (:class:`AccountHealth`), so health, readiness and metrics read one value.

STARTING until the first session is established; UP while a session streams; DOWN while it
reconnects (again and again if need be: each failed attempt is a DOWN → DOWN that records its
error); REJECTED once Binance refused the credentials, until a later attempt gets through. Nothing
returns to STARTING: a worker that hands the account over drops its stream instead.
"""

from __future__ import annotations

import enum
import logging

from gateway.errors import InvalidStateError

logger = logging.getLogger(__name__)


class AccountState(enum.Enum):
    STARTING = "starting"
    UP = "up"
    DOWN = "down"  # reconnecting
    REJECTED = "rejected"  # Binance refused the key; retried every auth_retry_s


_TRANSITIONS: dict[AccountState, frozenset[AccountState]] = {
    AccountState.STARTING: frozenset({AccountState.UP, AccountState.DOWN, AccountState.REJECTED}),
    AccountState.UP: frozenset({AccountState.DOWN, AccountState.REJECTED}),
    AccountState.DOWN: frozenset({AccountState.UP, AccountState.DOWN, AccountState.REJECTED}),
    AccountState.REJECTED: frozenset({AccountState.UP, AccountState.DOWN, AccountState.REJECTED}),
}


class AccountHealth:
    """One account stream's state and the last error that took it down."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.state = AccountState.STARTING
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        return self.state is AccountState.UP

    def set_state(self, state: AccountState, error: str | None = None) -> None:
        """Move to ``state``; an error, when given, is kept until the next one (UP clears it)."""
        if state not in _TRANSITIONS[self.state]:
            raise InvalidStateError(f"account {self.alias}: {self.state.name} -> {state.name}")
        if state is not self.state:
            logger.debug("account %s: %s -> %s", self.alias, self.state.name, state.name)
        self.state = state
        if state is AccountState.UP:
            self.last_error = None
        elif error is not None:
            self.last_error = error
