"""Sources: a tenant's inbound-webhook URL for one provider account, with its signing secret.

The secret is encrypted by the vault (context ``inbound_sources.secret:{id}``) and never leaves
this module in a public view. A source may keep its previous secret for a grace period after a
rotation, so deliveries signed with either are accepted while the provider switches over.

A source's ``connection_id`` must name a connection of the same tenant when it is set; this is
the one read of the connections capability's table, made in the transaction that writes the
source. A connection deleted later leaves the id in place: processing still hands it to the sync
triggers, which must cope with a connection that no longer exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.tables import connections
from interlink.ids import new_id
from interlink.store.types import utcnow
from interlink.vault import Vault
from interlink.webhooks.inbound.tables import inbound_sources
from interlink.webhooks.inbound.verifiers import UnknownProviderError, Verifier, VerifierRegistry

__all__ = [
    "IngestConfig",
    "SourceConfigError",
    "UnknownConnectionError",
    "build_verifier",
    "create_source",
    "decrypt_secret",
    "delete_source",
    "find_source",
    "get_source",
    "ingest_url",
    "list_sources",
    "load_ingest_config",
    "public_source",
    "require_connection",
    "rotate_source_secret",
    "update_source",
]

_SECRET_FIELDS = ("secret", "previous_secret")


class SourceConfigError(ValueError):
    """The provider, secret or options of a source are not usable (answer 422)."""


class UnknownConnectionError(SourceConfigError):
    """``connection_id`` names no connection of the source's tenant (answer 422).

    Another tenant's connection is reported exactly like a missing one.
    """

    field = "connection_id"

    def __init__(self, connection_id: str) -> None:
        self.connection_id = connection_id
        self.reason = f"connection {connection_id} does not exist"
        super().__init__(f"{self.field}: {self.reason}")


@dataclass(frozen=True)
class IngestConfig:
    """What the ingest route needs about a source, with its verifiers already built.

    ``verifiers`` holds the current secret's verifier first, then the previous secret's while its
    grace period lasts (``previous_until``).
    """

    source_id: str
    tenant_id: str
    provider: str
    enabled: bool
    max_body_bytes: int | None
    rate_per_second: float | None
    rate_burst: int | None
    verifiers: tuple[Verifier, ...]
    previous_until: datetime | None


def _context(source_id: str, column: str) -> str:
    return f"inbound_sources.{column}:{source_id}"


def ingest_url(public_url: str, source_id: str) -> str:
    """The URL to paste into the provider's dashboard."""
    return f"{public_url.rstrip('/')}/in/{source_id}"


def build_verifier(
    registry: VerifierRegistry, provider: str, secret: str, options: Mapping[str, Any]
) -> Verifier:
    """Build a verifier, turning configuration mistakes into :class:`SourceConfigError`."""
    try:
        return registry.create(provider, secret, options)
    except UnknownProviderError as error:
        raise SourceConfigError(str(error)) from error
    except (ValueError, TypeError) as error:
        raise SourceConfigError(str(error)) from error


def public_source(row: Mapping[str, Any], public_url: str) -> dict[str, Any]:
    """The API view of a source row: no secret, plus the ``ingest_url``."""
    view = {key: value for key, value in row.items() if key not in _SECRET_FIELDS}
    view["ingest_url"] = ingest_url(public_url, row["id"])
    view["rate_limit"] = (
        {"per_second": row["rate_limit_per_second"], "burst": row["rate_limit_burst"]}
        if row["rate_limit_per_second"] is not None
        else None
    )
    view.pop("rate_limit_per_second", None)
    view.pop("rate_limit_burst", None)
    return view


async def require_connection(
    conn: AsyncConnection, tenant_id: str, connection_id: str, *, connections_installed: bool
) -> None:
    """Raise :class:`UnknownConnectionError` unless the tenant has this connection.

    Without the connections capability (``connections_installed`` false) its table does not
    exist and no connection can, so every id is unknown.
    """
    if connections_installed:
        query = select(connections.c.id).where(
            connections.c.id == connection_id, connections.c.tenant_id == tenant_id
        )
        if (await conn.execute(query)).first() is not None:
            return
    raise UnknownConnectionError(connection_id)


async def create_source(
    conn: AsyncConnection,
    vault: Vault,
    registry: VerifierRegistry,
    *,
    tenant_id: str,
    provider: str,
    secret: str,
    fields: Mapping[str, Any],
    connections_installed: bool = True,
) -> dict[str, Any]:
    """Store a new source; ``fields`` holds the optional columns (name, options, ...).

    Raises:
        SourceConfigError: the provider, secret or options are unusable, or
            (:class:`UnknownConnectionError`) ``connection_id`` is not one of the tenant's.
    """
    options = dict(fields.get("options") or {})
    build_verifier(registry, provider, secret, options)
    if fields.get("connection_id") is not None:
        await require_connection(
            conn, tenant_id, fields["connection_id"], connections_installed=connections_installed
        )
    source_id = new_id("src")
    now = utcnow()
    row: dict[str, Any] = {
        "id": source_id,
        "tenant_id": tenant_id,
        "provider": provider,
        "name": fields.get("name") or provider,
        "secret": vault.encrypt(secret, context=_context(source_id, "secret")),
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "options": options,
        "connection_id": fields.get("connection_id"),
        "enabled": fields.get("enabled", True),
        "max_body_bytes": fields.get("max_body_bytes"),
        "rate_limit_per_second": fields.get("rate_limit_per_second"),
        "rate_limit_burst": fields.get("rate_limit_burst"),
        "created_at": now,
        "updated_at": now,
        "secret_rotated_at": None,
    }
    await conn.execute(inbound_sources.insert().values(**row))
    return row


async def get_source(
    conn: AsyncConnection, tenant_id: str, source_id: str
) -> dict[str, Any] | None:
    query = select(inbound_sources).where(
        inbound_sources.c.id == source_id, inbound_sources.c.tenant_id == tenant_id
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_sources(
    conn: AsyncConnection, tenant_id: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(inbound_sources)
        .where(inbound_sources.c.tenant_id == tenant_id)
        .order_by(inbound_sources.c.id)
        .limit(limit)
    )
    if after:
        query = query.where(inbound_sources.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def update_source(
    conn: AsyncConnection,
    vault: Vault,
    registry: VerifierRegistry,
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    connections_installed: bool = True,
) -> dict[str, Any]:
    """Apply ``changes`` (already validated column values) to the source row ``current``.

    A ``connection_id`` in ``changes`` is checked like on creation (None unbinds the source).
    """
    if "options" in changes:
        secret = vault.decrypt(current["secret"], context=_context(current["id"], "secret"))
        build_verifier(registry, current["provider"], secret, changes["options"] or {})
    if changes.get("connection_id") is not None:
        await require_connection(
            conn,
            current["tenant_id"],
            changes["connection_id"],
            connections_installed=connections_installed,
        )
    values = {**changes, "updated_at": utcnow()}
    await conn.execute(
        update(inbound_sources).where(inbound_sources.c.id == current["id"]).values(**values)
    )
    return {**current, **values}


async def rotate_source_secret(
    conn: AsyncConnection,
    vault: Vault,
    registry: VerifierRegistry,
    current: Mapping[str, Any],
    new_secret: str,
    grace_seconds: float,
) -> dict[str, Any]:
    """Replace the secret; the old one stays valid for ``grace_seconds`` (0: not at all)."""
    build_verifier(registry, current["provider"], new_secret, current["options"])
    source_id = current["id"]
    now = utcnow()
    old = vault.decrypt(current["secret"], context=_context(source_id, "secret"))
    keep = grace_seconds > 0
    values = {
        "secret": vault.encrypt(new_secret, context=_context(source_id, "secret")),
        "previous_secret": (
            vault.encrypt(old, context=_context(source_id, "previous_secret")) if keep else None
        ),
        "previous_secret_expires_at": now + timedelta(seconds=grace_seconds) if keep else None,
        "secret_rotated_at": now,
        "updated_at": now,
    }
    await conn.execute(
        update(inbound_sources).where(inbound_sources.c.id == source_id).values(**values)
    )
    return {**current, **values}


async def delete_source(conn: AsyncConnection, tenant_id: str, source_id: str) -> bool:
    result = await conn.execute(
        delete(inbound_sources).where(
            inbound_sources.c.id == source_id, inbound_sources.c.tenant_id == tenant_id
        )
    )
    return bool(result.rowcount)


async def load_ingest_config(
    conn: AsyncConnection, vault: Vault, registry: VerifierRegistry, source_id: str
) -> IngestConfig | None:
    """Read a source and build its verifiers; None when it does not exist."""
    row = (
        (await conn.execute(select(inbound_sources).where(inbound_sources.c.id == source_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    options = row["options"] or {}
    secret = vault.decrypt(row["secret"], context=_context(source_id, "secret"))
    verifiers = [registry.create(row["provider"], secret, options)]
    previous_until = row["previous_secret_expires_at"]
    if row["previous_secret"] and previous_until is not None and previous_until > utcnow():
        old = vault.decrypt(row["previous_secret"], context=_context(source_id, "previous_secret"))
        verifiers.append(registry.create(row["provider"], old, options))
    return IngestConfig(
        source_id=source_id,
        tenant_id=row["tenant_id"],
        provider=row["provider"],
        enabled=bool(row["enabled"]),
        max_body_bytes=row["max_body_bytes"],
        rate_per_second=row["rate_limit_per_second"],
        rate_burst=row["rate_limit_burst"],
        verifiers=tuple(verifiers),
        previous_until=previous_until if len(verifiers) > 1 else None,
    )


def decrypt_secret(vault: Vault, row: Mapping[str, Any]) -> str:
    """The source's current signing secret in clear (for the CLI's signed demo requests)."""
    return vault.decrypt(row["secret"], context=_context(row["id"], "secret"))


async def find_source(conn: AsyncConnection, source_id: str) -> dict[str, Any] | None:
    """A source by id whatever its tenant (for admin tools such as the CLI)."""
    query = select(inbound_sources).where(inbound_sources.c.id == source_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None
