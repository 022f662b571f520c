"""Certificates and a client-certificate-requiring TLS server context, for the mTLS tests."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.integration.egress.test_egress_mtls import PKI, Issued, _issue, _pem


@dataclass(frozen=True)
class Certificates:
    pki: PKI
    intruder: Issued  # a client certificate issued by ``pki.stranger_ca``


def issue_certificates() -> Certificates:
    """A CA with a server (127.0.0.1) and a client certificate, and a stranger CA's client."""
    ca = _issue("Interlink Test CA", None)
    stranger = _issue("Someone Else's CA", None)
    pki = PKI(
        ca=_pem(*ca),
        server=_pem(*_issue("127.0.0.1", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)),
        client=_pem(*_issue("tenant-client", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)),
        stranger_ca=_pem(*stranger),
    )
    intruder = _pem(*_issue("intruder", stranger, usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    return Certificates(pki, intruder)


def requiring_client_certificates(pki: PKI, directory: Path) -> ssl.SSLContext:
    """A server context presenting ``pki.server`` and requiring a client certificate of
    ``pki.ca``."""
    (directory / "server.pem").write_text(pki.server.cert_pem + pki.server.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca.cert_pem)
    context.load_cert_chain(directory / "server.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    # As in tests/integration/egress/test_egress_mtls.py: asyncio's server side drops the
    # TLS 1.3 "certificate required" alert, so only TLS 1.2 refuses inside the handshake.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def peer_common_name(request: web.Request) -> str:
    """The common name of the client certificate the request came with."""
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    subject = dict(item[0] for item in peer["subject"]) if peer else {}
    return str(subject.get("commonName", "anonymous"))
