"""Request signatures for Binance's signed (``USER_DATA``) requests, pure.

Binance signs the same text with three kinds of API key:

* **HMAC** — HMAC-SHA256 keyed with the secret; the signature is lowercase hex.
* **RSA** — RSASSA-PKCS1-v1_5 with SHA-256 under the private key; the signature is base64.
* **Ed25519** — Ed25519 under the private key; the signature is base64.

What is signed differs by transport:

* **WebSocket API** (``userDataStream.subscribe.signature``, docs/binance.md §6.1): every parameter but
  ``signature``, sorted by name, as ``name=value`` joined with ``&``; the signature then goes
  into ``params`` beside them.
* **REST**: the query string exactly as sent (``timestamp`` and ``recvWindow`` included), then
  ``&signature=<url-encoded signature>`` appended last. The gateway sends the parameters sorted,
  so the same payload function serves both.

``timestamp`` is the client's epoch milliseconds; Binance refuses a request whose timestamp is
older than ``recvWindow`` (default 5000 ms) or more than a second ahead of its clock.

Secrets arrive as bytes and leave as signatures: nothing here logs or formats a key.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from gateway.errors import ConfigError

DEFAULT_RECV_WINDOW_MS = 5_000


class KeyType(enum.StrEnum):
    """The kind of API key Binance issued, which decides the signature algorithm."""

    HMAC = "hmac"
    RSA = "rsa"
    ED25519 = "ed25519"


def value_text(value: object) -> str:
    """A parameter value as Binance reads it: booleans lowercase, everything else ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signature_payload(params: Mapping[str, object]) -> str:
    """The signed text: every parameter but ``signature``, sorted by name, ``a=1&b=2``."""
    return "&".join(
        f"{name}={value_text(params[name])}" for name in sorted(params) if name != "signature"
    )


def query_string(params: Mapping[str, object]) -> str:
    """The REST query string of ``params``, sorted by name and URL-encoded.

    Sorted so that the REST payload equals :func:`signature_payload` whenever the values need
    no encoding (ids, symbols, numbers), which keeps one rule in both transports.
    """
    return "&".join(
        f"{quote(name, safe='')}={quote(value_text(params[name]), safe='')}"
        for name in sorted(params)
    )


class Signer:
    """Signs payloads with one API key's secret; the secret never leaves this object.

    ``secret`` is the HMAC secret for HMAC keys, or a PEM private key (PKCS#8 or PKCS#1) for
    RSA and Ed25519 keys. A PEM that does not hold the configured kind of key is a ConfigError at
    construction, so a wrong file fails at start-up rather than at the first signature.
    """

    __slots__ = ("_hmac_key", "_private", "key_type")

    def __init__(self, key_type: KeyType, secret: bytes) -> None:
        self.key_type = key_type
        self._hmac_key = b""
        self._private: RSAPrivateKey | Ed25519PrivateKey | None = None
        if key_type is KeyType.HMAC:
            self._hmac_key = secret
            return
        try:
            private = serialization.load_pem_private_key(secret, password=None)
        except (ValueError, TypeError) as exc:
            # The parser's message never quotes the key material; keep it out all the same.
            raise ConfigError(f"the {key_type} private key is not a readable PEM") from exc
        wanted = RSAPrivateKey if key_type is KeyType.RSA else Ed25519PrivateKey
        if not isinstance(private, wanted):
            raise ConfigError(f"the private key is not an {key_type} key")
        self._private = private

    def __repr__(self) -> str:
        return f"Signer({self.key_type})"

    def sign(self, payload: str) -> str:
        """The signature of ``payload``: hex for HMAC, base64 for RSA and Ed25519."""
        data = payload.encode()
        private = self._private
        if private is None:
            return hmac.new(self._hmac_key, data, hashlib.sha256).hexdigest()
        if isinstance(private, RSAPrivateKey):
            raw = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = private.sign(data)
        return base64.b64encode(raw).decode()


def signed_params(
    signer: Signer,
    params: Mapping[str, object],
    *,
    timestamp_ms: int,
    recv_window_ms: int | None = None,
) -> dict[str, object]:
    """``params`` plus ``timestamp`` (and ``recvWindow``) and their ``signature``, sorted.

    The WebSocket API form: the result is the request's ``params`` object.
    """
    unsigned: dict[str, object] = {**params, "timestamp": timestamp_ms}
    if recv_window_ms is not None:
        unsigned["recvWindow"] = recv_window_ms
    ordered = {name: unsigned[name] for name in sorted(unsigned)}
    ordered["signature"] = signer.sign(signature_payload(ordered))
    return ordered


def signed_query(
    signer: Signer,
    params: Mapping[str, object],
    *,
    timestamp_ms: int,
    recv_window_ms: int | None = None,
) -> str:
    """The REST form: the sorted query string with ``&signature=...`` appended last."""
    unsigned: dict[str, object] = {**params, "timestamp": timestamp_ms}
    if recv_window_ms is not None:
        unsigned["recvWindow"] = recv_window_ms
    query = query_string(unsigned)
    return f"{query}&signature={quote(signer.sign(query), safe='')}"


def verify(key_type: KeyType, key: bytes, payload: str, signature: str) -> bool:
    """Whether ``signature`` signs ``payload`` under ``key`` (HMAC secret or PEM public key).

    The exchange's side of :meth:`Signer.sign`, used by the simulator and the tests.
    """
    data = payload.encode()
    if key_type is KeyType.HMAC:
        expected = hmac.new(key, data, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.lower(), expected)
    try:
        raw = base64.b64decode(signature, validate=True)
        public = serialization.load_pem_public_key(key)
        if key_type is KeyType.RSA and isinstance(public, RSAPublicKey):
            public.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        if key_type is KeyType.ED25519 and isinstance(public, Ed25519PublicKey):
            public.verify(raw, data)
            return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False


def public_key_type(pem: bytes) -> KeyType | None:
    """The kind of a PEM public key (RSA or Ed25519), or ``None`` if it is neither."""
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        return None
    if isinstance(public, RSAPublicKey):
        return KeyType.RSA
    if isinstance(public, Ed25519PublicKey):
        return KeyType.ED25519
    return None
