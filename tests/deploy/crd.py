"""Validate custom resources against their CRD's OpenAPI schema, strictly, without a cluster.

The API server prunes or (``kubectl --validate=strict``) rejects fields its schema does not
declare; jsonschema would let them through, so every object schema that lists its properties and
neither allows extra ones nor preserves unknown fields is closed here.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"
# metadata is a bare `type: object` in every CRD: the API server checks names itself.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern:
            # Go's regexp takes an inline flag anywhere ("^(?i)..."); Python only at the start.
            schema["pattern"] = "(?i)" + pattern.replace("(?i)", "")
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def _schemas(filename: str) -> dict[tuple[str, str], dict[str, Any]]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    return {
        (f"{group}/{version['name']}", kind): _closed(version["schema"]["openAPIV3Schema"])
        for version in crd["spec"]["versions"]
        if version.get("served", True)
    }


def validate(resource: dict[str, Any], crd_file: str) -> None:
    """Raise jsonschema.ValidationError (or AssertionError for the name) if the API would refuse."""
    key = (resource["apiVersion"], resource["kind"])
    schemas = _schemas(crd_file)
    assert key in schemas, f"{key} is not served by {crd_file}: {sorted(schemas)}"
    jsonschema.Draft202012Validator(schemas[key]).validate(copy.deepcopy(resource))
    name = resource["metadata"]["name"]
    assert DNS_SUBDOMAIN.match(name), f"not a valid Kubernetes name: {name!r}"
