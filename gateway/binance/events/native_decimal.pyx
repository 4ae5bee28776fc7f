# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
""":func:`gateway.binance.events.base.scaled`, compiled, for Binance's plain decimal strings.

``"65000.12"``, ``"-0.5"``, ``"3"``: ASCII digits, at most one point, an optional leading minus,
at most 18 places and a result within decimal(38, 18)'s 38 digits, read in C to the Scaled integer.
Any other string, and anything not a string, goes to the Python reader (:func:`set_fallback`), so
values and refusals are the Python reader's (and so ``Decimal``'s) by construction; tests compare
the two on random text.
"""

from cpython.long cimport PyLong_FromLongLong
from cpython.unicode cimport PyUnicode_CheckExact


cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    const unsigned char* PyUnicode_1BYTE_DATA(object text)
    object _PyLong_FromByteArray(const unsigned char* data, size_t size, int little_endian,
                                 int is_signed)

cdef extern from *:
    """
    typedef __int128 gateway_int128;
    """
    # GCC and Clang: 38 decimal digits fit a signed 128-bit integer.
    ctypedef long long int128 "gateway_int128"


cdef enum:
    SCALE = 18
    MAX_DIGITS = 38  # decimal(38, 18)

cdef object _fallback = None


def set_fallback(reader):
    """The Python reader every string this one does not read plainly goes to."""
    global _fallback
    _fallback = reader


def scaled(value, name):
    """A decimal string as a Scaled integer (scale 18): see the module docstring."""
    cdef Py_ssize_t size, i
    cdef const unsigned char* text
    cdef unsigned char c
    cdef int digits = 0, places = 0, start = 0
    cdef bint point = False
    cdef int128 unscaled = 0
    cdef unsigned char little[16]
    if not PyUnicode_CheckExact(value) or not PyUnicode_IS_COMPACT_ASCII(value):
        return _fallback(value, name)
    size = PyUnicode_GET_LENGTH(value)
    text = PyUnicode_1BYTE_DATA(value)
    if size and text[0] == c'-':
        start = 1
    for i in range(start, size):
        c = text[i]
        if c'0' <= c <= c'9':
            digits += 1
            if digits > MAX_DIGITS:
                return _fallback(value, name)
            unscaled = unscaled * 10 + (c - c'0')
            if point:
                places += 1
        elif c == c'.' and not point:
            point = True
        else:
            return _fallback(value, name)
    if digits == 0 or places > SCALE or digits + SCALE - places > MAX_DIGITS:
        return _fallback(value, name)
    for i in range(SCALE - places):
        unscaled *= 10
    if start:
        unscaled = -unscaled
    if -9223372036854775807 <= unscaled <= 9223372036854775807:
        return PyLong_FromLongLong(<long long>unscaled)
    for i in range(16):
        little[i] = <unsigned char>((unscaled >> (8 * i)) & 0xFF)
    return _PyLong_FromByteArray(little, 16, 1, 1)
