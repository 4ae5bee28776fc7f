"""The compiled modules of the hot path (issue 16); everything else about the package is in
pyproject.toml.

* gateway/records/native_writer.pyx: the Avro record writer;
* gateway/binance/events/native_decimal.pyx: decimal strings to Scaled integers.

Optional: where no C compiler answers, the package installs without them and their pure-Python
twins serve (same bytes, about 3 µs more CPU per trade; ``gateway.commands.run.compiled_path``
says which, and the worker logs it at start-up). ``GATEWAY_REQUIRE_COMPILED=1`` makes them
required, so that a build that must ship them (the image's builder stage,
deploy/docker/Dockerfile) fails with the compiler's error.
"""

import os

from setuptools import Extension, setup

OPTIONAL = os.environ.get("GATEWAY_REQUIRE_COMPILED", "") in ("", "0")

setup(
    ext_modules=[
        Extension(
            "gateway.records.native_writer",
            ["gateway/records/native_writer.pyx"],
            optional=OPTIONAL,
        ),
        Extension(
            "gateway.binance.events.native_decimal",
            ["gateway/binance/events/native_decimal.pyx"],
            optional=OPTIONAL,
        ),
    ]
)
