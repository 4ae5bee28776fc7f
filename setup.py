"""The compiled modules of the hot path (issue 16); everything else about the package is in
pyproject.toml.

* gateway/records/native_writer.pyx: the Avro record writer;
* gateway/binance/events/native_decimal.pyx: decimal strings to Scaled integers.

Optional: where no C compiler answers, the package installs without them and their pure-Python
twins serve (same bytes, about 3 µs more CPU per trade; ``gateway.records.codec.NATIVE`` says
which, and the worker logs it at start-up).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.records.native_writer",
            ["gateway/records/native_writer.pyx"],
            optional=True,
        ),
        Extension(
            "gateway.binance.events.native_decimal",
            ["gateway/binance/events/native_decimal.pyx"],
            optional=True,
        ),
    ]
)
