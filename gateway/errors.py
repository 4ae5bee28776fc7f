"""Every error the gateway raises, rooted in :class:`GatewayError`.

::

    GatewayError(Exception)                 retriable = False
    ├── ConfigError(GatewayError, ValueError)   bad settings: exit code 2 at start-up
    ├── ProtocolError                       Binance sent something we cannot use
    │   ├── MessageParseError               a frame that is not a known, well-formed event
    │   └── RestAnswerError                 a REST answer that is not what was asked for
    ├── UpstreamError                       retriable = True: Binance unreachable or failing
    │   ├── StreamDisconnectedError
    │   │   └── ServerShutdownNotice        Binance will close it: hand over to a new connection
    │   └── RestRequestError                ``status``: the HTTP status, if Binance answered
    │       └── AccountRequestError         (gateway.accounts.rest) ``code``: Binance's error code
    │           └── AccountAuthError        (gateway.accounts.rest) the key was refused
    ├── SinkError                           the Kafka side
    │   ├── SerializationError              an event the Avro schema rejects: a bug or schema drift
    │   ├── RegistryError                   the schema registry refused or is unreachable
    │   │   └── RegistryNotFoundError       it answered 404: no such subject, schema or version
    │   ├── KafkaDeliveryError              Kafka did not take records the gateway had read
    │   └── TopicNotFoundError              a topic asked for by name does not exist (exit 3)
    ├── ControlError                        a control-topic record this gateway cannot read
    ├── InfraError                          the local Kafka / registry launcher failed
    └── InvalidStateError(GatewayError, AssertionError)   a state machine misused: a bug

Third-party exceptions are translated into these only in ``gateway.adapters`` (``raise ... from``),
so the rest of the code sees one tree. Errors carry their context as attributes, not only text.
Not an error and outside the tree: ``gateway.accounts.connection.ReconnectNow``, the signal of a
planned account reconnect (rotation, a replaced listen key), caught by the account stream.

``retriable`` says whether waiting and trying again can mend it
(:func:`gateway.binance.policy.is_retriable`: also ``OSError``, ``TimeoutError``, ``EOFError``).
``KafkaDeliveryError`` is not: the sink already retries while Kafka is unreachable, so when it
raises, records read from Binance are lost to Kafka and the worker must stop.

What the supervisor restarts, and what it lets crash (docs/errors.md;
:func:`gateway.coordination.supervision.restarts`):

* **Restarted**, with backoff and a *failing* report when it keeps happening: the outside world
  failing, that is whatever is retriable (the network, Binance unreachable or refusing) and
  ``ProtocolError`` (Binance sent something we cannot use: bad input never crashes the worker).
* **Crashes the worker** (exit code 1; Kubernetes restarts the pod and the group hands its shards
  to another worker): everything else. ``SinkError`` (records lost to Kafka, schema drift),
  ``ConfigError``, ``ControlError``, ``InvalidStateError`` and any exception outside this tree
  are a loss or a bug, and restarting a connection would hide them ("let a bug crash").
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Root of the gateway's errors."""

    retriable: ClassVar[bool] = False


class ConfigError(GatewayError, ValueError):
    """The configuration is invalid; raised at start-up, never mid-stream."""


class ProtocolError(GatewayError):
    """Binance sent something the gateway cannot use."""


class MessageParseError(ProtocolError):
    """A frame that is not a well-formed, known event.

    Carries the stream name (when known) and a truncated copy of the payload for the dead-letter
    record and the log line.
    """

    MAX_PAYLOAD_CHARS: ClassVar[int] = 512

    def __init__(self, reason: str, *, stream: str | None = None, payload: bytes = b"") -> None:
        self.reason = reason
        self.stream = stream
        self.payload = payload
        shown = payload[: self.MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")
        super().__init__(f"{reason} (stream={stream or '?'}, payload={shown!r})")


class RestAnswerError(ProtocolError):
    """Binance answered a REST request (HTTP 200, JSON) with something unusable: the wrong shape,
    rows that do not parse. Retried like an unreachable Binance, within a bounded time."""


class UpstreamError(GatewayError):
    """Binance is unreachable or failing; worth retrying with backoff."""

    retriable: ClassVar[bool] = True


class StreamDisconnectedError(UpstreamError):
    """A WebSocket stream connection was lost."""


class ServerShutdownNotice(StreamDisconnectedError):
    """Binance announced it will close the connection (``serverShutdown``): rotate now."""


class RestRequestError(UpstreamError):
    """A REST request to Binance failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SinkError(GatewayError):
    """The Kafka side failed."""


class SerializationError(SinkError):
    """An event could not be encoded with its Avro schema."""


class RegistryError(SinkError):
    """The schema registry refused a request or could not be reached."""


class RegistryNotFoundError(RegistryError):
    """The registry answered 404: no such subject, schema or version."""


class KafkaDeliveryError(SinkError):
    """Kafka did not take records the gateway had read (after the sink's own retries): fatal."""


class ControlError(GatewayError):
    """A control-topic record this gateway cannot read."""


class TopicNotFoundError(SinkError):
    """A topic named on the command line does not exist (``gateway tail``: exit code 3)."""

    def __init__(self, topics: list[str], bootstrap_servers: str) -> None:
        self.topics = topics
        names = ", ".join(topics)
        super().__init__(f"no topic {names} in Kafka at {bootstrap_servers}")


class InfraError(GatewayError):
    """The local Kafka or schema-registry launcher failed."""


class InvalidStateError(GatewayError, AssertionError):
    """A state machine was driven through a transition it does not allow: a bug."""
