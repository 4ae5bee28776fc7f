"""Account topics: one per account, one partition, and the key of each record.

``<prefix>.<market>.account.<alias>`` (e.g. ``binance.usdm.account.desk-a``) holds every record
of one account, whatever its kind: orders, fills, balances, positions, stream life-cycle events
and reconciliation snapshots. One topic per account because access to account data is granted per
team: one prefixed ACL (``binance.usdm.account.desk-a``) grants exactly one account.

**One partition.** An account's events only make sense in order across kinds: a fill
(``execution_report``) and the balance it moved (``account_position``), a snapshot and the events
after it. Keys by symbol would spread those over partitions and lose that order. An account's
event rate is tiny next to one partition's capacity, so one partition costs nothing and keeps the
account's total order. Records are still keyed (by symbol where the event has one, else by the
account alias) so a consumer can filter or compact downstream, and the choice of one partition
stays safe if someone adds partitions later: per-symbol order would survive.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.accounts.settings import AccountSettings
from gateway.adapters.kafka import ensure_topics
from gateway.binance.messages import RecordEvent
from gateway.records.topics import TopicNamer
from gateway.settings import KafkaSettings
from gateway.topic_catalogue import ACCOUNT_TOPIC_PARTITIONS, account_spec


def account_topic(namer: TopicNamer, account: AccountSettings) -> str:
    """The topic of one account."""
    return namer.account_topic(account.market.value, account.alias)


def account_topics(namer: TopicNamer, accounts: Iterable[AccountSettings]) -> list[str]:
    """Every account topic of the configuration, for ``Gateway.topics()``."""
    return [account_topic(namer, account) for account in accounts]


def account_topic_partitions(
    namer: TopicNamer, accounts: Iterable[AccountSettings]
) -> dict[str, int]:
    """Topic -> partition count to create it with (always :data:`ACCOUNT_TOPIC_PARTITIONS`)."""
    return dict.fromkeys(account_topics(namer, accounts), ACCOUNT_TOPIC_PARTITIONS)


async def ensure_account_topics(
    settings: KafkaSettings, namer: TopicNamer, accounts: Iterable[AccountSettings]
) -> list[str]:
    """Create the missing account topics with one partition; returns those created."""
    specs = [account_spec(settings, name) for name in account_topics(namer, accounts)]
    return await ensure_topics(settings, specs)


def record_key(event: RecordEvent, alias: str) -> bytes:
    """The symbol where the event has one, else the account alias."""
    symbol = getattr(event, "symbol", None)
    return (symbol if isinstance(symbol, str) and symbol else alias).encode()
