"""Mutual TLS against a real aiohttp server on 127.0.0.1 that requires a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from interlink.egress import (
    AddressPolicy,
    ClientCertificate,
    EgressClient,
    TLSContextCache,
    TLSError,
    parse_allow_list,
)


@dataclass
class Issued:
    cert_pem: str
    key_pem: str


@dataclass
class PKI:
    ca: Issued
    server: Issued
    client: Issued
    stranger_ca: Issued


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def _issue(
    subject: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0].subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
        return builder.sign(key, hashes.SHA256()), key
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False
    )
    if usage is ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    return builder.sign(issuer[1], hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki() -> PKI:
    ca = _issue("Interlink Test CA", None)
    server = _issue("127.0.0.1", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = _issue("tenant-client", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger = _issue("Someone Else's CA", None)
    return PKI(_pem(*ca), _pem(*server), _pem(*client), _pem(*stranger))


@pytest.fixture
async def mtls_server(serve, pki: PKI, tmp_path: Path):
    (tmp_path / "server.pem").write_text(pki.server.cert_pem + pki.server.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca.cert_pem)
    context.load_cert_chain(tmp_path / "server.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    # asyncio's server side drops the TLS 1.3 "certificate required" alert and closes
    # after the client already finished its handshake, so a TLS 1.3 client only sees a
    # reset when it sends the request. With TLS 1.2 the refusal happens inside the
    # handshake, which is what this test is about.
    context.maximum_version = ssl.TLSVersion.TLSv1_2

    async def whoami(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        return web.Response(text=subject.get("commonName", "anonymous"))

    return await serve(whoami, ssl_context=context)


@pytest.fixture
async def client():
    async with EgressClient(address_policy=AddressPolicy(parse_allow_list("127.0.0.1"))) as c:
        yield c


async def test_client_certificate_is_presented_and_accepted(
    client: EgressClient, mtls_server, pki: PKI
) -> None:
    certificate = ClientCertificate(pki.client.cert_pem, pki.client.key_pem, ca_pem=pki.ca.cert_pem)

    response = await client.request("GET", mtls_server.url + "/", ssl_context=certificate)

    assert response.status == 200
    assert response.body == b"tenant-client"


async def test_without_client_certificate_the_handshake_fails_with_tls_error(
    client: EgressClient, mtls_server, pki: PKI
) -> None:
    trusting_only = ssl.create_default_context(cadata=pki.ca.cert_pem)

    with pytest.raises(TLSError) as caught:
        await client.request("GET", mtls_server.url + "/", ssl_context=trusting_only)

    assert caught.value.error_class == "tls"
    assert caught.value.retryable is False
    assert "handshake aborted" in str(caught.value)
    assert mtls_server.hits == []


async def test_untrusted_server_certificate_fails_with_tls_error(
    client: EgressClient, mtls_server, pki: PKI
) -> None:
    certificate = ClientCertificate(
        pki.client.cert_pem, pki.client.key_pem, ca_pem=pki.stranger_ca.cert_pem
    )

    with pytest.raises(TLSError):
        await client.request("GET", mtls_server.url + "/", ssl_context=certificate)

    assert mtls_server.hits == []


async def test_same_certificate_reuses_one_context_and_connection(
    client: EgressClient, mtls_server, pki: PKI
) -> None:
    certificate = ClientCertificate(pki.client.cert_pem, pki.client.key_pem, ca_pem=pki.ca.cert_pem)
    copy = ClientCertificate(pki.client.cert_pem, pki.client.key_pem, ca_pem=pki.ca.cert_pem)

    for cert in (certificate, copy):
        response = await client.request("GET", mtls_server.url + "/", ssl_context=cert)
        assert response.status == 200

    first, second = mtls_server.hits
    assert first.transport is second.transport  # kept alive: one TLS connection


def test_context_cache_is_keyed_by_fingerprint_and_bounded(pki: PKI) -> None:
    cache = TLSContextCache(max_size=1)
    ours = ClientCertificate(pki.client.cert_pem, pki.client.key_pem, ca_pem=pki.ca.cert_pem)
    theirs = ClientCertificate(pki.server.cert_pem, pki.server.key_pem, ca_pem=pki.ca.cert_pem)

    first = cache.get(ours)
    assert cache.get(ClientCertificate(ours.cert_pem, ours.key_pem, ca_pem=ours.ca_pem)) is first
    cache.get(theirs)

    assert len(cache) == 1
    assert cache.get(ours) is not first


def test_private_key_is_not_in_repr(pki: PKI) -> None:
    certificate = ClientCertificate(pki.client.cert_pem, pki.client.key_pem)

    assert "PRIVATE KEY" not in repr(certificate)


def test_unloadable_key_raises_tls_error(pki: PKI) -> None:
    broken = ClientCertificate(pki.client.cert_pem, pki.server.key_pem)  # key of another cert

    with pytest.raises(TLSError):
        TLSContextCache().get(broken)
