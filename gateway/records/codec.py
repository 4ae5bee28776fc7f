"""A compiled Avro binary writer: each schema becomes a tree of small closures, once.

fastavro stays the reader and the reference; on the hot path its generic, dict-driven writer costs
about 8 µs per trade plus 2 µs to build the dict. Compiling the schema into closures that read the
event's attributes directly writes the same bytes (tests compare them with fastavro's, for random
data of every schema) in well under half the time.

Supported: the types our schemas use — null, boolean, int, long, string, bytes, records (nested),
arrays, maps, unions, ``decimal`` on bytes and the timestamp logical types on long. Anything else
fails when the schema is compiled, not when a record is written.

Where the compiled extension :mod:`gateway.records.native_writer` is built (``make install`` builds
it with Cython), records read from objects are written by it: the same bytes for a fraction of
the CPU. Without it (no C compiler where the package was installed) the generated Python writer
serves, and :data:`NATIVE` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact
from operator import itemgetter
from typing import Any

from gateway.binance.events.base import SCALE
from gateway.errors import SerializationError

Writer = Callable[[bytearray, Any], None]

_NativeRecordWriter: Callable[..., Writer] | None
try:
    from gateway.records.native_writer import RecordWriter

    _NativeRecordWriter = RecordWriter
except ImportError:  # not built: the pure-Python writer serves (same bytes, slower)
    _NativeRecordWriter = None

NATIVE = _NativeRecordWriter is not None
"""Whether records are written by the compiled extension."""


_CONTINUATION = [int.from_bytes(b"\x80" * (k - 1) + b"\x00", "little") for k in range(9)]


def write_long(out: bytearray, value: int) -> None:
    """Avro ``long``: zig-zag, then base-128 varint (little-endian groups of 7 bits)."""
    n = (value << 1) ^ (value >> 63)
    if n < 0x80:
        out.append(n)
    elif n < 1 << 56:
        # Spread the 7-bit groups into bytes with three mask steps rather than a loop of up to
        # eight appends: timestamps in microseconds take eight bytes, three per trade.
        x = (n & 0x0FFFFFFF) | ((n & 0xFFFFFFF0000000) << 4)
        x = (x & 0x00003FFF00003FFF) | ((x & 0x0FFFC0000FFFC000) << 2)
        x = (x & 0x007F007F007F007F) | ((x & 0x3F803F803F803F80) << 1)
        size = (n.bit_length() + 6) // 7
        out += (x | _CONTINUATION[size]).to_bytes(size, "little")
    else:
        while n > 0x7F:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)


def _write_bytes(out: bytearray, value: bytes) -> None:
    write_long(out, len(value))
    out += value


def _write_string(out: bytearray, value: str) -> None:
    _write_bytes(out, value.encode())


def _write_boolean(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def _write_null(out: bytearray, value: None) -> None:
    pass


def _decimal_writer(precision: int, scale: int) -> Writer:
    limit = 10**precision
    # Shifting by the scale must never round: the default context keeps only 28 digits.
    exact = Context(prec=precision + scale + 2, traps=[Inexact])
    # Events on the hot path carry the unscaled integer already (``Scaled``, scale 18).
    takes_scaled = scale == SCALE

    def write(out: bytearray, value: Decimal | int) -> None:
        if type(value) is int and takes_scaled:
            unscaled = value
        elif isinstance(value, Decimal):
            exponent = value.as_tuple().exponent
            if not isinstance(exponent, int) or exponent < -scale:
                raise SerializationError(f"{value} has more than {scale} decimals")
            if value.adjusted() >= precision:
                raise SerializationError(f"{value} exceeds decimal({precision}, {scale})")
            unscaled = int(value.scaleb(scale, exact))
        else:
            raise SerializationError(f"{value!r} is not a decimal of scale {scale}")
        if not -limit < unscaled < limit:
            shown = Decimal(unscaled).scaleb(-scale, exact)
            raise SerializationError(f"{shown} exceeds decimal({precision}, {scale})")
        _write_bytes(out, unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True))

    return write


_PRIMITIVES: dict[str, Writer] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": write_long,
    "long": write_long,
    "string": _write_string,
    "bytes": _write_bytes,
}
_INTEGER_LOGICAL_TYPES = {"timestamp-micros", "timestamp-millis", "time-micros", "date"}


def compile_writer(schema: Any, *, native: bool = NATIVE) -> Writer:
    """The writer for a parsed schema (``fastavro.parse_schema`` output); ``native``: records
    read from objects by the compiled extension (tests compare it with the Python writer)."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        raise SerializationError(f"unsupported named type reference {schema!r}")
    if isinstance(schema, list):
        return _union_writer(schema, native)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "decimal" and kind == "bytes":
        return _decimal_writer(schema["precision"], schema.get("scale", 0))
    if logical in _INTEGER_LOGICAL_TYPES and kind in ("int", "long"):
        return write_long  # the gateway hands over integers, never datetimes
    if kind == "record":
        return _record_writer(schema, native)
    if kind == "array":
        return _array_writer(compile_writer(schema["items"], native=native))
    if kind == "map":
        return _map_writer(compile_writer(schema["values"], native=native))
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    raise SerializationError(f"unsupported Avro type {schema!r}")


def _record_writer(schema: Mapping[str, Any], native: bool) -> Writer:
    fields = [(f["name"], f["type"]) for f in schema["fields"]]
    writers = [compile_writer(field_type, native=native) for _, field_type in fields]
    by_key = [(itemgetter(name), write) for (name, _), write in zip(fields, writers, strict=True)]
    write_object: Writer
    if native and _NativeRecordWriter is not None:
        write_object = _NativeRecordWriter(
            (name, *_native_op(field_type), write)
            for (name, field_type), write in zip(fields, writers, strict=True)
        )
    else:
        write_object = _straight_line_writer(fields, native)

    def write(out: bytearray, value: Any) -> None:
        # Events are slotted classes; a few records (dead letters) are plain dicts.
        if type(value) is dict:
            for get, write_field in by_key:
                write_field(out, get(value))
        else:
            write_object(out, value)

    return write


def _native_op(field_type: Any) -> tuple[str, int]:
    """How the compiled writer writes a field: its fast shape and where ``null`` sits in its
    union (-1: not nullable); ``call``: always the field's Python writer."""
    if isinstance(field_type, list) and len(field_type) == 2 and "null" in field_type:
        null_index = field_type.index("null")
        op, inner_null = _native_op(field_type[1 - null_index])
        return (op, null_index) if op != "call" and inner_null < 0 else ("call", -1)
    kind = field_type if isinstance(field_type, str) else field_type.get("type")
    logical = None if isinstance(field_type, str) else field_type.get("logicalType")
    if logical == "decimal":
        exact = field_type.get("precision") == 38 and field_type.get("scale") == SCALE
        return ("scaled" if exact and kind == "bytes" else "call"), -1
    if kind in ("long", "int") and (logical is None or logical in _INTEGER_LOGICAL_TYPES):
        return "long", -1
    if kind in ("string", "boolean", "map") and logical is None:
        return kind, -1
    return "call", -1


def _straight_line_writer(fields: list[tuple[str, Any]], native: bool) -> Writer:
    """One generated function per record schema that reads each attribute and writes it inline.

    Avro names are identifiers, so ``value.<name>`` is safe to generate. The common shapes are
    written in place (a string, a boolean, ``null`` or a value, an empty map); anything else calls
    its compiled writer. Same bytes as the writers it inlines (tests compare with fastavro).
    """
    names: dict[str, Any] = {"write_long": write_long}
    lines = ["def write_object(out, value):"]
    for name, field_type in fields:
        if not name.isidentifier():
            raise SerializationError(f"field name {name!r} is not an identifier")
        lines += [f"    v = value.{name}", *_inline(field_type, names, "    ", native)]
    exec("\n".join(lines), names)  # source built above from the schema's own names
    generated: Writer = names["write_object"]
    return generated


def _inline(field_type: Any, names: dict[str, Any], indent: str, native: bool) -> list[str]:
    """Source lines writing ``v`` of ``field_type``; compiled writers it calls go in ``names``."""
    if field_type == "string" or field_type == {"type": "string"}:
        return [
            f"{indent}v = v.encode()",
            f"{indent}if len(v) < 64:",
            f"{indent}    out.append(len(v) << 1)",  # zig-zag of a small length: one byte
            f"{indent}else:",
            f"{indent}    write_long(out, len(v))",
            f"{indent}out += v",
        ]
    if field_type == "boolean":
        return [f"{indent}out.append(1 if v else 0)"]
    if field_type in ("long", "int") or (
        isinstance(field_type, dict)
        and field_type.get("type") in ("long", "int")
        and field_type.get("logicalType") in _INTEGER_LOGICAL_TYPES
    ):
        return [f"{indent}write_long(out, v)"]
    if isinstance(field_type, list) and len(field_type) == 2 and "null" in field_type:
        null_index = field_type.index("null")
        return [
            f"{indent}if v is None:",
            f"{indent}    out.append({null_index << 1})",
            f"{indent}else:",
            f"{indent}    out.append({(1 - null_index) << 1})",
            *_inline(field_type[1 - null_index], names, indent + "    ", native),
        ]
    writer = f"w{len(names)}"
    names[writer] = compile_writer(field_type, native=native)
    if isinstance(field_type, dict) and field_type.get("type") == "map":
        # Almost always empty (``extra``): one byte, no call.
        return [
            f"{indent}if v:",
            f"{indent}    {writer}(out, v)",
            f"{indent}else:",
            f"{indent}    out.append(0)",
        ]
    return [f"{indent}{writer}(out, v)"]


def _array_writer(write_item: Writer) -> Writer:
    def write(out: bytearray, values: Any) -> None:
        if values:
            write_long(out, len(values))
            for item in values:
                write_item(out, item)
        out.append(0)

    return write


def _map_writer(write_value: Writer) -> Writer:
    def write(out: bytearray, values: Mapping[str, Any]) -> None:
        if values:
            write_long(out, len(values))
            for key, item in values.items():
                _write_string(out, key)
                write_value(out, item)
        out.append(0)

    return write


def _union_writer(branches: list[Any], native: bool) -> Writer:
    writers = [compile_writer(branch, native=native) for branch in branches]
    if len(branches) == 2 and "null" in branches:
        # The common optional field: one check, no type matching.
        null_index = branches.index("null")
        other_index = 1 - null_index
        write_other = writers[other_index]

        def write_optional(out: bytearray, value: Any) -> None:
            if value is None:
                out.append(null_index << 1)
            else:
                out.append(other_index << 1)
                write_other(out, value)

        return write_optional
    checks = [_branch_check(branch) for branch in branches]

    def write_union(out: bytearray, value: Any) -> None:
        for index, (matches, write_branch) in enumerate(zip(checks, writers, strict=True)):
            if matches(value):
                write_long(out, index)
                write_branch(out, value)
                return
        raise SerializationError(f"{value!r} matches no branch of union {branches}")

    return write_union


def _branch_check(branch: Any) -> Callable[[Any], bool]:
    name = branch if isinstance(branch, str) else branch.get("type")
    if isinstance(branch, dict) and branch.get("logicalType") == "decimal":
        return lambda v: isinstance(v, Decimal) or type(v) is int
    checks: dict[str, Callable[[Any], bool]] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "bytes": lambda v: isinstance(v, bytes),
        "array": lambda v: isinstance(v, list | tuple),
        "map": lambda v: isinstance(v, Mapping),
    }
    return checks.get(name, lambda v: not isinstance(v, str | int | bytes | None))
