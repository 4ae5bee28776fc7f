"""Request signatures: Binance's documented HMAC example, RSA and Ed25519 round trips, and the
simulator's independent checker agreeing with the gateway's signer on arbitrary parameters."""

import base64
import functools
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings, strategies as st

from gateway.binance.signing import (
    KeyType,
    Signer,
    public_key_type,
    query_string,
    signature_payload,
    signed_params,
    signed_query,
    verify,
)
from gateway.errors import ConfigError
from gateway.simulator.userdata import query_signature_valid, signature_valid

# Binance's REST documentation example ("SIGNED Endpoint Examples for POST /api/v3/order").
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


@functools.cache
def keypair(key_type: KeyType) -> tuple[bytes, bytes]:
    """(private PEM, public PEM); RSA generation is slow, so once per type."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if key_type is KeyType.RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def signer_and_key(key_type: KeyType) -> tuple[Signer, bytes]:
    """A signer and what the exchange holds to check it (secret or public key)."""
    if key_type is KeyType.HMAC:
        return Signer(KeyType.HMAC, DOC_SECRET.encode()), DOC_SECRET.encode()
    private, public = keypair(key_type)
    return Signer(key_type, private), public


def test_hmac_matches_binances_documented_example() -> None:
    assert Signer(KeyType.HMAC, DOC_SECRET.encode()).sign(DOC_PAYLOAD) == DOC_SIGNATURE
    assert verify(KeyType.HMAC, DOC_SECRET.encode(), DOC_PAYLOAD, DOC_SIGNATURE)


@pytest.mark.parametrize("key_type", [KeyType.RSA, KeyType.ED25519])
def test_asymmetric_signatures_are_base64_and_verify_with_the_public_key(key_type: KeyType) -> None:
    signer, public = signer_and_key(key_type)
    signature = signer.sign(DOC_PAYLOAD)
    raw = base64.b64decode(signature, validate=True)
    assert len(raw) == (256 if key_type is KeyType.RSA else 64)
    assert verify(key_type, public, DOC_PAYLOAD, signature)
    assert not verify(key_type, public, DOC_PAYLOAD + "&x=1", signature)
    assert public_key_type(public) is key_type


def test_ws_api_params_are_sorted_and_signed_over_everything_but_the_signature() -> None:
    signer = Signer(KeyType.HMAC, b"secret")
    params = signed_params(signer, {"apiKey": "k", "symbol": "BTCUSDT"}, timestamp_ms=1_000,
                           recv_window_ms=5_000)  # fmt: skip
    assert list(params) == ["apiKey", "recvWindow", "symbol", "timestamp", "signature"]
    assert signature_payload(params) == "apiKey=k&recvWindow=5000&symbol=BTCUSDT&timestamp=1000"
    assert params["signature"] == signer.sign(signature_payload(params))


def test_a_wrong_or_mismatched_private_key_is_a_config_error_without_the_key() -> None:
    rsa_private, _ = keypair(KeyType.RSA)
    with pytest.raises(ConfigError, match="not an ed25519 key"):
        Signer(KeyType.ED25519, rsa_private)
    with pytest.raises(ConfigError, match="not a readable PEM") as raised:
        Signer(KeyType.RSA, b"-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----")
    assert "not-a-key" not in str(raised.value)
    assert "secret" not in repr(Signer(KeyType.HMAC, b"secret"))


values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(min_size=0, max_size=20),
)
names = st.text(alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
param_maps = st.dictionaries(names.filter(lambda n: n not in ("signature", "timestamp")), values,
                             max_size=6)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(params=param_maps, key_type=st.sampled_from(list(KeyType)), timestamp=st.integers(0, 2**41))
def test_the_simulator_accepts_every_ws_api_request_the_gateway_signs(
    params: dict[str, str], key_type: KeyType, timestamp: int
) -> None:
    signer, exchange_key = signer_and_key(key_type)
    signed = signed_params(signer, params, timestamp_ms=timestamp)
    assert signature_valid(exchange_key.decode(), signed)
    tampered = {**signed, "timestamp": timestamp + 1}
    assert not signature_valid(exchange_key.decode(), tampered)


@settings(max_examples=60, deadline=None)
@given(params=param_maps, key_type=st.sampled_from(list(KeyType)), timestamp=st.integers(0, 2**41))
def test_the_simulator_accepts_every_rest_query_the_gateway_signs(
    params: dict[str, str], key_type: KeyType, timestamp: int
) -> None:
    """Values with ``&``, ``=``, spaces or non-ASCII are percent-encoded before signing."""
    signer, exchange_key = signer_and_key(key_type)
    query = signed_query(signer, params, timestamp_ms=timestamp, recv_window_ms=5_000)
    body, _, signature = query.rpartition("&signature=")
    assert body == query_string({**params, "timestamp": timestamp, "recvWindow": 5_000})
    assert "&" not in signature and quote(signature, safe="%") == signature
    assert query_signature_valid(exchange_key.decode(), query)
    assert not query_signature_valid(
        exchange_key.decode(), query.replace("timestamp=", "timestamp=9")
    )


@given(params=param_maps)
def test_payload_is_independent_of_insertion_order_and_ignores_the_signature(
    params: dict[str, str],
) -> None:
    reordered = dict(reversed(list(params.items())))
    assert signature_payload(params) == signature_payload({**reordered, "signature": "x"})
