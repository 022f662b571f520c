"""Client TLS: SSL contexts for mutual TLS built from PEM strings, cached by fingerprint.

Credentials arrive as PEM text (decrypted from the store), but `ssl.SSLContext` only loads
a certificate chain from a path. On Linux the PEM goes through an anonymous in-memory file
(``memfd_create``) and never touches a disk; elsewhere through a private temporary
directory that is removed at once. Contexts are cached so that calls with the same
certificate share one context object, and so one pool of kept-alive connections.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from interlink.egress.errors import TLSError

__all__ = ["ClientCertificate", "TLSContextCache", "build_ssl_context"]


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A client certificate for mutual TLS, and optionally the CA to trust.

    Args:
        cert_pem: the client certificate chain, PEM.
        key_pem: its private key, PEM (never shown in ``repr``).
        ca_pem: CA certificates, PEM, that the server's certificate must chain to; when
            given, *only* these are trusted. None: the system trust store.
        key_password: password of an encrypted `key_pem`.
    """

    cert_pem: str
    key_pem: str = field(repr=False)
    ca_pem: str | None = None
    key_password: str | None = field(default=None, repr=False)

    def fingerprint(self) -> str:
        """SHA-256 over every field: equal fingerprints mean an equal TLS configuration."""
        digest = hashlib.sha256()
        for part in (self.cert_pem, self.key_pem, self.ca_pem or "", self.key_password or ""):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _load_cert_chain(context: ssl.SSLContext, chain_pem: bytes, password: str | None) -> None:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and Path("/proc/self/fd").is_dir():
        fd = memfd_create("interlink-client-cert", os.MFD_CLOEXEC)
        try:
            _write_all(fd, chain_pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}", password=password)
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="interlink-tls-") as directory:
        path = Path(directory) / "chain.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, chain_pem)
        finally:
            os.close(fd)
        context.load_cert_chain(path, password=password)


def build_ssl_context(certificate: ClientCertificate) -> ssl.SSLContext:
    """Build a verifying client `ssl.SSLContext` that presents `certificate`.

    Raises:
        TLSError: the certificate, key, password or CA cannot be loaded.
    """
    try:
        if certificate.ca_pem is not None:
            context = ssl.create_default_context(cadata=certificate.ca_pem)
        else:
            context = ssl.create_default_context()
        chain = f"{certificate.cert_pem.strip()}\n{certificate.key_pem.strip()}\n".encode()
        _load_cert_chain(context, chain, certificate.key_password)
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise TLSError(f"client certificate cannot be loaded: {exc}") from exc
    return context


class TLSContextCache:
    """Least-recently-used cache of SSL contexts by certificate fingerprint.

    Args:
        max_size: contexts kept; the least recently used one is dropped beyond it.
    """

    def __init__(self, max_size: int = 256) -> None:
        self.max_size = max_size
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()

    def get(self, certificate: ClientCertificate) -> ssl.SSLContext:
        """The context for `certificate`, built on first use."""
        key = certificate.fingerprint()
        context = self._contexts.get(key)
        if context is None:
            context = build_ssl_context(certificate)
            self._contexts[key] = context
            if len(self._contexts) > self.max_size:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(key)
        return context

    def __len__(self) -> int:
        return len(self._contexts)
