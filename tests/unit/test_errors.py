"""The error tree drawn in gateway/errors.py is the code's, and the supervisor's rule holds."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import gateway
import gateway.errors as errors
from gateway.accounts.rest import AccountAuthError
from gateway.coordination.supervision import restarts
from gateway.errors import (
    ConfigError,
    ControlError,
    GatewayError,
    InvalidStateError,
    KafkaDeliveryError,
    MessageParseError,
    ProtocolError,
    RegistryError,
    RestRequestError,
    SerializationError,
    ServerShutdownNotice,
    StreamDisconnectedError,
    UpstreamError,
)

GATEWAY = Path(gateway.__file__).parent
BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)")


def drawn_tree() -> dict[str, str]:
    """Class name -> parent name, as the docstring draws them."""
    parents: dict[str, str] = {}
    path = ["GatewayError"]
    for line in (errors.__doc__ or "").splitlines():
        match = BRANCH.match(line.strip("\n")[4:])  # the drawing is indented by four spaces
        if match:
            depth = len(match["indent"]) // 4 + 1
            del path[depth:]
            parents[match["name"]] = path[-1]
            path.append(match["name"])
    return parents


def every_gateway_error() -> dict[str, type[GatewayError]]:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not module.name.endswith("__main__") and not module.name.startswith(
            "gateway.simulator"  # the oracle keeps errors of its own, outside the gateway's
        ):
            importlib.import_module(module.name)
    found: dict[str, type[GatewayError]] = {}
    todo = [GatewayError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def test_the_drawn_tree_is_the_class_tree() -> None:
    drawn = drawn_tree()
    classes = every_gateway_error()
    assert sorted(drawn) == sorted(classes)  # none undrawn, none drawn that does not exist
    for name, cls in classes.items():
        gateway_bases = [b.__name__ for b in cls.__bases__ if issubclass(b, GatewayError)]
        assert gateway_bases == [drawn[name]], name


def test_every_leaf_of_the_tree_is_raised_somewhere() -> None:
    source = "\n".join(
        path.read_text()
        for path in GATEWAY.rglob("*.py")
        if path.name != "errors.py" and "simulator" not in path.parts
    )
    classes = every_gateway_error()
    leaves = [name for name, cls in classes.items() if not cls.__subclasses__()]
    # Raised as ``Name(...)``, or chosen in a conditional expression (``Name if ... else``).
    never = [n for n in leaves if not re.search(rf"(?<!class ){n}\(|\b{n}\s+if\b", source)]
    assert never == []
    assert not GatewayError.retriable and UpstreamError.retriable
    assert not KafkaDeliveryError.retriable  # the sink retried already: records are lost


@pytest.mark.parametrize(
    ("error", "restarted"),
    [
        (OSError("no route to host"), True),
        (TimeoutError(), True),
        (StreamDisconnectedError("closed"), True),
        (ServerShutdownNotice("rotate"), True),
        (RestRequestError("HTTP 503", status=503), True),
        (AccountAuthError("refused", status=401, code=-2015), True),
        (ProtocolError("not an exchangeInfo body"), True),  # bad input never crashes
        (MessageParseError("junk"), True),
        (KafkaDeliveryError("not delivered"), False),  # records lost to Kafka
        (SerializationError("schema drift"), False),
        (RegistryError("refused"), False),
        (ConfigError("bad url"), False),
        (ControlError("unreadable"), False),
        (InvalidStateError("SYNCED -> SYNCED"), False),  # a bug
        (KeyError("bug"), False),  # outside the tree: a bug
        (RuntimeError("bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_the_supervisor_restarts_the_outside_world_and_lets_a_bug_crash(
    error: BaseException, restarted: bool
) -> None:
    assert restarts(error) is restarted
