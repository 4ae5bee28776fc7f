"""Build and run the JVM reader of ``tests/jvm`` (Apache Avro + Apicurio's serde from Maven Central).

Built once with ``mvn package`` (dependencies cached in ``~/.m2``, so later builds work with
``mvn -o``) and rebuilt when its pom or source changes; run with the jars Maven copied to
``tests/jvm/target/libs``.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import orjson

from gateway.infra import maven

JVM_DIR = Path(__file__).resolve().parent / "jvm"
TARGET = JVM_DIR / "target"
JAR = TARGET / "standard-reader-1.jar"
STAMP = TARGET / ".built-sha256"


def _digest() -> str:
    sources = [JVM_DIR / "pom.xml", *sorted((JVM_DIR / "src").rglob("*.java"))]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()


def build() -> Path:
    """The reader's jar, built unless the current pom and source were built already."""
    digest = _digest()
    if JAR.is_file() and STAMP.is_file() and STAMP.read_text() == digest:
        return JAR
    maven.package_module(JVM_DIR)
    STAMP.write_text(digest)
    return JAR


def read(args: list[str], timeout_s: float = 180) -> list[dict[str, Any]]:
    """Run the reader (see Main.java for the arguments); one dict per record it printed."""
    classpath = ":".join([str(build()), *sorted(str(p) for p in (TARGET / "libs").glob("*.jar"))])
    result = subprocess.run(
        [maven.find_java(), "-Xmx256m", "-cp", classpath, "gateway.reader.Main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, f"JVM reader failed:\n{maven.tail_text(result.stderr)}"
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
