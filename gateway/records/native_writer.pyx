# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The record writer of :mod:`gateway.records.codec`, compiled (issue 16's compiled path).

One :class:`RecordWriter` per record schema reads an event's attributes and writes the fields of
the common shapes (long, string, boolean, a ``decimal(38, 18)`` held as a scaled integer, an empty
map, each optionally null) straight into the output in C. Any other field, and any value not of
the fast shape (a ``Decimal``, a bool where a long is due, a number out of range), goes to that
field's pure-Python writer, so the bytes, and the errors, are the Python writer's by construction
(tests compare the two, and both with fastavro, for random data of every schema).
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_CheckExact
from cpython.object cimport PyObject_GetAttr, PyObject_IsTrue
from cpython.unicode cimport PyUnicode_CheckExact
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1


cdef extern from *:
    int __builtin_clzll(unsigned long long) noexcept nogil


cdef extern from *:
    """
    typedef __int128 gateway_int128;
    typedef unsigned __int128 gateway_uint128;
    """
    # 128-bit integers (GCC and Clang): a decimal(38, 18) unscaled value fits one.
    ctypedef long long int128 "gateway_int128"
    ctypedef unsigned long long uint128 "gateway_uint128"

# What a field is, for the fast path; codec.py names them (FAST_OPS) from the schema.
cdef enum Op:
    OP_CALL = 0  # always the field's Python writer
    OP_LONG = 1
    OP_STRING = 2
    OP_BOOLEAN = 3
    OP_SCALED = 4  # decimal(38, 18) from a Scaled integer
    OP_MAP = 5  # an empty map is one byte; any other goes to the Python writer

OPS = {"call": OP_CALL, "long": OP_LONG, "string": OP_STRING, "boolean": OP_BOOLEAN,
       "scaled": OP_SCALED, "map": OP_MAP}

# decimal(38, 18): |unscaled| < 10**38, which a signed 128-bit integer holds.
cdef uint128 _DECIMAL_LIMIT = (<uint128>10000000000000000000ULL) * (<uint128>10000000000000000000ULL)
_LOW_MASK = (1 << 64) - 1


cdef inline int _append(bytearray out, const unsigned char* data, Py_ssize_t size) except -1:
    cdef Py_ssize_t at = PyByteArray_GET_SIZE(out)
    PyByteArray_Resize(out, at + size)
    memcpy(PyByteArray_AS_STRING(out) + at, data, size)
    return 0


cdef inline int _byte(bytearray out, unsigned char value) except -1:
    cdef Py_ssize_t at = PyByteArray_GET_SIZE(out)
    PyByteArray_Resize(out, at + 1)
    PyByteArray_AS_STRING(out)[at] = <char>value
    return 0


cdef inline int _varint(unsigned char* into, unsigned long long n) noexcept:
    cdef int size = 0
    while n > 0x7F:
        into[size] = <unsigned char>((n & 0x7F) | 0x80)
        n >>= 7
        size += 1
    into[size] = <unsigned char>n
    return size + 1


cdef inline unsigned long long _zigzag(long long value) noexcept:
    return (<unsigned long long>value << 1) ^ <unsigned long long>(value >> 63)


cdef inline int _bit_length(uint128 value) noexcept:
    cdef unsigned long long high = <unsigned long long>(value >> 64)
    cdef unsigned long long low = <unsigned long long>value
    if high:
        return 128 - __builtin_clzll(high)
    if low:
        return 64 - __builtin_clzll(low)
    return 0


cdef inline bint _as_int128(object value, int128* result) except -1:
    """The exact int ``value`` as a 128-bit integer; False when it needs more bits."""
    cdef int overflow = 0
    cdef long long small = PyLong_AsLongLongAndOverflow(value, &overflow)
    cdef long long high
    if not overflow:
        result[0] = small
        return True
    high = PyLong_AsLongLongAndOverflow(value >> 64, &overflow)
    if overflow:
        return False
    result[0] = ((<int128>high) << 64) | <int128>PyLong_AsUnsignedLongLong(value & _LOW_MASK)
    return True


cdef class RecordWriter:
    """Writes one record schema's fields from an object's attributes.

    ``fields``: per field, its name, its :data:`OPS` name, where ``null`` sits in its union
    (``-1``: not nullable) and its Python writer (the whole field, union included).
    """

    cdef Py_ssize_t _count
    cdef tuple _names
    cdef tuple _fallbacks
    cdef int* _ops
    cdef int* _null_index

    def __cinit__(self, fields):
        cdef Py_ssize_t i
        fields = tuple(fields)
        self._count = len(fields)
        self._names = tuple(name for name, _, _, _ in fields)
        self._fallbacks = tuple(write for _, _, _, write in fields)
        self._ops = <int*>malloc(max(self._count, 1) * sizeof(int))
        self._null_index = <int*>malloc(max(self._count, 1) * sizeof(int))
        if self._ops == NULL or self._null_index == NULL:
            raise MemoryError()
        for i, (_, op, null_index, _) in enumerate(fields):
            self._ops[i] = OPS[op]
            self._null_index[i] = null_index

    def __dealloc__(self):
        free(self._ops)
        free(self._null_index)

    def __call__(self, bytearray out, value):
        cdef Py_ssize_t i
        cdef object field
        for i in range(self._count):
            field = PyObject_GetAttr(value, self._names[i])
            if not self._write_fast(out, field, self._ops[i], self._null_index[i]):
                self._fallbacks[i](out, field)

    cdef bint _write_fast(self, bytearray out, object value, int op, int null_index) except -1:
        """Write ``value`` if it has the fast shape of ``op``; False (nothing written) if not."""
        cdef unsigned char buffer[32]
        cdef Py_ssize_t size = 0
        cdef Py_ssize_t length
        cdef const char* text
        cdef long long number
        cdef int overflow = 0
        cdef int128 unscaled
        cdef uint128 magnitude
        cdef int width, k
        if op == OP_CALL:
            return False
        if null_index >= 0:
            if value is None:
                _byte(out, <unsigned char>(null_index << 1))
                return True
            buffer[0] = <unsigned char>((1 - null_index) << 1)
            size = 1
        if op == OP_LONG:
            if not PyLong_CheckExact(value):
                return False
            number = PyLong_AsLongLongAndOverflow(value, &overflow)
            if overflow:
                return False
            size += _varint(buffer + size, _zigzag(number))
            _append(out, buffer, size)
        elif op == OP_STRING:
            if not PyUnicode_CheckExact(value):
                return False
            text = PyUnicode_AsUTF8AndSize(value, &length)
            size += _varint(buffer + size, _zigzag(length))
            _append(out, buffer, size)
            _append(out, <const unsigned char*>text, length)
        elif op == OP_BOOLEAN:
            buffer[size] = 1 if PyObject_IsTrue(value) else 0
            _append(out, buffer, size + 1)
        elif op == OP_SCALED:
            if not PyLong_CheckExact(value) or not _as_int128(value, &unscaled):
                return False
            magnitude = <uint128>(-unscaled if unscaled < 0 else unscaled)
            if magnitude >= _DECIMAL_LIMIT:
                return False  # the Python writer says it exceeds decimal(38, 18)
            # Python's to_bytes((bit_length + 8) // 8, signed=True), byte for byte.
            width = (_bit_length(magnitude) + 8) // 8
            size += _varint(buffer + size, _zigzag(width))
            for k in range(width):
                buffer[size + width - 1 - k] = <unsigned char>((unscaled >> (8 * k)) & 0xFF)
            _append(out, buffer, size + width)
        elif op == OP_MAP:
            if PyObject_IsTrue(value):
                return False
            buffer[size] = 0
            _append(out, buffer, size + 1)
        else:
            return False
        return True
