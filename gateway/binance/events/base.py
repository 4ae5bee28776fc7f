"""What every event shares: the parse context, the record contract and the wire-value readers.

Readers turn one JSON value into one typed value or raise ``ValueError`` / ``TypeError`` /
``KeyError``; :class:`~gateway.binance.messages.FrameParser` turns those into
:class:`~gateway.errors.MessageParseError`. They are strict on purpose: a swapped or retyped field
must fail loudly (and be dead-lettered), never pass as a plausible number.

Exactness rules, documented in ``schemas/README.md``:

* prices and quantities arrive as decimal strings; on the hot path (trades, klines, tickers) they
  become :data:`Scaled` integers, the unscaled value Avro's ``decimal(38, 18)`` writes, parsed
  straight from the string (no ``Decimal``, no float); elsewhere :class:`~decimal.Decimal` as sent;
* a few values arrive as JSON numbers (``!contractInfo`` brackets): integers are exact, and a
  float becomes the decimal of its shortest round-trip repr, which is the literal Binance sent
  whenever it has at most 15 significant digits;
* null-or-decimal values (``null`` or ``""`` where a decimal is expected) become ``None``;
* timestamps become integer epoch microseconds whatever ``timeUnit`` the connection uses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Context as DecimalContext, Decimal, Inexact
from typing import Any, ClassVar, NewType, TypeVar, cast

import orjson
from typing_extensions import dataclass_transform

Payload = Mapping[str, Any]
T = TypeVar("T")

# Avro ``long`` bounds: ids and timestamps outside them could not be written exactly.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

SYMBOL_TYPE_MARKETS = {1: "usdm", 2: "coinm"}
"""Futures ``st`` (symbol type, since the 2026-06-30 USD-M/COIN-M integration): which market a
contract belongs to, whichever connection it arrived on (docs/futures-merger.md)."""

ACCOUNT_WIDE_KEY = "account"
"""Partition key of account events that concern no single symbol or asset (see schemas/README)."""


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def event_class(cls: type[T]) -> type[T]:
    """An event class: immutable to the type checker, a plain slotted dataclass at run time.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which made
    building a trade cost more than parsing it (issue 16); mypy still refuses any assignment to
    a field of these classes, and nothing assigns one. Equality and hashing are a frozen one's.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


@dataclass(slots=True)
class Context:
    """What the parser knows about one frame beyond its payload.

    Not frozen: one is made per frame, and a frozen dataclass's ``__init__`` costs three times as
    much. Nothing mutates it.
    """

    market: str
    to_us: int
    received_at_us: int
    stream: str | None = None
    subscription_id: int | None = None


class Publishable:
    """The record contract of an event, on top of its fields (which are the Avro fields).

    ``KIND`` names the schema file and the topic; ``ACCOUNT`` events (user data) live in the
    ``<market>_user`` schema group; ``KEY_FIELD`` names the field whose value is the Kafka key, and
    ``TIME_FIELD`` the field that dates the record.
    """

    __slots__ = ()

    KIND: ClassVar[str]
    ACCOUNT: ClassVar[bool] = False
    KEY_FIELD: ClassVar[str | None] = "symbol"
    TIME_FIELD: ClassVar[str] = "event_time_us"

    market: str
    received_at_us: int

    @property
    def schema_group(self) -> str:
        """``schemas/<group>/<KIND>.avsc`` and the topic's middle part: ``spot`` or ``spot_user``."""
        return f"{self.market}_user" if self.ACCOUNT else self.market

    @property
    def partition_key(self) -> str:
        """The Kafka key: the symbol (or pair, asset) whose order must be kept."""
        if self.KEY_FIELD is None:
            return ACCOUNT_WIDE_KEY
        value = getattr(self, self.KEY_FIELD)
        return value if isinstance(value, str) else ACCOUNT_WIDE_KEY

    @property
    def record_time_us(self) -> int:
        """The record's timestamp: Binance's own time, or the receive time when it sent none."""
        value = getattr(self, self.TIME_FIELD)
        return value if isinstance(value, int) else self.received_at_us


def decimal(value: object, name: str) -> Decimal:
    """A decimal string; a JSON number here would already have been through a float."""
    if type(value) is not str:
        raise ValueError(f"{name} must be a decimal string, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{name} is not finite: {value!r}")
    return number


Scaled = NewType("Scaled", int)
"""A decimal as the schemas carry it: its unscaled integer at scale :data:`SCALE` (every decimal
field is ``decimal(38, 18)``), so ``"1.5"`` is ``1_500_000_000_000_000_000``. Exact, and what the
record writer encodes without a ``Decimal`` in between; :func:`as_decimal` turns it back."""

SCALE = 18

Price = Scaled | Decimal
"""A price or quantity of a book level: ``Scaled`` when the gateway parsed it from Binance,
``Decimal`` when a consumer decoded it from a record. The writer takes either; one order book
holds one kind only (``Scaled(1)`` is 1e-18, not 1)."""
_SHIFTS = tuple(10 ** (SCALE - places) for places in range(SCALE + 1))
_EXACT = DecimalContext(prec=100, traps=[Inexact])


def _scaled_python(value: object, name: str) -> Scaled:
    """A decimal string as a :data:`Scaled` integer, exactly what ``Decimal(value)`` would be.

    Binance's plain form (``"25.35190000"``, ``"-0.5"``, ``"3"``) is read with ``str`` and ``int``
    only; any other spelling ``Decimal`` accepts (exponent, ``+``, spaces) goes through
    ``Decimal`` so the two never disagree. What decimal(38, 18) cannot hold (more than 18
    decimals, more than 20 integer digits) is left to the record writer, which refuses it as it
    always did: the frame is dead-lettered at encode.
    """
    if type(value) is not str:
        raise ValueError(f"{name} must be a decimal string, got {type(value).__name__}")
    point = value.find(".")
    if point < 0:
        digits, places = value, 0
    else:
        digits = value.replace(".", "", 1)
        places = len(digits) - point
    # A sign only before the point: ".-5" loses its point to the replace but is no number.
    if places <= SCALE and (
        digits.isdecimal() or (digits[:1] == "-" and point != 0 and digits[1:].isdecimal())
    ):
        return Scaled(int(digits) * _SHIFTS[places])
    return _scaled_by_decimal(value, name)


def _scaled_by_decimal(value: str, name: str) -> Scaled:
    number = decimal(value, name)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked by decimal()
    if exponent < -SCALE or number.adjusted() >= 40:
        # No Scaled holds it (and "1E+999999999" must not become a huge integer). Handed on as
        # the Decimal, which the record writer refuses as it always did: the frame is
        # dead-lettered at "encode", as before.
        return cast(Scaled, number)
    return Scaled(int(number.scaleb(SCALE, _EXACT)))


scaled: Callable[[object, str], Scaled]
"""A decimal string as a :data:`Scaled` integer: :func:`_scaled_python`, or where the compiled
extension is built (``make install``), :mod:`gateway.binance.events.native_decimal`, which reads
the plain form in C and hands every other string to the Python reader (same values, same
refusals; tests compare them)."""
try:
    from gateway.binance.events import native_decimal
except ImportError:  # not built: the Python reader serves
    scaled = _scaled_python
else:
    native_decimal.set_fallback(_scaled_python)
    scaled = native_decimal.scaled
NATIVE = scaled is not _scaled_python
"""Whether decimal strings are read by the compiled extension."""


def scaled_or_null(value: object, name: str) -> Scaled | None:
    """A decimal string as :data:`Scaled`, or ``None`` for ``null`` and ``""``."""
    if value is None or value == "":
        return None
    return scaled(value, name)


def as_decimal(value: Scaled) -> Decimal:
    """The :class:`~decimal.Decimal` a :data:`Scaled` integer stands for (scale 18)."""
    return Decimal(value).scaleb(-SCALE, _EXACT)


def decimal_or_null(value: object, name: str) -> Decimal | None:
    """A decimal string, or ``None`` for ``null`` and ``""`` (e.g. COIN-M delivery funding)."""
    if value is None or value == "":
        return None
    return decimal(value, name)


def number(value: object, name: str) -> Decimal:
    """A JSON number (or decimal string) as an exact decimal; see the module docstring."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return decimal(repr(value), name)
    return decimal(value, name)


def integer(value: object, name: str) -> int:
    """An integer within Avro ``long``; ``type(...) is int`` also refuses bool, an int subclass."""
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{name} is out of the 64-bit range: {value}")
    return value


def integer_or_digits(value: object, name: str) -> int:
    """An integer, also accepted as a digit string (futures ``listenKeyExpired`` sends ``E`` so)."""
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return integer(int(value), name)
    return integer(value, name)


def text(value: object, name: str) -> str:
    """A non-empty string: symbols, statuses, ids."""
    if type(value) is not str or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def any_text(value: object, name: str) -> str:
    """A string that may be empty (e.g. an unset original client order id)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def boolean(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name} must be a boolean, got {type(value).__name__}")
    return value


def time_us(value: object, name: str, ctx: Context) -> int:
    """A Binance timestamp in the connection's unit, as epoch microseconds."""
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    micros = value * ctx.to_us
    if not LONG_MIN <= micros <= LONG_MAX:
        raise ValueError(f"{name} is out of the 64-bit range in microseconds: {value}")
    return micros


def optional(payload: Payload, key: str, read: Callable[[object, str], T]) -> T | None:
    """``read`` the value of ``key``, or ``None`` when it is absent or null."""
    value = payload.get(key)
    return None if value is None else read(value, key)


def symbol_type(payload: Payload) -> int | None:
    """``st`` (1 = USD-M, 2 = COIN-M) or ``None`` when absent; any other value is refused."""
    value = payload.get("st")
    if value is None:
        return None
    kind = integer(value, "st")
    if kind not in SYMBOL_TYPE_MARKETS:
        raise ValueError(f"unknown symbol type st={kind} (known: 1 = USD-M, 2 = COIN-M)")
    return kind


def contract_market(kind: int | None, ctx: Context) -> str:
    """The market whose topics a contract's record belongs to: its ``st``, else the connection's."""
    return ctx.market if kind is None else SYMBOL_TYPE_MARKETS[kind]


def optional_time_us(payload: Payload, key: str, ctx: Context) -> int | None:
    value = payload.get(key)
    return None if value is None else time_us(value, key, ctx)


def obj(value: object, name: str) -> Payload:
    """A nested JSON object."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object, got {type(value).__name__}")
    return value


def array(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be an array, got {type(value).__name__}")
    return value


def extra(payload: Payload, known: frozenset[str], prefix: str = "") -> dict[str, str]:
    """Fields Binance sent that the schema does not name yet, JSON-encoded.

    Keys of nested objects carry their path: ``k.X`` for key ``X`` inside ``k``, ``c[1].X`` inside
    the second element of array ``c``.
    """
    if payload.keys() <= known:
        return {}
    return {prefix + k: orjson.dumps(v).decode() for k, v in payload.items() if k not in known}


class _Recording(dict[str, Any]):
    """A copy of a payload that notes every key asked for, present or not: a parser's first read."""

    __slots__ = ("asked",)

    def __init__(self, payload: Payload) -> None:
        super().__init__(payload)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


class Fields:
    """The wire keys a parser reads from one kind of JSON object, so ``extra`` is the rest.

    A parser reads the object through :meth:`view` and ends with :meth:`unread`. The first time,
    the view is a copy that notes every key the parser asks for (present or absent, so optional
    keys count); :meth:`unread` keeps that set, and from then on the view is the payload itself:
    nothing is tracked per event (issue 16's hot path). Each wire key is thus written once, where
    it is read. A parser must ask for the same keys whatever the payload holds (read both sides
    of an ``or``, no key read only when another is present); ``tests/unit/binance/test_fields.py``
    checks that the order of first parses does not matter.

    ``within``: the key of the nested object this reader reads (``k`` of a kline), which
    :meth:`view_in` takes from its parent and whose path prefixes the unknown keys; ``optional``:
    that object may be absent (read as empty). ``event``: the object is an event, whose type
    ``e`` the dispatcher reads, not the parser. ``ignored``: keys Binance documents as "Ignore",
    kept apart by :meth:`ignored`.
    """

    __slots__ = ("_always", "_ignored", "_known", "_optional", "_prefix", "_within")

    every: ClassVar[list[Fields]] = []
    """Every reader made, so tests can make them all learn again."""

    def __init__(
        self,
        within: str = "",
        *,
        optional: bool = False,
        event: bool = True,
        ignored: Collection[str] = (),
    ) -> None:
        self._within = within
        self._optional = optional
        self._prefix = f"{within}." if within else ""
        self._ignored = frozenset(ignored)
        self._always = self._ignored | {"e"} if event and not within else self._ignored
        self._known: frozenset[str] | None = None
        Fields.every.append(self)

    @property
    def known(self) -> frozenset[str] | None:
        """The keys the parser reads, once it has parsed one object; ``None`` before."""
        return self._known

    def forget(self) -> None:
        """Learn again from the next object (tests: prove the first one does not matter)."""
        self._known = None

    def view(self, payload: Payload) -> Payload:
        """What the parser reads ``payload`` through: itself, or a noting copy the first time."""
        return payload if self._known is not None else _Recording(payload)

    def view_in(self, parent: Payload) -> Payload:
        """The nested object under ``within`` in ``parent``, as :meth:`view` gives it."""
        key = self._within
        value = parent.get(key, {}) if self._optional else parent[key]
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be an object, got {type(value).__name__}")
        return value if self._known is not None else _Recording(value)

    def unread(self, view: Payload, prefix: str | None = None) -> dict[str, str]:
        """The keys the parser did not read, JSON-encoded, their names prefixed with the path
        (``k.X``; an array's items give theirs, ``B[1].``: see :func:`extra`)."""
        known = self._known
        if known is None:
            # A bug, not bad input, if a parser skipped view(): let it crash.
            assert isinstance(view, _Recording), "read through Fields.view() first"
            known = self._known = frozenset(view.asked) | self._always
        if view.keys() <= known:
            return {}
        return extra(view, known, self._prefix if prefix is None else prefix)

    def ignored(self, view: Payload) -> dict[str, str]:
        """Fields Binance documents as "Ignore", kept JSON-encoded so nothing it sends is lost."""
        keys, prefix = self._ignored, self._prefix
        return {prefix + k: orjson.dumps(v).decode() for k, v in view.items() if k in keys}


def merged(*parts: Mapping[str, str]) -> dict[str, str]:
    """One ``extra`` map from several levels; empty in the common case without allocation."""
    non_empty = [part for part in parts if part]
    if not non_empty:
        return {}
    if len(non_empty) == 1:
        return dict(non_empty[0])
    result: dict[str, str] = {}
    for part in non_empty:
        result.update(part)
    return result
