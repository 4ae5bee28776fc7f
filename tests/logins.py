"""Test doubles for Kafka's cloud logins: an OIDC token endpoint and a small certificate authority.

:class:`TokenEndpoint` is a real HTTP server on loopback that answers the client credentials grant
(RFC 6749 §4.4) with *unsecured* JWS tokens (RFC 7515 with ``alg: none``), the kind Kafka's
``OAuthBearerUnsecuredValidatorCallbackHandler`` accepts: the test plays the identity provider.

:func:`make_pki` writes a CA, a broker certificate for 127.0.0.1 and client certificates, as PEM
files (the broker's key and chain in one file, as Kafka's PEM keystore takes them).
"""

from __future__ import annotations

import base64
import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsecured_jws(subject: str, exp_in_s: float, scope: str | None = None) -> str:
    """An unsigned token (``alg: none``) with the claims Kafka's unsecured validator reads."""
    now = time.time()
    claims: dict[str, object] = {"sub": subject, "iat": int(now), "exp": int(now + exp_in_s)}
    if scope:
        claims["scope"] = scope
    header = orjson.dumps({"alg": "none", "typ": "JWT"})
    return f"{_b64url(header)}.{_b64url(orjson.dumps(claims))}."


@dataclass
class TokenEndpoint:
    """``POST /token``: the client credentials grant for one client, on 127.0.0.1."""

    client_id: str
    client_secret: str
    lifetime_s: int = 3600
    token_type: str = "Bearer"
    token_exp_offset_s: int | None = None
    """The token's own ``exp`` from now, where it should disagree with ``expires_in``."""
    requests: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> TokenEndpoint:
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/token"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, header: str) -> bool:
        # client_secret_basic (RFC 6749 §2.3.1): form-urlencoded id and secret, then Basic.
        scheme, _, encoded = header.partition(" ")
        if scheme != "Basic":
            return False
        login, _, password = base64.b64decode(encoded).decode().partition(":")
        return (unquote_plus(login), unquote_plus(password)) == (
            self.client_id,
            self.client_secret,
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(form)
        if not self._authorized(request.headers.get("Authorization", "")):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        exp_in_s = self.lifetime_s if self.token_exp_offset_s is None else self.token_exp_offset_s
        token = unsecured_jws(self.client_id, exp_in_s, form.get("scope"))
        return web.json_response(
            {"access_token": token, "token_type": self.token_type, "expires_in": self.lifetime_s}
        )


# --------------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Pki:
    ca: Path
    """The CA certificate: the broker's truststore and the clients' ssl_cafile."""
    broker_keystore: Path
    """The broker's key and certificate chain, one PEM file."""
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    """A client certificate from another CA, which the broker must refuse."""
    stranger_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # what Kafka's PEM keystore reads
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> Pki:
    """A CA, the broker's keystore and two client identities (one trusted, one not) as PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_ca_key = _key(), _key()
    ca = _certificate("test-ca", ca_key, None, ca=True)
    other_ca = _certificate("stranger-ca", other_ca_key, None, ca=True)
    broker_key, client_key, stranger_key = _key(), _key(), _key()
    broker = _certificate("kafka-broker", broker_key, (ca.subject, ca_key), server=True)
    client = _certificate("binance-gateway", client_key, (ca.subject, ca_key))
    stranger = _certificate("binance-gateway", stranger_key, (other_ca.subject, other_ca_key))

    files = {
        "ca.pem": _pem(ca),
        "broker-keystore.pem": _pem_key(broker_key) + _pem(broker) + _pem(ca),
        "client.pem": _pem(client),
        "client-key.pem": _pem_key(client_key),
        "stranger.pem": _pem(stranger),
        "stranger-key.pem": _pem_key(stranger_key),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(
        ca=directory / "ca.pem",
        broker_keystore=directory / "broker-keystore.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        stranger_cert=directory / "stranger.pem",
        stranger_key=directory / "stranger-key.pem",
    )
