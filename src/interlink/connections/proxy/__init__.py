"""The credentialed, resilient proxy: ``ANY /v1/proxy/{connection_id}/{path}``."""

from __future__ import annotations

from interlink.connections.proxy.app import ProxyApp

__all__ = ["ProxyApp"]
