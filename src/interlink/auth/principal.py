"""The caller of a request, once authenticated."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """``admin`` reaches everything; ``tenant`` reaches only ``tenant_id``."""

    scope: str
    actor: str
    tenant_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def can_reach(self, tenant_id: str) -> bool:
        return self.is_admin or self.tenant_id == tenant_id
