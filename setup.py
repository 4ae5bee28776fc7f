"""The one compiled module, gateway/records/native_writer.pyx (the record writer's hot path, issue 16);
everything else about the package is in pyproject.toml.

Optional: where no C compiler answers, the package installs without it and the pure-Python writer
serves (the same bytes at about twice the CPU; ``gateway.records.codec.NATIVE`` says which, and the
worker logs it at start-up). ``GATEWAY_REQUIRE_COMPILED=1`` makes it required, so that a build that
must ship it (the image's builder stage, deploy/docker/Dockerfile) fails with the compiler's error.
"""

import os

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.records.native_writer",
            ["gateway/records/native_writer.pyx"],
            optional=os.environ.get("GATEWAY_REQUIRE_COMPILED", "") in ("", "0"),
        )
    ]
)
