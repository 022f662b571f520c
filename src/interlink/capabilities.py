"""The installed capabilities. Adding one is one line here and one folder of its own."""

from __future__ import annotations

import importlib

from interlink.capability import Capability

__all__ = ["CAPABILITY_MODULES", "load_capabilities"]

CAPABILITY_MODULES: tuple[str, ...] = (
    "interlink.webhooks.inbound.capability",
    "interlink.connections.capability",
    "interlink.webhooks.outbound.capability",
)


def load_capabilities() -> list[Capability]:
    found: list[Capability] = []
    for module_name in CAPABILITY_MODULES:
        module = importlib.import_module(module_name)
        capability = module.capability
        if not isinstance(capability, Capability):
            raise TypeError(f"{module_name}.capability is not a Capability")
        found.append(capability)
    return found
