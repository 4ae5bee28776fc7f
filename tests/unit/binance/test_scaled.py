"""Decimal strings read straight to Scaled integers agree with ``Decimal``, the oracle, on every
input: the value, the refusals, and the bytes Avro's decimal(38, 18) carries."""

import io
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation

import fastavro
import pytest
from hypothesis import example, given, strategies as st

from gateway.binance.events import base
from gateway.binance.events.base import SCALE, Scaled, as_decimal, scaled, scaled_or_null
from gateway.errors import SerializationError
from gateway.records.codec import compile_writer

EXACT = Context(prec=200)
SCHEMA = fastavro.parse_schema(
    {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}
)
WRITE = compile_writer(SCHEMA)

# Binance's plain form, with any number of places (more than 18 must be refused at encode).
plain = st.builds(
    lambda sign, whole, fraction: f"{sign}{whole}{'.' + fraction if fraction is not None else ''}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{0,25}", fullmatch=True),
    st.none() | st.from_regex(r"[0-9]{0,22}", fullmatch=True),
)
# Anything Decimal might or might not accept: exponents, spaces, underscores, other digits.


class StrSubclass(str):
    """Not a str to ``type(value) is str``: both readers refuse it."""


odd = st.text(alphabet="0123456789.-+eE _nNaIfity\u0663\uff11\u00b2", max_size=12)


def oracle(text: str) -> Decimal | None:
    """What the Decimal path made of ``text``: the value, or None where it raised."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@given(st.one_of(plain, odd, st.text(alphabet="0123456789.-", max_size=10), st.text(max_size=8)))
@example("0.00000000")
@example("-0")
@example(".-5")
@example("-.5")
@example("1.")
@example(".5")
@example("1E+999999999")
@example("0.0000000000000000001")
@example("1.0000000000000000000")
@example("NaN")
def test_scaled_agrees_with_decimal(text: str) -> None:
    expected = oracle(text)
    if expected is None:
        with pytest.raises((ValueError, InvalidOperation)):
            scaled(text, "p")
        return
    got = scaled(text, "p")
    exponent = expected.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -SCALE or expected.adjusted() >= 40:
        # Handed on unchanged, for the record writer to refuse as it always did.
        handed_on: object = got  # typed Scaled; at run time the Decimal, for the writer
        assert type(handed_on) is Decimal and handed_on == expected
        with pytest.raises(SerializationError):
            WRITE(bytearray(), got)
    else:
        assert type(got) is int
        assert got == int(expected.scaleb(SCALE, EXACT))
        assert as_decimal(got) == expected


@given(st.integers(-(10**38) + 1, 10**38 - 1), st.booleans())
@example(0, True)
@example(-1, False)
@example(10**38 - 1, True)
def test_written_bytes_are_fastavros(unscaled: int, stripped: bool) -> None:
    # From the unscaled integer, exactly (Decimal's default context rounds at 28 digits).
    number = Decimal(unscaled).scaleb(-SCALE, EXACT)
    text = format(number.normalize(EXACT) if stripped else number, "f")
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, SCHEMA, number)
    ours = bytearray()
    WRITE(ours, scaled(text, "p"))
    assert bytes(ours) == reference.getvalue()
    other = bytearray()
    WRITE(other, number)  # the Decimal path writes the same bytes
    assert other == ours


@pytest.mark.parametrize("text", ["123456789012345678901", "-100000000000000000000", "1E+25"])
def test_too_many_integer_digits_is_refused_by_the_writer(text: str) -> None:
    with pytest.raises(SerializationError, match=r"exceeds decimal\(38, 18\)"):
        WRITE(bytearray(), scaled(text, "p"))


def test_non_strings_are_refused_and_null_is_none() -> None:
    for value in (1, 1.5, None, True, b"1"):
        with pytest.raises(ValueError, match="decimal string"):
            scaled(value, "p")
    assert scaled_or_null(None, "p") is None
    assert scaled_or_null("", "p") is None
    assert scaled_or_null("1.5", "p") == Scaled(1_500_000_000_000_000_000)


def test_the_compiled_reader_is_built() -> None:
    assert base.NATIVE, "gateway.binance.events.native_decimal is not built: run make install"


def outcome(read: Callable[[object, str], Scaled], value: object) -> object:
    try:
        return read(value, "p")
    except Exception as exc:  # noqa: BLE001 - both readers must refuse alike
        return f"{type(exc).__name__}: {exc}"


@given(st.one_of(plain, odd, st.text(alphabet="0123456789.-", max_size=45), st.text(max_size=8)))
@example("9" * 38)
@example("9" * 20 + "." + "9" * 18)
@example("9" * 21 + "." + "9" * 18)
@example("-" + "9" * 20 + "." + "9" * 18)
@example("0." + "0" * 17 + "1")
@example("92233720368547.75807")
@example("-92233720368547.75808")
@example("-")
@example("--1")
@example("1..2")
def test_the_compiled_reader_agrees_with_the_python_one(text: str) -> None:
    assert outcome(base.scaled, text) == outcome(base._scaled_python, text)


@pytest.mark.parametrize("value", [None, 1, 1.5, b"1.5", True, ["1"], StrSubclass("1.5")])
def test_the_compiled_reader_refuses_what_the_python_one_refuses(value: object) -> None:
    assert outcome(base.scaled, value) == outcome(base._scaled_python, value)
